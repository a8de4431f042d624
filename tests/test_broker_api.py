"""The native API (/api/v1) against a live server, on SQLite and on PostgreSQL."""

from __future__ import annotations

import concurrent.futures
import json
import time
import uuid

import httpx
import pytest

from bigmap.client import AuthError, ConflictError, NotFoundError, ValidationFailed
from tests.conftest import FINALES

EC = {"SMILES": "C1COC(=O)O1", "InChIKey": "KMTRUDSVKNLOMY-UHFFFAOYSA-N"}
EMC = {"SMILES": "CCOC(=O)OC", "InChIKey": "JBTWLSYIZRCDFO-UHFFFAOYSA-N"}
LIPF6 = {"SMILES": "[Li+].F[P-](F)(F)(F)(F)F", "InChIKey": "AXPLOJNSKRXQPA-UHFFFAOYSA-N"}


def comp(chem, x):
    return {"chemical": chem, "fraction": x, "fraction_type": "molPerMol"}


def formulation(ec=0.3, salt=0.1):
    return [comp(EC, ec), comp(LIPF6, salt), comp(EMC, round(1 - ec - salt, 6))]


def cond_params(temperature=301.15, **kw):
    return {"formulation": formulation(**kw), "temperature": temperature}


def cond_result(value=0.9):
    """The FINALES example result (valid against its schema) with another value."""
    data = json.loads((FINALES / "examples/results/conductivity/two_electrode.json").read_text())[
        "data"
    ]
    data["conductivity"]["values"] = [value]
    return data


def tenant(c, name, provides=(), kind="instrument"):
    return c.register_tenant({"name": name, "kind": kind, "limitations": list(provides)})


def station(c, name, t_range=(290.0, 310.0)):
    return tenant(
        c,
        name,
        [
            {
                "quantity": "conductivity",
                "method": "two_electrode",
                "limitations": {
                    "formulation": [
                        [
                            {
                                "chemical": EC,
                                "fraction": [{"min": 0, "max": 0.6}],
                                "fraction_type": ["molPerMol"],
                            },
                            {
                                "chemical": LIPF6,
                                "fraction": [{"min": 0, "max": 0.2}],
                                "fraction_type": ["molPerMol"],
                            },
                            {
                                "chemical": EMC,
                                "fraction": [{"min": 0.2, "max": 1}],
                                "fraction_type": ["molPerMol"],
                            },
                        ]
                    ],
                    "temperature": [{"min": t_range[0], "max": t_range[1]}],
                },
            }
        ],
    )


