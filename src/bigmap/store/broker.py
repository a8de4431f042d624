"""The broker's operations on the store: one transaction each, every rule checked inside.

The server's routers (native and FINALES-compatible) and the CLI call these; nothing here
knows about HTTP. Errors are ``bigmap.store.errors``; each becomes one HTTP status.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bigmap.schemas import limitations as lim
from bigmap.schemas.campaign import CampaignCreate, CampaignEventCreate, CampaignUpdate
from bigmap.schemas.capability import CapabilitySpec
from bigmap.schemas.common import (
    TERMINAL_REQUEST_STATUSES,
    RequestStatus,
    ResultStatus,
    Role,
    content_hash,
    utcnow,
)
from bigmap.schemas.request import FileIn, RequestCreate, ResultCreate
from bigmap.schemas.tenant import TenantSpec
from bigmap.schemas.validation import ErrorDetail, check_schema, error, validate
from bigmap.store import models as m
from bigmap.store.access import Actor, can_see, visibility_clause
from bigmap.store.db import Database
from bigmap.store.errors import Conflict, Forbidden, Invalid, NotFound
from bigmap.store.fair import RESULT_CHECKS, Fair
from bigmap.store.identity import Identity, IdentityConfig

_CACHE_SECONDS = 2.0
DEFINING_FIELDS = ("quantity", "method", "parameter_schema", "result_schema", "is_active")
DESCRIPTIVE_FIELDS = ("description", "units", "iri", "cost", "fidelity")
MAX_FILE_BYTES = 200 * 1024 * 1024


@dataclass(frozen=True)
class CapabilityInfo:
    id: uuid.UUID
    quantity: str
    method: str
    parameter_schema: dict[str, Any]
    result_schema: dict[str, Any]
    is_active: bool


REQ = m.Request.__table__
RES = m.Result.__table__
LOG = m.StatusLog.__table__
FILE = m.File.__table__
TEN = m.Tenant.__table__


@dataclass(frozen=True)
class TenantInfo:
    """What the hot paths need of a tenant, cached for a moment (ids and owners never change)."""

    id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    kind: str
    software: dict[str, Any] | None
    is_active: bool
    last_seen_at: datetime | None


@dataclass(frozen=True)
class Provider:
    tenant_id: uuid.UUID
    owner_id: uuid.UUID
    quantity: str
    method: str
    limitations: Any


class Broker:
    """All operations of the broker on one database."""

    def __init__(
        self,
        db: Database,
        *,
        secret: str = "",
        lease_seconds: float = 60.0,
        heartbeat_seconds: float = 120.0,
        identity: IdentityConfig | None = None,
    ) -> None:
        self.db = db
        self.identity = Identity(db, secret=secret, config=identity)
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self._lock = threading.Lock()
        self._caps: dict[tuple[str, str], CapabilityInfo] = {}
        self._caps_at = 0.0
        self._providers: list[Provider] = []
        self._providers_at = 0.0
        self._swept_at = 0.0
        self._tenants: dict[uuid.UUID, tuple[float, TenantInfo]] = {}

    # ------------------------------------------------------------------ identity
    # users, logins and tokens are the identity service's (store/identity.py)

    @property
    def secret(self) -> str:
        return self.identity.secret

    def create_user(
        self, name: str, password: str, role: Role = Role.tenant, groups: list[str] | None = None
    ) -> m.User:
        return self.identity.create_user(name, password, role, groups)

    def set_user(self, name: str, **changes: Any) -> m.User:
        return self.identity.set_user(name, **changes)

    def _user_by_name(self, s: Session, name: str) -> m.User:
        return self.identity.user_by_name(s, name)

    def get_user(self, name: str) -> m.User:
        return self.identity.get_user(name)

    def list_users(self) -> list[m.User]:
        return self.identity.list_users()

    def authenticate(self, name: str, password: str, address: str | None = None) -> m.User:
        return self.identity.authenticate(name, password, address)

    def issue_token(self, user_name: str, **kwargs: Any) -> tuple[str, m.Token]:
        return self.identity.issue_token(user_name, **kwargs)

    def revoke_token(self, token_id: uuid.UUID, actor: Actor | None = None) -> m.Token:
        return self.identity.revoke_token(token_id, actor)

    def actor_for_token(self, token: str) -> Actor:
        return self.identity.actor_for_token(token)

    def actor_for_user(self, name: str) -> Actor:
        return self.identity.actor_for_user(name)

    # ------------------------------------------------------------------ capabilities

    def _capabilities(self, force: bool = False) -> dict[tuple[str, str], CapabilityInfo]:
        now = time.monotonic()
        if force or now - self._caps_at > _CACHE_SECONDS:
            with self.db.read() as s:
                caps = {
                    (c.quantity, c.method): CapabilityInfo(
                        c.id, c.quantity, c.method, c.parameter_schema, c.result_schema, c.is_active
                    )
                    for c in s.scalars(select(m.Capability))
                }
            with self._lock:
                self._caps, self._caps_at = caps, now
        return self._caps

    def capability(self, quantity: str, method: str) -> CapabilityInfo | None:
        cap = self._capabilities().get((quantity, method))
        return cap if cap is not None else self._capabilities(force=True).get((quantity, method))

    def add_capability(
        self, actor: Actor, spec: CapabilitySpec, *, replace: bool = False
    ) -> tuple[m.Capability, bool]:
        """Register a capability. The same definition again is a no-op; a different one
        needs ``replace`` and an admin. Returns (capability, created)."""
        if not actor.can_write:
            raise Forbidden("observers cannot add capabilities")
        errors = []
        for field_name in ("parameter_schema", "result_schema"):
            problem = check_schema(getattr(spec, field_name))
            if problem:
                errors.append(error([field_name], problem))
        if errors:
            raise Invalid(errors)
        values = spec.model_dump()
        with self.db.write() as s:
            row = s.scalar(
                select(m.Capability).where(
                    m.Capability.quantity == spec.quantity, m.Capability.method == spec.method
                )
            )
            if row is None:
                row = m.Capability(**values)
                s.add(row)
                s.flush()
                created = True
            else:
                # The definition is the pair of schemas: another one needs an explicit replace.
                # Descriptive fields (description, units, IRI, cost, fidelity) only fill gaps.
                same = all(getattr(row, k) == values[k] for k in DEFINING_FIELDS)
                if not same or (replace and any(getattr(row, k) != v for k, v in values.items())):
                    if not replace:
                        raise Conflict(
                            f"capability {spec.quantity}/{spec.method} exists with other schemas; "
                            "replace it explicitly (admin only)"
                        )
                    if not actor.is_admin:
                        raise Forbidden("only an admin can replace a capability's definition")
                    for k, v in values.items():
                        setattr(row, k, v)
                else:
                    for k in DESCRIPTIVE_FIELDS:
                        if getattr(row, k) in (None, "", {}) and values[k] not in (None, "", {}):
                            setattr(row, k, values[k])
                created = False
        self._caps_at = 0.0
        return row, created

    def list_capabilities(
        self, *, currently_available: bool = False
    ) -> list[tuple[m.Capability, int]]:
        """Capabilities with the number of active tenants providing each."""
        with self.db.read() as s:
            counts = dict(
                s.execute(
                    select(m.TenantCapability.capability_id, func.count())
                    .join(m.Tenant, m.Tenant.id == m.TenantCapability.tenant_id)
                    .where(m.Tenant.is_active.is_(True))
                    .group_by(m.TenantCapability.capability_id)
                ).all()
            )
            caps = list(
                s.scalars(select(m.Capability).order_by(m.Capability.quantity, m.Capability.method))
            )
        out = [(c, counts.get(c.id, 0)) for c in caps]
        if currently_available:
            out = [(c, n) for c, n in out if c.is_active and n > 0]
        return out

    def get_capability(self, quantity: str, method: str) -> m.Capability:
        with self.db.read() as s:
            row = s.scalar(
                select(m.Capability).where(
                    m.Capability.quantity == quantity, m.Capability.method == method
                )
            )
        if row is None:
            raise NotFound(f"no capability {quantity}/{method}")
        return row

    # ------------------------------------------------------------------ tenants

    def _providers_index(self, force: bool = False) -> list[Provider]:
        now = time.monotonic()
        if force or now - self._providers_at > _CACHE_SECONDS:
            with self.db.read() as s:
                rows = s.execute(
                    select(
                        m.Tenant.id,
                        m.Tenant.owner_id,
                        m.Capability.quantity,
                        m.Capability.method,
                        m.TenantCapability.limitations,
                    )
                    .join(m.TenantCapability, m.TenantCapability.tenant_id == m.Tenant.id)
                    .join(m.Capability, m.Capability.id == m.TenantCapability.capability_id)
                    .where(m.Tenant.is_active.is_(True), m.Capability.is_active.is_(True))
                ).all()
            providers = [Provider(*row) for row in rows]
            with self._lock:
                self._providers, self._providers_at = providers, now
        return self._providers

    def register_tenant(
        self, actor: Actor, spec: TenantSpec, *, owner: str | None = None
    ) -> tuple[m.Tenant, list[str], bool]:
        """Register (or update, by owner and name) a tenant and what it provides.

        Limitations are checked against the capabilities: an unknown capability or a
        malformed limitation is a 422. Returns (tenant, warnings, created)."""
        if not actor.can_write:
            raise Forbidden("observers cannot register tenants")
        owner_name = owner or actor.name
        if owner_name != actor.name and not actor.is_admin:
            raise Forbidden("only an admin can register a tenant for another user")
        errors: list[ErrorDetail] = []
        warnings: list[str] = []
        caps = self._capabilities(force=True)
        resolved: list[tuple[CapabilityInfo, Any]] = []
        seen = set()
        for i, prov in enumerate(spec.limitations):
            cap = caps.get((prov.quantity, prov.method))
            if cap is None:
                errors.append(
                    error(
                        ["limitations", i],
                        f"unknown capability {prov.quantity}/{prov.method}: add it first",
                    )
                )
                continue
            if (prov.quantity, prov.method) in seen:
                errors.append(
                    error(["limitations", i], f"{prov.quantity}/{prov.method} is listed twice")
                )
                continue
            seen.add((prov.quantity, prov.method))
            errs, warns = lim.check(
                prov.limitations, cap.parameter_schema, ["limitations", i, "limitations"]
            )
            errors.extend(errs)
            warnings.extend(warns)
            resolved.append((cap, prov.limitations))
        if errors:
            raise Invalid(errors)
        with self.db.write() as s:
            owner_row = self._user_by_name(s, owner_name)
            tenant = s.scalar(
                select(m.Tenant).where(
                    m.Tenant.owner_id == owner_row.id, m.Tenant.name == spec.name
                )
            )
            created = tenant is None
            if tenant is None:
                tenant = m.Tenant(name=spec.name, owner_id=owner_row.id)
                s.add(tenant)
            tenant.kind = spec.kind.value
            tenant.description = spec.description
            tenant.contact_person = spec.contact_person
            tenant.software = spec.software.model_dump() if spec.software else None
            tenant.is_active = True
            s.flush()
            existing = {
                tc.capability_id: tc
                for tc in s.scalars(
                    select(m.TenantCapability).where(m.TenantCapability.tenant_id == tenant.id)
                )
            }
            for cap, limits in resolved:
                tc = existing.pop(cap.id, None)
                if tc is None:
                    s.add(
                        m.TenantCapability(
                            tenant_id=tenant.id, capability_id=cap.id, limitations=limits
                        )
                    )
                else:
                    tc.limitations = limits
            for tc in existing.values():
                s.delete(tc)
        self._providers_at = 0.0
        self._tenants.pop(tenant.id, None)
        self._reevaluate_servability({(c.quantity) for c, _ in resolved})
        return tenant, warnings, created

    def _reevaluate_servability(self, quantities: set[str]) -> None:
        if not quantities:
            return
        with self.db.write() as s:
            rows = s.scalars(
                select(m.Request).where(
                    m.Request.status == RequestStatus.pending.value,
                    m.Request.quantity.in_(quantities),
                )
            ).all()
            for req in rows:
                info = self._servability(req.quantity, req.methods, req.parameters)
                if (req.status_info or {}).get("servable") != info["servable"]:
                    req.status_info = {**(req.status_info or {}), **info}

    def set_tenant_active(self, actor: Actor, tenant_id: uuid.UUID, active: bool) -> m.Tenant:
        with self.db.write() as s:
            tenant = self._owned_tenant(s, actor, tenant_id, allow_admin=True)
            tenant.is_active = active
        self._providers_at = 0.0
        self._tenants.pop(tenant.id, None)
        return tenant

    def _tenant_info(self, s: Session, actor: Actor, tenant_id: uuid.UUID | str) -> TenantInfo:
        """The caller's own tenant (``Invalid`` if unknown, ``Forbidden`` if not its own)."""
        try:
            tid = tenant_id if isinstance(tenant_id, uuid.UUID) else uuid.UUID(str(tenant_id))
        except ValueError:
            raise Invalid(f"tenant {tenant_id!r} is not a UUID", ["tenant_id"]) from None
        now = time.monotonic()
        hit = self._tenants.get(tid)
        if hit is None or now - hit[0] > _CACHE_SECONDS:
            row = s.connection().execute(select(TEN).where(TEN.c.id == tid)).mappings().first()
            if row is None:
                raise Invalid(f"tenant {tid} does not exist", ["tenant_id"])
            info = TenantInfo(
                row["id"],
                row["owner_id"],
                row["name"],
                row["kind"],
                row["software"],
                row["is_active"],
                row["last_seen_at"],
            )
            self._tenants[tid] = (now, info)
        else:
            info = hit[1]
        if info.owner_id != actor.user_id:
            raise Forbidden(
                f"tenant {tid} belongs to another user; a token acts only as its own tenants"
            )
        return info

    def _touch_in(self, s: Session, info: TenantInfo, at: datetime) -> None:
        """Record that a tenant was seen, at most every few seconds (a write per call would
        cost more than the liveness it tells)."""
        if info.last_seen_at is None or (at - info.last_seen_at).total_seconds() > 5.0:
            s.connection().execute(TEN.update().where(TEN.c.id == info.id).values(last_seen_at=at))
            self._tenants[info.id] = (time.monotonic(), replace(info, last_seen_at=at))

    @staticmethod
    def _log_core(
        s: Session,
        kind: str,
        obj_id: uuid.UUID,
        old: str | None,
        new: str,
        message: str,
        actor: Actor | None,
        tenant_id: uuid.UUID | None,
        at: datetime,
    ) -> None:
        s.connection().execute(
            LOG.insert(),
            {
                "object_type": kind,
                "object_id": obj_id,
                "old_status": old,
                "new_status": new,
                "message": message,
                "user_id": actor.user_id if actor else None,
                "tenant_id": tenant_id,
                "at": at,
            },
        )

    def _request_row(self, s: Session, request_id: uuid.UUID, *, lock: bool) -> m.Request:
        """The request as a detached object, locked for update on PostgreSQL (SQLite: the
        write transaction already holds the database's write lock)."""
        q = select(REQ).where(REQ.c.id == request_id)
        if lock and not self.db.sqlite:
            q = q.with_for_update()
        row = s.connection().execute(q).mappings().first()
        if row is None:
            raise NotFound(f"no request {request_id}")
        return m.Request(**row)

    def _owned_tenant(
        self, s: Session, actor: Actor, tenant_id: uuid.UUID | str, *, allow_admin: bool = False
    ) -> m.Tenant:
        try:
            tid = tenant_id if isinstance(tenant_id, uuid.UUID) else uuid.UUID(str(tenant_id))
        except ValueError:
            raise Invalid(f"tenant {tenant_id!r} is not a UUID", ["tenant_id"]) from None
        tenant = s.get(m.Tenant, tid)
        if tenant is None:
            raise Invalid(f"tenant {tid} does not exist", ["tenant_id"])
        if tenant.owner_id != actor.user_id and not (allow_admin and actor.is_admin):
            raise Forbidden(
                f"tenant {tid} belongs to another user; a token acts only as its own tenants"
            )
        return tenant

    def get_tenant(self, tenant_id: uuid.UUID) -> m.Tenant:
        with self.db.read() as s:
            tenant = s.get(m.Tenant, tenant_id)
        if tenant is None:
            raise NotFound(f"no tenant {tenant_id}")
        return tenant

    def find_tenant(self, owner: str, name: str) -> m.Tenant | None:
        with self.db.read() as s:
            return s.scalar(
                select(m.Tenant)
                .join(m.User, m.User.id == m.Tenant.owner_id)
                .where(m.User.name == owner, m.Tenant.name == name)
            )

    def list_tenants(self) -> list[m.Tenant]:
        with self.db.read() as s:
            return list(s.scalars(select(m.Tenant).order_by(m.Tenant.created_at)))

    def tenant_details(
        self, tenants: list[m.Tenant], actor: Actor | None = None
    ) -> dict[uuid.UUID, dict[str, Any]]:
        """Owner names, what each provides, and (for ``actor``) the claims each holds now on
        requests the actor may see."""
        ids = [t.id for t in tenants]
        out: dict[uuid.UUID, dict[str, Any]] = {
            t.id: {"provides": [], "claims": [], "owner": ""} for t in tenants
        }
        if not ids:
            return out
        with self.db.read() as s:
            for tid, q, meth, limits in s.execute(
                select(
                    m.TenantCapability.tenant_id,
                    m.Capability.quantity,
                    m.Capability.method,
                    m.TenantCapability.limitations,
                )
                .join(m.Capability, m.Capability.id == m.TenantCapability.capability_id)
                .where(m.TenantCapability.tenant_id.in_(ids))
            ):
                out[tid]["provides"].append({"quantity": q, "method": meth, "limitations": limits})
            claimed = (
                s.scalars(
                    select(m.Request).where(
                        m.Request.status == RequestStatus.claimed.value,
                        m.Request.claimed_by.in_(ids),
                        visibility_clause(actor, m.Request, self.db.engine.dialect.name),
                    )
                )
                if actor is not None
                else []
            )
            for req in claimed:
                if can_see(actor, req):
                    out[req.claimed_by]["claims"].append(
                        {
                            "request_id": str(req.id),
                            "since": req.claimed_at,
                            "lease_expires_at": req.lease_expires_at,
                        }
                    )
            names = dict(s.execute(select(m.User.id, m.User.name)).all())
        for t in tenants:
            out[t.id]["owner"] = names.get(t.owner_id, "")
        return out

    def is_alive(self, tenant: m.Tenant) -> bool:
        return (
            tenant.last_seen_at is not None
            and (utcnow() - tenant.last_seen_at).total_seconds() < self.heartbeat_seconds
        )

    def heartbeat(
        self, actor: Actor, tenant_id: uuid.UUID, software: dict[str, Any] | None = None
    ) -> m.Tenant:
        with self.db.write() as s:
            tenant = self._owned_tenant(s, actor, tenant_id)
            tenant.last_seen_at = utcnow()
            if software:
                tenant.software = software
        self._tenants.pop(tenant.id, None)
        return tenant

    # ------------------------------------------------------------------ requests

    def _servability(
        self, quantity: str, methods: list[str], parameters: dict[str, Any]
    ) -> dict[str, Any]:
        reasons = []
        for p in self._providers_index():
            if p.quantity != quantity or p.method not in methods:
                continue
            reason = lim.outside(p.limitations, parameters.get(p.method, {}))
            if reason is None:
                return {"servable": True}
            reasons.append(f"tenant {p.tenant_id} ({p.method}): {reason}")
        if not reasons:
            why = f"no active tenant provides {quantity} by {', '.join(methods)}"
        else:
            why = "outside the limitations of every active tenant: " + "; ".join(reasons[:5])
        return {"servable": False, "unservable_reason": why}

    def validate_request_parameters(
        self, quantity: str, methods: list[str], parameters: dict[str, Any], loc: list[str | int]
    ) -> None:
        """Raise ``Invalid`` unless every method is a known, active capability of
        ``quantity`` and its parameters satisfy the capability's schema."""
        errors: list[ErrorDetail] = []
        if len(set(methods)) != len(methods):
            errors.append(error(["methods"], "a method is listed twice"))
        known_quantity = any(q == quantity for q, _ in self._capabilities()) or any(
            q == quantity for q, _ in self._capabilities(force=True)
        )
        if not known_quantity:
            raise Invalid(f"unknown quantity {quantity!r}", ["quantity"])
        for i, method in enumerate(methods):
            cap = self.capability(quantity, method)
            if cap is None:
                errors.append(
                    error(["methods", i], f"unknown method {method!r} for quantity {quantity!r}")
                )
            elif not cap.is_active:
                errors.append(
                    error(["methods", i], f"capability {quantity}/{method} is not active")
                )
            elif method not in parameters:
                errors.append(error([*loc, method], f"no parameters for method {method!r}"))
            elif not isinstance(parameters[method], dict):
                errors.append(error([*loc, method], "parameters of a method must be an object"))
            else:
                errors.extend(validate(cap.parameter_schema, parameters[method], [*loc, method]))
        for key in parameters:
            if key not in methods:
                errors.append(
                    error(
                        [*loc, key],
                        f"parameters for {key!r}, which is not one of the methods {methods}",
                    )
                )
        if errors:
            raise Invalid(errors)

    def create_request(
        self,
        actor: Actor,
        body: RequestCreate,
        *,
        status: RequestStatus = RequestStatus.pending,
        queue: bool = True,
    ) -> tuple[m.Request, bool]:
        """Returns (request, created); an idempotency key seen before returns the first.
        ``queue=False`` refuses (422, nothing written) a request that no active tenant can
        serve now, with the reason per tenant; ``queue=True`` keeps it pending, marked."""
        if not actor.can_write:
            raise Forbidden("observers cannot post requests")
        # validation is CPU work: done before taking the write lock
        self.validate_request_parameters(
            body.quantity, body.methods, body.parameters, ["parameters"]
        )
        info = (
            self._servability(body.quantity, body.methods, body.parameters)
            if status == RequestStatus.pending
            else {}
        )
        now = utcnow()
        try:
            with self.db.write() as s:
                if body.idempotency_key:
                    existing = s.scalar(
                        select(m.Request).where(
                            m.Request.owner_id == actor.user_id,
                            m.Request.idempotency_key == body.idempotency_key,
                        )
                    )
                    if existing is not None:
                        return existing, False
                if not queue and not info.get("servable", True):
                    raise Invalid(
                        f"no tenant can serve it now: {info['unservable_reason']} (post it with "
                        "queue=true to keep it pending for a tenant yet to come)",
                        ["methods"],
                    )
                tenant = self._tenant_info(s, actor, body.tenant_id)
                conn = s.connection()
                linked: dict[str, Any] = {}
                for field, model, ident in (
                    ("parent_id", REQ, body.parent_id),
                    ("campaign_id", m.Campaign.__table__, body.campaign_id),
                ):
                    if ident is None:
                        continue
                    row = conn.execute(
                        select(
                            model.c.id,
                            model.c.owner_id,
                            model.c.access,
                            model.c.access_groups,
                            model.c.embargo_until,
                        ).where(model.c.id == ident)
                    ).first()
                    # a parent or campaign the caller may not see does not exist for it (a
                    # sub-request may join the campaign of the visible parent it serves)
                    parent = linked.get("parent_id")
                    visible = row is not None and (
                        can_see(actor, row)
                        or (
                            field == "campaign_id"
                            and parent is not None
                            and conn.execute(
                                select(REQ.c.campaign_id).where(REQ.c.id == parent.id)
                            ).scalar()
                            == ident
                        )
                    )
                    if not visible:
                        raise Invalid(
                            f"{field.removesuffix('_id')} {ident} does not exist", [field]
                        )
                    linked[field] = row
                tiers = {
                    "access": body.access.value,
                    "access_groups": body.access_groups,
                    "embargo_until": body.embargo_until,
                }
                source = linked.get("parent_id") or linked.get("campaign_id")
                if source is not None and "access" not in body.model_fields_set:
                    # a sub-request (or a campaign's request) keeps its parent's tier
                    tiers = {
                        "access": source.access,
                        "access_groups": list(source.access_groups or []),
                        "embargo_until": source.embargo_until,
                    }
                values = {
                    "id": uuid.uuid4(),
                    "quantity": body.quantity,
                    "methods": list(body.methods),
                    "parameters": body.parameters,
                    "tenant_id": tenant.id,
                    "status": status.value,
                    "status_info": info,
                    "parent_id": body.parent_id,
                    "campaign_id": body.campaign_id,
                    "priority": body.priority,
                    "idempotency_key": body.idempotency_key,
                    "owner_id": actor.user_id,
                    **tiers,
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                    "claimed_by": None,
                    "claimed_by_user": None,
                    "claimed_method": None,
                    "claimed_at": None,
                    "lease_expires_at": None,
                    "result_id": None,
                }
                conn.execute(REQ.insert(), values)
                message = (
                    "created"
                    if info.get("servable", True)
                    else "created; " + info["unservable_reason"]
                )
                self._log_core(
                    s, "request", values["id"], None, status.value, message, actor, tenant.id, now
                )
                return m.Request(**values), True
        except IntegrityError:
            existing = (
                self._request_by_key(actor, body.idempotency_key) if body.idempotency_key else None
            )
            if existing is None:
                raise
            return existing, False

    def _request_by_key(self, actor: Actor, key: str) -> m.Request | None:
        with self.db.read() as s:
            return s.scalar(
                select(m.Request).where(
                    m.Request.owner_id == actor.user_id, m.Request.idempotency_key == key
                )
            )

    def get_request(self, actor: Actor, request_id: uuid.UUID) -> m.Request:
        with self.db.read() as s:
            req = s.get(m.Request, request_id)
        if req is None or not can_see(actor, req):
            raise NotFound(f"no request {request_id}")
        return req

    def list_requests(
        self,
        actor: Actor,
        *,
        status: list[str] | None = None,
        quantity: str | None = None,
        method: str | None = None,
        tenant_id: uuid.UUID | None = None,
        campaign_id: uuid.UUID | None = None,
        parent_id: uuid.UUID | None = None,
        servable_by: list[uuid.UUID] | None = None,
        limit: int = 1000,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[m.Request]:
        if status and RequestStatus.pending.value in status:
            self._expire_leases_throttled()
        q = select(m.Request).where(
            visibility_clause(actor, m.Request, self.db.engine.dialect.name)
        )
        if status:
            q = q.where(m.Request.status.in_(status))
        if quantity:
            q = q.where(m.Request.quantity == quantity)
        if tenant_id:
            q = q.where(m.Request.tenant_id == tenant_id)
        if campaign_id:
            q = q.where(m.Request.campaign_id == campaign_id)
        if parent_id:
            q = q.where(m.Request.parent_id == parent_id)
        order = m.Request.created_at.desc() if newest_first else m.Request.created_at
        q = q.order_by(order, m.Request.id)
        with self.db.read() as s:
            rows = list(s.scalars(q))
        rows = [r for r in rows if (method is None or method in r.methods) and can_see(actor, r)]
        if servable_by is not None:
            provs = [p for p in self._providers_index() if p.tenant_id in set(servable_by)]
            rows = [r for r in rows if self._serving_provider(provs, r) is not None]
        return rows[offset : offset + limit]

    @staticmethod
    def _serving_provider(
        providers: list[Provider], req: m.Request, method: str | None = None
    ) -> Provider | None:
        for p in providers:
            if (
                p.quantity == req.quantity
                and p.method in req.methods
                and (method is None or p.method == method)
                and lim.outside(p.limitations, req.parameters.get(p.method, {})) is None
            ):
                return p
        return None

    def active_providers(self) -> list[Provider]:
        """Who provides what now: one entry per (active tenant, active capability)."""
        return list(self._providers_index())

    def providers_of(self, tenant_id: uuid.UUID) -> list[Provider]:
        return [p for p in self._providers_index() if p.tenant_id == tenant_id]

    def user_tenant_ids(self, actor: Actor) -> list[uuid.UUID]:
        with self.db.read() as s:
            return list(
                s.scalars(
                    select(m.Tenant.id).where(
                        m.Tenant.owner_id == actor.user_id, m.Tenant.is_active.is_(True)
                    )
                )
            )

    def _lease(self, seconds: float | None) -> timedelta:
        return timedelta(seconds=seconds or self.lease_seconds)

    def claim(
        self,
        actor: Actor,
        request_id: uuid.UUID,
        tenant_id: uuid.UUID | None,
        *,
        method: str | None = None,
        lease_seconds: float | None = None,
        message: str = "",
    ) -> m.Request:
        """Claim one request, exclusively: of concurrent claimers exactly one succeeds, the
        others get ``Conflict``. A request whose lease has expired can be claimed at once.
        ``tenant_id`` None (FINALES) claims for the user."""
        if not actor.can_write:
            raise Forbidden("observers cannot claim requests")
        now = utcnow()
        with self.db.write() as s:
            # the write lock (SQLite) or the row lock (PostgreSQL) makes check-and-set atomic
            req = self._request_row(s, request_id, lock=True)
            if not can_see(actor, req):
                raise NotFound(f"no request {request_id}")
            tenant = None
            chosen = method
            if method is not None and method not in req.methods:
                raise Invalid(
                    f"{method!r} is not one of the request's methods {req.methods}", ["method"]
                )
            if tenant_id is not None:
                tenant = self._tenant_info(s, actor, tenant_id)
                provs = self.providers_of(tenant.id)
                prov = self._serving_provider(provs, req, method)
                if prov is None:
                    reason = self._why_not(provs, req)
                    raise Conflict(f"tenant {tenant.id} cannot serve request {req.id}: {reason}")
                chosen = prov.method
            elif method is None and len(req.methods) == 1:
                chosen = req.methods[0]
            expired = (
                req.status == RequestStatus.claimed.value
                and req.lease_expires_at is not None
                and req.lease_expires_at < now
            )
            if req.status != RequestStatus.pending.value and not expired:
                raise Conflict(f"request {req.id} is {req.status}, not pending")
            tid = tenant.id if tenant else None
            if expired:
                self._log_core(
                    s,
                    "request",
                    req.id,
                    req.status,
                    RequestStatus.pending.value,
                    "lease expired: returned to the queue",
                    None,
                    None,
                    now,
                )
            values = {
                "status": RequestStatus.claimed.value,
                "claimed_by": tid,
                "claimed_by_user": actor.user_id,
                "claimed_method": chosen,
                "claimed_at": now,
                "lease_expires_at": now + self._lease(lease_seconds),
                "attempts": (req.attempts or 0) + 1,
                "updated_at": now,
            }
            s.connection().execute(REQ.update().where(REQ.c.id == req.id).values(**values))
            self._log_core(
                s,
                "request",
                req.id,
                RequestStatus.pending.value,
                RequestStatus.claimed.value,
                message or f"claimed{' by tenant ' + str(tid) if tid else ''}",
                actor,
                tid,
                now,
            )
            if tenant is not None:
                self._touch_in(s, tenant, now)
            for k, v in values.items():
                setattr(req, k, v)
            return req

    @staticmethod
    def _why_not(provs: list[Provider], req: m.Request) -> str:
        relevant = [p for p in provs if p.quantity == req.quantity and p.method in req.methods]
        if not relevant:
            return f"it does not provide {req.quantity} by {', '.join(req.methods)}"
        return "; ".join(
            f"{p.method}: {lim.outside(p.limitations, req.parameters.get(p.method, {}))}"
            for p in relevant
        )

    def claim_next(
        self,
        actor: Actor,
        tenant_id: uuid.UUID,
        *,
        capabilities: list[tuple[str, str]] | None = None,
        lease_seconds: float | None = None,
    ) -> m.Request | None:
        """Claim the most urgent pending request this tenant can serve, or None. Requests
        whose lease has expired count as pending."""
        with self.db.read() as s:
            tenant = self._owned_tenant(s, actor, tenant_id)
        provs = self.providers_of(tenant.id)
        if capabilities is not None:
            wanted = {tuple(c) for c in capabilities}
            provs = [p for p in provs if (p.quantity, p.method) in wanted]
        self._touch(actor, tenant)
        if not provs:
            return None
        quantities = sorted({p.quantity for p in provs})
        offset = 0
        while True:
            now = utcnow()
            with self.db.read() as s:
                batch = list(
                    s.scalars(
                        select(m.Request)
                        .where(
                            or_(
                                m.Request.status == RequestStatus.pending.value,
                                and_(
                                    m.Request.status == RequestStatus.claimed.value,
                                    m.Request.lease_expires_at < now,
                                ),
                            ),
                            m.Request.quantity.in_(quantities),
                        )
                        .order_by(m.Request.priority.desc(), m.Request.created_at, m.Request.id)
                        .offset(offset)
                        .limit(100)
                    )
                )
            if not batch:
                return None
            for req in batch:
                prov = self._serving_provider(provs, req)
                if prov is None or not can_see(actor, req):
                    continue
                try:
                    return self.claim(
                        actor, req.id, tenant.id, method=prov.method, lease_seconds=lease_seconds
                    )
                except Conflict:
                    continue  # another tenant was faster
            offset += len(batch)

    def _touch(self, actor: Actor, tenant: m.Tenant) -> None:
        """Mark a tenant alive, writing at most every few seconds."""
        last = tenant.last_seen_at
        if last is None or (utcnow() - last).total_seconds() > min(
            10.0, self.heartbeat_seconds / 4
        ):
            self.heartbeat(actor, tenant.id)

    def renew_lease(
        self,
        actor: Actor,
        request_id: uuid.UUID,
        tenant_id: uuid.UUID,
        lease_seconds: float | None = None,
        progress: dict[str, Any] | None = None,
    ) -> m.Request:
        now = utcnow()
        with self.db.write() as s:
            tenant = self._owned_tenant(s, actor, tenant_id)
            req = self._locked_request(s, request_id)
            if not can_see(actor, req):
                raise NotFound(f"no request {request_id}")
            if req.status != RequestStatus.claimed.value or req.claimed_by != tenant.id:
                raise Conflict(
                    f"request {request_id} is {req.status} and not claimed by tenant {tenant.id}: its lease may have expired"
                )
            req.lease_expires_at = now + self._lease(lease_seconds)
            req.updated_at = now
            if progress is not None:
                req.status_info = {
                    **(req.status_info or {}),
                    "progress": {**progress, "at": now.isoformat()},
                }
            tenant.last_seen_at = now
            return req

    def release(
        self,
        actor: Actor,
        request_id: uuid.UUID,
        tenant_id: uuid.UUID | None,
        message: str = "released",
    ) -> m.Request:
        with self.db.write() as s:
            req = self._locked_request(s, request_id)
            if not can_see(actor, req):
                raise NotFound(f"no request {request_id}")
            if tenant_id is not None:
                tenant = self._owned_tenant(s, actor, tenant_id)
                holder_ok = req.claimed_by == tenant.id
            else:
                holder_ok = req.claimed_by_user == actor.user_id or actor.is_admin
            if req.status != RequestStatus.claimed.value or not holder_ok:
                raise Conflict(
                    f"request {request_id} is {req.status} and not claimed by the caller"
                )
            self._set_status(s, req, RequestStatus.pending, message, actor, tenant_id)
            req.claimed_by = req.claimed_by_user = req.claimed_method = None
            req.claimed_at = req.lease_expires_at = None
            return req

    def fail(
        self,
        actor: Actor,
        request_id: uuid.UUID,
        tenant_id: uuid.UUID,
        message: str,
        *,
        kind: str = "calculation_failed",
        retry: bool = False,
    ) -> m.Request:
        """A tenant could not serve a request: it fails with the reason, or (``retry``) goes
        back to the queue."""
        with self.db.write() as s:
            tenant = self._owned_tenant(s, actor, tenant_id)
            req = self._locked_request(s, request_id)
            if not can_see(actor, req):
                raise NotFound(f"no request {request_id}")
            if req.status == RequestStatus.claimed.value and req.claimed_by != tenant.id:
                raise Conflict(f"request {request_id} is claimed by another tenant")
            if req.status not in (RequestStatus.claimed.value, RequestStatus.pending.value):
                raise Conflict(
                    f"request {request_id} is {req.status}; only a pending or claimed request can fail"
                )
            info = dict(req.status_info or {})
            info["last_error"] = {
                "kind": kind,
                "message": message,
                "tenant_id": str(tenant.id),
                "at": utcnow().isoformat(),
            }
            req.status_info = info
            new = RequestStatus.pending if retry else RequestStatus.failed
            self._set_status(s, req, new, f"{kind}: {message}", actor, tenant.id)
            if retry:
                req.claimed_by = req.claimed_by_user = req.claimed_method = None
                req.claimed_at = req.lease_expires_at = None
            return req

    def retract(self, actor: Actor, request_id: uuid.UUID, message: str = "") -> m.Request:
        with self.db.write() as s:
            req = self._locked_request(s, request_id)
            if not can_see(actor, req):
                raise NotFound(f"no request {request_id}")
            if req.owner_id != actor.user_id and not actor.is_admin:
                raise Forbidden("only the user who asked (or an admin) can retract a request")
            if req.status in TERMINAL_REQUEST_STATUSES:
                raise Conflict(f"request {request_id} is {req.status} and cannot be retracted")
            self._set_status(s, req, RequestStatus.retracted, message or "retracted", actor, None)
            return req

    def _locked_request(self, s: Session, request_id: uuid.UUID) -> m.Request:
        q = select(m.Request).where(m.Request.id == request_id)
        if not self.db.sqlite:
            q = q.with_for_update()
        req = s.scalar(q)
        if req is None:
            raise NotFound(f"no request {request_id}")
        return req

    def _expire_leases_throttled(self) -> None:
        now = time.monotonic()
        if now - self._swept_at > 0.5:
            self._swept_at = now
            self.expire_leases()

    def expire_leases(self) -> int:
        """Return every request whose lease has expired to the queue."""
        now = utcnow()
        with self.db.read() as s:
            due = list(
                s.scalars(
                    select(m.Request.id).where(
                        m.Request.status == RequestStatus.claimed.value,
                        m.Request.lease_expires_at < now,
                    )
                )
            )
        if not due:
            return 0
        n = 0
        with self.db.write() as s:
            for rid in due:
                res = s.execute(
                    update(m.Request)
                    .where(
                        m.Request.id == rid,
                        m.Request.status == RequestStatus.claimed.value,
                        m.Request.lease_expires_at < now,
                    )
                    .values(
                        status=RequestStatus.pending.value,
                        claimed_by=None,
                        claimed_by_user=None,
                        claimed_method=None,
                        claimed_at=None,
                        lease_expires_at=None,
                        updated_at=now,
                    )
                    .execution_options(synchronize_session=False)
                )
                if res.rowcount:
                    n += 1
                    s.add(
                        m.StatusLog(
                            object_type="request",
                            object_id=rid,
                            old_status="claimed",
                            new_status="pending",
                            message="lease expired: returned to the queue",
                            at=now,
                        )
                    )
        return n

    def set_request_status_finales(
        self, actor: Actor, request_id: uuid.UUID, new_status: str, message: str | None
    ) -> str:
        """FINALES ``update_status``: pending, reserved (an exclusive claim) or retracted."""
        from bigmap.schemas.common import FinalesRequestStatus as F

        try:
            target = F(new_status)
        except ValueError:
            raise Invalid(
                f"unknown status {new_status!r}; one of pending, reserved, retracted",
                ["new_status"],
            ) from None
        req = self.get_request(actor, request_id)
        if req.status in (RequestStatus.resolved.value, RequestStatus.unsolicited.value):
            raise Conflict(
                f"request {request_id} is {req.status}: a result answers it and it cannot be reopened"
            )
        if target in (F.resolved, F.unsolicited):
            raise Invalid(
                f"'{target.value}' is set by the broker when a result is posted", ["new_status"]
            )
        if target == F.reserved:
            tenants = self.user_tenant_ids(actor)
            provs = [p for p in self._providers_index() if p.tenant_id in set(tenants)]
            prov = self._serving_provider(provs, req)
            if prov is None and provs and not actor.is_admin:
                raise Conflict(
                    f"none of your tenants can serve request {request_id}: {self._why_not(provs, req)}"
                )
            self.claim(
                actor,
                req.id,
                prov.tenant_id if prov else None,
                method=prov.method if prov else None,
                message=message or "reserved",
            )
        elif target == F.pending:
            if req.status == RequestStatus.pending.value:
                return "Successful change of status to pending"
            if req.status == RequestStatus.claimed.value:
                self.release(actor, req.id, None, message or "set to pending")
            else:
                raise Conflict(f"request {request_id} is {req.status} and cannot return to pending")
        elif target == F.retracted:
            self.retract(actor, req.id, message or "retracted")
        return f"Successful change of status to {target.value}"

    # ------------------------------------------------------------------ results

    def post_result(self, actor: Actor, body: ResultCreate) -> tuple[m.Result, bool]:
        """Store a validated result and resolve its request. Returns (result, created):
        the same idempotency key, or the same data posted again by the same tenant,
        returns the first result."""
        if not actor.can_write:
            raise Forbidden("observers cannot post results")
        files = self._decode_files(body.files)
        sha = content_hash(body.data)
        try:
            if body.request_id is None:
                existing = self._result_by_key(actor, body) if body.idempotency_key else None
                return (
                    (existing, False)
                    if existing
                    else self._post_unsolicited(actor, body, files, sha)
                )
            with self.db.write() as s:
                if body.idempotency_key:
                    existing = self._result_by_key(actor, body, s)
                    if existing is not None:
                        return existing, False
                return self._post_result_in(s, actor, body, files, sha)
        except IntegrityError:
            # a concurrent post with the same idempotency key won the race
            existing = self._result_by_key(actor, body) if body.idempotency_key else None
            if existing is None:
                raise
            return existing, False

    def _result_by_key(
        self, actor: Actor, body: ResultCreate, s: Session | None = None
    ) -> m.Result | None:
        def find(s: Session) -> m.Result | None:
            tenant = self._owned_tenant(s, actor, body.tenant_id)
            return s.scalar(
                select(m.Result).where(
                    m.Result.tenant_id == tenant.id,
                    m.Result.idempotency_key == body.idempotency_key,
                )
            )

        if s is not None:
            return find(s)
        with self.db.read() as s2:
            return find(s2)

    def _post_unsolicited(
        self, actor: Actor, body: ResultCreate, files: list[tuple[FileIn, bytes]], sha: str
    ) -> tuple[m.Result, bool]:
        missing = [f for f in ("quantity", "method", "parameters") if getattr(body, f) is None]
        if missing:
            raise Invalid([error([f], "required for a result without a request") for f in missing])
        params = body.parameters or {}
        cap = self.capability(body.quantity, body.method)
        if cap is None:
            raise Invalid(f"unknown capability {body.quantity}/{body.method}", ["method"])
        if not cap.is_active:
            raise Invalid(f"capability {body.quantity}/{body.method} is not active", ["method"])
        # validate everything before anything is written, so that nothing is half-written
        errors = validate(cap.parameter_schema, params, ["parameters"]) + validate(
            cap.result_schema, body.data, ["data"]
        )
        if errors:
            raise Invalid(errors)
        with self.db.write() as s:
            tenant = self._owned_tenant(s, actor, body.tenant_id)
            now = utcnow()
            req = m.Request(
                id=uuid.uuid4(),
                quantity=body.quantity,
                methods=[body.method],
                parameters={body.method: params},
                tenant_id=tenant.id,
                status=RequestStatus.unsolicited.value,
                status_info={},
                owner_id=actor.user_id,
                access=body.access.value,
                access_groups=body.access_groups,
                embargo_until=body.embargo_until,
                priority=0,
                attempts=0,
                created_at=now,
                updated_at=now,
            )
            s.add(req)
            s.flush()
            self._log(
                s,
                "request",
                req.id,
                None,
                RequestStatus.unsolicited.value,
                "created for an unsolicited result",
                actor,
                tenant.id,
            )
            body = body.model_copy(update={"request_id": req.id})
            return self._post_result_in(s, actor, body, files, sha, unsolicited=True)

    def _post_result_in(
        self,
        s: Session,
        actor: Actor,
        body: ResultCreate,
        files: list[tuple[FileIn, bytes]],
        sha: str,
        *,
        unsolicited: bool = False,
    ) -> tuple[m.Result, bool]:
        tenant = self._tenant_info(s, actor, body.tenant_id)
        req = self._request_row(s, body.request_id, lock=True)
        if not can_see(actor, req):
            raise NotFound(f"no request {body.request_id}")
        errors: list[ErrorDetail] = []
        if body.quantity is not None and body.quantity != req.quantity:
            errors.append(
                error(["quantity"], f"the request asks for {req.quantity!r}, not {body.quantity!r}")
            )
        method = (
            body.method or req.claimed_method or (req.methods[0] if len(req.methods) == 1 else None)
        )
        if method is None:
            raise Invalid(
                f"the request allows the methods {req.methods}: say which one was used", ["method"]
            )
        if method not in req.methods:
            raise Invalid(
                f"{method!r} is not one of the request's methods {req.methods}", ["method"]
            )
        cap = self.capability(req.quantity, method)
        if cap is None:
            raise Invalid(f"capability {req.quantity}/{method} no longer exists", ["method"])
        params = body.parameters if body.parameters is not None else req.parameters.get(method, {})
        if body.parameters is not None:
            errors.extend(validate(cap.parameter_schema, params, ["parameters"]))
        errors.extend(validate(cap.result_schema, body.data, ["data"]))
        metadata = None
        if not errors and RESULT_CHECKS:  # e.g. minimum metadata (bigmap.store.fair)
            info = {
                "quantity": req.quantity,
                "method": method,
                "parameters": params,
                "data": body.data,
                "provenance": body.provenance,
                "software": body.software.model_dump() if body.software else tenant.software,
                "files": [{"name": f.name, "media_type": f.media_type} for f, _ in files],
                "tenant_kind": tenant.kind,
                "result_schema": cap.result_schema,
            }
            for check in RESULT_CHECKS:
                errs, report = check(self, info)
                errors.extend(errs)
                metadata = report if report is not None else metadata
        if errors:
            raise Invalid(errors)
        conn = s.connection()
        previous = None
        if (
            req.status in (RequestStatus.resolved.value, RequestStatus.unsolicited.value)
            and not unsolicited
        ):
            if req.result_id is not None:
                row = conn.execute(select(RES).where(RES.c.id == req.result_id)).mappings().first()
                previous = m.Result(**row) if row else None
            if (
                previous is not None
                and previous.sha256 == sha
                and previous.tenant_id == tenant.id
                and not body.amend
            ):
                return previous, False
            if not body.amend:
                raise Conflict(
                    f"request {req.id} is already resolved by result {req.result_id}; post with amend=true to replace it"
                )
        elif req.status in (RequestStatus.failed.value, RequestStatus.retracted.value):
            raise Conflict(f"request {req.id} is {req.status}; it takes no result")
        elif req.status == RequestStatus.claimed.value:
            if req.claimed_by is not None and req.claimed_by != tenant.id:
                raise Conflict(
                    f"request {req.id} is claimed by tenant {req.claimed_by}, not {tenant.id}"
                )
            if req.claimed_by is None and req.claimed_by_user not in (None, actor.user_id):
                raise Conflict(f"request {req.id} is reserved by another user")
        elif body.amend and not unsolicited:
            raise Conflict(f"request {req.id} has no result to amend")
        now = utcnow()
        result_id = uuid.uuid4()
        access = self._inherited_access(body, req)
        software = body.software.model_dump() if body.software else tenant.software
        provenance = {
            **body.provenance,
            "tenant": {"id": str(tenant.id), "name": tenant.name, "kind": tenant.kind},
            "user": actor.name,
            "software": software,
            "request_id": str(req.id),
            "parent_request_id": str(req.parent_id) if req.parent_id else None,
            "campaign_id": str(req.campaign_id) if req.campaign_id else None,
            "method": method,
            "requested_at": req.created_at.isoformat(),
            "claimed_at": req.claimed_at.isoformat() if req.claimed_at else None,
            "created_at": now.isoformat(),
            "sha256": sha,
            "files": [],
        }
        if metadata is not None:
            provenance["metadata"] = metadata
        file_rows = []
        for f, content in files:
            digest = hashlib.sha256(content).hexdigest()
            file_rows.append(
                {
                    "id": uuid.uuid4(),
                    "result_id": result_id,
                    "name": f.name,
                    "media_type": f.media_type,
                    "size": len(content),
                    "sha256": digest,
                    "content": content,
                    "owner_id": actor.user_id,
                    "created_at": now,
                    **access,
                }
            )
            provenance["files"].append(
                {
                    "id": str(file_rows[-1]["id"]),
                    "name": f.name,
                    "sha256": digest,
                    "size": len(content),
                }
            )
        values = {
            "id": result_id,
            "request_id": req.id,
            "quantity": req.quantity,
            "method": method,
            "parameters": params,
            "data": body.data,
            "tenant_id": tenant.id,
            "status": ResultStatus.original.value,
            "sha256": sha,
            "provenance": provenance,
            "software": software,
            "amends": previous.id if previous is not None else None,
            "idempotency_key": body.idempotency_key,
            "owner_id": actor.user_id,
            "created_at": now,
            **access,
        }
        conn.execute(RES.insert(), values)
        if file_rows:
            conn.execute(FILE.insert(), file_rows)
        if previous is not None:
            conn.execute(
                RES.update()
                .where(RES.c.id == previous.id)
                .values(status=ResultStatus.amended.value)
            )
            self._log_core(
                s,
                "result",
                previous.id,
                ResultStatus.original.value,
                ResultStatus.amended.value,
                f"amended by result {result_id}",
                actor,
                tenant.id,
                now,
            )
        self._log_core(
            s,
            "result",
            result_id,
            None,
            ResultStatus.original.value,
            "posted",
            actor,
            tenant.id,
            now,
        )
        changes: dict[str, Any] = {"result_id": result_id, "updated_at": now}
        if req.status not in (RequestStatus.resolved.value, RequestStatus.unsolicited.value):
            changes.update(status=RequestStatus.resolved.value, lease_expires_at=None)
            self._log_core(
                s,
                "request",
                req.id,
                req.status,
                RequestStatus.resolved.value,
                f"resolved by result {result_id}",
                actor,
                tenant.id,
                now,
            )
        conn.execute(REQ.update().where(REQ.c.id == req.id).values(**changes))
        self._touch_in(s, tenant, now)
        return m.Result(**values), True

    @staticmethod
    def _inherited_access(body: ResultCreate, req: m.Request) -> dict[str, Any]:
        """A result has its request's access tier unless the poster sets one."""
        if "access" in body.model_fields_set:
            return {
                "access": body.access.value,
                "access_groups": body.access_groups,
                "embargo_until": body.embargo_until,
            }
        return {
            "access": req.access,
            "access_groups": req.access_groups,
            "embargo_until": req.embargo_until,
        }

    @staticmethod
    def _decode_files(files: list[FileIn]) -> list[tuple[FileIn, bytes]]:
        out = []
        errors = []
        for i, f in enumerate(files):
            try:
                content = base64.b64decode(f.content_base64, validate=True)
            except (binascii.Error, ValueError):
                errors.append(error(["files", i, "content_base64"], "not valid base64"))
                continue
            if len(content) > MAX_FILE_BYTES:
                errors.append(error(["files", i], f"larger than {MAX_FILE_BYTES} bytes"))
                continue
            out.append((f, content))
        if errors:
            raise Invalid(errors)
        return out

    def get_result(self, actor: Actor, result_id: uuid.UUID) -> m.Result:
        with self.db.read() as s:
            res = s.get(m.Result, result_id)
        if res is None or not can_see(actor, res):
            raise NotFound(f"no result {result_id}")
        return res

    def result_for_request(self, actor: Actor, request_id: uuid.UUID) -> m.Result | None:
        req = self.get_request(actor, request_id)
        if req.result_id is None:
            return None
        res = self.get_result(actor, req.result_id)
        return None if res.status == ResultStatus.deleted.value else res

    def list_results(
        self,
        actor: Actor,
        *,
        quantity: str | None = None,
        method: str | None = None,
        request_id: uuid.UUID | None = None,
        tenant_id: uuid.UUID | None = None,
        campaign_id: uuid.UUID | None = None,
        include_deleted: bool = False,
        limit: int = 1000,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[m.Result]:
        q = select(m.Result).where(visibility_clause(actor, m.Result, self.db.engine.dialect.name))
        if quantity:
            q = q.where(m.Result.quantity == quantity)
        if method:
            q = q.where(m.Result.method == method)
        if request_id:
            q = q.where(m.Result.request_id == request_id)
        if tenant_id:
            q = q.where(m.Result.tenant_id == tenant_id)
        if campaign_id:
            q = q.join(m.Request, m.Request.id == m.Result.request_id).where(
                m.Request.campaign_id == campaign_id
            )
        if not include_deleted:
            q = q.where(m.Result.status != ResultStatus.deleted.value)
        q = q.order_by(
            m.Result.created_at.desc() if newest_first else m.Result.created_at, m.Result.id
        )
        with self.db.read() as s:
            rows = [r for r in s.scalars(q) if can_see(actor, r)]
        return rows[offset : offset + limit]

    def set_result_status(
        self, actor: Actor, result_id: uuid.UUID, new_status: str, message: str | None = None
    ) -> str:
        try:
            target = ResultStatus(new_status)
        except ValueError:
            raise Invalid(
                f"unknown status {new_status!r}; one of amended, deleted", ["new_status"]
            ) from None
        if target == ResultStatus.original:
            raise Invalid("'original' is only given at the first posting", ["new_status"])
        with self.db.write() as s:
            res = s.get(m.Result, result_id)
            if res is None or not can_see(actor, res):
                raise NotFound(f"no result {result_id}")
            if res.owner_id != actor.user_id and not actor.is_admin:
                raise Forbidden(
                    "only the user who posted a result (or an admin) can change its status"
                )
            old = res.status
            res.status = target.value
            self._log(
                s,
                "result",
                res.id,
                old,
                target.value,
                message or f"set to {target.value}",
                actor,
                None,
            )
        return f"Successful change of status to {target.value}"

    def result_files(self, actor: Actor, result_id: uuid.UUID) -> list[m.File]:
        self.get_result(actor, result_id)
        with self.db.read() as s:
            return [
                f
                for f in s.scalars(
                    select(m.File).where(m.File.result_id == result_id).order_by(m.File.created_at)
                )
                if can_see(actor, f)
            ]

    def get_file(self, actor: Actor, file_id: uuid.UUID) -> m.File:
        with self.db.read() as s:
            f = s.get(m.File, file_id)
        if f is None or not can_see(actor, f):
            raise NotFound(f"no file {file_id}")
        return f

    # ------------------------------------------------------------------ campaigns

    def create_campaign(self, actor: Actor, body: CampaignCreate) -> tuple[m.Campaign, bool]:
        if not actor.can_write:
            raise Forbidden("observers cannot start campaigns")
        with self.db.write() as s:
            tenant = self._owned_tenant(s, actor, body.tenant_id)
            if body.idempotency_key:
                existing = s.scalar(
                    select(m.Campaign).where(
                        m.Campaign.owner_id == actor.user_id,
                        m.Campaign.idempotency_key == body.idempotency_key,
                    )
                )
                if existing is not None:
                    return existing, False
            now = utcnow()
            camp = m.Campaign(
                name=body.name,
                spec=body.spec,
                tenant_id=tenant.id,
                status=body.status.value,
                control="run",
                summary={},
                idempotency_key=body.idempotency_key,
                owner_id=actor.user_id,
                access=body.access.value,
                access_groups=body.access_groups,
                embargo_until=body.embargo_until,
                created_at=now,
                updated_at=now,
            )
            s.add(camp)
            s.flush()
            self._log(s, "campaign", camp.id, None, camp.status, "created", actor, tenant.id)
            return camp, True

    def get_campaign(self, actor: Actor, campaign_id: uuid.UUID) -> m.Campaign:
        with self.db.read() as s:
            camp = s.get(m.Campaign, campaign_id)
        if camp is None or not can_see(actor, camp):
            raise NotFound(f"no campaign {campaign_id}")
        return camp

    def list_campaigns(self, actor: Actor) -> list[m.Campaign]:
        with self.db.read() as s:
            rows = s.scalars(
                select(m.Campaign)
                .where(visibility_clause(actor, m.Campaign, self.db.engine.dialect.name))
                .order_by(m.Campaign.created_at.desc())
            )
            return [c for c in rows if can_see(actor, c)]

    def count_campaign_events(self, campaign_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
        if not campaign_ids:
            return {}
        with self.db.read() as s:
            return dict(
                s.execute(
                    select(m.CampaignEvent.campaign_id, func.count())
                    .where(m.CampaignEvent.campaign_id.in_(campaign_ids))
                    .group_by(m.CampaignEvent.campaign_id)
                ).all()
            )

    def update_campaign(
        self, actor: Actor, campaign_id: uuid.UUID, body: CampaignUpdate
    ) -> m.Campaign:
        with self.db.write() as s:
            q = select(m.Campaign).where(m.Campaign.id == campaign_id)
            if not self.db.sqlite:
                q = q.with_for_update()
            camp = s.scalar(q)
            if camp is None or not can_see(actor, camp):
                raise NotFound(f"no campaign {campaign_id}")
            if camp.owner_id != actor.user_id and not actor.is_admin:
                raise Forbidden("only the campaign's owner (or an admin) can change it")
            now = utcnow()
            if body.status is not None and body.status.value != camp.status:
                self._log(
                    s,
                    "campaign",
                    camp.id,
                    camp.status,
                    body.status.value,
                    body.message or "status changed",
                    actor,
                    None,
                )
                camp.status = body.status.value
            if body.control is not None and body.control != camp.control:
                self._log(
                    s,
                    "campaign",
                    camp.id,
                    camp.status,
                    camp.status,
                    f"control: {body.control}. {body.message}".strip(),
                    actor,
                    None,
                )
                camp.control = body.control
            if body.summary is not None:
                camp.summary = body.summary
            camp.updated_at = now
            return camp

    def add_campaign_event(
        self, actor: Actor, campaign_id: uuid.UUID, body: CampaignEventCreate
    ) -> tuple[m.CampaignEvent, bool]:
        with self.db.write() as s:
            q = select(m.Campaign).where(m.Campaign.id == campaign_id)
            if not self.db.sqlite:
                q = q.with_for_update()
            camp = s.scalar(q)
            if camp is None or not can_see(actor, camp):
                raise NotFound(f"no campaign {campaign_id}")
            if camp.owner_id != actor.user_id and not actor.is_admin:
                raise Forbidden("only the campaign's owner can record its steps")
            if body.idempotency_key:
                existing = s.scalar(
                    select(m.CampaignEvent).where(
                        m.CampaignEvent.campaign_id == campaign_id,
                        m.CampaignEvent.idempotency_key == body.idempotency_key,
                    )
                )
                if existing is not None:
                    return existing, False
            seq = (
                s.scalar(
                    select(func.max(m.CampaignEvent.seq)).where(
                        m.CampaignEvent.campaign_id == campaign_id
                    )
                )
                or 0
            ) + 1
            ev = m.CampaignEvent(
                campaign_id=campaign_id,
                seq=seq,
                kind=body.kind,
                data=body.data,
                request_ids=[str(r) for r in body.request_ids],
                idempotency_key=body.idempotency_key,
                created_at=utcnow(),
            )
            s.add(ev)
            camp.updated_at = ev.created_at
            s.flush()
            return ev, True

    def list_campaign_events(
        self,
        actor: Actor,
        campaign_id: uuid.UUID,
        *,
        after: int = 0,
        kind: str | None = None,
        limit: int = 10000,
    ) -> list[m.CampaignEvent]:
        self.get_campaign(actor, campaign_id)
        q = select(m.CampaignEvent).where(
            m.CampaignEvent.campaign_id == campaign_id, m.CampaignEvent.seq > after
        )
        if kind:
            q = q.where(m.CampaignEvent.kind == kind)
        with self.db.read() as s:
            events = list(s.scalars(q.order_by(m.CampaignEvent.seq).limit(limit)))
        # an event about requests or results the reader may not see keeps only its place
        return Fair(self).visible_events(actor, events)

    # ------------------------------------------------------------------ status log

    def _set_status(
        self,
        s: Session,
        req: m.Request,
        new: RequestStatus,
        message: str,
        actor: Actor | None,
        tenant_id: uuid.UUID | None,
    ) -> None:
        old = req.status
        req.status = new.value
        req.updated_at = utcnow()
        self._log(s, "request", req.id, old, new.value, message, actor, tenant_id)

    @staticmethod
    def _log(
        s: Session,
        kind: str,
        obj_id: uuid.UUID,
        old: str | None,
        new: str,
        message: str,
        actor: Actor | None,
        tenant_id: uuid.UUID | None,
    ) -> None:
        s.add(
            m.StatusLog(
                object_type=kind,
                object_id=obj_id,
                old_status=old,
                new_status=new,
                message=message,
                user_id=actor.user_id if actor else None,
                tenant_id=tenant_id,
                at=utcnow(),
            )
        )

    def status_log(self, actor: Actor, object_id: uuid.UUID) -> list[dict[str, Any]]:
        with self.db.read() as s:
            rows = list(
                s.scalars(
                    select(m.StatusLog)
                    .where(m.StatusLog.object_id == object_id)
                    .order_by(m.StatusLog.id)
                )
            )
            names = dict(s.execute(select(m.User.id, m.User.name)).all())
        return [
            {
                "object_type": r.object_type,
                "object_id": r.object_id,
                "old_status": r.old_status,
                "new_status": r.new_status,
                "message": r.message,
                "user": names.get(r.user_id),
                "tenant_id": r.tenant_id,
                "at": r.at,
            }
            for r in rows
        ]

    def user_names(self) -> dict[uuid.UUID, str]:
        with self.db.read() as s:
            return dict(s.execute(select(m.User.id, m.User.name)).all())
