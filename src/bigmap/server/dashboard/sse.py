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

All streams are fed by one shared change poll (:class:`ChangeFeed`): one task per server
process looks at a few aggregates of the whole store after each notification and at least
every ``POLL`` seconds, and only when they changed (or every ``QUIET`` seconds, for tenants
that stop being alive) does each stream compute its caller's fingerprint. 500 idle streams
thus cost one query per poll, not 500. At most ``sse_per_user`` streams per user and
``sse_total`` in all are open at once (429 beyond, with ``Retry-After``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from sqlalchemy import func, select
from starlette.background import BackgroundTask

from bigmap.server.deps import ActorDep, BrokerDep, NotifierDep
from bigmap.server.notify import Notifier
from bigmap.store import models as m
from bigmap.store.access import Actor, visibility_clause
from bigmap.store.broker import Broker
from bigmap.store.errors import BrokerError

router = APIRouter(tags=["dashboard"])

TOPICS = ("campaigns", "requests", "results", "tenants")
POLL = 1.0  # s, the shared poll
QUIET = 10.0  # s, streams re-check at least this often (a tenant's heartbeat may lapse)


class TooManyStreams(BrokerError):
    status_code = 429
    headers = {"Retry-After": "5"}  # noqa: RUF012 - read only


def global_fingerprint(broker: Broker) -> tuple:
    """A few aggregates of the whole store that change whenever anything in it changes."""
    with broker.db.read() as s:
        return tuple(
            s.execute(select(func.count(), func.max(col))).one()
            for col in (
                m.Request.updated_at,
                m.Result.created_at,
                m.Campaign.updated_at,
                m.Tenant.last_seen_at,
            )
        ) + (s.scalar(select(func.count()).where(m.Tenant.is_active.is_(True))),)


class ChangeFeed:
    """One poll of the store shared by every stream of a server process: ``generation``
    grows when the store changed, and waiters are woken."""

    def __init__(self, broker: Broker, notifier: Notifier) -> None:
        self.broker = broker
        self.notifier = notifier
        self.generation = 0
        self._changed = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        last, quiet_since = None, time.monotonic()
        while True:
            try:
                now_fp = await run_in_threadpool(global_fingerprint, self.broker)
            except Exception:  # a passing database error: try again at the next poll
                now_fp = last
            if now_fp != last or time.monotonic() - quiet_since > QUIET:
                last, quiet_since = now_fp, time.monotonic()
                self.generation += 1
                self._changed.set()
                self._changed = asyncio.Event()
            await self.notifier.wait(POLL)
            await asyncio.sleep(0.05)  # a burst of writes (a planner's step) is one change

    async def wait(self, generation: int, timeout: float) -> int:
        """The generation once it is past ``generation``, or after ``timeout`` seconds."""
        if self.generation == generation and timeout > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)
        return self.generation


def _feed(request: Request, broker: Broker, notifier: Notifier) -> ChangeFeed:
    feed = getattr(request.app.state, "change_feed", None)
    if feed is None:
        feed = request.app.state.change_feed = ChangeFeed(broker, notifier)
    feed.start()
    return feed


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
    poll: float = Query(
        default=2.0,
        ge=0.2,
        le=30,
        description="re-check at least this often [s] (the "
        "server's shared poll may be slower; every write of this server wakes it at once)",
    ),
    max_seconds: float = Query(default=55.0, ge=1, le=600, description="end the stream after"),
) -> StreamingResponse:
    """Server-sent events: ``change`` with the topics (campaigns, requests, results, tenants)
    that changed, the first one at once; a comment line keeps an idle stream open. 429 when
    the caller, or the server, has as many streams open as allowed."""
    slots = request.app.state.streams
    user = str(actor.user_id)
    refused = slots.take(user)
    if refused:
        raise TooManyStreams(refused)
    given_back = False

    def give_back() -> None:
        nonlocal given_back
        if not given_back:
            given_back = True
            slots.give(user)

    feed = _feed(request, broker, notifier)

    async def events() -> AsyncIterator[str]:
        try:
            yield "retry: 1000\n\n"
            last: dict[str, Any] | None = None
            seq = generation = 0
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
                left = max_seconds - (time.monotonic() - start)
                try:  # until the shared poll saw a change, with a keep-alive every 15 s
                    while (new := await feed.wait(generation, min(15.0, max(left, 0.0)))) == (
                        generation
                    ):
                        left = max_seconds - (time.monotonic() - start)
                        if left <= 0 or await request.is_disconnected():
                            break
                        if time.monotonic() - sent > 15:
                            sent = time.monotonic()
                            yield ": keep-alive\n\n"
                    generation = new
                except asyncio.CancelledError:
                    return
            yield "event: bye\ndata: {}\n\n"
        finally:
            give_back()

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        background=BackgroundTask(give_back),
    )
