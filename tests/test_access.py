"""Access tiers and embargo, proven on every path, on SQLite and PostgreSQL: a matrix of users
(admin, owner, a member of the owner's group, a member of another group, an observer) x
tiers (public, restricted, restricted with a past or future embargo, restricted and
findable, confidential, confidential with a past embargo, restricted to another group) x
endpoints (native, FINALES, files, campaign steps, JSON-LD, RDF, SHACL, provenance, search,
SPARQL, archive). No read, list, search or export may leak an object, its id or its data."""

from __future__ import annotations

import io
import time
import uuid
import zipfile
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.fair_probe import Chain, build_chain, probe_tenant

PAST = (datetime.now(UTC) - timedelta(days=1)).isoformat()
FUTURE = (datetime.now(UTC) + timedelta(days=365)).isoformat()

TIERS = {
    "public": {"access": "public"},
    "restricted": {"access": "restricted", "access_groups": ["lab-a"]},
    "embargo-over": {"access": "restricted", "access_groups": ["lab-a"], "embargo_until": PAST},
    "embargo-ahead": {"access": "restricted", "access_groups": ["lab-a"], "embargo_until": FUTURE},
    "findable": {"access": "restricted", "access_groups": ["lab-a"]},  # made findable below
    "confidential": {"access": "confidential"},
    "confidential-past": {"access": "confidential", "embargo_until": PAST},
    "other-group": {"access": "restricted", "access_groups": ["lab-b"]},
}
# who sees what (alice owns everything; carol is in lab-a, bob in lab-b, olga in no group)
SEES = {
    "admin": set(TIERS),
    "alice": set(TIERS),
    "carol": {"public", "restricted", "embargo-over", "embargo-ahead", "findable"},
    "bob": {"public", "embargo-over", "other-group"},
    "olga": {"public", "embargo-over"},
}
USERS = list(SEES)


class World:
    def __init__(self, live) -> None:
        self.live = live
        self.tokens = dict(live.tokens)
        self.tokens["carol"] = live.server.user("carol", "tenant", groups=["lab-a"])
        self.http = httpx.Client(base_url=live.url, timeout=120)
        alice = live.client("alice")
        self.alice_tenant = probe_tenant(alice, f"probe-alice-{uuid.uuid4().hex[:6]}")
        self.bob_tenant = probe_tenant(live.client("bob"), f"probe-bob-{uuid.uuid4().hex[:6]}")
        self.chains: dict[str, Chain] = {
            tier: build_chain(alice, self.alice_tenant, tier, access, x=float(i))
            for i, (tier, access) in enumerate(TIERS.items())
        }
        r = self.get(
            "alice",
            "PATCH",
            f"/api/v1/access/campaigns/{self.chains['findable'].campaign}",
            json={"findable": True},
        )
        assert r.status_code == 200, r.text
        assert r.json()["updated"]["results"] == 2 and r.json()["updated"]["files"] == 2
        # a public campaign holding a confidential request: its steps must not leak it
        self.mixed_campaign = alice.create_campaign(
            "probe mixed", {"tier": "mixed"}, tenant_id=self.alice_tenant
        )["id"]
        self.mixed_secret = f"secret-mixed-{uuid.uuid4().hex[:10]}"
        hidden = alice.create_request(
            "fair_probe",
            "manual",
            {"x": 9, "tag": self.mixed_secret},
            tenant_id=self.alice_tenant,
            campaign_id=self.mixed_campaign,
            access="confidential",
        )
        self.mixed_hidden = hidden["id"]
        self.mixed_hidden_result = alice.post_result(
            hidden["id"],
            self.alice_tenant,
            {"nominal_voltage": 1.0, "tag": self.mixed_secret},
            method="manual",
        )["id"]
        shown = alice.create_request(
            "fair_probe",
            "manual",
            {"x": 10},
            tenant_id=self.alice_tenant,
            campaign_id=self.mixed_campaign,
        )
        self.mixed_shown = shown["id"]
        alice.add_campaign_event(
            self.mixed_campaign,
            "observation",
            {
                "step": 1,
                "request_id": hidden["id"],
                "result_id": self.mixed_hidden_result,
                "y": {"v": self.mixed_secret},
            },
        )
        alice.add_campaign_event(
            self.mixed_campaign,
            "proposal",
            {"step": 2, "candidates": []},
            request_ids=[shown["id"]],
        )

    def get(self, user: str, method: str, path: str, **kw) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[user]}", **kw.pop("headers", {})}
        return self.http.request(method, path, headers=headers, **kw)


