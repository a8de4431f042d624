"""Tenant limitations in the notation of FINALES, checked and matched.

A tenant declares, per capability, the parameter values it can serve. The notation is
FINALES' (see ``tests/data/finales/examples/tenants``):

- the limitations of a capability are an object ``{parameter: limitation}``, a list of
  such objects, or ``{"anyOf": [...]}`` of them (alternatives);
- a limitation is a list of alternatives (a bare value counts as a list of one; an empty
  list means "anything");
- an alternative is
  * a range ``{"min": a, "max": b}`` (also ``minimum``/``maximum``, optional ``step``),
    inclusive; applied to every element when the value is an array of numbers;
  * an object: each of its keys limits the same key of the value (recursively);
    an object naming a chemical by ``InChIKey`` matches on the InChIKey alone;
  * a list: the value is an array whose every element matches one of its items
    (a formulation: each component must be one of the listed chemicals, in range);
  * any other value: equality.

Parameters that a limitation does not mention are not limited.
"""

from __future__ import annotations

import math
from typing import Any

from bigmap.schemas.validation import ErrorDetail, error, json_path

_RANGE_KEYS = {"min", "max", "minimum", "maximum", "step"}
_TOL = 1e-9


def _is_range(alt: Any) -> bool:
    return (
        isinstance(alt, dict)
        and bool(alt)
        and set(alt) <= _RANGE_KEYS
        and bool(set(alt) & {"min", "max", "minimum", "maximum"})
    )


def _bounds(alt: dict[str, Any]) -> tuple[float, float, float | None]:
    lo = alt.get("min", alt.get("minimum", -math.inf))
    hi = alt.get("max", alt.get("maximum", math.inf))
    return float(lo), float(hi), (float(alt["step"]) if alt.get("step") else None)


def _alternatives(limitation: Any) -> list[Any]:
    return limitation if isinstance(limitation, list) else [limitation]


def top_level_alternatives(limitations: Any) -> list[dict[str, Any]]:
    """The alternative parameter-limitation objects of one capability."""
    if isinstance(limitations, dict) and set(limitations) == {"anyOf"}:
        limitations = limitations["anyOf"]
    if isinstance(limitations, dict):
        return [limitations]
    if isinstance(limitations, list):
        return [alt for alt in limitations if isinstance(alt, dict)]
    return []


# ----------------------------------------------------------------------------- checking


def check(
    limitations: Any, parameter_schema: dict[str, Any] | None, loc: list[str | int]
) -> tuple[list[ErrorDetail], list[str]]:
    """Structural check of a capability's limitations, made when a tenant is registered.

    Returns (errors, warnings). Errors: a malformed structure, a range whose bounds are not
    numbers or whose minimum exceeds its maximum, a step that is not positive. Warnings:
    limits on parameters the capability's schema does not define (FINALES' own tenant
    files have some; they limit nothing).
    """
    errors: list[ErrorDetail] = []
    warnings: list[str] = []
    if isinstance(limitations, dict) and set(limitations) == {"anyOf"}:
        limitations = limitations["anyOf"]
        loc = [*loc, "anyOf"]
    if isinstance(limitations, dict):
        alts: list[tuple[list[str | int], Any]] = [(loc, limitations)]
    elif isinstance(limitations, list):
        alts = [([*loc, i], alt) for i, alt in enumerate(limitations)]
    else:
        return [
            error(loc, "limitations must be an object, a list of objects or {anyOf: [...]}")
        ], []
    known = None
    if parameter_schema and isinstance(parameter_schema.get("properties"), dict):
        known = set(parameter_schema["properties"])
    for alt_loc, alt in alts:
        if not isinstance(alt, dict):
            errors.append(error(alt_loc, "each alternative of the limitations must be an object"))
            continue
        for key, lim in alt.items():
            if known is not None and key not in known:
                warnings.append(
                    f"{json_path([*alt_loc, key])}: the capability has no parameter '{key}'; "
                    "this limitation limits nothing"
                )
            errors.extend(_check_limitation(lim, [*alt_loc, key]))
    return errors, warnings


