"""FAIR data: JSON-LD with EMMO / BattINFO IRIs, RDF of whole campaigns, SHACL reports,
SPARQL, W3C PROV views, recomputation, metadata search, access tiers and groups, minimum
metadata policies, archive packages.

Every path filters by what the caller may see, as the rest of the API does: an object the
caller may not see is unknown (404); a restricted object made findable shows its metadata
alone in search and exports.

This module also registers the minimum-metadata check that the broker runs on every
arriving result (``bigmap.store.fair.RESULT_CHECKS``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from bigmap.ontology import jsonld as ld
from bigmap.ontology import metadata as md
from bigmap.ontology import prov as provo
from bigmap.ontology import shacl, sparql
from bigmap.schemas.common import AccessTier
from bigmap.schemas.request import RequestOut
from bigmap.schemas.validation import error
from bigmap.server.convert import request_out
from bigmap.server.deps import ActorDep, AdminDep, BrokerDep, parse_id
from bigmap.server.graphstore import QueryStopped, store_of
from bigmap.store.access import Actor
from bigmap.store.broker import Broker
from bigmap.store.errors import Invalid, NotFound
from bigmap.store.fair import RESULT_CHECKS, Fair, file_dict, jsonable, row_dict

router = APIRouter(tags=["FAIR data"])
log = logging.getLogger("bigmap.server.fair")

JSONLD = "application/ld+json"
TURTLE = "text/turtle"
RDF_FORMATS = {
    "jsonld": (JSONLD, None),
    "ttl": (TURTLE, "turtle"),
    "turtle": (TURTLE, "turtle"),
    "nt": ("application/n-triples", "nt"),
    "xml": ("application/rdf+xml", "xml"),
}
KINDS = ("requests", "results", "capabilities", "campaigns", "tenants")


def fair_of(broker: Broker) -> Fair:
    """One ``Fair`` per broker (it caches the metadata policies)."""
    fair = getattr(broker, "_fair", None)
    if fair is None:
        fair = Fair(broker)
        broker._fair = fair  # type: ignore[attr-defined]
    return fair


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _wants(request: Request, fmt: str | None, default: str) -> str:
    if fmt:
        if fmt not in RDF_FORMATS and fmt != "json":
            raise Invalid(f"format {fmt!r}: one of json, {', '.join(RDF_FORMATS)}", ["format"])
        return fmt
    accept = request.headers.get("accept", "")
    for key, (media, _) in RDF_FORMATS.items():
        if media in accept:
            return key
    return default


def _rdf_response(doc: dict[str, Any], fmt: str, headers: dict[str, str] | None = None) -> Response:
    media, rdflib_format = RDF_FORMATS[fmt]
    if rdflib_format is None:
        body = json.dumps(doc, default=str, ensure_ascii=False)
    else:
        body = ld.to_graph(doc).serialize(format=rdflib_format)
    return Response(content=body, media_type=media, headers=headers)


# ----------------------------------------------------------------------------- JSON-LD


def _capability(broker: Broker, quantity: str, method: str) -> dict[str, Any] | None:
    try:
        return jsonable(row_dict(broker.get_capability(quantity, method)))
    except NotFound:
        return None


def object_jsonld(broker: Broker, actor: Actor, kind: str, object_id: str, base: str) -> ld.JsonLd:
    """The JSON-LD of one object the caller may see."""
    fair = fair_of(broker)
    if kind == "capabilities":
        try:
            cid = uuid.UUID(object_id)
        except ValueError:
            raise NotFound(f"no capability {object_id!r}") from None
        cap = next((c for c in fair.capabilities() if c["id"] == cid), None)
        if cap is None:
            raise NotFound(f"no capability {object_id}")
        return ld.capability_jsonld(jsonable(cap))
    if kind == "tenants":
        tid = parse_id(object_id, "tenant")
        rows = fair.tenants([tid])
        if not rows:
            raise NotFound(f"no tenant {object_id}")
        return ld.tenant_jsonld(jsonable(rows[0]))
    if kind == "requests":
        req = broker.get_request(actor, parse_id(object_id, "request"))
        caps = {(req.quantity, m): _capability(broker, req.quantity, m) for m in req.methods}
        kinds = {t["id"]: t["kind"] for t in fair.tenants([req.claimed_by])}
        return ld.request_jsonld(
            jsonable(row_dict(req)),
            capabilities={k: v for k, v in caps.items() if v},
            tenant_kind=kinds.get(req.claimed_by),
        )
    if kind == "results":
        res = broker.get_result(actor, parse_id(object_id, "result"))
        files = [jsonable(file_dict(f)) for f in broker.result_files(actor, res.id)]
        tenant = fair.tenants([res.tenant_id])
        return ld.result_jsonld(
            {**jsonable(row_dict(res)), "files": files},
            capability=_capability(broker, res.quantity, res.method),
            tenant=jsonable(tenant[0]) if tenant else None,
            base_url=base,
        )
    if kind == "campaigns":
        return campaign_document(broker, actor, parse_id(object_id, "campaign"), base)
    raise NotFound(f"no kind {kind!r}: one of {', '.join(KINDS)}")


def campaign_document(broker: Broker, actor: Actor, cid: uuid.UUID, base: str) -> ld.JsonLd:
    b = fair_of(broker).campaign_bundle(actor, cid)
    return ld.campaign_jsonld(
        jsonable(b.campaign),
        events=jsonable(b.events),
        requests=jsonable(b.requests),
        results=jsonable(b.result_with_files()),
        tenants=jsonable(b.tenants),
        capabilities=jsonable(b.capabilities),
        base_url=base,
    )


def _jsonld_response(out: ld.JsonLd, report: bool, fmt: str = "jsonld") -> Any:
    if report:
        return {"document": out.document, "report": out.report.as_dict()}
    headers = {"X-Bigmap-Unmapped-Terms": str(len(out.report.unmapped_terms()))}
    return _rdf_response(out.document, fmt, headers)


@router.get("/jsonld/context", summary="The JSON-LD context (EMMO / BattINFO IRIs)")
def jsonld_context(_: ActorDep) -> Response:
    return Response(content=json.dumps({"@context": ld.context()}), media_type=JSONLD)


@router.get("/jsonld/{kind}/{object_id}", summary="JSON-LD of a request, result, ...")
def jsonld_of(
    broker: BrokerDep,
    actor: ActorDep,
    request: Request,
    kind: str,
    object_id: str,
    report: bool = Query(False, description="return {document, report of unmapped terms}"),
    format: str | None = Query(None, description="jsonld (default), ttl, nt, xml"),
) -> Any:
    """The JSON-LD form of one object; terms without an EMMO/BattINFO IRI are listed in
    ``bigmap:unmappedTerm`` (and in the report with ``report=true``)."""
    out = object_jsonld(broker, actor, kind, object_id, _base(request))
    return _jsonld_response(out, report, _wants(request, format, "jsonld"))


def _suffix_route(kind: str, suffix: str) -> None:
    fmt = "jsonld" if suffix == "jsonld" else "ttl"

    def endpoint(
        broker: BrokerDep, actor: ActorDep, request: Request, object_id: str, report: bool = False
    ) -> Any:
        out = object_jsonld(broker, actor, kind, object_id, _base(request))
        return _jsonld_response(out, report, fmt)

    endpoint.__name__ = f"{kind}_{suffix}"
    router.add_api_route(
        f"/{kind}/{{object_id}}.{suffix}",
        endpoint,
        methods=["GET"],
        summary=f"{'JSON-LD' if fmt == 'jsonld' else 'Turtle'} of one of the {kind}",
    )


for _kind in KINDS:
    for _suffix in ("jsonld", "ttl"):
        _suffix_route(_kind, _suffix)


@router.get("/capabilities/{quantity}/{method}.jsonld", summary="JSON-LD of a capability")
def capability_by_name_jsonld(
    broker: BrokerDep, _: ActorDep, quantity: str, method: str, report: bool = False
) -> Any:
    cap = _capability(broker, quantity, method)
    if cap is None:
        raise NotFound(f"no capability {quantity}/{method}")
    return _jsonld_response(ld.capability_jsonld(cap), report)


@router.get("/rdf/campaigns/{campaign_id}", summary="RDF of a whole campaign")
def campaign_rdf(
    broker: BrokerDep,
    actor: ActorDep,
    request: Request,
    campaign_id: str,
    format: str | None = Query(None, description="ttl (default), jsonld, nt, xml"),
) -> Response:
    """The whole campaign (steps, requests, results, raw files, tenants, capabilities) as
    one graph: Turtle by default."""
    out = campaign_document(broker, actor, parse_id(campaign_id, "campaign"), _base(request))
    return _rdf_response(out.document, _wants(request, format, "ttl"))


@router.get("/campaigns/{campaign_id}/shacl", summary="SHACL report of a campaign's graph")
def campaign_shacl(
    broker: BrokerDep,
    actor: ActorDep,
    request: Request,
    campaign_id: str,
    format: str = Query("json", pattern="^(json|text)$"),
) -> Any:
    """The campaign's graph validated with pyshacl against BattINFO's shipped shapes and
    bigmap's own."""
    out = campaign_document(broker, actor, parse_id(campaign_id, "campaign"), _base(request))
    report = shacl.validate(ld.to_graph(out.document))
    if format == "text":
        return Response(content=report.text(), media_type="text/plain")
    return report.as_dict()


