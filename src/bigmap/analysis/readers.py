"""Readers of cycler files into the normalised cycling table (``bigmap.analysis.table``).

Formats (``FORMATS``; ``detect_format`` picks one from the file's name and first lines):

- ``biologic_mpr``: BioLogic EC-Lab/BT-Lab binary ``.mpr``, read with galvani
  (C. Kerr et al., github.com/echemdata/galvani, GPL-3.0, used as a library).
- ``biologic_mpt``: BioLogic EC-Lab/BT-Lab text export ``.mpt`` ("EC-Lab ASCII FILE",
  "Nb header lines : N", tab separated, decimal point or comma).
- ``maccor``: Maccor text export (header block, then ``Rec#  Cyc#  Step  TestTime ...``
  tab separated; ``State`` C/D/R/O, ``Amp-hr``/``Watt-hr`` restart with each step, ``Amps``
  unsigned, ``TestTime`` as ``"1d 02:03:04.5"`` or seconds).
- ``neware``: Neware BTS "regular export" CSV (three nested layers: cycle rows, step rows
  starting with one comma, record rows starting with two; step capacity/energy per step).
- ``arbin``: Arbin MITS Pro CSV export (``Data_Point, Test_Time(s), Date_Time, Step_Time(s),
  Step_Index, Cycle_Index, Current(A), Voltage(V), Charge_Capacity(Ah), ...``; capacities
  cumulative within a cycle).
- ``csv``: a plain CSV with a header naming at least time, current and voltage (common
  spellings and units such as ``Current(mA)`` are recognised), or a CSV of this table itself.

Every reader raises ``IngestError`` naming the file and the row for a file it cannot read
(corrupt, truncated, not the format it claims).

Speed: the Maccor and Neware text readers first try a fast path (pyarrow's CSV reader on the
data block, converting only the columns the table needs, and durations such as
``"2d 02:52:51.57"`` parsed by a vectorised RE2 regex; no Python per row). At the first sign
of trouble (a short or long row, a blank line, a cell that is not a number) they read the file
again with the checked pandas path, which finds and names the bad row, so a bad file costs
two reads and a good one costs one fast read (``benchmarks/ingest_throughput.py``).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bigmap.analysis.table import (
    IngestError,
    cumulate_step_counters,
    file_sha256,
    finish_table,
    segment_ids,
    step_type_from_current,
    write_parquet,
)

ZERO_CELSIUS = 273.15

FORMATS = ("biologic_mpr", "biologic_mpt", "maccor", "neware", "arbin", "csv")


# ----------------------------------------------------------------------------- helpers


def _head_lines(path: Path, n: int = 12) -> list[str]:
    with open(path, "rb") as f:
        raw = f.read(16384)
    text = raw.decode("latin-1")
    return text.splitlines()[:n]


def detect_format(path: str | Path) -> str:
    """The format of a cycler file, from its extension and its first lines."""
    path = Path(path)
    if not path.exists():
        raise IngestError(path, "no such file")
    with open(path, "rb") as f:
        magic = f.read(64)
    if magic.startswith(b"BIO-LOGIC MODULAR FILE"):
        return "biologic_mpr"
    if path.suffix.lower() == ".mpr":
        raise IngestError(path, "a .mpr file that does not start with the BioLogic magic", row=1)
    lines = _head_lines(path)
    if not lines:
        raise IngestError(path, "the file is empty")
    first = lines[0]
    if first.startswith(("EC-Lab ASCII FILE", "BT-Lab ASCII FILE")):
        return "biologic_mpt"
    if any(ln.startswith("Rec#") for ln in lines) or first.startswith("Today's Date"):
        return "maccor"
    if first.startswith("Cycle Index,") and len(lines) > 2 and lines[1].startswith(",Step Index"):
        return "neware"
    if "Test_Time(s)" in first and "Cycle_Index" in first:
        return "arbin"
    if path.suffix.lower() in {".csv", ".txt", ".tsv"}:
        return "csv"
    raise IngestError(path, "unknown cycler file format (give --format)", row=1)


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
    path: Path, header_line: int, sep: str, *, encoding: str = "latin-1", **kw: Any
) -> tuple[pd.DataFrame, np.ndarray]:
    """Read a delimited block whose header is line ``header_line`` (1-based). Returns the
    frame and the 1-based line number of each row."""
    try:
        df = pd.read_csv(
            path,
            sep=sep,
            skiprows=header_line - 1,
            header=0,
            encoding=encoding,
            skip_blank_lines=False,
            low_memory=False,
            **kw,
        )
    except pd.errors.ParserError as exc:
        m = re.search(r"line (\d+)", str(exc))
        row = int(m.group(1)) + header_line - 1 if m else None
        raise IngestError(path, f"malformed row: {exc}", row) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise IngestError(path, f"cannot parse: {exc}") from None
    rows = _line_numbers(len(df), header_line + 1)
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


# ----------------------------------------------------------------------------- Maccor


def read_maccor(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    lines = _head_lines(path, 40)
    header = next((i + 1 for i, ln in enumerate(lines) if ln.startswith("Rec#")), None)
    if header is None:
        raise IngestError(path, "no Maccor column header ('Rec#') in the first 40 lines")
    sep = "\t" if "\t" in lines[header - 1] else ","
    names = _unique_names([c.strip() for c in lines[header - 1].split(sep)])
    need = ["Cyc#", "Step", "TestTime", "Amp-hr", "Amps", "Volts", "State"]
    missing = [c for c in need if c not in names]
    if missing:
        raise IngestError(path, f"Maccor export without columns {missing}", header)
    fast = _maccor_fast(path, header, sep, names)
    if fast is not None:
        t, amps, volts, ah, wh, cyc, step, state, temperature, rows = fast
    else:
        t, amps, volts, ah, wh, cyc, step, state, temperature, rows = _maccor_checked(
            path, header, sep
        )
    kind = np.full(len(t), "other", dtype=object)
    kind[state == "C"] = "charge"
    kind[state == "D"] = "discharge"
    kind[state == "R"] = "rest"
    current = np.where(
        kind == "discharge", -np.abs(amps), np.where(kind == "charge", np.abs(amps), amps)
    )
    cyc_i = cyc.astype(np.int64)
    seg = segment_ids(cyc_i, step, kind)
    is_c, is_d = kind == "charge", kind == "discharge"
    out = {
        "test_time_s": t,
        "cycle": cyc_i,
        "step": step.astype(np.int64),
        "step_type": kind,
        "current_A": current,
        "voltage_V": volts,
        "charge_capacity_Ah": cumulate_step_counters(cyc_i, seg, np.where(is_c, ah, 0.0)),
        "discharge_capacity_Ah": cumulate_step_counters(cyc_i, seg, np.where(is_d, ah, 0.0)),
        "charge_energy_Wh": cumulate_step_counters(cyc_i, seg, np.where(is_c, wh, 0.0)),
        "discharge_energy_Wh": cumulate_step_counters(cyc_i, seg, np.where(is_d, wh, 0.0)),
        "temperature_K": temperature,
        "source_row": rows,
    }
    return finish_table(out, path)


_MaccorColumns = tuple[
    np.ndarray,  # test time [s]
    np.ndarray,  # Amps (unsigned)
    np.ndarray,  # Volts
    np.ndarray,  # Amp-hr (per step)
    np.ndarray,  # Watt-hr (per step)
    np.ndarray,  # Cyc#
    np.ndarray,  # Step
    np.ndarray,  # State, stripped strings
    np.ndarray,  # temperature [K] or NaN
    np.ndarray,  # source line numbers
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


def _maccor_fast(path: Path, header: int, sep: str, names: list[str]) -> _MaccorColumns | None:
    """Maccor columns through pyarrow (no Python per row); ``None``: use the checked path."""
    aux, plain = _maccor_temperature_columns(names)
    numeric = ["Cyc#", "Step", "Amp-hr", "Amps", "Volts"]
    numeric += ["Watt-hr"] if "Watt-hr" in names else []
    text = ["TestTime", "State", *[u for _, u in aux]]
    optional = tuple(c for c, _ in aux)
    if plain:
        numeric.append(plain)
    cols = _arrow_block(path, header, sep, names, numeric, text, optional)
    if cols is None:
        return None
    t = _durations_arrow(cols["TestTime"])
    if t is None:
        return None
    import pyarrow.compute as pc

    n = len(t)

    def num(c: str) -> np.ndarray:
        return cols[c].to_numpy().astype(float, copy=False)

    state = np.asarray(
        pc.fill_null(pc.utf8_trim_whitespace(cols["State"]), "").to_numpy(zero_copy_only=False),
        dtype=object,
    )
    temperature = None
    for c, unit_col in aux:
        unit = str(cols[unit_col][0]).strip().upper()
        if unit not in {"C", "°C", "DEGC"}:
            continue
        v = cols[c].to_numpy(zero_copy_only=False).astype(float)  # nulls -> NaN
        temperature = _physical_celsius(v)
        if temperature is not None:
            break
    if temperature is None:
        temperature = num(plain) + ZERO_CELSIUS if plain else np.full(n, np.nan)
    wh = num("Watt-hr") if "Watt-hr" in names else np.zeros(n)
    rows = _line_numbers(n, header + 1)
    amps, volts, ah, cyc, step = (num(c) for c in ("Amps", "Volts", "Amp-hr", "Cyc#", "Step"))
    return t, amps, volts, ah, wh, cyc, step, state, temperature, rows


def _physical_celsius(v: np.ndarray) -> np.ndarray | None:
    """An auxiliary channel in °C as K, if it holds physical values (an unconnected
    thermocouple reads about -2500 °C in Maccor exports)."""
    if np.nanmedian(v) > -ZERO_CELSIUS:
        return np.where(v > -ZERO_CELSIUS, v + ZERO_CELSIUS, np.nan)
    return None


def _maccor_checked(path: Path, header: int, sep: str) -> _MaccorColumns:
    """Maccor columns through pandas with a check of every cell (names the bad row)."""
    df, rows = _read_delimited(path, header, sep)
    df.columns = [c.strip() for c in df.columns]
    if len(df) == 0:
        raise IngestError(path, "no data rows", header + 1)
    t = _durations(df["TestTime"], path, rows, "TestTime")
    amps = _numeric(df, "Amps", path, rows)
    volts = _numeric(df, "Volts", path, rows)
    ah = _numeric(df, "Amp-hr", path, rows)
    wh = _numeric(df, "Watt-hr", path, rows) if "Watt-hr" in df else np.zeros(len(df))
    cyc = _numeric(df, "Cyc#", path, rows)
    step = _numeric(df, "Step", path, rows)
    _check_complete(
        {"TestTime": t, "Amps": amps, "Volts": volts, "Cyc#": cyc, "Step": step}, path, rows
    )
    state = df["State"].astype("string").str.strip().fillna("").to_numpy(dtype=object)
    return t, amps, volts, ah, wh, cyc, step, state, _maccor_temperature(df, rows, path), rows


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


# ----------------------------------------------------------------------------- Neware


def read_neware(path: str | Path) -> pd.DataFrame:
    """Neware BTS 'regular export' CSV with cycle, step and record layers."""
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
    fast = _arrow_block(
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
    is_c, is_d = kind == "charge", kind == "discharge"
    out = {
        "test_time_s": t,
        "cycle": cyc,
        "step": s_index[s_of],
        "step_type": kind,
        "current_A": cur,
        "voltage_V": volt,
        "charge_capacity_Ah": cumulate_step_counters(cyc, seg, np.where(is_c, np.abs(cap), 0.0)),
        "discharge_capacity_Ah": cumulate_step_counters(cyc, seg, np.where(is_d, np.abs(cap), 0.0)),
        "charge_energy_Wh": cumulate_step_counters(cyc, seg, np.where(is_c, np.abs(en), 0.0)),
        "discharge_energy_Wh": cumulate_step_counters(cyc, seg, np.where(is_d, np.abs(en), 0.0)),
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


# ----------------------------------------------------------------------------- BioLogic


def read_biologic_mpr(path: str | Path) -> pd.DataFrame:
    """BioLogic binary .mpr through galvani."""
    from galvani import BioLogic

    path = Path(path)
    try:
        mpr = BioLogic.MPRfile(str(path))
    except (OSError, ValueError, AssertionError) as exc:
        raise IngestError(path, _mpr_diagnosis(path, exc)) from None
    data = pd.DataFrame(mpr.data)
    flags = {}
    for name in ("mode",):
        try:
            flags[name] = mpr.get_flag(name)
        except AttributeError:
            pass
    rows = np.arange(1, len(data) + 1, dtype=np.int64)
    return _biologic_table(data, rows, path, flags.get("mode"))


def _mpr_diagnosis(path: Path, exc: Exception) -> str:
    """Why galvani could not read an .mpr: for a truncated data module, how many complete
    records it holds and which one is cut."""
    from galvani import BioLogic

    raw = path.read_bytes()
    if not raw.startswith(BioLogic.MPR_MAGIC):
        return "not a BioLogic .mpr file (bad magic at the start)"
    pos = raw.find(b"MODULEVMP data  ")
    if pos < 0:
        return f"no data module found ({exc})"
    try:
        hdr_dtype = BioLogic.VMPmodule_hdr_v1
        start = pos + len(b"MODULE")
        hdr_bytes = raw[start : start + BioLogic.VMPmodule_hdr_v2.itemsize]
        if hdr_bytes[35:39] == b"\xff\xff\xff\xff":
            hdr_dtype = BioLogic.VMPmodule_hdr_v2
        hdr = np.frombuffer(hdr_bytes[: hdr_dtype.itemsize], dtype=hdr_dtype, count=1)
        version = int(hdr["version"][0])
        declared_len = int(hdr["length"][0])
        body = raw[start + hdr_dtype.itemsize :]
        n_points = int(np.frombuffer(body[:4], dtype="<u4")[0])
        n_columns = int(body[4])
        if version in (2, 3):
            col_ids = np.frombuffer(body[5:], dtype="<u2", count=n_columns)
            offset = 406 if version == 3 else 405
        else:
            return f"cannot read the data module (version {version}): {exc}"
        dtype, _ = BioLogic.VMPdata_dtype_from_colIDs(col_ids)
        have = max(0, len(body) - offset)
        complete = have // dtype.itemsize
        if len(body) < declared_len or complete < n_points:
            return (
                f"truncated: the data module declares {n_points} records but the file holds "
                f"only {complete} complete ones; record {complete + 1} is cut off "
                f"({have - complete * dtype.itemsize} of {dtype.itemsize} bytes)"
            )
    except Exception:  # noqa: BLE001 - the diagnosis must not hide the original error
        pass
    return f"corrupt BioLogic .mpr: {exc}"


def read_biologic_mpt(path: str | Path) -> pd.DataFrame:
    """BioLogic EC-Lab/BT-Lab text export (.mpt)."""
    path = Path(path)
    lines = _head_lines(path, 4)
    if not lines or not lines[0].startswith(("EC-Lab ASCII FILE", "BT-Lab ASCII FILE")):
        raise IngestError(path, "not an EC-Lab text file (first line)", 1)
    m = re.match(r"Nb header lines\s*:\s*(\d+)", lines[1]) if len(lines) > 1 else None
    if not m:
        raise IngestError(path, "no 'Nb header lines : N' on line 2", 2)
    n_header = int(m.group(1))
    with open(path, "rb") as f:
        for _ in range(n_header - 1):
            f.readline()
        colline = f.readline().decode("latin-1")
        sample = f.readline().decode("latin-1")
    decimal = "," if re.search(r"\d,\d", sample) and "." not in sample.replace("\t", "") else "."
    df, rows = _read_delimited(path, n_header, "\t", decimal=decimal)
    df.columns = [c.strip() for c in df.columns]
    if not colline.strip():
        raise IngestError(path, "no column header", n_header)
    if len(df) == 0:
        raise IngestError(path, "no data rows", n_header + 1)
    df = df.loc[:, [c for c in df.columns if not c.startswith("Unnamed")]]
    return _biologic_table(df, rows, path, df["mode"].to_numpy() if "mode" in df else None)


_BIOLOGIC_ALIASES = {
    "<I>/mA": "I/mA",
    "Ecell/V": "Ewe/V",
    "<Ewe>/V": "Ewe/V",
    "<Ewe/V>": "Ewe/V",
    "dq/mA.h": "dQ/mA.h",
}


def _biologic_table(
    data: pd.DataFrame, rows: np.ndarray, path: Path, mode: np.ndarray | None
) -> pd.DataFrame:
    data = data.rename(columns={k: v for k, v in _BIOLOGIC_ALIASES.items() if k in data.columns})
    data = data.loc[:, ~data.columns.duplicated()]
    for need in ("time/s", "Ewe/V"):
        if need not in data:
            raise IngestError(path, f"BioLogic file without a {need!r} column")
    t = _numeric(data, "time/s", path, rows)
    v = _numeric(data, "Ewe/V", path, rows)
    if "I/mA" in data:
        cur = _numeric(data, "I/mA", path, rows) * 1e-3
    elif "I/A" in data:
        cur = _numeric(data, "I/A", path, rows)
    else:
        cur = np.zeros(len(data))
    _check_complete({"time/s": t, "Ewe/V": v, "I": cur}, path, rows)
    if "cycle number" in data:
        cyc = _numeric(data, "cycle number", path, rows).astype(np.int64)
    elif "half cycle" in data:
        cyc = (_numeric(data, "half cycle", path, rows) // 2).astype(np.int64)
    else:
        cyc = np.zeros(len(data), dtype=np.int64)
    step = (
        _numeric(data, "Ns", path, rows).astype(np.int64)
        if "Ns" in data
        else np.zeros(len(data), dtype=np.int64)
    )
    kind = step_type_from_current(cur)
    if mode is not None:
        kind[np.asarray(mode) == 3] = "rest"
    if "freq/Hz" in data:
        kind[_numeric(data, "freq/Hz", path, rows) > 0] = "other"  # impedance points
    # charge passed: increments of (Q-Qo), split by sign, accumulated within each cycle
    if "(Q-Qo)/mA.h" in data:
        q = _numeric(data, "(Q-Qo)/mA.h", path, rows) * 1e-3
    elif "(Q-Qo)/C" in data:
        q = _numeric(data, "(Q-Qo)/C", path, rows) / 3600.0
    else:
        dt = np.diff(t, prepend=t[0])
        q = np.cumsum(cur * dt) / 3600.0
    dq = np.diff(q, prepend=q[0])
    new_cycle = np.r_[True, cyc[1:] != cyc[:-1]]
    dq[new_cycle] = 0.0
    dq_c, dq_d = np.maximum(dq, 0.0), np.maximum(-dq, 0.0)
    de = dq * v  # W h from A h * V when the file has no energy counters
    de_c, de_d = np.maximum(de, 0.0), np.maximum(-de, 0.0)
    if "Energy charge/W.h" in data and "Energy discharge/W.h" in data:
        ec = _numeric(data, "Energy charge/W.h", path, rows)
        ed = _numeric(data, "Energy discharge/W.h", path, rows)
        de_c = np.maximum(np.diff(ec, prepend=ec[0]), 0.0)
        de_d = np.maximum(np.diff(ed, prepend=ed[0]), 0.0)
        de_c[new_cycle] = 0.0
        de_d[new_cycle] = 0.0
    grp = pd.Series(cyc)

    def per_cycle(x: np.ndarray) -> np.ndarray:
        return pd.Series(x).groupby(grp).cumsum().to_numpy()

    temp = np.full(len(data), np.nan)
    for c in ("Temperature/°C", "Temperature/Â°C", "Temperature/C"):
        if c in data:
            temp = _numeric(data, c, path, rows) + ZERO_CELSIUS
            break
    out = {
        "test_time_s": t,
        "cycle": cyc,
        "step": step,
        "step_type": kind,
        "current_A": cur,
        "voltage_V": v,
        "charge_capacity_Ah": per_cycle(dq_c),
        "discharge_capacity_Ah": per_cycle(dq_d),
        "charge_energy_Wh": per_cycle(de_c),
        "discharge_energy_Wh": per_cycle(de_d),
        "temperature_K": temp,
        "source_row": rows,
    }
    return finish_table(out, path)


# ----------------------------------------------------------------------------- Arbin


def read_arbin(path: str | Path) -> pd.DataFrame:
    """Arbin MITS Pro CSV export (the columns of its 'Channel' sheet)."""
    path = Path(path)
    df, rows = _read_delimited(path, 1, ",")
    df.columns = [c.strip() for c in df.columns]
    need = ["Test_Time(s)", "Step_Index", "Cycle_Index", "Current(A)", "Voltage(V)"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise IngestError(path, f"Arbin export without columns {missing}", 1)
    if len(df) == 0:
        raise IngestError(path, "no data rows", 2)
    t = _numeric(df, "Test_Time(s)", path, rows)
    cur = _numeric(df, "Current(A)", path, rows)
    v = _numeric(df, "Voltage(V)", path, rows)
    cyc = _numeric(df, "Cycle_Index", path, rows)
    step = _numeric(df, "Step_Index", path, rows)
    _check_complete(
        {
            "Test_Time(s)": t,
            "Current(A)": cur,
            "Voltage(V)": v,
            "Cycle_Index": cyc,
            "Step_Index": step,
        },
        path,
        rows,
    )

    def opt(name: str) -> np.ndarray:
        return _numeric(df, name, path, rows) if name in df else np.full(len(df), np.nan)

    temp = np.full(len(df), np.nan)
    for c in df.columns:
        if re.match(r"^(Aux_)?Temperature.*\(C\)", c) or c.startswith("Temperature (C)"):
            temp = _numeric(df, c, path, rows) + ZERO_CELSIUS
            break
    out = {
        "test_time_s": t,
        "cycle": cyc.astype(np.int64),
        "step": step.astype(np.int64),
        "step_type": step_type_from_current(cur),
        "current_A": cur,
        "voltage_V": v,
        "charge_capacity_Ah": opt("Charge_Capacity(Ah)"),
        "discharge_capacity_Ah": opt("Discharge_Capacity(Ah)"),
        "charge_energy_Wh": opt("Charge_Energy(Wh)"),
        "discharge_energy_Wh": opt("Discharge_Energy(Wh)"),
        "temperature_K": temp,
        "source_row": rows,
    }
    return finish_table(out, path)


# ----------------------------------------------------------------------------- plain CSV

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


# ----------------------------------------------------------------------------- entry points

READERS: dict[str, Callable[[str | Path], pd.DataFrame]] = {
    "biologic_mpr": read_biologic_mpr,
    "biologic_mpt": read_biologic_mpt,
    "maccor": read_maccor,
    "neware": read_neware,
    "arbin": read_arbin,
    "csv": read_csv_generic,
}


def read_cycler_file(path: str | Path, format: str | None = None) -> pd.DataFrame:
    """Read a cycler file into the normalised table; ``df.attrs['source']`` says where it came
    from (file name, SHA-256, format, rows)."""
    path = Path(path)
    if not path.is_file():
        raise IngestError(path, "no such file")
    fmt = format or detect_format(path)
    if fmt not in READERS:
        raise IngestError(path, f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    try:
        df = READERS[fmt](path)
    except IngestError:
        raise
    except (ValueError, KeyError, IndexError, TypeError, OSError) as exc:
        raise IngestError(path, f"cannot read as {fmt}: {type(exc).__name__}: {exc}") from None
    df.attrs["source"] = {
        "file": path.name,
        "sha256": file_sha256(path),
        "format": fmt,
        "rows": len(df),
    }
    return df


def ingest(path: str | Path, out: str | Path | None = None, format: str | None = None) -> Path:
    """Read a cycler file and store its normalised table as Parquet (default: beside it,
    ``<name>.parquet``)."""
    path = Path(path)
    df = read_cycler_file(path, format)
    out = Path(out) if out else path.with_suffix(path.suffix + ".parquet")
    return write_parquet(df, out, df.attrs["source"])
