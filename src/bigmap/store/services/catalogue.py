"""The catalogue: capabilities (what can be asked for), tenants (who serves them, within which
limitations) and their registration; which active tenant could serve a request."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bigmap.schemas import limitations as lim
from bigmap.schemas.capability import CapabilitySpec
from bigmap.schemas.common import RequestStatus, utcnow
from bigmap.schemas.tenant import TenantSpec
from bigmap.schemas.validation import ErrorDetail, check_schema, error, validate
from bigmap.store import models as m
from bigmap.store import policy
from bigmap.store.access import Actor, can_see, visibility_clause
from bigmap.store.errors import Conflict, Invalid, NotFound
from bigmap.store.services.identity import Identity
from bigmap.store.services.uow import UnitOfWork

_CACHE_SECONDS = 2.0
DEFINING_FIELDS = ("quantity", "method", "parameter_schema", "result_schema", "is_active")
DESCRIPTIVE_FIELDS = ("description", "units", "iri", "cost", "fidelity")
TEN = m.Tenant.__table__


@dataclass(frozen=True)
class CapabilityInfo:
    id: uuid.UUID
    quantity: str
    method: str
    parameter_schema: dict[str, Any]
    result_schema: dict[str, Any]
    is_active: bool


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


def _differences(row: Any, values: dict[str, Any], fields: list[str]) -> str:
    """What differs between a stored capability and a new definition, field by field (for a
    schema: which of its top-level keys, and which properties)."""
    out = []
    for k in fields:
        old, new = getattr(row, k), values[k]
        if isinstance(old, dict) and isinstance(new, dict):
            keys = sorted(str(x) for x in set(old) | set(new) if old.get(x) != new.get(x))
            props_old, props_new = old.get("properties") or {}, new.get("properties") or {}
            if isinstance(props_old, dict) and isinstance(props_new, dict):
                props = sorted(
                    str(p)
                    for p in set(props_old) | set(props_new)
                    if props_old.get(p) != props_new.get(p)
                )
                if props:
                    keys = [x for x in keys if x != "properties"]
                    keys.append("properties " + ", ".join(props[:10]))
            out.append(f"{k} differs in {'; '.join(keys[:10])}")
        else:
            out.append(f"{k} is {old!r} here, {new!r} in yours")
    return "; ".join(out)


class Catalogue:
    """Capabilities and tenants."""

    def __init__(
        self, uow: UnitOfWork, identity: Identity, *, heartbeat_seconds: float = 120.0
    ) -> None:
        self.uow = uow
        self.identity = identity
        self.heartbeat_seconds = heartbeat_seconds
        self._lock = threading.Lock()
        self._caps: dict[tuple[str, str], CapabilityInfo] = {}
        self._caps_at = 0.0
        self._providers: list[Provider] = []
        self._providers_at = 0.0
        self._tenants: dict[uuid.UUID, tuple[float, TenantInfo]] = {}

    def capabilities(self, force: bool = False) -> dict[tuple[str, str], CapabilityInfo]:
        """Every capability, cached for a moment. The cache holds committed state only;
        ``force`` inside an open unit of work reads through it (its own uncommitted
        definitions included) and leaves the cache alone."""
        if force and self.uow.active:
            with self.uow.read() as s:
                return self._read_capabilities(s)
        now = time.monotonic()
        if force or now - self._caps_at > _CACHE_SECONDS:
            with self.uow.committed() as s:
                caps = self._read_capabilities(s)
            with self._lock:
                self._caps, self._caps_at = caps, now
        return self._caps

    @staticmethod
    def _read_capabilities(s: Session) -> dict[tuple[str, str], CapabilityInfo]:
        return {
            (c.quantity, c.method): CapabilityInfo(
                c.id, c.quantity, c.method, c.parameter_schema, c.result_schema, c.is_active
            )
            for c in s.scalars(select(m.Capability))
        }

    def capability(self, quantity: str, method: str) -> CapabilityInfo | None:
        cap = self.capabilities().get((quantity, method))
        return cap if cap is not None else self.capabilities(force=True).get((quantity, method))

    def add_capability(
        self, actor: Actor, spec: CapabilitySpec, *, replace: bool = False
    ) -> tuple[m.Capability, bool]:
        """Register a capability. The same definition again is a no-op; a different one
        needs ``replace`` and an admin. Returns (capability, created)."""
        policy.require_writer(actor, "add capabilities")
        errors = []
        for field_name in ("parameter_schema", "result_schema"):
            problem = check_schema(getattr(spec, field_name))
            if problem:
                errors.append(error([field_name], problem))
        if errors:
            raise Invalid(errors)
        values = spec.model_dump()
        # Identical registrations racing each other (workers starting together) all succeed:
        # the loser of the insert race finds the winner's row on its second try.
        for attempt in range(3):
            try:
                row, created = self._add_capability_once(actor, spec, values, replace)
                break
            except IntegrityError:
                if attempt == 2:
                    raise
        self._caps_at = 0.0
        return row, created

    def _add_capability_once(
        self, actor: Actor, spec: CapabilitySpec, values: dict[str, Any], replace: bool
    ) -> tuple[m.Capability, bool]:
        with self.uow.write() as s:
            row = s.scalar(
                select(m.Capability).where(
                    m.Capability.quantity == spec.quantity, m.Capability.method == spec.method
                )
            )
            if row is None:
                policy.define_capability(actor, spec.quantity, spec.method)
                row = m.Capability(**values)
                s.add(row)
                s.flush()
                return row, True
            # The definition is the pair of schemas: another one needs an explicit replace.
            # Descriptive fields (description, units, IRI, cost, fidelity) only fill gaps.
            differs = [k for k in DEFINING_FIELDS if getattr(row, k) != values[k]]
            if differs or (replace and any(getattr(row, k) != v for k, v in values.items())):
                if not replace:
                    raise Conflict(
                        f"capability {spec.quantity}/{spec.method} exists with another "
                        f"definition: {_differences(row, values, differs)}; replace it "
                        "explicitly (admin only)"
                    )
                policy.replace_capability(actor, spec.quantity, spec.method)
                for k, v in values.items():
                    setattr(row, k, v)
            else:
                for k in DESCRIPTIVE_FIELDS:
                    if getattr(row, k) in (None, "", {}) and values[k] not in (None, "", {}):
                        setattr(row, k, values[k])
            return row, False

    def list_capabilities(
        self, *, currently_available: bool = False, limit: int | None = None, offset: int = 0
    ) -> list[tuple[m.Capability, int]]:
        """Capabilities with the number of active tenants providing each (one page in SQL
        with ``limit``)."""
        provided = (
            select(m.TenantCapability.capability_id)
            .join(m.Tenant, m.Tenant.id == m.TenantCapability.tenant_id)
            .where(m.Tenant.is_active.is_(True))
        )
        q = select(m.Capability).order_by(m.Capability.quantity, m.Capability.method)
        if currently_available:
            q = q.where(m.Capability.is_active.is_(True), m.Capability.id.in_(provided))
        if limit is not None:
            q = q.offset(offset).limit(limit)
        with self.uow.read() as s:
            caps = list(s.scalars(q))
            counts = dict(
                s.execute(
                    select(m.TenantCapability.capability_id, func.count())
                    .join(m.Tenant, m.Tenant.id == m.TenantCapability.tenant_id)
                    .where(m.Tenant.is_active.is_(True))
                    .where(m.TenantCapability.capability_id.in_([c.id for c in caps]))
                    .group_by(m.TenantCapability.capability_id)
                ).all()
            )
        return [(c, counts.get(c.id, 0)) for c in caps]

    def get_capability(self, quantity: str, method: str) -> m.Capability:
        with self.uow.read() as s:
            row = s.scalar(
                select(m.Capability).where(
                    m.Capability.quantity == quantity, m.Capability.method == method
                )
            )
        if row is None:
            raise NotFound(f"no capability {quantity}/{method}")
        return row

    def providers_index(self, force: bool = False) -> list[Provider]:
        """Who provides what: (active tenant, active capability) pairs, cached for a moment
        (committed state; ``force`` inside an open unit reads through it, uncached)."""
        if force and self.uow.active:
            with self.uow.read() as s:
                return self._read_providers(s)
        now = time.monotonic()
        if force or now - self._providers_at > _CACHE_SECONDS:
            with self.uow.committed() as s:
                providers = self._read_providers(s)
            with self._lock:
                self._providers, self._providers_at = providers, now
        return self._providers

    @staticmethod
    def _read_providers(s: Session) -> list[Provider]:
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
        return [Provider(*row) for row in rows]

    def register_tenant(
        self, actor: Actor, spec: TenantSpec, *, owner: str | None = None
    ) -> tuple[m.Tenant, list[str], bool]:
        """Register (or update, by owner and name) a tenant and what it provides.

        Limitations are checked against the capabilities: an unknown capability or a
        malformed limitation is a 422. Returns (tenant, warnings, created)."""
        owner_name = owner or actor.name
        policy.register_tenant_for(actor, owner_name)
        errors: list[ErrorDetail] = []
        warnings: list[str] = []
        caps = self.capabilities(force=True)
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
        # Identical registrations racing each other (workers starting together) all succeed:
        # the loser of an insert race finds the winner's rows on its next try.
        for attempt in range(3):
            try:
                tenant, created = self._register_tenant_once(owner_name, spec, resolved)
                break
            except IntegrityError:
                if attempt == 2:
                    raise
        self._providers_at = 0.0
        self._tenants.pop(tenant.id, None)
        self._reevaluate_servability({(c.quantity) for c, _ in resolved})
        return tenant, warnings, created

    def _register_tenant_once(
        self, owner_name: str, spec: TenantSpec, resolved: list[tuple[CapabilityInfo, Any]]
    ) -> tuple[m.Tenant, bool]:
        with self.uow.write() as s:
            owner_row = self.identity.user_by_name(s, owner_name)
            q = select(m.Tenant).where(
                m.Tenant.owner_id == owner_row.id, m.Tenant.name == spec.name
            )
            if not self.uow.sqlite:
                q = q.with_for_update()
            tenant = s.scalar(q)
            created = tenant is None
            if tenant is None:
                tenant = m.Tenant(name=spec.name, owner_id=owner_row.id)
                s.add(tenant)
            software = spec.software.model_dump() if spec.software else None
            for k, v in (
                ("kind", spec.kind.value),
                ("description", spec.description),
                ("contact_person", spec.contact_person),
                ("software", software),
                ("is_active", True),
            ):
                if created or getattr(tenant, k) != v:  # an identical registration writes nothing
                    setattr(tenant, k, v)
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
                elif tc.limitations != limits:
                    tc.limitations = limits
            for tc in existing.values():
                s.delete(tc)
            s.flush()
            return tenant, created

    def _reevaluate_servability(self, quantities: set[str]) -> None:
        if not quantities:
            return
        with self.uow.write() as s:
            providers = self.providers_index(force=True)
            rows = s.scalars(
                select(m.Request).where(
                    m.Request.status == RequestStatus.pending.value,
                    m.Request.quantity.in_(quantities),
                )
            ).all()
            for req in rows:
                info = self.servability(req.quantity, req.methods, req.parameters, providers)
                if (req.status_info or {}).get("servable") != info["servable"]:
                    req.status_info = {**(req.status_info or {}), **info}

    def set_tenant_active(self, actor: Actor, tenant_id: uuid.UUID, active: bool) -> m.Tenant:
        with self.uow.write() as s:
            tenant = self.owned_tenant(s, actor, tenant_id, allow_admin=True)
            tenant.is_active = active
        self._providers_at = 0.0
        self._tenants.pop(tenant.id, None)
        return tenant

    def tenant_info(self, s: Session, actor: Actor, tenant_id: uuid.UUID | str) -> TenantInfo:
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
            self.uow.on_rollback(lambda: self._tenants.pop(tid, None))
        else:
            info = hit[1]
        policy.act_as_tenant(actor, info)
        return info

    def touch_in(self, s: Session, info: TenantInfo, at: datetime) -> None:
        """Record that a tenant was seen, at most every few seconds (a write per call would
        cost more than the liveness it tells)."""
        if info.last_seen_at is None or (at - info.last_seen_at).total_seconds() > 5.0:
            s.connection().execute(TEN.update().where(TEN.c.id == info.id).values(last_seen_at=at))
            self._tenants[info.id] = (time.monotonic(), replace(info, last_seen_at=at))
            self.uow.on_rollback(lambda: self._tenants.pop(info.id, None))

    def owned_tenant(
        self, s: Session, actor: Actor, tenant_id: uuid.UUID | str, *, allow_admin: bool = False
    ) -> m.Tenant:
        try:
            tid = tenant_id if isinstance(tenant_id, uuid.UUID) else uuid.UUID(str(tenant_id))
        except ValueError:
            raise Invalid(f"tenant {tenant_id!r} is not a UUID", ["tenant_id"]) from None
        tenant = s.get(m.Tenant, tid)
        if tenant is None:
            raise Invalid(f"tenant {tid} does not exist", ["tenant_id"])
        policy.act_as_tenant(actor, tenant, allow_admin=allow_admin)
        return tenant

    def get_tenant(self, tenant_id: uuid.UUID) -> m.Tenant:
        with self.uow.read() as s:
            tenant = s.get(m.Tenant, tenant_id)
        if tenant is None:
            raise NotFound(f"no tenant {tenant_id}")
        return tenant

    def find_tenant(self, owner: str, name: str) -> m.Tenant | None:
        with self.uow.read() as s:
            return s.scalar(
                select(m.Tenant)
                .join(m.User, m.User.id == m.Tenant.owner_id)
                .where(m.User.name == owner, m.Tenant.name == name)
            )

    def list_tenants(self, *, limit: int | None = None, offset: int = 0) -> list[m.Tenant]:
        """Tenants, oldest first; one page in SQL with ``limit``."""
        q = select(m.Tenant).order_by(m.Tenant.created_at, m.Tenant.id)
        if limit is not None:
            q = q.offset(offset).limit(limit)
        with self.uow.read() as s:
            return list(s.scalars(q))

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
        with self.uow.read() as s:
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
                        visibility_clause(actor, m.Request, self.uow.dialect),
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
        with self.uow.write() as s:
            tenant = self.owned_tenant(s, actor, tenant_id)
            tenant.last_seen_at = utcnow()
            if software:
                tenant.software = software
        self._tenants.pop(tenant.id, None)
        return tenant

    def touch(self, actor: Actor, tenant: m.Tenant) -> None:
        """Mark a tenant alive, writing at most every few seconds."""
        last = tenant.last_seen_at
        if last is None or (utcnow() - last).total_seconds() > min(
            10.0, self.heartbeat_seconds / 4
        ):
            self.heartbeat(actor, tenant.id)

    def servability(
        self,
        quantity: str,
        methods: list[str],
        parameters: dict[str, Any],
        providers: list[Provider] | None = None,
    ) -> dict[str, Any]:
        if providers is None and self.uow.active:
            # the cache holds committed tenants; this unit may have registered one
            found = self.servability(quantity, methods, parameters, self.providers_index())
            if found["servable"]:
                return found
            providers = self.providers_index(force=True)
        reasons = []
        for p in self.providers_index() if providers is None else providers:
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
        known_quantity = any(q == quantity for q, _ in self.capabilities()) or any(
            q == quantity for q, _ in self.capabilities(force=True)
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

    @staticmethod
    def serving_provider(
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

    @staticmethod
    def why_not(provs: list[Provider], req: m.Request) -> str:
        relevant = [p for p in provs if p.quantity == req.quantity and p.method in req.methods]
        if not relevant:
            return f"it does not provide {req.quantity} by {', '.join(req.methods)}"
        return "; ".join(
            f"{p.method}: {lim.outside(p.limitations, req.parameters.get(p.method, {}))}"
            for p in relevant
        )

    def active_providers(self) -> list[Provider]:
        """Who provides what now: one entry per (active tenant, active capability)."""
        return list(self.providers_index())

    def providers_of(self, tenant_id: uuid.UUID) -> list[Provider]:
        provs = [p for p in self.providers_index() if p.tenant_id == tenant_id]
        if not provs and self.uow.active:  # perhaps registered in this unit, not yet committed
            provs = [p for p in self.providers_index(force=True) if p.tenant_id == tenant_id]
        return provs

    def user_tenant_ids(self, actor: Actor) -> list[uuid.UUID]:
        with self.uow.read() as s:
            return list(
                s.scalars(
                    select(m.Tenant.id).where(
                        m.Tenant.owner_id == actor.user_id, m.Tenant.is_active.is_(True)
                    )
                )
            )
