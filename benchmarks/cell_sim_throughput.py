"""Throughput of the cell-sim engine against a plain PyBaMM loop.

64 requests (constant-current discharges of the Chen2020 LG M50 cell, 8 C-rates x 8
ambient temperatures) are answered twice, in the same run:

* baseline: a plain loop that builds a new ``pybamm.Simulation`` (model, parameter values,
  experiment) for each request and solves it;
* bigmap: ``cell.DaskRunner.map`` over the same requests: the model is built and discretised
  once per Dask worker and reused through PyBaMM input parameters, the requests spread over
  the workers.

Both must agree to solver tolerance (discharge capacities); the speed-up is printed.

    .venv/bin/python benchmarks/cell_sim_throughput.py [--model SPMe] [--workers 2]
        [--threads]   # Dask workers as threads of this process instead of processes
"""

from __future__ import annotations

import argparse
import itertools
import time
import warnings

import numpy as np


def requests(model: str) -> list[dict]:
    rates = [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]
    temps = [268.15, 273.15, 283.15, 293.15, 298.15, 303.15, 313.15, 323.15]
    return [
        {
            "parameter_set": "Chen2020",
            "model": model,
            "experiment": [f"Discharge at {r}C until 2.5 V"],
            "temperature": T,
        }
        for r, T in itertools.product(rates, temps)
    ]


def naive(req: dict) -> float:
    import pybamm

    pv = pybamm.ParameterValues(req["parameter_set"])
    pv["Ambient temperature [K]"] = req["temperature"]
    pv["Initial temperature [K]"] = req["temperature"]
    model = getattr(pybamm.lithium_ion, req["model"])()
    sim = pybamm.Simulation(
        model,
        parameter_values=pv,
        experiment=pybamm.Experiment(req["experiment"]),
        solver=pybamm.IDAKLUSolver(rtol=1e-6, atol=1e-8),
    )
    sol = sim.solve()
    return float(sol["Discharge capacity [A.h]"].entries[-1])


def _import_pybamm() -> None:
    import pybamm  # noqa: F401

    import bigmap.tenants.cell  # noqa: F401


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="SPMe", choices=["SPM", "SPMe", "DFN"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", action="store_true", help="thread workers, not processes")
    args = ap.parse_args()
    warnings.simplefilter("ignore")

    from bigmap.tenants import cell

    reqs = requests(args.model)
    _import_pybamm()
    t0 = time.perf_counter()
    base = [naive(r) for r in reqs]
    t_naive = time.perf_counter() - t0

    runner = cell.DaskRunner(scheduler="", n_workers=args.workers, processes=not args.threads)
    try:
        # Start the cluster and import PyBaMM in its workers outside the timing: a tenant
        # does both once when it starts (the naive loop, too, runs with PyBaMM imported).
        runner.client().run(_import_pybamm)
        _import_pybamm()
        t0 = time.perf_counter()
        recs = runner.map(reqs, timeout=600)
        t_bigmap = time.perf_counter() - t0
    finally:
        runner.close()
    bad = [r for r in recs if not r["ok"]]
    if bad:
        raise SystemExit(f"{len(bad)} requests failed: {bad[0]['message']}")
    ours = [r["result"]["discharge_capacity"][0] for r in recs]
    dev = np.max(np.abs(np.asarray(ours) - np.asarray(base)) / np.asarray(base))
    builds = len({(r["pid"]) for r in recs})
    kind = "threads" if args.threads else "processes"
    print(f"{len(reqs)} requests, {args.model}, Chen2020, 8 C-rates x 8 temperatures")
    print(
        f"  naive loop (new pybamm.Simulation each) {t_naive:8.2f} s  {len(reqs) / t_naive:6.2f} req/s"
    )
    print(
        f"  bigmap cell-sim, Dask {args.workers} {kind:9s}    {t_bigmap:8.2f} s  "
        f"{len(reqs) / t_bigmap:6.2f} req/s  ({builds} worker(s) built the model)"
    )
    print(f"  speed-up {t_naive / t_bigmap:.1f}x; max relative capacity difference {dev:.2e}")


if __name__ == "__main__":
    main()
