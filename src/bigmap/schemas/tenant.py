"""Tenants: participants with an identity that provide and/or ask for capabilities."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bigmap.schemas.capability import NAME_PATTERN
from bigmap.schemas.common import Software, TenantKind


class Provides(BaseModel):
    """One capability a tenant provides, within its limitations (FINALES notation)."""

    model_config = ConfigDict(extra="ignore")

    quantity: str = Field(pattern=NAME_PATTERN)
    method: str = Field(pattern=NAME_PATTERN)
    limitations: dict[str, Any] | list[Any] = Field(default_factory=dict)


class TenantSpec(BaseModel):
    """A tenant as registered: FINALES tenant files (``{name, limitations, contact_person}``)
    load as they are."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=200)
    kind: TenantKind = TenantKind.simulation
    description: str = ""
    contact_person: str = ""
    software: Software | None = None
    limitations: list[Provides] = Field(
        default_factory=list, description="the capabilities it provides, with their limitations"
    )

    @field_validator("contact_person", mode="before")
    @classmethod
    def _contact(cls, v: Any) -> str:
        return v if isinstance(v, str) else json.dumps(v)


def load_tenant_file(path: Path) -> TenantSpec:
    return TenantSpec.model_validate(json.loads(Path(path).read_text()))
