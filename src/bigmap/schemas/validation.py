"""JSON Schema validation with errors that name the JSON path of the offending field."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match
from pydantic import BaseModel


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


@lru_cache(maxsize=512)
def _validators(schema_text: str) -> tuple[Any, Draft202012Validator]:
    schema = json.loads(schema_text)
    Draft202012Validator.check_schema(schema)
    return jsonschema_rs.validator_for(schema), Draft202012Validator(schema)


def compile_schema(schema: dict[str, Any]) -> Draft202012Validator:
    """A cached validator for ``schema``; raises ``SchemaError`` for an invalid schema."""
    return _validators(json.dumps(schema, sort_keys=True))[1]


def _message(err: Any) -> tuple[list[str | int], str, str]:
    """The most specific reason of an error (inside anyOf/oneOf, the best sub-error)."""
    if err.context:
        err = best_match(err.context)
    msg = err.message if len(err.message) <= 300 else err.message[:297] + "..."
    return list(err.absolute_path), msg, f"schema.{err.validator}"


def check_schema(schema: Any) -> str | None:
    """None when ``schema`` is a valid JSON Schema, else the reason."""
    if not isinstance(schema, dict):
        return "a JSON Schema must be an object"
    try:
        compile_schema(schema)
    except SchemaError as exc:
        return f"invalid JSON Schema: {exc.message}"
    return None


def validate(schema: dict[str, Any], instance: Any, prefix: list[str | int]) -> list[ErrorDetail]:
    """Validate ``instance``; each error's location starts with ``prefix``."""
    fast, full = _validators(json.dumps(schema, sort_keys=True))
    if fast.is_valid(instance):  # the common case, in Rust (jsonschema-rs, same draft)
        return []
    out = []
    for err in sorted(full.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))):
        path, msg, kind = _message(err)
        out.append(error(list(prefix) + path, msg, kind))
    if not out:  # the two validators disagree: report the Rust validator's reasons
        for err in fast.iter_errors(instance):
            out.append(error(list(prefix) + list(err.instance_path), err.message[:300], "schema"))
    return out
