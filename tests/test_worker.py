"""The tenant runtime in a real ``bigmap worker`` process against a live broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bigmap.client import RequestFailed

ROOT = Path(__file__).resolve().parents[1]


def start_worker(live, *args: str, name: str = "sample") -> subprocess.Popen:
    env = {
        **os.environ,
        "BIGMAP_BROKER_URL": live.url,
        "BIGMAP_TOKEN": live.tokens["bob"],
        "PYTHONPATH": str(ROOT),
    }
    cmd = [
        sys.executable,
        "-m",
        "bigmap.cli",
        "worker",
        "tests.sample_tenant",
        "--poll",
        "1",
        "--name",
        name,
        *args,
    ]
    return subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def wait_for_tenant(client, name="sample", timeout=30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        mine = [
            t for t in client.tenants() if t["name"] == name and t["owner"] == "bob" and t["alive"]
        ]
        if mine:
            return mine[0]
        time.sleep(0.1)
    raise TimeoutError("the worker did not register")


def wait_status(client, rid, status, timeout=20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        req = client.request(rid)
        if req["status"] == status:
            return req
        time.sleep(0.05)
    raise AssertionError(f"request {rid} is {client.request(rid)['status']}, not {status}")


@pytest.fixture(scope="module")
def worker(live_one):
    proc = start_worker(live_one, "--concurrency", "3")
    with live_one.client("bob") as bob:
        tenant = wait_for_tenant(bob)
    yield live_one, tenant
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out


def ask(client, tenant, queue: bool = False, **params):
    return client.create_request(
        "polynomial",
        "horner",
        {"x": 2.0, "coefficients": [1.0, 0.0, -1.0], **params},
        tenant_id=tenant["id"],
        queue=queue,
    )


def test_results_carry_software_and_files(worker):
    live, tenant = worker
    with live.client("bob") as c:
        res = c.wait_result(ask(c, tenant)["id"], timeout=30)
        assert res["data"] == {"value": 3.0, "derivative": 4.0}
        assert res["software"] == {"name": "sample-tenant", "version": "1.2.3"}
        assert res["provenance"]["runtime_seconds"] >= 0
        assert c.download(res["files"][0]["id"]).startswith(b"x,value")


@pytest.mark.parametrize(
    ("fail", "kind", "message"),
    [
        ("input", "input_error", "no physical polynomial"),
        ("calc", "calculation_failed", "did not converge"),
        ("crash", "calculation_failed", "ZeroDivisionError: division by zero"),
    ],
)
def test_failures_become_failed_requests_with_the_reason(worker, fail, kind, message):
    live, tenant = worker
    with live.client("bob") as c:
        req = ask(c, tenant, fail=fail)
        with pytest.raises(RequestFailed, match=message):
            c.wait_result(req["id"], timeout=30)
        err = c.request(req["id"])["status_info"]["last_error"]
        assert err["kind"] == kind and message in err["message"]


def test_out_of_limits_request_is_not_taken(worker):
    live, tenant = worker
    with live.client("bob") as c:
        req = ask(c, tenant, x=50.0, queue=True)  # the tenant serves -10 <= x <= 10
        assert req["status_info"]["servable"] is False
        time.sleep(2.0)
        assert c.request(req["id"])["status"] == "pending"
        c.retract(req["id"])


def test_long_job_keeps_its_lease_and_reports_progress(worker):
    live, tenant = worker
    with live.client("bob") as c:
        req = ask(c, tenant, sleep=3.0)  # the capability's lease is 1 s: the runtime renews it
        wait_status(c, req["id"], "claimed")
        time.sleep(1.5)
        mid = c.request(req["id"])
        assert mid["status"] == "claimed" and mid["attempts"] == 1
        assert 0 < mid["status_info"]["progress"]["fraction"] <= 1
        res = c.wait_result(req["id"], timeout=30)
        assert res["data"]["value"] == 3.0 and c.request(req["id"])["attempts"] == 1


def test_sub_requests_form_a_workflow_tree(worker):
    live, tenant = worker
    with live.client("bob") as c:
        req = c.create_request(
            "polynomial",
            "sum_of_values",
            {"xs": [0.0, 1.0, 2.0], "coefficients": [1.0, 1.0]},
            tenant_id=tenant["id"],
        )
        res = c.wait_result(req["id"], timeout=60)
        assert res["data"] == {"total": 6.0, "parts": [1.0, 2.0, 3.0]}
        children = c.children(req["id"])
        assert len(children) == 3 and all(
            ch["parent_id"] == req["id"] and ch["status"] == "resolved" for ch in children
        )
        assert set(res["provenance"]["inputs"]) == {ch["id"] for ch in children}
        child_result = c.result_of(children[0]["id"])
        assert child_result["provenance"]["parent_request_id"] == req["id"]