def _check_limitation(lim: Any, loc: list[str | int]) -> list[ErrorDetail]:
    errors: list[ErrorDetail] = []
    for i, alt in enumerate(_alternatives(lim)):
        alt_loc = [*loc, i] if isinstance(lim, list) else loc
        if _is_range(alt):
            for key in ("min", "max", "minimum", "maximum", "step"):
                if key in alt and (
                    isinstance(alt[key], bool) or not isinstance(alt[key], int | float)
                ):
                    errors.append(error([*alt_loc, key], f"'{key}' of a range must be a number"))
            if errors:
                continue
            lo, hi, step = _bounds(alt)
            if lo > hi:
                errors.append(error(alt_loc, f"range minimum {lo} exceeds its maximum {hi}"))
            if step is not None and step <= 0:
                errors.append(error([*alt_loc, "step"], "a range step must be positive"))
        elif isinstance(alt, dict):
            for key, sub in alt.items():
                errors.extend(_check_limitation(sub, [*alt_loc, key]))
        elif isinstance(alt, list):
            for j, item in enumerate(alt):
                errors.extend(_check_limitation(item, [*alt_loc, j]))
    return errors


# ----------------------------------------------------------------------------- matching


def outside(limitations: Any, parameters: dict[str, Any]) -> str | None:
    """None when ``parameters`` lie inside ``limitations``, else the reason why not."""
    alts = top_level_alternatives(limitations)
    if not alts:
        return None
    reasons = []
    for alt in alts:
        reason = None
        for key, lim in alt.items():
            if key in parameters:
                reason = _outside(lim, parameters[key], ["$", key])
                if reason:
                    break
        if reason is None:
            return None
        reasons.append(reason)
    return reasons[0] if len(reasons) == 1 else "; or ".join(reasons)


def _fmt(loc: list[str | int]) -> str:
    return json_path(loc[1:])


def _outside(lim: Any, value: Any, loc: list[str | int]) -> str | None:
    alts = _alternatives(lim)
    if not alts:
        return None
    first_reason = None
    for alt in alts:
        reason = _outside_alt(alt, value, loc)
        if reason is None:
            return None
        first_reason = first_reason or reason
    if len(alts) > 1 and not any(isinstance(a, dict | list) for a in alts):
        return f"{_fmt(loc)}: {value!r} is not one of {alts!r}"
    return first_reason


def _outside_alt(alt: Any, value: Any, loc: list[str | int]) -> str | None:
    if _is_range(alt):
        lo, hi, step = _bounds(alt)
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int | float):
                return f"{_fmt(loc)}: {v!r} is not a number"
            tol = _TOL * max(1.0, abs(lo), abs(hi))
            if v < lo - tol or v > hi + tol:
                return f"{_fmt(loc)}: {v} is outside [{lo}, {hi}]"
            if step:
                n = (v - lo) / step
                if abs(n - round(n)) > 1e-6:
                    return f"{_fmt(loc)}: {v} is not on the grid {lo} + k*{step}"
        return None
    if isinstance(alt, dict):
        if not isinstance(value, dict):
            return f"{_fmt(loc)}: expected an object"
        if "InChIKey" in alt and "InChIKey" in value:
            return _outside(alt["InChIKey"], value["InChIKey"], [*loc, "InChIKey"])
        for key, sub in alt.items():
            if key in value:
                reason = _outside(sub, value[key], [*loc, key])
                if reason:
                    return reason
        return None
    if isinstance(alt, list):
        if not isinstance(value, list):
            return f"{_fmt(loc)}: expected an array"
        for i, item in enumerate(value):
            reasons = [_outside(spec, item, [*loc, i]) for spec in alt] if alt else [None]
            if all(r is not None for r in reasons):
                # report the most specific reason: the one from a matching identity, if any
                specific = [r for r in reasons if r and "InChIKey" not in r]
                return specific[0] if specific else reasons[0]
        return None
    if (
        isinstance(alt, int | float)
        and isinstance(value, int | float)
        and not isinstance(value, bool)
    ):
        return (
            None
            if math.isclose(alt, value, rel_tol=1e-12, abs_tol=1e-12)
            else (f"{_fmt(loc)}: {value!r} is not {alt!r}")
        )
    return None if alt == value else f"{_fmt(loc)}: {value!r} is not {alt!r}"
