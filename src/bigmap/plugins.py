"""Plug-ins: what installed distributions add to bigmap, through entry points.

Three groups, each read by its registry (bigmap's built-ins register through the same groups,
declared in its ``pyproject.toml``; a third-party package adds its own in its own):

| group | value of an entry point | read by |
|---|---|---|
| ``bigmap.tenants`` | a ``bigmap.client.Tenant`` (``module:attribute``) | ``bigmap.tenants.load_tenant`` (``bigmap worker NAME``) |
| ``bigmap.readers`` | a ``Reader`` or a sequence of them | ``bigmap.analysis.readers.registry`` (detection, ``bigmap ingest``) |
| ``bigmap.strategies`` | a ``Strategy`` | ``bigmap.planner.strategies`` (``strategy.name`` of a campaign) |

``bigmap worker --list`` prints every entry point with the distribution that declares it.
This module needs only the standard library, so every layer may import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

TENANTS = "bigmap.tenants"
READERS = "bigmap.readers"
STRATEGIES = "bigmap.strategies"
GROUPS = (TENANTS, READERS, STRATEGIES)


class PluginError(ValueError):
    """An entry point that cannot be used: ambiguous, missing, or not what its group holds."""


@dataclass(frozen=True)
class Plugin:
    """One entry point: its group and name, its target (``module:attribute``) and where it
    comes from (the distribution that declares it, its version and where it is installed)."""

    group: str
    name: str
    value: str
    distribution: str
    version: str
    location: str
    entry_point: EntryPoint

    @property
    def module(self) -> str:
        return self.value.partition(":")[0]

    @property
    def builtin(self) -> bool:
        return self.distribution == "bigmap"

    def load(self) -> Any:
        try:
            return self.entry_point.load()
        except Exception as exc:  # noqa: BLE001 - any failure of a plug-in's import is named
            raise PluginError(
                f"{self.group} entry point {self.name!r} = {self.value!r} of {self.distribution} "
                f"{self.version} cannot be loaded: {type(exc).__name__}: {exc}"
            ) from exc


def plugins(group: str) -> list[Plugin]:
    """The entry points of ``group`` on ``sys.path`` now (bigmap's own first, then by name).

    Raises ``PluginError`` if bigmap's own are missing (an install older than its
    ``pyproject.toml``: reinstall with ``pip install -e .``)."""
    found = []
    for ep in entry_points(group=group):
        dist = ep.dist
        name = dist.metadata["Name"] if dist is not None else "?"
        found.append(
            Plugin(
                group=group,
                name=ep.name,
                value=ep.value,
                distribution=name or "?",
                version=dist.version if dist is not None else "?",
                location=str(dist.locate_file("")) if dist is not None else "?",
                entry_point=ep,
            )
        )
    if not any(p.builtin for p in found):
        raise PluginError(
            f"bigmap's own {group} entry points are not installed: its metadata is older than "
            "its pyproject.toml; reinstall it (pip install -e . or make install)"
        )
    return sorted(found, key=lambda p: (not p.builtin, p.name))


def find(group: str, name: str) -> Plugin | None:
    """The entry point ``name`` of ``group``, or None; a name two distributions declare is
    refused (``PluginError`` naming both)."""
    matches = [p for p in plugins(group) if p.name == name]
    dists = sorted({p.distribution for p in matches})
    if len(dists) > 1:
        raise PluginError(
            f"{group} entry point {name!r} is declared by several distributions "
            f"({', '.join(dists)}): uninstall all but one"
        )
    return matches[0] if matches else None


def names(group: str) -> list[str]:
    """The names of ``group``'s entry points (bigmap's own first)."""
    return list(dict.fromkeys(p.name for p in plugins(group)))
