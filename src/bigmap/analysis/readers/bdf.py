"""The Battery Data Format (BDF) of the Battery Data Alliance (Linux Foundation Energy),
read and written by bigmap's own code.

Specification: github.com/battery-data-alliance/battery-data-format (README "Defining the BDF
for Cycler Time-Series Data", generated from BDF ontology 1.3.0; Apache-2.0). A BDF CSV holds
one cell's time series; its column headers are the quantities' preferred labels with their
unit (``Test Time / s``, ``Voltage / V``, ``Current / A`` required; ``Cycle Count / 1``,
``Step Count / 1``, ``Unix Time / s``, ``Ambient Temperature / degC`` recommended; ``Step ID``,
``Step Type``, ``Cycle Charging Capacity / Ah``, ``Charging Capacity / Ah`` (since test start),
``Step Charging Capacity / Ah``, ... optional) or their machine-readable names
(``test_time_second``, ``voltage_volt``, ``current_ampere``, ...). Current is positive while
charging. Earlier files (cellpy's ``batmo_bdf.csv``) use other units (``Test Time / h``) and
names (``Charge Capacity / Ah``, ``Cycle Count / 1``, ``Step Index / 1``): any unit bigmap knows
is converted, and a capacity counter whose reset is not stated is followed through its resets.

``write_bdf`` writes the normalised table as a BDF CSV: the three required columns, the
recommended ones bigmap has (``Cycle Count / 1``, ``Step Count / 1``), and ``Step ID``,
``Step Type``, ``Cycle Charging|Discharging Capacity / Ah``, ``Cycle Charging|Discharging
Energy / Wh`` and ``Temperature T1 / degC`` (the table's temperature is the cell's).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from bigmap.analysis.readers.common import _read_delimited, unit_scale
from bigmap.analysis.readers.mapped import Columns, direction_of, table_from_columns
from bigmap.analysis.readers.registry import Reader, Sample
from bigmap.analysis.table import IngestError, segment_ids

# quantity (lower case, label or machine name without its unit) -> role, counter scope
_QUANTITIES: dict[str, tuple[str, str | None]] = {
    "test time": ("time", None),
    "voltage": ("voltage", None),
    "current": ("current", None),
    "cycle count": ("cycle", None),
    "step id": ("step", None),
    "step index": ("step", None),
    "step count": ("segment", None),
    "step type": ("step_type", None),
    "cycle charging capacity": ("qc", "cycle"),
    "cycle discharging capacity": ("qd", "cycle"),
    "cycle charging energy": ("ec", "cycle"),
    "cycle discharging energy": ("ed", "cycle"),
    "step charging capacity": ("qc", "step"),
    "step discharging capacity": ("qd", "step"),
    "step charging energy": ("ec", "step"),
    "step discharging energy": ("ed", "step"),
    "charging capacity": ("qc", "test"),
    "discharging capacity": ("qd", "test"),
    "charging energy": ("ec", "test"),
    "discharging energy": ("ed", "test"),
    "charge capacity": ("qc", "auto"),  # legacy names
    "discharge capacity": ("qd", "auto"),
    "charge energy": ("ec", "auto"),
    "discharge energy": ("ed", "auto"),
    "temperature t1": ("temperature", None),
    "surface temperature": ("temperature", None),
    "ambient temperature": ("ambient", None),
}
# machine-readable names -> (label, unit)
_MACHINE = {
    "test_time_second": ("test time", "s"),
    "voltage_volt": ("voltage", "V"),
    "current_ampere": ("current", "A"),
    "cycle_count": ("cycle count", "1"),
    "step_count": ("step count", "1"),
    "step_id": ("step id", ""),
    "step_index": ("step id", ""),
    "step_type": ("step type", ""),
    "ambient_temperature_celsius": ("ambient temperature", "degC"),
    "temperature_t1_celsius": ("temperature t1", "degC"),
    "surface_temperature_celsius": ("surface temperature", "degC"),
}
for _scope in ("", "cycle_", "step_"):
    for _what, _u in (("capacity_ah", "Ah"), ("energy_wh", "Wh")):
        for _dir in ("charging", "discharging"):
            _q = f"{_scope.replace('_', ' ')}{_dir} {_what.split('_')[0]}"
            _MACHINE[f"{_scope}{_dir}_{_what}"] = (_q, _u)

# role order (the most specific counter first)
_SCOPE_RANK = {"cycle": 0, "step": 1, "test": 2, "auto": 3}


def _parse(header: str) -> tuple[str, str]:
    """(quantity, unit) of a BDF column header."""
    h = header.strip()
    if h in _MACHINE:
        return _MACHINE[h]
    m = re.match(r"^(.*?)\s*/\s*([^/]+)$", h)
    if m:
        return m.group(1).strip().lower(), m.group(2).strip()
    return h.lower(), ""


def _is_bdf(cells: list[str]) -> bool:
    qs = {_parse(c)[0] for c in cells}
    return {"test time", "voltage", "current"} <= qs and any(
        " / " in c or c in _MACHINE for c in cells
    )


def sniff(s: Sample) -> bool:
    if not s.lines or s.is_binary:
        return False
    first = s.lines[0]
    sep = "\t" if first.count("\t") > first.count(",") else ","
    return _is_bdf([c.strip() for c in first.split(sep)])


def read_bdf(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        first = f.readline()
    sep = "\t" if first.count("\t") > first.count(",") else ","
    df, rows = _read_delimited(path, 1, sep, encoding="utf-8-sig", encoding_errors="replace")
    cells = [str(c).strip() for c in df.columns]
    df.columns = cells
    roles: dict[str, tuple[str, float, str | None]] = {}
    units: dict[str, str] = {}
    for c in cells:
        q, unit = _parse(c)
        if q not in _QUANTITIES:
            continue
        role, scope = _QUANTITIES[q]
        old = roles.get(role)
        if old is not None and _SCOPE_RANK.get(old[2] or "", 9) <= _SCOPE_RANK.get(scope or "", 9):
            continue
        factor = 1.0
        if role in ("time", "voltage", "current", "qc", "qd", "ec", "ed"):
            factor = unit_scale(unit, path, c)
        roles[role] = (c, factor, scope)
        units[role] = unit
    missing = [r for r in ("time", "voltage", "current") if r not in roles]
    if missing:
        want = {"time": "Test Time / s", "voltage": "Voltage / V", "current": "Current / A"}
        raise IngestError(
            path, f"BDF file without {', '.join(want[m] for m in missing)} (header)", 1
        )
    scopes = {roles[r][2] for r in ("qc", "qd") if r in roles}
    scope = scopes.pop() if len(scopes) == 1 else "auto"
    temp = roles.get("temperature") or roles.get("ambient")

    def col(role: str) -> tuple[str, float] | None:
        return (roles[role][0], roles[role][1]) if role in roles else None

    cols = Columns(
        time=col("time"),  # type: ignore[arg-type]
        current=col("current"),  # type: ignore[arg-type]
        voltage=col("voltage"),  # type: ignore[arg-type]
        cycle=roles["cycle"][0] if "cycle" in roles else None,
        step=roles["step"][0] if "step" in roles else None,
        segment=roles["segment"][0] if "segment" in roles else None,
        step_type=roles["step_type"][0] if "step_type" in roles else None,
        qc=col("qc"),
        qd=col("qd"),
        ec=col("ec"),
        ed=col("ed"),
        temperature=(temp[0], "K" if units.get("temperature") == "K" else "C") if temp else None,
        scope=scope,
    )
    return table_from_columns(df, rows, path, cols, direction_of if cols.step_type else None)


def write_bdf(df: pd.DataFrame, out: str | Path) -> Path:
    """Write a normalised cycling table as a Battery Data Format CSV."""
    if df.attrs.get("kind", "cycling") != "cycling":
        raise ValueError("BDF holds cycler time series; an impedance table has no BDF form")
    out = Path(out)
    cyc = df["cycle"].to_numpy()
    step_count = segment_ids(cyc, df["step"].to_numpy(), df["step_type"].to_numpy()) + 1
    table = {
        "Test Time / s": df["test_time_s"],
        "Voltage / V": df["voltage_V"],
        "Current / A": df["current_A"],
        "Cycle Count / 1": df["cycle"],
        "Step Count / 1": step_count,
        "Step ID": df["step"],
        "Step Type": df["step_type"],
        "Cycle Charging Capacity / Ah": df["charge_capacity_Ah"],
        "Cycle Discharging Capacity / Ah": df["discharge_capacity_Ah"],
        "Cycle Charging Energy / Wh": df["charge_energy_Wh"],
        "Cycle Discharging Energy / Wh": df["discharge_energy_Wh"],
    }
    if df["temperature_K"].notna().any():
        table["Temperature T1 / degC"] = df["temperature_K"] - 273.15
    pd.DataFrame(table).to_csv(out, index=False, float_format="%.10g", lineterminator="\n")
    return out


READERS = (
    Reader(
        name="bdf",
        instrument="Battery Data Format",
        description="Battery Data Alliance BDF CSV (labels with units or machine names)",
        sniff=sniff,
        read=read_bdf,
        extensions=(".csv", ".bdf.csv"),
        priority=25,
    ),
)
