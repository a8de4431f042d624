"""Users, tokens and tenants as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from bigmap.schemas.capability import CapabilitySpec
from bigmap.schemas.common import Role, TenantKind

USERNAME_PATTERN = r"^[A-Za-z0-9_.@\-]+$"


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=USERNAME_PATTERN)
    password: str = Field(min_length=8, max_length=1000)
    role: Role = Role.tenant
    groups: list[str] = Field(default_factory=list)


class UserOut(BaseModel):
    id: UUID
    name: str
    role: Role
    groups: list[str] = Field(default_factory=list)
    created_at: datetime
    disabled: bool = False


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime | None = None
    id: UUID | None = Field(default=None, description="the token's id (jti), to revoke it")


class TokenCreate(BaseModel):
    """A new token for oneself (or, for an admin, for another user)."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(default="", max_length=200)
    days: float | None = Field(
        default=None, gt=0, description="its life in days (default BIGMAP_TOKEN_DAYS)"
    )
    user: str | None = Field(default=None, max_length=100, description="admins only")


class TokenInfo(BaseModel):
    """An issued token, never its text."""

    id: UUID
    user: str
    label: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None = None
    status: str = Field(description="active, expired or revoked")


class CapabilityOut(CapabilitySpec):
    id: UUID
    created_at: datetime
    providers: int = Field(default=0, description="active tenants that provide it")


class ProvidesOut(BaseModel):
    quantity: str
    method: str
    limitations: dict[str, Any] | list[Any]


class TenantOut(BaseModel):
    id: UUID
    name: str
    kind: TenantKind
    description: str
    contact_person: str
    owner: str
    software: dict[str, Any] | None
    is_active: bool
    alive: bool
    last_seen_at: datetime | None
    created_at: datetime
    provides: list[ProvidesOut]
    warnings: list[str] = Field(default_factory=list)
    claims: list[dict[str, Any]] = Field(
        default_factory=list, description="requests it holds now: id, since, lease expiry"
    )
