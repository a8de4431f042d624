"""Excel workbooks (``.xlsx``) of cycler software, opened with openpyxl (read-only mode).

A sheet is read as a table whose header is its first non-empty row; ``source_row`` is the
sheet's own 1-based row number, so an error names the sheet and the row a user sees in Excel.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bigmap.analysis.table import IngestError

HEAD_ROWS = 5


def _open(path: Path) -> Any:
    import openpyxl

    try:
        return openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - zipfile, XML and openpyxl errors alike
        raise IngestError(path, f"not a readable .xlsx workbook: {exc}") from None


def sheet_heads(path: str | Path, n: int = HEAD_ROWS) -> dict[str, list[list[Any]]]:
    """Sheet name -> its first ``n`` non-empty rows."""
    wb = _open(Path(path))
    try:
        out = {}
        for ws in wb.worksheets:
            rows = []
            for row in ws.iter_rows(values_only=True):
                if any(v is not None and v != "" for v in row):
                    rows.append(list(row))
                if len(rows) >= n:
                    break
            out[ws.title] = rows
        return out
    finally:
        wb.close()


def read_sheet(
    path: str | Path, choose: Callable[[str, list[list[Any]]], bool]
) -> tuple[pd.DataFrame, np.ndarray]:
    """The first sheet that ``choose(name, first rows)`` accepts, as a frame with its header
    row, and the sheet row number of each data row. Several accepted sheets (Arbin splits long
    tests over ``Channel_1-006_1``, ``_2``, ...) are concatenated in order."""
    path = Path(path)
    wb = _open(path)
    frames, numbers, header = [], [], None
    try:
        for ws in wb.worksheets:
            it = ws.iter_rows(values_only=True)
            head: list[list[Any]] = []
            rows: list[tuple[Any, ...]] = []
            nums: list[int] = []
            hdr_row = None
            for k, row in enumerate(it, start=1):
                if hdr_row is None:
                    if any(v is not None and v != "" for v in row):
                        head.append(list(row))
                        if not choose(ws.title, head[:1]):
                            break
                        hdr_row = k
                    continue
                if all(v is None or v == "" for v in row):
                    continue
                rows.append(row)
                nums.append(k)
            if hdr_row is None:
                continue
            cols = [str(c).strip() if c is not None else f"_{j}" for j, c in enumerate(head[0])]
            if header is not None and cols != header:
                raise IngestError(
                    path, f"sheet {ws.title!r}: its header differs from the first data sheet's", 1
                )
            header = cols
            width = len(cols)
            frames.append(pd.DataFrame([list(r[:width]) for r in rows], columns=cols))
            numbers.extend(nums)
    finally:
        wb.close()
    if header is None:
        raise IngestError(path, "no sheet of the expected layout in the workbook")
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return df, np.asarray(numbers, dtype=np.int64)
