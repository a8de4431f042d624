"""The API reference, offline: Swagger UI at ``/docs`` and ReDoc at ``/redoc`` with their
JavaScript and CSS served by the broker itself (a lab network often has no internet, and
FastAPI's default pages load them from a CDN).

The assets are those of the PyPI package ``fastapi-offline`` (MIT), a dependency of the
``server`` extra: Swagger UI (SmartBear, Apache-2.0) and ReDoc (Redocly, MIT); their licences
are named in ``NOTICE`` beside this module.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/api-docs-assets"


def assets_dir() -> Path:
    import fastapi_offline

    return Path(fastapi_offline.__file__).resolve().parent / "static"


def install(app: FastAPI, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Serve the API reference pages of ``app`` (built with ``docs_url=None,
    redoc_url=None``) and their assets."""
    app.mount(ASSETS_URL, StaticFiles(directory=assets_dir()), name="api-docs-assets")
    oauth2 = f"{docs_url}/oauth2-redirect"

    @app.get(docs_url, include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - API reference",
            oauth2_redirect_url=f"{root}{oauth2}",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}/ui/static/icon.svg",
            swagger_ui_parameters={"persistAuthorization": True},
        )

    @app.get(oauth2, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(redoc_url, include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - API reference",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}/ui/static/icon.svg",
            with_google_fonts=False,
        )
