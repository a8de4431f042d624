"""The registry of readers and detection by content.

A reader is a ``Reader``: a name (the ``--format``), the instrument family, a ``sniff`` that
looks at a ``Sample`` of the file (its first bytes, its first lines, the sheet names and first
rows of a workbook, the member names of a zip container) and says whether the file is its
format, and a ``read`` that returns the normalised table. Detection asks every registered
reader in order of ``priority`` (lowest first) and takes the first that says yes; the
extension is only a hint that some sniffs use to break ties, never the decision alone.

The registered readers are the ``bigmap.readers`` entry points (``bigmap.plugins``), loaded
on first use: bigmap's own families (declared in its pyproject.toml) and those of installed
packages (an entry point's value is a ``Reader`` or a sequence of them). A package adds a
format by declaring one; ``register(Reader(...))`` adds one for this process. Nothing in the
detection changes.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from bigmap import plugins
from bigmap.analysis.table import IngestError

SAMPLE_BYTES = 1 << 17
SAMPLE_LINES = 120


@dataclass
class Sample:
    """What detection may look at: cheap to build, read once per file."""

    path: Path
    head: bytes

    @classmethod
    def of(cls, path: Path) -> Sample:
        with open(path, "rb") as f:
            return cls(path, f.read(SAMPLE_BYTES))

    @property
    def suffix(self) -> str:
        return self.path.suffix.lower()

    @cached_property
    def text(self) -> str:
        raw = self.head
        if raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start >= len(raw) - 3:  # a character cut at the end of the sample
                return raw[: exc.start].decode("utf-8")
            return raw.decode("latin-1")

    @cached_property
    def lines(self) -> list[str]:
        return self.text.splitlines()[:SAMPLE_LINES]

    @property
    def is_binary(self) -> bool:
        return b"\x00" in self.head[:4096]

    @cached_property
    def zip_names(self) -> list[str]:
        if not self.head.startswith(b"PK\x03\x04"):
            return []
        try:
            with zipfile.ZipFile(self.path) as z:
                return z.namelist()
        except (zipfile.BadZipFile, OSError):
            return []

    @property
    def is_xlsx(self) -> bool:
        return any(n.startswith("xl/workbook") for n in self.zip_names)

    @cached_property
    def sheets(self) -> dict[str, list[list[Any]]]:
        """Sheet name -> its first rows (a workbook only)."""
        if not self.is_xlsx:
            return {}
        from bigmap.analysis.readers.excel import sheet_heads

        try:
            return sheet_heads(self.path)
        except Exception:  # noqa: BLE001 - a broken workbook is no format of ours
            return {}

    def has_line(self, pred: Callable[[str], bool], within: int = SAMPLE_LINES) -> bool:
        return any(pred(ln) for ln in self.lines[:within])


@dataclass(frozen=True)
class Reader:
    """One file format: how to recognise it and how to read it."""

    name: str
    instrument: str
    description: str
    sniff: Callable[[Sample], bool]
    read: Callable[[Path], pd.DataFrame]
    library: str = "bigmap"  # the distribution (or system tool) that parses the file
    kind: str = "cycling"  # cycling or impedance (or both: "auto")
    extensions: tuple[str, ...] = ()
    priority: int = 50
    tested_with: tuple[str, ...] = field(default=(), compare=False)


_REGISTRY: dict[str, Reader] = {}
#: reader name -> the entry point it came from (``bigmap.plugins.Plugin``)
ORIGIN: dict[str, plugins.Plugin] = {}
_loaded: list[bool] = []


def load_plugins(*, refresh: bool = False) -> list[Reader]:
    """Register the readers of the ``bigmap.readers`` entry points (once, or again with
    ``refresh``: a distribution installed since). bigmap's own come first and a plug-in may
    not take a name already registered; a plug-in that cannot be used raises
    ``PluginError`` naming it and its distribution."""
    if _loaded and not refresh:
        return []
    _loaded[:] = [True]
    added = []
    for p in plugins.plugins(plugins.READERS):
        obj = p.load()
        found = obj if isinstance(obj, (list, tuple)) else (obj,)
        for r in found:
            if not isinstance(r, Reader):
                raise plugins.PluginError(
                    f"{p.group} entry point {p.name!r} of {p.distribution} gives a "
                    f"{type(r).__name__}, not a bigmap.analysis.readers.Reader"
                )
            known = ORIGIN.get(r.name)
            if known is not None and known.distribution == p.distribution:
                continue  # loaded before (refresh)
            if r.name in _REGISTRY:
                where = f"{known.distribution}'s {known.name!r}" if known else "register()"
                raise plugins.PluginError(
                    f"{p.group} entry point {p.name!r} of {p.distribution}: a reader named "
                    f"{r.name!r} is already registered (by {where})"
                )
            _REGISTRY[r.name] = r
            ORIGIN[r.name] = p
            added.append(r)
    return added


def register(reader: Reader, *, replace: bool = False) -> Reader:
    """Add a reader (a new format) to the registry; detection asks it from now on."""
    load_plugins()
    if reader.name in _REGISTRY and not replace:
        raise ValueError(f"a reader named {reader.name!r} is already registered")
    _REGISTRY[reader.name] = reader
    return reader


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)
    ORIGIN.pop(name, None)


def readers() -> list[Reader]:
    """The registered readers in the order detection asks them."""
    load_plugins()
    return sorted(_REGISTRY.values(), key=lambda r: (r.priority, r.name))


def reader(name: str, path: Path | str = "") -> Reader:
    load_plugins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise IngestError(
            path or name, f"unknown format {name!r}; known: {', '.join(sorted(_REGISTRY))}"
        ) from None


def detect(path: str | Path) -> Reader:
    """The reader for a file, from its content."""
    path = Path(path)
    if not path.is_file():
        raise IngestError(path, "no such file")
    sample = Sample.of(path)
    if not sample.head:
        raise IngestError(path, "the file is empty")
    for r in readers():
        try:
            if r.sniff(sample):
                return r
        except Exception:  # noqa: BLE001 - a sniff that cannot decide says no
            continue
    hinted = [r.name for r in readers() if sample.suffix and sample.suffix in r.extensions]
    if hinted:
        raise IngestError(
            path,
            f"its extension {sample.suffix} suggests {', '.join(hinted)}, but its content is not "
            f"that format (first bytes {sample.head[:16]!r}: wrong magic or header)",
            row=1,
        )
    raise IngestError(
        path,
        "unknown cycler file format: none of the readers recognises its content "
        f"(known: {', '.join(sorted(_REGISTRY))}; give --format)",
        row=1,
    )
