import threading

from tests.sample_tenant import tenant


def test_round_trip_through_worker(live):
    c = live.client("alice")
    stop = threading.Event()
    t = threading.Thread(
        target=tenant.serve,
        args=(c,),
        kwargs={"stop": stop, "install_signals": False, "poll": 1},
        daemon=True,
    )
    t.start()
    try:
        import time

        for _ in range(100):
            mine = [x for x in c.tenants() if x["name"] == "sample"]
            if mine:
                break
            time.sleep(0.1)
        tid = mine[0]["id"]
        req = c.create_request(
            "polynomial", "horner", {"x": 2.0, "coefficients": [1, 0, -1]}, tenant_id=tid
        )
        res = c.wait_result(req["id"], timeout=30)
        assert res["data"] == {"value": 3.0, "derivative": 4.0}
        assert res["provenance"]["software"]["version"] == "1.2.3"
        assert res["files"][0]["name"] == "trace.csv"
    finally:
        stop.set()
        t.join(10)
