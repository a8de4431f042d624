"""SPARQL over exported graphs: read-only, offline (no SERVICE, no FROM of remote graphs),
with bigmap's prefixes declared; results in the formats of the SPARQL 1.1 Protocol chosen by
the client's ``Accept`` (JSON, XML, CSV, TSV for SELECT and ASK; Turtle, JSON-LD, N-Triples,
RDF/XML for CONSTRUCT and DESCRIBE), with a cap on the rows returned."""

from __future__ import annotations

import json
from dataclasses import dataclass
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


MAX_QUERY_CHARS = 65536


def prepare(text: str, max_chars: int = MAX_QUERY_CHARS) -> Any:
    """Parse a query; ``QueryError`` for a syntax error, an update, SERVICE or FROM."""
    import rdflib.plugins.sparql as sp
    from rdflib.plugins.sparql.parserutils import CompValue

    sp.SPARQL_LOAD_GRAPHS = False  # never fetch FROM <url> graphs
    if not text or not text.strip():
        raise QueryError("empty query")
    if len(text) > max_chars:
        raise QueryError(f"the query is longer than {max_chars} characters")
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


# media types of the SPARQL 1.1 Query Results formats and of RDF graphs, by preference
RESULTS = {
    "application/sparql-results+json": "json",
    "application/json": "json",
    "application/sparql-results+xml": "xml",
    "application/xml": "xml",
    "text/csv": "csv",
    "text/tab-separated-values": "tsv",
}
GRAPHS = {
    "text/turtle": "turtle",
    "application/ld+json": "json-ld",
    "application/n-triples": "nt",
    "application/rdf+xml": "xml",
}
CONTENT_TYPE = {
    "json": "application/sparql-results+json",
    "xml": "application/sparql-results+xml",
    "csv": "text/csv; charset=utf-8",
    "tsv": "text/tab-separated-values; charset=utf-8",
    "turtle": "text/turtle",
    "json-ld": "application/ld+json",
    "nt": "application/n-triples",
}


class NotAcceptable(QueryError):
    """No format the client accepts fits the query's kind."""


def negotiate(accept: str | None, kind: str) -> str:
    """The format to answer a ``kind`` query (SELECT, ASK, CONSTRUCT, DESCRIBE) for an
    ``Accept`` header (q-values honoured; none or ``*/*``: JSON, or Turtle for graphs)."""
    table = GRAPHS if kind in ("CONSTRUCT", "DESCRIBE") else RESULTS
    default = "turtle" if table is GRAPHS else "json"
    if kind == "ASK":
        table = {k: v for k, v in table.items() if v in ("json", "xml")}
    if not accept or not accept.strip():
        return default
    ranked = []
    for i, part in enumerate(accept.split(",")):
        fields = [f.strip() for f in part.split(";")]
        media, q = fields[0].lower(), 1.0
        for f in fields[1:]:
            if f.startswith("q="):
                try:
                    q = float(f[2:])
                except ValueError:
                    q = 0.0
        if q > 0:
            ranked.append((-q, i, media))
    for _, _, media in sorted(ranked):
        if media in table:
            return table[media]
        if media in ("*/*", "application/*", "text/*"):
            prefix = media.split("/")[0]
            if prefix == "*" or any(k.startswith(prefix + "/") for k in table):
                for k, v in table.items():
                    if prefix in ("*", k.split("/")[0]):
                        return v
    raise NotAcceptable(
        f"no acceptable format for a {kind} query: one of {', '.join(sorted(set(table)))}"
    )


@dataclass
class Answer:
    body: bytes
    media_type: str
    kind: str
    rows: int
    truncated: bool = False


def _tsv(variables: list[Any], rows: list[Any]) -> bytes:
    """SPARQL 1.1 Query Results TSV: RDF terms in Turtle syntax, tab-separated."""

    def cell(term: Any) -> str:
        if term is None:
            return ""
        return term.n3().replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")

    lines = ["\t".join(f"?{v}" for v in variables)]
    for row in rows:
        lines.append("\t".join(cell(row.get(v)) for v in variables))
    return ("\n".join(lines) + "\n").encode()


