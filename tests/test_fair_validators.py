"""bigmap's FAIR outputs, checked by the community's own validators (issue 21), offline:

- archives by roc-validator (RO-Crate 1.3, REQUIRED and RECOMMENDED), scopes ``all`` and
  ``public``, on a campaign with raw files, tables, sub-requests and FINALES chemistry;
- every JSON-LD document the server serves, expanded by pyld to the same triples as bigmap's
  own expander, with no key dropped;
- the PROV documents loaded by the W3C PROV library (``prov``), their PROV-O round-tripped;
- the SPARQL endpoint driven by SPARQLWrapper (SPARQL 1.1 Protocol) and its bounds;
- the InvenioRDM record against InvenioRDM's own JSON Schema.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
import zipfile
from pathlib import Path

import httpx
import pytest
import rdflib
from rdflib.compare import isomorphic
from typer.testing import CliRunner

from bigmap.archive import invenio
from bigmap.archive.checks import validate_rocrate
from bigmap.cli import app as cli
from bigmap.ontology.ldcheck import compare, dropped_keys
from tests.conftest import FINALES
from tests.fair_probe import build_chain, probe_tenant

ORCID = "0000-0002-1825-0097"  # ORCID's documented example iD
ROR = "02en5vm52"  # Sorbonne Université (Research Organization Registry)
CREATOR = f"Curie, Marie [{ORCID}] <marie@example.org> (Sorbonne Université [{ROR}])"
runner = CliRunner()


def example(kind: str, path: str) -> dict:
    return json.loads((FINALES / "examples" / kind / path).read_text())


@pytest.fixture(scope="module")
def world(live_one):
    """A campaign with raw files, sub-requests, a FINALES conductivity measurement (an
    electrolyte formulation) and a FINALES cell assembly (a cell), and a confidential
    request of bob's."""
    alice = live_one.client("alice")
    tid = probe_tenant(alice, f"probe-validators-{uuid.uuid4().hex[:6]}")
    lab = alice.register_tenant(
        {
            "name": f"lab-{uuid.uuid4().hex[:6]}",
            "kind": "instrument",
            "software": {"name": "station", "version": "1.2"},
            "limitations": [
                {"quantity": "conductivity", "method": "two_electrode", "limitations": {}},
                {"quantity": "cell_assembly", "method": "autobass_assembly", "limitations": {}},
            ],
        }
    )["id"]
    chain = build_chain(alice, tid, "validators", {"access": "public"})
    out = {"chain": chain, "tenant": tid, "lab": lab}
    ex = example("results", "conductivity/two_electrode.json")
    req = alice.create_request(
        "conductivity",
        "two_electrode",
        ex["parameters"]["two_electrode"],
        tenant_id=lab,
        campaign_id=chain.campaign,
    )
    res = alice.post_result(req["id"], lab, ex["data"], method="two_electrode")
    out["conductivity"] = {"request": req["id"], "result": res["id"]}
    # FINALES' cell assembly request (its example result breaks its own schema)
    ex = example("requests", "cell_assembly/autobass_assembly.json")
    req = alice.create_request(
        "cell_assembly",
        "autobass_assembly",
        ex["parameters"]["autobass_assembly"],
        tenant_id=lab,
        campaign_id=chain.campaign,
    )
    out["cell_assembly"] = {"request": req["id"]}
    bob = live_one.client("bob")
    btid = probe_tenant(bob, f"probe-bob-{uuid.uuid4().hex[:6]}")
    secret = f"bob-secret-{uuid.uuid4().hex[:8]}"
    out["bob_secret"] = secret
    out["bob_request"] = bob.create_request(
        "fair_probe", "manual", {"x": 9, "tag": secret}, tenant_id=btid, access="confidential"
    )["id"]
    return out


def export(live_one, world, tmp_path: Path, scope: str, *creators: str) -> tuple[Path, str]:
    out = tmp_path / f"{scope}.zip"
    args = ["archive", "export", world["chain"].campaign, "--out", str(out)]
    args += ["--db", live_one.server.db_url, "--scope", scope]
    for c in creators:
        args += ["--creator", c]
    res = runner.invoke(cli, args)
    assert res.exit_code == 0, res.output
    return out, res.output


