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

import json
import logging
import re
import tempfile
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


@router.api_route("/sparql", methods=["GET", "POST"], summary="SPARQL over the exported graph")
async def sparql_query(
    broker: BrokerDep,
    actor: ActorDep,
    request: Request,
    query: str | None = Query(None, description="the SPARQL query (GET)"),
    campaign_id: str | None = Query(None, description="only this campaign's graph"),
    limit: int = Query(5000, ge=1, le=100000, description="newest requests/results included"),
) -> Any:
    """Read-only SPARQL (SELECT, ASK, CONSTRUCT, DESCRIBE) over the graph of everything the
    caller may see. POST the query as ``application/sparql-query``, as a form field or as
    JSON ``{"query": ...}``. SERVICE and FROM are refused (the graph is local). Results in
    the SPARQL 1.1 JSON format."""
    text = query
    if request.method == "POST" and not text:
        ctype = request.headers.get("content-type", "")
        raw = await request.body()
        if "json" in ctype:
            try:
                text = json.loads(raw or b"{}").get("query")
            except (ValueError, AttributeError):
                raise Invalid('the body is not JSON {"query": ...}', ["body"]) from None
        elif "form" in ctype:
            form = await request.form()
            text = form.get("query")  # type: ignore[assignment]
        else:
            text = raw.decode("utf-8", "replace")
    if not text:
        raise Invalid("no query: pass ?query=... or POST it", ["query"])
    try:
        sparql.prepare(text)
    except sparql.QueryError as exc:
        raise Invalid(str(exc), ["query"]) from None
    cid = parse_id(campaign_id, "campaign") if campaign_id else None
    graph = await run_in_threadpool(store_graph, broker, actor, campaign=cid, limit=limit)
    try:
        out = await run_in_threadpool(sparql.run, graph, text)
    except sparql.QueryError as exc:
        raise Invalid(str(exc), ["query"]) from None
    if "turtle" in out:
        return Response(content=out["turtle"], media_type=TURTLE)
    return Response(content=json.dumps(out), media_type="application/sparql-results+json")


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
    creator: list[str] | None = Query(None, description="'Family, Given [ORCID] (Affiliation)'"),
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
