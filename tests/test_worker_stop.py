"""Stopping workers: SIGTERM returns unfinished claims; a crash loses the lease, and the
request goes to another worker. (Apart from test_worker.py, whose worker must be stopped.)"""

from __future__ import annotations

import signal
import time

from tests.test_worker import ask, start_worker, wait_for_tenant, wait_status


def test_sigterm_returns_unfinished_claims(live_one):
    proc = start_worker(live_one, name="sample-sigterm")
    with live_one.client("bob") as c:
        tenant = wait_for_tenant(c, "sample-sigterm")
        req = ask(c, tenant, sleep=30.0)
        wait_status(c, req["id"], "claimed")
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        assert time.monotonic() - t0 < 15
        back = c.request(req["id"])
        assert back["status"] == "pending", out
        assert any("SIGTERM" in e["message"] for e in c.request_log(req["id"]))
        c.retract(req["id"])


def test_crashed_worker_loses_its_lease_and_another_finishes(live_one):
    proc = start_worker(live_one, name="sample-crash")
    with live_one.client("bob") as c:
        tenant = wait_for_tenant(c, "sample-crash")
        req = ask(c, tenant, sleep=2.0)
        wait_status(c, req["id"], "claimed")
        proc.kill()  # no chance to release: the lease (1 s) must expire
        proc.communicate(timeout=10)
        wait_status(c, req["id"], "pending", timeout=10)
        second = start_worker(live_one, name="sample-crash")
        try:
            res = c.wait_result(req["id"], timeout=60)
            assert res["data"]["value"] == 3.0 and c.request(req["id"])["attempts"] == 2
        finally:
            second.send_signal(signal.SIGTERM)
            second.communicate(timeout=30)
