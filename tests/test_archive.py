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
from bigmap.schemas.common import Role
from bigmap.store import models as m
from bigmap.store.db import Database
from tests.fair_probe import build_chain, probe_tenant

ORCID = "0000-0002-1825-0097"  # ORCID's documented example iD
ORCID_2 = "0000-0001-5109-3700"  # another of ORCID's documented examples
ROR = "02en5vm52"  # Sorbonne Université in the Research Organization Registry
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
        f"Curie, Marie [{ORCID}] <marie@example.org> (Sorbonne Université [{ROR}])",
        "--creator",
        f"Lab, Robot [{ORCID_2}]",
        "--check",
    )
    assert "version 1.0.0" in text and "SHACL conforms" in text
    # the community's validators, run offline, as a data steward would before publishing
    assert "PASS roc-validator: profile ro-crate-1.3, levels REQUIRED+RECOMMENDED" in text
    assert "no findings" in text and "FINDINGS" not in text
    assert "PASS InvenioRDM record schema: local://records/record-v6.0.0.json: valid" in text
    assert "PASS JSON-LD (pyld against bigmap's expander)" in text
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
                assert entity["contentSize"] == str(len(z.read(rel)))
                assert entity["encodingFormat"]
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
    assert md["creators"][0]["affiliations"] == [{"name": "Sorbonne Université", "id": ROR}]
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
        text = run("archive", "import", out, "--db", url, "--source", "lab-one")
        assert "imported from 'lab-one'" in text
        src, dst = Database(live_one.server.db_url), Database(url)
        try:
            a, b = tree(src, chain.campaign), tree(dst, chain.campaign)
            # the owners are foreign identities here: NAME@lab-one, who cannot log in
            names_a = {u["id"]: u["name"] for u in a["users"]}
            names_b = {u["id"]: u["name"] for u in b["users"]}
            assert {f"{n}@lab-one" for n in names_a.values()} == set(names_b.values())
            with dst.read() as s:
                for u in s.scalars(select(m.User)):
                    assert u.disabled and u.role == "observer" and u.imported_from == "lab-one"
                    assert u.password_hash.startswith("!")
            rename = {i: f"{n}@lab-one" for i, n in names_a.items()}
            by_name = {n: i for i, n in names_b.items()}

            def same_owner(rows_a, rows_b, keys=("owner_id", "user_id", "claimed_by_user")):
                out = []
                for r in rows_a:
                    r = dict(r)
                    for k in keys:
                        if r.get(k) in rename:
                            r[k] = by_name[rename[r[k]]]
                    out.append(r)
                return sorted(out, key=lambda d: json.dumps(d, sort_keys=True, default=str))

            for table in a:
                if table == "users":
                    continue
                assert same_owner(a[table], b[table]) == b[table], (
                    f"{table} differs after the round trip"
                )
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


# ----------------------------------------------------------------------------- import as untrusted input


@pytest.fixture(scope="module")
def package(live_one, source, tmp_path_factory) -> Path:
    """The source campaign exported whole (scope all), once."""
    out = tmp_path_factory.mktemp("package") / "all.zip"
    run(
        "archive",
        "export",
        source["chain"].campaign,
        "--out",
        out,
        "--db",
        live_one.server.db_url,
        "--scope",
        "all",
    )
    return out


def rewrite(src: Path, dst: Path, change: dict[str, object]) -> None:
    """A package with some members changed (bytes, or a function of the parsed JSON) and
    its manifest and RO-Crate hashes made to match: what a crafted package looks like."""
    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist()}
    for name, new in change.items():
        if callable(new):
            members[name] = json.dumps(new(json.loads(members[name]))).encode()
        else:
            members[name] = new  # type: ignore[assignment]
    digests = {
        n: hashlib.sha256(b).hexdigest()
        for n, b in members.items()
        if n not in ("manifest-sha256.txt", "ro-crate-metadata.json")
    }
    members["manifest-sha256.txt"] = "".join(
        f"{h}  {n}\n" for n, h in sorted(digests.items())
    ).encode()
    digests["manifest-sha256.txt"] = hashlib.sha256(members["manifest-sha256.txt"]).hexdigest()
    crate = json.loads(members["ro-crate-metadata.json"])
    for e in crate["@graph"]:
        if e.get("@id") in digests:
            e["sha256"] = digests[e["@id"]]
    members["ro-crate-metadata.json"] = json.dumps(crate).encode()
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as z:
        for n, b in members.items():
            z.writestr(n, b)


