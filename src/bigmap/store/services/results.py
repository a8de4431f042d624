"""Results: posting (validated, with provenance and files), amendments, status, and reads of
results and their files."""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bigmap.schemas.common import RequestStatus, ResultStatus, content_hash, utcnow
from bigmap.schemas.request import FileIn, ResultCreate
from bigmap.schemas.validation import ErrorDetail, error, validate
from bigmap.store import models as m
from bigmap.store import policy
from bigmap.store.access import Actor, can_see, visibility_clause
from bigmap.store.errors import Conflict, Invalid, NotFound
from bigmap.store.fair import RESULT_CHECKS
from bigmap.store.services.catalogue import Catalogue
from bigmap.store.services.log import log, log_core
from bigmap.store.services.queue import Queue
from bigmap.store.services.uow import UnitOfWork

MAX_FILE_BYTES = 200 * 1024 * 1024
REQ = m.Request.__table__
RES = m.Result.__table__
FILE = m.File.__table__
TEN = m.Tenant.__table__


class Results:
    """Results and their files."""

    def __init__(
        self, uow: UnitOfWork, catalogue: Catalogue, queue: Queue, *, checks_on: Any = None
    ) -> None:
        """``checks_on``: what each of ``fair.RESULT_CHECKS`` is called with (the broker)."""
        self.uow = uow
        self.catalogue = catalogue
        self.queue = queue
        self.checks_on = checks_on

    def post_result(self, actor: Actor, body: ResultCreate) -> tuple[m.Result, bool]:
        """Store a validated result and resolve its request. Returns (result, created):
        the same idempotency key, or the same data posted again by the same tenant,
        returns the first result."""
        policy.require_writer(actor, "post results")
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
            with self.uow.write() as s:
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
            tenant = self.catalogue.owned_tenant(s, actor, body.tenant_id)
            return s.scalar(
                select(m.Result).where(
                    m.Result.tenant_id == tenant.id,
                    m.Result.idempotency_key == body.idempotency_key,
                )
            )

        if s is not None:
            return find(s)
        with self.uow.read() as s2:
            return find(s2)

    def _post_unsolicited(
        self, actor: Actor, body: ResultCreate, files: list[tuple[FileIn, bytes]], sha: str
    ) -> tuple[m.Result, bool]:
        missing = [f for f in ("quantity", "method", "parameters") if getattr(body, f) is None]
        if missing:
            raise Invalid([error([f], "required for a result without a request") for f in missing])
        params = body.parameters or {}
        cap = self.catalogue.capability(body.quantity, body.method)
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
        with self.uow.write() as s:
            tenant = self.catalogue.owned_tenant(s, actor, body.tenant_id)
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
            log(
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
        tenant = self.catalogue.tenant_info(s, actor, body.tenant_id)
        req = self.queue.request_row(s, body.request_id, lock=True)
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
        cap = self.catalogue.capability(req.quantity, method)
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
                errs, report = check(self.checks_on, info)
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
            if previous is not None:
                poster = conn.execute(
                    select(TEN.c.owner_id).where(TEN.c.id == previous.tenant_id)
                ).scalar()
                policy.amend_result(actor, previous, poster)
            else:
                policy.amend_without_result(actor, req)
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
        else:
            policy.post_result_to(actor, req, tenant)
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
            log_core(
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
        log_core(
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
            log_core(
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
        self.catalogue.touch_in(s, tenant, now)
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
        with self.uow.read() as s:
            res = s.get(m.Result, result_id)
        if res is None or not can_see(actor, res):
            raise NotFound(f"no result {result_id}")
        return res

    def result_for_request(self, actor: Actor, request_id: uuid.UUID) -> m.Result | None:
        req = self.queue.get_request(actor, request_id)
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
        limit: int | None = 1000,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[m.Result]:
        """One page of the results ``actor`` may see, cut in SQL (``limit`` None: all)."""
        q = select(m.Result).where(visibility_clause(actor, m.Result, self.uow.dialect))
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
        if limit is not None:
            q = q.offset(offset).limit(limit)
        with self.uow.read() as s:
            return [r for r in s.scalars(q) if can_see(actor, r)]

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
        with self.uow.write() as s:
            res = s.get(m.Result, result_id)
            if res is None or not can_see(actor, res):
                raise NotFound(f"no result {result_id}")
            policy.change_result_status(actor, res)
            old = res.status
            res.status = target.value
            log(
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
        with self.uow.read() as s:
            return [
                f
                for f in s.scalars(
                    select(m.File).where(m.File.result_id == result_id).order_by(m.File.created_at)
                )
                if can_see(actor, f)
            ]

    def get_file(self, actor: Actor, file_id: uuid.UUID) -> m.File:
        with self.uow.read() as s:
            f = s.get(m.File, file_id)
        if f is None or not can_see(actor, f):
            raise NotFound(f"no file {file_id}")
        return f
