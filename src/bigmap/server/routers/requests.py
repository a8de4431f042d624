"""Requests: ask, claim, renew, release, fail, retract, wait for the result."""

from __future__ import annotations

import time

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool

from bigmap.schemas.common import RequestStatus
from bigmap.schemas.request import (
    ClaimIn,
    FailIn,
    LeaseIn,
    ReleaseIn,
    RequestCreate,
    RequestOut,
    ResultOut,
    StatusChange,
    StatusIn,
)
from bigmap.server.convert import request_out, result_out
from bigmap.server.deps import ActorDep, BrokerDep, NotifierDep, parse_id
from bigmap.server.paging import PageDep
from bigmap.store.errors import Conflict

router = APIRouter(prefix="/requests", tags=["requests"])


@router.post("", response_model=RequestOut, status_code=201)
def create(
    broker: BrokerDep,
    actor: ActorDep,
    notifier: NotifierDep,
    body: RequestCreate,
    response: Response,
    queue: bool = Query(
        default=False,
        description="keep a request that no active tenant can serve now pending, for a "
        "tenant yet to come (marked status_info.servable = false, with the reason); without "
        "it such a request is refused (422) with the reason per tenant",
    ),
) -> RequestOut:
    """Ask for a quantity. Parameters are validated against each method's schema (422 with
    the JSON path of each offending field). A request that no active tenant can serve now is
    refused (422, the reason per tenant), or with ``queue=true`` kept pending with
    ``status_info.servable = false`` and ``status_info.unservable_reason``."""
    req, created = broker.create_request(actor, body, queue=queue)
    if created:
        notifier.notify()
    else:
        response.status_code = 200
    return request_out(req)


@router.get("", response_model=list[RequestOut])
def list_requests(
    broker: BrokerDep,
    actor: ActorDep,
    page: PageDep,
    status: list[RequestStatus] | None = Query(default=None),
    quantity: str | None = None,
    method: str | None = None,
    tenant_id: str | None = None,
    campaign_id: str | None = None,
    parent_id: str | None = None,
    servable_by: str | None = None,
    newest_first: bool = False,
) -> list[RequestOut]:
    """Requests the caller may see, oldest first (or newest), one page at a time."""
    rows = broker.list_requests(
        actor,
        status=[s.value for s in status] if status else None,
        quantity=quantity,
        method=method,
        tenant_id=parse_id(tenant_id, "tenant") if tenant_id else None,
        campaign_id=parse_id(campaign_id, "campaign") if campaign_id else None,
        parent_id=parse_id(parent_id, "request") if parent_id else None,
        servable_by=[parse_id(servable_by, "tenant")] if servable_by else None,
        limit=page.fetch,
        offset=page.offset,
        newest_first=newest_first,
    )
    return [request_out(r) for r in page.cut(rows)]


@router.get("/{request_id}", response_model=RequestOut)
def get(broker: BrokerDep, actor: ActorDep, request_id: str) -> RequestOut:
    return request_out(broker.get_request(actor, parse_id(request_id, "request")))


@router.get("/{request_id}/children", response_model=list[RequestOut])
def children(
    broker: BrokerDep, actor: ActorDep, page: PageDep, request_id: str
) -> list[RequestOut]:
    rid = parse_id(request_id, "request")
    broker.get_request(actor, rid)
    rows = broker.list_requests(actor, parent_id=rid, limit=page.fetch, offset=page.offset)
    return [request_out(r) for r in page.cut(rows)]


@router.get("/{request_id}/log", response_model=list[StatusChange])
def log(broker: BrokerDep, actor: ActorDep, request_id: str) -> list[StatusChange]:
    rid = parse_id(request_id, "request")
    broker.get_request(actor, rid)
    return [StatusChange(**row) for row in broker.status_log(actor, rid)]


@router.post("/{request_id}/claim", response_model=RequestOut)
def claim(broker: BrokerDep, actor: ActorDep, request_id: str, body: ClaimIn) -> RequestOut:
    """Claim exclusively, with a lease: of concurrent claimers one wins, the others get 409."""
    return request_out(
        broker.claim(
            actor,
            parse_id(request_id, "request"),
            body.tenant_id,
            method=body.method,
            lease_seconds=body.lease_seconds,
        )
    )


@router.post("/{request_id}/lease", response_model=RequestOut)
def renew(broker: BrokerDep, actor: ActorDep, request_id: str, body: LeaseIn) -> RequestOut:
    progress = body.progress.model_dump() if body.progress else None
    return request_out(
        broker.renew_lease(
            actor, parse_id(request_id, "request"), body.tenant_id, body.lease_seconds, progress
        )
    )


@router.post("/{request_id}/release", response_model=RequestOut)
def release(
    broker: BrokerDep, actor: ActorDep, notifier: NotifierDep, request_id: str, body: ReleaseIn
) -> RequestOut:
    req = broker.release(actor, parse_id(request_id, "request"), body.tenant_id, body.message)
    notifier.notify()
    return request_out(req)


@router.post("/{request_id}/fail", response_model=RequestOut)
def fail(
    broker: BrokerDep, actor: ActorDep, notifier: NotifierDep, request_id: str, body: FailIn
) -> RequestOut:
    req = broker.fail(
        actor,
        parse_id(request_id, "request"),
        body.tenant_id,
        body.message,
        kind=body.kind,
        retry=body.retry,
    )
    notifier.notify()
    return request_out(req)


@router.post("/{request_id}/retract", response_model=RequestOut)
def retract(
    broker: BrokerDep,
    actor: ActorDep,
    notifier: NotifierDep,
    request_id: str,
    body: StatusIn | None = None,
) -> RequestOut:
    req = broker.retract(actor, parse_id(request_id, "request"), body.message if body else "")
    notifier.notify()
    return request_out(req)


@router.get(
    "/{request_id}/result",
    response_model=ResultOut,
    responses={204: {"description": "no result yet"}},
)
async def wait_result(
    broker: BrokerDep,
    actor: ActorDep,
    notifier: NotifierDep,
    request_id: str,
    wait: float = Query(default=0, ge=0, le=60),
):
    """The result that answers a request, waiting up to ``wait`` seconds for it. 204 while
    there is none; 409 when the request failed or was retracted (the reason in ``detail``)."""
    rid = parse_id(request_id, "request")
    deadline = time.monotonic() + wait
    while True:
        req = await run_in_threadpool(broker.get_request, actor, rid)
        if req.result_id is not None:
            res = await run_in_threadpool(broker.get_result, actor, req.result_id)
            files = await run_in_threadpool(broker.result_files, actor, res.id)
            return result_out(res, files)
        if req.status in (RequestStatus.failed.value, RequestStatus.retracted.value):
            err = (req.status_info or {}).get("last_error", {})
            raise Conflict(
                f"request {rid} is {req.status}" + (f": {err.get('message')}" if err else "")
            )
        left = deadline - time.monotonic()
        if left <= 0:
            return Response(status_code=204)
        await notifier.wait(min(left, 0.5))
