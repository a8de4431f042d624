"""Maccor text exports (bigmap's own reader: no maintained Python reader of these exports
exists that is installable here; cellpy's ``maccor_txt`` covers some dialects and serves as the
independent check in ``benchmarks/corpus_crosscheck.py``).

Dialects (all recognised by their column header, wherever it is in the first lines):

- MIMS "Rec#" export: a header block (none, or ``Today's Date ...`` on one line, or a few
  ``key<TAB>value`` lines), then ``Rec#  Cyc#  Step  TestTime  StepTime  Amp-hr  Watt-hr  Amps
  Volts  State ...`` tab separated. The test time is a duration (``"1d 02:03:04.5"``), or a
  number in the unit of its header (``Test (Sec)``, ``Test (Min)``, ``Test (Hr)``).
- MIMS "Rec / Cycle P / Cycle C" export (``Name:``/``Channel:``/``Tester`` block): ``Cap. [Ah]``,
  ``Ener. [Wh]``, ``Current [A]``, ``Voltage [V]``, ``Md`` (the state), a blank line after the
  header; ``TestTime`` a plain number whose unit the export does not state: it is found by
  comparing it with the ``DPT Time`` clock column (Maccor writes minutes there).
- Comma-separated export (``Rec,Cycle C,Step,Test Time (sec),...,Capacity,Energy,Current,
  Voltage``) with or without a state column.

Counters: ``Amp-hr``/``Watt-hr`` (and their aliases) restart with every step; ``Amps`` is
unsigned and the state (C/D/R/O) gives the direction. Without a state column the sign of the
current does.

Speed: a clean file takes one pass of pyarrow's CSV reader (only the columns the table needs,
durations by a vectorised RE2 regex); at the first sign of trouble the checked pandas path
reads it again and names the bad row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bigmap.analysis.readers import common
from bigmap.analysis.readers.common import (
    ZERO_CELSIUS,
    _check_complete,
    _durations,
    _durations_arrow,
    _head_lines,
    _line_numbers,
    _numeric,
    _read_delimited,
    _unique_names,
    counters_by_direction,
)
from bigmap.analysis.readers.registry import Reader, Sample
from bigmap.analysis.table import IngestError, finish_table, segment_ids

# role -> (header, factor to the table's unit); the first header found wins
_ROLES: dict[str, tuple[tuple[str, float], ...]] = {
    "cycle": (("Cyc#", 1), ("Cycle C", 1), ("Cycle", 1)),
    "step": (("Step", 1),),
    "time": (
        ("TestTime", 0),  # a duration, or a number in a unit the header does not state
        ("Test Time (sec)", 1),
        ("Test Time (s)", 1),
        ("Test (Sec)", 1),
        ("Test (Min)", 60),
        ("Test (Hr)", 3600),
        ("Test Time", 0),
    ),
    "capacity": (
        ("Amp-hr", 1),
        ("mAmp-hr", 1e-3),
        ("Cap. [Ah]", 1),
        ("Cap. [mAh]", 1e-3),
        ("Capacity", 1),
        ("Capacity (Ah)", 1),
    ),
    "energy": (
        ("Watt-hr", 1),
        ("mWatt-hr", 1e-3),
        ("Ener. [Wh]", 1),
        ("Ener. [mWh]", 1e-3),
        ("Energy", 1),
        ("Energy (Wh)", 1),
    ),
    "current": (
        ("Amps", 1),
        ("mAmps", 1e-3),
        ("Current [A]", 1),
        ("Current [mA]", 1e-3),
        ("Current", 1),
        ("Current (A)", 1),
    ),
    "voltage": (("Volts", 1), ("Voltage [V]", 1), ("Voltage", 1), ("Voltage (V)", 1)),
    "state": (("State", 1), ("Md", 1)),
    "clock": (("DPt Time", 1), ("DPT Time", 1)),
}
_REQUIRED = ("cycle", "step", "time", "capacity", "current", "voltage")
_RECORD = ("Rec#", "Rec")


def _header_of(lines: list[str]) -> tuple[int, str] | None:
    """(1-based header line, separator) of a Maccor export."""
    for i, ln in enumerate(lines):
        for sep in ("\t", ","):
            cells = [c.strip() for c in ln.split(sep)]
            if len(cells) > 5 and cells[0] in _RECORD and "Step" in cells:
                return i + 1, sep
    return None


def sniff(s: Sample) -> bool:
    return not s.is_binary and _header_of(s.lines[:60]) is not None


def _resolve(names: list[str]) -> dict[str, tuple[str, float]]:
    out = {}
    for role, cands in _ROLES.items():
        for header, factor in cands:
            if header in names:
                out[role] = (header, factor)
                break
    return out


def read_maccor(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    lines = _head_lines(path, 80)
    found = _header_of(lines)
    if found is None:
        raise IngestError(path, "no Maccor column header ('Rec#' or 'Rec' with 'Step') found", 1)
    header, sep = found
    names = _unique_names([c.strip() for c in lines[header - 1].split(sep)])
    cols = _resolve(names)
    missing = [r for r in _REQUIRED if r not in cols]
    if missing:
        want = [_ROLES[r][0][0] for r in missing]
        raise IngestError(path, f"Maccor export without columns {want} (header line)", header)
    data_start = header + 1
    while data_start <= len(lines) and not lines[data_start - 1].strip():
        data_start += 1
    if data_start <= len(lines):
        first = lines[data_start - 1].split(sep)
        if len(first) == len(names) + 1 and not first[-1].strip():
            names.append("_trailing")  # every row ends with a separator
    fast = _maccor_fast(path, data_start, sep, names, cols)
    if fast is None:
        fast = _maccor_checked(path, header, data_start, sep, cols)
    t, amps, volts, ah, wh, cyc, step, state, temperature, rows, clock = fast
    if cols["time"][1] == 0 and not _is_duration_column(path, data_start, sep, names, cols):
        t = t * _time_unit(t, clock)
    kind = np.full(len(t), "other", dtype=object)
    if state is not None:
        kind[state == "C"] = "charge"
        kind[state == "D"] = "discharge"
        kind[state == "R"] = "rest"
        current = np.where(
            kind == "discharge", -np.abs(amps), np.where(kind == "charge", np.abs(amps), amps)
        )
    else:
        from bigmap.analysis.table import step_type_from_current

        kind = step_type_from_current(amps)
        current = amps
    cyc_i = cyc.astype(np.int64)
    seg = segment_ids(cyc_i, step, kind)
    out = {
        "test_time_s": t,
        "cycle": cyc_i,
        "step": step.astype(np.int64),
        "step_type": kind,
        "current_A": current,
        "voltage_V": volts,
        **counters_by_direction(cyc_i, kind, seg, ah, wh),
        "temperature_K": temperature,
        "source_row": rows,
    }
    return finish_table(out, path)


def _is_duration_column(
    path: Path, data_start: int, sep: str, names: list[str], cols: dict[str, tuple[str, float]]
) -> bool:
    with open(path, "rb") as f:
        for _ in range(data_start - 1):
            f.readline()
        first = f.readline().decode("latin-1").rstrip("\r\n").split(sep)
    i = names.index(cols["time"][0])
    return i < len(first) and ":" in first[i]


def _time_unit(t: np.ndarray, clock: np.ndarray | None) -> float:
    """The unit [s] of a test-time column whose header does not state it, from the clock
    column beside it (1 for seconds, 60 for minutes, 3600 for hours); seconds without one."""
    if clock is None or len(t) < 2:
        return 1.0
    ok = np.flatnonzero(pd.notna(clock) & np.isfinite(t))
    if len(ok) < 2:
        return 1.0
    a, b = ok[0], ok[-1]
    stamps = pd.to_datetime(pd.Series([clock[a], clock[b]]), errors="coerce", format="mixed")
    if stamps.isna().any():
        return 1.0
    dt_clock = (stamps.iloc[1] - stamps.iloc[0]).total_seconds()
    dt_col = t[b] - t[a]
    if dt_col <= 0 or dt_clock <= 0:
        return 1.0
    ratio = dt_clock / dt_col
    return min((1.0, 60.0, 3600.0), key=lambda u: abs(np.log(ratio / u)))


_MaccorColumns = tuple[
    np.ndarray,  # test time (seconds, or the column's unstated unit)
    np.ndarray,  # current (unsigned where a state column says the direction) [A]
    np.ndarray,  # voltage [V]
    np.ndarray,  # charge counter of the step [A h]
    np.ndarray,  # energy counter of the step [W h]
    np.ndarray,  # cycle
    np.ndarray,  # step
    np.ndarray | None,  # state, stripped strings (None: no state column)
    np.ndarray,  # temperature [K] or NaN
    np.ndarray,  # source line numbers
    np.ndarray | None,  # the clock column as strings (None: none)
]


def _maccor_temperature_columns(names: list[str]) -> tuple[list[tuple[str, str]], str | None]:
    """(aux channel, its unit column) pairs in order, and a plain temperature column."""
    aux = [
        (c, names[i + 1])
        for i, c in enumerate(names)
        if c.startswith("Aux #") and i + 1 < len(names) and names[i + 1].startswith("Units")
    ]
    plain = next((c for c in names if c.lower() in {"temp 1", "temperature", "temp"}), None)
    return aux, plain


def _maccor_fast(
    path: Path, data_start: int, sep: str, names: list[str], cols: dict[str, tuple[str, float]]
) -> _MaccorColumns | None:
    """Maccor columns through pyarrow (no Python per row); ``None``: use the checked path."""
    aux, plain = _maccor_temperature_columns(names)
    c = {r: cols[r][0] for r in cols}
    numeric = [c["cycle"], c["step"], c["capacity"], c["current"], c["voltage"]]
    numeric += [c["energy"]] if "energy" in c else []
    text = [c["time"], *([c["state"]] if "state" in c else []), *[u for _, u in aux]]
    text += [c["clock"]] if "clock" in c else []
    optional = tuple(a for a, _ in aux)
    if plain:
        numeric.append(plain)
    block = common._arrow_block(path, data_start - 1, sep, names, numeric, text, optional)
    if block is None:
        return None
    t = _durations_arrow(block[c["time"]])
    if t is None:
        return None
    import pyarrow.compute as pc

    n = len(t)

    def num(name: str) -> np.ndarray:
        return block[name].to_numpy().astype(float, copy=False)

    state = None
    if "state" in c:
        state = np.asarray(
            pc.fill_null(pc.utf8_trim_whitespace(block[c["state"]]), "").to_numpy(
                zero_copy_only=False
            ),
            dtype=object,
        )
    temperature = None
    for a, unit_col in aux:
        unit = str(block[unit_col][0]).strip().upper()
        if unit not in {"C", "°C", "DEGC"}:
            continue
        v = block[a].to_numpy(zero_copy_only=False).astype(float)  # nulls -> NaN
        temperature = _physical_celsius(v)
        if temperature is not None:
            break
    if temperature is None:
        temperature = num(plain) + ZERO_CELSIUS if plain else np.full(n, np.nan)
    wh = num(c["energy"]) * cols["energy"][1] if "energy" in c else np.zeros(n)
    rows = _line_numbers(n, data_start)
    t = t * (cols["time"][1] or 1.0)
    clock = (
        np.asarray(block[c["clock"]].to_numpy(zero_copy_only=False), dtype=object)
        if "clock" in c
        else None
    )
    return (
        t,
        num(c["current"]) * cols["current"][1],
        num(c["voltage"]) * cols["voltage"][1],
        num(c["capacity"]) * cols["capacity"][1],
        wh,
        num(c["cycle"]),
        num(c["step"]),
        state,
        temperature,
        rows,
        clock,
    )


def _physical_celsius(v: np.ndarray) -> np.ndarray | None:
    """An auxiliary channel in °C as K, if it holds physical values (an unconnected
    thermocouple reads about -2500 °C in Maccor exports)."""
    if np.nanmedian(v) > -ZERO_CELSIUS:
        return np.where(v > -ZERO_CELSIUS, v + ZERO_CELSIUS, np.nan)
    return None


def _maccor_checked(
    path: Path, header: int, data_start: int, sep: str, cols: dict[str, tuple[str, float]]
) -> _MaccorColumns:
    """Maccor columns through pandas with a check of every cell (names the bad row)."""
    df, rows = _read_delimited(path, header, sep, data_start=data_start)
    df.columns = [str(x).strip() for x in df.columns]
    if len(df) == 0:
        raise IngestError(path, "no data rows", data_start)
    c = {r: cols[r][0] for r in cols}
    t = _durations(df[c["time"]], path, rows, c["time"]) * (cols["time"][1] or 1.0)
    amps = _numeric(df, c["current"], path, rows) * cols["current"][1]
    volts = _numeric(df, c["voltage"], path, rows) * cols["voltage"][1]
    ah = _numeric(df, c["capacity"], path, rows) * cols["capacity"][1]
    wh = (
        _numeric(df, c["energy"], path, rows) * cols["energy"][1]
        if "energy" in c
        else np.zeros(len(df))
    )
    cyc = _numeric(df, c["cycle"], path, rows)
    step = _numeric(df, c["step"], path, rows)
    _check_complete(
        {c["time"]: t, c["current"]: amps, c["voltage"]: volts, c["cycle"]: cyc, c["step"]: step},
        path,
        rows,
    )
    state = (
        df[c["state"]].astype("string").str.strip().fillna("").to_numpy(dtype=object)
        if "state" in c
        else None
    )
    clock = df[c["clock"]].astype("string").to_numpy(dtype=object) if "clock" in c else None
    temp = _maccor_temperature(df, rows, path)
    return t, amps, volts, ah, wh, cyc, step, state, temp, rows, clock


def _maccor_temperature(df: pd.DataFrame, rows: np.ndarray, path: Path) -> np.ndarray:
    """The first auxiliary channel in °C with physical values; NaN when there is none."""
    aux, plain = _maccor_temperature_columns(list(df.columns))
    for c, unit_col in aux:
        unit = str(df[unit_col].iloc[0]).strip().upper()
        if unit not in {"C", "°C", "DEGC"}:
            continue
        v = _physical_celsius(pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float))
        if v is not None:
            return v
    if plain:
        return _numeric(df, plain, path, rows) + ZERO_CELSIUS
    return np.full(len(df), np.nan)


READERS = (
    Reader(
        name="maccor",
        instrument="Maccor",
        description="Maccor MIMS text exports (Rec#/Cyc# tab-separated, Rec/Cycle C, CSV)",
        sniff=sniff,
        read=read_maccor,
        extensions=(".txt", ".csv", ".0*"),
        priority=30,
    ),
)