# ----------------------------------------------------------------------------- RO-Crate


@pytest.mark.parametrize("scope", ["all", "public"])
def test_archive_passes_roc_validator(live_one, world, tmp_path, scope):
    out, _ = export(live_one, world, tmp_path, scope, CREATOR)
    with zipfile.ZipFile(out) as z:
        names = set(z.namelist())
    # a real campaign: raw files, tables, sub-requests, FINALES results
    assert any(n.startswith("files/") for n in names)
    assert "tables/results.parquet" in names and "tables/requests.parquet" in names
    verdict = validate_rocrate(out)
    assert verdict.findings == [], verdict.summary
    assert verdict.passed and "no findings" in verdict.summary
    checks = int(verdict.summary.split(": ")[1].split(" checks")[0])
    assert checks > 100  # the whole 1.3 profile ran, REQUIRED and RECOMMENDED


def test_roc_validator_sees_what_is_missing(live_one, world, tmp_path):
    """The validator is not a rubber stamp: a creator without ORCID or contact, and a crate
    whose key its context does not define, are reported."""
    out, _ = export(live_one, world, tmp_path, "all", "Lab Robot")
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(out) as src, zipfile.ZipFile(broken, "w") as dst:
        for n in src.namelist():
            data = src.read(n)
            if n == "ro-crate-metadata.json":
                crate = json.loads(data)
                crate["@context"] = crate["@context"][0]  # the extended context dropped
                data = json.dumps(crate).encode()
            dst.writestr(n, data)
    verdict = validate_rocrate(broken)
    checks = {(f["level"], f["check"]) for f in verdict.findings}
    assert ("RECOMMENDED", "Person: SHOULD have ORCID identifier") in checks
    assert (
        "RECOMMENDED",
        "Root Data Entity: at least one author/publisher SHOULD have contactPoint",
    ) in checks
    required = [f for f in verdict.findings if f["level"] == "REQUIRED"]
    assert required and any("bigmapFormat" in f["message"] for f in required)
    assert not verdict.passed


# ----------------------------------------------------------------------------- InvenioRDM


def test_invenio_record_validates_against_inveniordm_schema(live_one, world, tmp_path):
    out, _ = export(live_one, world, tmp_path, "all", CREATOR)
    rec = json.loads(out.with_name("all.invenio.json").read_text())
    assert invenio.validate(rec) == []
    bad = json.loads(json.dumps(rec))
    bad["metadata"]["creators"][0]["person_or_org"]["type"] = "alien"
    bad["metadata"]["resource_type"] = "dataset"
    bad["access"]["record"] = "secret"
    problems = invenio.validate(bad)
    assert any(p.startswith("metadata.creators.0.person_or_org.type") for p in problems)
    assert any(p.startswith("metadata.resource_type") for p in problems)
    assert any(p.startswith("access.record") for p in problems)


# ----------------------------------------------------------------------------- JSON-LD


def test_every_served_jsonld_expands_the_same_with_pyld(live_one, world):
    chain = world["chain"]
    with live_one.client("alice") as c:
        caps = {
            (x["quantity"], x["method"]): x["id"] for x in c.call("GET", "/api/v1/capabilities")
        }
    paths = [
        f"/api/v1/jsonld/results/{chain.result}",
        f"/api/v1/jsonld/results/{world['conductivity']['result']}",
        f"/api/v1/jsonld/requests/{chain.child}",
        f"/api/v1/jsonld/requests/{world['conductivity']['request']}",
        f"/api/v1/jsonld/requests/{world['cell_assembly']['request']}",
        f"/api/v1/jsonld/campaigns/{chain.campaign}",
        f"/api/v1/jsonld/tenants/{world['lab']}",
        f"/api/v1/jsonld/capabilities/{caps[('conductivity', 'two_electrode')]}",
        "/api/v1/capabilities/cell_assembly/autobass_assembly.jsonld",
        f"/api/v1/results/{chain.result}.jsonld",
        f"/api/v1/rdf/campaigns/{chain.campaign}?format=jsonld",
        f"/api/v1/provenance/{world['conductivity']['result']}?format=jsonld",
        f"/api/v1/provenance/{chain.result}?format=jsonld",
    ]
    for path in paths:
        r = httpx.get(live_one.url + path, headers=live_one.headers("alice"), timeout=60)
        assert r.status_code == 200, (path, r.text[:300])
        doc = r.json()
        diff = compare(doc)
        assert diff == {"dropped": [], "only_pyld": [], "only_bigmap": []}, (path, diff)
        from bigmap.ontology.ldcheck import pyld_graph

        assert len(pyld_graph(doc)) > 5, path


