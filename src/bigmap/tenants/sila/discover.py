"""What a SiLA 2 server offers, and a mapping skeleton to start from (``bigmap sila discover``)."""

from __future__ import annotations

import re
from typing import Any

import yaml

from bigmap.tenants.sila.fdl import FeatureInfo, SilaType
from bigmap.tenants.sila.mapping import Mapping, ServerSpec, TenantSpec


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def describe(info: dict[str, Any], features: dict[str, FeatureInfo]) -> str:
    """A readable listing of the server and its features."""
    lines = [
        f"{info.get('server_name')} ({info.get('server_type')} {info.get('server_version')}), "
        f"{info.get('address')}, uuid {info.get('server_uuid')}",
        f"  {info.get('description')}",
    ]
    for f in features.values():
        lines.append(f"feature {f.identifier} ({f.fully_qualified}): {f.display_name}")
        for c in f.commands.values():
            kind = "observable command" if c.observable else "command"
            lines.append(f"  {kind} {f.identifier}.{c.identifier}: {c.description}")
            for p in c.parameters.values():
                lines.append(f"    parameter {p.identifier}: {p.type.describe()}")
            for r in c.responses.values():
                lines.append(f"    response  {r.identifier}: {r.type.describe()}")
            for r in c.intermediate.values():
                lines.append(f"    intermediate {r.identifier}: {r.type.describe()}")
            if c.errors:
                lines.append(f"    errors    {', '.join(c.errors)}")
        for p in f.properties.values():
            kind = "observable property" if p.observable else "property"
            lines.append(f"  {kind} {f.identifier}.{p.identifier}: {p.type.describe()}")
    return "\n".join(lines)


def _unit_hint(t: SilaType) -> str | None:
    leaf = t.leaf()
    return leaf.unit.label if leaf.unit is not None else None


def skeleton(server: ServerSpec, info: dict[str, Any], features: dict[str, FeatureInfo]) -> str:
    """A mapping file to edit: every command as a capability, every parameter and response
    mapped by name, units copied from the device (check them), observable properties as status."""
    caps = []
    status = []
    for f in features.values():
        if f.identifier == "EmulatorInfo":
            continue
        for c in f.commands.values():
            params: dict[str, Any] = {}
            for p in c.parameters.values():
                entry: dict[str, Any] = {"from": f"params.{_snake(p.identifier)}"}
                if (u := _unit_hint(p.type)) is not None:
                    entry["unit"] = u
                params[p.identifier] = entry
            result: dict[str, Any] = {}
            for r in c.responses.values():
                entry = {"from": f"response.{r.identifier}"}
                if (u := _unit_hint(r.type)) is not None:
                    entry["unit"] = u
                result[_snake(r.identifier)] = entry
            cap: dict[str, Any] = {
                "quantity": _snake(f.identifier),
                "method": _snake(c.identifier),
                "command": f"{f.identifier}.{c.identifier}",
                "description": c.description,
                "parameters": params,
                "result": result,
            }
            if c.errors:
                cap["errors"] = {e: "calculation_failed" for e in c.errors}
            caps.append(cap)
        status += [f"{f.identifier}.{p}" for p, info_ in f.properties.items() if info_.observable]
    name = re.sub(r"[^a-z0-9]+", "-", str(info.get("server_name") or "sila-device").lower()).strip(
        "-"
    )
    doc = {
        "server": server.model_dump(exclude_none=True),
        "tenant": TenantSpec(name=name or "sila-device").model_dump(),
        "status": {"properties": status, "poll_s": 5.0},
        "capabilities": caps,
    }
    Mapping.model_validate(doc)  # the skeleton is itself a valid mapping
    head = (
        "# bigmap mapping of a SiLA 2 server, written by `bigmap sila discover`.\n"
        "# Edit quantity/method (or use a capability the broker knows, e.g. conductivity/two_electrode),\n"
        "# the request paths (params.*) and the units (pint) of bigmap's side; see docs/lab.md.\n"
    )
    return head + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
