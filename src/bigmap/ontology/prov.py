"""A provenance graph (``bigmap.store.fair.ProvBundle``: nodes and relations as plain data)
in W3C PROV: PROV-JSON (the W3C member submission's layout: ``entity``, ``activity``,
``agent`` and one map per relation) and PROV-O as JSON-LD; and a walk from a result back to
its raw files."""

from __future__ import annotations

import json
from typing import Any

from bigmap.ontology.jsonld import context
from bigmap.ontology.vocab import BIGMAP, PROV

PREFIX = {
    "prov": PROV,
    "uuid": "urn:uuid:",
    "software": "urn:bigmap:software:",
    "user": "urn:bigmap:user:",
    "bigmap": BIGMAP,
    "schema": "https://schema.org/",
    "dcterms": "http://purl.org/dc/terms/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}

# relation -> (PROV-JSON section, subject role, object role, PROV-O property)
RELATIONS: dict[str, tuple[str, str, str, str]] = {
    "wasGeneratedBy": ("wasGeneratedBy", "prov:entity", "prov:activity", "prov:wasGeneratedBy"),
    "used": ("used", "prov:activity", "prov:entity", "prov:used"),
    "wasAssociatedWith": (
        "wasAssociatedWith",
        "prov:activity",
        "prov:agent",
        "prov:wasAssociatedWith",
    ),
    "wasAttributedTo": ("wasAttributedTo", "prov:entity", "prov:agent", "prov:wasAttributedTo"),
    "wasDerivedFrom": (
        "wasDerivedFrom",
        "prov:generatedEntity",
        "prov:usedEntity",
        "prov:wasDerivedFrom",
    ),
    "wasRevisionOf": (
        "wasDerivedFrom",
        "prov:generatedEntity",
        "prov:usedEntity",
        "prov:wasRevisionOf",
    ),
    "wasInformedBy": ("wasInformedBy", "prov:informed", "prov:informant", "prov:wasInformedBy"),
    "actedOnBehalfOf": (
        "actedOnBehalfOf",
        "prov:delegate",
        "prov:responsible",
        "prov:actedOnBehalfOf",
    ),
    "wasInfluencedBy": (
        "wasInfluencedBy",
        "prov:influencee",
        "prov:influencer",
        "prov:wasInfluencedBy",
    ),
    # bigmap's own links (no PROV relation says exactly this)
    "requestedBy": ("wasAssociatedWith", "prov:activity", "prov:agent", "bigmap:requestedBy"),
    "requestedOnBehalfOf": (
        "wasAssociatedWith",
        "prov:activity",
        "prov:agent",
        "bigmap:requestedOnBehalfOf",
    ),
    "isPartOf": ("wasInformedBy", "prov:informed", "prov:informant", "dcterms:isPartOf"),
    "recomputationOf": (
        "wasInfluencedBy",
        "prov:influencee",
        "prov:influencer",
        "bigmap:recomputationOf",
    ),
}

_TIME_ATTRS = {
    "created_at": "dcterms:created",
    "generated_at": "prov:generatedAtTime",
    "started_at": "prov:startedAtTime",
    "ended_at": "prov:endedAtTime",
}
_JSON_ATTRS = {"parameters", "data", "hyperparameters", "methods"}


def _qname(node_id: str) -> str:
    for prefix, ns in PREFIX.items():
        if node_id.startswith(ns):
            return f"{prefix}:{node_id[len(ns) :]}"
    return node_id


def _jsonable(v: Any) -> Any:
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    return v if isinstance(v, str | int | float | bool) or v is None else str(v)


def _attrs(node: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"prov:type": [t for t in node["types"] if not t.startswith("prov:")]}
    for k, v in node["attrs"].items():
        if k in _TIME_ATTRS:
            out[_TIME_ATTRS[k]] = {"$": _jsonable(v), "type": "xsd:dateTime"}
        elif k in _JSON_ATTRS:
            out[f"bigmap:{k}"] = json.dumps(_jsonable(v), sort_keys=True)
        elif k == "name":
            out["prov:label"] = v
        else:
            out[f"bigmap:{k}"] = _jsonable(v)
    if not out["prov:type"]:
        del out["prov:type"]
    return out


def prov_json(bundle: Any) -> dict[str, Any]:
    """PROV-JSON (https://www.w3.org/submissions/prov-json/) of a provenance bundle."""
    doc: dict[str, Any] = {"prefix": dict(PREFIX)}
    for node in bundle.nodes.values():
        doc.setdefault(node["kind"], {})[_qname(node["id"])] = _attrs(node)
    for i, (rel, subj, obj) in enumerate(bundle.relations):
        section, srole, orole, prop = RELATIONS[rel]
        record: dict[str, Any] = {srole: _qname(subj), orole: _qname(obj)}
        if rel == "wasRevisionOf":
            record["prov:type"] = "prov:Revision"
        elif prop.startswith("bigmap:") or prop.startswith("dcterms:"):
            record["prov:type"] = prop
        doc.setdefault(section, {})[f"_:{section}{i}"] = record
    doc["bigmap:root"] = _qname(bundle.root)
    return doc


def prov_jsonld(bundle: Any) -> dict[str, Any]:
    """PROV-O as JSON-LD (context inline) of a provenance bundle."""
    nodes: dict[str, dict[str, Any]] = {}
    for node in bundle.nodes.values():
        out: dict[str, Any] = {"@id": node["id"], "@type": list(node["types"])}
        for k, v in node["attrs"].items():
            if k in _TIME_ATTRS:
                out[_TIME_ATTRS[k]] = _jsonable(v)
            elif k in _JSON_ATTRS:
                out[f"bigmap:{k}"] = {"@value": _jsonable(v), "@type": "@json"}
            elif k == "name":
                out["schema:name"] = v
            elif k == "version":
                out["schema:softwareVersion"] = v
            else:
                out[f"bigmap:{k}"] = _jsonable(v)
        nodes[node["id"]] = out
    for rel, subj, obj in bundle.relations:
        prop = RELATIONS[rel][3]
        node = nodes.setdefault(subj, {"@id": subj})
        node.setdefault(prop, [])
        if {"@id": obj} not in node[prop]:
            node[prop].append({"@id": obj})
    return {"@context": context(), "@graph": list(nodes.values())}


def walk_back(bundle: Any, start: str | None = None) -> dict[str, list[str]]:
    """Every node reachable from ``start`` (default: the root) along the relations, as
    ``{node id: the path of node ids from start}`` (shortest paths)."""
    start = start or bundle.root
    out_edges: dict[str, list[str]] = {}
    for _rel, subj, obj in bundle.relations:
        out_edges.setdefault(subj, []).append(obj)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for n in frontier:
            for o in out_edges.get(n, []):
                if o not in paths:
                    paths[o] = [*paths[n], o]
                    nxt.append(o)
        frontier = nxt
    return paths


def raw_files(bundle: Any) -> list[dict[str, Any]]:
    """The raw files a result was computed from, however deep, with the path to each."""
    paths = walk_back(bundle)
    return [
        {**bundle.nodes[n]["attrs"], "id": n, "path": paths[n]}
        for n in paths
        if n in bundle.nodes and "bigmap:RawFile" in bundle.nodes[n]["types"]
    ]
