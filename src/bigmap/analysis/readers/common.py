"""Helpers shared by the readers: reading a file's head, checked numeric columns that name the
bad row, pyarrow's fast path for clean delimited blocks, durations, units and the counters of
charge and energy that cyclers reset at steps, cycles or never.

Every helper raises ``IngestError`` naming the file and, where known, the row.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bigmap.analysis.table import IngestError, cumulate_step_counters, segment_ids

ZERO_CELSIUS = 273.15


def _head_lines(path: Path, n: int = 12) -> list[str]:
    with open(path, "rb") as f:
        raw = f.read(16384)
    text = raw.decode("latin-1")
    return text.splitlines()[:n]


def _line_numbers(n: int, first_data_line: int) -> np.ndarray:
    return np.arange(first_data_line, first_data_line + n, dtype=np.int64)


def _numeric(df: pd.DataFrame, col: str, path: Path, rows: np.ndarray) -> np.ndarray:
    """A column as float64; a cell that is not a number raises IngestError with its row."""
    s = df[col]
    if s.dtype.kind in "fiu":
        return s.to_numpy(dtype=float)
    if s.dtype.kind == "b":
        return s.to_numpy(dtype=float)
    txt = s.astype("string").str.strip()
    num = pd.to_numeric(txt.str.replace(",", ".", regex=False), errors="coerce")
    bad = num.isna() & txt.notna() & (txt != "")
    if bad.any():
        i = int(np.argmax(bad.to_numpy()))
        raise IngestError(path, f"column {col!r}: {txt.iloc[i]!r} is not a number", int(rows[i]))
    return num.to_numpy(dtype=float)


def _check_complete(arrays: dict[str, np.ndarray], path: Path, rows: np.ndarray) -> None:
    """NaN in a required column: the row is cut short (truncated file) or empty."""
    for name, a in arrays.items():
        bad = np.isnan(a)
        if bad.any():
            i = int(np.argmax(bad))
            what = "the file ends in the middle of this row" if i == len(a) - 1 else "no value"
            raise IngestError(path, f"{what} ({name} missing)", int(rows[i]))


def _read_delimited(
    path: Path,
    header_line: int,
    sep: str,
    *,
    encoding: str = "latin-1",
    data_start: int | None = None,
    **kw: Any,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Read a delimited block whose header is line ``header_line`` (1-based) and whose data
    start on line ``data_start`` (default: the next line; blank lines between are skipped).
    Returns the frame and the 1-based line number of each row."""
    data_start = data_start or header_line + 1
    skip: Any = header_line - 1
    if data_start > header_line + 1:
        skip = [*range(header_line - 1), *range(header_line, data_start - 1)]
    try:
        df = pd.read_csv(
            path,
            sep=sep,
            skiprows=skip,
            header=0,
            encoding=encoding,
            skip_blank_lines=False,
            low_memory=False,
            index_col=False,  # rows with a trailing separator are not shifted
            **kw,
        )
    except pd.errors.ParserError as exc:
        m = re.search(r"line (\d+)", str(exc))
        row = int(m.group(1)) + data_start - 2 if m else None
        raise IngestError(path, f"malformed row: {exc}", row) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise IngestError(path, f"cannot parse: {exc}") from None
    rows = _line_numbers(len(df), data_start)
    empty = df.isna().all(axis=1).to_numpy()
    if empty.any():
        # a blank line: tolerated only at the very end
        last_full = len(empty) - int(np.argmax(~empty[::-1])) if (~empty).any() else 0
        inner = np.flatnonzero(empty[:last_full])
        if len(inner):
            raise IngestError(path, "empty line inside the data", int(rows[inner[0]]))
        df = df.iloc[:last_full]
        rows = rows[:last_full]
    return df, rows


def _unique_names(names: list[str]) -> list[str]:
    """Column names made unique the way pandas does it ('Units', 'Units.1', ...)."""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        k = seen.get(n, 0)
        seen[n] = k + 1
        out.append(n if k == 0 else f"{n}.{k}")
    return out