@pytest.fixture(scope="module")
def world(live):
    w = World(live)
    yield w
    w.http.close()


def _text(r: httpx.Response) -> str:
    if r.headers.get("content-type", "").startswith("application/zip"):
        with zipfile.ZipFile(io.BytesIO(r.content)) as z:
            return "\n".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())
    return r.text


def _assert_no_leak(r: httpx.Response, chain: Chain, where: str, asked: str = "") -> None:
    """Neither the chain's secret nor any of its ids (but the one that was asked for, which
    a 404 names back) is in the response."""
    text = _text(r)
    assert chain.secret not in text, f"{where}: the secret of a hidden {chain.tier} chain leaked"
    for i in chain.ids():
        if i not in asked:
            assert i not in text, f"{where}: the id {i} of a hidden {chain.tier} chain leaked"


# ----------------------------------------------------------------------------- reads by id

DIRECT = [
    "/api/v1/requests/{request}",
    "/api/v1/requests/{request}/children",
    "/api/v1/requests/{request}/log",
    "/api/v1/requests/{request}/result",
    "/api/v1/results/{result}",
    "/api/v1/results/{result}/files",
    "/api/v1/results/{result}/log",
    "/api/v1/results/{result}/metadata",
    "/api/v1/files/{file}",
    "/api/v1/files/{child_file}",
    "/api/v1/campaigns/{campaign}",
    "/api/v1/campaigns/{campaign}/events",
    "/api/v1/campaigns/{campaign}/requests",
    "/requests/{request}",
    "/results/{result}",
    "/results_requested/{request}",
    "/api/v1/requests/{request}.jsonld",
    "/api/v1/results/{result}.jsonld",
    "/api/v1/results/{child_result}.ttl",
    "/api/v1/jsonld/requests/{child}",
    "/api/v1/campaigns/{campaign}.jsonld",
    "/api/v1/provenance/{result}",
    "/api/v1/provenance/{request}?format=jsonld",
]
HEAVY = [
    "/api/v1/rdf/campaigns/{campaign}",
    "/api/v1/campaigns/{campaign}/shacl",
    "/api/v1/campaigns/{campaign}/archive",
]


# paths whose answer carries the object's data (the secret) when the caller may see it
WITH_DATA = {
    "/api/v1/requests/{request}",
    "/api/v1/requests/{request}/result",
    "/api/v1/results/{result}",
    "/api/v1/files/{file}",
    "/api/v1/files/{child_file}",
    "/api/v1/campaigns/{campaign}/events",
    "/api/v1/campaigns/{campaign}/requests",
    "/requests/{request}",
    "/results/{result}",
    "/api/v1/results/{result}.jsonld",
    "/api/v1/results/{child_result}.ttl",
    "/api/v1/campaigns/{campaign}.jsonld",
    "/api/v1/provenance/{result}",
    "/api/v1/rdf/campaigns/{campaign}",
    "/api/v1/campaigns/{campaign}/archive",
}


@pytest.mark.parametrize("user", USERS)
def test_reads_by_id(world, user):
    for tier, chain in world.chains.items():
        for path in DIRECT + (HEAVY if user in ("carol", "bob") else []):
            url = path.format(**chain.__dict__)
            r = world.get(user, "GET", url)
            where = f"{user} GET {url} ({tier})"
            if tier in SEES[user]:
                assert r.status_code == 200, f"{where}: {r.status_code} {r.text[:300]}"
                if path in WITH_DATA:
                    assert chain.secret in _text(r), f"{where}: the data is missing"
            else:
                assert r.status_code == 404, f"{where}: {r.status_code} {r.text[:300]}"
                _assert_no_leak(r, chain, where, asked=url)


# ----------------------------------------------------------------------------- lists, search, SPARQL

LISTS = [
    "/api/v1/requests?quantity=fair_probe&limit=10000",
    "/api/v1/results?quantity=fair_probe&limit=10000",
    "/api/v1/campaigns",
    "/all_requests/?quantity=fair_probe",
    "/pending_requests/?quantity=fair_probe",
    "/results_requested/?quantity=fair_probe",
    "/api/v1/search?quantity=fair_probe&limit=10000",
    "/api/v1/search?kind=campaigns&q=probe%20campaign&limit=10000",
]


