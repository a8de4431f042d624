"""Broker throughput: N concurrent tenants x M full round trips (post a request, claim it,
post its result) against a live ``bigmap serve``, on SQLite and on PostgreSQL, through the
native API and through the FINALES-compatible paths.

    .venv/bin/python benchmarks/broker_throughput.py [--clients 8] [--requests 60] [--workers 1]

Prints round trips per second, p50/p99 latency of a round trip, and the server's CPU time per
round trip (from /proc: the figure least disturbed by other load on the machine), each
against a baseline measured in the same run: the HTTP floor of the same server (three
``GET /api/v1/health`` per round trip, no database work). PostgreSQL's own CPU is not counted.
"client CPU" is the CPU time of this process (the httpx clients) per round trip: on a 2-core
machine the clients share the cores with the server, so (server + client CPU) per round trip
bounds the throughput from below what a server with cores of its own would reach. For scale:
FINALES 1.1.0 was measured at about 19 round trips/s with a p99 of 1.8 s at 8 concurrent
clients on this kind of machine (issue 2).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import threading
import time
from pathlib import Path

import httpx

from bigmap.embedded import LocalBroker, postgres_available, temporary_postgres_database
from bigmap.schemas.capability import finales_capability

FINALES_RT_PER_S = 19.0
FINALES_P99_S = 1.8
EXAMPLE = (
    Path(__file__).resolve().parents[1]
    / "tests/data/finales/examples/results/conductivity/two_electrode.json"
)


def load_example() -> tuple[dict, dict]:
    doc = json.loads(EXAMPLE.read_text())
    return doc["parameters"]["two_electrode"], doc["data"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children so far (Linux /proc)."""
    import os

    total = 0.0
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for p in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def run_clients(n_clients: int, n_requests: int, one_round_trip) -> tuple[float, list[float]]:
    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(n_clients + 1)
    errors: list[BaseException] = []

    def client(i: int) -> None:
        mine = []
        try:
            with one_round_trip(i) as step:
                barrier.wait()
                for _ in range(n_requests):
                    t0 = time.perf_counter()
                    step()
                    mine.append(time.perf_counter() - t0)
        except BaseException as exc:  # report, don't hang the barrier
            errors.append(exc)
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.abort()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n_clients)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return wall, latencies


