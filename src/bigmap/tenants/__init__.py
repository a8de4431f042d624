"""Built-in capability providers, one module per domain. ``bigmap worker NAME`` runs one:
a tenant of the ``bigmap.tenants`` entry points (``bigmap.plugins``), a file or a module."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from bigmap.plugins import TENANTS, PluginError, find, plugins

if TYPE_CHECKING:
    from bigmap.client.runtime import Tenant

# Tenants are the ``bigmap.tenants`` entry points (name -> "module:attribute" of a
# bigmap.client.Tenant): bigmap's built-ins (electrolyte-model, cell-sim, molecule-sim,
# crystal-sim, virtual-lab) are declared in its pyproject.toml, an installed package's in its own.
ENTRY_POINTS = TENANTS


def _installed() -> dict[str, str]:
    """Tenants of installed distributions, bigmap's own first: name -> target."""
    return {p.name: p.value for p in plugins(ENTRY_POINTS)}


def _import_file(path: Path) -> ModuleType:
    """The module of a ``.py`` file, or the package of a folder with ``__init__.py``; its
    folder goes on ``sys.path`` so that it may import its neighbours."""
    path = path.resolve()
    if path.is_dir():
        if not (path / "__init__.py").exists():
            raise ValueError(f"{path} is a folder without __init__.py: give the tenant's .py file")
        sys.path.insert(0, str(path.parent))
        return importlib.import_module(path.name)
    if path.suffix != ".py":
        raise ValueError(f"{path} is not a Python file (.py)")
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def _import(module_name: str, name: str) -> ModuleType:
    """Import ``module_name``, also from the current folder (as ``python -m`` would)."""
    top = module_name.split(".")[0]
    for attempt in range(2):
        try:
            return importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name not in (top, module_name) and not module_name.startswith(f"{exc.name}."):
                raise ValueError(f"{name}: importing it failed: {exc}") from None
            if attempt == 0 and os.getcwd() not in sys.path and "" not in sys.path:
                sys.path.insert(0, os.getcwd())
                importlib.invalidate_caches()
                continue
            known = ", ".join(_installed())
            raise ValueError(
                f"no tenant {name!r}: not a built-in or installed tenant ({known}), nor a .py "
                f"file, nor a module in this folder or on PYTHONPATH ({exc})"
            ) from None
    raise AssertionError("unreachable")


def load_tenant(name: str) -> Tenant:
    """A tenant: a built-in by name (``virtual-lab``), an installed one (entry point group
    ``bigmap.tenants``), a file (``my_tenant.py[:attribute]``), a package folder, or a module
    (``package.module[:attribute]``, also from the current folder). The attribute defaults to
    ``tenant``, or the module's only ``Tenant``."""
    from bigmap.client.runtime import Tenant

    try:
        plugin = find(ENTRY_POINTS, name)
    except PluginError as exc:
        raise ValueError(str(exc)) from None
    target = plugin.value if plugin is not None else name
    module_name, _, attr = target.partition(":")
    path = Path(module_name)
    if module_name.endswith(".py") or (path.exists() and ("/" in module_name or path.is_dir())):
        if not path.exists():
            raise ValueError(f"no tenant file {module_name}")
        module = _import_file(path)
        module_name = module.__name__
    else:
        module = _import(module_name, name)
    obj = getattr(module, attr or "tenant", None)
    if obj is None:
        found = [v for v in vars(module).values() if isinstance(v, Tenant)]
        if len(found) != 1:
            raise ValueError(
                f"{module_name} has no attribute {attr or 'tenant'!r} holding a Tenant"
            )
        obj = found[0]
    if not isinstance(obj, Tenant):
        raise ValueError(f"{target} is a {type(obj).__name__}, not a bigmap.client.Tenant")
    return obj
