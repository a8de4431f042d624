"""The queue: requests, their claims and leases, release, fail, retract, and the sweeper that
returns expired leases to the queue."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, exists, func, literal, or_, select, type_coerce, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bigmap.schemas.common import TERMINAL_REQUEST_STATUSES, RequestStatus, utcnow
from bigmap.schemas.request import RequestCreate
from bigmap.store import models as m
from bigmap.store import policy
from bigmap.store.access import Actor, can_see, visibility_clause
from bigmap.store.errors import Conflict, Invalid, NotFound
from bigmap.store.services.catalogue import Catalogue
from bigmap.store.services.log import log_core, set_status
from bigmap.store.services.uow import UnitOfWork

REQ = m.Request.__table__


def _json_list_has(column: Any, value: str, dialect: str) -> Any:
    """SQL: the JSON list in ``column`` contains the string ``value``."""
    if dialect == "postgresql":
        return type_coerce(column, JSONB).contains([value])  # jsonb @>
    each = func.json_each(column).table_valued("value")
    return exists(select(literal(1)).select_from(each).where(each.c.value == value))


class Queue:
    """Requests and claims."""

    def __init__(
        self, uow: UnitOfWork, catalogue: Catalogue, *, lease_seconds: float = 60.0
    ) -> None:
        self.uow = uow
        self.catalogue = catalogue
        self.lease_seconds = lease_seconds
        self._swept_at = 0.0

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
        policy.require_writer(actor, "post requests")
        # validation is CPU work: done before taking the write lock
        self.catalogue.validate_request_parameters(
            body.quantity, body.methods, body.parameters, ["parameters"]
        )
        info = (
            self.catalogue.servability(body.quantity, body.methods, body.parameters)
            if status == RequestStatus.pending
            else {}
        )
        now = utcnow()
        try:
            with self.uow.write() as s:
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
                tenant = self.catalogue.tenant_info(s, actor, body.tenant_id)
                conn = s.connection()
                linked: dict[str, Any] = {}
                for field, model, ident in (
                    ("parent_id", REQ, body.parent_id),
                    ("campaign_id", m.Campaign.__table__, body.campaign_id),
                ):
                    if ident is None:
                        continue
                    cols = [
                        model.c.id,
                        model.c.owner_id,
                        model.c.access,
                        model.c.access_groups,
                        model.c.embargo_until,
                    ]
                    if model is REQ:
                        cols += [REQ.c.campaign_id, REQ.c.status, REQ.c.claimed_by_user]
                    row = conn.execute(select(*cols).where(model.c.id == ident)).first()
                    # a parent or campaign the caller may not see does not exist for it (a
                    # sub-request may join the campaign of the visible parent it serves)
                    parent = linked.get("parent_id")
                    via_parent = (
                        field == "campaign_id"
                        and parent is not None
                        and parent.campaign_id == ident
                    )
                    visible = row is not None and (can_see(actor, row) or via_parent)
                    if not visible:
                        raise Invalid(
                            f"{field.removesuffix('_id')} {ident} does not exist", [field]
                        )
                    if field == "campaign_id":
                        policy.join_campaign(actor, row, parent)
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
                log_core(
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
        with self.uow.read() as s:
            return s.scalar(
                select(m.Request).where(
                    m.Request.owner_id == actor.user_id, m.Request.idempotency_key == key
                )
            )

    def get_request(self, actor: Actor, request_id: uuid.UUID) -> m.Request:
        with self.uow.read() as s:
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
        limit: int | None = 1000,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[m.Request]:
        """One page of the requests ``actor`` may see, filtered, ordered and cut in SQL
        (``limit`` None: all). Servability by tenants (their limitations, checked in Python)
        is applied to batches read in SQL until the page is full."""
        if status and RequestStatus.pending.value in status:
            self._expire_leases_throttled()
        dialect = self.uow.dialect
        q = select(m.Request).where(visibility_clause(actor, m.Request, dialect))
        if status:
            q = q.where(m.Request.status.in_(status))
        if quantity:
            q = q.where(m.Request.quantity == quantity)
        if method:
            q = q.where(_json_list_has(m.Request.methods, method, dialect))
        if tenant_id:
            q = q.where(m.Request.tenant_id == tenant_id)
        if campaign_id:
            q = q.where(m.Request.campaign_id == campaign_id)
        if parent_id:
            q = q.where(m.Request.parent_id == parent_id)
        order = m.Request.created_at.desc() if newest_first else m.Request.created_at
        q = q.order_by(order, m.Request.id)
        if servable_by is None:
            if limit is not None:
                q = q.offset(offset).limit(limit)
            with self.uow.read() as s:
                return [r for r in s.scalars(q) if can_see(actor, r)]
        provs = [p for p in self.catalogue.providers_index() if p.tenant_id in set(servable_by)]
        if not provs:
            return []
        q = q.where(m.Request.quantity.in_({p.quantity for p in provs}))
        matched: list[m.Request] = []
        read, batch = 0, 500
        with self.uow.read() as s:
            while limit is None or len(matched) < offset + limit:
                rows = list(s.scalars(q.offset(read).limit(batch)))
                read += len(rows)
                matched += [
                    r
                    for r in rows
                    if can_see(actor, r) and self.catalogue.serving_provider(provs, r)
                ]
                if len(rows) < batch:
                    break
        return matched[offset:] if limit is None else matched[offset : offset + limit]

    def request_row(self, s: Session, request_id: uuid.UUID, *, lock: bool) -> m.Request:
        """The request as a detached object, locked for update on PostgreSQL (SQLite: the
        write transaction already holds the database's write lock)."""
        q = select(REQ).where(REQ.c.id == request_id)
        if lock and not self.uow.sqlite:
            q = q.with_for_update()
        row = s.connection().execute(q).mappings().first()
        if row is None:
            raise NotFound(f"no request {request_id}")
        return m.Request(**row)

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
        A claim is always a tenant's (``policy.claim_request``)."""
        policy.require_writer(actor, "claim requests")
        now = utcnow()
        with self.uow.write() as s:
            # the write lock (SQLite) or the row lock (PostgreSQL) makes check-and-set atomic
            req = self.request_row(s, request_id, lock=True)
            if not can_see(actor, req):
                raise NotFound(f"no request {request_id}")
            tenant = None
            chosen = method
            if method is not None and method not in req.methods:
                raise Invalid(
                    f"{method!r} is not one of the request's methods {req.methods}", ["method"]
                )
            if tenant_id is not None:
                tenant = self.catalogue.tenant_info(s, actor, tenant_id)
            policy.claim_request(actor, req, tenant)
            provs = self.catalogue.providers_of(tenant.id)
            prov = self.catalogue.serving_provider(provs, req, method)
            if prov is None:
                reason = self.catalogue.why_not(provs, req)
                raise Conflict(f"tenant {tenant.id} cannot serve request {req.id}: {reason}")
            chosen = prov.method
            expired = (
                req.status == RequestStatus.claimed.value
                and req.lease_expires_at is not None
                and req.lease_expires_at < now
            )
            if req.status != RequestStatus.pending.value and not expired:
                raise Conflict(f"request {req.id} is {req.status}, not pending")
            tid = tenant.id
            if expired:
                log_core(
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
            log_core(
                s,
                "request",
                req.id,
                RequestStatus.pending.value,
                RequestStatus.claimed.value,
                message or f"claimed by tenant {tid}",
                actor,
                tid,
                now,
            )
            self.catalogue.touch_in(s, tenant, now)
            for k, v in values.items():
                setattr(req, k, v)
            return req

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
        with self.uow.read() as s:
            tenant = self.catalogue.owned_tenant(s, actor, tenant_id)
        provs = self.catalogue.providers_of(tenant.id)
        if capabilities is not None:
            wanted = {tuple(c) for c in capabilities}
            provs = [p for p in provs if (p.quantity, p.method) in wanted]
        self.catalogue.touch(actor, tenant)
        if not provs:
            return None
        quantities = sorted({p.quantity for p in provs})
        offset = 0
        while True:
            now = utcnow()
            with self.uow.read() as s:
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
                prov = self.catalogue.serving_provider(provs, req)
                if prov is None or not can_see(actor, req):
                    continue
                try:
                    return self.claim(
                        actor, req.id, tenant.id, method=prov.method, lease_seconds=lease_seconds
                    )
                except Conflict:
                    continue  # another tenant was faster
            offset += len(batch)

    def renew_lease(
        self,
        actor: Actor,
        request_id: uuid.UUID,
        tenant_id: uuid.UUID,
        lease_seconds: float | None = None,
        progress: dict[str, Any] | None = None,
    ) -> m.Request:
        now = utcnow()
        with self.uow.write() as s:
            tenant = self.catalogue.owned_tenant(s, actor, tenant_id)
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
        with self.uow.write() as s:
            req = self._locked_request(s, request_id)
            if not can_see(actor, req):
                raise NotFound(f"no request {request_id}")
            tenant = (
                self.catalogue.owned_tenant(s, actor, tenant_id) if tenant_id is not None else None
            )
            holder = s.get(m.Tenant, req.claimed_by) if req.claimed_by is not None else None
            holder_ok = policy.release_claim(
                actor, req, tenant, holder.owner_id if holder is not None else None
            )
            if req.status != RequestStatus.claimed.value or not holder_ok:
                raise Conflict(
                    f"request {request_id} is {req.status} and not claimed by the caller"
                )
            set_status(s, req, RequestStatus.pending, message, actor, tenant_id)
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
        with self.uow.write() as s:
            tenant = self.catalogue.owned_tenant(s, actor, tenant_id)
            req = self._locked_request(s, request_id)
            if not can_see(actor, req):
                raise NotFound(f"no request {request_id}")
            if req.status not in (RequestStatus.claimed.value, RequestStatus.pending.value):
                raise Conflict(
                    f"request {request_id} is {req.status}; only a pending or claimed request can fail"
                )
            policy.fail_request(actor, req, tenant)
            info = dict(req.status_info or {})
            info["last_error"] = {
                "kind": kind,
                "message": message,
                "tenant_id": str(tenant.id),
                "at": utcnow().isoformat(),
            }
            req.status_info = info
            new = RequestStatus.pending if retry else RequestStatus.failed
            set_status(s, req, new, f"{kind}: {message}", actor, tenant.id)
            if retry:
                req.claimed_by = req.claimed_by_user = req.claimed_method = None
                req.claimed_at = req.lease_expires_at = None
            return req

    def retract(self, actor: Actor, request_id: uuid.UUID, message: str = "") -> m.Request:
        with self.uow.write() as s:
            req = self._locked_request(s, request_id)
            if not can_see(actor, req):
                raise NotFound(f"no request {request_id}")
            policy.retract_request(actor, req)
            if req.status in TERMINAL_REQUEST_STATUSES:
                raise Conflict(f"request {request_id} is {req.status} and cannot be retracted")
            set_status(s, req, RequestStatus.retracted, message or "retracted", actor, None)
            return req

    def _locked_request(self, s: Session, request_id: uuid.UUID) -> m.Request:
        q = select(m.Request).where(m.Request.id == request_id)
        if not self.uow.sqlite:
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
        with self.uow.read() as s:
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
        with self.uow.write() as s:
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
            # a reservation is a claim by one of the caller's tenants that serves the
            # request, with the same lease (it returns to the queue when the lease expires)
            tenants = set(self.catalogue.user_tenant_ids(actor))
            provs = [p for p in self.catalogue.providers_index() if p.tenant_id in tenants]
            prov = self.catalogue.serving_provider(provs, req)
            if prov is None:
                if not any(p.quantity == req.quantity and p.method in req.methods for p in provs):
                    policy.claim_request(actor, req, None)
                raise Conflict(
                    f"none of your tenants can serve request {request_id}: {self.catalogue.why_not(provs, req)}"
                )
            self.claim(
                actor,
                req.id,
                prov.tenant_id,
                method=prov.method,
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
