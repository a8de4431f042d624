"""Bounded resources at the HTTP boundary (issue 12): request bodies, JSON that the
database cannot hold, server-sent-event streams, and connections that never finish a header.

- :class:`BoundsMiddleware` (pure ASGI): a body larger than its limit is a 413 naming the
  limit (by ``Content-Length`` at once, else while it streams in); the streamed file upload
  (``PUT .../files``) has a limit of its own. A JSON body is checked before any route sees it:
  ``NaN``/``Infinity``, NUL characters and lone surrogates (which PostgreSQL cannot store) and
  nesting deeper than ``max_json_depth`` are a 422 naming the JSON path of each offending
  value. NUL in the path or the query is a 422 too.
- :class:`StreamSlots`: at most so many event streams per user and in total (429 beyond).
- :class:`HeaderTimeoutProtocol`: uvicorn's HTTP protocol with a header read timeout: a connection
  that has not sent a complete request head within ``header_timeout`` seconds is closed
  (uvicorn's own ``timeout_keep_alive`` bounds idle connections between requests).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from bigmap.schemas.validation import json_path

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")
_UPLOAD = re.compile(r"^/api/v1/results/[^/]+/files$")
_MAX_PROBLEMS = 20


class _NonFinite:
    def __init__(self, token: str) -> None:
        self.token = token


class _TooLarge(Exception):
    pass


def json_problems(doc: Any, max_depth: int) -> list[dict[str, Any]]:
    """What in a parsed JSON body no route may be handed: non-finite numbers, NUL and lone
    surrogates in strings (keys included), nesting deeper than ``max_depth``; each with its
    path."""
    out: list[dict[str, Any]] = []
    stack: list[tuple[Any, list[str | int]]] = [(doc, [])]
    while stack and len(out) < _MAX_PROBLEMS:
        item, loc = stack.pop()
        msg = None
        if isinstance(item, _NonFinite):
            msg = f"{item.token} is not a number JSON allows (finite numbers only)"
        elif isinstance(item, str):
            bad = _BAD_CHARS.search(item)
            if bad:
                what = "a NUL character" if bad.group() == "\x00" else "a lone surrogate"
                msg = f"string contains {what} (U+{ord(bad.group()):04X}), which cannot be stored"
        elif isinstance(item, dict | list):
            if len(loc) >= max_depth:
                msg = f"nested deeper than the limit of {max_depth} levels"
            elif isinstance(item, dict):
                for k, v in item.items():
                    if _BAD_CHARS.search(k):
                        out.append(_problem([*loc, k], "key contains a NUL or lone surrogate"))
                    stack.append((v, [*loc, k]))
            else:
                stack.extend((v, [*loc, i]) for i, v in enumerate(item))
        if msg:
            out.append(_problem(loc, msg))
    return out


def _problem(loc: list[str | int], msg: str) -> dict[str, Any]:
    safe = [_BAD_CHARS.sub("\ufffd", p) if isinstance(p, str) else p for p in loc]
    return {"loc": ["body", *safe], "path": json_path(safe), "msg": msg, "type": "value_error"}


async def _send_json(send: Send, status: int, content: Any) -> None:
    body = json.dumps(content).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BoundsMiddleware:
    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, max_upload_bytes: int, max_json_depth: int
    ) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_upload = max_upload_bytes
        self.max_depth = max_json_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"")
        if b"\x00" in query or b"%00" in query or "\x00" in scope.get("path", ""):
            where = "query" if b"\x00" in query or b"%00" in query else "path"
            detail = {"loc": [where], "path": where, "msg": "NUL characters are not allowed"}
            await _send_json(send, 422, {"detail": [{**detail, "type": "value_error"}]})
            return
        upload = scope["method"] == "PUT" and bool(_UPLOAD.match(scope.get("path", "")))
        limit, name = (
            (self.max_upload, "max_upload_bytes") if upload else (self.max_body, "max_body_bytes")
        )
        too_large = {"detail": f"request body larger than the limit of {limit} bytes ({name})"}
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await _send_json(send, 413, too_large)
            return
        ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if scope["method"] in ("POST", "PUT", "PATCH") and (
            ctype == b"application/json"
            or ctype.endswith(b"+json")
            or ctype == b"application/x-www-form-urlencoded"
        ):
            chunks, size = [], 0
            while True:
                msg = await receive()
                if msg["type"] == "http.disconnect":
                    return
                chunk = msg.get("body", b"")
                size += len(chunk)
                if size > limit:
                    await _send_json(send, 413, too_large)
                    return
                chunks.append(chunk)
                if not msg.get("more_body"):
                    break
            body = b"".join(chunks)
            problems = self._check(body, ctype)
            if problems:
                await _send_json(send, 422, {"detail": problems})
                return
            await self.app(scope, _replay(body, receive), send)
            return
        started = False

        async def counted() -> Message:
            nonlocal size
            msg = await receive()
            size += len(msg.get("body", b""))
            if size > limit:
                raise _TooLarge
            return msg

        async def tracked(msg: Message) -> None:
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        size = 0
        try:
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if not started:
                await _send_json(send, 413, too_large)

    def _check(self, body: bytes, ctype: bytes) -> list[dict[str, Any]]:
        if ctype == b"application/x-www-form-urlencoded":
            if b"%00" in body or b"\x00" in body:
                return [_problem([], "NUL characters are not allowed")]
            return []
        if not body:
            return []
        try:
            doc = json.loads(body, parse_constant=_NonFinite)
        except RecursionError:
            return [_problem([], f"nested deeper than the limit of {self.max_depth} levels")]
        except ValueError:  # malformed JSON (or not UTF-8): the route's own 422 says where
            return []
        return json_problems(doc, self.max_depth)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


class StreamSlots:
    """Counts open event streams: at most ``per_user`` for one user, ``total`` in all."""

    def __init__(self, per_user: int, total: int) -> None:
        self.per_user = per_user
        self.total = total
        self._open: Counter[str] = Counter()

    def take(self, user: str) -> str | None:
        """None when a slot was taken (give it back with :meth:`give`), else the reason."""
        if sum(self._open.values()) >= self.total:
            return f"too many event streams open on this server (limit {self.total})"
        if self._open[user] >= self.per_user:
            return f"too many event streams open for this user (limit {self.per_user})"
        self._open[user] += 1
        return None

    def give(self, user: str) -> None:
        self._open[user] -= 1
        if self._open[user] <= 0:
            del self._open[user]


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _BaseProtocol
except ImportError:  # pragma: no cover - without httptools
    from uvicorn.protocols.http.h11_impl import H11Protocol as _BaseProtocol


class HeaderTimeoutProtocol(_BaseProtocol):  # type: ignore[misc, valid-type]
    """uvicorn's HTTP protocol (httptools when installed, else h11) that closes a connection
    whose request head is not complete within ``header_timeout`` seconds of its first byte
    (of the connection, for the first request). The timeout is the server's setting
    ``header_timeout_seconds`` (read in each server process, so ``--workers`` works)."""

    header_timeout: float | None = None
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._arm()

    def _arm(self) -> None:
        if self._head_timer is None:
            timeout = self.header_timeout
            if timeout is None:
                from bigmap.config import get_settings

                timeout = type(self).header_timeout = get_settings().header_timeout_seconds
            self._head_timer = self.loop.call_later(timeout, self._head_timeout)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timeout(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        cycle = getattr(self, "cycle", None)
        if cycle is None or cycle.response_complete:
            self._arm()  # the head of a new request starts arriving
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:  # httptools: the head is complete
        self._disarm()
        super().on_headers_complete()

    def handle_events(self) -> None:  # h11: a new cycle starts once the head is complete
        before = getattr(self, "cycle", None)
        super().handle_events()
        if getattr(self, "cycle", None) is not before:
            self._disarm()
