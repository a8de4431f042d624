"""Pydantic models of the domain and JSON Schema helpers (imports only pydantic/jsonschema)."""

from bigmap.schemas.capability import CapabilitySpec, finales_capabilities, finales_capability
from bigmap.schemas.common import (
    AccessTier,
    CampaignStatus,
    RequestStatus,
    ResultStatus,
    Role,
    Software,
    TenantKind,
    canonical_json,
    content_hash,
)
from bigmap.schemas.tenant import Provides, TenantSpec

__all__ = [
    "AccessTier",
    "CampaignStatus",
    "CapabilitySpec",
    "Provides",
    "RequestStatus",
    "ResultStatus",
    "Role",
    "Software",
    "TenantKind",
    "TenantSpec",
    "canonical_json",
    "content_hash",
    "finales_capabilities",
    "finales_capability",
]
