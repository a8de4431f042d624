"""JSON Schema validation with errors that name the JSON path of the offending field."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
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
def _validator(schema_text: str) -> Draft202012Validator:
    schema = json.loads(schema_text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def compile_schema(schema: dict[str, Any]) -> Draft202012Validator:
    """A cached validator for ``schema``; raises ``SchemaError`` for an invalid schema."""
    return _validator(json.dumps(schema, sort_keys=True))


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
    validator = compile_schema(schema)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))
    out = []
    for err in errors:
        loc = list(prefix) + list(err.absolute_path)
        out.append(error(loc, err.message, f"schema.{err.validator}"))
    return out
