"""Provenance against a live broker with a real worker: the PROV graph of a result walked back
through its sub-requests to the raw files it was computed from, with the tenants, software
and the planner step and model state that proposed it; recomputation from provenance; the
minimum-metadata check when data arrive (report and strict); semantic search; SPARQL over
HTTP and ``bigmap query``."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid

import httpx
import pytest
import rdflib
from typer.testing import CliRunner

from bigmap.cli import app as cli
from bigmap.client import RequestFailed
from bigmap.schemas import formulation as fm
from tests.conftest import FINALES
from tests.fair_probe import probe_tenant
from tests.sample_tenant import tenant as sample

PROV = rdflib.Namespace("http://www.w3.org/ns/prov#")


@pytest.fixture(scope="module")
def worker(live_one):
    """The sample tenant served by alice, three jobs at once (a job waits for its
    sub-requests)."""
    c = live_one.client("alice")
    stop = threading.Event()
    t = threading.Thread(
        target=sample.serve,
        args=(c,),
        kwargs={"stop": stop, "install_signals": False, "poll": 1, "concurrency": 3},
        daemon=True,
    )
    t.start()
    tid = None
    for _ in range(200):
        mine = [x for x in c.tenants() if x["name"] == "sample" and x["owner"] == "alice"]
        if mine and mine[0]["provides"]:
            tid = mine[0]["id"]
            break
        time.sleep(0.05)
    assert tid, "the sample worker did not register"
    yield c, tid
    stop.set()
    t.join(15)


@pytest.fixture(scope="module")
def figure(worker):
    """A campaign step: a model state trained on an earlier result, a proposal, and the
    request it proposed (a sum computed by two sub-requests, each with a raw file)."""
    c, tid = worker
    camp = c.create_campaign("prov campaign", {"objective": "total"}, tenant_id=tid)
    seed = c.create_request(
        "polynomial", "horner", {"x": 0.5, "coefficients": [1, 1]}, tenant_id=tid
    )
    seed_res = c.wait_result(seed["id"], timeout=60)
    state = c.add_campaign_event(
        camp["id"],
        "model_state",
        {
            "step": 1,
            "model": "gp-matern52",
            "hyperparameters": {"lengthscale": 0.7},
            "training_result_ids": [seed_res["id"]],
            "n_train": 1,
        },
    )
    req = c.create_request(
        "polynomial",
        "sum_of_values",
        {"xs": [1.0, 2.0], "coefficients": [1, 0, -1]},
        tenant_id=tid,
        campaign_id=camp["id"],
    )
    proposal = c.add_campaign_event(
        camp["id"],
        "proposal",
        {
            "step": 1,
            "strategy": "botorch",
            "candidates": [{"x": {"xs": [1, 2]}, "request_id": req["id"]}],
        },
        request_ids=[req["id"]],
    )
    res = c.wait_result(req["id"], timeout=120)
    return {
        "campaign": camp,
        "seed": seed_res,
        "state": state,
        "proposal": proposal,
        "request": req,
        "result": res,
        "tenant_id": tid,
    }


def api(live, user, method, path, **kw):
    headers = {"Authorization": f"Bearer {live.tokens[user]}", **kw.pop("headers", {})}
    return httpx.request(method, live.url + path, headers=headers, timeout=120, **kw)


def test_prov_walks_back_from_a_result_to_its_raw_files(live_one, figure):
    res = figure["result"]
    assert res["data"] == {"total": 3.0, "parts": [0.0, 3.0]}
    r = api(live_one, "alice", "GET", f"/api/v1/provenance/{res['id']}")
    assert r.status_code == 200, r.text
    doc = r.json()
    raw = doc["bigmap:raw_files"]
    assert sorted(f["name"] for f in raw) == ["trace.csv", "trace.csv"]
    children = {c["id"] for c in live_one.client("alice").children(figure["request"]["id"])}
    assert len(children) == 2
    for f in raw:
        # result -> its request -> a sub-request's result -> the raw file
        path = f["path"]
        assert (
            path[0] == f"urn:uuid:{res['id']}" and path[1] == f"urn:uuid:{figure['request']['id']}"
        )
        assert len(path) == 4 and path[-1] == f["id"]
        content = live_one.client("alice").download(f["id"].removeprefix("urn:uuid:"))
        assert hashlib.sha256(content).hexdigest() == f["sha256"]
        assert content.startswith(b"x,value\n")
    # PROV-JSON: the sub-requests informed the request, the tenant and software acted
    informed = {(v["prov:informed"], v["prov:informant"]) for v in doc["wasInformedBy"].values()}
    for child in children:
        assert (f"uuid:{figure['request']['id']}", f"uuid:{child}") in informed
    agents = doc["agent"]
    assert agents["software:sample-tenant@1.2.3"]["bigmap:version"] == "1.2.3"
    tenant = agents[f"uuid:{figure['tenant_id']}"]
    assert tenant["prov:label"] == "sample"
    delegations = {
        (v["prov:delegate"], v["prov:responsible"]) for v in doc["actedOnBehalfOf"].values()
    }
    assert (f"uuid:{figure['tenant_id']}", "user:alice") in delegations
    # the planner step that proposed it, the model state it used, the results that trained it
    step = doc["activity"][f"uuid:{figure['proposal']['id']}"]
    assert step["bigmap:strategy"] == "botorch"
    state = doc["entity"][f"uuid:{figure['state']['id']}"]
    assert state["bigmap:model"] == "gp-matern52"
    used = {(v["prov:activity"], v["prov:entity"]) for v in doc["used"].values()}
    assert (f"uuid:{figure['proposal']['id']}", f"uuid:{figure['state']['id']}") in used
    derived = {
        (v["prov:generatedEntity"], v["prov:usedEntity"]) for v in doc["wasDerivedFrom"].values()
    }
    assert (f"uuid:{figure['state']['id']}", f"uuid:{figure['seed']['id']}") in derived


def test_prov_o_jsonld_and_turtle_answer_sparql_paths(live_one, figure):
    res = figure["result"]
    r = api(
        live_one,
        "alice",
        "GET",
        f"/api/v1/provenance/{res['id']}",
        headers={"Accept": "application/ld+json"},
    )
    assert r.headers["content-type"].startswith("application/ld+json")
    g = rdflib.Graph().parse(data=r.text, format="json-ld")
    files = list(g.subjects(rdflib.RDF.type, rdflib.URIRef("urn:bigmap:vocab:RawFile")))
    assert len(files) == 2
    for f in files:
        q = f"ASK {{ <urn:uuid:{res['id']}> prov:wasGeneratedBy/prov:used/prov:wasDerivedFrom <{f}> }}"
        assert g.query(q, initNs={"prov": PROV}).askAnswer
    q = f"""ASK {{ <urn:uuid:{figure["request"]["id"]}> prov:wasInformedBy ?step .
                  ?step prov:used ?state . ?state prov:wasDerivedFrom <urn:uuid:{figure["seed"]["id"]}> }}"""
    assert g.query(q, initNs={"prov": PROV}).askAnswer
    ttl = api(live_one, "alice", "GET", f"/api/v1/provenance/{res['id']}?format=ttl")
    assert ttl.headers["content-type"].startswith("text/turtle")
    assert len(rdflib.Graph().parse(data=ttl.text, format="turtle")) == len(g)
    # a request id answers with its result's provenance; bad ids and formats are clear
    by_req = api(live_one, "alice", "GET", f"/api/v1/provenance/{figure['request']['id']}")
    assert by_req.json()["bigmap:root"] == f"uuid:{res['id']}"
    assert api(live_one, "alice", "GET", f"/api/v1/provenance/{uuid.uuid4()}").status_code == 404
    assert api(live_one, "alice", "GET", "/api/v1/provenance/not-an-id").status_code == 404
    bad = api(live_one, "alice", "GET", f"/api/v1/provenance/{res['id']}?format=pdf")
    assert bad.status_code == 422 and "format" in bad.text


def test_recompute_from_provenance(live_one, figure):
    c = live_one.client("alice")
    orig = figure["result"]
    r = api(
        live_one,
        "alice",
        "POST",
        f"/api/v1/results/{orig['id']}/recompute",
        json={"tenant_id": figure["tenant_id"]},
    )
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["quantity"] == "polynomial" and new["methods"] == ["sum_of_values"]
    assert new["parameters"] == {"sum_of_values": orig["parameters"]}
    again = c.wait_result(new["id"], timeout=120)
    assert again["data"] == orig["data"] and again["sha256"] == orig["sha256"]
    doc = api(live_one, "alice", "GET", f"/api/v1/provenance/{again['id']}").json()
    influences = {
        (v["prov:influencee"], v["prov:influencer"]) for v in doc["wasInfluencedBy"].values()
    }
    assert (f"uuid:{new['id']}", f"uuid:{orig['id']}") in influences
    assert len(doc["bigmap:raw_files"]) == 2  # its own sub-requests' files
    # the same key again returns the first request
    key = {"tenant_id": figure["tenant_id"], "idempotency_key": f"re-{uuid.uuid4()}"}
    a = api(live_one, "alice", "POST", f"/api/v1/results/{orig['id']}/recompute", json=key)
    b = api(live_one, "alice", "POST", f"/api/v1/results/{orig['id']}/recompute", json=key)
    assert a.status_code == 201 and b.status_code == 200 and a.json()["id"] == b.json()["id"]
    # bad paths
    assert (
        api(
            live_one,
            "alice",
            "POST",
            f"/api/v1/results/{uuid.uuid4()}/recompute",
            json={"tenant_id": figure["tenant_id"]},
        ).status_code
        == 404
    )
    r = api(live_one, "alice", "POST", f"/api/v1/results/{orig['id']}/recompute", json={})
    assert r.status_code == 422 and "tenant_id" in r.text
    bob_tenant = probe_tenant(live_one.client("bob"), f"probe-bob-{uuid.uuid4().hex[:6]}")
    r = api(
        live_one,
        "alice",
        "POST",
        f"/api/v1/results/{orig['id']}/recompute",
        json={"tenant_id": bob_tenant},
    )
    assert r.status_code == 403
    r = api(
        live_one,
        "olga",
        "POST",
        f"/api/v1/results/{orig['id']}/recompute",
        json={"tenant_id": figure["tenant_id"]},
    )
    assert r.status_code == 403


def test_minimum_metadata_report_and_strict_policy(live_one, worker):
    c, tid = worker
    # report (the default): stored with the result, what is missing listed
    res = c.wait_result(
        c.create_request("polynomial", "horner", {"x": 1.0, "coefficients": [2]}, tenant_id=tid)[
            "id"
        ],
        60,
    )
    meta = res["provenance"]["metadata"]
    assert meta["strictness"] == "report" and not meta["complete"]
    units = next(m for m in meta["missing"] if m["rule"] == "units")
    assert set(units["paths"]) == {"data.value", "data.derivative"}
    r = api(live_one, "alice", "GET", f"/api/v1/results/{res['id']}/metadata").json()
    assert r["at_arrival"] == meta and r["now"]["missing"] == meta["missing"]
    # policies: admins only, known capabilities, known strictness and data types
    url = "/api/v1/metadata/policies/polynomial/horner"
    body = {"strictness": "strict", "data_types": ["simulation"], "required": ["operator"]}
    assert api(live_one, "alice", "PUT", url, json=body).status_code == 403
    assert (
        api(live_one, "admin", "PUT", "/api/v1/metadata/policies/nope/none", json=body).status_code
        == 404
    )
    assert (
        api(live_one, "admin", "PUT", url, json={**body, "strictness": "harsh"}).status_code == 422
    )
    bad = api(live_one, "admin", "PUT", url, json={**body, "data_types": ["cooking"]})
    assert bad.status_code == 422 and "cooking" in bad.text
    r = api(live_one, "admin", "PUT", url, json=body)
    assert r.status_code == 200 and r.json()["strictness"] == "strict"
    try:
        time.sleep(2.1)  # the broker re-reads policies every 2 s
        req = c.create_request(
            "polynomial", "horner", {"x": 1.0, "coefficients": [3]}, tenant_id=tid
        )
        with pytest.raises(RequestFailed) as err:
            c.wait_result(req["id"], timeout=60)
        text = str(err.value)
        assert "minimum metadata" in text and "operator" in text and "$.data.value" in text
        # the same, posted by hand: 422 with the JSON paths of what is missing
        unsolicited = {
            "tenant_id": tid,
            "quantity": "polynomial",
            "method": "horner",
            "parameters": {"x": 1.0, "coefficients": [4]},
            "data": {"value": 4.0, "derivative": 0.0},
        }
        r = api(live_one, "alice", "POST", "/api/v1/results", json=unsolicited)
        assert r.status_code == 422
        paths = {d["path"] for d in r.json()["detail"]}
        assert {"$.data.value", "$.data.derivative", "$.provenance.operator"} <= paths
        assert all(d["type"] == "missing_metadata" for d in r.json()["detail"])
        ok = {**unsolicited, "provenance": {"operator": "jd"}}
        assert (
            api(live_one, "alice", "POST", "/api/v1/results", json=ok).status_code == 422
        )  # units still
        assert any(
            p["strictness"] == "strict"
            for p in api(live_one, "olga", "GET", "/api/v1/metadata/policies").json()
        )
    finally:
        api(live_one, "admin", "PUT", url, json={"strictness": "report"})
    time.sleep(2.1)
    done = c.wait_result(
        c.create_request("polynomial", "horner", {"x": 2.0, "coefficients": [3]}, tenant_id=tid)[
            "id"
        ],
        60,
    )
    assert done["data"]["value"] == 3.0


def test_semantic_search_by_emmo_class(live_one):
    c = live_one.client("alice")
    probe = probe_tenant(c, f"probe-alice-{uuid.uuid4().hex[:6]}")
    # a conductivity result posted by hand (FINALES example data), and a probe result
    ex = json.loads((FINALES / "examples/results/conductivity/two_electrode.json").read_text())
    tenant = c.register_tenant(
        {
            "name": f"station-{uuid.uuid4().hex[:6]}",
            "kind": "instrument",
            "limitations": [
                {"quantity": "conductivity", "method": "two_electrode", "limitations": {}}
            ],
        }
    )
    cond = c.post_result(
        None,
        tenant["id"],
        ex["data"],
        quantity="conductivity",
        method="two_electrode",
        parameters={"formulation": fm.hte_to_formulation(0.4, 1.1), "temperature": 298.15},
    )
    r = api(
        live_one,
        "olga",
        "GET",
        "/api/v1/search?iri=ElectrolyticConductivity&kind=results&limit=10000",
    )
    found = {x["id"] for x in r.json()}
    assert cond["id"] in found and all(x["quantity"] == "conductivity" for x in r.json())
    iri = "https://w3id.org/emmo#EMMO_e6e7277a_1d40_4be5_a3a9_afd3da53d937"
    assert cond["id"] in {
        x["id"]
        for x in api(
            live_one, "olga", "GET", "/api/v1/search", params={"iri": iri, "limit": 10000}
        ).json()
    }
    none = api(live_one, "olga", "GET", "/api/v1/search?iri=CycleLife&kind=results").json()
    assert cond["id"] not in {x["id"] for x in none}
    assert api(live_one, "olga", "GET", "/api/v1/search?kind=things").status_code == 422
    assert (
        api(live_one, "olga", "GET", "/api/v1/search?created_after=2020-01-01T00:00:00").status_code
        == 422
    )
    # SPARQL: conductivity values above 0.5 S/m, by EMMO label, over HTTP
    q = """SELECT ?r ?v WHERE {
        ?r a bigmap:Result ; emmo:EMMO_e1097637_70d2_4895_973f_2396f04fa204 ?q .
        ?q a ?c . ?c skos:prefLabel "ElectrolyticConductivity"@en .
        ?q emmo:EMMO_8ef3cd6d_ae58_4a8d_9fc0_ad8f49015cd0/emmo:EMMO_faf79f53_749d_40b2_807c_d34244c192f4 ?v .
        FILTER(?v > 0.5) }"""
    for kw in ({"params": {"query": q}}, {"json": {"query": q}}):
        method = "GET" if "params" in kw else "POST"
        r = api(live_one, "olga", method, "/api/v1/sparql", **kw)
        assert r.status_code == 200 and r.headers["content-type"].startswith(
            "application/sparql-results"
        )
        rows = r.json()["results"]["bindings"]
        assert {b["r"]["value"] for b in rows} >= {f"urn:uuid:{cond['id']}"}
    r = api(
        live_one,
        "olga",
        "POST",
        "/api/v1/sparql",
        content="SELECT * WHERE { SERVICE <http://x/> { ?s ?p ?o } }",
    )
    assert r.status_code == 400 and "SERVICE" in r.text
    assert api(live_one, "olga", "GET", "/api/v1/sparql").status_code == 422
    # the CLI on the same database
    runner = CliRunner()
    out = runner.invoke(cli, ["query", q, "--db", live_one.server.db_url, "--as", "olga", "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)["results"]["bindings"]
    assert f"urn:uuid:{cond['id']}" in {b["r"]["value"] for b in rows}
    table = runner.invoke(cli, ["query", q, "--db", live_one.server.db_url, "--as", "public"])
    assert table.exit_code == 0 and "row(s)" in table.output
    out = runner.invoke(
        cli,
        [
            "query",
            'ASK { ?s bigmap:quantityName "fair_probe" }',
            "--db",
            live_one.server.db_url,
            "--json",
        ],
    )
    assert out.exit_code == 0 and out.output.strip() in ("true", "false")
    bad = runner.invoke(cli, ["query", "SELEC nothing", "--db", live_one.server.db_url])
    assert bad.exit_code == 2 and "not a valid SPARQL query" in bad.output
    assert probe


def test_jsonld_paths_and_bad_ids(live_one, figure):
    res, req = figure["result"], figure["request"]
    for path in [
        f"/api/v1/results/{res['id']}.jsonld",
        f"/api/v1/jsonld/results/{res['id']}",
        f"/api/v1/requests/{req['id']}.jsonld",
        f"/api/v1/campaigns/{figure['campaign']['id']}.jsonld",
        f"/api/v1/tenants/{figure['tenant_id']}.jsonld",
        "/api/v1/capabilities/conductivity/two_electrode.jsonld",
    ]:
        r = api(live_one, "alice", "GET", path)
        assert r.status_code == 200 and r.headers["content-type"].startswith(
            "application/ld+json"
        ), path
        assert len(rdflib.Graph().parse(data=r.text, format="json-ld")) >= 8
    cap = live_one.client("alice").capability("conductivity", "two_electrode")
    assert (
        api(live_one, "alice", "GET", f"/api/v1/capabilities/{cap['id']}.jsonld").status_code == 200
    )
    rep = api(live_one, "alice", "GET", f"/api/v1/jsonld/results/{res['id']}?report=true").json()
    assert set(rep) == {"document", "report"} and rep["report"]["n_unmapped"] >= 1
    # the plain routes still work beside the suffixed ones
    assert api(live_one, "alice", "GET", f"/api/v1/results/{res['id']}").json()["id"] == res["id"]
    for path in [
        f"/api/v1/results/{uuid.uuid4()}.jsonld",
        "/api/v1/results/nope.jsonld",
        f"/api/v1/jsonld/widgets/{res['id']}",
        "/api/v1/capabilities/no/such.jsonld",
        f"/api/v1/rdf/campaigns/{uuid.uuid4()}",
    ]:
        assert api(live_one, "alice", "GET", path).status_code == 404, path
    assert (
        api(
            live_one,
            "alice",
            "GET",
            f"/api/v1/rdf/campaigns/{figure['campaign']['id']}?format=bogus",
        ).status_code
        == 422
    )
    ctx = api(live_one, "alice", "GET", "/api/v1/jsonld/context").json()
    assert ctx["@context"]["ElectrolyticConductivity"].endswith(
        "EMMO_e6e7277a_1d40_4be5_a3a9_afd3da53d937"
    )


def test_a_fault_of_the_metadata_check_never_costs_a_result(live_one):
    from bigmap.server.routers.fair import metadata_check

    errors, report = metadata_check(live_one.server.broker, {"method": "x"})  # no quantity
    assert errors == [] and report["complete"] is None and "KeyError" in report["error"]
