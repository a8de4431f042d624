"""``BrokerClient``: one object for everything a tenant, a planner or a script does with a
broker. Objects come back as the JSON the native API returns (dicts)."""

from __future__ import annotations

import base64
import contextlib
import os
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx

from bigmap.client.errors import BrokerUnavailable, RateLimited, RequestFailed, error_for

DEFAULT_URL = "http://127.0.0.1:8000"
_RETRY_STATUS = {502, 503, 504}


def _jsonable(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return value


class BrokerClient:
    """A client of a bigmap broker.

    ``url`` and ``token`` default to ``BIGMAP_BROKER_URL`` and ``BIGMAP_TOKEN``. Calls are
    retried with back-off when the broker cannot be reached or answers 502/503/504; the
    posting calls carry idempotency keys, so a retry never posts twice.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        retries: int = 5,
    ) -> None:
        self.url = (url or os.environ.get("BIGMAP_BROKER_URL") or DEFAULT_URL).rstrip("/")
        self.token = token if token is not None else os.environ.get("BIGMAP_TOKEN")
        self.retries = retries
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    # ------------------------------------------------------------------ plumbing

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> BrokerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        timeout: float | None = None,
        raw: bool = False,
    ) -> Any:
        """One API call; raises ``BrokerError`` kinds for 4xx/5xx and returns parsed JSON
        (None for 204)."""
        params = {k: _jsonable(v) for k, v in (params or {}).items() if v is not None}
        kwargs: dict[str, Any] = {"params": params}
        if json is not None:
            kwargs["json"] = _jsonable(json)
        if data is not None:
            kwargs["data"] = data
        if timeout is not None:
            kwargs["timeout"] = timeout
        delay = 0.2
        for attempt in range(self.retries + 1):
            try:
                resp = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if attempt == self.retries:
                    raise BrokerUnavailable(
                        f"cannot reach the broker at {self.url}: {exc}"
                    ) from exc
            else:
                if resp.status_code not in _RETRY_STATUS or attempt == self.retries:
                    break
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
        if resp.status_code >= 400:
            try:
                detail = resp.json().get("detail", resp.text)
            except ValueError:
                detail = resp.text
            exc = error_for(resp.status_code, detail, method, str(resp.request.url))
            if isinstance(exc, RateLimited):
                with contextlib.suppress(TypeError, ValueError):
                    exc.retry_after = float(resp.headers.get("Retry-After"))
            raise exc
        if resp.status_code == 204:
            return None
        if raw:
            return resp
        return resp.json() if resp.content else None

    def pages(self, path: str, params: dict[str, Any] | None = None) -> list[Any]:
        """Every item of a list endpoint, following its ``Link: rel="next"`` pages; with an
        explicit ``limit`` in ``params``, that one page only."""
        params = dict(params or {})
        follow = params.get("limit") is None
        out: list[Any] = []
        while True:
            resp = self.call("GET", path, params=params, raw=True)
            if resp is None:
                return out
            out += resp.json()
            nxt = resp.links.get("next", {}).get("url")
            if not follow or not nxt:
                return out
            url = httpx.URL(nxt)
            grouped: dict[str, list[str]] = {}
            for k, v in url.params.multi_items():
                grouped.setdefault(k, []).append(v)
            path = url.path
            params = {k: v[0] if len(v) == 1 else v for k, v in grouped.items()}

    @classmethod
    def login(cls, url: str, username: str, password: str, **kwargs: Any) -> BrokerClient:
        """A client with a token from ``/api/v1/auth/token``."""
        anon = cls(url, token="", **kwargs)
        try:
            tok = anon.call(
                "POST", "/api/v1/auth/token", data={"username": username, "password": password}
            )
        finally:
            anon.close()
        return cls(url, tok["access_token"], **kwargs)

    # ------------------------------------------------------------------ identity

    def tokens(
        self, *, user: str | None = None, all_users: bool = False, include_inactive: bool = False
    ) -> list[dict[str, Any]]:
        """Tokens (never their text): one's own; an admin may ask for a ``user``'s or all."""
        return self.call(
            "GET",
            "/api/v1/tokens",
            params={"user": user, "all_users": all_users, "include_inactive": include_inactive},
        )

    def create_token(
        self, *, label: str = "", days: float | None = None, user: str | None = None
    ) -> dict[str, Any]:
        """A new token (``access_token``, ``id``, ``expires_at``), for oneself or, for an
        admin, for ``user``."""
        return self.call(
            "POST", "/api/v1/tokens", json={"label": label, "days": days, "user": user}
        )

    def revoke_token(self, token_id: str | uuid.UUID) -> dict[str, Any]:
        """Revoke a token (one's own; any, for an admin); refused from the next call on."""
        return self.call("DELETE", f"/api/v1/tokens/{token_id}")

    def users(self) -> list[dict[str, Any]]:
        """Every user (admins only)."""
        return self.call("GET", "/api/v1/users")

    def add_user(
        self, name: str, password: str, role: str = "tenant", groups: list[str] | None = None
    ) -> dict[str, Any]:
        """Add a user (admins only); the password policy applies (422 naming ``password``)."""
        return self.call(
            "POST",
            "/api/v1/users",
            json={"name": name, "password": password, "role": role, "groups": groups or []},
        )

    def disable_user(self, name: str) -> dict[str, Any]:
        """Disable a user (admins only): its tokens are refused from the next call on."""
        return self.call("POST", f"/api/v1/users/{name}/disable")

    def enable_user(self, name: str) -> dict[str, Any]:
        return self.call("POST", f"/api/v1/users/{name}/enable")

    # ------------------------------------------------------------------ catalogue

    def health(self) -> dict[str, Any]:
        return self.call("GET", "/api/v1/health")

    def me(self) -> dict[str, Any]:
        return self.call("GET", "/api/v1/users/me")

    def capabilities(self, currently_available: bool = False) -> list[dict[str, Any]]:
        return self.pages("/api/v1/capabilities", {"currently_available": currently_available})

    def capability(self, quantity: str, method: str) -> dict[str, Any]:
        return self.call("GET", f"/api/v1/capabilities/{quantity}/{method}")

    def add_capability(self, spec: Any, *, replace: bool = False) -> dict[str, Any]:
        return self.call("POST", "/api/v1/capabilities", json=spec, params={"replace": replace})

    def template(self, quantity: str, method: str) -> dict[str, Any]:
        return self.call("GET", f"/api/v1/capabilities/{quantity}/{method}/template")

    # ------------------------------------------------------------------ tenants

    def tenants(self) -> list[dict[str, Any]]:
        return self.pages("/api/v1/tenants")

    def tenant(self, tenant_id: str | uuid.UUID) -> dict[str, Any]:
        return self.call("GET", f"/api/v1/tenants/{tenant_id}")

    def register_tenant(self, spec: Any, *, owner: str | None = None) -> dict[str, Any]:
        return self.call("POST", "/api/v1/tenants", json=spec, params={"owner": owner})

    def heartbeat(
        self, tenant_id: str | uuid.UUID, software: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return self.call("POST", f"/api/v1/tenants/{tenant_id}/heartbeat", json=software)

    # ------------------------------------------------------------------ requests

    def create_request(
        self,
        quantity: str,
        methods: str | Iterable[str],
        parameters: dict[str, Any],
        *,
        tenant_id: str | uuid.UUID,
        parent_id: str | uuid.UUID | None = None,
        campaign_id: str | uuid.UUID | None = None,
        priority: int = 0,
        idempotency_key: str | None = None,
        queue: bool = False,
        **access: Any,
    ) -> dict[str, Any]:
        """Ask for ``quantity``. With one method, ``parameters`` are that method's; with
        several, a dict of parameters per method. A request that no running tenant can serve
        now is refused (``ValidationFailed`` with the reason per tenant) unless ``queue``,
        which keeps it pending for a tenant yet to come."""
        methods = [methods] if isinstance(methods, str) else list(methods)
        if len(methods) == 1 and set(parameters) != {methods[0]}:
            parameters = {methods[0]: parameters}
        body = {
            "quantity": quantity,
            "methods": methods,
            "parameters": parameters,
            "tenant_id": tenant_id,
            "parent_id": parent_id,
            "campaign_id": campaign_id,
            "priority": priority,
            "idempotency_key": idempotency_key or f"auto-{uuid.uuid4()}",
            **access,
        }
        return self.call(
            "POST",
            "/api/v1/requests",
            json={k: v for k, v in body.items() if v is not None},
            params={"queue": queue} if queue else None,
        )

    def request(self, request_id: str | uuid.UUID) -> dict[str, Any]:
        return self.call("GET", f"/api/v1/requests/{request_id}")

    def requests(self, **filters: Any) -> list[dict[str, Any]]:
        """Requests matching ``filters``, every page (one page with ``limit=``)."""
        return self.pages("/api/v1/requests", filters)

    def request_log(self, request_id: str | uuid.UUID) -> list[dict[str, Any]]:
        return self.call("GET", f"/api/v1/requests/{request_id}/log")

    def children(self, request_id: str | uuid.UUID) -> list[dict[str, Any]]:
        return self.pages(f"/api/v1/requests/{request_id}/children")

    def claim(
        self,
        request_id: str | uuid.UUID,
        tenant_id: str | uuid.UUID,
        *,
        method: str | None = None,
        lease_seconds: float | None = None,
    ) -> dict[str, Any]:
        return self.call(
            "POST",
            f"/api/v1/requests/{request_id}/claim",
            json={"tenant_id": tenant_id, "method": method, "lease_seconds": lease_seconds},
        )

    def claim_next(
        self,
        tenant_id: str | uuid.UUID,
        *,
        capabilities: list[tuple[str, str]] | None = None,
        lease_seconds: float | None = None,
        wait: float = 0,
    ) -> dict[str, Any] | None:
        body = {"capabilities": capabilities, "lease_seconds": lease_seconds, "wait": wait}
        return self.call(
            "POST",
            f"/api/v1/tenants/{tenant_id}/claim",
            json={k: v for k, v in body.items() if v is not None},
            timeout=wait + 60,
        )

    def renew_lease(
        self,
        request_id: str | uuid.UUID,
        tenant_id: str | uuid.UUID,
        lease_seconds: float | None = None,
        progress: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        body = {"tenant_id": tenant_id, "lease_seconds": lease_seconds, "progress": progress}
        return self.call(
            "POST",
            f"/api/v1/requests/{request_id}/lease",
            json={k: v for k, v in body.items() if v is not None},
        )

    def release(
        self,
        request_id: str | uuid.UUID,
        tenant_id: str | uuid.UUID,
        message: str = "released by its tenant",
    ) -> dict[str, Any]:
        return self.call(
            "POST",
            f"/api/v1/requests/{request_id}/release",
            json={"tenant_id": tenant_id, "message": message},
        )

    def fail(
        self,
        request_id: str | uuid.UUID,
        tenant_id: str | uuid.UUID,
        message: str,
        *,
        kind: str = "calculation_failed",
        retry: bool = False,
    ) -> dict[str, Any]:
        return self.call(
            "POST",
            f"/api/v1/requests/{request_id}/fail",
            json={
                "tenant_id": tenant_id,
                "message": message[:20000] or kind,
                "kind": kind,
                "retry": retry,
            },
        )

    def retract(self, request_id: str | uuid.UUID, message: str = "") -> dict[str, Any]:
        return self.call(
            "POST", f"/api/v1/requests/{request_id}/retract", json={"message": message}
        )

    # ------------------------------------------------------------------ results

    def post_result(
        self,
        request_id: str | uuid.UUID | None,
        tenant_id: str | uuid.UUID,
        data: dict[str, Any],
        *,
        method: str | None = None,
        quantity: str | None = None,
        parameters: dict[str, Any] | None = None,
        software: dict[str, Any] | None = None,
        provenance: dict[str, Any] | None = None,
        files: list[tuple[str, bytes, str]] | None = None,
        idempotency_key: str | None = None,
        amend: bool = False,
        **access: Any,
    ) -> dict[str, Any]:
        """Answer a request (``request_id`` None: an unsolicited result). ``files`` are
        (name, content, media type) of raw data files."""
        body = {
            "request_id": request_id,
            "tenant_id": tenant_id,
            "data": data,
            "method": method,
            "quantity": quantity,
            "parameters": parameters,
            "software": software,
            "provenance": provenance or {},
            "files": [
                {"name": n, "content_base64": base64.b64encode(c).decode(), "media_type": t}
                for n, c, t in files or []
            ],
            "idempotency_key": idempotency_key or f"auto-{uuid.uuid4()}",
            "amend": amend,
            **access,
        }
        return self.call(
            "POST", "/api/v1/results", json={k: v for k, v in body.items() if v is not None}
        )

    def result(self, result_id: str | uuid.UUID) -> dict[str, Any]:
        return self.call("GET", f"/api/v1/results/{result_id}")

    def results(self, **filters: Any) -> list[dict[str, Any]]:
        """Results matching ``filters``, every page (one page with ``limit=``)."""
        return self.pages("/api/v1/results", filters)

    def result_of(self, request_id: str | uuid.UUID, wait: float = 0) -> dict[str, Any] | None:
        """The result of a request, waiting up to ``wait`` s (None if there is none yet);
        ``RequestFailed`` when the request failed or was retracted."""
        from bigmap.client.errors import ConflictError

        try:
            return self.call(
                "GET",
                f"/api/v1/requests/{request_id}/result",
                params={"wait": min(wait, 60)},
                timeout=min(wait, 60) + 60,
            )
        except ConflictError as exc:
            raise RequestFailed(exc.message) from None

    def wait_result(self, request_id: str | uuid.UUID, timeout: float = 3600) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            res = self.result_of(request_id, wait=max(0.0, min(left, 30)))
            if res is not None:
                return res
            if left <= 0:
                raise TimeoutError(f"no result for request {request_id} within {timeout} s")

    def download(self, file_id: str | uuid.UUID, to: Path | None = None) -> bytes:
        resp = self.call("GET", f"/api/v1/files/{file_id}", raw=True)
        if to is not None:
            Path(to).write_bytes(resp.content)
        return resp.content

    # ------------------------------------------------------------------ campaigns

    def create_campaign(
        self,
        name: str,
        spec: dict[str, Any],
        *,
        tenant_id: str | uuid.UUID,
        idempotency_key: str | None = None,
        **access: Any,
    ) -> dict[str, Any]:
        body = {
            "name": name,
            "spec": spec,
            "tenant_id": tenant_id,
            "idempotency_key": idempotency_key,
            **access,
        }
        return self.call(
            "POST", "/api/v1/campaigns", json={k: v for k, v in body.items() if v is not None}
        )

    def campaign(self, campaign_id: str | uuid.UUID) -> dict[str, Any]:
        return self.call("GET", f"/api/v1/campaigns/{campaign_id}")

    def campaigns(self) -> list[dict[str, Any]]:
        return self.pages("/api/v1/campaigns")

    def update_campaign(self, campaign_id: str | uuid.UUID, **changes: Any) -> dict[str, Any]:
        return self.call("PATCH", f"/api/v1/campaigns/{campaign_id}", json=changes)

    def add_campaign_event(
        self,
        campaign_id: str | uuid.UUID,
        kind: str,
        data: dict[str, Any],
        *,
        request_ids: list[str] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        body = {
            "kind": kind,
            "data": data,
            "request_ids": request_ids or [],
            "idempotency_key": idempotency_key,
        }
        return self.call(
            "POST",
            f"/api/v1/campaigns/{campaign_id}/events",
            json={k: v for k, v in body.items() if v is not None},
        )

    def campaign_events(
        self,
        campaign_id: str | uuid.UUID,
        *,
        after: int = 0,
        kind: str | None = None,
        wait: float = 0,
    ) -> list[dict[str, Any]]:
        return self.call(
            "GET",
            f"/api/v1/campaigns/{campaign_id}/events",
            params={"after": after, "kind": kind, "wait": wait},
            timeout=wait + 60,
        )
