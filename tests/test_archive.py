"""Archive packages: ``bigmap archive export`` writes an RO-Crate (data, raw files, Parquet
tables, JSON-LD validated with pyshacl, licences, creators, semantic version, sha256 of every
file, an InvenioRDM record), and ``bigmap archive import`` restores it into another database
(SQLite and PostgreSQL) with nothing lost: the two databases are compared row by row."""

from __future__ import annotations

import hashlib
import io
import json
import uuid
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import rdflib
from sqlalchemy import select
from typer.testing import CliRunner

from bigmap.archive import invenio
from bigmap.archive.package import crate_graph, read_package
from bigmap.cli import app as cli
from bigmap.embedded import postgres_available, temporary_postgres_database
from bigmap.ontology import shacl, to_graph
from bigmap.store import models as m
from bigmap.store.db import Database
from tests.fair_probe import build_chain, probe_tenant

ORCID = "0000-0002-1825-0097"  # ORCID's documented example iD
runner = CliRunner()


def run(*args: str, code: int = 0) -> str:
    out = runner.invoke(cli, [str(a) for a in args])
    assert out.exit_code == code, out.output
    return " ".join(out.output.split())  # the console wraps long lines


@pytest.fixture(scope="module")
def source(live_one):
    """A campaign with sub-requests, raw files, steps, an amended result, a recomputation, a
    findable restricted part and a confidential request."""
    alice = live_one.client("alice")
    tid = probe_tenant(alice, f"probe-archive-{uuid.uuid4().hex[:6]}")
    chain = build_chain(alice, tid, "archive", {"access": "public"})
    # an amended result
    alice.post_result(
        chain.request,
        tid,
        {"nominal_voltage": 4.75, "tag": chain.secret},
        method="manual",
        amend=True,
    )
    secret_req = alice.create_request(
        "fair_probe",
        "manual",
        {"x": 42, "tag": "confidential-detail"},
        tenant_id=tid,
        campaign_id=chain.campaign,
        access="confidential",
    )
    findable_req = alice.create_request(
        "fair_probe",
        "manual",
        {"x": 43, "tag": "restricted-detail"},
        tenant_id=tid,
        campaign_id=chain.campaign,
        access="restricted",
        access_groups=["lab-a"],
    )
    alice.call("PATCH", f"/api/v1/access/requests/{findable_req['id']}", json={"findable": True})
    alice.add_campaign_event(
        chain.campaign, "observation", {"step": 2, "request_id": secret_req["id"], "y": {"v": 0}}
    )
    return {"chain": chain, "tenant": tid, "secret": secret_req, "findable": findable_req}


def tree(db: Database, campaign: str) -> dict[str, list[dict]]:
    """Every row of a campaign's tree (and its tenants, capabilities and owners)."""
    cid = uuid.UUID(campaign)
    with db.read() as s:
        reqs = list(s.scalars(select(m.Request).where(m.Request.campaign_id == cid)))
        ids = {r.id for r in reqs}
        frontier = set(ids)
        while frontier:
            kids = list(s.scalars(select(m.Request).where(m.Request.parent_id.in_(list(frontier)))))
            frontier = {k.id for k in kids} - ids
            ids |= frontier
            reqs += [k for k in kids if k.id in frontier]
        res = list(s.scalars(select(m.Result).where(m.Result.request_id.in_(list(ids)))))
        files = list(s.scalars(select(m.File).where(m.File.result_id.in_([r.id for r in res]))))
        events = list(s.scalars(select(m.CampaignEvent).where(m.CampaignEvent.campaign_id == cid)))
        objects = list(ids) + [r.id for r in res] + [cid]
        log = list(s.scalars(select(m.StatusLog).where(m.StatusLog.object_id.in_(objects))))
        recs = list(
            s.scalars(select(m.Recomputation).where(m.Recomputation.request_id.in_(list(ids))))
        )
        camp = s.get(m.Campaign, cid)
        tenant_ids = {r.tenant_id for r in reqs} | {r.tenant_id for r in res} | {camp.tenant_id}
        tenants = list(s.scalars(select(m.Tenant).where(m.Tenant.id.in_(list(tenant_ids)))))
        provides = list(
            s.scalars(
                select(m.TenantCapability).where(m.TenantCapability.tenant_id.in_(list(tenant_ids)))
            )
        )
        pairs = {(r.quantity, meth) for r in reqs for meth in r.methods}
        caps = [c for c in s.scalars(select(m.Capability)) if (c.quantity, c.method) in pairs]
        owners = {x.owner_id for x in [*reqs, *res, *files, camp, *tenants]}
        users = list(s.scalars(select(m.User).where(m.User.id.in_(list(owners)))))

    def rows(items, drop=()):
        out = []
        for x in items:
            d = {c.name: getattr(x, c.name) for c in x.__table__.columns if c.name not in drop}
            out.append(d)
        return sorted(out, key=lambda d: json.dumps(d, sort_keys=True, default=str))

    return {
        "campaign": rows([camp]),
        "requests": rows(reqs),
        "results": rows(res),
        "files": rows(files),
        "events": rows(events),
        "status_log": rows(log, drop=("id",)),
        "recomputations": rows(recs),
        "tenants": rows(tenants),
        "tenant_capabilities": rows(provides, drop=("id",)),
        "capabilities": rows(caps),
        "users": rows(users, drop=("password_hash", "disabled", "groups")),
    }


