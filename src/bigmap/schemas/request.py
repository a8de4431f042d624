"""Requests and results: the native API models and the FINALES 1.1.0 shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from bigmap.schemas.capability import NAME_PATTERN
from bigmap.schemas.common import AccessTier, RequestStatus, ResultStatus, Software

KEY_FIELD = Field(
    default=None,
    min_length=1,
    max_length=200,
    description="a client-chosen key: posting again with the same key returns the first object",
)


class AccessFields(BaseModel):
    """Who may see an object: public, restricted (named groups) or confidential (owner)."""

    access: AccessTier = AccessTier.public
    access_groups: list[str] = Field(default_factory=list)
    embargo_until: datetime | None = Field(
        default=None, description="after this time a restricted item becomes public"
    )


class RequestCreate(AccessFields):
    """Ask for ``quantity`` by one of ``methods``, with parameters per method."""

    model_config = ConfigDict(extra="forbid")

    quantity: str = Field(pattern=NAME_PATTERN, max_length=100)
    methods: list[str] = Field(min_length=1, max_length=20)
    parameters: dict[str, dict[str, Any]]
    tenant_id: UUID = Field(description="the requesting tenant (owned by the caller)")
    parent_id: UUID | None = Field(default=None, description="the request this one serves")
    campaign_id: UUID | None = None
    priority: int = Field(default=0, ge=-1000, le=1000)
    idempotency_key: str | None = KEY_FIELD


class RequestOut(AccessFields):
    id: UUID
    quantity: str
    methods: list[str]
    parameters: dict[str, dict[str, Any]]
    tenant_id: UUID | None
    status: RequestStatus
    status_info: dict[str, Any] = Field(default_factory=dict)
    parent_id: UUID | None = None
    campaign_id: UUID | None = None
    priority: int = 0
    claimed_by: UUID | None = None
    claimed_method: str | None = None
    lease_expires_at: datetime | None = None
    attempts: int = 0
    result_id: UUID | None = None
    created_at: datetime
    updated_at: datetime


class ClaimIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant_id: UUID
    method: str | None = Field(default=None, description="the method it will use")
    lease_seconds: float | None = Field(default=None, gt=0, le=7 * 24 * 3600)


class ClaimNextIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    capabilities: list[tuple[str, str]] | None = Field(
        default=None, description="only these (quantity, method) pairs; default: all it provides"
    )
    lease_seconds: float | None = Field(default=None, gt=0, le=7 * 24 * 3600)
    wait: float = Field(default=0, ge=0, le=60, description="seconds to wait for work")


class Progress(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fraction: float | None = Field(default=None, ge=0, le=1)
    message: str = Field(default="", max_length=2000)


class LeaseIn(BaseModel):
    """Renew a claim's lease, optionally reporting the progress of the work."""

    model_config = ConfigDict(extra="forbid")

    tenant_id: UUID
    lease_seconds: float | None = Field(default=None, gt=0, le=7 * 24 * 3600)
    progress: Progress | None = None


class FailIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant_id: UUID
    message: str = Field(min_length=1, max_length=20000)
    kind: str = Field(default="calculation_failed", max_length=100)
    retry: bool = Field(default=False, description="return the request to the queue")


class ReleaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant_id: UUID
    message: str = "released by its tenant"


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(default="", max_length=20000)


class FileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # no control characters: a CR/LF in a name would split the download's header
    name: str = Field(min_length=1, max_length=500, pattern=r"^[^\x00-\x1f\x7f]+$")
    media_type: str = Field(default="application/octet-stream", max_length=200)
    content_base64: str


class FileOut(BaseModel):
    id: UUID
    name: str
    media_type: str
    size: int
    sha256: str
    result_id: UUID | None = None
    created_at: datetime


class ResultCreate(AccessFields):
    """The data that answers a request (or, with no ``request_id``, an unsolicited one)."""

    model_config = ConfigDict(extra="forbid")

    request_id: UUID | None = None
    tenant_id: UUID
    quantity: str | None = None
    method: str | None = None
    parameters: dict[str, Any] | None = Field(
        default=None, description="the parameters used; default: the request's"
    )
    data: dict[str, Any]
    software: Software | None = None
    provenance: dict[str, Any] = Field(
        default_factory=dict, description="more provenance: inputs, instrument, emulated, ..."
    )
    files: list[FileIn] = Field(default_factory=list, max_length=100)
    idempotency_key: str | None = KEY_FIELD
    amend: bool = Field(default=False, description="replace the result of a resolved request")


class ResultOut(AccessFields):
    id: UUID
    request_id: UUID
    quantity: str
    method: str
    parameters: dict[str, Any]
    data: dict[str, Any]
    tenant_id: UUID | None
    status: ResultStatus
    sha256: str
    software: dict[str, Any] | None = None
    amends: UUID | None = None
    provenance: dict[str, Any] = Field(default_factory=dict)
    files: list[FileOut] = Field(default_factory=list)
    created_at: datetime


class StatusChange(BaseModel):
    object_type: str
    object_id: UUID
    old_status: str | None
    new_status: str
    message: str
    user: str | None
    tenant_id: UUID | None
    at: datetime


# ----------------------------------------------------------------------------- FINALES shapes


class FinalesRequest(BaseModel):
    quantity: str
    methods: list[str]
    parameters: dict[str, dict[str, Any]]
    tenant_uuid: str


class FinalesRequestInfo(BaseModel):
    uuid: str
    ctime: datetime
    status: str
    request: FinalesRequest


class FinalesResult(BaseModel):
    data: dict[str, Any]
    quantity: str
    method: list[str]
    parameters: dict[str, dict[str, Any]]
    tenant_uuid: str
    request_uuid: str = ""


class FinalesResultInfo(BaseModel):
    uuid: str
    ctime: datetime
    status: str
    result: FinalesResult


class FinalesCapability(BaseModel):
    quantity: str
    method: str
    json_schema_specifications: dict[str, Any]
    json_schema_result_output: dict[str, Any]


class FinalesLimitations(BaseModel):
    quantity: str
    method: str
    limitations: dict[str, Any] | list[Any]
