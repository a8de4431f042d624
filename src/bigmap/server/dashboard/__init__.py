"""The dashboard: watch and steer campaigns in a browser.

Pages are one HTML shell (``/`` and ``/ui/...``) and plain ES modules under ``/ui/static/``
(no build step). The pages hold no data: every figure is drawn in the browser from the
native API (``/api/v1/...``) with the user's bearer token (kept in ``sessionStorage``), so
every access rule of the API applies. Live updates come from the server-sent events of
:mod:`bigmap.server.dashboard.sse`; a molecule's picture from :mod:`.depict` (RDKit).

The paths chosen here never shadow the FINALES paths at the root (``/requests/``,
``/results/``, ``/capabilities/``, ``/tenants/``, ``/limitations/``, ...).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from bigmap.server.dashboard import depict, sse

STATIC = Path(__file__).resolve().parent / "static"

pages = APIRouter(include_in_schema=False)


def _shell() -> HTMLResponse:
    return HTMLResponse(
        (STATIC / "index.html").read_text(encoding="utf-8"),
        headers={
            "Cache-Control": "no-cache",
            # the pages only talk to this origin; no inline scripts, no third-party content
            "Content-Security-Policy": (
                "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
                "script-src 'self'; connect-src 'self'; frame-ancestors 'none'"
            ),
            "X-Content-Type-Options": "nosniff",
        },
    )


@pages.get("/")
def index() -> Response:
    return RedirectResponse("/ui/campaigns", status_code=307)


@pages.get("/ui")
def ui_root() -> Response:
    return RedirectResponse("/ui/campaigns", status_code=307)


@pages.get("/ui/{page:path}")
def ui(page: str) -> HTMLResponse:
    """Every page of the dashboard is the same shell; the browser draws the page of the path."""
    return _shell()


def install(app: FastAPI) -> None:
    """Mount the dashboard on ``app``: assets, pages, and its two API endpoints."""
    # the static mount first: the catch-all page route must not answer for assets
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="dashboard-static")
    app.include_router(sse.router, prefix="/api/v1")
    app.include_router(depict.router, prefix="/api/v1")
    app.include_router(pages)
