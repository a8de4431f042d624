"""bigmap's JSON-LD checked by an independent JSON-LD processor: pyld (the JSON-LD 1.1 API
in Python, Digital Bazaar) turns a document into RDF, and the triples must be the same as
those of bigmap's own expander (``bigmap.ontology.jsonld.to_graph``), with no key of the
document dropped (pyld drops, silently, every key its context does not map to an IRI).

Offline: the document loader serves the contexts bigmap knows (its own, the RO-Crate 1.3
context the ``rocrate`` package ships) and refuses every other URL, never the network.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

RO_CRATE_CONTEXT = "https://w3id.org/ro/crate/1.3/context"


class OfflineContextError(ValueError):
    """A document names a remote context that is not served locally."""


@lru_cache(maxsize=1)
def local_documents() -> dict[str, dict[str, Any]]:
    """URL -> JSON-LD document, for the contexts served offline."""
    import rocrate

    crate_ctx = json.loads((Path(rocrate.__file__).parent / "data" / "ro-crate.jsonld").read_text())
    return {RO_CRATE_CONTEXT: crate_ctx}


def document_loader(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """A pyld document loader that never uses the network."""
    doc = local_documents().get(url) or local_documents().get(url.rstrip("/"))
    if doc is None:
        raise OfflineContextError(f"remote context {url!r} is not served offline")
    return {
        "contextUrl": None,
        "documentUrl": url,
        "document": doc,
        "contentType": "application/ld+json",
    }


def pyld_graph(document: dict[str, Any]) -> Any:
    """The RDF of a document by pyld, as an rdflib graph."""
    import rdflib
    from pyld import jsonld

    nquads = jsonld.to_rdf(
        document,
        {"format": "application/n-quads", "documentLoader": document_loader, "base": ""},
    )
    g = rdflib.Graph(bind_namespaces="none")
    g.parse(data=nquads, format="nt")
    return g


def dropped_keys(document: dict[str, Any]) -> list[str]:
    """Keys of the document that pyld expands to nothing (not terms, compact IRIs or IRIs
    under its context): data that would be lost to any JSON-LD consumer."""
    from pyld import jsonld

    keys: set[str] = set()
    ctx = document.get("@context", {})
    json_terms = {
        k
        for c in (ctx if isinstance(ctx, list) else [ctx])
        if isinstance(c, dict)
        for k, v in c.items()
        if isinstance(v, dict) and v.get("@type") == "@json"
    }

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for v in node:
                walk(v)
        elif isinstance(node, dict) and "@value" not in node:
            for k, v in node.items():
                if not k.startswith("@"):
                    keys.add(k)
                    if k not in json_terms:
                        walk(v)
                elif k in ("@graph", "@list", "@set", "@included"):
                    walk(v)

    walk({k: v for k, v in document.items() if k != "@context"})
    if not keys:
        return []
    ordered = sorted(keys)
    probe = {"@context": document.get("@context", {}), "@id": "urn:bigmap:probe"}
    for i, k in enumerate(ordered):
        probe[k] = {"@id": f"urn:bigmap:probe:{i}"}
    expanded = jsonld.expand(probe, {"documentLoader": document_loader})
    kept = set()
    for node in expanded:
        for _prop, values in node.items():
            for v in values if isinstance(values, list) else [values]:
                text = json.dumps(v)
                for i in range(len(ordered)):
                    if f'"urn:bigmap:probe:{i}"' in text:
                        kept.add(i)
    return [k for i, k in enumerate(ordered) if i not in kept]


def _canonical_doubles(g: Any) -> Any:
    """xsd:double literals in the canonical form JSON-LD 1.1 gives them (section 8.6 of the
    API: 16 significant digits, ``%1.15E``), so that a double bigmap writes with all 17
    digits and pyld's rounded one compare as the same triple."""
    import re

    import rdflib

    out = rdflib.Graph(bind_namespaces="none")
    for s, p, o in g:
        if isinstance(o, rdflib.Literal) and o.datatype == rdflib.XSD.double:
            text = re.sub(r"(\d)0*E\+?(-)?0*(\d)", r"\1E\2\3", f"{float(o):1.15E}")
            o = rdflib.Literal(text, datatype=rdflib.XSD.double, normalize=False)
        out.add((s, p, o))
    return out


def compare(document: dict[str, Any]) -> dict[str, list[str]]:
    """Where pyld and bigmap disagree on a document: ``dropped`` keys, triples
    ``only_pyld`` and ``only_bigmap`` (blank nodes matched by graph isomorphism). Empty
    lists everywhere: the same triples."""
    from rdflib.compare import graph_diff, to_isomorphic

    from bigmap.ontology.jsonld import to_graph

    ours = _canonical_doubles(to_graph(document, labels=False))
    theirs = _canonical_doubles(pyld_graph(document))
    both, only_ours, only_theirs = graph_diff(to_isomorphic(ours), to_isomorphic(theirs))

    def text(g: Any) -> list[str]:
        return sorted(f"{s.n3()} {p.n3()} {o.n3()}" for s, p, o in g)

    return {
        "dropped": dropped_keys(document),
        "only_pyld": text(only_theirs),
        "only_bigmap": text(only_ours),
    }