# ----------------------------------------------------------------------------- provenance


@router.get("/provenance/{object_id}", summary="W3C PROV view of a result")
def provenance(
    broker: BrokerDep,
    actor: ActorDep,
    request: Request,
    object_id: str,
    format: str | None = Query(None, description="json (PROV-JSON, default), jsonld, ttl"),
) -> Any:
    """The provenance of a result (or of the result of a request): the requests and
    sub-requests that led to it, the tenants and software that acted, the planner step and
    model state that proposed it, the raw files it was computed from. ``json`` is PROV-JSON
    with ``bigmap:raw_files`` (each with its path back from the result); ``jsonld`` is PROV-O."""
    oid = parse_id(object_id, "result")
    fair = fair_of(broker)
    try:
        bundle = fair.provenance(actor, oid)
    except NotFound:
        req = broker.get_request(actor, oid)  # a request id: its result
        if req.result_id is None:
            raise NotFound(f"request {oid} has no result yet") from None
        bundle = fair.provenance(actor, req.result_id)
    fmt = _wants(request, format, "json")
    if fmt == "json":
        doc = provo.prov_json(bundle)
        doc["bigmap:raw_files"] = jsonable(provo.raw_files(bundle))
        return doc
    return _rdf_response(provo.prov_jsonld(bundle), fmt)


class RecomputeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant_id: uuid.UUID = Field(description="the caller's tenant that asks")
    priority: int | None = Field(default=None, ge=-1000, le=1000)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)
    access: AccessTier | None = None
    access_groups: list[str] | None = None
    embargo_until: datetime | None = None


@router.post("/results/{result_id}/recompute", response_model=RequestOut, status_code=201)
def recompute(
    broker: BrokerDep, actor: ActorDep, response: Response, result_id: str, body: RecomputeIn
) -> RequestOut:
    """A new request with the identical quantity, method and parameters as the result's,
    linked to it (its PROV view shows ``wasInfluencedBy`` / ``bigmap:recomputationOf``). The
    new request has the result's access tier unless one is given."""
    access = None
    if body.access is not None:
        access = {
            "access": body.access,
            "access_groups": body.access_groups or [],
            "embargo_until": body.embargo_until,
        }
    req, created = fair_of(broker).recompute(
        actor,
        parse_id(result_id, "result"),
        body.tenant_id,
        priority=body.priority,
        idempotency_key=body.idempotency_key,
        access=access,
    )
    if not created:
        response.status_code = 200
    return request_out(req)


# ----------------------------------------------------------------------------- search, SPARQL


def _quantity_iris(broker: Broker) -> dict[str, str]:
    """quantity name -> EMMO IRI, for every capability."""
    v = ld.vocabulary()
    out = {}
    for c in fair_of(broker).capabilities():
        term = v.quantity_term(c["quantity"])
        iri = c.get("iri") or (term.iri if term else None)
        if iri:
            out.setdefault(c["quantity"], iri)
    return out