def test_export_is_a_valid_crate_with_semantics_tables_and_record(live_one, source, tmp_path):
    chain = source["chain"]
    out = tmp_path / "campaign.zip"
    text = run(
        "archive",
        "export",
        chain.campaign,
        "--out",
        out,
        "--db",
        live_one.server.db_url,
        "--scope",
        "all",
        "--creator",
        f"Curie, Marie [{ORCID}] (Sorbonne)",
        "--creator",
        "Lab Robot",
    )
    assert "version 1.0.0" in text and "SHACL conforms" in text
    pkg = read_package(out)  # every file checked against the manifest and the crate's sha256
    crate = pkg["crate"]
    g = crate_graph(crate)
    schema = rdflib.Namespace("http://schema.org/")
    entities = {e["@id"]: e for e in crate["@graph"]}
    root_entity = entities["./"]
    assert root_entity["version"] == "1.0.0"
    assert root_entity["license"] == {"@id": "https://spdx.org/licenses/CC-BY-4.0"}
    assert entities[f"https://orcid.org/{ORCID}"]["name"] == "Curie, Marie"
    assert entities["code/recompute.py"]["license"] == {"@id": "https://spdx.org/licenses/MIT"}
    with zipfile.ZipFile(out) as z:
        names = set(z.namelist())
        for rel, entity in entities.items():
            if rel in names and rel != "ro-crate-metadata.json":
                assert entity["sha256"] == hashlib.sha256(z.read(rel)).hexdigest(), rel
                assert entity["contentSize"] == len(z.read(rel))
        assert f"files/{chain.result}/{chain.file}/archive.csv" in names
        assert chain.secret.encode() in z.read(f"files/{chain.result}/{chain.file}/archive.csv")
        table = pd.read_parquet(io.BytesIO(z.read("tables/results.parquet")))
        ld = json.loads(z.read("metadata/campaign.jsonld"))
        ttl = z.read("metadata/campaign.ttl").decode()
    assert len(g) > 50 and (None, rdflib.RDF.type, schema.Dataset) in g
    # the tables: one row per result, the data's numbers as columns
    assert len(table) == len(pkg["results"]) == 3  # the request's (amended and new), the child's
    assert "data.nominal_voltage" in table.columns and table["data.nominal_voltage"].dtype == float
    # the JSON-LD validates (pyshacl) against BattINFO's shapes and bigmap's
    graph = rdflib.Graph().parse(data=json.dumps(ld), format="json-ld")
    report = shacl.validate(graph)
    assert report.conforms, report.text()
    # the Turtle is the same graph, with the skos:prefLabel of every EMMO term used
    assert len(rdflib.Graph().parse(data=ttl, format="turtle")) == len(to_graph(ld))
    assert pkg["campaign"]["id"] == chain.campaign
    # the InvenioRDM record, beside the zip and inside it
    rec = json.loads((tmp_path / "campaign.invenio.json").read_text())
    assert rec == pkg["invenio"] and invenio.validate(rec) == []
    md = rec["metadata"]
    assert md["version"] == "1.0.0" and md["resource_type"] == {"id": "dataset"}
    assert {r["id"] for r in md["rights"]} == {"cc-by-4.0", "mit"}
    assert md["creators"][0]["person_or_org"]["identifiers"] == [
        {"scheme": "orcid", "identifier": ORCID}
    ]
    assert md["creators"][0]["affiliations"] == [{"name": "Sorbonne"}]
    assert rec["access"] == {"record": "public", "files": "public"}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_round_trip_into_another_database_loses_nothing(live_one, source, tmp_path, backend):
    chain = source["chain"]
    out = tmp_path / "c.zip"
    run(
        "archive",
        "export",
        chain.campaign,
        "--out",
        out,
        "--db",
        live_one.server.db_url,
        "--scope",
        "all",
    )

    def check(url: str) -> None:
        run("db", "upgrade", "--db", url)
        text = run("archive", "import", out, "--db", url)
        assert "created disabled" in text
        src, dst = Database(live_one.server.db_url), Database(url)
        try:
            a, b = tree(src, chain.campaign), tree(dst, chain.campaign)
            for table in a:
                assert a[table] == b[table], f"{table} differs after the round trip"
            assert len(a["requests"]) == 5 and len(a["files"]) == 2 and len(a["events"]) == 3
            assert any(r["amends"] for r in a["results"])
            # importing again changes nothing
            again = run("archive", "import", out, "--db", url)
            assert "already present" in again
            assert tree(dst, chain.campaign) == b
        finally:
            src.dispose()
            dst.dispose()

    if backend == "sqlite":
        check(f"sqlite:///{tmp_path / 'other.db'}")
    else:
        if not postgres_available():
            pytest.skip("PostgreSQL is not available")
        with temporary_postgres_database() as url:
            check(url)