def test_pyld_check_catches_dropped_terms_and_disagreements():
    from bigmap.ontology import jsonld as ld

    doc = {
        "@context": ld.context(),
        "@id": "urn:uuid:1",
        "schema:name": "x",
        "notAnything": 3,  # no term, no prefix: a JSON-LD processor drops it
        "bigmap:data": {"a": 1.0},
    }
    assert dropped_keys(doc) == ["notAnything"]
    diff = compare(doc)
    assert diff["dropped"] == ["notAnything"] and diff["only_bigmap"]  # bigmap kept it, wrongly


# ----------------------------------------------------------------------------- PROV


def test_prov_documents_load_in_the_w3c_prov_library(live_one, world):
    from prov.model import ProvDocument

    for rid in (world["chain"].result, world["conductivity"]["result"]):
        h = live_one.headers("alice")
        pj = httpx.get(f"{live_one.url}/api/v1/provenance/{rid}", headers=h, timeout=60).json()
        pj.pop("bigmap:raw_files")
        root = pj.pop("bigmap:root")
        doc = ProvDocument.deserialize(content=json.dumps(pj), format="json")
        records = doc.get_records()
        assert any(str(r.identifier) == f"uuid:{rid}" for r in records if r.identifier)
        assert root == f"uuid:{rid}"
        kinds = {type(r).__name__ for r in records}
        assert {"ProvEntity", "ProvActivity", "ProvGeneration"} <= kinds
        # PROV-JSON written back by prov reads the same
        again = ProvDocument.deserialize(content=doc.serialize(format="json"), format="json")
        assert again == doc
        # PROV-O (Turtle) read by prov, written by it as PROV-O, read again: the same
        ttl = httpx.get(
            f"{live_one.url}/api/v1/provenance/{rid}?format=ttl", headers=h, timeout=60
        ).text
        from_rdf = ProvDocument.deserialize(content=ttl, format="rdf", rdf_format="turtle")
        assert from_rdf.get_records()
        out = from_rdf.serialize(format="rdf", rdf_format="turtle")
        back = ProvDocument.deserialize(content=out, format="rdf", rdf_format="turtle")
        assert back == from_rdf
        g1 = rdflib.Graph().parse(data=out, format="turtle")
        g2 = rdflib.Graph().parse(
            data=back.serialize(format="rdf", rdf_format="turtle"), format="turtle"
        )
        assert isomorphic(g1, g2)
        # and prov's reading of our PROV-O keeps our PROV statements
        ours = rdflib.Graph().parse(data=ttl, format="turtle")
        prov = rdflib.Namespace("http://www.w3.org/ns/prov#")
        for s, p, o in ours.triples((None, prov.wasGeneratedBy, None)):
            assert (s, p, o) in g1


# ----------------------------------------------------------------------------- SPARQL


def sparql_client(live_one, user: str = "alice"):
    from SPARQLWrapper import SPARQLWrapper

    sw = SPARQLWrapper(f"{live_one.url}/api/v1/sparql")
    sw.addCustomHttpHeader("Authorization", f"Bearer {live_one.tokens[user]}")
    return sw


