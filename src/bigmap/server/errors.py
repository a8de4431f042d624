"""Bad input never gives a 500: every error becomes a 4xx with a clear message."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from bigmap.schemas.validation import json_path
from bigmap.store.errors import BrokerError, Invalid, TooManyRequests, Unauthorized

log = logging.getLogger("bigmap.server")


class ErrorOut(BaseModel):
    """An error: ``detail`` is a message, or for 422 a list of {loc, path, msg, type}."""

    detail: str | list[dict[str, Any]]


# Declared on every operation of the API, so that clients and fuzzers can check them.
RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "a body that cannot be parsed"},
    401: {"model": ErrorOut, "description": "not authenticated (no, bad or expired token)"},
    403: {"model": ErrorOut, "description": "authenticated, but not allowed"},
    404: {"model": ErrorOut, "description": "no such object (or not visible to the caller)"},
    409: {"model": ErrorOut, "description": "conflicts with the state of a stored object"},
    413: {"model": ErrorOut, "description": "request body or query larger than its limit"},
    422: {"model": ErrorOut, "description": "invalid input, each problem with its JSON path"},
    429: {"model": ErrorOut, "description": "too many requests or streams; see Retry-After"},
}


def _validation_detail(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        loc = list(err.get("loc", ()))
        where = loc[0] if loc else "body"
        rel = loc[1:] if where in ("body", "query", "path", "header") else loc
        path = json_path(rel) if where == "body" else f"{where}:{'.'.join(map(str, rel))}"
        out.append(
            {
                "loc": loc,
                "path": path,
                "msg": err.get("msg", ""),
                "type": err.get("type", "value_error"),
            }
        )
    return out


def install(app: FastAPI) -> None:
    @app.exception_handler(Invalid)
    async def _invalid(_: Request, exc: Invalid) -> JSONResponse:
        return JSONResponse(
            status_code=422, content={"detail": [d.model_dump() for d in exc.details]}
        )

    @app.exception_handler(BrokerError)
    async def _broker(_: Request, exc: BrokerError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
        headers = {**(headers or {}), **getattr(exc, "headers", {})} or None
        if isinstance(exc, TooManyRequests):
            headers = {"Retry-After": str(exc.retry_after)}
        return JSONResponse(
            status_code=exc.status_code, content={"detail": exc.message}, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _request_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": _validation_detail(exc)})

    @app.exception_handler(ValidationError)
    async def _model_validation(_: Request, exc: ValidationError) -> JSONResponse:
        # a model built inside a route (FINALES payloads mapped onto native ones)
        detail = [
            {
                "loc": ["body", *err["loc"]],
                "path": json_path(list(err["loc"])),
                "msg": err["msg"],
                "type": err["type"],
            }
            for err in exc.errors(include_url=False, include_input=False)
        ]
        return JSONResponse(status_code=422, content={"detail": detail})

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        log.warning("integrity error: %s", exc.orig)
        return JSONResponse(status_code=409, content={"detail": "conflicts with a stored record"})

    @app.exception_handler(DataError)
    async def _data(_: Request, exc: DataError) -> JSONResponse:
        # a value the database refuses (out of range, bad encoding) that no check caught
        log.warning("data error: %s", exc.orig)
        return JSONResponse(
            status_code=422,
            content={
                "detail": "a value in the request cannot be stored (out of range or encoding)"
            },
        )

    @app.exception_handler(OperationalError)
    async def _operational(_: Request, exc: OperationalError) -> JSONResponse:
        log.error("database unavailable: %s", exc.orig)
        return JSONResponse(
            status_code=503,
            content={"detail": "database unavailable, try again"},
            headers={"Retry-After": "1"},
        )
