"""The write policy tried as an attacker would, against a live broker on SQLite and on
PostgreSQL, through the native and the FINALES paths (issue 12): hijacked results, amends,
fails and releases of others' requests, FINALES reservations without a serving tenant,
requests slipped into others' campaigns, capability definitions without the right;
identical registrations racing each other; campaign summaries and steps redacted for
readers who may not see their results.

Users (``tests/conftest.py``): alice and bob are maintainers, mallory is a plain tenant,
olga an observer; others are made here.
"""

from __future__ import annotations

import concurrent.futures
import subprocess
import sys
import uuid

import httpx
import pytest

from bigmap.client import AuthError, BrokerClient, ConflictError, Tenant
from tests.test_broker_api import cond_params, cond_result, station, tenant

CAP = ("conductivity", "two_electrode")


def uid() -> str:
    return uuid.uuid4().hex[:8]


def api(live, user: str, method: str, path: str, **kw) -> httpx.Response:
    headers = {**live.headers(user), **kw.pop("headers", {})}
    return httpx.request(method, f"{live.url}{path}", headers=headers, timeout=60, **kw)


def fresh_user(live, role: str = "tenant", groups: list[str] | None = None) -> str:
    name = f"u{uid()}"
    live.tokens[name] = live.server.user(name, role, groups=groups)
    return name


@pytest.fixture(scope="module")
def world(live):
    """alice asks (planner tenant), bob and mallory each run a station serving CAP."""
    w = {}
    with live.client("alice") as c:
        w["asker"] = tenant(c, f"asker-{uid()}", kind="planner")["id"]
        w["alice_station"] = station(c, f"a-station-{uid()}")["id"]
    with live.client("bob") as c:
        w["bob"] = station(c, f"b-station-{uid()}")["id"]
    with live.client("mallory") as c:
        # a plain tenant user registers a tenant that serves an existing capability
        w["mallory"] = station(c, f"m-station-{uid()}")["id"]
    return w


def ask(live, world, **kw) -> str:
    with live.client("alice") as c:
        return c.create_request(*CAP, cond_params(), tenant_id=world["asker"], **kw)["id"]


def result_body(tenant_id: str, request_id: str | None, value: float = 0.9, **kw) -> dict:
    return {"request_id": request_id, "tenant_id": tenant_id, "data": cond_result(value), **kw}


def status_of(live, rid: str) -> dict:
    return api(live, "admin", "GET", f"/api/v1/requests/{rid}").json()


def results_of(live, rid: str) -> list[dict]:
    return api(live, "admin", "GET", "/api/v1/results", params={"request_id": rid}).json()


def finales_result(tenant_id: str, request_id: str, value: float = 0.9) -> dict:
    return {
        "request_uuid": request_id,
        "tenant_uuid": tenant_id,
        "quantity": CAP[0],
        "method": [CAP[1]],
        "parameters": {CAP[1]: cond_params()},
        "data": cond_result(value),
    }


# ------------------------------------------------------------------ results


def test_result_to_someone_elses_pending_request_is_refused(live, world):
    rid = ask(live, world)
    native = api(
        live, "mallory", "POST", "/api/v1/results", json=result_body(world["mallory"], rid)
    )
    assert native.status_code == 403, native.text
    assert "claim it first" in native.json()["detail"]
    fin = api(live, "mallory", "POST", "/results/", json=finales_result(world["mallory"], rid))
    assert fin.status_code == 403, fin.text
    assert status_of(live, rid)["status"] == "pending" and results_of(live, rid) == []
    # the unsolicited path makes a new record of its own, never touching alice's request
    unsolicited = api(
        live,
        "mallory",
        "POST",
        "/results/post_unsolicited_result",
        json=finales_result(world["mallory"], rid),
    )
    assert unsolicited.status_code == 200, unsolicited.text
    res = api(live, "admin", "GET", f"/api/v1/results/{unsolicited.json()}").json()
    assert res["request_id"] != rid
    assert status_of(live, rid)["status"] == "pending" and results_of(live, rid) == []
    # the asker's own tenant may answer its own request directly
    own = api(live, "alice", "POST", "/api/v1/results", json=result_body(world["asker"], rid))
    assert own.status_code == 201, own.text


