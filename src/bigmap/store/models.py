"""SQLAlchemy tables of the broker. SI units and UTC times; JSON documents as JSON/JSONB.

Every change of schema goes through an Alembic migration in ``store/migrations``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    false,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC on the way in and out, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: bigmap stores timezone-aware UTC times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONDoc = JSON().with_variant(JSONB(), "postgresql")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _uuid() -> uuid.UUID:
    return uuid.uuid4()


def _now() -> datetime:
    return datetime.now(UTC)


class ServerSetting(Base):
    """Key/value settings the server keeps itself, e.g. its generated signing secret."""

    __tablename__ = "server_settings"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class User(Base):
    __tablename__ = "users"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(500))
    role: Mapped[str] = mapped_column(String(20))
    groups: Mapped[list[str]] = mapped_column(JSONDoc, default=list)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)
    # a foreign identity: the owner of records imported from another bigmap (an archive
    # package), named ``name@source``; it cannot log in (migration 0005_import)
    imported_from: Mapped[str | None] = mapped_column(String(200), nullable=True)


class Token(Base):
    """Issued tokens, so that one can be revoked."""

    __tablename__ = "tokens"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # 0006


class LoginFailure(Base):
    """Failed logins counted per user name (``user:NAME``) and per client address
    (``addr:ADDRESS``), kept in the database so that the back-off holds across restarts and
    server processes (migration 0006_identity)."""

    __tablename__ = "login_failures"
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Capability(Base):
    __tablename__ = "capabilities"
    __table_args__ = (UniqueConstraint("quantity", "method"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    quantity: Mapped[str] = mapped_column(String(100))
    method: Mapped[str] = mapped_column(String(100))
    parameter_schema: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    result_schema: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    description: Mapped[str] = mapped_column(Text, default="")
    units: Mapped[dict[str, str]] = mapped_column(JSONDoc, default=dict)
    iri: Mapped[str | None] = mapped_column(String(500), nullable=True)
    cost: Mapped[float | None] = mapped_column(Float, nullable=True)
    fidelity: Mapped[float | None] = mapped_column(Float, nullable=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)


class Tenant(Base):
    __tablename__ = "tenants"
    __table_args__ = (UniqueConstraint("owner_id", "name"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(Text, default="")
    contact_person: Mapped[str] = mapped_column(Text, default="")
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    software: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc, nullable=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)


class TenantCapability(Base):
    """A capability a tenant provides, with its limitations."""

    __tablename__ = "tenant_capabilities"
    __table_args__ = (UniqueConstraint("tenant_id", "capability_id"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    capability_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("capabilities.id"))
    limitations: Mapped[Any] = mapped_column(JSONDoc)


class AccessMixin:
    access: Mapped[str] = mapped_column(String(20), default="public")
    access_groups: Mapped[list[str]] = mapped_column(JSONDoc, default=list)
    embargo_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id"), nullable=True, index=True
    )
    # a restricted item whose metadata (not its data) anyone may find (migration 0002)
    findable: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Campaign(AccessMixin, Base):
    __tablename__ = "campaigns"
    __table_args__ = (UniqueConstraint("owner_id", "idempotency_key"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    name: Mapped[str] = mapped_column(String(200))
    spec: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tenants.id"), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="created")
    control: Mapped[str] = mapped_column(String(10), default="run")
    summary: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)


class CampaignEvent(Base):
    """Every step of a campaign, in order: proposals, model states, decisions."""

    __tablename__ = "campaign_events"
    __table_args__ = (
        UniqueConstraint("campaign_id", "seq"),
        UniqueConstraint("campaign_id", "idempotency_key"),
    )
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    campaign_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(50))
    data: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    request_ids: Mapped[list[str]] = mapped_column(JSONDoc, default=list)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)


class Request(AccessMixin, Base):
    __tablename__ = "requests"
    __table_args__ = (
        UniqueConstraint("owner_id", "idempotency_key"),
        Index("ix_requests_status_quantity", "status", "quantity"),
    )
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    quantity: Mapped[str] = mapped_column(String(100))
    methods: Mapped[list[str]] = mapped_column(JSONDoc)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tenants.id"), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    status_info: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("requests.id"), nullable=True, index=True
    )
    campaign_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("campaigns.id"), nullable=True, index=True
    )
    priority: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenants.id"), nullable=True, index=True
    )
    claimed_method: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # Who holds the claim when it was made through FINALES by a user with no serving tenant.
    claimed_by_user: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    result_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)


class Result(AccessMixin, Base):
    __tablename__ = "results"
    __table_args__ = (UniqueConstraint("tenant_id", "idempotency_key"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("requests.id"), index=True)
    quantity: Mapped[str] = mapped_column(String(100), index=True)
    method: Mapped[str] = mapped_column(String(100))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    data: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tenants.id"), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="original")
    sha256: Mapped[str] = mapped_column(String(64))
    software: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc, nullable=True)
    provenance: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    amends: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("results.id"), nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now, index=True)


class File(AccessMixin, Base):
    """A raw data file (cycler export, impedance spectrum, geometry), stored with its hash."""

    __tablename__ = "files"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    result_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("results.id", ondelete="CASCADE"), nullable=True, index=True
    )
    name: Mapped[str] = mapped_column(String(500))
    media_type: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)


class StatusLog(Base):
    """Every status change of a request, result or campaign: who, when and why."""

    __tablename__ = "status_log"
    __table_args__ = (Index("ix_status_log_object", "object_type", "object_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    object_type: Mapped[str] = mapped_column(String(20))
    object_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    old_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    new_status: Mapped[str] = mapped_column(String(20))
    message: Mapped[str] = mapped_column(Text, default="")
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)


# ----------------------------------------------------------------------------- FAIR (0002)


class Recomputation(Base):
    """A request made to recompute a result with identical parameters, and its original."""

    __tablename__ = "recomputations"
    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), primary_key=True
    )
    original_result_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("results.id"), index=True)
    original_request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("requests.id"))
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)


class MetadataPolicy(Base):
    """How strictly a capability's results are checked for minimum metadata."""

    __tablename__ = "metadata_policies"
    __table_args__ = (UniqueConstraint("quantity", "method"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    quantity: Mapped[str] = mapped_column(String(100))
    method: Mapped[str] = mapped_column(String(100))
    strictness: Mapped[str] = mapped_column(String(10), default="report")
    data_types: Mapped[list[str]] = mapped_column(JSONDoc, default=list)
    required: Mapped[list[str]] = mapped_column(JSONDoc, default=list)
    updated_by: Mapped[str] = mapped_column(String(100), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)


class ArchiveRecord(Base):
    """One exported version of a campaign's archive package: its semantic version, the
    hashes of its files (to decide the next version) and its InvenioRDM metadata."""

    __tablename__ = "archive_records"
    __table_args__ = (UniqueConstraint("campaign_id", "scope", "version"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    campaign_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    scope: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(50))
    sha256: Mapped[str] = mapped_column(String(64))
    manifest: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    record: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)