@router.get("/search", summary="Find requests, results and campaigns by their metadata")
def search(
    broker: BrokerDep,
    actor: ActorDep,
    q: str | None = Query(None, description="text in names, quantities, methods, tenants"),
    kind: list[str] | None = Query(None, description="results, requests, campaigns"),
    quantity: str | None = None,
    method: str | None = None,
    iri: str | None = Query(None, description="an EMMO class IRI (or label) of the quantity"),
    status: str | None = None,
    tenant_id: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    limit: int = Query(100, ge=1, le=10000),
) -> list[dict[str, Any]]:
    """What the caller may see comes with its summary; a restricted item made findable
    comes as its metadata alone (``metadata_only: true``: what it is, who holds it, who may
    see it and when it opens), never with its data."""
    quantities = None
    if iri:
        term = ld.vocabulary().term(iri)
        target = term.iri if term else iri
        quantities = [q_ for q_, i in _quantity_iris(broker).items() if i == target]
    for t in (created_after, created_before):
        if t is not None and t.tzinfo is None:
            raise Invalid("times must carry a time zone", ["created_after"])
    return fair_of(broker).search(
        actor,
        q=q,
        kinds=kind,
        quantity=quantity,
        method=method,
        quantities=quantities,
        status=status,
        tenant_id=parse_id(tenant_id, "tenant") if tenant_id else None,
        created_after=created_after,
        created_before=created_before,
        limit=limit,
    )


def store_graph(
    broker: Broker, actor: Actor, *, campaign: uuid.UUID | None = None, limit: int = 5000
) -> Any:
    """An rdflib graph of all the caller may see (or of one campaign)."""
    fair = fair_of(broker)
    if campaign is not None:
        return ld.to_graph(campaign_document(broker, actor, campaign, "").document)
    b = fair.everything(actor, limit=limit)
    docs = [ld.capability_jsonld(c).document for c in jsonable(b.capabilities)]
    docs += [ld.tenant_jsonld(t).document for t in jsonable(b.tenants)]
    caps = {(c["quantity"], c["method"]): c for c in jsonable(b.capabilities)}
    kinds = {str(t["id"]): t["kind"] for t in b.tenants}
    docs += [
        ld.request_jsonld(
            r, capabilities=caps, tenant_kind=kinds.get(str(r.get("claimed_by")))
        ).document
        for r in jsonable(b.requests)
    ]
    docs += [
        ld.result_jsonld(
            r,
            capability=caps.get((r["quantity"], r["method"])),
            tenant={"kind": kinds.get(str(r.get("tenant_id")))},
        ).document
        for r in jsonable(b.result_with_files())
    ]
    camps = fair.campaigns(actor)
    events = fair.campaign_events(actor, [c["id"] for c in camps])
    for c in camps:
        docs.append(
            ld.campaign_jsonld(jsonable(c), events=jsonable(events.get(c["id"], []))).document
        )
    return ld.to_graph(*docs)


SPARQL_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "a malformed query, an update, SERVICE or FROM (SPARQL 1.1 Protocol)"},
    406: {"description": "no result format the client accepts fits the query"},
    408: {"description": "the query ran past the time limit (BIGMAP_SPARQL_TIMEOUT_SECONDS)"},
    413: {"description": "the query is longer than BIGMAP_SPARQL_MAX_QUERY_BYTES"},
    415: {"description": "a body that is not a SPARQL query, a form or JSON"},
}