def test_result_to_a_request_claimed_by_another_tenant_is_refused(live, world):
    rid = ask(live, world)
    with live.client("bob") as bob:
        bob.claim(rid, world["bob"])
    r = api(live, "mallory", "POST", "/api/v1/results", json=result_body(world["mallory"], rid))
    assert r.status_code == 409 and "claimed by tenant" in r.json()["detail"]
    r = api(live, "mallory", "POST", "/results/", json=finales_result(world["mallory"], rid))
    assert r.status_code == 409
    # nor may mallory pass off bob's tenant as hers
    r = api(live, "mallory", "POST", "/api/v1/results", json=result_body(world["bob"], rid))
    assert r.status_code == 403
    assert status_of(live, rid)["status"] == "claimed" and results_of(live, rid) == []
    r = api(live, "bob", "POST", "/api/v1/results", json=result_body(world["bob"], rid))
    assert r.status_code == 201, r.text


def test_amend_only_by_the_poster_or_an_admin_and_the_original_stays(live, world):
    rid = ask(live, world)
    with live.client("bob") as bob:
        bob.claim(rid, world["bob"])
    first = api(live, "bob", "POST", "/api/v1/results", json=result_body(world["bob"], rid, 0.5))
    assert first.status_code == 201
    hijack = api(
        live,
        "mallory",
        "POST",
        "/api/v1/results",
        json=result_body(world["mallory"], rid, 99.0, amend=True),
    )
    assert hijack.status_code == 403 and "amend" in hijack.json()["detail"]
    assert status_of(live, rid)["result_id"] == first.json()["id"]
    # the owner of the posting tenant amends; the original stays, marked amended
    second = api(
        live, "bob", "POST", "/api/v1/results", json=result_body(world["bob"], rid, 0.6, amend=True)
    )
    assert second.status_code == 201, second.text
    assert second.json()["amends"] == first.json()["id"]
    original = api(live, "admin", "GET", f"/api/v1/results/{first.json()['id']}").json()
    assert original["status"] == "amended" and original["data"] == cond_result(0.5)
    assert status_of(live, rid)["result_id"] == second.json()["id"]


# ------------------------------------------------------------------ fail, release


def test_fail_and_release_only_by_the_holder_of_the_claim(live, world):
    rid = ask(live, world)
    body = {"tenant_id": world["mallory"], "message": "sabotage"}
    r = api(live, "mallory", "POST", f"/api/v1/requests/{rid}/fail", json=body)
    assert r.status_code == 403, r.text
    with live.client("bob") as bob:
        bob.claim(rid, world["bob"])
    for retry in (False, True):
        r = api(
            live, "mallory", "POST", f"/api/v1/requests/{rid}/fail", json={**body, "retry": retry}
        )
        assert r.status_code == 403, r.text
    r = api(
        live,
        "mallory",
        "POST",
        f"/api/v1/requests/{rid}/release",
        json={"tenant_id": world["mallory"]},
    )
    assert r.status_code == 409
    r = api(live, "mallory", "POST", f"/requests/{rid}/update_status/?new_status=pending")
    assert r.status_code == 409
    assert status_of(live, rid)["status"] == "claimed"
    r = api(
        live,
        "bob",
        "POST",
        f"/api/v1/requests/{rid}/fail",
        json={"tenant_id": world["bob"], "message": "the cell leaked"},
    )
    assert r.status_code == 200 and r.json()["status"] == "failed"


# ------------------------------------------------------------------ FINALES reservations


