"""Units of the numbers in requests and results, and conversions between them (pint).

Where a capability says the unit of a field: its ``units`` (by dotted path or field name), a
``unit`` key beside the number, or its JSON Schema node (a ``unit`` keyword, or "Unit: ..." /
"[unit]" in the description, as FINALES writes them). ``parse_unit`` reads a unit string with
pint (mass, mole and volume *fractions* are dimensionless); ``converter`` gives the function
that converts values between two units (offsets included, so degC to K works), or raises
``UnitError`` naming both units and their dimensions.
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache
from typing import Any


class UnitError(ValueError):
    """A unit that pint cannot read, or two units that cannot be converted."""


def unit_from_text(text: str) -> str | None:
    """A unit named in a description: "Unit: kelvin" (FINALES) or "[A.h] per cycle"."""
    m = re.search(r"Unit:\s*([^.;,\n]+)", text)
    if m:
        return m.group(1).strip()
    m = re.search(r"\[([^\]]+)\]", text)
    if m:
        return m.group(1).strip().replace(".", "*")
    return None


def subschema(schema: dict[str, Any] | None, path: list[str | int]) -> dict[str, Any] | None:
    """The JSON Schema node of a data path (follows $ref, allOf, anyOf, items)."""
    if not schema:
        return None
    root = schema

    def resolve(node: Any, depth: int = 0) -> Any:
        if not isinstance(node, dict) or depth > 20:
            return node
        if "$ref" in node and isinstance(node["$ref"], str) and node["$ref"].startswith("#/"):
            target: Any = root
            for part in node["$ref"][2:].split("/"):
                target = target.get(part, {}) if isinstance(target, dict) else {}
            merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
            return resolve(merged, depth + 1)
        for key in ("allOf", "anyOf", "oneOf"):
            if key in node and isinstance(node[key], list):
                for sub in node[key]:
                    sub = resolve(sub, depth + 1)
                    if isinstance(sub, dict) and sub.get("type") != "null":
                        merged = {**sub, **{k: v for k, v in node.items() if k != key}}
                        return merged
        return node

    node: Any = resolve(schema)
    for part in path:
        if not isinstance(node, dict):
            return None
        if isinstance(part, int):
            node = resolve(node.get("items", {}))
        else:
            props = node.get("properties", {})
            if part in props:
                node = resolve(props[part])
            elif isinstance(node.get("additionalProperties"), dict):
                node = resolve(node["additionalProperties"])
            else:
                return None
    return node if isinstance(node, dict) else None


def unit_for(
    path: list[str | int],
    key: str,
    parent: dict[str, Any],
    units: dict[str, str],
    schema: dict[str, Any] | None,
    cache: dict[str, str | None] | None = None,
) -> str | None:
    """The unit of the number at ``path``: the capability's ``units`` (by dotted path or key),
    a ``unit`` beside it, else its schema's ``unit`` or description. ``cache`` keeps the
    schema's answers by path (the schema does not change between calls)."""
    dotted = ".".join(str(p) for p in path if not isinstance(p, int))
    for k in (dotted, key):
        if k in units:
            return units[k]
    for k in ("unit", "units"):
        if isinstance(parent.get(k), str):
            return parent[k]
    if cache is not None and dotted in cache:
        return cache[dotted]
    found = None
    sub = subschema(schema, path)
    if sub:
        if isinstance(sub.get("unit"), str):
            found = sub["unit"]
        elif isinstance(sub.get("description"), str):
            found = unit_from_text(sub["description"])
    if cache is not None:
        cache[dotted] = found
    return found


# ----------------------------------------------------------------------------- pint

# descriptions of a dimensionless share that pint has no name for
_FRACTIONS = re.compile(r"^(mass|mole|molar|volume|weight|atom|atomic)?\s*(fraction|ratio)s?$")


@lru_cache(maxsize=1)
def registry() -> Any:
    import pint

    return pint.UnitRegistry(autoconvert_offset_to_baseunit=True)


def parse_unit(text: str) -> Any:
    """The pint unit of ``text`` (``""``, ``"mass fraction"``: dimensionless); ``UnitError``
    with spelling suggestions when pint cannot read it."""
    t = (text or "").strip()
    ureg = registry()
    if not t or _FRACTIONS.match(t.lower()) or t.lower() in ("1", "-", "dimensionless"):
        return ureg.dimensionless
    try:
        q = ureg.parse_expression(t)
    except Exception as exc:  # pint raises several kinds (undefined unit, syntax)
        raise UnitError(f"{t!r} is not a unit pint can read ({_why(exc, t)})") from None
    if not hasattr(q, "units") or getattr(q, "magnitude", 1) != 1:
        raise UnitError(f"{t!r} is a quantity, not a unit")
    return q.units


def _why(exc: Exception, text: str) -> str:
    name = getattr(exc, "unit_names", None) or getattr(exc, "args", [""])[:1]
    bad = name[0] if isinstance(name, list | tuple) and name else str(exc)
    bad = str(bad).strip("'\"")
    known = [u for u in dir(registry()) if not u.startswith("_")] + list(_COMMON)
    close = difflib.get_close_matches(bad, known, n=3, cutoff=0.75)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown unit {bad!r}{hint}"


_COMMON = (
    "kg",
    "g",
    "mg",
    "mol",
    "mmol",
    "L",
    "mL",
    "uL",
    "m",
    "cm",
    "mm",
    "um",
    "nm",
    "S",
    "mS",
    "K",
    "degC",
    "V",
    "mV",
    "A",
    "mA",
    "Ah",
    "mAh",
    "W",
    "J",
    "kJ",
    "eV",
    "s",
    "h",
    "min",
    "Pa",
    "kPa",
    "bar",
    "ohm",
    "Hz",
)


@lru_cache(maxsize=512)
def converter(from_unit: str, to_unit: str) -> Any:
    """``f(value) -> value`` from ``from_unit`` to ``to_unit``; ``UnitError`` when they measure
    different things."""
    a, b = parse_unit(from_unit), parse_unit(to_unit)
    if a == b:
        return lambda v: v
    ureg = registry()
    try:
        ureg.Quantity(1.0, a).to(b)
    except Exception:
        raise UnitError(
            f"{from_unit!r} ({_dim(a)}) cannot be converted to {to_unit!r} ({_dim(b)})"
        ) from None

    def convert(v: float) -> float:
        return float(ureg.Quantity(v, a).to(b).magnitude)

    return convert


@lru_cache(maxsize=512)
def scale(from_unit: str, to_unit: str) -> float:
    """The factor that converts a *difference* (an uncertainty) from one unit to the other."""
    f = converter(from_unit, to_unit)
    return f(1.0) - f(0.0)


def _dim(u: Any) -> str:
    d = str(registry().Quantity(1.0, u).dimensionality)
    return "dimensionless" if d == "dimensionless" else d


def same_unit(a: str, b: str) -> bool:
    return parse_unit(a) == parse_unit(b)
