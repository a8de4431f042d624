"""JSON Schema validation with errors that name the JSON path of the offending field.

Schemas come from tenants that the broker does not trust, so a schema is data, never an
instruction to fetch or to compute without bound:

- only local references (``#/...``) resolve: both validators are built offline (the Rust one
  with ``offline=True``, the Python one with an empty ``referencing`` registry that retrieves
  nothing), and :func:`check_schema` refuses any other ``$ref``/``$dynamicRef`` by its path;
- ``pattern`` and ``patternProperties`` run in linear-time engines: the Rust ``regex`` crate
  (``RegexOptions``, not the backtracking ``fancy-regex``) and RE2 in Python (google-re2); a
  pattern RE2 cannot compile (lookaround, backreferences) is refused at registration;
- a schema is at most ``LIMITS.max_bytes`` long (compact JSON) and ``LIMITS.max_depth`` deep.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jsonschema_rs
import re2
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import SchemaError, ValidationError, best_match
from pydantic import BaseModel
from referencing import Registry


@dataclass
class SchemaLimits:
    """Bounds on a schema accepted at registration (set from ``Settings`` by the server)."""

    max_bytes: int = 256 * 1024
    max_depth: int = 64


LIMITS = SchemaLimits()

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False
_REF_KEYS = ("$ref", "$dynamicRef", "$recursiveRef")


@lru_cache(maxsize=4096)
def _re2(pattern: str) -> Any:
    return re2.compile(pattern, _RE2_OPTIONS)


def _pattern(validator: Any, patrn: str, instance: Any, schema: dict[str, Any]) -> Any:
    """``pattern`` in RE2 (linear time) instead of Python's backtracking ``re``."""
    if validator.is_type(instance, "string") and not _re2(patrn).search(instance):
        yield ValidationError(f"{instance!r} does not match {patrn!r}")


_Validator = validators.extend(Draft202012Validator, {"pattern": _pattern})
_NO_REMOTE = Registry()  # retrieves nothing: an unknown URI is an unresolvable reference


class ErrorDetail(BaseModel):
    """One problem with a document: where (``loc`` and ``path``) and what (``msg``)."""

    loc: list[str | int]
    path: str
    msg: str
    type: str = "value_error"


def json_path(loc: list[str | int] | tuple[str | int, ...]) -> str:
    out = "$"
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}"
    return out


def error(loc: list[str | int], msg: str, type_: str = "value_error") -> ErrorDetail:
    return ErrorDetail(loc=list(loc), path=json_path(loc), msg=msg, type=type_)


def _has_pattern_properties(node: Any) -> bool:
    if isinstance(node, dict):
        return "patternProperties" in node or any(map(_has_pattern_properties, node.values()))
    if isinstance(node, list):
        return any(map(_has_pattern_properties, node))
    return False


@lru_cache(maxsize=512)
def _validators(schema_text: str) -> tuple[Any, Any]:
    """The Rust validator (offline, linear-time regexes) and the Python one for messages, or
    None for it when the schema has ``patternProperties`` (which Python would match with its
    backtracking ``re``; the Rust validator's messages serve then)."""
    schema = json.loads(schema_text)
    Draft202012Validator.check_schema(schema)
    try:
        fast = jsonschema_rs.validator_for(
            schema, offline=True, pattern_options=jsonschema_rs.RegexOptions()
        )
    except (jsonschema_rs.ValidationError, ValueError) as exc:
        raise SchemaError(str(exc).split("\n", 1)[0]) from None
    full = None if _has_pattern_properties(schema) else _Validator(schema, registry=_NO_REMOTE)
    return fast, full


def compile_schema(schema: dict[str, Any]) -> Any:
    """A cached pair of validators for ``schema``; raises ``SchemaError`` for an invalid one."""
    return _validators(json.dumps(schema, sort_keys=True))


