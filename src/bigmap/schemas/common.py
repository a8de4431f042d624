"""Words shared by every part of bigmap: statuses, roles, tiers, canonical JSON."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RequestStatus(StrEnum):
    """Native lifecycle: pending -> claimed (lease, owner) -> resolved, or failed, retracted.

    ``unsolicited`` marks the request created for a result that nobody asked for.
    """

    pending = "pending"
    claimed = "claimed"
    resolved = "resolved"
    failed = "failed"
    retracted = "retracted"
    unsolicited = "unsolicited"


TERMINAL_REQUEST_STATUSES = frozenset(
    {
        RequestStatus.resolved,
        RequestStatus.failed,
        RequestStatus.retracted,
        RequestStatus.unsolicited,
    }
)


class FinalesRequestStatus(StrEnum):
    """The request statuses of FINALES 1.1.0."""

    pending = "pending"
    reserved = "reserved"
    resolved = "resolved"
    retracted = "retracted"
    unsolicited = "unsolicited"


# Native -> FINALES. FINALES has no "failed": a failed request will not be served, which
# a FINALES client knows as "retracted" (the status information carries the reason).
TO_FINALES_STATUS: dict[RequestStatus, FinalesRequestStatus] = {
    RequestStatus.pending: FinalesRequestStatus.pending,
    RequestStatus.claimed: FinalesRequestStatus.reserved,
    RequestStatus.resolved: FinalesRequestStatus.resolved,
    RequestStatus.failed: FinalesRequestStatus.retracted,
    RequestStatus.retracted: FinalesRequestStatus.retracted,
    RequestStatus.unsolicited: FinalesRequestStatus.unsolicited,
}

FROM_FINALES_STATUS: dict[FinalesRequestStatus, RequestStatus] = {
    FinalesRequestStatus.pending: RequestStatus.pending,
    FinalesRequestStatus.reserved: RequestStatus.claimed,
    FinalesRequestStatus.resolved: RequestStatus.resolved,
    FinalesRequestStatus.retracted: RequestStatus.retracted,
    FinalesRequestStatus.unsolicited: RequestStatus.unsolicited,
}


class ResultStatus(StrEnum):
    """As FINALES: the first posting is ``original``; an amended result is superseded by a
    later one; ``deleted`` hides it."""

    original = "original"
    amended = "amended"
    deleted = "deleted"


class Role(StrEnum):
    """What a user may do (``docs/security.md``, "Roles and rights"): ``admin`` everything;
    ``maintainer`` what a tenant may, and define new capabilities; ``tenant`` post, claim
    and answer requests with its own tenants, serving capabilities that exist; ``observer``
    read only."""

    admin = "admin"
    maintainer = "maintainer"
    tenant = "tenant"
    observer = "observer"


class TenantKind(StrEnum):
    simulation = "simulation"
    instrument = "instrument"
    planner = "planner"
    analysis = "analysis"
    archive = "archive"


class AccessTier(StrEnum):
    public = "public"
    restricted = "restricted"
    confidential = "confidential"


class CampaignStatus(StrEnum):
    created = "created"
    running = "running"
    paused = "paused"
    stopped = "stopped"
    completed = "completed"
    failed = "failed"


class Software(BaseModel):
    """The code that produced a result, as the tenant reports it."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, max_length=200)
    version: str = Field(default="unknown", max_length=200)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _reject_non_finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"non-finite number {value!r} is not valid JSON")
    return value


def canonical_json(value: Any) -> bytes:
    """Canonical JSON: keys sorted, no insignificant whitespace, UTF-8, no NaN/Infinity.

    Close to RFC 8785 for the documents bigmap stores (numbers are written as Python's
    shortest round-trip repr). The content hash of a result is the sha256 of these bytes.
    """
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def content_hash(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


def json_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Each path, with a folder standing for the JSON files under it (sorted)."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*.json") if p.is_file())
        else:
            yield path