def run(
    graph: Any,
    text: str,
    *,
    limit: int = 10000,
    accept: str | None = None,
    fmt: str | None = None,
) -> dict[str, Any] | Answer:
    """Run a SELECT / ASK / CONSTRUCT / DESCRIBE query. With neither ``accept`` nor ``fmt``:
    the W3C SPARQL 1.1 JSON results (a dict) for SELECT and ASK, ``{"turtle": ...}`` for
    graph results. Otherwise an ``Answer`` in the negotiated format. At most ``limit`` rows
    (or triples) are returned; ``truncated`` says when there were more."""
    query = prepare(text)
    kind = _kind(query)
    legacy = accept is None and fmt is None
    chosen = fmt or negotiate(accept, kind)
    try:
        result = graph.query(query)
        if kind == "ASK":
            answer = bool(result.askAnswer)
            if legacy:
                return {"head": {}, "boolean": answer}
            if chosen == "xml":
                body = result.serialize(format="xml")
            else:
                body = json.dumps({"head": {}, "boolean": answer}).encode()
            return Answer(body, CONTENT_TYPE[chosen], kind, 1)
        if kind in ("CONSTRUCT", "DESCRIBE"):
            import rdflib

            out = rdflib.Graph(bind_namespaces="none")
            for prefix, ns in PREFIXES.items():
                out.bind(prefix, ns, override=True)
            n, truncated = 0, False
            for t in result:
                if n >= limit:
                    truncated = True
                    break
                out.add(t)
                n += 1
            if legacy:
                return {"turtle": out.serialize(format="turtle"), "triples": n}
            body = out.serialize(format=chosen, encoding="utf-8")
            return Answer(body, CONTENT_TYPE[chosen], kind, n, truncated)
        rows = []
        truncated = False
        variables = list(result.vars or [])
        for row in result:
            if len(rows) >= limit:
                truncated = True
                break
            rows.append({v: row[v] for v in variables if row[v] is not None})
    except QueryError:
        raise
    except Exception as exc:
        if type(exc).__name__ == "QueryStopped":
            raise
        raise QueryError(f"the query failed: {exc}") from None
    if legacy or chosen == "json":
        out_json: dict[str, Any] = {
            "head": {"vars": [str(v) for v in variables]},
            "results": {"bindings": [_json_row(r) for r in rows]},
        }
        if truncated:
            out_json["truncated"] = True
        if legacy:
            return out_json
        return Answer(
            json.dumps(out_json).encode(), CONTENT_TYPE["json"], kind, len(rows), truncated
        )
    if chosen == "tsv":
        body = _tsv(variables, rows)
    else:
        from rdflib.query import Result

        res = Result("SELECT")
        res.vars = variables
        res.bindings = rows
        body = res.serialize(format=chosen, encoding="utf-8")
    return Answer(body, CONTENT_TYPE[chosen], kind, len(rows), truncated)


def _json_row(row: dict[str, Any]) -> dict[str, Any]:
    """One binding in the SPARQL 1.1 Query Results JSON format."""
    import rdflib

    out: dict[str, Any] = {}
    for var, term in row.items():
        if isinstance(term, rdflib.URIRef):
            out[str(var)] = {"type": "uri", "value": str(term)}
        elif isinstance(term, rdflib.BNode):
            out[str(var)] = {"type": "bnode", "value": str(term)}
        elif isinstance(term, rdflib.Literal):
            cell: dict[str, Any] = {"type": "literal", "value": str(term)}
            if term.language:
                cell["xml:lang"] = term.language
            elif term.datatype:
                cell["datatype"] = str(term.datatype)
            out[str(var)] = cell
    return out


def _kind(query: Any) -> str:
    name = query.algebra.name
    return {
        "SelectQuery": "SELECT",
        "AskQuery": "ASK",
        "ConstructQuery": "CONSTRUCT",
        "DescribeQuery": "DESCRIBE",
    }.get(name, "SELECT")


def rows(result: dict[str, Any]) -> list[dict[str, str]]:
    """SELECT results as plain ``{variable: value}`` rows."""
    return [
        {k: v.get("value") for k, v in b.items()}
        for b in result.get("results", {}).get("bindings", [])
    ]