def _arrow_block(
    source: Any,
    skip_rows: int,
    sep: str,
    names: list[str],
    numeric: list[str],
    text: list[str],
    optional: tuple[str, ...] = (),
) -> dict[str, Any] | None:
    """The fast path of the text readers: pyarrow's multithreaded CSV reader on a clean data
    block, only the columns asked for (``numeric`` as float64, ``optional`` as float64 that may
    be empty, ``text`` as strings). Returns
    the columns as arrow arrays, or ``None`` at the first sign of trouble (a short or long
    row, a blank line, a cell that is not a number, an empty required cell): the caller then
    reads the file with the checked pandas path, which names the file and the row."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    wanted = [*numeric, *optional, *text]
    types = {c: pa.float64() for c in [*numeric, *optional]} | {c: pa.string() for c in text}
    try:
        table = pacsv.read_csv(
            source,
            read_options=pacsv.ReadOptions(skip_rows=skip_rows, column_names=names),
            parse_options=pacsv.ParseOptions(delimiter=sep, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                include_columns=wanted, column_types=types, check_utf8=False
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowKeyError, KeyError):
        return None
    cols = {c: table.column(c) for c in wanted}
    if table.num_rows == 0 or any(cols[c].null_count for c in numeric):
        return None
    return cols


_DURATION = re.compile(r"^\s*(?:(\d+)\s*d(?:ays?)?\s*)?(?:(\d+):)?(\d+):(\d+(?:[.,]\d*)?)\s*$")


# the same pattern for pyarrow's (RE2) vectorised extraction: every group named
_DURATION_RE2 = (
    r"^\s*(?:(?P<d>\d+)\s*d(?:ays?)?\s*)?(?:(?P<h>\d+):)?(?P<m>\d+):(?P<s>\d+(?:[.,]\d*)?)\s*$"
)


def _durations_arrow(values: Any) -> np.ndarray | None:
    """Seconds from duration strings with pyarrow's vectorised regex (no Python per row);
    ``None`` when any value is not a duration (the caller then finds and names it)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = values if isinstance(values, pa.ChunkedArray | pa.Array) else pa.array(values)
    if pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type):
        return None if arr.null_count else arr.to_numpy().astype(float)
    if not pa.types.is_string(arr.type) and not pa.types.is_large_string(arr.type):
        return None
    if arr.null_count:
        return None
    m = pc.extract_regex(arr, _DURATION_RE2)
    if m.null_count:
        try:
            plain = pc.cast(pc.utf8_trim_whitespace(arr), pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
        return None if plain.null_count else plain.to_numpy().astype(float)

    def part(name: str, default: str) -> np.ndarray:
        x = pc.struct_field(m, name)
        x = pc.if_else(pc.equal(x, ""), default, x)
        if name == "s":
            x = pc.replace_substring(x, ",", ".")
        return pc.cast(x, pa.float64()).to_numpy()

    d, h, mi, sec = part("d", "0"), part("h", "0"), part("m", "0"), part("s", "0")
    return ((d * 24 + h) * 60 + mi) * 60 + sec


def _durations(s: pd.Series, path: Path, rows: np.ndarray, col: str) -> np.ndarray:
    """'1d 02:03:04.5', '27:55:41', '02:03:04' or plain seconds -> seconds."""
    if s.dtype.kind in "fiu":
        return s.to_numpy(dtype=float)
    try:
        fast = _durations_arrow(s.astype("string").to_numpy(dtype=object, na_value=None))
    except Exception:  # noqa: BLE001 - the checked path below decides
        fast = None
    if fast is not None:
        return fast
    txt = s.astype("string")
    plain = pd.to_numeric(txt, errors="coerce")
    if plain.notna().all():
        return plain.to_numpy(dtype=float)
    fast = txt.str.split(r"d|:", expand=True, regex=True)
    if fast.shape[1] == 4:  # "1d 02:03:04.5", the Maccor layout
        vals = fast.apply(lambda col: pd.to_numeric(col.str.strip(), errors="coerce"))
        if vals.notna().all().all():
            d, h, m, sec = (vals[k].to_numpy(dtype=float) for k in range(4))
            return ((d * 24 + h) * 60 + m) * 60 + sec
    parts = txt.str.extract(_DURATION)
    bad = parts[3].isna() & txt.notna()
    if bad.any():
        i = int(np.argmax(bad.to_numpy()))
        raise IngestError(path, f"column {col!r}: {txt.iloc[i]!r} is not a duration", int(rows[i]))
    d = pd.to_numeric(parts[0], errors="coerce").fillna(0).to_numpy(dtype=float)
    h = pd.to_numeric(parts[1], errors="coerce").fillna(0).to_numpy(dtype=float)
    m = pd.to_numeric(parts[2], errors="coerce").to_numpy(dtype=float)
    sec = pd.to_numeric(parts[3].str.replace(",", "."), errors="coerce").to_numpy(dtype=float)
    out = ((d * 24 + h) * 60 + m) * 60 + sec
    return out


def _unit_factor(name: str, base: str) -> float:
    """Scale of a column named like 'Current(mA)' / 'I/mA' relative to its SI-ish base unit."""
    m = re.search(r"[(/\[]\s*([munµk]?)" + re.escape(base) + r"\s*[)\]]?\s*$", name)
    prefix = m.group(1) if m else ""
    return {"": 1.0, "m": 1e-3, "u": 1e-6, "µ": 1e-6, "n": 1e-9, "k": 1e3}[prefix]


def find_line(lines: list[str], pred: Any) -> int | None:
    """The 1-based number of the first line that satisfies ``pred``."""
    return next((i + 1 for i, ln in enumerate(lines) if pred(ln)), None)


def per_cycle_counter(
    cycle: np.ndarray,
    counter: np.ndarray,
    scope: str,
    segment: np.ndarray | None = None,
) -> np.ndarray:
    """A cycler's charge (or energy) counter as the table wants it: accumulated since the start
    of each cycle. ``scope`` says when the instrument resets the counter:

    - ``"step"``: at every step (Maccor ``Amp-hr``, Neware ``Capacity``, NDA files, Novonix);
      ``segment`` numbers the step executions (default: runs of equal cycle);
    - ``"cycle"``: at every cycle (Arbin, Basytec ``Ah-Cyc-*``): used as it is, except that a
      counter that did not reset (a resumed test) is taken relative to the end of the previous
      cycle, and the first cycle of the file relative to its first record;
    - ``"test"``: never (BDF ``Charging Capacity``): relative to the end of the previous
      cycle (for the first cycle: to its first record);
    - ``"auto"``: unknown: every rise of the counter counts, and a fall is a reset whose new
      value counts in full (right for all three scopes, as long as a reset is not followed at
      once by more than the previous segment's total).
    """
    counter = np.nan_to_num(np.abs(np.asarray(counter, dtype=float)))
    cycle = np.asarray(cycle)
    n = len(counter)
    if n == 0:
        return counter
    if scope == "auto":
        inc = np.diff(counter, prepend=counter[:1])
        fell = inc < 0
        inc[fell] = counter[fell]
        inc[0] = 0.0
        return pd.Series(inc).groupby(pd.Series(cycle)).cumsum().to_numpy()
    if scope == "step":
        seg = segment if segment is not None else segment_ids(cycle)
        return cumulate_step_counters(cycle, segment_ids(cycle, seg), counter)
    first = np.r_[True, cycle[1:] != cycle[:-1]]
    starts = np.flatnonzero(first)
    offset = np.zeros(n)
    for k, s in enumerate(starts):
        e = starts[k + 1] if k + 1 < len(starts) else n
        if k == 0:
            base = counter[s]
        else:
            prev = counter[s - 1]
            continued = scope == "test" or counter[s] >= prev - 1e-12 and prev > 0
            base = prev if continued else 0.0
        offset[s:e] = base
    return np.maximum(counter - offset, 0.0)


def counters_by_direction(
    cycle: np.ndarray,
    kind: np.ndarray,
    segment: np.ndarray,
    capacity: np.ndarray,
    energy: np.ndarray,
) -> dict[str, np.ndarray]:
    """The table's four counters from one charge and one energy counter that restart with
    every step (``segment`` numbers the steps) and count both directions."""
    is_c, is_d = kind == "charge", kind == "discharge"
    return {
        "charge_capacity_Ah": per_cycle_counter(
            cycle, np.where(is_c, capacity, 0.0), "step", segment
        ),
        "discharge_capacity_Ah": per_cycle_counter(
            cycle, np.where(is_d, capacity, 0.0), "step", segment
        ),
        "charge_energy_Wh": per_cycle_counter(cycle, np.where(is_c, energy, 0.0), "step", segment),
        "discharge_energy_Wh": per_cycle_counter(
            cycle, np.where(is_d, energy, 0.0), "step", segment
        ),
    }


def delimited_header(
    lines: list[str], pred: Any, seps: tuple[str, ...] = ("\t", ",", ";")
) -> tuple[int, str, list[str]] | None:
    """(1-based line, separator, stripped cells) of the first line whose cells ``pred``
    accepts, trying each separator."""
    for i, ln in enumerate(lines):
        for sep in seps:
            cells = [c.strip() for c in ln.split(sep)]
            if len(cells) > 2 and pred(cells):
                return i + 1, sep, cells
    return None


def integrate_current(t: np.ndarray, i: np.ndarray, cycle: np.ndarray) -> tuple[np.ndarray, ...]:
    """Charge passed (trapezoidal) split by sign and accumulated within each cycle [A h], for
    files without counters of their own. Returns (charge, discharge)."""
    dq = np.r_[0.0, 0.5 * (i[1:] + i[:-1]) * np.diff(t)] / 3600.0
    dq[np.r_[True, cycle[1:] != cycle[:-1]]] = 0.0
    grp = pd.Series(cycle)
    qc = pd.Series(np.maximum(dq, 0)).groupby(grp).cumsum().to_numpy()
    qd = pd.Series(np.maximum(-dq, 0)).groupby(grp).cumsum().to_numpy()
    return qc, qd


def energy_from_capacity(q: np.ndarray, v: np.ndarray, cycle: np.ndarray) -> np.ndarray:
    """Energy [W h] accumulated within each cycle from a capacity counter and the voltage, for
    files that count charge but not energy."""
    dq = np.diff(q, prepend=q[:1])
    dq[np.r_[True, cycle[1:] != cycle[:-1]]] = 0.0
    de = np.maximum(dq, 0.0) * v
    return pd.Series(de).groupby(pd.Series(cycle)).cumsum().to_numpy()


UNIT_SCALE = {
    # time -> s
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "ms": 1e-3,
    "min": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "d": 86400.0,
    # current -> A
    "a": 1.0,
    "ma": 1e-3,
    "ua": 1e-6,
    "µa": 1e-6,
    "na": 1e-9,
    "ka": 1e3,
    # voltage -> V
    "v": 1.0,
    "mv": 1e-3,
    "uv": 1e-6,
    "µv": 1e-6,
    "kv": 1e3,
    # charge -> A h
    "ah": 1.0,
    "mah": 1e-3,
    "uah": 1e-6,
    "µah": 1e-6,
    "a.h": 1.0,
    "ma.h": 1e-3,
    "a*h": 1.0,
    "c": 1 / 3600.0,
    "mc": 1e-3 / 3600.0,
    "as": 1 / 3600.0,
    # energy -> W h
    "wh": 1.0,
    "mwh": 1e-3,
    "kwh": 1e3,
    "w.h": 1.0,
    "mw.h": 1e-3,
    "j": 1 / 3600.0,
    # power -> W, resistance -> ohm, frequency -> Hz
    "w": 1.0,
    "mw": 1e-3,
    "kw": 1e3,
    "ohm": 1.0,
    "mohm": 1e-3,
    "mω": 1e-3,
    "ω": 1.0,
    "hz": 1.0,
    "khz": 1e3,
    "mhz": 1e-3,
    "1": 1.0,
    "": 1.0,
}


def unit_scale(unit: str, path: Path | str, column: str) -> float:
    """The factor that turns a value in ``unit`` into the table's unit (s, A, V, A h, W h)."""
    u = unit.strip().lower().replace(" ", "")
    if u in UNIT_SCALE:
        return UNIT_SCALE[u]
    raise IngestError(path, f"column {column!r}: unknown unit {unit!r}")


def celsius_to_kelvin(x: np.ndarray, unit: str) -> np.ndarray:
    u = unit.replace("°", "").replace("deg", "").strip().lower()
    return x if u == "k" else x + ZERO_CELSIUS
