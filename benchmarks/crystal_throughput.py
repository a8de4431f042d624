"""CHGNet throughput on 32 structures: batched vs one-by-one vs one process per core.

    .venv/bin/python benchmarks/crystal_throughput.py [--memory-gb 6] [--n 32] [--repeat 1 2 1]

Each way runs in a fresh child process (so its peak memory is its own): the structures are
32 different cells (LiFePO4 1x2x1 and LiMn2O4 2x2x1 supercells, 56 atoms each, atoms
rattled by 0.03 Å with fixed seeds); every way computes energy, forces, stress and magnetic
moments of all 32. Printed per way: structures per second, the ratio to one-by-one (the
baseline, measured in the same run), and the peak resident memory of the process tree.
Then the planner of ``bigmap.tenants.crystal.throughput`` chooses for the memory limit, and
the script checks its choice against the measurement: the fastest way that stayed under
the limit.

``batched`` runs with the largest batch the planner's memory estimate allows under the
limit (all 32 in one batch, the call that exhausted 24 GB, is never tried).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")


def structures(n: int, repeat: list[int]) -> list:
    import numpy as np

    from bigmap.tenants.crystal.library import builtin

    out = []
    for i in range(n):
        s = builtin("LiFePO4" if i % 2 == 0 else "LiMn2O4")
        s.make_supercell(repeat if i % 2 == 0 else [2, 2, 1])
        rng = np.random.default_rng(i)
        for j in range(len(s)):
            s.translate_sites([j], rng.normal(0, 0.03, 3), frac_coords=False, to_unit_cell=True)
        out.append(s)
    return out


def child(strategy: str, n: int, repeat: list[int], memory_gb: float, out: Path) -> None:
    from bigmap.tenants.crystal import throughput

    cells = structures(n, repeat)
    model = throughput.load_model()
    model.predict_structure(cells[0])  # warm up: the tenant keeps its model loaded
    import os

    # a process per core: every core of the machine, busy or not, to measure that way
    how = throughput.plan(
        cells, memory_limit_gb=memory_gb, force=strategy, cores=os.cpu_count() or 1
    )
    with throughput.PeakMemory() as mem:
        t0 = time.perf_counter()
        res = throughput.run_many(cells, how)
        dt = time.perf_counter() - t0
    out.write_text(
        json.dumps(
            {
                "strategy": strategy,
                "seconds": dt,
                "per_second": n / dt,
                "peak_gb": mem.peak_gb,
                "estimated_peak_gb": how.estimated_peak_gb,
                "workers": how.workers,
                "batch_size": how.batch_size,
                "energies": [r["energy"] for r in res],
                "atoms": len(cells[0]),
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--memory-gb", type=float, default=6.0, help="memory limit [GB]")
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--repeat", type=int, nargs=3, default=[1, 2, 1])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child, a.n, a.repeat, a.memory_gb, Path(a.out))
        return

    import os
    import tempfile

    from bigmap.tenants.crystal import throughput

    print(f"CHGNet throughput, {a.n} structures, memory limit {a.memory_gb:.1f} GB")
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for strategy in ("one_by_one", "batched", "process_per_core"):
            out = Path(tmp) / f"{strategy}.json"
            cmd = [
                sys.executable,
                __file__,
                "--child",
                strategy,
                "--out",
                str(out),
                "--n",
                str(a.n),
                "--memory-gb",
                str(a.memory_gb),
                "--repeat",
                *map(str, a.repeat),
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0 or not out.exists():
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
                print(f"{strategy:>17}: not run ({' '.join(tail)})")
                continue
            rows[strategy] = json.loads(out.read_text())
    base = rows.get("one_by_one")
    print(f"{'way':>17} {'struct/s':>9} {'vs 1-by-1':>9} {'peak GB':>8} {'est. GB':>8}  detail")
    for name, r in rows.items():
        ratio = r["per_second"] / base["per_second"] if base else float("nan")
        detail = f"batch {r['batch_size']}" if name == "batched" else f"{r['workers']} worker(s)"
        print(
            f"{name:>17} {r['per_second']:9.2f} {ratio:8.2f}x {r['peak_gb']:8.2f} "
            f"{r['estimated_peak_gb']:8.2f}  {detail}, {r['atoms']} atoms/structure, "
            f"{r['seconds']:.1f} s"
        )
    if base:
        for name, r in rows.items():
            dev = max(abs(x - y) for x, y in zip(r["energies"], base["energies"], strict=True))
            print(f"  {name}: largest energy difference to one_by_one {dev:.2e} eV")
    cells = structures(a.n, a.repeat)
    choice = throughput.plan(cells, memory_limit_gb=a.memory_gb)
    under = {k: r for k, r in rows.items() if r["peak_gb"] <= a.memory_gb}
    fastest = max(under, key=lambda k: under[k]["per_second"]) if under else None
    load = os.getloadavg()[0]
    print(
        f"planner chooses {choice.strategy} ({choice.reason}); machine load {load:.1f} on "
        f"{os.cpu_count()} cores, {throughput.idle_cores()} idle"
    )
    print(f"measured fastest under {a.memory_gb:.1f} GB: {fastest}")


if __name__ == "__main__":
    main()
