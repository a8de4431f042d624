"""What FAIR costs on the hot path and on reads, against baselines measured in the same run.

    .venv/bin/python benchmarks/fair_overhead.py [--results 200] [--backend sqlite|postgresql]

1. The minimum-metadata check that the broker runs on every arriving result: server CPU per
   posted result and p50 latency of a post with the capability's policy ``report`` (the
   default: the check runs, the report is stored) against policy ``off`` (the check returns
   at once). Results are the FINALES conductivity example (two_electrode).
2. Reads: ``GET /api/v1/results/{id}.jsonld`` (JSON-LD with EMMO IRIs) and
   ``GET /api/v1/provenance/{id}`` against the plain ``GET /api/v1/results/{id}``.
3. Exports: the Turtle of a whole campaign and its RO-Crate archive, per result, against
   the plain JSON list of the campaign's requests.
4. JSON-LD to RDF of the campaign's document: bigmap's expander against rdflib's parser.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bigmap.embedded import LocalBroker, temporary_postgres_database  # noqa: E402
from bigmap.schemas.capability import finales_capability  # noqa: E402
from broker_throughput import cpu_seconds, load_example  # noqa: E402


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def run(url: str, n: int) -> None:
    params, data = load_example()
    srv = LocalBroker(url)
    admin = srv.user("admin", "admin")
    alice = srv.user("alice", "tenant")
    srv.start()
    h = {"Authorization": f"Bearer {alice}"}
    ha = {"Authorization": f"Bearer {admin}"}
    http = httpx.Client(base_url=srv.url, timeout=120)
    try:
        cap = finales_capability("conductivity", "two_electrode").model_dump()
        http.post("/api/v1/capabilities", json=cap, headers=ha).raise_for_status()
        tenant = http.post(
            "/api/v1/tenants",
            json={
                "name": "station",
                "kind": "instrument",
                "software": {"name": "station", "version": "1.0"},
                "limitations": [
                    {"quantity": "conductivity", "method": "two_electrode", "limitations": {}}
                ],
            },
            headers=h,
        ).json()["id"]
        camp = http.post(
            "/api/v1/campaigns", json={"name": "bench", "spec": {}, "tenant_id": tenant}, headers=h
        ).json()["id"]

        def post_round(k: int) -> tuple[list[float], float, list[str]]:
            ids = []
            reqs = []
            for _ in range(k):
                r = http.post(
                    "/api/v1/requests",
                    json={
                        "quantity": "conductivity",
                        "methods": ["two_electrode"],
                        "parameters": {"two_electrode": params},
                        "tenant_id": tenant,
                        "campaign_id": camp,
                    },
                    headers=h,
                )
                r.raise_for_status()
                reqs.append(r.json()["id"])
            lat = []
            cpu0 = cpu_seconds(srv.proc.pid)
            for rid in reqs:
                t0 = time.perf_counter()
                r = http.post(
                    "/api/v1/results",
                    json={
                        "request_id": rid,
                        "tenant_id": tenant,
                        "data": data,
                        "method": "two_electrode",
                    },
                    headers=h,
                )
                lat.append(time.perf_counter() - t0)
                r.raise_for_status()
                ids.append(r.json()["id"])
            return lat, (cpu_seconds(srv.proc.pid) - cpu0) / k, ids

        def policy(strictness: str) -> None:
            http.put(
                "/api/v1/metadata/policies/conductivity/two_electrode",
                json={"strictness": strictness},
                headers=ha,
            ).raise_for_status()
            time.sleep(2.2)  # the broker re-reads policies every 2 s

        post_round(10)  # warm up (imports, pint's registry, caches)
        figures = {}
        for strictness in ("off", "report") * 3:
            policy(strictness)
            lat, cpu, ids = post_round(n // 3)
            f = figures.setdefault(strictness, {"lat": [], "cpu": []})
            f["lat"] += lat
            f["cpu"].append(cpu)
        off, rep = figures["off"], figures["report"]
        cpu_off, cpu_rep = statistics.median(off["cpu"]), statistics.median(rep["cpu"])
        p50_off, p50_rep = statistics.median(off["lat"]), statistics.median(rep["lat"])
        print(
            f"[{srv.db_url.split(':')[0]}] minimum-metadata check on post_result ({n} results each)"
        )
        print(
            f"  server CPU per result: {1e3 * cpu_rep:.2f} ms with the check, "
            f"{1e3 * cpu_off:.2f} ms without: ratio {cpu_rep / cpu_off:.2f}"
        )
        print(
            f"  p50 latency of a post: {1e3 * p50_rep:.2f} ms with, {1e3 * p50_off:.2f} ms "
            f"without: ratio {p50_rep / p50_off:.2f}"
        )

        def cost(path: str, k: int) -> tuple[float, float]:
            """(p50 wall seconds, server CPU seconds per call) of k GETs."""
            cpu0 = cpu_seconds(srv.proc.pid)
            walls = timed(lambda: http.get(path, headers=h).raise_for_status(), k)
            return statistics.median(walls), (cpu_seconds(srv.proc.pid) - cpu0) / k

        rid = ids[0]
        base = cost(f"/api/v1/results/{rid}", 30)
        print("reads (30 each; server CPU per call, p50 wall time)")
        print(f"  GET result: {1e3 * base[1]:.2f} ms CPU, {1e3 * base[0]:.2f} ms (baseline)")
        for label, path in (
            ("GET result .jsonld", f"/api/v1/results/{rid}.jsonld"),
            ("GET provenance", f"/api/v1/provenance/{rid}"),
        ):
            c = cost(path, 30)
            print(
                f"  {label}: {1e3 * c[1]:.2f} ms CPU, {1e3 * c[0]:.2f} ms: "
                f"CPU ratio {c[1] / base[1]:.2f}"
            )
        n_res = n // 3 * 6 + 10
        lst = cost(f"/api/v1/campaigns/{camp}/requests", 5)
        print(f"exports of a campaign with {n_res} results (3-5 each)")
        print(
            f"  JSON list of its requests: {1e3 * lst[1]:.1f} ms CPU, {1e3 * lst[0]:.1f} ms (baseline)"
        )
        for label, path, k in (
            ("Turtle of the campaign", f"/api/v1/rdf/campaigns/{camp}", 3),
            ("RO-Crate archive (with SHACL)", f"/api/v1/campaigns/{camp}/archive", 3),
        ):
            c = cost(path, k)
            print(
                f"  {label}: {1e3 * c[1]:.0f} ms CPU ({1e3 * c[1] / n_res:.2f} ms per result), "
                f"{1e3 * c[0]:.0f} ms: CPU ratio {c[1] / lst[1]:.0f}"
            )
        doc = http.get(f"/api/v1/campaigns/{camp}.jsonld", headers=h).json()
        from bigmap.ontology.jsonld import to_graph

        t0 = time.process_time()
        fast = to_graph(doc, labels=False)
        t1 = time.process_time()
        general = to_graph(doc, labels=False, parser="rdflib")
        t2 = time.process_time()
        assert len(fast) == len(general)
        print(f"the campaign's JSON-LD to RDF ({len(fast)} triples), CPU in this process")
        print(
            f"  rdflib's JSON-LD parser {t2 - t1:.2f} s (baseline), bigmap's expander "
            f"{t1 - t0:.2f} s: ratio {(t1 - t0) / (t2 - t1):.3f}"
        )
    finally:
        http.close()
        srv.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=int, default=200)
    ap.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    args = ap.parse_args()
    if args.backend == "sqlite":
        run(None, args.results)  # a temporary SQLite database
    else:
        with temporary_postgres_database() as url:
            run(url, args.results)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