def test_finales_reservation_is_a_claim_by_a_serving_tenant(live, world):
    nobody = fresh_user(live)  # a tenant-role user with no tenant at all
    rid = ask(live, world)
    r = api(live, nobody, "POST", f"/requests/{rid}/update_status/?new_status=reserved")
    assert r.status_code == 403 and "tenants" in r.json()["detail"], r.text
    assert status_of(live, rid)["status"] == "pending"
    # a user whose tenant serves another capability only
    other = fresh_user(live)
    with live.client(other) as c:
        tenant(c, f"x-{uid()}", [{"quantity": "density", "method": "molecular_dynamics"}])
    assert (
        api(live, other, "POST", f"/requests/{rid}/update_status/?new_status=reserved").status_code
        == 403
    )
    # mallory's station serves it: the reservation is that tenant's claim, with a lease
    r = api(live, "mallory", "POST", f"/requests/{rid}/update_status/?new_status=reserved")
    assert r.status_code == 200, r.text
    req = status_of(live, rid)
    assert req["status"] == "claimed" and req["claimed_by"] == world["mallory"]
    assert req["lease_expires_at"] is not None
    with live.client("bob") as bob, pytest.raises(ConflictError):
        bob.claim(rid, world["bob"])
    # nobody but the holder gives it back (FINALES "pending")
    r = api(live, "bob", "POST", f"/requests/{rid}/update_status/?new_status=pending")
    assert r.status_code == 409
    r = api(live, "mallory", "POST", f"/requests/{rid}/update_status/?new_status=pending")
    assert r.status_code == 200
    assert status_of(live, rid)["status"] == "pending"


def test_finales_reservation_lease_expires(live, world):
    rid = ask(live, world)
    with live.client("mallory") as c:
        c.claim(rid, world["mallory"], lease_seconds=0.5)  # the same lease as a reservation
    import time

    deadline = time.monotonic() + 20
    while status_of(live, rid)["status"] != "pending":
        assert time.monotonic() < deadline, "the lease did not expire"
        time.sleep(0.3)
    r = api(live, "bob", "POST", f"/requests/{rid}/update_status/?new_status=reserved")
    assert r.status_code == 200 and status_of(live, rid)["claimed_by"] == world["bob"]


# ------------------------------------------------------------------ campaigns


def test_requests_join_a_campaign_only_by_its_owner_or_group(live, world):
    with live.client("alice") as c:
        public = c.create_campaign(f"open-{uid()}", {}, tenant_id=world["asker"])
        group = c.create_campaign(
            f"lab-{uid()}",
            {},
            tenant_id=world["asker"],
            access="restricted",
            access_groups=["lab-a"],
        )
        mine = c.create_request(
            *CAP, cond_params(), tenant_id=world["asker"], campaign_id=public["id"]
        )
        assert mine["campaign_id"] == public["id"]
    with live.client("mallory") as c:
        planner = tenant(c, f"m-planner-{uid()}", kind="planner")["id"]
        with pytest.raises(AuthError) as exc:
            c.create_request(*CAP, cond_params(), tenant_id=planner, campaign_id=public["id"])
        assert exc.value.status_code == 403
    member = fresh_user(live, groups=["lab-a"])
    with live.client(member) as c:
        planner = tenant(c, f"g-planner-{uid()}", kind="planner")["id"]
        joined = c.create_request(*CAP, cond_params(), tenant_id=planner, campaign_id=group["id"])
        assert joined["campaign_id"] == group["id"]
        with pytest.raises(AuthError):
            c.create_request(*CAP, cond_params(), tenant_id=planner, campaign_id=public["id"])
    # a tenant holding the claim of a campaign's request adds a sub-request to it
    with live.client("bob") as c:
        c.claim(mine["id"], world["bob"])
        sub = c.create_request(
            *CAP,
            cond_params(),
            tenant_id=world["bob"],
            parent_id=mine["id"],
            campaign_id=public["id"],
        )
        assert sub["campaign_id"] == public["id"]


# ------------------------------------------------------------------ capabilities


def new_capability(name: str) -> dict:
    return {
        "quantity": name,
        "method": "m",
        "parameter_schema": {"type": "object", "properties": {"x": {"type": "number"}}},
        "result_schema": {"type": "object", "properties": {"y": {"type": "number"}}},
    }


