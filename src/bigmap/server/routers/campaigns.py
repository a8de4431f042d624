"""Campaigns: a planner's loop, its steps, and a user's controls (pause, resume, stop)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool

from bigmap.schemas.campaign import (
    CampaignCreate,
    CampaignEventCreate,
    CampaignEventOut,
    CampaignOut,
    CampaignUpdate,
)
from bigmap.schemas.common import RequestStatus
from bigmap.schemas.request import RequestOut
from bigmap.server.convert import campaign_out, event_out, request_out
from bigmap.server.deps import ActorDep, BrokerDep, NotifierDep, parse_id
from bigmap.server.paging import PageDep
from bigmap.store.fair import Fair

router = APIRouter(prefix="/campaigns", tags=["campaigns"])


def _out(broker, actor, rows):
    names = broker.user_names()
    counts = broker.count_campaign_events([c.id for c in rows])
    # a summary made of results the reader may not see comes without their values and ids
    summaries = Fair(broker).visible_summaries(actor, rows)
    return [
        campaign_out(c, names.get(c.owner_id, ""), counts.get(c.id, 0), summaries[c.id])
        for c in rows
    ]


@router.post("", response_model=CampaignOut, status_code=201)
def create(
    broker: BrokerDep,
    actor: ActorDep,
    notifier: NotifierDep,
    body: CampaignCreate,
    response: Response,
) -> CampaignOut:
    camp, created = broker.create_campaign(actor, body)
    if not created:
        response.status_code = 200
    notifier.notify()
    return _out(broker, actor, [camp])[0]


@router.get("", response_model=list[CampaignOut])
def list_campaigns(broker: BrokerDep, actor: ActorDep, page: PageDep) -> list[CampaignOut]:
    """Campaigns the caller may see, newest first, one page at a time."""
    rows = broker.list_campaigns(actor, limit=page.fetch, offset=page.offset)
    return _out(broker, actor, page.cut(rows))


@router.get("/{campaign_id}", response_model=CampaignOut)
def get(broker: BrokerDep, actor: ActorDep, campaign_id: str) -> CampaignOut:
    return _out(broker, actor, [broker.get_campaign(actor, parse_id(campaign_id, "campaign"))])[0]


@router.patch("/{campaign_id}", response_model=CampaignOut)
def update(
    broker: BrokerDep,
    actor: ActorDep,
    notifier: NotifierDep,
    campaign_id: str,
    body: CampaignUpdate,
) -> CampaignOut:
    camp = broker.update_campaign(actor, parse_id(campaign_id, "campaign"), body)
    notifier.notify()
    return _out(broker, actor, [camp])[0]


@router.post("/{campaign_id}/events", response_model=CampaignEventOut, status_code=201)
def add_event(
    broker: BrokerDep,
    actor: ActorDep,
    notifier: NotifierDep,
    campaign_id: str,
    body: CampaignEventCreate,
    response: Response,
) -> CampaignEventOut:
    ev, created = broker.add_campaign_event(actor, parse_id(campaign_id, "campaign"), body)
    if created:
        notifier.notify()
    else:
        response.status_code = 200
    return event_out(ev)


@router.get("/{campaign_id}/events", response_model=list[CampaignEventOut])
async def events(
    broker: BrokerDep,
    actor: ActorDep,
    notifier: NotifierDep,
    campaign_id: str,
    after: int = 0,
    kind: str | None = None,
    limit: int = Query(default=10000, ge=1, le=100000),
    wait: float = Query(default=0, ge=0, le=60),
) -> list[CampaignEventOut]:
    """Steps after ``after`` (a sequence number), waiting up to ``wait`` seconds for one."""
    cid = parse_id(campaign_id, "campaign")
    deadline = time.monotonic() + wait
    while True:
        rows = await run_in_threadpool(
            broker.list_campaign_events, actor, cid, after=after, kind=kind, limit=limit
        )
        left = deadline - time.monotonic()
        if rows or left <= 0:
            return [event_out(e) for e in rows]
        await notifier.wait(min(left, 0.5))


@router.get("/{campaign_id}/requests", response_model=list[RequestOut])
def requests(
    broker: BrokerDep,
    actor: ActorDep,
    campaign_id: str,
    page: PageDep,
    status: list[RequestStatus] | None = Query(default=None),
) -> list[RequestOut]:
    """The campaign's requests, oldest first, optionally only those in some statuses."""
    cid = parse_id(campaign_id, "campaign")
    broker.get_campaign(actor, cid)
    rows = broker.list_requests(
        actor,
        campaign_id=cid,
        status=[s.value for s in status] if status else None,
        limit=page.fetch,
        offset=page.offset,
    )
    return [request_out(r) for r in page.cut(rows)]