def bench_backend(db_url: str, name: str, args) -> list[dict]:
    params, data = load_example()
    rows = []
    with LocalBroker(db_url, workers=args.workers) as server:
        server.broker.add_capability(_admin(), finales_capability("conductivity", "two_electrode"))
        tokens = [server.user(f"lab{i}", "tenant") for i in range(args.clients)]
        tenants = []
        for i, tok in enumerate(tokens):
            r = httpx.post(
                f"{server.url}/api/v1/tenants",
                headers={"Authorization": f"Bearer {tok}"},
                json={
                    "name": f"station-{i}",
                    "kind": "instrument",
                    "limitations": [
                        {"quantity": "conductivity", "method": "two_electrode", "limitations": {}}
                    ],
                },
            )
            r.raise_for_status()
            tenants.append(r.json()["id"])

        @contextlib.contextmanager
        def floor(i):
            with httpx.Client(base_url=server.url) as h:

                def step():
                    for _ in range(3):
                        h.get("/api/v1/health").raise_for_status()

                yield step

        @contextlib.contextmanager
        def native(i):
            with httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {tokens[i]}"}, timeout=60
            ) as h:
                tid = tenants[i]

                def step():
                    r = h.post(
                        "/api/v1/requests",
                        json={
                            "quantity": "conductivity",
                            "methods": ["two_electrode"],
                            "parameters": {"two_electrode": params},
                            "tenant_id": tid,
                        },
                    )
                    r.raise_for_status()
                    rid = r.json()["id"]
                    h.post(
                        f"/api/v1/requests/{rid}/claim", json={"tenant_id": tid}
                    ).raise_for_status()
                    h.post(
                        "/api/v1/results", json={"request_id": rid, "tenant_id": tid, "data": data}
                    ).raise_for_status()

                yield step

        @contextlib.contextmanager
        def finales(i):
            with httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {tokens[i]}"}, timeout=60
            ) as h:
                tid = tenants[i]

                def step():
                    r = h.post(
                        "/requests/",
                        json={
                            "quantity": "conductivity",
                            "methods": ["two_electrode"],
                            "parameters": {"two_electrode": params},
                            "tenant_uuid": tid,
                        },
                    )
                    r.raise_for_status()
                    rid = r.json()
                    h.post(
                        f"/requests/{rid}/update_status/",
                        params={"request_id": rid, "new_status": "reserved"},
                    ).raise_for_status()
                    h.post(
                        "/results/",
                        json={
                            "data": data,
                            "quantity": "conductivity",
                            "method": ["two_electrode"],
                            "parameters": {"two_electrode": params},
                            "tenant_uuid": tid,
                            "request_uuid": rid,
                        },
                    ).raise_for_status()

                yield step

        for label, fn in (
            ("HTTP floor (3x GET /health)", floor),
            ("native /api/v1", native),
            ("FINALES paths", finales),
        ):
            run_clients(args.clients, 3, fn)  # warm up
            cpu0, own0 = cpu_seconds(server.proc.pid), time.process_time()
            wall, lat = run_clients(args.clients, args.requests, fn)
            cpu = cpu_seconds(server.proc.pid) - cpu0
            own = time.process_time() - own0  # this process: the clients
            rows.append(
                {
                    "backend": name,
                    "api": label,
                    "rt_per_s": len(lat) / wall,
                    "p50_ms": 1000 * statistics.median(lat),
                    "p99_ms": 1000 * percentile(lat, 0.99),
                    "cpu_ms": 1000 * cpu / len(lat),
                    "client_cpu_ms": 1000 * own / len(lat),
                }
            )
    return rows


def _admin():
    import uuid

    from bigmap.schemas.common import Role
    from bigmap.store.access import Actor

    return Actor(uuid.UUID(int=0), "benchmark", Role.admin)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=60, help="round trips per client")
    ap.add_argument("--workers", type=int, default=1, help="server processes")
    ap.add_argument("--backends", default="sqlite,postgresql")
    args = ap.parse_args()
    rows = []
    for backend in args.backends.split(","):
        if backend == "sqlite":
            with LocalBroker() as tmp:
                url = tmp.db_url
                tmp.stop()
                rows += bench_backend(url, "SQLite", args)
        elif backend == "postgresql":
            if not postgres_available():
                print("PostgreSQL not available: skipped")
                continue
            with temporary_postgres_database() as url:
                rows += bench_backend(url, "PostgreSQL", args)
    print(
        f"\n{args.clients} concurrent clients x {args.requests} round trips (post, claim, result); "
        f"{args.workers} server process(es)"
    )
    print(
        f"{'backend':<11} {'API':<28} {'rt/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/rt':>10} {'client CPU':>10} {'vs floor':>9} {'vs FINALES':>11}"
    )
    floors = {r["backend"]: r for r in rows if r["api"].startswith("HTTP floor")}
    for r in rows:
        floor = floors[r["backend"]]
        print(
            f"{r['backend']:<11} {r['api']:<28} {r['rt_per_s']:>8.1f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['cpu_ms']:>10.2f} {r['client_cpu_ms']:>10.2f} "
            f"{r['rt_per_s'] / floor['rt_per_s']:>8.2f}x {r['rt_per_s'] / FINALES_RT_PER_S:>10.1f}x"
        )
    print(
        f"(FINALES 1.1.0: ~{FINALES_RT_PER_S:.0f} rt/s, p99 {FINALES_P99_S * 1000:.0f} ms at 8 clients; "
        "target 20x with p99 < 100 ms)"
    )


if __name__ == "__main__":
    main()