def test_defining_a_capability_is_a_role_right(live, tmp_path):
    spec = new_capability(f"q{uid()}")
    r = api(live, "mallory", "POST", "/api/v1/capabilities", json=spec)
    assert r.status_code == 403
    assert "maintainer" in r.json()["detail"] and "bigmap user role" in r.json()["detail"]
    assert api(live, "olga", "POST", "/api/v1/capabilities", json=spec).status_code == 403
    assert api(live, "alice", "POST", "/api/v1/capabilities", json=spec).status_code == 201
    # the same definition again is no new definition: open to a tenant user
    assert api(live, "mallory", "POST", "/api/v1/capabilities", json=spec).status_code == 200
    # a worker of a plain tenant user that brings a new capability: a clear refusal
    t = Tenant(f"w-{uid()}")

    @t.capability(
        f"q{uid()}", "m", parameters=spec["parameter_schema"], result=spec["result_schema"]
    )
    def run(params, ctx):
        return {}

    with BrokerClient(live.url, live.tokens["mallory"]) as c, pytest.raises(RuntimeError) as exc:
        t.register(c)
    assert "maintainer" in str(exc.value) and "bigmap user role" in str(exc.value)
    # an admin grants the right on the command line; the next token has it
    name = fresh_user(live)
    out = subprocess.run(
        [sys.executable, "-m", "bigmap.cli", "user", "role", name, "maintainer"],
        env={**__import__("os").environ, "BIGMAP_DATABASE_URL": live.server.db_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0 and "maintainer" in out.stdout, out.stdout + out.stderr
    token = live.server.broker.issue_token(name)[0]
    with BrokerClient(live.url, token) as c:
        assert t.register(c)["name"] == t.name


def test_identical_registrations_race_and_all_succeed(live):
    spec = new_capability(f"race{uid()}")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        caps = list(
            pool.map(
                lambda _: api(live, "alice", "POST", "/api/v1/capabilities", json=spec), range(8)
            )
        )
    assert [r.status_code for r in caps].count(201) == 1, [r.text for r in caps]
    assert {r.status_code for r in caps} <= {200, 201}
    assert len({r.json()["id"] for r in caps}) == 1
    body = {
        "name": f"race-{uid()}",
        "kind": "simulation",
        "limitations": [{"quantity": spec["quantity"], "method": "m"}],
    }
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        tenants = list(
            pool.map(lambda _: api(live, "alice", "POST", "/api/v1/tenants", json=body), range(8))
        )
    assert {r.status_code for r in tenants} <= {200, 201}, [r.text for r in tenants]
    assert len({r.json()["id"] for r in tenants}) == 1
    # another definition under the same name: 409, saying what differs
    other = {**spec, "result_schema": {"type": "object", "properties": {"z": {"type": "string"}}}}
    r = api(live, "alice", "POST", "/api/v1/capabilities", json=other)
    assert r.status_code == 409
    assert "result_schema differs in properties y, z" in r.json()["detail"], r.text


def test_workers_starting_together_all_register(live):
    """Eight runtimes of the same tenant registering at once: none exits on a 409."""
    name = f"q{uid()}"
    schema = {"type": "object", "properties": {"x": {"type": "number"}}}

    def start(_):
        t = Tenant(f"twin-{name}")

        @t.capability(name, "m", parameters=schema, result=schema)
        def run(params, ctx):
            return params

        with BrokerClient(live.url, live.tokens["bob"]) as c:
            return t.register(c)["id"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(start, range(8)))
    assert len(set(ids)) == 1


# ------------------------------------------------------------------ redaction (item 7)

SECRET = 0.4242917


@pytest.fixture(scope="module")
def leaky_campaign(live, world):
    """A public campaign of alice's whose best result is confidential (alice's own)."""
    with live.client("alice") as c:
        camp = c.create_campaign(f"leaky-{uid()}", {}, tenant_id=world["asker"])
        rid = c.create_request(
            *CAP,
            cond_params(),
            tenant_id=world["asker"],
            campaign_id=camp["id"],
            access="confidential",
        )["id"]
        c.claim(rid, world["alice_station"])
        res = c.post_result(rid, world["alice_station"], cond_result(SECRET))
        best = {
            "x": {"temperature": 301.15},
            "y": {"conductivity": SECRET},
            "request_id": rid,
            "result_id": res["id"],
        }
        summary = {
            "step": 3,
            "strategy": "bo",
            "n_results": 1,
            "best": best,
            "best_so_far": [{"n": 1, "value": SECRET}],  # a value with no id beside it
        }
        c.update_campaign(camp["id"], summary=summary)
        c.add_campaign_event(camp["id"], "stop", {"reason": "budget", "best": best})
        c.add_campaign_event(camp["id"], "note", {"text": f"see {res['id']}"})
    return {"id": camp["id"], "request": rid, "result": res["id"]}


def leaks(text: str, leaky) -> list[str]:
    return [s for s in (str(SECRET), leaky["result"], leaky["request"]) if s in text]


def test_summary_and_best_redacted_on_json_routes(live, leaky_campaign):
    cid = leaky_campaign["id"]
    for user in ("mallory", "olga"):
        one = api(live, user, "GET", f"/api/v1/campaigns/{cid}")
        assert one.status_code == 200
        summary = one.json()["summary"]
        assert summary["step"] == 3 and summary["n_results"] == 1 and "redacted" in summary
        assert summary["best"] is None and summary["best_so_far"] == []
        listed = api(live, user, "GET", "/api/v1/campaigns").text
        events = api(live, user, "GET", f"/api/v1/campaigns/{cid}/events")
        assert [e["kind"] for e in events.json()] == ["stop", "note"]
        for text in (one.text, listed, events.text):
            assert leaks(text, leaky_campaign) == []
        found = api(live, user, "GET", "/api/v1/search", params={"q": str(SECRET)}).json()
        assert cid not in json_text(found)
    # the owner and an admin see it whole
    for user in ("alice", "admin"):
        one = api(live, user, "GET", f"/api/v1/campaigns/{cid}").json()
        assert one["summary"]["best"]["y"]["conductivity"] == SECRET
        events = api(live, user, "GET", f"/api/v1/campaigns/{cid}/events").json()
        assert events[0]["data"]["best"]["result_id"] == leaky_campaign["result"]


def json_text(doc) -> str:
    import json

    return json.dumps(doc)


def test_summary_and_best_redacted_in_rdf_jsonld_and_sparql(live, leaky_campaign):
    cid = leaky_campaign["id"]
    query = "SELECT ?s ?p ?o WHERE { ?s ?p ?o }"
    paths = [
        ("GET", f"/api/v1/jsonld/campaigns/{cid}", {}),
        ("GET", f"/api/v1/rdf/campaigns/{cid}", {}),
        ("GET", f"/api/v1/rdf/campaigns/{cid}", {"params": {"format": "jsonld"}}),
        ("GET", f"/api/v1/campaigns/{cid}/archive", {}),
    ]
    for user in ("mallory", "alice"):
        for method, path, kw in paths:
            r = api(live, user, method, path, **kw)
            assert r.status_code == 200, (path, r.text[:300])
            text = r.text
            if path.endswith("archive"):
                import io
                import zipfile

                with zipfile.ZipFile(io.BytesIO(r.content)) as z:
                    text = " ".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())
            found = leaks(text, leaky_campaign)
            assert found == [] if user == "mallory" else str(SECRET) in found, (user, path)
        r = api(
            live,
            user,
            "POST",
            "/api/v1/sparql",
            content=query,
            headers={
                "Content-Type": "application/sparql-query",
                "Accept": "application/sparql-results+json",
            },
        )
        assert r.status_code == 200, r.text[:300]
        found = leaks(r.text, leaky_campaign)
        assert found == [] if user == "mallory" else str(SECRET) in found, user