@pytest.mark.parametrize("user", USERS)
def test_lists_search_and_sparql(world, user):
    responses = {path: world.get(user, "GET", path) for path in LISTS}
    sparql = world.get(
        user,
        "POST",
        "/api/v1/sparql",
        content='SELECT ?s ?tag WHERE { ?s bigmap:quantityName "fair_probe" . OPTIONAL { ?s bigmap:parameters ?tag } }',
        headers={"Content-Type": "application/sparql-query"},
    )
    responses["sparql"] = sparql
    for path, r in responses.items():
        assert r.status_code == 200, f"{user} {path}: {r.status_code} {r.text[:300]}"
    search = responses["/api/v1/search?quantity=fair_probe&limit=10000"].json()
    by_id = {rec["id"]: rec for rec in search}
    for tier, chain in world.chains.items():
        if tier in SEES[user]:
            assert chain.request in responses[LISTS[0]].text, f"{user} misses {tier} in the list"
            assert chain.result in responses[LISTS[1]].text
            assert chain.campaign in responses[LISTS[2]].text
            assert chain.pending in responses[LISTS[4]].text
            assert chain.result in responses[LISTS[5]].text
            assert chain.request in sparql.text and chain.secret in sparql.text
            assert by_id[chain.result]["metadata_only"] is False
        elif tier == "findable":
            # findable by its metadata alone: what, who holds it, who may see it; never the data
            for path, r in responses.items():
                assert chain.secret not in r.text, f"{user} {path}: data of a findable item leaked"
            rec = by_id[chain.result]
            assert rec["metadata_only"] is True and rec["access"] == "restricted"
            assert rec["owner"] == "alice" and rec["access_groups"] == ["lab-a"]
            assert set(rec) >= {"quantity", "methods", "status", "created_at", "embargo_until"}
            assert "data" not in rec and "parameters" not in rec
            camp = world.get(user, "GET", f"/api/v1/search?kind=campaigns&q={chain.tier}").json()
            assert all(c["metadata_only"] for c in camp if c["id"] == chain.campaign)
            for path in LISTS[:6] + ["sparql"]:
                _assert_no_leak(responses[path], chain, f"{user} {path} ({tier})")
        else:
            for path, r in responses.items():
                _assert_no_leak(r, chain, f"{user} {path} ({tier})")


@pytest.mark.parametrize("user", ["bob", "olga", "carol"])
def test_search_text_never_looks_into_hidden_data(world, user):
    for tier, chain in world.chains.items():
        r = world.get(user, "GET", f"/api/v1/search?q={chain.secret}&limit=1000")
        assert r.status_code == 200
        found = {rec["id"] for rec in r.json()}
        if tier in SEES[user]:
            assert chain.result in found
        else:
            assert not found & set(chain.ids()), f"{user}: a search for {tier} data found it"


# ----------------------------------------------------------------------------- writes by strangers