def test_sparql_protocol_with_sparqlwrapper(live_one, world):
    from SPARQLWrapper import (
        CSV,
        GET,
        JSON,
        JSONLD,
        POST,
        POSTDIRECTLY,
        TSV,
        TURTLE,
        URLENCODED,
        XML,
    )

    chain = world["chain"]
    q = f"SELECT ?n WHERE {{ <urn:uuid:{chain.campaign}> schema:name ?n }}"
    for method, enc in ((GET, None), (POST, URLENCODED), (POST, POSTDIRECTLY)):
        for fmt in (JSON, XML, CSV, TSV):
            sw = sparql_client(live_one)
            sw.setMethod(method)
            if enc:
                sw.setRequestMethod(enc)
            sw.setReturnFormat(fmt)
            sw.setQuery(q)
            res = sw.query()
            ctype = res.response.headers["Content-Type"]
            body = res.convert()
            if fmt == JSON:
                assert ctype.startswith("application/sparql-results+json")
                assert body["results"]["bindings"][0]["n"]["value"].startswith("probe campaign")
            elif fmt == XML:
                assert ctype.startswith("application/sparql-results+xml")
                assert "probe campaign" in body.toxml()
            elif fmt == CSV:
                assert ctype.startswith("text/csv")
                assert body.decode().splitlines()[0] == "n" and b"probe campaign" in body
            else:
                assert ctype.startswith("text/tab-separated-values")
                lines = body.decode().splitlines()
                assert lines[0] == "?n" and lines[1].startswith('"probe campaign')
    sw = sparql_client(live_one)
    sw.setQuery(f"ASK {{ <urn:uuid:{chain.result}> a bigmap:Result }}")
    for fmt in (JSON, XML):
        sw.setReturnFormat(fmt)
        body = sw.query().convert()
        assert body["boolean"] is True if fmt == JSON else "true" in body.toxml()
    sw.setQuery("CONSTRUCT { ?s schema:name ?n } WHERE { ?s schema:name ?n }")
    for fmt, media in ((TURTLE, "text/turtle"), (JSONLD, "application/ld+json")):
        sw.setReturnFormat(fmt)
        res = sw.query()
        assert res.response.headers["Content-Type"].startswith(media)
        g = res.convert()
        g = g if isinstance(g, rdflib.Graph) else rdflib.Graph().parse(data=g, format="turtle")
        assert (rdflib.URIRef(f"urn:uuid:{chain.campaign}"), None, None) in g
    sw.setReturnFormat(TURTLE)
    sw.setQuery(f"DESCRIBE <urn:uuid:{chain.result}>")
    g = sw.query().convert()
    g = g if isinstance(g, rdflib.Graph) else rdflib.Graph().parse(data=g, format="turtle")
    assert len(g) > 5


