"""SPARQL over exported graphs: read-only, offline (no SERVICE, no FROM of remote graphs),
with bigmap's prefixes declared."""

from __future__ import annotations

import json
from typing import Any

from bigmap.ontology.vocab import PREFIXES


class QueryError(ValueError):
    """A query that is malformed or not allowed (with the reason)."""


def _walk(node: Any, seen: set[int]) -> Any:
    """Every algebra node of a parsed query."""
    if id(node) in seen:
        return
    seen.add(id(node))
    yield node
    if isinstance(node, dict):
        for v in node.values():
            yield from _walk(v, seen)
    elif isinstance(node, list | tuple):
        for v in node:
            yield from _walk(v, seen)


def prepare(text: str) -> Any:
    """Parse a query; ``QueryError`` for a syntax error, an update, SERVICE or FROM."""
    import rdflib.plugins.sparql as sp
    from rdflib.plugins.sparql.parserutils import CompValue

    sp.SPARQL_LOAD_GRAPHS = False  # never fetch FROM <url> graphs
    if not text or not text.strip():
        raise QueryError("empty query")
    try:
        query = sp.prepareQuery(text, initNs=PREFIXES)
    except Exception as exc:  # pyparsing errors have several types
        raise QueryError(f"not a valid SPARQL query: {exc}") from None
    for node in _walk(query.algebra, set()):
        if isinstance(node, CompValue) and node.name in ("ServiceGraphPattern",):
            raise QueryError("SERVICE (federated queries) is not allowed: the graph is local")
    if query.algebra.get("datasetClause"):
        raise QueryError("FROM / FROM NAMED is not allowed: the query runs on the exported graph")
    return query


def run(graph: Any, text: str, *, limit: int = 10000) -> dict[str, Any]:
    """Run a SELECT / ASK / CONSTRUCT / DESCRIBE query. Returns the W3C SPARQL 1.1 JSON
    results format for SELECT and ASK, ``{"turtle": ...}`` for graph results."""
    query = prepare(text)
    try:
        result = graph.query(query)
    except Exception as exc:
        raise QueryError(f"the query failed: {exc}") from None
    if result.type == "ASK":
        return {"head": {}, "boolean": bool(result.askAnswer)}
    if result.type in ("CONSTRUCT", "DESCRIBE"):
        return {"turtle": result.graph.serialize(format="turtle"), "triples": len(result.graph)}
    out = json.loads(result.serialize(format="json"))
    rows = out.get("results", {}).get("bindings", [])
    if len(rows) > limit:
        out["results"]["bindings"] = rows[:limit]
        out["truncated"] = True
    return out


def rows(result: dict[str, Any]) -> list[dict[str, str]]:
    """SELECT results as plain ``{variable: value}`` rows."""
    return [
        {k: v.get("value") for k, v in b.items()}
        for b in result.get("results", {}).get("bindings", [])
    ]
