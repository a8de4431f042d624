"""Durability: SIGKILL the server while results are being posted; after a restart every
acknowledged result is intact, nothing is half-written, and an unacknowledged result can
be posted again."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select

from bigmap.client import BrokerClient, BrokerUnavailable
from bigmap.embedded import LocalBroker
from bigmap.schemas.common import content_hash
from bigmap.store import models as m
from tests.test_broker_api import cond_params, cond_result

N_REQUESTS = 200
N_POSTERS = 4


@pytest.mark.parametrize("fresh_db_url", ["sqlite", "postgresql"], indirect=True)
def test_sigkill_while_posting_loses_nothing(fresh_db_url, tmp_path):
    server = LocalBroker(fresh_db_url, log_path=tmp_path / "broker.log")
    token = server.user("lab", "maintainer")  # it defines the capability
    from bigmap.schemas.capability import finales_capability

    with server:
        c = BrokerClient(server.url, token)
        c.add_capability(
            finales_capability("conductivity", "two_electrode").model_dump(mode="json")
        )
        station = c.register_tenant(
            {
                "name": "station",
                "kind": "instrument",
                "limitations": [
                    {"quantity": "conductivity", "method": "two_electrode", "limitations": {}}
                ],
            }
        )
        requests = [
            c.create_request(
                "conductivity", "two_electrode", cond_params(), tenant_id=station["id"]
            )["id"]
            for _ in range(N_REQUESTS)
        ]
        acked: dict[str, tuple[str, str]] = {}  # request id -> (result id, sha256)
        in_flight: dict[str, dict] = {}  # request id -> body whose answer never came
        lock = threading.Lock()

        errors: list[BaseException] = []

        def poster(share: list[str]) -> None:
            try:
                post_all(share)
            except BaseException as exc:  # surfaced below instead of hanging the test
                errors.append(exc)

        def post_all(share: list[str]) -> None:
            with BrokerClient(server.url, token, retries=0, timeout=10) as pc:
                for i, rid in enumerate(share):
                    data = cond_result(0.5 + i * 1e-3)
                    key = f"result-{rid}"
                    try:
                        pc.claim(rid, station["id"], lease_seconds=600)
                        res = pc.post_result(rid, station["id"], data, idempotency_key=key)
                    except BrokerUnavailable:
                        with lock:
                            in_flight[rid] = {"data": data, "key": key}
                        return
                    with lock:
                        acked[rid] = (res["id"], res["sha256"])

        threads = [
            threading.Thread(target=poster, args=(requests[i::N_POSTERS],))
            for i in range(N_POSTERS)
        ]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 120
        while len(acked) < N_REQUESTS // 4:
            assert not errors, errors
            assert any(t.is_alive() for t in threads), "the posters stopped early"
            assert time.monotonic() < deadline, "the posters made no progress"
            time.sleep(0.01)
        server.kill()  # SIGKILL, mid-flight
        for t in threads:
            t.join(30)
        assert 0 < len(acked) < N_REQUESTS and in_flight

        server.start()  # same database, same port
        c = BrokerClient(server.url, token)
        for rid, (res_id, sha) in acked.items():
            res = c.result(res_id)
            assert res["sha256"] == sha == content_hash(res["data"]) and res["request_id"] == rid
            assert c.request(rid)["status"] == "resolved"
        # no half-written record: every result's request points at it, and was logged
        with server.broker.db.read() as s:
            results = list(s.scalars(select(m.Result)))
            for r in results:
                req = s.get(m.Request, r.request_id)
                assert req.status == "resolved" and req.result_id == r.id
                assert (
                    s.scalar(select(m.StatusLog).where(m.StatusLog.object_id == r.id)) is not None
                )
            resolved = list(s.scalars(select(m.Request).where(m.Request.status == "resolved")))
            assert {r.id for r in resolved} == {r.request_id for r in results}
            if server.broker.db.sqlite:
                assert s.connection().exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        # an unacknowledged result posts again (once: the same key returns the same result)
        for rid, post in in_flight.items():
            res = c.post_result(rid, station["id"], post["data"], idempotency_key=post["key"])
            assert (
                c.post_result(rid, station["id"], post["data"], idempotency_key=post["key"])["id"]
                == res["id"]
            )
            assert c.request(rid)["result_id"] == res["id"]
        c.close()
    server.close()
