"""Campaigns: a planner's closed loop and every step it took."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from bigmap.schemas.common import CampaignStatus
from bigmap.schemas.request import KEY_FIELD, AccessFields


class CampaignCreate(AccessFields):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    spec: dict[str, Any]
    tenant_id: UUID = Field(description="the planner tenant that runs it")
    status: CampaignStatus = CampaignStatus.created
    idempotency_key: str | None = KEY_FIELD


class CampaignUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: CampaignStatus | None = None
    control: str | None = Field(
        default=None, pattern="^(run|pause|stop)$", description="what a user asks the planner to do"
    )
    summary: dict[str, Any] | None = None
    message: str = ""


class CampaignOut(AccessFields):
    id: UUID
    name: str
    spec: dict[str, Any]
    tenant_id: UUID | None
    owner: str
    status: CampaignStatus
    control: str
    summary: dict[str, Any]
    n_events: int = 0
    created_at: datetime
    updated_at: datetime


class CampaignEventCreate(BaseModel):
    """One saved step: a proposal, a fitted model state, a decision, an observation."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(min_length=1, max_length=50, pattern=r"^[a-z_]+$")
    data: dict[str, Any]
    request_ids: list[UUID] = Field(default_factory=list)
    idempotency_key: str | None = KEY_FIELD


class CampaignEventOut(BaseModel):
    id: UUID
    campaign_id: UUID
    seq: int
    kind: str
    data: dict[str, Any]
    request_ids: list[UUID]
    created_at: datetime