def _depth(node: Any, limit: int) -> int:
    """Nesting depth of a JSON value, counting stops once past ``limit``."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        item, d = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, d)
            if deepest > limit:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            stack.extend((c, d + 1) for c in children)
    return deepest


def unsafe_parts(node: Any, loc: list[str | int] | None = None) -> list[ErrorDetail]:
    """What a schema may not contain: a reference that is not local (``#...``), a regular
    expression that does not compile in a linear-time engine (RE2)."""
    loc = loc or []
    out: list[ErrorDetail] = []
    if isinstance(node, list):
        for i, item in enumerate(node):
            out += unsafe_parts(item, [*loc, i])
        return out
    if not isinstance(node, dict):
        return out
    for key, value in node.items():
        here = [*loc, key]
        if key in _REF_KEYS and isinstance(value, str) and not value.startswith("#"):
            out.append(
                error(here, f"only local references ('#/...') are allowed, not {value[:200]!r}")
            )
        elif key == "pattern" and isinstance(value, str):
            out += _regex_problem(here, value)
        elif key == "patternProperties" and isinstance(value, dict):
            for pat in value:
                out += _regex_problem([*here, pat], pat)
        if key not in ("const", "enum", "default", "examples"):  # data, not schema
            out += unsafe_parts(value, here)
    return out


def _regex_problem(loc: list[str | int], pattern: str) -> list[ErrorDetail]:
    try:
        _re2(pattern)
    except re2.error as exc:
        why = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        return [
            error(
                loc,
                f"pattern {pattern[:200]!r} is not a linear-time regular expression ({why}); "
                "lookaround and backreferences are not supported",
            )
        ]
    return []


def check_schema_details(
    schema: Any, loc: list[str | int], limits: SchemaLimits | None = None
) -> list[ErrorDetail]:
    """Every reason ``schema`` may not be registered, each with its path under ``loc``."""
    limits = limits or LIMITS
    if not isinstance(schema, dict):
        return [error(loc, "a JSON Schema must be an object")]
    size = len(json.dumps(schema, separators=(",", ":")))
    if size > limits.max_bytes:
        return [error(loc, f"schema is {size} bytes, more than the limit of {limits.max_bytes}")]
    if _depth(schema, limits.max_depth) > limits.max_depth:
        return [error(loc, f"schema is nested deeper than the limit of {limits.max_depth}")]
    unsafe = unsafe_parts(schema, list(loc))
    if unsafe:
        return unsafe
    try:
        compile_schema(schema)
    except SchemaError as exc:
        return [error(loc, f"invalid JSON Schema: {exc.message}")]
    return []


def _message(err: Any) -> tuple[list[str | int], str, str]:
    """The most specific reason of an error (inside anyOf/oneOf, the best sub-error)."""
    if err.context:
        err = best_match(err.context)
    msg = err.message if len(err.message) <= 300 else err.message[:297] + "..."
    return list(err.absolute_path), msg, f"schema.{err.validator}"


def check_schema(schema: Any) -> str | None:
    """None when ``schema`` is a valid, safe JSON Schema, else the reasons (with their
    paths inside the schema)."""
    problems = check_schema_details(schema, [])
    if not problems:
        return None
    return "; ".join(f"{p.path}: {p.msg}" if p.loc else p.msg for p in problems[:10])


def validate(schema: dict[str, Any], instance: Any, prefix: list[str | int]) -> list[ErrorDetail]:
    """Validate ``instance``; each error's location starts with ``prefix``. A schema that
    cannot be compiled safely (one stored before the checks at registration) refuses all."""
    try:
        fast, full = _validators(json.dumps(schema, sort_keys=True))
    except SchemaError as exc:
        return [error(list(prefix), f"the capability's schema is unusable: {exc.message}")]
    if fast.is_valid(instance):  # the common case, in Rust (jsonschema-rs, same draft)
        return []
    out = []
    errors = full.iter_errors(instance) if full is not None else ()
    for err in sorted(errors, key=lambda e: list(map(str, e.absolute_path))):
        path, msg, kind = _message(err)
        out.append(error(list(prefix) + path, msg, kind))
    if not out:  # the two validators disagree: report the Rust validator's reasons
        for err in fast.iter_errors(instance):
            out.append(error(list(prefix) + list(err.instance_path), err.message[:300], "schema"))
    return out
