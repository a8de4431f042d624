"""The FastAPI application of the broker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.concurrency import run_in_threadpool

import bigmap
from bigmap.config import Settings, get_settings
from bigmap.schemas import validation
from bigmap.server import apidocs, dashboard, errors
from bigmap.server.limits import BoundsMiddleware, StreamSlots
from bigmap.server.notify import Notifier
from bigmap.server.routers import (
    auth,
    campaigns,
    capabilities,
    fair,
    finales,
    requests,
    results,
    tenants,
)
from bigmap.store.broker import Broker
from bigmap.store.db import Database, current_revision, ensure_current
from bigmap.store.security import set_hash_concurrency
from bigmap.store.services.identity import IdentityConfig

log = logging.getLogger("bigmap.server")


async def _sweep(app: FastAPI, every: float) -> None:
    """Return expired leases to the queue, and wake waiting workers."""
    broker: Broker = app.state.broker
    while True:
        await asyncio.sleep(every)
        try:
            if await run_in_threadpool(broker.expire_leases):
                app.state.notifier.notify()
        except Exception:  # keep sweeping through a passing database error
            log.exception("lease sweep failed")


def create_app(settings: Settings | None = None, *, database_url: str | None = None) -> FastAPI:
    """The broker on the database of ``settings`` (which must be migrated to head)."""
    settings = settings or get_settings()
    db = Database(
        database_url or settings.database_url, sqlite_synchronous=settings.sqlite_synchronous
    )
    ensure_current(db)
    broker = Broker(
        db,
        secret=settings.secret,
        lease_seconds=settings.lease_seconds,
        heartbeat_seconds=settings.heartbeat_seconds,
        identity=IdentityConfig.from_settings(settings),
    )
    broker.secret  # noqa: B018 - generate and store the signing secret before serving
    validation.LIMITS.max_bytes = settings.schema_max_bytes
    validation.LIMITS.max_depth = settings.schema_max_depth
    set_hash_concurrency(settings.hash_concurrency)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.notifier.bind(asyncio.get_running_loop())
        task = asyncio.create_task(_sweep(app, settings.sweep_seconds))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            db.dispose()

    app = FastAPI(
        title="bigmap broker",
        version=bigmap.__version__,
        description=(
            "The broker of bigmap, an open Materials Acceleration Platform for battery research. "
            "Native API under /api/v1; the paths of FINALES 1.1.0 at the root."
        ),
        lifespan=lifespan,
        docs_url=None,  # served offline by apidocs
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.broker = broker
    app.state.notifier = Notifier()
    app.state.streams = StreamSlots(settings.sse_per_user, settings.sse_total)
    errors.install(app)
    app.add_middleware(
        BoundsMiddleware,
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_bytes,
        max_json_depth=settings.max_json_depth,
    )

    api = APIRouter(prefix="/api/v1")

    revision = current_revision(db.engine)

    @api.get("/health", tags=["health"])
    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "version": bigmap.__version__,
            "database": db.engine.dialect.name,
            "revision": revision,
        }

    # fair first: its /{kind}/{id}.jsonld paths would otherwise be taken by /{kind}/{id}
    for module in (fair, auth, capabilities, tenants, requests, results, campaigns):
        api.include_router(module.router)
    app.include_router(api, responses=errors.RESPONSES)
    app.include_router(finales.router, responses=errors.RESPONSES)
    dashboard.install(app)  # pages at / and /ui/..., SSE and depictions under /api/v1
    apidocs.install(app)  # /docs and /redoc without a CDN
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (one per server process): settings from the
    environment."""
    logging.getLogger("bigmap").setLevel(logging.INFO)
    return create_app(Settings())
