"""Gamry Framework ``.DTA`` files (``EXPLAIN`` format): the impedance spectrum of an EIS
experiment (``TAG EISPOT`` / ``EISGALV``), from its ``ZCURVE`` table (``Pt  Time  Freq  Zreal
Zimag  Zsig  Zmod  Zphz  Idc  Vdc  IERange``, a units line, then one tab-indented row per
frequency). bigmap's own parser: the installable Gamry readers (gamry-parser, gamry-dta) need
polars; impedance.py's ``readGamry`` (which bigmap already installs for EIS fits) is the
independent check in the tests. Other Gamry techniques are refused with a clear error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bigmap.analysis.readers.common import _check_complete, _numeric
from bigmap.analysis.readers.registry import Reader, Sample
from bigmap.analysis.table import IngestError, finish_table


def sniff(s: Sample) -> bool:
    return (
        bool(s.lines)
        and s.lines[0].strip() == "EXPLAIN"
        and s.has_line(lambda ln: ln.startswith("TAG\t"), 10)
    )


def read_gamry_dta(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    lines = path.read_bytes().decode("latin-1").splitlines()
    if not lines or lines[0].strip() != "EXPLAIN":
        raise IngestError(path, "not a Gamry EXPLAIN file ('EXPLAIN' on line 1)", 1)
    start = next((i for i, ln in enumerate(lines) if ln.startswith("ZCURVE\t")), None)
    if start is None:
        tag = next((ln.split("\t")[1] for ln in lines[:10] if ln.startswith("TAG\t")), "?")
        raise IngestError(
            path, f"Gamry {tag} file without a ZCURVE table (only impedance spectra are read)"
        )
    if start + 2 >= len(lines):
        raise IngestError(path, "ZCURVE table without its header and units lines", start + 1)
    names = [c.strip() for c in lines[start + 1].split("\t")]
    width = len(names)
    body, numbers = [], []
    for k in range(start + 3, len(lines)):
        ln = lines[k]
        if not ln.startswith("\t"):
            break
        cells = ln.split("\t")
        if len(cells) != width:
            raise IngestError(
                path, f"ZCURVE row with {len(cells) - 1} values, {width - 1} expected", k + 1
            )
        body.append(cells)
        numbers.append(k + 1)
    if not body:
        raise IngestError(path, "the ZCURVE table has no rows", start + 4)
    df = pd.DataFrame(body, columns=names)
    rows = np.asarray(numbers, dtype=np.int64)
    for need in ("Freq", "Zreal", "Zimag"):
        if need not in df:
            raise IngestError(path, f"ZCURVE table without a {need!r} column", start + 2)
    f, zr, zi = (_numeric(df, c, path, rows) for c in ("Freq", "Zreal", "Zimag"))
    _check_complete({"Freq": f, "Zreal": zr, "Zimag": zi}, path, rows)

    def opt(c: str) -> np.ndarray:
        return _numeric(df, c, path, rows) if c in df else np.full(len(df), np.nan)

    out = {
        "frequency_Hz": f,
        "z_real_ohm": zr,
        "z_imag_ohm": zi,
        "test_time_s": opt("Time"),
        "voltage_V": opt("Vdc"),
        "current_A": opt("Idc"),
        "cycle": np.zeros(len(df), dtype=np.int64),
        "source_row": rows,
    }
    return finish_table(out, path, "impedance")


READERS = (
    Reader(
        name="gamry_dta",
        instrument="Gamry",
        description="Gamry Framework .DTA impedance spectrum (EISPOT, EISGALV)",
        sniff=sniff,
        read=read_gamry_dta,
        kind="impedance",
        extensions=(".dta",),
        priority=20,
    ),
)
