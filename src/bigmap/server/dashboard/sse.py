"""``GET /api/v1/events/stream``: server-sent events that tell a page what changed.

Driven by the app's :class:`~bigmap.server.notify.Notifier` (woken by every write of this
process) and a re-check at least every ``poll`` seconds (other server processes, heartbeats
and the expiry of leases do not wake it). After each wake-up the stream compares cheap
fingerprints of what the caller may see and sends one ``change`` event naming the topics that
changed, e.g. ``{"topics": ["campaigns", "requests"], "campaigns": ["<id>"]}``; the page then
re-fetches through the API, where every access rule applies. Ids are only ever those of
campaigns the caller may see; for requests and results only the fact of a change is sent.

A stream ends after ``max_seconds`` (the browser reconnects, as ``retry`` tells it), so that
a server shutting down never waits for a page left open.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from sqlalchemy import func, select

from bigmap.server.deps import ActorDep, BrokerDep, NotifierDep
from bigmap.store import models as m
from bigmap.store.access import Actor, visibility_clause
from bigmap.store.broker import Broker

router = APIRouter(tags=["dashboard"])

TOPICS = ("campaigns", "requests", "results", "tenants")


def fingerprint(broker: Broker, actor: Actor) -> dict[str, Any]:
    """A value per topic that changes when something the caller may see changes."""
    camps = {
        str(c.id): [c.status, c.control, c.updated_at.isoformat()]
        for c in broker.list_campaigns(actor)
    }
    with broker.db.read() as s:
        req = s.execute(
            select(func.count(), func.max(m.Request.updated_at)).where(
                visibility_clause(actor, m.Request, broker.db.engine.dialect.name)
            )
        ).one()
        res = s.execute(
            select(func.count(), func.max(m.Result.created_at)).where(
                visibility_clause(actor, m.Result, broker.db.engine.dialect.name)
            )
        ).one()
    tenants = [
        [str(t.id), t.is_active, broker.is_alive(t), t.software] for t in broker.list_tenants()
    ]
    return {
        "campaigns": camps,
        "requests": [req[0], str(req[1])],
        "results": [res[0], str(res[1])],
        "tenants": tenants,
    }


def changes(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any] | None:
    """The ``change`` message between two fingerprints (None: nothing changed)."""
    if old is None:
        return {"topics": list(TOPICS), "campaigns": sorted(new["campaigns"])}
    topics = [t for t in TOPICS if old[t] != new[t]]
    if not topics:
        return None
    ids = sorted(
        cid
        for cid in set(old["campaigns"]) | set(new["campaigns"])
        if old["campaigns"].get(cid) != new["campaigns"].get(cid)
    )
    return {"topics": topics, "campaigns": ids}


@router.get(
    "/events/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(
    request: Request,
    broker: BrokerDep,
    actor: ActorDep,
    notifier: NotifierDep,
    poll: float = Query(default=2.0, ge=0.2, le=30, description="re-check at least this often [s]"),
    max_seconds: float = Query(default=55.0, ge=1, le=600, description="end the stream after"),
) -> StreamingResponse:
    """Server-sent events: ``change`` with the topics (campaigns, requests, results, tenants)
    that changed, the first one at once; a comment line keeps an idle stream open."""

    async def events() -> AsyncIterator[str]:
        yield "retry: 1000\n\n"
        last: dict[str, Any] | None = None
        seq = 0
        start = sent = time.monotonic()
        while time.monotonic() - start < max_seconds:
            if await request.is_disconnected():
                return
            now_fp = await run_in_threadpool(fingerprint, broker, actor)
            msg = changes(last, now_fp)
            last = now_fp
            if msg is not None:
                seq += 1
                sent = time.monotonic()
                yield f"id: {seq}\nevent: change\ndata: {json.dumps(msg)}\n\n"
            elif time.monotonic() - sent > 15:
                sent = time.monotonic()
                yield ": keep-alive\n\n"
            left = max_seconds - (time.monotonic() - start)
            try:
                await notifier.wait(min(poll, max(left, 0.0)))
            except asyncio.CancelledError:
                return
            # a burst of writes (a planner's step) is one change, not many
            await asyncio.sleep(0.05)
        yield "event: bye\ndata: {}\n\n"

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
