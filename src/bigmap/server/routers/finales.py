"""The paths and payloads of FINALES 1.1.0, so that FINALES clients work unchanged.

Every path answers with and without its trailing slash. Objects come back in FINALES'
shapes; native statuses map onto FINALES' (claimed = reserved; failed = retracted, with the
reason in the native status information). What FINALES leaves open is done right here as
in the native API: exclusive claims, validated results (422 with JSON paths), bound tenant
identities, 404 for unknown ids.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request

from bigmap.schemas.common import ResultStatus
from bigmap.schemas.identity import TokenOut
from bigmap.schemas.request import (
    FinalesCapability,
    FinalesLimitations,
    FinalesRequest,
    FinalesRequestInfo,
    FinalesResult,
    FinalesResultInfo,
    RequestCreate,
    ResultCreate,
)
from bigmap.schemas.templates import template
from bigmap.schemas.validation import error
from bigmap.server.convert import finales_request_info, finales_result_info
from bigmap.server.deps import ActorDep, BrokerDep, NotifierDep, parse_id
from bigmap.server.paging import FinalesPageDep, Page
from bigmap.server.routers.auth import LOGIN_RESPONSES, login
from bigmap.store.access import Actor
from bigmap.store.broker import Broker
from bigmap.store.errors import Invalid, NotFound

router = APIRouter(tags=["FINALES 1.1.0"])


def both(method: str, path: str, **kwargs: Any) -> Callable:
    """Register a route at ``path`` with and without its trailing slash."""
    bare = path.rstrip("/")

    def deco(fn: Callable) -> Callable:
        router.add_api_route(bare + "/", fn, methods=[method], **kwargs)
        router.add_api_route(bare, fn, methods=[method], include_in_schema=False, **kwargs)
        return fn

    return deco


def _tenant_uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise Invalid(f"tenant_uuid {value!r} is not a UUID", ["tenant_uuid"]) from None


@both("POST", "/user_management/authenticate/", response_model=TokenOut, responses=LOGIN_RESPONSES)
def authenticate(
    broker: BrokerDep,
    request: Request,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
) -> TokenOut:
    return login(broker, request, username, password)


@both("POST", "/requests/", response_model=str)
def post_request(
    broker: BrokerDep, actor: ActorDep, notifier: NotifierDep, body: FinalesRequest
) -> str:
    native = RequestCreate(
        quantity=body.quantity,
        methods=body.methods,
        parameters=body.parameters,
        tenant_id=_tenant_uuid(body.tenant_uuid),
    )
    req, _ = broker.create_request(actor, native)
    notifier.notify()
    return str(req.id)


@both("GET", "/requests/{object_id}", response_model=FinalesRequestInfo)
def get_request(broker: BrokerDep, actor: ActorDep, object_id: str) -> FinalesRequestInfo:
    return finales_request_info(broker.get_request(actor, parse_id(object_id, "request")))


def _pending_for(
    broker: Broker,
    actor: Actor,
    quantity: str | None,
    method: str | None,
    tenant_uuid: str | None,
    page: Page,
) -> list:
    """Every pending request the caller may see, as FINALES 1.1.0 answers (a client that
    asks for the queue of the request it has just posted finds it, whatever tenants it also
    runs); with ``tenant_uuid``, only those that tenant can serve within its limitations."""
    servable = [parse_id(tenant_uuid, "tenant")] if tenant_uuid else None
    return page.cut(
        broker.list_requests(
            actor,
            status=["pending"],
            quantity=quantity,
            method=method,
            servable_by=servable,
            limit=page.fetch,
            offset=page.offset,
        )
    )


@both("GET", "/pending_requests/", response_model=list[FinalesRequestInfo])
def pending_requests(
    broker: BrokerDep,
    actor: ActorDep,
    page: FinalesPageDep,
    quantity: str | None = None,
    method: str | None = None,
    tenant_uuid: str | None = None,
) -> list[FinalesRequestInfo]:
    return [
        finales_request_info(r)
        for r in _pending_for(broker, actor, quantity, method, tenant_uuid, page)
    ]


@both("GET", "/all_requests/", response_model=list[FinalesRequestInfo])
def all_requests(
    broker: BrokerDep,
    actor: ActorDep,
    page: FinalesPageDep,
    quantity: str | None = None,
    method: str | None = None,
) -> list[FinalesRequestInfo]:
    rows = broker.list_requests(
        actor, quantity=quantity, method=method, limit=page.fetch, offset=page.offset
    )
    return [finales_request_info(r) for r in page.cut(rows)]


def _native_result(body: FinalesResult, request_id: uuid.UUID | None) -> ResultCreate:
    errors = []
    if len(body.method) != 1:
        errors.append(error(["method"], f"a result names exactly one method, not {body.method}"))
    method = body.method[0] if body.method else None
    if method is not None and set(body.parameters) != {method}:
        errors.append(
            error(
                ["parameters"],
                f"parameters must have the single key {method!r}, not {sorted(body.parameters)}",
            )
        )
    if errors:
        raise Invalid(errors)
    return ResultCreate(
        request_id=request_id,
        tenant_id=_tenant_uuid(body.tenant_uuid),
        quantity=body.quantity,
        method=method,
        parameters=body.parameters[method],
        data=body.data,
    )


def _rebase(exc: Invalid, method: str | None) -> Invalid:
    """Native error paths ($.parameters.x) in FINALES terms ($.parameters.<method>.x)."""
    for d in exc.details:
        if d.loc[:1] == ["parameters"] and method is not None:
            d.loc = ["parameters", method, *d.loc[1:]]
            d.path = error(d.loc, d.msg).path
    return exc


@both("POST", "/results/", response_model=str)
def post_result(
    broker: BrokerDep, actor: ActorDep, notifier: NotifierDep, body: FinalesResult
) -> str:
    try:
        request_id = uuid.UUID(body.request_uuid)
    except ValueError:
        raise Invalid(
            f"request_uuid {body.request_uuid!r} is not a UUID", ["request_uuid"]
        ) from None
    native = _native_result(body, request_id)
    try:
        res, _ = broker.post_result(actor, native)
    except Invalid as exc:
        raise _rebase(exc, native.method) from None
    notifier.notify()
    return str(res.id)


@both("POST", "/results/post_unsolicited_result", response_model=str)
def post_unsolicited(
    broker: BrokerDep, actor: ActorDep, notifier: NotifierDep, body: FinalesResult
) -> str:
    native = _native_result(body, None)
    try:
        res, _ = broker.post_result(actor, native)
    except Invalid as exc:
        raise _rebase(exc, native.method) from None
    notifier.notify()
    return str(res.id)


@both("GET", "/results/{object_id}", response_model=FinalesResultInfo)
def get_result(broker: BrokerDep, actor: ActorDep, object_id: str) -> FinalesResultInfo:
    return finales_result_info(broker.get_result(actor, parse_id(object_id, "result")))


@both("GET", "/results_requested/{request_id}", response_model=FinalesResultInfo | None)
def result_for_request(
    broker: BrokerDep, actor: ActorDep, request_id: str
) -> FinalesResultInfo | None:
    """The result of a request; null while there is none (404 for an unknown request)."""
    res = broker.result_for_request(actor, parse_id(request_id, "request"))
    return finales_result_info(res) if res is not None else None


@both("GET", "/results_requested/", response_model=list[FinalesResultInfo])
def results_requested(
    broker: BrokerDep,
    actor: ActorDep,
    page: FinalesPageDep,
    quantity: str | None = None,
    method: str | None = None,
) -> list[FinalesResultInfo]:
    rows = broker.list_results(
        actor, quantity=quantity, method=method, limit=page.fetch, offset=page.offset
    )
    return [finales_result_info(r) for r in page.cut(rows)]


@both("GET", "/capabilities/", response_model=list[FinalesCapability])
def capabilities(
    broker: BrokerDep, _: ActorDep, page: FinalesPageDep, currently_available: bool = True
) -> list[FinalesCapability]:
    return [
        FinalesCapability(
            quantity=c.quantity,
            method=c.method,
            json_schema_specifications=c.parameter_schema,
            json_schema_result_output=c.result_schema,
        )
        for c, _n in page.cut(
            broker.list_capabilities(
                currently_available=currently_available, limit=page.fetch, offset=page.offset
            )
        )
    ]


@both("GET", "/limitations/", response_model=list[FinalesLimitations])
def limitations(
    broker: BrokerDep, _: ActorDep, currently_available: bool = True
) -> list[FinalesLimitations]:
    tenants = [t for t in broker.list_tenants() if t.is_active or not currently_available]
    details = broker.tenant_details(tenants)
    return [FinalesLimitations(**p) for t in tenants for p in details[t.id]["provides"]]


@both("GET", "/capabilities/templates/")
def templates(
    broker: BrokerDep,
    _: ActorDep,
    quantity: str | None = None,
    method: str | None = None,
    currently_available: bool = True,
) -> dict[str, dict[str, Any]]:
    """``{quantity: {method: {"input": template, "output": template}}}``."""
    out: dict[str, dict[str, Any]] = {}
    for c, _n in broker.list_capabilities(currently_available=currently_available):
        if (quantity and c.quantity != quantity) or (method and c.method != method):
            continue
        out.setdefault(c.quantity, {})[c.method] = {
            "input": template(c.parameter_schema),
            "output": template(c.result_schema),
        }
    if (quantity or method) and not out:
        raise NotFound(f"no capability {quantity or '*'}/{method or '*'}")
    return out


@both("POST", "/requests/{object_id}/update_status/", response_model=str)
def request_status(
    broker: BrokerDep,
    actor: ActorDep,
    notifier: NotifierDep,
    object_id: str,
    new_status: str,
    request_id: str | None = None,
    status_change_message: str | None = None,
) -> str:
    """Set a request to pending, reserved (an exclusive claim: 409 when taken) or retracted."""
    rid = parse_id(object_id, "request")
    if request_id is not None and parse_id(request_id, "request") != rid:
        raise Invalid(
            f"request_id {request_id} differs from the path's {object_id}", ["request_id"]
        )
    out = broker.set_request_status_finales(actor, rid, new_status, status_change_message)
    notifier.notify()
    return out


@both("POST", "/results/{object_id}/update_status/", response_model=str)
def result_status(
    broker: BrokerDep,
    actor: ActorDep,
    object_id: str,
    new_status: str,
    result_id: str | None = None,
    status_change_message: str | None = None,
) -> str:
    rid = parse_id(object_id, "result")
    if result_id is not None and parse_id(result_id, "result") != rid:
        raise Invalid(f"result_id {result_id} differs from the path's {object_id}", ["result_id"])
    if new_status not in {s.value for s in ResultStatus}:
        raise Invalid(f"unknown status {new_status!r}; one of amended, deleted", ["new_status"])
    return broker.set_result_status(actor, rid, new_status, status_change_message)


@both("GET", "/tenants/")
def tenants(broker: BrokerDep, _: ActorDep, page: FinalesPageDep) -> list[dict[str, Any]]:
    rows = page.cut(broker.list_tenants(limit=page.fetch, offset=page.offset))
    details = broker.tenant_details(rows)
    return [
        {
            "uuid": str(t.id),
            "name": t.name,
            "limitations": details[t.id]["provides"],
            "capabilities": [[p["quantity"], p["method"]] for p in details[t.id]["provides"]],
            "contact_person": t.contact_person,
            "is_active": t.is_active,
        }
        for t in rows
    ]