def test_writes_to_hidden_objects_are_404_not_403(world):
    hidden = world.chains["confidential"]
    bob = world.live.client("bob")
    for method, path, body in [
        ("POST", f"/api/v1/requests/{hidden.pending}/retract", {"message": "x"}),
        ("POST", f"/api/v1/requests/{hidden.pending}/claim", {"tenant_id": world.bob_tenant}),
        (
            "POST",
            f"/api/v1/requests/{hidden.pending}/fail",
            {"tenant_id": world.bob_tenant, "message": "x"},
        ),
        ("POST", f"/api/v1/requests/{hidden.pending}/release", {"tenant_id": world.bob_tenant}),
        ("POST", f"/api/v1/requests/{hidden.pending}/lease", {"tenant_id": world.bob_tenant}),
        ("POST", f"/api/v1/results/{hidden.result}/status", {"status": "deleted"}),
        ("POST", f"/api/v1/results/{hidden.result}/recompute", {"tenant_id": world.bob_tenant}),
        ("PATCH", f"/api/v1/access/results/{hidden.result}", {"access": "public"}),
        ("PATCH", f"/api/v1/campaigns/{hidden.campaign}", {"control": "stop"}),
        ("POST", f"/api/v1/campaigns/{hidden.campaign}/events", {"kind": "decision", "data": {}}),
        ("POST", f"/requests/{hidden.pending}/update_status/?new_status=reserved", None),
        ("POST", f"/results/{hidden.result}/update_status/?new_status=deleted", None),
    ]:
        r = world.get("bob", method, path, json=body)
        assert r.status_code == 404, f"bob {method} {path}: {r.status_code} {r.text}"
        _assert_no_leak(r, hidden, f"bob {method} {path}", asked=path)
    # linking to a hidden parent or campaign: as if it did not exist
    for field in ("parent_id", "campaign_id"):
        target = hidden.request if field == "parent_id" else hidden.campaign
        with pytest.raises(Exception) as err:
            bob.create_request(
                "fair_probe", "manual", {"x": 1}, tenant_id=world.bob_tenant, **{field: target}
            )
        assert err.value.status_code == 422 and "does not exist" in str(err.value)
        unknown = str(uuid.uuid4())
        with pytest.raises(Exception) as err2:
            bob.create_request(
                "fair_probe", "manual", {"x": 1}, tenant_id=world.bob_tenant, **{field: unknown}
            )
        assert str(err2.value).replace(unknown, target) == str(err.value)
    # still pending, untouched
    assert world.live.client("alice").request(hidden.pending)["status"] == "pending"
    # a visible object that is not yours: 403 with a reason
    public = world.chains["public"]
    r = world.get(
        "bob", "PATCH", f"/api/v1/access/requests/{public.request}", json={"access": "confidential"}
    )
    assert r.status_code == 403 and "owner" in r.text


def test_sub_requests_and_campaign_requests_inherit_the_tier(world):
    alice = world.live.client("alice")
    for tier, chain in world.chains.items():
        want = TIERS[tier]
        for rid in (chain.request, chain.child, chain.pending):
            req = alice.request(rid)
            assert req["access"] == want["access"] and req["access_groups"] == want.get(
                "access_groups", []
            )
        res = alice.result(chain.child_result)
        assert res["access"] == want["access"]
        assert res["files"] and res["files"][0]["id"] == chain.child_file


# ----------------------------------------------------------------------------- mixed campaign


@pytest.mark.parametrize("user", ["bob", "olga"])
def test_public_campaign_withholds_what_it_holds_of_hidden_tiers(world, user):
    cid = world.mixed_campaign
    for path in [
        f"/api/v1/campaigns/{cid}/events",
        f"/api/v1/campaigns/{cid}/requests",
        f"/api/v1/campaigns/{cid}.jsonld",
        f"/api/v1/rdf/campaigns/{cid}",
        f"/api/v1/campaigns/{cid}/archive",
    ]:
        r = world.get(user, "GET", path)
        assert r.status_code == 200, f"{user} {path}: {r.text[:200]}"
        text = _text(r)
        assert world.mixed_secret not in text, f"{user} {path}: hidden data leaked"
        assert world.mixed_hidden not in text and world.mixed_hidden_result not in text
    everything = world.get(
        user, "GET", "/api/v1/sparql", params={"query": "SELECT ?s ?p ?o WHERE { ?s ?p ?o }"}
    )
    assert everything.status_code == 200 and f"urn:uuid:{cid}" in everything.text
    assert world.mixed_secret not in everything.text and world.mixed_hidden not in everything.text
    events = world.get(user, "GET", f"/api/v1/campaigns/{cid}/events").json()
    assert [e["seq"] for e in events] == [1, 2]  # the withheld step keeps its place
    assert "redacted" in events[0]["data"] and events[1]["request_ids"] == [world.mixed_shown]
    # the owner sees it all
    owner = world.get("alice", "GET", f"/api/v1/campaigns/{cid}/events").json()
    assert owner[0]["data"]["result_id"] == world.mixed_hidden_result


# ----------------------------------------------------------------------------- embargo over time


def test_embargo_opens_a_restricted_item_on_its_date(world):
    alice = world.live.client("alice")
    until = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
    chain = build_chain(
        alice,
        world.alice_tenant,
        "embargo-soon",
        {"access": "restricted", "access_groups": ["lab-a"], "embargo_until": until},
    )
    r = world.get("bob", "GET", f"/api/v1/results/{chain.result}")
    assert r.status_code == 404
    assert (
        chain.result
        not in world.get("bob", "GET", "/api/v1/results?quantity=fair_probe&limit=10000").text
    )
    time.sleep(max(0.0, (datetime.fromisoformat(until) - datetime.now(UTC)).total_seconds()) + 0.5)
    r = world.get("bob", "GET", f"/api/v1/results/{chain.result}")
    assert r.status_code == 200 and chain.secret in r.text
    assert world.get("bob", "GET", f"/api/v1/files/{chain.file}").status_code == 200
    assert chain.result in world.get("bob", "GET", "/results_requested/?quantity=fair_probe").text