def test_import_keeps_owners_foreign_and_never_attaches(source, package, tmp_path):
    """A crafted package: its users named like this broker's (admin, alice, bob), one of
    them an admin, and a public result on a confidential request of another user that
    exists here. Nothing of it may take over a local identity or a local record."""
    chain = source["chain"]
    out = package
    url = f"sqlite:///{tmp_path / 'target.db'}"
    run("db", "upgrade", "--db", url)
    dst = Database(url)
    from bigmap.store.broker import Broker
    from bigmap.store.security import verify_password

    target = Broker(dst)
    local_admin = target.create_user("admin", "local-admin-password", Role.admin)
    target.create_user("bob", "bob-local-password")
    try:
        bob = target.actor_for_user("bob")
        # bob's confidential request exists here; the package's result claims it
        bob_req = uuid.uuid4()
        with dst.write() as s:
            s.add(
                m.Request(
                    id=bob_req,
                    quantity="fair_probe",
                    methods=["manual"],
                    parameters={"manual": {"x": 1}},
                    status="pending",
                    owner_id=bob.user_id,
                    access="confidential",
                )
            )

        def users(rows):
            for u in rows:
                u["role"] = "admin"
            rows.append(
                {
                    "id": str(uuid.uuid4()),
                    "name": "admin",
                    "role": "admin",
                    "created_at": "2026-01-01T00:00:00+00:00",
                }
            )
            return rows

        crafted = tmp_path / "crafted.zip"
        rid = chain.child_result
        rewrite(
            out,
            crafted,
            {
                "data/users.json": users,
                f"data/results/{rid}.json": lambda r: {**r, "request_id": str(bob_req)},
            },
        )
        text = run("archive", "import", crafted, "--db", url, "--source", "evil", code=2)
        assert "exists here and is not in the package" in text and str(bob_req) in text
        with dst.read() as s:
            assert s.scalar(select(m.Campaign)) is None
            assert s.scalar(select(m.Result)) is None
            assert {u.name for u in s.scalars(select(m.User))} == {"admin", "bob"}
        # without the attack on bob's request, the package imports, owners foreign
        crafted2 = tmp_path / "crafted2.zip"
        rewrite(out, crafted2, {"data/users.json": users})
        run("archive", "import", crafted2, "--db", url, "--source", "evil")
        with dst.read() as s:
            imported = {u.name: u for u in s.scalars(select(m.User)) if u.imported_from}
            assert set(imported) >= {"admin@evil", "alice@evil"}
            for u in imported.values():
                assert u.disabled and u.role == "observer"
                assert not verify_password(u.password_hash, "")
            admin_row = s.scalar(select(m.User).where(m.User.name == "admin"))
            assert admin_row.id == local_admin.id and admin_row.imported_from is None
            owners = {r.owner_id for r in s.scalars(select(m.Request))} - {bob.user_id}
            assert owners <= {u.id for u in imported.values()}
            assert s.get(m.Request, bob_req).access == "confidential"
        # the local admin cannot be reached through the package
        assert "no user 'nobody'" in run(
            "archive", "import", out, "--db", url, "--map-user", "nobody=bob", code=2
        ).replace('"', "'")
    finally:
        dst.dispose()


def test_import_maps_users_only_when_asked(source, package, tmp_path):
    chain = source["chain"]
    out = package
    url = f"sqlite:///{tmp_path / 'mapped.db'}"
    run("db", "upgrade", "--db", url)
    dst = Database(url)
    from bigmap.store.broker import Broker

    alice = Broker(dst).create_user("alice-here", "alice-here-password")
    try:
        assert "PACKAGE_USER=LOCAL_USER" in run(
            "archive", "import", out, "--db", url, "--map-user", "alice", code=2
        )
        assert "no local user 'nobody'" in run(
            "archive", "import", out, "--db", url, "--map-user", "alice=nobody", code=2
        )
        run("archive", "import", out, "--db", url, "--map-user", "alice=alice-here")
        with dst.read() as s:
            camp = s.get(m.Campaign, uuid.UUID(chain.campaign))
            assert camp.owner_id == alice.id
            assert s.get(m.Request, uuid.UUID(chain.request)).owner_id == alice.id
    finally:
        dst.dispose()


def test_import_refuses_bombs_and_malformed_records(source, package, tmp_path):
    chain = source["chain"]
    out = package
    url = f"sqlite:///{tmp_path / 'bombs.db'}"
    run("db", "upgrade", "--db", url)
    # a member of 64 MiB of zeros (about 64 kB packed): a zip bomb, refused before it is read
    bomb = tmp_path / "bomb.zip"
    rewrite(out, bomb, {"data/padding.bin": bytes(64 << 20)})
    assert "zip bomb" in run("archive", "import", bomb, "--db", url, code=2)
    # a request without its quantity, a result with a bad owner id, a missing users file
    broken = tmp_path / "broken.zip"

    def drop_quantity(rows):
        del rows[0]["quantity"]
        return rows

    rewrite(out, broken, {"data/requests.json": drop_quantity})
    text = run("archive", "import", broken, "--db", url, code=2)
    assert "data/requests.json[0]: request" in text and "'quantity' is a required" in text
    rewrite(out, broken, {f"data/results/{chain.result}.json": lambda r: {**r, "owner_id": 7}})
    text = run("archive", "import", broken, "--db", url, code=2)
    assert f"data/results/{chain.result}.json: result record {chain.result}: owner_id" in text
    rewrite(out, broken, {"data/users.json": lambda rows: {"not": "a list"}})
    assert "data/users.json: expected a list of user records" in run(
        "archive", "import", broken, "--db", url, code=2
    )
    rewrite(out, broken, {"data/events.json": b"[[[[" * 5000})
    assert "data/events.json: not valid JSON" in run(
        "archive", "import", broken, "--db", url, code=2
    )
    dst = Database(url)
    try:
        with dst.read() as s:
            assert s.scalar(select(m.Campaign)) is None and s.scalar(select(m.User)) is None
    finally:
        dst.dispose()