def uniq(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def alice(live):
    with live.client("alice") as c:
        yield c


@pytest.fixture
def planner(alice):
    return tenant(alice, uniq("planner"), kind="planner")


def test_health_and_openapi(live):
    h = httpx.get(f"{live.url}/api/v1/health").json()
    assert h["status"] == "ok" and h["revision"]
    spec = httpx.get(f"{live.url}/openapi.json").json()
    assert "/api/v1/requests" in spec["paths"] and "/requests/" in spec["paths"]


def test_auth_required_and_checked(live):
    assert httpx.get(f"{live.url}/api/v1/requests").status_code == 401
    r = httpx.get(f"{live.url}/api/v1/requests", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401 and "invalid token" in r.json()["detail"]
    tok = httpx.post(
        f"{live.url}/api/v1/auth/token", data={"username": "alice", "password": "alice-password"}
    )
    assert tok.status_code == 200 and tok.json()["token_type"] == "bearer"
    bad = httpx.post(
        f"{live.url}/api/v1/auth/token", data={"username": "alice", "password": "wrong"}
    )
    assert bad.status_code == 401


def test_capabilities_catalogue_and_templates(alice, live):
    caps = {(c["quantity"], c["method"]) for c in alice.capabilities()}
    assert ("conductivity", "two_electrode") in caps and len(caps) >= 13
    tpl = alice.template("conductivity", "two_electrode")
    assert set(tpl["parameters"]) == {"formulation", "temperature"}
    with pytest.raises(NotFoundError):
        alice.capability("conductivity", "no_such_method")
    # the same definition again is fine; a different one is a conflict
    cap = alice.capability("conductivity", "two_electrode")
    same = {k: cap[k] for k in ("quantity", "method", "parameter_schema", "result_schema")}
    assert alice.add_capability(same)["id"] == cap["id"]
    # descriptive fields differ without conflict (and fill what is missing)
    described = alice.add_capability({**same, "description": "two-electrode cell", "cost": 10.0})
    assert described["id"] == cap["id"] and described["cost"] in (cap["cost"], 10.0)
    with pytest.raises(ConflictError):
        alice.add_capability({**same, "result_schema": {"type": "object"}})
    with pytest.raises(ValidationFailed) as exc:
        alice.add_capability(
            {**same, "method": uniq("m"), "result_schema": {"type": "no-such-type"}}
        )
    assert exc.value.detail[0]["path"] == "$.result_schema"
    with pytest.raises(AuthError):
        live.client("olga").add_capability({**same, "method": uniq("m")})


def test_tenant_registration_checks_limitations(alice):
    t = station(alice, uniq("asab"))
    assert t["owner"] == "alice" and t["provides"][0]["method"] == "two_electrode"
    assert alice.capability("conductivity", "two_electrode")["providers"] >= 1
    with pytest.raises(ValidationFailed) as exc:
        tenant(
            alice,
            uniq("bad"),
            [
                {
                    "quantity": "conductivity",
                    "method": "two_electrode",
                    "limitations": {"temperature": [{"min": 400, "max": 300}]},
                }
            ],
        )
    assert exc.value.detail[0]["path"] == "$.limitations[0].limitations.temperature[0]"
    with pytest.raises(ValidationFailed) as exc:
        tenant(
            alice,
            uniq("bad"),
            [{"quantity": "conductivity", "method": "telepathy", "limitations": {}}],
        )
    assert "unknown capability" in exc.value.detail[0]["msg"]
    # registering again (same owner and name) updates, keeps the id
    again = station(alice, t["name"], t_range=(280, 320))
    assert again["id"] == t["id"]
    assert again["provides"][0]["limitations"]["temperature"] == [{"min": 280, "max": 320}]


def test_request_validation_is_422_with_json_paths(alice, planner):
    bad = cond_params()
    bad["formulation"][0]["fraction"] = "a lot"
    with pytest.raises(ValidationFailed) as exc:
        alice.create_request("conductivity", "two_electrode", bad, tenant_id=planner["id"])
    assert exc.value.detail[0]["path"] == "$.parameters.two_electrode.formulation[0].fraction"
    with pytest.raises(ValidationFailed) as exc:
        alice.create_request("conductivity", "telepathy", {}, tenant_id=planner["id"])
    assert exc.value.detail[0]["path"] == "$.methods[0]"
    with pytest.raises(ValidationFailed) as exc:
        alice.create_request("levitation", "two_electrode", cond_params(), tenant_id=planner["id"])
    assert exc.value.detail[0]["path"] == "$.quantity"
    with pytest.raises(ValidationFailed) as exc:
        alice.create_request(
            "conductivity",
            ["two_electrode", "molecular_dynamics"],
            {"two_electrode": cond_params()},
            tenant_id=planner["id"],
        )
    assert exc.value.detail[0]["path"] == "$.parameters.molecular_dynamics"
    # a tenant that does not exist, or belongs to someone else
    with pytest.raises(ValidationFailed) as exc:
        alice.create_request(
            "conductivity", "two_electrode", cond_params(), tenant_id=str(uuid.uuid4())
        )
    assert exc.value.detail[0]["path"] == "$.tenant_id"


def test_token_acts_only_as_its_own_tenants(live, planner):
    with live.client("bob") as bob:
        with pytest.raises(AuthError) as exc:
            bob.create_request(
                "conductivity", "two_electrode", cond_params(), tenant_id=planner["id"]
            )
        assert exc.value.status_code == 403
    with live.client("admin") as admin, pytest.raises(AuthError):
        admin.create_request(
            "conductivity", "two_electrode", cond_params(), tenant_id=planner["id"]
        )
    with live.client("olga") as olga, pytest.raises(AuthError):
        olga.register_tenant({"name": uniq("o")})


def test_unservable_requests_are_kept_and_marked(alice, planner):
    # refused by default, with the reason; queued on demand
    with pytest.raises(ValidationFailed, match="no tenant can serve it now"):
        alice.create_request(
            "conductivity", "two_electrode", cond_params(temperature=250.0), tenant_id=planner["id"]
        )
    req = alice.create_request(
        "conductivity",
        "two_electrode",
        cond_params(temperature=250.0),
        tenant_id=planner["id"],
        queue=True,
    )
    assert req["status"] == "pending"
    assert req["status_info"]["servable"] is False and req["status_info"]["unservable_reason"]
    st = station(alice, uniq("cold-station"), t_range=(240, 260))
    time.sleep(0.05)
    assert alice.request(req["id"])["status_info"]["servable"] is True
    alice.register_tenant(
        {"name": st["name"], "kind": "instrument", "limitations": []}
    )  # stops providing


def test_full_lifecycle_with_provenance_and_files(alice, planner):
    st = station(alice, uniq("asab"))
    parent = alice.create_request(
        "conductivity", "two_electrode", cond_params(), tenant_id=planner["id"]
    )
    req = alice.create_request(
        "conductivity",
        "two_electrode",
        cond_params(),
        tenant_id=planner["id"],
        parent_id=parent["id"],
        priority=999,
    )
    claimed = alice.claim_next(st["id"], lease_seconds=30)
    assert (
        claimed["id"] == req["id"]
        and claimed["status"] == "claimed"
        and claimed["claimed_by"] == st["id"]
    )
    res = alice.post_result(
        req["id"],
        st["id"],
        cond_result(),
        software={"name": "asab-control", "version": "2.1"},
        provenance={"instrument": "emulated ASAB"},
        files=[("spectrum.csv", b"f,z\n1,2\n", "text/csv")],
    )
    prov = res["provenance"]
    assert prov["tenant"]["id"] == st["id"] and prov["software"] == {
        "name": "asab-control",
        "version": "2.1",
    }
    assert prov["parent_request_id"] == parent["id"] and prov["request_id"] == req["id"]
    assert (
        prov["sha256"] == res["sha256"]
        and len(res["sha256"]) == 64
        and prov["instrument"] == "emulated ASAB"
    )
    assert res["files"][0]["sha256"] == prov["files"][0]["sha256"]
    assert alice.download(res["files"][0]["id"]) == b"f,z\n1,2\n"
    done = alice.request(req["id"])
    assert done["status"] == "resolved" and done["result_id"] == res["id"]
    log = [(e["old_status"], e["new_status"]) for e in alice.request_log(req["id"])]
    assert log == [(None, "pending"), ("pending", "claimed"), ("claimed", "resolved")]
    assert all(e["user"] == "alice" for e in alice.request_log(req["id"]))
    assert [c["id"] for c in alice.children(parent["id"])] == [req["id"]]
    assert alice.result_of(req["id"])["id"] == res["id"]


def test_result_rules(alice, planner):
    st = station(alice, uniq("asab"))
    req = alice.create_request(
        "conductivity", "two_electrode", cond_params(), tenant_id=planner["id"]
    )
    with pytest.raises(ValidationFailed) as exc:
        alice.post_result(req["id"], st["id"], {"conductivity": {"values": "high"}})
    paths = {d["path"] for d in exc.value.detail}
    assert "$.data.conductivity.values" in paths
    assert alice.request(req["id"])["status"] == "pending"  # nothing half-written
    first = alice.post_result(req["id"], st["id"], cond_result(0.9), idempotency_key="k1")
    # same key: the first result; same data again: the first result
    assert (
        alice.post_result(req["id"], st["id"], cond_result(0.1), idempotency_key="k1")["id"]
        == first["id"]
    )
    assert alice.post_result(req["id"], st["id"], cond_result(0.9))["id"] == first["id"]
    with pytest.raises(ConflictError) as exc:
        alice.post_result(req["id"], st["id"], cond_result(0.8))
    assert "amend" in exc.value.message
    amended = alice.post_result(req["id"], st["id"], cond_result(0.8), amend=True)
    assert amended["amends"] == first["id"] and alice.result(first["id"])["status"] == "amended"
    assert alice.request(req["id"])["result_id"] == amended["id"]
    with pytest.raises(ConflictError):  # a resolved request cannot be reopened
        alice.retract(req["id"])
    with pytest.raises(ValidationFailed):
        alice.post_result(req["id"], st["id"], cond_result(), method="molecular_dynamics")
    with pytest.raises(NotFoundError):
        alice.post_result(str(uuid.uuid4()), st["id"], cond_result())


def test_unknown_and_malformed_ids_are_404(live, alice):
    for path in (
        "/api/v1/requests/",
        "/api/v1/results/",
        "/api/v1/tenants/",
        "/api/v1/campaigns/",
        "/api/v1/files/",
    ):
        for rid in (str(uuid.uuid4()), "not-a-uuid"):
            r = httpx.get(f"{live.url}{path}{rid}", headers=live.headers())
            assert r.status_code == 404, (path, rid, r.text)


def test_claim_is_exclusive_under_20_concurrent_claimers(live, alice, planner):
    stations = [station(alice, uniq(f"s{i}")) for i in range(4)]
    req = alice.create_request(
        "conductivity", "two_electrode", cond_params(), tenant_id=planner["id"]
    )

    def claim(i):
        with httpx.Client(base_url=live.url, headers=live.headers(), timeout=30) as h:
            return h.post(
                f"/api/v1/requests/{req['id']}/claim", json={"tenant_id": stations[i % 4]["id"]}
            ).status_code

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(claim, range(20)))
    assert codes.count(200) == 1 and codes.count(409) == 19, codes
    got = alice.request(req["id"])
    assert got["status"] == "claimed" and got["claimed_by"] in {s["id"] for s in stations}


def test_claim_respects_limitations_and_owner(live, alice, planner):
    st = station(alice, uniq("warm"), t_range=(300, 310))
    req = alice.create_request(
        "conductivity",
        "two_electrode",
        cond_params(temperature=250.0),
        tenant_id=planner["id"],
        queue=True,  # outside every station's range: kept only when queued
    )
    with pytest.raises(ConflictError) as exc:
        alice.claim(req["id"], st["id"])
    assert "outside" in exc.value.message
    with live.client("bob") as bob, pytest.raises(AuthError):
        bob.claim(req["id"], st["id"])
    alice.retract(req["id"], "wrong temperature")
    assert alice.request(req["id"])["status"] == "retracted"


def test_expired_lease_returns_request_to_queue(alice, planner):
    st = station(alice, uniq("slow"))
    req = alice.create_request(
        "conductivity", "two_electrode", cond_params(), tenant_id=planner["id"], priority=1000
    )
    assert alice.claim(req["id"], st["id"], lease_seconds=0.3)["status"] == "claimed"
    with pytest.raises(ConflictError):
        alice.claim(req["id"], st["id"])
    time.sleep(1.0)
    back = alice.request(req["id"])
    assert back["status"] == "pending" and back["claimed_by"] is None
    assert any("lease expired" in e["message"] for e in alice.request_log(req["id"]))
    with pytest.raises(ConflictError):  # the late tenant cannot renew
        alice.renew_lease(req["id"], st["id"])
    again = alice.claim(req["id"], st["id"], lease_seconds=30)
    assert again["attempts"] == 2
    renewed = alice.renew_lease(
        req["id"], st["id"], 60, progress={"fraction": 0.5, "message": "equilibrating"}
    )
    assert renewed["status_info"]["progress"]["fraction"] == 0.5
    alice.release(req["id"], st["id"])
    assert alice.request(req["id"])["status"] == "pending"
    alice.retract(req["id"])


def test_failure_reported_with_reason(alice, planner):
    st = station(alice, uniq("flaky"))
    req = alice.create_request(
        "conductivity", "two_electrode", cond_params(), tenant_id=planner["id"], priority=1000
    )
    alice.claim(req["id"], st["id"])
    retry = alice.fail(
        req["id"], st["id"], "bubble in the cell", kind="instrument_error", retry=True
    )
    assert (
        retry["status"] == "pending"
        and retry["status_info"]["last_error"]["message"] == "bubble in the cell"
    )
    alice.claim(req["id"], st["id"])
    failed = alice.fail(req["id"], st["id"], "pump broken")
    assert failed["status"] == "failed"
    from bigmap.client import RequestFailed

    with pytest.raises(RequestFailed, match="pump broken"):
        alice.result_of(req["id"])
    with pytest.raises(ConflictError):
        alice.post_result(req["id"], st["id"], cond_result())


def test_request_with_several_methods(alice, planner):
    st = station(alice, uniq("asab"))
    md = {"formulation": formulation(), "temperature": 301.15}
    req = alice.create_request(
        "conductivity",
        ["molecular_dynamics", "two_electrode"],
        {"molecular_dynamics": md, "two_electrode": cond_params()},
        tenant_id=planner["id"],
        priority=1000,
    )
    claimed = alice.claim_next(st["id"])
    assert claimed["id"] == req["id"] and claimed["claimed_method"] == "two_electrode"
    res = alice.post_result(req["id"], st["id"], cond_result())
    assert res["method"] == "two_electrode"


def test_idempotent_request_creation(alice, planner):
    a = alice.create_request(
        "conductivity",
        "two_electrode",
        cond_params(),
        tenant_id=planner["id"],
        idempotency_key="same",
    )
    b = alice.create_request(
        "conductivity",
        "two_electrode",
        cond_params(temperature=305),
        tenant_id=planner["id"],
        idempotency_key="same",
    )
    assert a["id"] == b["id"]


def test_unsolicited_result(alice):
    st = station(alice, uniq("asab"))
    res = alice.post_result(
        None,
        st["id"],
        cond_result(),
        quantity="conductivity",
        method="two_electrode",
        parameters=cond_params(),
    )
    req = alice.request(res["request_id"])
    assert req["status"] == "unsolicited" and req["result_id"] == res["id"]
    with pytest.raises(ValidationFailed):
        alice.post_result(
            None, st["id"], cond_result(), quantity="conductivity", method="two_electrode"
        )


def test_campaign_events(alice, planner, live):
    camp = alice.create_campaign(
        uniq("camp"),
        {"objective": "max conductivity"},
        tenant_id=planner["id"],
        idempotency_key="c1",
    )
    assert (
        alice.create_campaign("x", {}, tenant_id=planner["id"], idempotency_key="c1")["id"]
        == camp["id"]
    )
    e1 = alice.add_campaign_event(camp["id"], "proposal", {"step": 1}, idempotency_key="p1")
    e2 = alice.add_campaign_event(camp["id"], "model_state", {"step": 1})
    assert (e1["seq"], e2["seq"]) == (1, 2)
    assert (
        alice.add_campaign_event(camp["id"], "proposal", {"step": 1}, idempotency_key="p1")["seq"]
        == 1
    )
    assert [e["seq"] for e in alice.campaign_events(camp["id"], after=1)] == [2]
    assert (
        alice.update_campaign(camp["id"], status="running", control="pause")["control"] == "pause"
    )
    with live.client("bob") as bob, pytest.raises(AuthError):
        bob.add_campaign_event(camp["id"], "proposal", {})
    with pytest.raises(ValidationFailed):
        alice.update_campaign(camp["id"], control="explode")


def test_tenant_claims_show_only_visible_requests(live, alice, planner):
    st = station(alice, uniq("private-station"))
    req = alice.create_request(
        "conductivity",
        "two_electrode",
        cond_params(),
        tenant_id=planner["id"],
        priority=1000,
        access="confidential",
    )
    alice.claim(req["id"], st["id"])
    mine = [c["request_id"] for c in alice.tenant(st["id"])["claims"]]
    assert req["id"] in mine
    with live.client("bob") as bob:
        theirs = [
            c["request_id"] for t in bob.tenants() if t["id"] == st["id"] for c in t["claims"]
        ]
        assert req["id"] not in theirs
    alice.release(req["id"], st["id"])
    alice.retract(req["id"])
