"""Capabilities: a ``(quantity, method)`` pair with a parameter schema and a result schema.

The capability files of FINALES (``{quantity, method, json_schema_specifications,
json_schema_result_output, is_active}``) load as they are; bigmap adds optional
description, units, an ontology IRI and a cost/fidelity hint. The 13 capabilities that the
BIG-MAP demonstrators registered with FINALES ship with bigmap (``finales/``, MIT licence,
from BIG-MAP/FINALES2_schemas at 7da0935).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_\-]*$"


class CapabilitySpec(BaseModel):
    """What a capability is: its name, what it takes and what it gives."""

    model_config = ConfigDict(extra="ignore")

    quantity: str = Field(min_length=1, max_length=100, pattern=NAME_PATTERN)
    method: str = Field(min_length=1, max_length=100, pattern=NAME_PATTERN)
    parameter_schema: dict[str, Any] = Field(
        description="JSON Schema of the parameters of a request"
    )
    result_schema: dict[str, Any] = Field(description="JSON Schema of the data of a result")
    description: str = ""
    units: dict[str, str] = Field(
        default_factory=dict, description="unit (pint string) of result fields, by field name"
    )
    iri: str | None = Field(default=None, description="ontology IRI of the quantity")
    cost: float | None = Field(default=None, ge=0, description="relative cost of one request")
    fidelity: float | None = Field(
        default=None, ge=0, le=1, description="relative fidelity, 1 = the reference measurement"
    )
    is_active: bool = True

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> CapabilitySpec:
        """Accept a native document or a FINALES one (``json_schema_specifications``...)."""
        if "json_schema_specifications" in doc:
            doc = {
                **{k: v for k, v in doc.items() if not k.startswith("json_schema")},
                "parameter_schema": doc["json_schema_specifications"],
                "result_schema": doc.get("json_schema_result_output", {}),
            }
        return cls.model_validate(doc)

    def to_finales(self) -> dict[str, Any]:
        return {
            "quantity": self.quantity,
            "method": self.method,
            "json_schema_specifications": self.parameter_schema,
            "json_schema_result_output": self.result_schema,
            "is_active": self.is_active,
        }


def load_capability_file(path: Path) -> CapabilitySpec:
    return CapabilitySpec.from_document(json.loads(Path(path).read_text()))


def finales_capability(quantity: str, method: str) -> CapabilitySpec:
    """One of the 13 FINALES capabilities that ship with bigmap."""
    ref = (
        resources.files("bigmap.schemas") / "finales" / "capabilities" / quantity / f"{method}.json"
    )
    return CapabilitySpec.from_document(json.loads(ref.read_text()))


def finales_capabilities() -> list[CapabilitySpec]:
    root = resources.files("bigmap.schemas") / "finales" / "capabilities"
    out = []
    for qdir in sorted(root.iterdir(), key=lambda p: p.name):
        if qdir.is_dir():
            for f in sorted(qdir.iterdir(), key=lambda p: p.name):
                if f.name.endswith(".json"):
                    out.append(CapabilitySpec.from_document(json.loads(f.read_text())))
    return out
