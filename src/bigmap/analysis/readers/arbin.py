"""Arbin MITS Pro / MITS 7-8 files.

- ``arbin_res``: the ``.res`` test file, a Microsoft Access (Jet 4) database; its
  ``Channel_Normal_Table`` is exported with mdbtools' ``mdb-export`` (Debian package
  ``mdbtools``, GPL, installed by ``make install``), the reader cellpy and galvani's
  ``res2sqlite`` use too. Without ``mdb-export`` the pure-Python ``access-parser`` is used if it
  is installed (50x slower). Auxiliary channels (temperatures) live in other tables and are
  not read.
- ``arbin``: CSV exports in their three header spellings: MITS Pro ``Test_Time(s),
  Current(A), Charge_Capacity(Ah)``; MITS Pro 8 / MITS 10 ``Test Time (s), Current (A),
  Charge Capacity (Ah)``; and the unit-less ``Test_Time, Current, Charge_Capacity`` of the
  TRI/beep data sets.
- ``arbin_xlsx``: the Excel export, data in sheets named ``Channel_<n>...`` (long tests
  split over several), the same columns as the CSV.

Counters (``Charge_Capacity`` ...) accumulate within a cycle and reset when the cycle index
changes, the table's own convention; a counter that did not reset (a resumed test) is taken
relative to the end of the previous cycle. bigmap's own readers of the exported tables.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from bigmap.analysis.readers.common import (
    ZERO_CELSIUS,
    _check_complete,
    _numeric,
    _read_delimited,
    per_cycle_counter,
)
from bigmap.analysis.readers.registry import Reader, Sample
from bigmap.analysis.table import IngestError, finish_table, step_type_from_current

# role -> normalised base names (lower case, no blanks or underscores, unit removed)
_ROLES = {
    "time": ("testtime",),
    "cycle": ("cycleindex",),
    "step": ("stepindex",),
    "current": ("current",),
    "voltage": ("voltage",),
    "qc": ("chargecapacity",),
    "qd": ("dischargecapacity",),
    "ec": ("chargeenergy",),
    "ed": ("dischargeenergy",),
    "temperature": ("auxtemperature1", "temperature"),
}
_DEFAULT_UNIT = {
    "time": "s",
    "current": "A",
    "voltage": "V",
    "qc": "Ah",
    "qd": "Ah",
    "ec": "Wh",
    "ed": "Wh",
    "temperature": "C",
}
_SCALE = {"s": 1, "h": 3600, "min": 60, "a": 1, "ma": 1e-3, "v": 1, "mv": 1e-3, "ah": 1}
_SCALE |= {"mah": 1e-3, "wh": 1, "mwh": 1e-3, "c": 1, "°c": 1}


def _split(name: str) -> tuple[str, str]:
    m = re.match(r"^\s*(.*?)\s*\(([^)]*)\)\s*$", name)
    base, unit = (m.group(1), m.group(2)) if m else (name, "")
    return re.sub(r"[\s_]", "", base).lower(), unit.strip()


def _resolve(columns: list[str]) -> dict[str, tuple[str, str]]:
    """role -> (column, unit)."""
    out: dict[str, tuple[str, str]] = {}
    split = [(c, *_split(c)) for c in columns]
    for role, bases in _ROLES.items():
        for b in bases:
            hit = next(((c, u) for c, base, u in split if base == b), None)
            if hit:
                out[role] = (hit[0], hit[1] or _DEFAULT_UNIT.get(role, ""))
                break
    return out


def _is_arbin_header(cells: list[str]) -> bool:
    r = _resolve([c.strip() for c in cells])
    bases = {_split(c)[0] for c in cells}
    return (
        all(k in r for k in ("time", "cycle", "step", "current", "voltage"))
        and "qc" in r
        and bool({"datapoint", "steptime"} & bases)
    )


def sniff_csv(s: Sample) -> bool:
    return bool(s.lines) and not s.is_binary and _is_arbin_header(s.lines[0].split(","))


def read_arbin(path: str | Path) -> pd.DataFrame:
    """Arbin CSV export (any of its header spellings)."""
    path = Path(path)
    df, rows = _read_delimited(path, 1, ",", encoding="utf-8-sig", encoding_errors="replace")
    df.columns = [str(c).strip() for c in df.columns]
    return arbin_table(df, rows, path)


def arbin_table(df: pd.DataFrame, rows: np.ndarray, path: Path) -> pd.DataFrame:
    cols = _resolve(list(df.columns))
    need = ("time", "step", "cycle", "current", "voltage")
    missing = [r for r in need if r not in cols]
    if missing:
        names = {"time": "Test_Time(s)", "step": "Step_Index", "cycle": "Cycle_Index"}
        names |= {"current": "Current(A)", "voltage": "Voltage(V)"}
        raise IngestError(path, f"Arbin export without columns {[names[m] for m in missing]}", 1)
    if len(df) == 0:
        raise IngestError(path, "no data rows", 2)

    def get(role: str) -> np.ndarray:
        col, unit = cols[role]
        x = _numeric(df, col, path, rows)
        if role == "temperature":
            return x if unit.upper() == "K" else x + ZERO_CELSIUS
        try:
            return x * _SCALE[unit.lower()]
        except KeyError:
            raise IngestError(path, f"column {col!r}: unknown unit {unit!r}", 1) from None

    t, cur, v = get("time"), get("current"), get("voltage")
    step = _numeric(df, cols["step"][0], path, rows)
    cyc = _numeric(df, cols["cycle"][0], path, rows)
    _check_complete(
        {cols[r][0]: x for r, x in (("time", t), ("current", cur), ("voltage", v))}
        | {cols["step"][0]: step, cols["cycle"][0]: cyc},
        path,
        rows,
    )
    cyc_i = cyc.astype(np.int64)

    def counter(role: str) -> np.ndarray:
        if role not in cols:
            return np.full(len(df), np.nan)
        return per_cycle_counter(cyc_i, get(role), "cycle")

    out = {
        "test_time_s": t,
        "cycle": cyc_i,
        "step": step.astype(np.int64),
        "step_type": step_type_from_current(cur),
        "current_A": cur,
        "voltage_V": v,
        "charge_capacity_Ah": counter("qc"),
        "discharge_capacity_Ah": counter("qd"),
        "charge_energy_Wh": counter("ec"),
        "discharge_energy_Wh": counter("ed"),
        "temperature_K": get("temperature") if "temperature" in cols else np.full(len(df), np.nan),
        "source_row": rows,
    }
    return finish_table(out, path)


# ----------------------------------------------------------------------------- XLSX


def _arbin_sheet(name: str, head: list[list[object]]) -> bool:
    return (
        bool(re.match(r"^Channel[_\-]", name))
        and bool(head)
        and _is_arbin_header([str(c) for c in head[0] if c is not None])
    )


def sniff_xlsx(s: Sample) -> bool:
    return s.is_xlsx and any(_arbin_sheet(n, rows) for n, rows in s.sheets.items())


def read_arbin_xlsx(path: str | Path) -> pd.DataFrame:
    from bigmap.analysis.readers.excel import read_sheet

    path = Path(path)
    df, rows = read_sheet(path, _arbin_sheet)
    return arbin_table(df, rows, path)


# ----------------------------------------------------------------------------- .res

ACCESS_MAGIC = (b"\x00\x01\x00\x00Standard Jet DB", b"\x00\x01\x00\x00Standard ACE DB")


def sniff_res(s: Sample) -> bool:
    """Any Access database: the reader then says whether it holds an Arbin test."""
    return s.head.startswith(ACCESS_MAGIC)


def res_library() -> str:
    return "mdbtools" if shutil.which("mdb-export") else "access-parser"


def read_arbin_res(path: str | Path) -> pd.DataFrame:
    """Arbin .res (Access database) through mdbtools (or access-parser without it)."""
    path = Path(path)
    with open(path, "rb") as f:
        if not f.read(32).startswith(ACCESS_MAGIC):
            raise IngestError(path, "not a Microsoft Access database (.res): bad magic", 1)
    exe = shutil.which("mdb-export")
    if exe:
        try:
            proc = subprocess.run(
                [exe, str(path), "Channel_Normal_Table"],
                capture_output=True,
                timeout=600,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise IngestError(path, f"mdb-export failed: {exc}") from None
        if proc.returncode != 0:
            msg = proc.stderr.decode("utf-8", "replace").strip() or f"exit {proc.returncode}"
            raise IngestError(path, f"mdb-export cannot read Channel_Normal_Table: {msg}")
        try:
            df = pd.read_csv(io.BytesIO(proc.stdout), low_memory=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
            raise IngestError(path, f"mdb-export gave no table: {exc}") from None
    else:
        try:
            from access_parser import AccessParser
        except ImportError:
            raise IngestError(
                path,
                "reading Arbin .res needs mdbtools' mdb-export (Debian: apt-get install "
                "mdbtools; `make install` does it) or the access-parser package",
            ) from None
        try:
            df = pd.DataFrame(AccessParser(str(path)).parse_table("Channel_Normal_Table"))
        except Exception as exc:  # noqa: BLE001 - access-parser raises many kinds
            raise IngestError(path, f"access-parser cannot read it: {exc}") from None
    if len(df) == 0:
        raise IngestError(path, "Channel_Normal_Table holds no records")
    if "Data_Point" in df:
        df = df.sort_values(["Test_ID", "Data_Point"] if "Test_ID" in df else ["Data_Point"])
        df = df.reset_index(drop=True)
        rows = df["Data_Point"].to_numpy(dtype=np.int64)
    else:
        rows = np.arange(1, len(df) + 1, dtype=np.int64)
    return arbin_table(df, rows, path)


READERS = (
    Reader(
        name="arbin_res",
        instrument="Arbin",
        description="Arbin MITS .res test file (Microsoft Access database)",
        sniff=sniff_res,
        read=read_arbin_res,
        library="mdbtools",
        extensions=(".res",),
        priority=10,
    ),
    Reader(
        name="arbin",
        instrument="Arbin",
        description="Arbin CSV export (MITS Pro, MITS Pro 8/10, TRI/beep spellings)",
        sniff=sniff_csv,
        read=read_arbin,
        extensions=(".csv",),
        priority=40,
    ),
    Reader(
        name="arbin_xlsx",
        instrument="Arbin",
        description="Arbin Excel export (sheets Channel_*)",
        sniff=sniff_xlsx,
        read=read_arbin_xlsx,
        library="openpyxl",
        extensions=(".xlsx",),
        priority=40,
    ),
)
