"""Readers of the text exports of Basytec, Novonix, PEC, Landt/LANHE and Digatron cyclers:
bigmap's own (no maintained, installable Python reader of these exports exists; PyProBE and
the Battery Data Alliance's ``bdf`` package read some of them through polars and serve as
independent checks outside the test suite). Each finds its header, says which column is
what and how its counters reset, and leaves the rest to ``mapped.table_from_columns``.

- Basytec: ``~Resultfile from Basytec Battery Test System``, ``~``-prefixed preamble, the last
  ``~`` line is the header (``Time[s]  DataSet ... U[V]  I[A] ... Ah-Cyc-Charge
  Ah-Cyc-Discharge ... Cyc-Count``), tab separated; per-cycle counters.
- Novonix: ``[Summary] ... [Data]`` then ``Date and Time, Cycle Number, Step Type, Run Time (h),
  ..., Current (A), Potential (V), Capacity (Ah), ..., Energy (Wh), ..., Step Number``; step
  counters; step type codes (beep's ``novonix_conversion.yaml``: 0 rest, 1 CC charge, 2 CC
  discharge, 7 CCCV charge, 8 CV hold charge, 9 CCCV discharge, 10 CV hold discharge). Some
  exports quote every whole line; that is undone.
- PEC: a ``key:,value`` preamble, then ``Test,Cell,Rack,...,Step,[Instruction Name,]Cycle,
  Total Time (Seconds | Hours in hh:mm:ss.xxx), ..., Voltage (V|mV), Current (A|mA), Charge
  Capacity (mAh), Discharge Capacity (mAh), Charge Energy (mWh) | Charge Capacity (mWh), ...``;
  per-cycle counters.
- Landt/LANHE CSV (as SINTEF exports it; the Battery Data Alliance's ``landt_csv``): a
  ``cell model:,...`` preamble, then ``channel_index, cycle_index, step_index, ...,
  test_time_s, step_time_s, current_A, voltage_V, discharge_capacity_Ah, charge_capacity_Ah,
  ..., step_name``; step counters.
- Digatron: ``Prog Time``/``Program Duration#<unit>``, ``Voltage``, ``Current``, ``Step``,
  ``Status``, ``AhCha``/``AhDch`` or ``AhStep`` (column names as the Battery Data Alliance's
  ``bdf`` normaliser documents them, Apache-2.0). No real Digatron export could be found for
  the tests: this reader is checked on a file written by hand in that layout only.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from bigmap.analysis.readers.common import _head_lines, _read_delimited, delimited_header
from bigmap.analysis.readers.mapped import Columns, direction_of, table_from_columns
from bigmap.analysis.readers.registry import Reader, Sample
from bigmap.analysis.table import IngestError

HEAD = 200


def _pick(cells: list[str], *cands: tuple[str, float]) -> tuple[str, float] | None:
    for name, f in cands:
        if name in cells:
            return name, f
    return None


def _pick_re(cells: list[str], pattern: str) -> str | None:
    return next((c for c in cells if re.match(pattern, c)), None)


def _need(path: Path, line: int, **found: object) -> None:
    missing = [k for k, v in found.items() if v is None]
    if missing:
        raise IngestError(path, f"no column for {', '.join(missing)} in the header", line)


# ----------------------------------------------------------------------------- Basytec


def sniff_basytec(s: Sample) -> bool:
    return bool(s.lines) and s.lines[0].lstrip("~ ").lower().startswith("resultfile from basytec")


def read_basytec(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    lines = _head_lines(path, HEAD)
    tilde = [i for i, ln in enumerate(lines) if ln.startswith("~")]
    if not tilde or tilde[-1] + 1 >= len(lines):
        raise IngestError(path, "no Basytec header ('~' lines, then data)", 1)
    header = tilde[-1] + 1
    cells = [c.strip() for c in lines[header - 1].lstrip("~").split("\t")]
    df, rows = _read_delimited(path, header, "\t")
    df.columns = cells[: len(df.columns)] + list(df.columns[len(cells) :])
    t = _pick(cells, ("Time[s]", 1), ("Time[min]", 60), ("Time[h]", 3600))
    u = _pick(cells, ("U[V]", 1), ("U[mV]", 1e-3))
    i = _pick(cells, ("I[A]", 1), ("I[mA]", 1e-3))
    _need(path, header, time=t, voltage=u, current=i)
    qc = _pick(cells, ("Ah-Cyc-Charge", 1), ("Ah-Cyc-Charge[Ah]", 1))
    qd = _pick(cells, ("Ah-Cyc-Discharge", 1), ("Ah-Cyc-Discharge[Ah]", 1))
    ec = _pick(cells, ("Wh-Cyc-Charge", 1), ("Wh-Cyc-Charge[Wh]", 1))
    ed = _pick(cells, ("Wh-Cyc-Discharge", 1), ("Wh-Cyc-Discharge[Wh]", 1))
    temp = _pick_re(cells, r"^T1\[")
    cols = Columns(
        time=t,
        current=i,
        voltage=u,
        cycle="Cyc-Count" if "Cyc-Count" in cells else None,
        step="Line" if "Line" in cells else None,
        qc=qc,
        qd=qd,
        ec=ec,
        ed=ed,
        temperature=(temp, "C") if temp else None,
        scope="cycle",
    )
    return table_from_columns(df, rows, path, cols)


# ----------------------------------------------------------------------------- Novonix

_NOVONIX_STEP = {0: "rest", 1: "charge", 2: "discharge", 7: "charge", 8: "charge"}
_NOVONIX_STEP |= {9: "discharge", 10: "discharge"}


def sniff_novonix(s: Sample) -> bool:
    return (
        bool(s.lines)
        and s.lines[0].strip() == "[Summary]"
        and s.has_line(lambda ln: "novonix" in ln.lower(), 6)
    )


def _novonix_label(code: str) -> str:
    try:
        return _NOVONIX_STEP.get(int(float(code)), "other")
    except ValueError:
        return direction_of(code)


def read_novonix(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    raw = path.read_bytes().decode("utf-8", errors="replace")
    lines = raw.splitlines()
    try:
        data = next(i for i, ln in enumerate(lines) if ln.strip().strip('"') == "[Data]")
    except StopIteration:
        raise IngestError(path, "Novonix file without a [Data] section", 1) from None
    header = data + 2
    quoted = lines[header - 1].startswith('"') and lines[header - 1].rstrip().endswith('"')
    if quoted:  # every whole line quoted: unquote, keep the line numbers
        body = "\n".join(ln.strip().strip('"') for ln in lines[header - 1 :])
        df = pd.read_csv(io.StringIO(body), skip_blank_lines=False, low_memory=False)
        rows = np.arange(header + 1, header + 1 + len(df), dtype=np.int64)
        keep = ~df.isna().all(axis=1).to_numpy()
        df, rows = df[keep].reset_index(drop=True), rows[keep]
    else:
        df, rows = _read_delimited(path, header, ",", encoding="utf-8", encoding_errors="replace")
    cells = [str(c).strip() for c in df.columns]
    df.columns = cells
    t = _pick(cells, ("Run Time (h)", 3600), ("Run Time (s)", 1), ("Test Time (h)", 3600))
    i = _pick(cells, ("Current (A)", 1), ("Current (mA)", 1e-3))
    u = _pick(cells, ("Potential (V)", 1), ("Voltage (V)", 1), ("Cell Voltage (V)", 1))
    _need(path, header, time=t, current=i, voltage=u)
    temp = _pick_re(cells, r"^Temperature \(")
    cols = Columns(
        time=t,
        current=i,
        voltage=u,
        cycle="Cycle Number" if "Cycle Number" in cells else None,
        step="Step Number" if "Step Number" in cells else None,
        segment="Step Number" if "Step Number" in cells else None,
        step_type="Step Type" if "Step Type" in cells else None,
        q=_pick(cells, ("Capacity (Ah)", 1), ("Capacity (mAh)", 1e-3)),
        e=_pick(cells, ("Energy (Wh)", 1), ("Energy (mWh)", 1e-3)),
        temperature=(temp, "C") if temp else None,
        scope="step",
    )
    return table_from_columns(df, rows, path, cols, _novonix_label)


# ----------------------------------------------------------------------------- PEC


def _pec_header(cells: list[str]) -> bool:
    return (
        len(cells) > 8
        and cells[0] == "Test"
        and "Step" in cells
        and "Cycle" in cells
        and any(c.startswith("Total Time") for c in cells)
    )


def sniff_pec(s: Sample) -> bool:
    return delimited_header(s.lines, _pec_header, (",",)) is not None


def read_pec(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    found = delimited_header(_head_lines(path, HEAD), _pec_header, (",",))
    if found is None:
        raise IngestError(path, "no PEC column header ('Test,Cell,...,Cycle,Total Time')", 1)
    header, sep, cells = found
    df, rows = _read_delimited(path, header, sep)
    df.columns = cells[: len(df.columns)] + list(df.columns[len(cells) :])
    t = _pick(
        cells,
        ("Total Time (Seconds)", 1),
        ("Total Time (Hours in hh:mm:ss.xxx)", 0),
        ("Total Time (Hours)", 3600),
    )
    u = _pick(cells, ("Voltage (V)", 1), ("Voltage (mV)", 1e-3))
    i = _pick(cells, ("Current (A)", 1), ("Current (mA)", 1e-3))
    _need(path, header, time=t, voltage=u, current=i)
    cols = Columns(
        time=t,
        current=i,
        voltage=u,
        cycle="Cycle",
        step="Step",
        qc=_pick(cells, ("Charge Capacity (mAh)", 1e-3), ("Charge Capacity (Ah)", 1)),
        qd=_pick(cells, ("Discharge Capacity (mAh)", 1e-3), ("Discharge Capacity (Ah)", 1)),
        # older PEC exports call the energy "Charge Capacity (mWh)"
        ec=_pick(cells, ("Charge Energy (mWh)", 1e-3), ("Charge Capacity (mWh)", 1e-3)),
        ed=_pick(cells, ("Discharge Energy (mWh)", 1e-3), ("Discharge Capacity (mWh)", 1e-3)),
        scope="cycle",
    )
    return table_from_columns(df, rows, path, cols)


# ----------------------------------------------------------------------------- Landt / LANHE


def _landt_header(cells: list[str]) -> bool:
    return {"test_time_s", "current_A", "voltage_V", "step_index"} <= set(cells) and (
        "step_name" in cells or "channel_index" in cells
    )


def sniff_landt(s: Sample) -> bool:
    return delimited_header(s.lines[:40], _landt_header, (",", "\t")) is not None


def read_landt(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    found = delimited_header(_head_lines(path, 40), _landt_header, (",", "\t"))
    if found is None:
        raise IngestError(path, "no Landt column header (test_time_s, current_A, ...)", 1)
    header, sep, cells = found
    df, rows = _read_delimited(path, header, sep)
    df.columns = cells[: len(df.columns)] + list(df.columns[len(cells) :])

    def unit_col(prefix: str, base: str) -> tuple[str, float] | None:
        for u, f in ((base, 1.0), ("m" + base, 1e-3)):
            if f"{prefix}_{u}" in cells:
                return f"{prefix}_{u}", f
        return None

    temp = next((c for c in cells if re.match(r"^temperature_1_(C|K)$", c)), None)
    cols = Columns(
        time=("test_time_s", 1),
        current=("current_A", 1),
        voltage=("voltage_V", 1),
        cycle="cycle_index" if "cycle_index" in cells else None,
        step="step_index",
        step_type="step_name" if "step_name" in cells else None,
        qc=unit_col("charge_capacity", "Ah"),
        qd=unit_col("discharge_capacity", "Ah"),
        ec=unit_col("charge_energy", "Wh"),
        ed=unit_col("discharge_energy", "Wh"),
        temperature=(temp, temp[-1]) if temp else None,
        scope="step",
    )
    return table_from_columns(df, rows, path, cols, direction_of)


# ----------------------------------------------------------------------------- Digatron


def _digatron_header(cells: list[str]) -> bool:
    base = {c.split("#")[0].strip() for c in cells}
    return (
        bool({"Prog Time", "Program Duration", "Program Time"} & base)
        and {
            "Voltage",
            "Current",
        }
        <= base
    )


def sniff_digatron(s: Sample) -> bool:
    return delimited_header(s.lines[:40], _digatron_header) is not None


def _digatron_label(status: str) -> str:
    s = status.strip().lower()
    if s.startswith(("cha", "chg")):
        return "charge"
    if s.startswith(("dch", "dis")):
        return "discharge"
    if s.startswith(("pau", "rest", "ocv")):
        return "rest"
    return direction_of(status)


def read_digatron(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    found = delimited_header(_head_lines(path, 40), _digatron_header)
    if found is None:
        raise IngestError(path, "no Digatron column header (Prog Time, Voltage, Current)", 1)
    header, sep, cells = found
    decimal = "," if sep == ";" else "."
    df, rows = _read_delimited(path, header, sep, decimal=decimal)
    df.columns = cells[: len(df.columns)] + list(df.columns[len(cells) :])
    # a units row under the header ("[V]", "h:m:s", ...) is skipped
    first = df.iloc[0].astype("string").str.strip().fillna("")
    if (first.str.startswith("[") | first.str.contains(r"^[a-zA-Z°:/%]+$", regex=True)).sum() > len(
        cells
    ) // 2:
        df, rows = df.iloc[1:].reset_index(drop=True), rows[1:]

    def col(base: str, units: dict[str, float]) -> tuple[str, float] | None:
        for c in cells:
            b, _, u = c.partition("#")
            if b.strip() == base:
                if not u:
                    return c, next(iter(units.values()))
                f = units.get(u.strip())
                if f is None:
                    raise IngestError(path, f"column {c!r}: unknown unit {u!r}", header)
                return c, f
        return None

    time_units = {"s": 1.0, "h": 3600.0, "min": 60.0}
    t = col("Program Duration", time_units) or col("Program Time", time_units)
    if t is None and "Prog Time" in cells:
        t = ("Prog Time", 0)
    ah = {"Ah": 1.0, "mAh": 1e-3}
    wh = {"Wh": 1.0, "mWh": 1e-3}
    qc, qd = col("AhCha", ah), col("AhDch", ah)
    step_q = col("AhStep", ah)
    cols = Columns(
        time=t,  # type: ignore[arg-type]
        current=col("Current", {"A": 1.0, "mA": 1e-3}),  # type: ignore[arg-type]
        voltage=col("Voltage", {"V": 1.0, "mV": 1e-3}),  # type: ignore[arg-type]
        cycle=next((c for c in cells if c.split("#")[0].strip() in ("Cycle", "Cyc")), None),
        step="Step" if "Step" in cells else None,
        step_type="Status" if "Status" in cells else None,
        qc=qc,
        qd=qd,
        ec=col("WhCha", wh),
        ed=col("WhDch", wh),
        q=None if qc and qd else step_q,
        e=None if qc and qd else col("WhStep", wh),
        scope="auto" if qc and qd else "step",
    )
    _need(path, header, time=cols.time, current=cols.current, voltage=cols.voltage)
    return table_from_columns(df, rows, path, cols, _digatron_label)


READERS = (
    Reader(
        "basytec",
        "Basytec",
        "Basytec result file (.txt)",
        sniff_basytec,
        read_basytec,
        extensions=(".txt",),
        priority=20,
    ),
    Reader(
        "novonix",
        "Novonix",
        "Novonix UHPC/HPC CSV ([Summary] ... [Data])",
        sniff_novonix,
        read_novonix,
        extensions=(".csv",),
        priority=20,
    ),
    Reader(
        "pec",
        "PEC",
        "PEC SBT/ACT CSV export",
        sniff_pec,
        read_pec,
        extensions=(".csv",),
        priority=40,
    ),
    Reader(
        "landt",
        "Landt/LANHE",
        "Landt/LANHE CSV export (SINTEF layout)",
        sniff_landt,
        read_landt,
        extensions=(".csv",),
        priority=40,
    ),
    Reader(
        "digatron",
        "Digatron",
        "Digatron CSV export (Prog Time, AhCha/AhDch)",
        sniff_digatron,
        read_digatron,
        extensions=(".csv",),
        priority=45,
    ),
)
