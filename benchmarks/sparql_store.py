"""SPARQL on a populated store: the graph rebuilt per query (the old path, still what the
one-shot ``bigmap query`` does) against the shared, incrementally maintained graph store
(``bigmap.server.graphstore``, what ``/api/v1/sparql`` uses), in the same run.

    .venv/bin/python benchmarks/sparql_store.py [--results 2000] [--backend sqlite|postgresql]

The store is filled through the broker's own services (FINALES conductivity requests and
results, two_electrode, posted by an instrument tenant, a third of them restricted to a
group); the reader is a user of role ``tenant`` outside that group, so every query is
filtered by access. For each query (a trivial ASK; conductivities above 0.5 S/m by their
EMMO class label, the semantic search of the docs) it prints wall time and the peak of
Python memory (tracemalloc) of:

- rebuild: ``store_graph`` + ``sparql.run`` (before: every query builds the caller's graph);
- store, first query: the store's first sync renders every record once;
- store, later queries: a light scan of the tables, the caller's view, the query;
- store, after 20 new results: the scan renders only the new records.

Ratios are against the rebuild measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bigmap.embedded import temporary_postgres_database  # noqa: E402
from bigmap.schemas.capability import finales_capability  # noqa: E402
from bigmap.schemas.common import Role  # noqa: E402
from bigmap.schemas.request import RequestCreate, ResultCreate  # noqa: E402
from bigmap.schemas.tenant import TenantSpec  # noqa: E402
from bigmap.store.broker import Broker  # noqa: E402
from bigmap.store.db import Database, upgrade  # noqa: E402
from broker_throughput import load_example  # noqa: E402

ASK = "ASK { ?s ?p ?o }"
SEARCH = """SELECT ?r ?v WHERE {
    ?r a bigmap:Result ; emmo:EMMO_e1097637_70d2_4895_973f_2396f04fa204 ?q .
    ?q a ?c . ?c skos:prefLabel "ElectrolyticConductivity"@en .
    ?q emmo:EMMO_8ef3cd6d_ae58_4a8d_9fc0_ad8f49015cd0/emmo:EMMO_faf79f53_749d_40b2_807c_d34244c192f4 ?v .
    FILTER(?v > 0.5) }"""


def populate(broker: Broker, n: int, offset: int = 0) -> None:
    params, data = load_example()
    system = broker.actor_for_user("admin")
    alice = broker.actor_for_user("alice")
    if offset == 0:
        broker.add_capability(system, finales_capability("conductivity", "two_electrode"))
        broker.register_tenant(
            alice,
            TenantSpec.model_validate(
                {
                    "name": "station",
                    "kind": "instrument",
                    "software": {"name": "station", "version": "1.0"},
                    "limitations": [
                        {"quantity": "conductivity", "method": "two_electrode", "limitations": {}}
                    ],
                }
            ),
        )
    tenant = next(t for t in broker.list_tenants() if t.name == "station")
    for i in range(offset, offset + n):
        access = {"access": "restricted", "access_groups": ["lab-a"]} if i % 3 == 0 else {}
        p = json.loads(json.dumps(params))
        req, _ = broker.create_request(
            alice,
            RequestCreate(
                quantity="conductivity",
                methods=["two_electrode"],
                parameters={"two_electrode": p},
                tenant_id=tenant.id,
                **access,
            ),
        )
        d = json.loads(json.dumps(data))
        broker.post_result(
            alice,
            ResultCreate(
                request_id=req.id,
                tenant_id=tenant.id,
                method="two_electrode",
                data=d,
                software={"name": "station", "version": "1.0"},
                **access,
            ),
        )


def measure(fn) -> tuple[float, float, object]:
    """(wall seconds, peak MiB of Python allocations, result) of one call; the time from a
    run without tracemalloc, the memory from a second run with it."""
    t0 = time.perf_counter()
    out = fn()
    wall = time.perf_counter() - t0
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return wall, peak, out


def run(url: str, n: int) -> None:
    from bigmap.ontology import sparql
    from bigmap.server.graphstore import GraphStore
    from bigmap.server.routers.fair import fair_of, store_graph

    upgrade(url)
    db = Database(url)
    broker = Broker(db)
    broker.create_user("admin", "admin-password-x", Role.admin)
    broker.create_user("alice", "alice-password-x", Role.tenant, groups=["lab-a"])
    broker.create_user("bob", "bob-password-x", Role.tenant)
    t0 = time.perf_counter()
    populate(broker, n)
    print(
        f"[{url.split(':')[0]}] {n} requests and {n} results posted in "
        f"{time.perf_counter() - t0:.0f} s; reader bob (role tenant, not in lab-a)"
    )
    bob = broker.actor_for_user("bob")
    fair = fair_of(broker)
    from bigmap.ontology.vocab import vocabulary

    vocabulary().unit_term("S/m")  # load the unit registry before anything is timed
    sparql.prepare(ASK)

    def rebuild(q: str):
        return lambda: sparql.run(store_graph(broker, bob, limit=10**9), q)

    gs = GraphStore(fair)

    def stored(q: str):
        def go():
            with gs.view(bob) as g:
                return sparql.run(g, q)

        return go

    for label, q in (("trivial ASK", ASK), ("conductivity > 0.5 S/m by EMMO label", SEARCH)):
        base = measure(rebuild(q))
        rows = base[2].get("boolean", len(base[2].get("results", {}).get("bindings", [])))
        print(f"{label} (answer: {rows})")
        print(f"  rebuild per query: {base[0]:.2f} s, {base[1]:.0f} MiB peak (baseline)")
        if label == "trivial ASK":
            # the first sync is paid once per server: timed on ``gs``, its memory (the whole
            # store, kept) on a second store built under tracemalloc
            t = time.perf_counter()
            stored(q)()
            first = time.perf_counter() - t
            assert gs.rendered >= 2 * n
            tracemalloc.start()
            other = GraphStore(fair)
            with other.view(bob) as g:
                sparql.run(g, q)
            kept, peak = (x / 2**20 for x in tracemalloc.get_traced_memory())
            tracemalloc.stop()
            del other
            print(
                f"  store, first query (renders every record once): {first:.2f} s, "
                f"{peak:.0f} MiB peak, {kept:.0f} MiB kept by the store: "
                f"ratio {first / base[0]:.2f} time"
            )
        walls = []
        for _ in range(5):
            t = time.perf_counter()
            out = stored(q)()
            walls.append(time.perf_counter() - t)
        assert (
            out == base[2]
            or label == "trivial ASK"
            or (len(out["results"]["bindings"]) == len(base[2]["results"]["bindings"]))
        )
        warm = statistics.median(walls)
        _, peak, _ = measure(stored(q))
        print(
            f"  store, later queries (p50 of 5): {warm:.3f} s, {peak:.0f} MiB peak: "
            f"ratio {warm / base[0]:.3f} time, {peak / base[1]:.3f} memory"
        )
    before = gs.rendered
    populate(broker, 20, offset=n)
    t = time.perf_counter()
    stored(ASK)()
    print(
        f"after 20 new results: the next query {time.perf_counter() - t:.2f} s "
        f"({gs.rendered - before} records rendered)"
    )
    db.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=int, default=2000)
    ap.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    args = ap.parse_args()
    if args.backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            run(f"sqlite:///{tmp}/bench-{uuid.uuid4().hex[:6]}.db", args.results)
    else:
        with temporary_postgres_database() as url:
            run(url, args.results)


if __name__ == "__main__":
    main()
