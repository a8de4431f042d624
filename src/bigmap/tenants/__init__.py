"""Built-in capability providers, one module per domain. ``bigmap worker NAME`` runs one."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bigmap.client.runtime import Tenant

# name -> "module:attribute" of a bigmap.client.Tenant
BUILTIN: dict[str, str] = {
    "electrolyte-model": "bigmap.tenants.electrolyte:tenant",
    "cell-sim": "bigmap.tenants.cell:tenant",
    "molecule-sim": "bigmap.tenants.molecule:tenant",
    "crystal-sim": "bigmap.tenants.crystal:tenant",
    "virtual-lab": "bigmap.tenants.lab:tenant",
}


def load_tenant(name: str) -> Tenant:
    """A built-in tenant by name, or ``package.module[:attribute]`` (default attribute
    ``tenant``)."""
    from bigmap.client.runtime import Tenant

    target = BUILTIN.get(name, name)
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        known = ", ".join(sorted(BUILTIN)) or "none yet"
        raise ValueError(
            f"no tenant {name!r}: not a built-in ({known}) nor an importable module ({exc})"
        ) from None
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
