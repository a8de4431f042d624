"""Readers of cycler and impedance files into the normalised tables (``bigmap.analysis.table``).

One module per instrument family (``arbin``, ``biologic``, ``maccor``, ``neware``, ``gamry``,
``vendors`` for Basytec/Novonix/PEC/Landt/Digatron, ``bdf`` for the Battery Data Format,
``generic`` for plain CSV); ``registry`` holds them and detects a file's format by its content;
``common`` and ``mapped`` are what they share. ``docs/lab.md`` lists the formats, the library
that reads each and the real files it is tested on.

    from bigmap.analysis.readers import read_cycler_file
    df = read_cycler_file("cell.ndax")          # detected by content
    df.attrs["source"]                          # file, sha256, format, reader and its version

The readers are the ``bigmap.readers`` entry points: bigmap's families are declared in its
pyproject.toml (``arbin = "bigmap.analysis.readers.arbin:READERS"``), and an installed package
adds a format by declaring its own (see ``registry``); ``register(Reader(...))`` adds one for
this process. Detection needs no edit.
Every reader raises ``IngestError`` naming the file and the row (line or record) for a file it
cannot read.
"""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path

import pandas as pd

from bigmap.analysis.readers import arbin
from bigmap.analysis.readers.bdf import write_bdf
from bigmap.analysis.readers.common import _arrow_block, _durations, _durations_arrow
from bigmap.analysis.readers.registry import (
    Reader,
    Sample,
    detect,
    load_plugins,
    reader,
    readers,
    register,
    unregister,
)
from bigmap.analysis.table import IngestError, file_sha256, write_parquet


def formats() -> tuple[str, ...]:
    """The names of the registered readers (built-in, installed and registered here)."""
    return tuple(r.name for r in readers())


def detect_format(path: str | Path) -> str:
    """The format of a file, from its content."""
    return detect(path).name


@cache
def library_version(library: str) -> str:
    """The version of the library (or system tool) that parses a format."""
    if library == "bigmap":
        from bigmap import __version__

        return __version__
    if library == "mdbtools":
        exe = shutil.which("mdb-export")
        if not exe:
            return "absent"
        try:
            out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10)
            return (out.stdout or out.stderr).strip().split()[-1].lstrip("v")
        except (OSError, subprocess.TimeoutExpired, IndexError):
            return "unknown"
    try:
        return metadata.version(library)
    except metadata.PackageNotFoundError:
        return "unknown"


def read_cycler_file(path: str | Path, format: str | None = None) -> pd.DataFrame:
    """Read a cycler or impedance file into its normalised table. ``df.attrs["source"]`` says
    where it came from: file name, SHA-256, format, instrument, the reader and the library
    that parsed it with its version, rows and kind (cycling or impedance)."""
    path = Path(path)
    if not path.is_file():
        raise IngestError(path, "no such file")
    r = reader(format, path) if format else detect(path)
    try:
        df = r.read(path)
    except IngestError:
        raise
    except (ValueError, KeyError, IndexError, TypeError, OSError) as exc:
        raise IngestError(path, f"cannot read as {r.name}: {type(exc).__name__}: {exc}") from None
    library = arbin.res_library() if r.name == "arbin_res" else r.library
    df.attrs["source"] = {
        "file": path.name,
        "sha256": file_sha256(path),
        "format": r.name,
        "instrument": r.instrument,
        "reader": f"{r.read.__module__}.{r.read.__name__}",
        "library": library,
        "library_version": library_version(library),
        "bigmap_version": library_version("bigmap"),
        "kind": df.attrs.get("kind", "cycling"),
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


__all__ = [
    "IngestError",
    "Reader",
    "Sample",
    "_arrow_block",
    "_durations",
    "_durations_arrow",
    "detect",
    "detect_format",
    "formats",
    "ingest",
    "library_version",
    "load_plugins",
    "read_cycler_file",
    "reader",
    "readers",
    "register",
    "unregister",
    "write_bdf",
]
