"""The status log: every change of a request's, result's or campaign's status, with who made
it and why, written in the transaction of the change (``set_status``, ``log``, ``log_core``)
and read back by ``History``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bigmap.schemas.common import RequestStatus, utcnow
from bigmap.store import models as m
from bigmap.store.access import Actor
from bigmap.store.services.uow import UnitOfWork

LOG = m.StatusLog.__table__


def set_status(
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
    log(s, "request", req.id, old, new.value, message, actor, tenant_id)


def log(
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


def log_core(
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


class History:
    """Reads of the status log."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow

    def status_log(self, actor: Actor, object_id: uuid.UUID) -> list[dict[str, Any]]:
        with self.uow.read() as s:
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
