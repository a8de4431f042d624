"""Neware BTS files.

- ``neware``: the BTS "regular export" CSV (three nested layers: cycle rows, step rows starting
  with one comma, record rows starting with two; capacity and energy per step). bigmap's own
  reader (none maintained exists for this layout).
- ``neware_record``: the flat "record" export of BTS 8/9 (``DataPoint, Cycle Index, Step Index,
  Step Type, Time, Total Time|Cumulative Time, Current(A), Voltage(V), Capacity(Ah),
  Chg. Cap.(Ah), DChg. Cap.(Ah), Energy(Wh), ...``) as CSV or as the ``record`` sheet of an
  XLSX workbook; units from the headers (``Current(mA)``, ``Capacity(mAh)``). bigmap's own
  reader (openpyxl opens the workbook).
- ``neware_nda``: the binary ``.nda`` and ``.ndax`` files of BTS 7-9, read with NewareNDA
  (D. Cogswell, SES AI, github.com/d-cogswell/NewareNDA, BSD-3-Clause): step capacities in
  mA h, test time in s.

Counters restart with every step; the step type names the direction ("CC Chg", "CCCV_Chg",
"CC DChg", "Rest", ...).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from bigmap.analysis.readers import common
from bigmap.analysis.readers.common import (
    ZERO_CELSIUS,
    _check_complete,
    _durations,
    _durations_arrow,
    _numeric,
    _read_delimited,
    _unique_names,
    _unit_factor,
    counters_by_direction,
    per_cycle_counter,
)
from bigmap.analysis.readers.registry import Reader, Sample
from bigmap.analysis.table import IngestError, finish_table, segment_ids


def sniff_regular(s: Sample) -> bool:
    ln = s.lines
    return (
        len(ln) > 2
        and ln[0].startswith("Cycle Index,")
        and ln[1].startswith(",Step Index")
        and ln[2].startswith(",,")
    )


def read_neware(path: str | Path) -> pd.DataFrame:
    """Neware BTS 'regular export' CSV with cycle, step and record layers (bigmap's own)."""
    path = Path(path)
    raw = path.read_bytes().decode("latin-1")
    lines = raw.splitlines()
    if len(lines) < 4 or not lines[2].startswith(",,"):
        raise IngestError(path, "not a Neware regular export (three header lines expected)", 1)
    rec_header = [c.strip() or f"_{j}" for j, c in enumerate(lines[2].split(","))]
    step_header = [c.strip() for c in lines[1].split(",")]
    rec_idx, step_idx, cyc_idx = [], [], []
    step_rows: list[list[str]] = []
    cyc_vals: list[str] = []
    for i in range(3, len(lines)):
        ln = lines[i]
        if ln.startswith(",,"):
            rec_idx.append(i)
        elif ln.startswith(","):
            step_idx.append(i)
            step_rows.append(ln.split(","))
        elif ln.strip() == "":
            if i != len(lines) - 1:
                raise IngestError(path, "empty line inside the data", i + 1)
        else:
            f = ln.split(",")
            cyc_idx.append(i)
            cyc_vals.append(f[0])
            if len(f) > 9:  # the first step row of a cycle printed on the cycle's line
                step_idx.append(i)
                step_rows.append(["", *f[8:]])
    if not rec_idx:
        raise IngestError(path, "no record rows", 4)
    rec_idx_a = np.asarray(rec_idx)
    rows = rec_idx_a + 1
    body = "\n".join([lines[i] for i in rec_idx])
    names = _unique_names(rec_header)

    def col(*cands: str) -> str:
        for n in cands:
            for c in names:
                if c.replace(" ", "").lower().startswith(n.replace(" ", "").lower()):
                    return c
        raise IngestError(path, f"Neware export without a {cands[0]!r} column", 3)

    c_cur, c_v = col("Current("), col("Voltage(")
    c_cap, c_en, c_tot = col("Capacity("), col("Energy("), col("Total Time")
    c_t1 = next((c for c in names if re.match(r"^T1\s*\(", c)), None)
    factors = {
        c_cur: _unit_factor(c_cur, "A"),
        c_v: _unit_factor(c_v, "V"),
        c_cap: _unit_factor(c_cap, "Ah"),
        c_en: _unit_factor(c_en, "Wh"),
    }
    # fast path (pyarrow, no Python per row); the checked pandas path names a bad row
    fast = common._arrow_block(
        io.BytesIO(body.encode("latin-1")),
        0,
        ",",
        names,
        [c_cur, c_v, c_cap, c_en],
        [c_tot],
        (c_t1,) if c_t1 else (),
    )
    t = _durations_arrow(fast[c_tot]) if fast is not None else None
    if fast is not None and t is not None and len(t) == len(rows):
        cur, volt, cap, en = (
            fast[c].to_numpy().astype(float, copy=False) * factors[c]
            for c in (c_cur, c_v, c_cap, c_en)
        )
        temp = (
            fast[c_t1].to_numpy(zero_copy_only=False).astype(float) + ZERO_CELSIUS
            if c_t1
            else np.full(len(rows), np.nan)
        )
    else:
        cur, volt, cap, en, t, temp = _neware_checked(path, body, names, rows, factors, c_tot, c_t1)
    # step and cycle of each record: the last step/cycle row above it
    sidx = np.asarray(step_idx)
    order = np.argsort(sidx, kind="stable")
    sidx = sidx[order]
    step_rows = [step_rows[k] for k in order]
    s_of = np.searchsorted(sidx, rec_idx_a) - 1
    c_of = np.searchsorted(np.asarray(cyc_idx), rec_idx_a) - 1
    if (s_of < 0).any() or (c_of < 0).any():
        i = int(np.argmax((s_of < 0) | (c_of < 0)))
        raise IngestError(path, "a record before any step or cycle row", int(rows[i]))
    try:
        si = step_header.index("Step Index")
        sn = step_header.index("Step Number")
        st = step_header.index("Step Type")
        s_index = np.array([int(r[si]) for r in step_rows])
        s_number = np.array([int(r[sn]) for r in step_rows])
        s_type = [r[st].strip() for r in step_rows]
        cycles = np.array([int(v) for v in cyc_vals])
    except (ValueError, IndexError) as exc:
        raise IngestError(path, f"malformed step or cycle row: {exc}") from None
    kinds = np.array([_neware_kind(x) for x in s_type], dtype=object)
    kind = kinds[s_of]
    cyc = cycles[c_of]
    seg = segment_ids(cyc, s_number[s_of])
    out = {
        "test_time_s": t,
        "cycle": cyc,
        "step": s_index[s_of],
        "step_type": kind,
        "current_A": cur,
        "voltage_V": volt,
        **counters_by_direction(cyc, kind, seg, cap, en),
        "temperature_K": temp,
        "source_row": rows,
    }
    return finish_table(out, path)


def _neware_checked(
    path: Path,
    body: str,
    names: list[str],
    rows: np.ndarray,
    factors: dict[str, float],
    c_tot: str,
    c_t1: str | None,
) -> tuple[np.ndarray, ...]:
    """The Neware record columns through pandas with a check of every cell (names the row)."""
    try:
        df = pd.read_csv(io.StringIO(body), header=None, names=names, low_memory=False)
    except pd.errors.ParserError as exc:
        m = re.search(r"line (\d+)", str(exc))
        row = int(rows[int(m.group(1)) - 1]) if m else None
        raise IngestError(path, f"malformed record row: {exc}", row) from None
    c_cur, c_v, c_cap, c_en = factors
    cur = _numeric(df, c_cur, path, rows) * factors[c_cur]
    volt = _numeric(df, c_v, path, rows) * factors[c_v]
    cap = _numeric(df, c_cap, path, rows) * factors[c_cap]
    en = _numeric(df, c_en, path, rows) * factors[c_en]
    t = _durations(df[c_tot], path, rows, c_tot)
    _check_complete({c_tot: t, c_cur: cur, c_v: volt, c_cap: cap}, path, rows)
    temp = np.full(len(df), np.nan)
    if c_t1:
        temp = pd.to_numeric(df[c_t1], errors="coerce").to_numpy(dtype=float) + ZERO_CELSIUS
    return cur, volt, cap, en, t, temp


def _neware_kind(step_type: str) -> str:
    s = step_type.replace(" ", "").lower()
    if "dchg" in s or "discharge" in s:
        return "discharge"
    if "chg" in s or "charge" in s:
        return "charge"
    if "rest" in s:
        return "rest"
    return "other"


# ----------------------------------------------------------------------------- record export

_RECORD_NEED = ("Cycle Index", "Step Type", "Current", "Voltage", "Capacity")


def _record_header(cells: list[str]) -> bool:
    base = {re.sub(r"\(.*\)$", "", c).strip() for c in cells}
    return all(n in base for n in _RECORD_NEED) and bool(
        {"Total Time", "Cumulative Time", "Time"} & base
    )


def sniff_record(s: Sample) -> bool:
    if s.is_xlsx:
        return any(
            name.lower() == "record" and rows and _record_header([str(c) for c in rows[0]])
            for name, rows in s.sheets.items()
        )
    return bool(s.lines) and not s.is_binary and _record_header(s.lines[0].split(","))


def read_neware_record(path: str | Path) -> pd.DataFrame:
    """The flat record export of Neware BTS (CSV, or the ``record`` sheet of an XLSX)."""
    path = Path(path)
    if path.read_bytes()[:4] == b"PK\x03\x04":
        from bigmap.analysis.readers.excel import read_sheet

        df, rows = read_sheet(path, lambda name, head: name.lower() == "record")
    else:
        df, rows = _read_delimited(path, 1, ",", encoding="utf-8", encoding_errors="replace")
    df.columns = [str(c).strip() for c in df.columns]
    if len(df) == 0:
        raise IngestError(path, "no data rows", 2)
    return neware_record_table(df, rows, path)


def _col(df: pd.DataFrame, path: Path, *names: str, required: bool = True) -> str | None:
    for n in names:
        for c in df.columns:
            if re.sub(r"\(.*\)$", "", c).strip() == n:
                return c
    if required:
        raise IngestError(path, f"Neware export without a {names[0]!r} column", 1)
    return None


def neware_record_table(df: pd.DataFrame, rows: np.ndarray, path: Path) -> pd.DataFrame:
    c_cyc = _col(df, path, "Cycle Index", "Cycle ID")
    c_step = _col(df, path, "Step Index", "Step ID")
    c_type = _col(df, path, "Step Type")
    c_time = _col(df, path, "Total Time", "Cumulative Time", "Test Time")
    c_cur, c_v = _col(df, path, "Current"), _col(df, path, "Voltage")
    c_cap, c_en = _col(df, path, "Capacity"), _col(df, path, "Energy", required=False)
    c_t1 = _col(df, path, "T1", required=False)
    t = _durations(df[c_time], path, rows, c_time)
    cur = _numeric(df, c_cur, path, rows) * _unit_factor(c_cur, "A")
    v = _numeric(df, c_v, path, rows) * _unit_factor(c_v, "V")
    cap = _numeric(df, c_cap, path, rows) * _unit_factor(c_cap, "Ah")
    en = _numeric(df, c_en, path, rows) * _unit_factor(c_en, "Wh") if c_en else np.zeros(len(df))
    cyc = _numeric(df, c_cyc, path, rows)
    step = _numeric(df, c_step, path, rows)
    _check_complete({c_time: t, c_cur: cur, c_v: v, c_cyc: cyc, c_step: step}, path, rows)
    types = df[c_type].astype("string").fillna("").to_numpy(dtype=object)
    kind = np.array([_neware_kind(str(x)) for x in types], dtype=object)
    cyc_i = cyc.astype(np.int64)
    seg = segment_ids(cyc_i, step)
    is_c, is_d = kind == "charge", kind == "discharge"
    cur = np.where(is_d, -np.abs(cur), np.where(is_c, np.abs(cur), cur))
    temp = (
        pd.to_numeric(df[c_t1], errors="coerce").to_numpy(dtype=float) + ZERO_CELSIUS
        if c_t1
        else np.full(len(df), np.nan)
    )
    out = {
        "test_time_s": t,
        "cycle": cyc_i,
        "step": step.astype(np.int64),
        "step_type": kind,
        "current_A": cur,
        "voltage_V": v,
        **counters_by_direction(cyc_i, kind, seg, cap, en),
        "temperature_K": temp,
        "source_row": rows,
    }
    return finish_table(out, path)


# ----------------------------------------------------------------------------- NDA / NDAX


def sniff_nda(s: Sample) -> bool:
    if s.head.startswith(b"NEWARE"):
        return True
    names = s.zip_names
    return any(n.startswith("data") and n.endswith(".ndc") for n in names) or (
        "Step.xml" in names and "TestInfo.xml" in names
    )


def read_neware_nda(path: str | Path) -> pd.DataFrame:
    """Neware .nda/.ndax through NewareNDA."""
    import logging
    import warnings

    import NewareNDA

    path = Path(path)
    logging.getLogger("NewareNDA").setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = NewareNDA.read(str(path))
    except Exception as exc:  # noqa: BLE001 - NewareNDA raises many kinds; say what it said
        raise IngestError(path, f"NewareNDA cannot read it: {type(exc).__name__}: {exc}") from None
    if len(raw) == 0:
        raise IngestError(path, "no data records")
    need = ["Cycle", "Step", "Status", "Time", "Voltage", "Current(mA)"]
    missing = [c for c in need if c not in raw.columns]
    if missing:
        raise IngestError(path, f"NewareNDA gave no columns {missing}")
    cyc = raw["Cycle"].to_numpy(dtype=np.int64)
    seg = raw["Step"].to_numpy(dtype=np.int64)
    kind = np.array([_neware_kind(str(x)) for x in raw["Status"].astype(str)], dtype=object)

    def col(name: str, scale: float) -> np.ndarray:
        return raw[name].to_numpy(dtype=float) * scale if name in raw else np.zeros(len(raw))

    temp = np.full(len(raw), np.nan)
    if "T1" in raw:
        temp = raw["T1"].to_numpy(dtype=float) + ZERO_CELSIUS
    rows = (
        raw["Index"].to_numpy(dtype=np.int64)
        if "Index" in raw
        else np.arange(1, len(raw) + 1, dtype=np.int64)
    )
    out = {
        "test_time_s": raw["Time"].to_numpy(dtype=float),
        "cycle": cyc,
        "step": raw["Step_Index"].to_numpy(dtype=np.int64) if "Step_Index" in raw else seg,
        "step_type": kind,
        "current_A": col("Current(mA)", 1e-3),
        "voltage_V": raw["Voltage"].to_numpy(dtype=float),
        "charge_capacity_Ah": per_cycle_counter(
            cyc, col("Charge_Capacity(mAh)", 1e-3), "step", seg
        ),
        "discharge_capacity_Ah": per_cycle_counter(
            cyc, col("Discharge_Capacity(mAh)", 1e-3), "step", seg
        ),
        "charge_energy_Wh": per_cycle_counter(cyc, col("Charge_Energy(mWh)", 1e-3), "step", seg),
        "discharge_energy_Wh": per_cycle_counter(
            cyc, col("Discharge_Energy(mWh)", 1e-3), "step", seg
        ),
        "temperature_K": temp,
        "source_row": rows,
    }
    return finish_table(out, path)


READERS = (
    Reader(
        name="neware",
        instrument="Neware",
        description="Neware BTS regular export CSV (cycle, step and record layers)",
        sniff=sniff_regular,
        read=read_neware,
        extensions=(".csv",),
        priority=30,
    ),
    Reader(
        name="neware_record",
        instrument="Neware",
        description="Neware BTS record export, CSV or XLSX (sheet 'record')",
        sniff=sniff_record,
        read=read_neware_record,
        extensions=(".csv", ".xlsx"),
        priority=35,
    ),
    Reader(
        name="neware_nda",
        instrument="Neware",
        description="Neware BTS binary .nda / .ndax",
        sniff=sniff_nda,
        read=read_neware_nda,
        library="NewareNDA",
        extensions=(".nda", ".ndax"),
        priority=10,
    ),
)
