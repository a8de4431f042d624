"""A plain delimited file (CSV, TSV, semicolon) whose header names at least time, current
and voltage (common spellings and units such as ``Current(mA)``, ``time/h``, ``Temperature
[°C]`` are recognised), or a CSV of the normalised table itself. The last resort of detection.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bigmap.analysis.readers.common import (
    ZERO_CELSIUS,
    _check_complete,
    _head_lines,
    _numeric,
    _read_delimited,
    _unit_factor,
)
from bigmap.analysis.readers.registry import Reader, Sample
from bigmap.analysis.table import IngestError, finish_table, step_type_from_current

# normalised name -> recognised header spellings (compared case-insensitively without units)
_CSV_ALIASES: dict[str, tuple[str, ...]] = {
    "test_time_s": ("test_time_s", "test_time", "time", "total time", "testtime", "time/s", "t"),
    "cycle": ("cycle", "cycle_index", "cycle index", "cycle number", "cyc#", "cycle_number"),
    "step": ("step", "step_index", "step index", "ns"),
    "current_A": ("current_a", "current", "i", "amps"),
    "voltage_V": ("voltage_v", "voltage", "ewe", "u", "volts", "ecell", "potential"),
    "charge_capacity_Ah": ("charge_capacity_ah", "charge_capacity", "charge capacity", "q charge"),
    "discharge_capacity_Ah": (
        "discharge_capacity_ah",
        "discharge_capacity",
        "discharge capacity",
        "q discharge",
    ),
    "charge_energy_Wh": ("charge_energy_wh", "charge_energy", "charge energy"),
    "discharge_energy_Wh": ("discharge_energy_wh", "discharge_energy", "discharge energy"),
    "temperature_K": ("temperature_k", "temperature", "temp", "t1"),
    "step_type": ("step_type", "state", "step type"),
}
_BASE_UNIT = {
    "test_time_s": "s",
    "current_A": "A",
    "voltage_V": "V",
    "charge_capacity_Ah": "Ah",
    "discharge_capacity_Ah": "Ah",
    "charge_energy_Wh": "Wh",
    "discharge_energy_Wh": "Wh",
}


def _split_unit(header: str) -> tuple[str, str]:
    u = re.match(r"^\s*(.*?)_(s|h|min|a|ma|v|mv|ah|mah|wh|mwh|k|c)\s*$", header, re.IGNORECASE)
    if u:
        return u.group(1).strip().lower(), u.group(2)
    m = re.match(r"^\s*(.*?)\s*(?:[(\[]\s*([^)\]]*)\s*[)\]]|/\s*([^/]+))?\s*$", header)
    if not m:
        return header.strip().lower(), ""
    return m.group(1).strip().lower(), (m.group(2) or m.group(3) or "").strip()


def read_csv_generic(path: str | Path) -> pd.DataFrame:
    """A plain CSV (or TSV/semicolon) with a header row; units in brackets are honoured
    (``Current(mA)``, ``time/h``, ``Temperature [°C]``)."""
    path = Path(path)
    first = _head_lines(path, 1)
    if not first:
        raise IngestError(path, "the file is empty")
    header = first[0]
    sep = max([",", "\t", ";"], key=header.count)
    with open(path, "rb") as f:
        head = f.read(65536)
    try:
        head.decode("utf-8")
        encoding = "utf-8"
    except UnicodeDecodeError as exc:
        # a multi-byte character cut at the end of the sample is still UTF-8
        encoding = "utf-8" if exc.start >= len(head) - 3 else "latin-1"
    df, rows = _read_delimited(path, 1, sep, encoding=encoding, encoding_errors="replace")
    mapping: dict[str, tuple[str, str]] = {}
    for c in df.columns:
        name, unit = _split_unit(str(c))
        full = str(c).strip().lower()
        for target, aliases in _CSV_ALIASES.items():
            if target not in mapping and (full in aliases or name in aliases):
                mapping[target] = (c, unit)
                break
    for need in ("test_time_s", "current_A", "voltage_V"):
        if need not in mapping:
            raise IngestError(
                path,
                "not a cycler export bigmap recognises, and as a plain CSV: "
                f"no column for {need} in the header (found: {', '.join(map(str, df.columns))})",
                1,
            )
    if len(df) == 0:
        raise IngestError(path, "no data rows", 2)
    out: dict[str, Any] = {"source_row": rows}
    for target, (c, unit) in mapping.items():
        if target == "step_type":
            out[target] = df[c].astype("string").str.strip().str.lower().to_numpy(dtype=object)
            continue
        x = _numeric(df, c, path, rows)
        if target == "test_time_s":
            x = x * {"": 1, "s": 1, "min": 60, "h": 3600, "ms": 1e-3}.get(unit.lower(), 1)
        elif target == "temperature_K":
            if unit.replace("°", "").lower() in {"c", "degc", "deg c"} or (
                not unit and np.nanmedian(x) < 150
            ):
                x = x + ZERO_CELSIUS
        elif target in _BASE_UNIT and unit:
            x = x * _unit_factor(f"({unit})", _BASE_UNIT[target])
        out[target] = x
    _check_complete({k: out[k] for k in ("test_time_s", "current_A", "voltage_V")}, path, rows)
    n = len(rows)
    out["cycle"] = np.nan_to_num(out.get("cycle", np.zeros(n))).astype(np.int64)
    out["step"] = np.nan_to_num(out.get("step", np.zeros(n))).astype(np.int64)
    st = out.get("step_type")
    if st is None or not set(np.unique(st.astype(str))) <= {"charge", "discharge", "rest", "other"}:
        out["step_type"] = step_type_from_current(out["current_A"])
    if "charge_capacity_Ah" not in out or "discharge_capacity_Ah" not in out:
        # integrate the current (trapezoidal) within each cycle
        t, i = out["test_time_s"], out["current_A"]
        dq = np.r_[0.0, 0.5 * (i[1:] + i[:-1]) * np.diff(t)] / 3600.0
        dq[np.r_[True, out["cycle"][1:] != out["cycle"][:-1]]] = 0.0
        grp = pd.Series(out["cycle"])
        out["charge_capacity_Ah"] = pd.Series(np.maximum(dq, 0)).groupby(grp).cumsum().to_numpy()
        out["discharge_capacity_Ah"] = (
            pd.Series(np.maximum(-dq, 0)).groupby(grp).cumsum().to_numpy()
        )
        if "charge_energy_Wh" not in out:
            de = dq * out["voltage_V"]
            out["charge_energy_Wh"] = pd.Series(np.maximum(de, 0)).groupby(grp).cumsum().to_numpy()
            out["discharge_energy_Wh"] = (
                pd.Series(np.maximum(-de, 0)).groupby(grp).cumsum().to_numpy()
            )
    return finish_table(out, path)


def sniff(s: Sample) -> bool:
    """Any delimited text whose first line names time, current and voltage; and, as the last
    resort, any text file named .csv/.tsv/.txt (its error then lists the columns it found)."""
    if not s.lines or s.is_binary:
        return False
    if s.suffix in (".csv", ".tsv", ".txt"):
        return True
    header = s.lines[0]
    sep = max([",", "\t", ";"], key=header.count)
    found = set()
    for c in header.split(sep):
        name, _ = _split_unit(c)
        full = c.strip().lower()
        for target in ("test_time_s", "current_A", "voltage_V"):
            if full in _CSV_ALIASES[target] or name in _CSV_ALIASES[target]:
                found.add(target)
    return len(found) == 3


READERS = (
    Reader(
        name="csv",
        instrument="any",
        description="plain CSV/TSV with time, current and voltage columns (units in headers)",
        sniff=sniff,
        read=read_csv_generic,
        extensions=(".csv", ".txt", ".tsv"),
        priority=90,
    ),
)
