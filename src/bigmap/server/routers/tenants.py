"""Tenants: registration, heartbeat, and the worker's claim of its next request."""

from __future__ import annotations

import time
import uuid

from fastapi import APIRouter, Body, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from bigmap.schemas.common import Software
from bigmap.schemas.identity import TenantOut
from bigmap.schemas.request import ClaimNextIn, RequestOut
from bigmap.schemas.tenant import TenantSpec
from bigmap.server.convert import request_out, tenant_outs
from bigmap.server.deps import ActorDep, BrokerDep, NotifierDep, parse_id
from bigmap.server.paging import PageDep

router = APIRouter(prefix="/tenants", tags=["tenants"])


@router.get("", response_model=list[TenantOut])
def list_tenants(broker: BrokerDep, actor: ActorDep, page: PageDep) -> list[TenantOut]:
    """Tenants, oldest first, one page at a time."""
    rows = broker.list_tenants(limit=page.fetch, offset=page.offset)
    return tenant_outs(broker, actor, page.cut(rows))


@router.post("", response_model=TenantOut, status_code=201)
def register(
    broker: BrokerDep,
    actor: ActorDep,
    notifier: NotifierDep,
    response: Response,
    spec: TenantSpec,
    owner: str | None = None,
) -> TenantOut:
    """Register a tenant with what it provides (or update the one of this owner and name)."""
    tenant, warnings, created = broker.register_tenant(actor, spec, owner=owner)
    if not created:
        response.status_code = 200
    notifier.notify()
    return tenant_outs(broker, actor, [tenant], warnings)[0]


@router.get("/{tenant_id}", response_model=TenantOut)
def get_tenant(broker: BrokerDep, actor: ActorDep, tenant_id: str) -> TenantOut:
    return tenant_outs(broker, actor, [broker.get_tenant(parse_id(tenant_id, "tenant"))])[0]


class ActiveIn(BaseModel):
    is_active: bool


@router.patch("/{tenant_id}", response_model=TenantOut)
def set_active(broker: BrokerDep, actor: ActorDep, tenant_id: str, body: ActiveIn) -> TenantOut:
    return tenant_outs(
        broker,
        actor,
        [broker.set_tenant_active(actor, parse_id(tenant_id, "tenant"), body.is_active)],
    )[0]


@router.post("/{tenant_id}/heartbeat", response_model=TenantOut)
def heartbeat(
    broker: BrokerDep,
    actor: ActorDep,
    tenant_id: str,
    software: Software | None = Body(default=None),
) -> TenantOut:
    tenant = broker.heartbeat(
        actor, parse_id(tenant_id, "tenant"), software.model_dump() if software else None
    )
    return tenant_outs(broker, actor, [tenant])[0]


@router.post(
    "/{tenant_id}/claim",
    response_model=RequestOut,
    responses={204: {"description": "nothing to do"}},
)
async def claim_next(
    broker: BrokerDep,
    actor: ActorDep,
    notifier: NotifierDep,
    tenant_id: str,
    body: ClaimNextIn | None = None,
):
    """Claim the most urgent pending request this tenant can serve (priority, then age),
    waiting up to ``wait`` seconds for one. 204 when there is none."""
    body = body or ClaimNextIn()
    tid: uuid.UUID = parse_id(tenant_id, "tenant")
    deadline = time.monotonic() + body.wait
    while True:
        req = await run_in_threadpool(
            broker.claim_next,
            actor,
            tid,
            capabilities=body.capabilities,
            lease_seconds=body.lease_seconds,
        )
        if req is not None:
            return request_out(req)
        left = deadline - time.monotonic()
        if left <= 0:
            return Response(status_code=204)
        await notifier.wait(min(left, 0.5))
