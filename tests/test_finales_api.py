"""FINALES 1.1.0 clients, unchanged: the example files of FINALES sent over HTTP exactly as a
FINALES client sends them (``requests``-style calls, form login, trailing slashes)."""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import FINALES, FINALES_CAPABILITIES, data_files

EXAMPLES = FINALES / "examples"
VALID = {
    "conductivity/polynomial_interpolation",
    "conductivity/two_electrode",
    "cycling_channel/service",
    "electrolyte/flow",
}
INVALID = {
    "capacity/cycling",
    "cell_assembly/autobass_assembly",
    "degradationEOL/degradation_model",
    "degradationEOL/degradation_workflow",
    "transport/service",
}


class Finales:
    """A FINALES client: log in with the form, then Bearer on every call."""

    def __init__(self, url: str, user: str, password: str, slash: bool = True) -> None:
        self.url = url
        self.slash = slash
        tok = httpx.post(
            f"{url}/user_management/authenticate{'/' if slash else ''}",
            data={
                "grant_type": "",
                "username": user,
                "password": password,
                "scope": "",
                "client_id": "",
                "client_secret": "",
            },
            headers={
                "accept": "application/json",
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        assert tok.status_code == 200, tok.text
        body = tok.json()
        self.headers = {
            "accept": "application/json",
            "Authorization": f"{body['token_type'].capitalize()} {body['access_token']}",
        }

    def path(self, p: str) -> str:
        p = p.rstrip("/")
        return f"{self.url}{p}/" if self.slash else f"{self.url}{p}"

    def get(self, p: str, **params) -> httpx.Response:
        return httpx.get(self.path(p), params=params, headers=self.headers, timeout=30)

    def post(self, p: str, json_body=None, **params) -> httpx.Response:
        return httpx.post(
            self.path(p), json=json_body, params=params, headers=self.headers, timeout=30
        )


@pytest.fixture(params=[True, False], ids=["slash", "no-slash"])
def fin(request, live) -> Finales:
    return Finales(live.url, "alice", "alice-password", slash=request.param)


@pytest.fixture(scope="module")
def tenant_uuid(live) -> str:
    """A tenant registered from a FINALES tenant file with the CLI, owned by alice."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bigmap.cli",
            "tenant",
            "add",
            str(EXAMPLES / "tenants/conductivity/ASAB.json"),
            "--owner",
            "alice",
            "--db",
            live.server.db_url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def load(kind: str, name: str) -> dict:
    return json.loads((EXAMPLES / kind / f"{name}.json").read_text())


INSIDE_ASAB = {
    "formulation": [
        {
            "chemical": {"SMILES": "C1COC(=O)O1", "InChIKey": "KMTRUDSVKNLOMY-UHFFFAOYSA-N"},
            "fraction": 0.3,
            "fraction_type": "molPerMol",
        },
        {
            "chemical": {
                "SMILES": "[Li+].F[P-](F)(F)(F)(F)F",
                "InChIKey": "AXPLOJNSKRXQPA-UHFFFAOYSA-N",
            },
            "fraction": 0.1,
            "fraction_type": "molPerMol",
        },
        {
            "chemical": {"SMILES": "CCOC(=O)OC", "InChIKey": "JBTWLSYIZRCDFO-UHFFFAOYSA-N"},
            "fraction": 0.6,
            "fraction_type": "molPerMol",
        },
    ],
    "temperature": 301.15,
}


def inside_request(tenant_uuid: str) -> dict:
    """A conductivity request inside the limitations of FINALES' ASAB tenant."""
    return {
        "quantity": "conductivity",
        "methods": ["two_electrode"],
        "parameters": {"two_electrode": INSIDE_ASAB},
        "tenant_uuid": tenant_uuid,
    }


def test_login_refused_with_wrong_password(live):
    r = httpx.post(
        f"{live.url}/user_management/authenticate", data={"username": "alice", "password": "nope"}
    )
    assert r.status_code == 401


def test_every_example_request_is_accepted(fin, tenant_uuid):
    for path in data_files(EXAMPLES / "requests", "*.json", 10):
        body = json.loads(path.read_text())
        body["tenant_uuid"] = tenant_uuid
        r = fin.post("/requests/", body)
        assert r.status_code == 200, (path, r.text)
        rid = r.json()
        assert uuid.UUID(rid)
        info = fin.get(f"/requests/{rid}").json()
        assert set(info) == {"uuid", "ctime", "status", "request"} and info["status"] == "pending"
        assert (
            info["request"]["parameters"] == body["parameters"]
            and info["request"]["tenant_uuid"] == tenant_uuid
        )


def test_example_results_valid_accepted_invalid_422(fin, tenant_uuid):
    accepted, refused = set(), set()
    for path in data_files(EXAMPLES / "results", "*.json", 9):
        name = f"{path.parent.name}/{path.stem}"
        result = json.loads(path.read_text())
        method = result["method"][0]
        request = {
            "quantity": result["quantity"],
            "methods": [method],
            "parameters": result["parameters"],
            "tenant_uuid": tenant_uuid,
        }
        rid = fin.post("/requests/", request).json()
        result["request_uuid"] = rid
        result["tenant_uuid"] = tenant_uuid
        r = fin.post("/results/", result)
        if r.status_code == 200:
            accepted.add(name)
            res_id = r.json()
            info = fin.get(f"/results/{res_id}").json()
            assert (
                set(info) == {"uuid", "ctime", "status", "result"} and info["status"] == "original"
            )
            assert (
                info["result"]["data"] == result["data"] and info["result"]["request_uuid"] == rid
            )
            assert fin.get(f"/requests/{rid}").json()["status"] == "resolved"
            assert fin.get(f"/results_requested/{rid}").json()["uuid"] == res_id
        else:
            assert r.status_code == 422, (name, r.status_code, r.text)
            detail = r.json()["detail"]
            assert all(d["path"].startswith("$.data") for d in detail), detail
            refused.add(name)
            assert fin.get(f"/requests/{rid}").json()["status"] == "pending"  # nothing half-written
            assert fin.get(f"/results_requested/{rid}").json() is None
    assert accepted == VALID and refused == INVALID


def test_bad_request_payloads_are_422_never_500(fin, tenant_uuid):
    body = load("requests/conductivity", "two_electrode")
    body["tenant_uuid"] = tenant_uuid
    bad = json.loads(json.dumps(body))
    bad["parameters"]["two_electrode"]["formulation"][1]["fraction"] = "much"
    r = fin.post("/requests/", bad)
    assert (
        r.status_code == 422
        and r.json()["detail"][0]["path"] == "$.parameters.two_electrode.formulation[1].fraction"
    )
    r = fin.post("/requests/", {**body, "tenant_uuid": str(uuid.uuid4())})
    assert r.status_code == 422 and "does not exist" in r.text
    r = fin.post("/requests/", {**body, "tenant_uuid": "FINALES-tenant-7"})
    assert r.status_code == 422
    r = fin.post("/requests/", {"quantity": "conductivity"})
    assert r.status_code == 422
    r = httpx.post(
        fin.path("/requests/"),
        content=b"{not json",
        headers={**fin.headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 422


def test_unknown_ids_are_404(fin):
    for p in ("/requests/", "/results/", "/results_requested/"):
        assert fin.get(f"{p}{uuid.uuid4()}").status_code == 404
        assert fin.get(f"{p}garbage").status_code == 404


def test_reserve_is_exclusive_and_statuses_map(live, fin, tenant_uuid):
    outside = load("requests/conductivity", "two_electrode")
    outside["tenant_uuid"] = tenant_uuid
    rid = fin.post("/requests/", outside).json()
    r = fin.post(f"/requests/{rid}/update_status/", None, request_id=rid, new_status="reserved")
    assert r.status_code == 409 and "none of your tenants" in r.text
    rid = fin.post("/requests/", inside_request(tenant_uuid)).json()

    def reserve(_):
        return httpx.post(
            fin.path(f"/requests/{rid}/update_status/"),
            params={"request_id": rid, "new_status": "reserved"},
            headers=fin.headers,
            timeout=30,
        ).status_code

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(reserve, range(20)))
    assert codes.count(200) == 1 and codes.count(409) == 19, codes
    assert fin.get(f"/requests/{rid}").json()["status"] == "reserved"
    assert rid not in [p["uuid"] for p in fin.get("/pending_requests/").json()]
    r = fin.post(
        f"/requests/{rid}/update_status/",
        None,
        request_id=rid,
        new_status="pending",
        status_change_message="back",
    )
    assert r.status_code == 200 and fin.get(f"/requests/{rid}").json()["status"] == "pending"
    assert (
        fin.post(
            f"/requests/{rid}/update_status/", None, request_id=rid, new_status="flying"
        ).status_code
        == 422
    )
    assert (
        fin.post(
            f"/requests/{rid}/update_status/", None, request_id=rid, new_status="resolved"
        ).status_code
        == 422
    )
    assert (
        fin.post(
            f"/requests/{rid}/update_status/", None, request_id=rid, new_status="retracted"
        ).status_code
        == 200
    )
    assert fin.get(f"/requests/{rid}").json()["status"] == "retracted"


def test_resolved_request_cannot_be_reopened_and_result_status(fin, tenant_uuid):
    result = load("results/conductivity", "two_electrode")
    req = {
        "quantity": "conductivity",
        "methods": ["two_electrode"],
        "parameters": result["parameters"],
        "tenant_uuid": tenant_uuid,
    }
    rid = fin.post("/requests/", req).json()
    result.update(request_uuid=rid, tenant_uuid=tenant_uuid)
    res_id = fin.post("/results/", result).json()
    assert fin.post("/results/", result).json() == res_id  # same result again: the same one
    changed = json.loads(json.dumps(result))
    changed["data"]["conductivity"]["values"] = [0.7]
    assert fin.post("/results/", changed).status_code == 409
    r = fin.post(f"/requests/{rid}/update_status/", None, request_id=rid, new_status="pending")
    assert r.status_code == 409
    assert (
        fin.post(
            f"/results/{res_id}/update_status/", None, result_id=res_id, new_status="original"
        ).status_code
        == 422
    )
    assert (
        fin.post(
            f"/results/{res_id}/update_status/", None, result_id=res_id, new_status="deleted"
        ).status_code
        == 200
    )
    assert fin.get(f"/results/{res_id}").json()["status"] == "deleted"
    assert fin.get(f"/results_requested/{rid}").json() is None


def test_unsolicited_result(fin, tenant_uuid):
    result = load("results/electrolyte", "flow")
    result["tenant_uuid"] = tenant_uuid
    result["request_uuid"] = ""
    r = fin.post("/results/post_unsolicited_result", result)
    assert r.status_code == 200, r.text
    info = fin.get(f"/results/{r.json()}").json()
    req = fin.get(f"/requests/{info['result']['request_uuid']}").json()
    assert req["status"] == "unsolicited"
    broken = load("results/transport", "service")
    broken["tenant_uuid"] = tenant_uuid
    assert fin.post("/results/post_unsolicited_result", broken).status_code == 422


def test_pending_requests_offered_within_limitations(live, fin, tenant_uuid):
    body = load(
        "requests/conductivity", "two_electrode"
    )  # DMC at 298.15 K: outside ASAB's limitations
    body["tenant_uuid"] = tenant_uuid
    outside = fin.post("/requests/", body).json()
    inside = fin.post("/requests/", inside_request(tenant_uuid)).json()
    # one tenant's servable view: tenant_uuid
    offered = {
        p["uuid"]
        for p in fin.get(
            "/pending_requests/",
            quantity="conductivity",
            method="two_electrode",
            tenant_uuid=tenant_uuid,
        ).json()
    }
    assert inside in offered and outside not in offered
    # without it, every pending request the caller may see, as FINALES 1.1.0 answers, even
    # for a user whose tenants serve the capability (an optimiser asking for its own request)
    mine = {p["uuid"] for p in fin.get("/pending_requests/", quantity="conductivity").json()}
    assert {inside, outside} <= mine
    # an observer (no tenants of its own) sees everything pending
    olga = Finales(live.url, "olga", "olga-password")
    everything = {p["uuid"] for p in olga.get("/pending_requests/").json()}
    assert {inside, outside} <= everything
    assert {inside, outside} <= {p["uuid"] for p in fin.get("/all_requests/").json()}
    native = httpx.get(f"{live.url}/api/v1/requests/{outside}", headers=live.headers()).json()
    assert native["status_info"]["servable"] is False


def test_catalogue_paths(fin, tenant_uuid):
    caps = fin.get("/capabilities/").json()  # currently available: provided by an active tenant
    names = {(c["quantity"], c["method"]) for c in caps}
    assert ("conductivity", "two_electrode") in names and ("capacity", "cycling") not in names
    assert set(caps[0]) == {
        "quantity",
        "method",
        "json_schema_specifications",
        "json_schema_result_output",
    }
    all_caps = fin.get("/capabilities/", currently_available="false").json()
    assert len(all_caps) >= 13
    limits = fin.get("/limitations/").json()
    assert any(
        lim["quantity"] == "conductivity" and "formulation" in lim["limitations"] for lim in limits
    )
    tpl = fin.get(
        "/capabilities/templates/", quantity="conductivity", method="two_electrode"
    ).json()
    assert set(tpl["conductivity"]["two_electrode"]) == {"input", "output"}
    assert fin.get("/capabilities/templates/", quantity="nothing").status_code == 404
    tenants = fin.get("/tenants/").json()
    assert any(t["uuid"] == tenant_uuid and t["name"] == "ASAB_tenant" for t in tenants)
    listed = fin.get("/results_requested/", quantity="conductivity", method="two_electrode").json()
    assert isinstance(listed, list)


@pytest.mark.integration  # child processes / a server of its own
def test_finales_capability_files_load_with_cli(tmp_path: Path):
    db = f"sqlite:///{tmp_path / 'b.db'}"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bigmap.cli",
            "capability",
            "add",
            str(FINALES_CAPABILITIES),
            "--db",
            db,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.count("added") == 13