def _sparql_error(status: int, message: str, field: str = "query") -> Response:
    return Response(
        content=json.dumps({"detail": [{"loc": [field], "path": field, "msg": message}]}),
        status_code=status,
        media_type="application/json",
    )


def _json_depth_ok(raw: bytes, limit: int = 32) -> bool:
    """Is a JSON text nested at most ``limit`` deep (checked before parsing it)?"""
    depth, in_string, escaped = 0, False, False
    for ch in raw.decode("utf-8", "replace"):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return False
        elif ch in "]}":
            depth -= 1
    return True


async def _read_limited(request: Request, limit: int) -> bytes | None:
    """The body, or None when it is longer than ``limit`` bytes (read no further)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


@router.api_route(
    "/sparql",
    methods=["GET", "POST"],
    summary="SPARQL 1.1 Protocol endpoint over the graph of what the caller may see",
    responses=SPARQL_ERRORS,  # type: ignore[arg-type]
)
async def sparql_query(
    broker: BrokerDep,
    actor: ActorDep,
    request: Request,
    query: str | None = Query(None, description="the SPARQL query (GET)"),
    campaign_id: str | None = Query(None, description="only this campaign's graph"),
    limit: int | None = Query(
        None, ge=1, le=1000000, description="at most this many rows or triples (capped)"
    ),
) -> Any:
    """Read-only SPARQL (SELECT, ASK, CONSTRUCT, DESCRIBE) per the SPARQL 1.1 Protocol: the
    query in ``?query=`` (GET), or POSTed as ``application/sparql-query``, as the form field
    ``query`` (``application/x-www-form-urlencoded``) or as JSON ``{"query": ...}``. Results
    by ``Accept``: ``application/sparql-results+json`` (default), ``+xml``, ``text/csv``,
    ``text/tab-separated-values``; graphs as ``text/turtle`` (default), ``application/ld+json``,
    ``application/n-triples``. SERVICE, FROM and ``default-graph-uri`` are refused (the graph
    is the caller's view). Bounded: a time limit (408), a cap on rows (``X-Bigmap-Truncated``),
    a cap on the query's size (413); a query whose client disconnects stops."""
    settings = getattr(request.app.state, "settings", None)
    timeout = float(getattr(settings, "sparql_timeout_seconds", 30.0))
    max_rows = int(getattr(settings, "sparql_max_rows", 10000))
    max_bytes = int(getattr(settings, "sparql_max_query_bytes", 65536))
    rows_cap = min(limit or max_rows, max_rows)
    params = request.query_params
    if "default-graph-uri" in params or "named-graph-uri" in params:
        return _sparql_error(
            400,
            "default-graph-uri / named-graph-uri are not supported: "
            "the dataset is the caller's view",
            "default-graph-uri",
        )
    text = query
    if request.method == "POST" and not text:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        raw = await _read_limited(request, max_bytes)
        if raw is None:
            return _sparql_error(413, f"the body is longer than {max_bytes} bytes", "body")
        if ctype == "application/sparql-update":
            return _sparql_error(400, "updates are not allowed: the endpoint is read-only")
        if ctype in ("application/json", "application/sparql-query+json") or ctype.endswith(
            "+json"
        ):
            if not _json_depth_ok(raw):
                return _sparql_error(
                    400, 'the body nests deeper than 32: expected {"query": ...}', "body"
                )
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                return _sparql_error(400, 'the body is not JSON {"query": ...}', "body")
            text = body.get("query") if isinstance(body, dict) else None
            if text is not None and not isinstance(text, str):
                return _sparql_error(400, "query must be a string")
        elif ctype == "application/x-www-form-urlencoded":
            from urllib.parse import parse_qs

            form = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
            if "default-graph-uri" in form or "named-graph-uri" in form:
                return _sparql_error(
                    400,
                    "default-graph-uri / named-graph-uri are not "
                    "supported: the dataset is the caller's view",
                    "default-graph-uri",
                )
            if "update" in form:
                return _sparql_error(400, "updates are not allowed: the endpoint is read-only")
            text = (form.get("query") or [None])[0]
        elif ctype in ("application/sparql-query", "text/plain", ""):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                return _sparql_error(400, "the query is not UTF-8", "body")
        else:
            return _sparql_error(
                415,
                f"content type {ctype!r}: application/sparql-query, "
                "application/x-www-form-urlencoded or application/json",
                "content-type",
            )
    if not text:
        raise Invalid("no query: pass ?query=... or POST it", ["query"])
    if len(text.encode("utf-8", "replace")) > max_bytes:
        return _sparql_error(413, f"the query is longer than {max_bytes} bytes")
    try:
        prepared = sparql.prepare(text, max_chars=max_bytes)
        kind = sparql._kind(prepared)
        fmt = sparql.negotiate(request.headers.get("accept"), kind)
    except sparql.NotAcceptable as exc:
        return _sparql_error(406, str(exc), "accept")
    except sparql.QueryError as exc:
        return _sparql_error(400, str(exc))
    cid = parse_id(campaign_id, "campaign") if campaign_id else None
    cancelled = threading.Event()
    deadline = time.monotonic() + timeout

    def work() -> Any:
        if cid is not None:
            graph = ld.to_graph(campaign_document(broker, actor, cid, "").document)
            if time.monotonic() > deadline:
                raise QueryStopped("the query ran past its time limit")
            return sparql.run(graph, text, limit=rows_cap, fmt=fmt)
        with store_of(fair_of(broker)).view(actor, deadline=deadline, cancelled=cancelled) as g:
            return sparql.run(g, text, limit=rows_cap, fmt=fmt)

    async def watch() -> None:
        while not cancelled.is_set():
            if await request.is_disconnected():
                cancelled.set()
                return
            await asyncio.sleep(0.25)

    watcher = asyncio.create_task(watch())
    try:
        out = await run_in_threadpool(work)
    except QueryStopped as exc:
        if cancelled.is_set():
            log.warning("SPARQL query stopped: %s", exc.reason)
            return Response(status_code=499)
        return _sparql_error(
            408,
            f"{exc.reason} ({timeout:g} s); narrow the query or raise "
            "BIGMAP_SPARQL_TIMEOUT_SECONDS",
        )
    except sparql.QueryError as exc:
        return _sparql_error(400, str(exc))
    finally:
        cancelled.set()
        watcher.cancel()
    headers = {"X-Bigmap-Truncated": "true" if out.truncated else "false", "Vary": "Accept"}
    return Response(content=out.body, media_type=out.media_type, headers=headers)


# ----------------------------------------------------------------------------- access, groups


class AccessIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    access: AccessTier | None = None
    access_groups: list[str] | None = None
    embargo_until: datetime | None = None
    clear_embargo: bool = False
    findable: bool | None = Field(
        default=None, description="a restricted item anyone may find by its metadata alone"
    )
    cascade: bool = Field(
        default=True,
        description="also the caller's dependents: a campaign's requests, a request's "
        "sub-requests and results, a result's raw files",
    )


@router.patch("/access/{kind}/{object_id}", summary="Change who may see an object")
def set_access(
    broker: BrokerDep, actor: ActorDep, kind: str, object_id: str, body: AccessIn
) -> dict[str, Any]:
    """Tier (public, restricted, confidential), groups, embargo date and findability of a
    request, result, campaign or raw file; its owner or an admin only."""
    return fair_of(broker).set_access(
        actor,
        kind,
        parse_id(object_id, kind.rstrip("s") or "object"),
        access=body.access,
        access_groups=body.access_groups,
        embargo_until=body.embargo_until,
        clear_embargo=body.clear_embargo,
        findable=body.findable,
        cascade=body.cascade,
    )


@router.get("/groups", summary="Groups and their members")
def groups(broker: BrokerDep, actor: ActorDep) -> dict[str, list[str]]:
    """All groups for an admin; the caller's own groups otherwise."""
    return fair_of(broker).groups(actor)


class GroupsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    groups: list[str] | None = Field(default=None, description="the complete new set")
    add: list[str] = Field(default_factory=list)
    remove: list[str] = Field(default_factory=list)


@router.put("/users/{name}/groups", summary="Set a user's groups (admin)")
def set_groups(broker: BrokerDep, actor: AdminDep, name: str, body: GroupsIn) -> dict[str, Any]:
    user = fair_of(broker).set_groups(
        actor, name, groups=body.groups, add=body.add, remove=body.remove
    )
    return {"name": user.name, "groups": list(user.groups or [])}


# ----------------------------------------------------------------------------- metadata


def _where_loc(where: str) -> list[str | int]:
    m = re.match(r"(parameters|data|provenance)((?:\.[A-Za-z_][A-Za-z0-9_]*)*)", where)
    if not m:
        return ["provenance"]
    return [m.group(1), *[p for p in m.group(2).split(".") if p]]


def metadata_check(broker: Broker, info: dict[str, Any]) -> tuple[list[Any], dict[str, Any] | None]:
    """The minimum-metadata check of an arriving result (see ``bigmap.ontology.metadata``):
    refuses it under a ``strict`` policy when something is missing. A fault of the check
    itself never costs a result: it is logged and noted in the report."""
    try:
        return _metadata_check(broker, info)
    except Exception as exc:
        log.exception(
            "the minimum-metadata check failed on %s/%s", info.get("quantity"), info.get("method")
        )
        return [], {"complete": None, "error": f"the check failed: {type(exc).__name__}: {exc}"}


def _metadata_check(
    broker: Broker, info: dict[str, Any]
) -> tuple[list[Any], dict[str, Any] | None]:
    fair = fair_of(broker)
    policy = fair.policy(info["quantity"], info["method"])
    strictness = policy.strictness if policy else "report"
    if strictness == "off":
        return [], None
    cap = fair.capability_info(info["quantity"], info["method"])
    ctx = md.Context(
        quantity=info["quantity"],
        method=info["method"],
        parameters=info["parameters"] or {},
        data=info["data"] or {},
        provenance=info.get("provenance") or {},
        software=info.get("software"),
        files=info.get("files") or [],
        units=(cap or {}).get("units") or {},
        result_schema=info.get("result_schema"),
        tenant_kind=info.get("tenant_kind"),
        unit_cache=(cap or {}).get("unit_cache"),
    )
    report = md.check(
        ctx,
        data_types=(policy.data_types or None) if policy else None,
        strictness=strictness,
        required=policy.required if policy else None,
    )
    errors = []
    if strictness == "strict":
        for miss in report.missing:
            locs = [p.split(".") for p in miss.get("paths", [])] or [_where_loc(miss["where"])]
            for loc in locs:
                errors.append(
                    error(
                        list(loc),
                        f"minimum metadata for {miss['data_type']} data: {miss['description']} "
                        f"(expected at {miss['where']})",
                        "missing_metadata",
                    )
                )
    return errors, report.as_dict()


if metadata_check not in RESULT_CHECKS:
    RESULT_CHECKS.append(metadata_check)


@router.get("/results/{result_id}/metadata", summary="Minimum-metadata report of a result")
def result_metadata(broker: BrokerDep, actor: ActorDep, result_id: str) -> dict[str, Any]:
    """The report stored when the result arrived, and the check under today's policy."""
    res = broker.get_result(actor, parse_id(result_id, "result"))
    files = broker.result_files(actor, res.id)
    tenant = fair_of(broker).tenants([res.tenant_id])
    info = {
        "quantity": res.quantity,
        "method": res.method,
        "parameters": res.parameters,
        "data": res.data,
        "provenance": res.provenance or {},
        "software": res.software,
        "files": [{"name": f.name, "media_type": f.media_type} for f in files],
        "tenant_kind": tenant[0]["kind"] if tenant else None,
        "result_schema": (fair_of(broker).capability_info(res.quantity, res.method) or {}).get(
            "result_schema"
        ),
    }
    _errors, now = metadata_check(broker, info)
    return {
        "result_id": str(res.id),
        "at_arrival": (res.provenance or {}).get("metadata"),
        "now": now,
    }


class PolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    strictness: str = Field(pattern="^(off|report|strict)$")
    data_types: list[str] = Field(
        default_factory=list, description="cycling, impedance, conductivity, simulation"
    )
    required: list[str] = Field(default_factory=list, description="more keys to require")


def _policy_out(p: Any) -> dict[str, Any]:
    return {
        "quantity": p.quantity,
        "method": p.method,
        "strictness": p.strictness,
        "data_types": p.data_types or [],
        "required": p.required or [],
        "updated_by": p.updated_by,
        "updated_at": jsonable(p.updated_at),
    }


@router.get("/metadata/policies", summary="Minimum-metadata policies per capability")
def policies(broker: BrokerDep, _: ActorDep) -> list[dict[str, Any]]:
    return [_policy_out(p) for p in fair_of(broker).policies()]


@router.put("/metadata/policies/{quantity}/{method}", summary="Set a capability's policy (admin)")
def set_policy(
    broker: BrokerDep, actor: AdminDep, quantity: str, method: str, body: PolicyIn
) -> dict[str, Any]:
    bad = [t for t in body.data_types if t not in md.DATA_TYPES]
    if bad:
        raise Invalid(
            f"unknown data type(s) {bad}; one of {', '.join(md.DATA_TYPES)}", ["data_types"]
        )
    row = fair_of(broker).set_policy(
        actor,
        quantity,
        method,
        strictness=body.strictness,
        data_types=body.data_types,
        required=body.required,
    )
    return _policy_out(row)


# ----------------------------------------------------------------------------- archive


@router.get(
    "/campaigns/{campaign_id}/archive",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}},
    summary="The campaign's archive package (RO-Crate zip), as the caller may see it",
)
def campaign_archive(
    broker: BrokerDep,
    actor: ActorDep,
    campaign_id: str,
    data_licence: str = "CC-BY-4.0",
    code_licence: str = "MIT",
    creator: list[str] | None = Query(
        None, description="'Family, Given [ORCID] <e-mail> (Affiliation [ROR id])'"
    ),
    publisher: str | None = Query(None, description="'Name [ROR id] <e-mail or URL>'"),
) -> Response:
    """The RO-Crate of what the caller may see of the campaign (restricted items made
    findable appear as metadata alone). Versioned per caller: ``scope`` ``user:NAME``."""
    from bigmap.archive import ArchiveError, export_campaign

    cid = parse_id(campaign_id, "campaign")
    broker.get_campaign(actor, cid)
    with tempfile.TemporaryDirectory(prefix="bigmap-archive-") as tmp:
        out = Path(tmp) / f"campaign-{cid}.zip"
        try:
            res = export_campaign(
                fair_of(broker),
                cid,
                out,
                actor=actor,
                scope="all" if actor.is_admin else f"user:{actor.name}",
                data_licence=data_licence,
                code_licence=code_licence,
                creators=creator,
                publisher=publisher,
                created_by=actor.name,
            )
        except (ArchiveError, ValueError) as exc:
            raise Invalid(str(exc), []) from None
        content = out.read_bytes()
    return Response(
        content=content,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="campaign-{cid}-{res.version}.zip"',
            "X-Bigmap-Version": res.version,
            "X-Content-SHA256": res.sha256,
        },
    )
