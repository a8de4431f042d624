"""Fill-in templates from JSON Schemas, as FINALES' ``/capabilities/templates/`` gives."""

from __future__ import annotations

from typing import Any

_PLACEHOLDER = {"string": "string", "number": 0.0, "integer": 0, "boolean": False, "null": None}


def template(schema: dict[str, Any], root: dict[str, Any] | None = None, depth: int = 0) -> Any:
    """An example document with the shape of ``schema``: defaults where the schema has them,
    otherwise a placeholder of the right type."""
    root = root if root is not None else schema
    if depth > 20 or not isinstance(schema, dict):
        return None
    if "$ref" in schema:
        ref = schema["$ref"]
        if ref.startswith("#/"):
            node: Any = root
            for part in ref[2:].split("/"):
                node = node.get(part, {}) if isinstance(node, dict) else {}
            return template(node, root, depth + 1)
        return None
    if "default" in schema:
        return schema["default"]
    if "const" in schema:
        return schema["const"]
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    for key in ("allOf", "anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return template(options[0], root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        return {k: template(v, root, depth + 1) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        if "prefixItems" in schema:
            return [template(s, root, depth + 1) for s in schema["prefixItems"]]
        return [template(schema.get("items", {}), root, depth + 1)]
    return _PLACEHOLDER.get(kind)