# ----------------------------------------------------------------------------- managing access


def test_owner_changes_tier_and_admin_manages_groups(world, live):
    alice = live.client("alice")
    chain = build_chain(alice, world.alice_tenant, "to-share", {"access": "confidential"})
    assert world.get("bob", "GET", f"/api/v1/results/{chain.result}").status_code == 404
    # bad input: findable needs restricted; naive time; unknown kind
    r = world.get(
        "alice", "PATCH", f"/api/v1/access/requests/{chain.request}", json={"findable": True}
    )
    assert r.status_code == 422 and "restricted" in r.text
    r = world.get(
        "alice",
        "PATCH",
        f"/api/v1/access/requests/{chain.request}",
        json={"embargo_until": "2030-01-01T00:00:00"},
    )
    assert r.status_code == 422
    assert (
        world.get("alice", "PATCH", f"/api/v1/access/things/{chain.request}", json={}).status_code
        == 404
    )
    # share with lab-x: bob is not in it yet
    r = world.get(
        "alice",
        "PATCH",
        f"/api/v1/access/campaigns/{chain.campaign}",
        json={"access": "restricted", "access_groups": ["lab-x"]},
    )
    assert r.status_code == 200 and r.json()["updated"]["requests"] == 3
    assert world.get("bob", "GET", f"/api/v1/results/{chain.child_result}").status_code == 404
    # groups: admin only
    r = world.get("alice", "PUT", "/api/v1/users/bob/groups", json={"add": ["lab-x"]})
    assert r.status_code == 403
    r = world.get("admin", "PUT", "/api/v1/users/bob/groups", json={"add": ["bad group!"]})
    assert r.status_code == 422
    r = world.get("admin", "PUT", "/api/v1/users/bob/groups", json={"add": ["lab-x"]})
    assert r.status_code == 200 and "lab-x" in r.json()["groups"]
    try:
        assert world.get("bob", "GET", f"/api/v1/results/{chain.child_result}").status_code == 200
        assert "lab-x" in world.get("admin", "GET", "/api/v1/groups").json()
        assert world.get("bob", "GET", "/api/v1/groups").json().get("lab-x") is not None
        assert "lab-a" not in world.get("bob", "GET", "/api/v1/groups").json()
        # the history of the change is kept
        log = world.get("alice", "GET", f"/api/v1/requests/{chain.request}/log").json()
        assert any("access: confidential -> restricted" in e["message"] for e in log)
    finally:
        world.get("admin", "PUT", "/api/v1/users/bob/groups", json={"remove": ["lab-x"]})
    assert world.get("bob", "GET", f"/api/v1/results/{chain.child_result}").status_code == 404


def test_cli_manages_groups(live):
    from typer.testing import CliRunner

    from bigmap.cli import app as cli

    runner = CliRunner()
    db = ["--db", live.server.db_url]
    name = f"dora-{uuid.uuid4().hex[:6]}"
    live.server.user(name, "observer", groups=["lab-a"])
    out = runner.invoke(cli, ["user", "groups", name, *db])
    assert out.exit_code == 0 and "lab-a" in out.output
    out = runner.invoke(
        cli, ["user", "groups", name, "--add", "lab-c,lab-d", "--remove", "lab-a", *db]
    )
    assert out.exit_code == 0, out.output
    assert live.server.broker.get_user(name).groups == ["lab-c", "lab-d"]
    out = runner.invoke(cli, ["user", "groups", name, "--set", "", *db])
    assert out.exit_code == 0 and live.server.broker.get_user(name).groups == []
    bad = runner.invoke(cli, ["user", "groups", name, "--add", "no spaces", *db])
    assert bad.exit_code == 2 and "letters, digits" in bad.output
    missing = runner.invoke(cli, ["user", "groups", "nobody-here", *db])
    assert missing.exit_code == 2 and "no user" in missing.output