def test_sparql_errors_and_bounds(live_one, world):
    url = f"{live_one.url}/api/v1/sparql"
    h = live_one.headers("alice")

    def post(**kw):
        return httpx.post(url, headers={**h, **kw.pop("headers", {})}, timeout=60, **kw)

    q = "SELECT * WHERE { ?s ?p ?o }"
    # the protocol's errors: 400 malformed, 406 no acceptable format, 415 unknown body
    r = httpx.get(url, params={"query": "SELEC x"}, headers=h)
    assert r.status_code == 400 and "not a valid SPARQL query" in r.text
    r = httpx.get(url, params={"query": q}, headers={**h, "Accept": "image/png"})
    assert r.status_code == 406 and "sparql-results" in r.text
    r = post(content=q, headers={"Content-Type": "application/pdf"})
    assert r.status_code == 415
    r = post(
        content="INSERT DATA { <a:b> <a:c> <a:d> }",
        headers={"Content-Type": "application/sparql-update"},
    )
    assert r.status_code == 400 and "read-only" in r.text
    r = httpx.get(url, params={"query": q, "default-graph-uri": "http://x/"}, headers=h)
    assert r.status_code == 400
    # a JSON body nested 1000 deep (refused by the server's input bounds before SPARQL sees
    # it, 422 like every other route: docs/limits.md), a query over the size limit
    r = post(
        content=b'{"query": ' + b"[" * 1000 + b"]" * 1000 + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 422 and "nested deeper than the limit" in r.text
    r = post(
        content=("SELECT * WHERE { ?s ?p ?o } #" + "x" * 70000).encode(),
        headers={"Content-Type": "application/sparql-query"},
    )
    assert r.status_code == 413
    # the row cap: rows cut, the response says so
    r = httpx.get(url, params={"query": q, "limit": 7}, headers=h)
    assert r.status_code == 200 and r.headers["X-Bigmap-Truncated"] == "true"
    assert len(r.json()["results"]["bindings"]) == 7


def test_sparql_time_limit_and_client_disconnect(live_one, world, monkeypatch):
    """A cross product that would run for minutes: stopped at the time limit (a broker with
    a 2 s limit), and stopped when its client leaves (the server answers the next query at
    once instead of grinding on)."""
    from bigmap.embedded import LocalBroker

    srv = LocalBroker(live_one.server.db_url, env={"BIGMAP_SPARQL_TIMEOUT_SECONDS": "2"})
    srv.start()
    try:
        slow = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"
        r = httpx.get(
            f"{srv.url}/api/v1/sparql",
            params={"query": slow},
            headers=live_one.headers("alice"),
            timeout=60,
        )
        assert r.status_code == 408 and "time limit" in r.text
    finally:
        srv.close()
    # the client goes away: the query stops (the log says so) and the server stays free
    host, port = live_one.url.split("//")[1].split(":")
    from urllib.parse import quote

    raw = (
        f"GET /api/v1/sparql?query={quote(slow)} HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {live_one.tokens['alice']}\r\n\r\n"
    ).encode()
    s = socket.create_connection((host, int(port)))
    s.sendall(raw)
    time.sleep(1.5)
    s.close()
    log = Path(live_one.server.log_path)
    deadline = time.monotonic() + 120  # a bound for a loaded machine, not a timing test
    while "SPARQL query stopped: the client went away" not in log.read_text():
        assert time.monotonic() < deadline, "the abandoned query did not stop"
        time.sleep(0.5)
    r = httpx.get(
        f"{live_one.url}/api/v1/sparql",
        params={"query": "ASK { ?s ?p ?o }"},
        headers=live_one.headers("alice"),
        timeout=60,
    )
    assert r.status_code == 200


def test_sparql_store_follows_changes_and_hides_per_caller(live_one, world):
    """The shared store, as an attacker sees it: bob's confidential request is in no one
    else's view; a result made confidential disappears from others' answers on the next
    query; a new record is in the next answer; a step naming a hidden record is withheld."""
    chain = world["chain"]
    secret = world["bob_secret"]
    everything = "SELECT ?s ?p ?o WHERE { ?s ?p ?o }"

    def dump(user: str) -> str:
        r = httpx.get(
            f"{live_one.url}/api/v1/sparql",
            params={"query": everything},
            headers={**live_one.headers(user), "Accept": "text/tab-separated-values"},
            timeout=120,
        )
        assert r.status_code == 200
        return r.text

    for user in ("alice", "olga"):
        text = dump(user)
        assert secret not in text and world["bob_request"] not in text
    assert secret in dump("bob") and world["bob_request"] in dump("admin")
    # a result made confidential: gone from olga's view at once, still in alice's
    alice = live_one.client("alice")
    alice.call(
        "PATCH",
        f"/api/v1/access/results/{world['conductivity']['result']}",
        json={"access": "confidential"},
    )

    def subjects(text: str) -> set[str]:
        return {line.split("\t", 1)[0] for line in text.splitlines()[1:]}

    res = f"<urn:uuid:{world['conductivity']['result']}>"
    assert res not in subjects(dump("olga"))  # (its request, public, still names it)
    assert res in subjects(dump("alice"))
    # a new request: in the next answer
    new = alice.create_request("fair_probe", "manual", {"x": 77}, tenant_id=world["tenant"])
    assert new["id"] in dump("olga")
    # a planner step naming bob's hidden request is withheld from olga
    ev = alice.add_campaign_event(
        chain.campaign, "observation", {"step": 9, "request_id": world["bob_request"]}
    )
    assert ev["id"] not in dump("olga")
    alice.call(
        "PATCH",
        f"/api/v1/access/results/{world['conductivity']['result']}",
        json={"access": "public"},
    )