def test_public_scope_holds_only_what_anyone_may_see(live_one, source, tmp_path):
    chain = source["chain"]
    out = tmp_path / "public.zip"
    text = run("archive", "export", chain.campaign, "--out", out, "--db", live_one.server.db_url)
    assert "1 withheld" in text and "1 metadata-only" in text
    pkg = read_package(out)
    with zipfile.ZipFile(out) as z:
        blob = b"".join(z.read(n) for n in z.namelist())
    assert b"confidential-detail" not in blob and b"restricted-detail" not in blob
    assert source["secret"]["id"].encode() not in blob
    assert [r["id"] for r in pkg["metadata_only"]] == [source["findable"]["id"]]
    assert pkg["metadata_only"][0]["metadata_only"] is True
    assert pkg["events"][-1]["data"] == {
        "redacted": "refers to requests or results you may not see"
    }
    # a public package imports too (what it does not hold is simply not there)
    url = f"sqlite:///{tmp_path / 'pub.db'}"
    run("db", "upgrade", "--db", url)
    run("archive", "import", out, "--db", url)
    dst = Database(url)
    try:
        with dst.read() as s:
            assert s.get(m.Request, uuid.UUID(source["secret"]["id"])) is None
            assert s.get(m.Request, uuid.UUID(chain.child)) is not None
    finally:
        dst.dispose()


def test_semantic_versions_follow_the_changes(live_one, source, tmp_path):
    alice = live_one.client("alice")
    tid = source["tenant"]
    c = build_chain(alice, tid, "versions", {"access": "public"})
    db = ["--db", live_one.server.db_url, "--scope", "user:alice"]

    def export(*extra: str) -> str:
        text = run("archive", "export", c.campaign, "--out", tmp_path / "v.zip", *db, *extra)
        return text.split("version ")[1].split(",")[0]

    assert export() == "1.0.0"
    assert export() == "1.0.0 (unchanged)"
    alice.create_request("fair_probe", "manual", {"x": 5}, tenant_id=tid, campaign_id=c.campaign)
    assert export() == "1.1.0"  # added
    alice.post_result(c.child, tid, {"nominal_voltage": 9.9}, method="manual", amend=True)
    assert export() == "2.0.0"  # a result replaced
    assert export("--title", "Probe campaign, final") == "2.0.1"  # descriptive metadata only
    assert export("--title", "Probe campaign, final") == "2.0.1 (unchanged)"
    assert export("--version", "3.0.0", "--title", "Probe campaign, final") == "3.0.0"
    assert read_package(tmp_path / "v.zip")["invenio"]["metadata"]["version"] == "3.0.0"


def test_bad_input_is_refused_clearly(live_one, source, tmp_path):
    chain = source["chain"]
    db = ["--db", live_one.server.db_url]
    out = tmp_path / "x.zip"
    assert "no campaign" in run("archive", "export", str(uuid.uuid4()), "--out", out, *db, code=2)
    assert "not a UUID" in run("archive", "export", "nope", "--out", out, *db, code=2)
    assert "unknown licence" in run(
        "archive", "export", chain.campaign, "--out", out, *db, "--data-licence", "WTFPL-9", code=2
    )
    assert "semantic version" in run(
        "archive", "export", chain.campaign, "--out", out, *db, "--version", "1.0", code=2
    )
    assert "ORCID" in run(
        "archive", "export", chain.campaign, "--out", out, *db, "--creator", "X [1234]", code=2
    )
    assert "scope" in run(
        "archive", "export", chain.campaign, "--out", out, *db, "--scope", "everyone", code=2
    )
    hidden = live_one.client("alice").create_campaign(
        "hidden", {}, tenant_id=source["tenant"], access="confidential"
    )
    assert "may not see it" in run("archive", "export", hidden["id"], "--out", out, *db, code=2)
    assert not out.exists()
    # a package whose content was changed after export is refused, nothing imported
    run("archive", "export", chain.campaign, "--out", out, *db, "--scope", "all")
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(out) as src, zipfile.ZipFile(tampered, "w") as dst:
        for n in src.namelist():
            data = src.read(n)
            if n == "data/requests.json":
                data = data.replace(b'"x": 1.0', b'"x": 2.0')
            dst.writestr(n, data)
    url = f"sqlite:///{tmp_path / 't.db'}"
    run("db", "upgrade", "--db", url)
    assert "does not match its sha256" in run("archive", "import", tampered, "--db", url, code=2)
    not_zip = tmp_path / "n.zip"
    not_zip.write_text("hello")
    assert "not a zip" in run("archive", "import", not_zip, "--db", url, code=2)
    dst = Database(url)
    try:
        with dst.read() as s:
            assert s.scalar(select(m.Campaign)) is None
    finally:
        dst.dispose()
    assert Path(out).exists()
