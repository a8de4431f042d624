"""The cycling table from a frame whose columns a reader has identified (``Columns``): the
part that Basytec, Novonix, PEC, Landt, Digatron and BDF readers share. A reader finds the
header, reads the block, says which column is what and in which unit, and how the
instrument's charge counters reset; this module checks every cell and builds the table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bigmap.analysis.readers.common import (
    _check_complete,
    _durations,
    _numeric,
    celsius_to_kelvin,
    energy_from_capacity,
    integrate_current,
    per_cycle_counter,
)
from bigmap.analysis.table import IngestError, finish_table, segment_ids, step_type_from_current

Col = tuple[str, float]  # (column, factor to the table's unit)


@dataclass
class Columns:
    time: Col  # factor 0: durations such as "02:03:04"
    current: Col
    voltage: Col
    cycle: str | None = None
    step: str | None = None
    segment: str | None = None  # a counter of step executions (for step-scope counters)
    step_type: str | None = None  # a label column, read with ``label``
    qc: Col | None = None
    qd: Col | None = None
    ec: Col | None = None
    ed: Col | None = None
    q: Col | None = None  # one counter for both directions (split by direction)
    e: Col | None = None
    temperature: tuple[str, str] | None = None  # (column, unit: C or K)
    scope: str = "step"  # how the counters reset: step, cycle, test or auto
    current_sign: str = "signed"  # or "unsigned": the step type gives the direction


def table_from_columns(
    df: pd.DataFrame,
    rows: np.ndarray,
    path: Path,
    c: Columns,
    label: Callable[[str], str] | None = None,
) -> pd.DataFrame:
    if len(df) == 0:
        raise IngestError(path, "no data rows", int(rows[0]) if len(rows) else None)

    def num(col: Col) -> np.ndarray:
        return _numeric(df, col[0], path, rows) * col[1]

    t = _durations(df[c.time[0]], path, rows, c.time[0]) if c.time[1] == 0 else num(c.time)
    cur, v = num(c.current), num(c.voltage)
    n = len(df)
    cyc = _numeric(df, c.cycle, path, rows) if c.cycle else np.zeros(n)
    step = _numeric(df, c.step, path, rows) if c.step else np.zeros(n)
    checks = {c.time[0]: t, c.current[0]: cur, c.voltage[0]: v}
    if c.cycle:
        checks[c.cycle] = cyc
    _check_complete(checks, path, rows)
    cyc_i = np.nan_to_num(cyc).astype(np.int64)
    step_i = np.nan_to_num(step).astype(np.int64)
    if c.step_type and label is not None:
        labels = df[c.step_type].astype("string").fillna("").to_numpy(dtype=object)
        uniq = {x: label(str(x)) for x in pd.unique(labels)}
        kind = np.array([uniq[x] for x in labels], dtype=object)
        if c.current_sign == "unsigned":
            cur = np.where(
                kind == "discharge", -np.abs(cur), np.where(kind == "charge", np.abs(cur), cur)
            )
    else:
        kind = step_type_from_current(cur)
    is_c, is_d = kind == "charge", kind == "discharge"
    if c.segment:
        seg = segment_ids(cyc_i, np.nan_to_num(_numeric(df, c.segment, path, rows)))
    else:
        seg = segment_ids(cyc_i, step_i, kind)

    def counter(col: Col | None, both: Col | None, mask: np.ndarray) -> np.ndarray | None:
        if col is not None:
            return per_cycle_counter(cyc_i, num(col), c.scope, seg)
        if both is not None:
            return per_cycle_counter(cyc_i, np.where(mask, np.abs(num(both)), 0.0), c.scope, seg)
        return None

    qc, qd = counter(c.qc, c.q, is_c), counter(c.qd, c.q, is_d)
    if qc is None or qd is None:
        qc, qd = integrate_current(t, cur, cyc_i)
    ec, ed = counter(c.ec, c.e, is_c), counter(c.ed, c.e, is_d)
    if ec is None or ed is None:
        ec, ed = energy_from_capacity(qc, v, cyc_i), energy_from_capacity(qd, v, cyc_i)
    temp = np.full(n, np.nan)
    if c.temperature:
        temp = celsius_to_kelvin(_numeric(df, c.temperature[0], path, rows), c.temperature[1])
    out = {
        "test_time_s": t,
        "cycle": cyc_i,
        "step": step_i,
        "step_type": kind,
        "current_A": cur,
        "voltage_V": v,
        "charge_capacity_Ah": qc,
        "discharge_capacity_Ah": qd,
        "charge_energy_Wh": ec,
        "discharge_energy_Wh": ed,
        "temperature_K": temp,
        "source_row": rows,
    }
    return finish_table(out, path)


def direction_of(label: str) -> str:
    """charge / discharge / rest / other from a cycler's step label ("CC_DChg", "CCCV Chg",
    "discharge CC", "Pause", "Rest", "OCV", ...)."""
    s = label.replace(" ", "").replace("_", "").lower()
    if not s:
        return "other"
    if "dchg" in s or "dis" in s or s in {"d", "dch"}:
        return "discharge"
    if "chg" in s or "charge" in s or s in {"c", "ch"}:
        return "charge"
    if any(w in s for w in ("rest", "pause", "idle", "ocv", "opencircuit", "wait")):
        return "rest"
    return "other"
