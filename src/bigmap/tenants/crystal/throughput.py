"""Many CHGNet calculations in one request, as fast as this machine allows, within a memory
bound.

Three ways to run N structures:

- ``one_by_one``: one structure after the other in this process (torch uses all cores);
- ``batched``: ``CHGNet.predict_structure(list, batch_size=k)``: k graphs in one forward and
  backward pass (static predictions only; CHGNet relaxes one structure at a time);
- ``process_per_core``: a pool of spawned worker processes, one per core, each with its own
  model and one torch thread, each taking structures one by one.

Memory is what limits: CHGNet computes forces and stress by differentiating through its
graph, so the peak grows linearly with the number of graph items (atom-graph edges within
6 Å plus bond-graph angles within 3 Å). Measured here (``benchmarks/crystal_throughput.py``,
torch 2.13 CPU, CHGNet 0.3.0 weights): about 0.1 MB per graph item on top of ~0.4 GB for
the interpreter, torch and the model (a 56-atom LiFePO4 cell: 9,200 items, +0.83 GB; four
of them batched: +3.3 GB). The plan estimates each structure's peak from its graph before it
runs, and refuses work that cannot fit.

Speed, measured by the benchmark on 32 cells of 56 atoms on this shared 2-core machine
(load average 6-8 from other work): one-by-one 0.59-0.98 structures/s at 1.5 GB peak;
batched (3 per batch, the most the 6 GB limit allows) 0.62-1.01x of that at 3.3 GB; a
process per core 0.48-0.66x at 4.0 GB, because the cores were already busy and two spawned
workers need ~20 s under that load to import torch, load CHGNet and warm up. The planner
therefore never batches, and spawns a process per core only when the machine has idle
cores (:func:`idle_cores`) and the estimated work outweighs the start-up.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any

import numpy as np

#: memory bound of one request's CHGNet work [GB]; BIGMAP_CRYSTAL_MEMORY_GB overrides
DEFAULT_MEMORY_GB = float(os.environ.get("BIGMAP_CRYSTAL_MEMORY_GB", "6"))
#: resident memory of a process with torch and the CHGNet model loaded [GB] (measured 0.37)
PROCESS_BASE_GB = 0.45
#: peak memory per graph item of one prediction with forces and stress [GB] (measured
#: 0.9-1.0e-4 on LiFePO4 and LiMn2O4 supercells), with a safety factor of 1.25
GB_PER_GRAPH_ITEM = 1.25e-4
#: time of one prediction per graph item with one torch thread [s] (56-atom LiFePO4, 9,200
#: items: 0.93 s; only used to judge whether spawning processes pays off)
SECONDS_PER_GRAPH_ITEM = 1e-4
#: time for spawned workers to import torch, load CHGNet and warm up [s]: 5 s for one on an
#: idle core, ~20 s for two on this loaded machine (8 structures: 27.6 s vs 10.0 s in-process)
WORKER_STARTUP_S = 20.0

STRATEGIES = ("one_by_one", "batched", "process_per_core")


class MemoryLimitError(Exception):
    """The work cannot be done within the memory limit."""


#: torch threads of the in-process strategies. One: on this shared 2-core machine a second
#: thread made single predictions 2-5x slower under load (LiCoO2: 0.13 s with 1 thread,
#: 0.6-2.6 s with 2, measured with a load average of 7); parallelism comes from
#: process_per_core instead. BIGMAP_TORCH_THREADS overrides.
TORCH_THREADS = int(os.environ.get("BIGMAP_TORCH_THREADS", "1"))


@cache
def load_model() -> Any:
    """The CHGNet universal potential (weights ship in the chgnet wheel; no download)."""
    import torch
    from chgnet.model import CHGNet

    torch.set_num_threads(TORCH_THREADS)
    return CHGNet.load(verbose=False)


def graph_items(structure: Any, model: Any | None = None) -> int:
    """Atom-graph edges + bond-graph angles of a structure, as CHGNet builds them."""
    model = model or load_model()
    graph = model.graph_converter(structure)
    return int(graph.atom_graph.shape[0] + graph.bond_graph.shape[0])


def estimate_gb(items: int) -> float:
    """Estimated peak memory above the process base of one prediction [GB]."""
    return GB_PER_GRAPH_ITEM * items


def idle_cores() -> int:
    """Cores not busy with other work: the core count less the 1-minute load average of the
    machine (this process counted as one). A process per core only pays on idle cores; on
    this shared machine the load was often 7 on 2 cores."""
    n = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:
        return n
    return max(1, min(n, round(n - max(0.0, load - 1.0))))


@dataclass
class Plan:
    strategy: str
    workers: int
    batch_size: int
    memory_limit_gb: float
    estimated_peak_gb: float
    graph_items: list[int] = field(default_factory=list)
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["graph_items"] = {"max": max(self.graph_items), "total": sum(self.graph_items)}
        return d


def plan(
    structures: Sequence[Any],
    *,
    memory_limit_gb: float | None = None,
    cores: int | None = None,
    static: bool = True,
    force: str | None = None,
    items: list[int] | None = None,
) -> Plan:
    """Choose how to run ``structures``: the fastest way whose estimated peak memory stays
    under ``memory_limit_gb``. ``force`` picks a strategy (still memory-checked)."""
    limit = DEFAULT_MEMORY_GB if memory_limit_gb is None else memory_limit_gb
    cores = cores or idle_cores()
    sizes = items if items is not None else [graph_items(s) for s in structures]
    biggest = estimate_gb(max(sizes))
    one_peak = PROCESS_BASE_GB + biggest
    if one_peak > limit:
        raise MemoryLimitError(
            f"the largest structure needs about {one_peak:.1f} GB for one CHGNet prediction "
            f"(graph of {max(sizes)} edges+angles), over the {limit:.1f} GB limit; use a "
            "smaller cell"
        )
    workers = max(1, min(cores, len(structures)))
    ppc_peak = PROCESS_BASE_GB + workers * (PROCESS_BASE_GB + biggest)
    # a batch of k: the k largest graphs at once
    per = sorted((estimate_gb(n) for n in sizes), reverse=True)
    k = 1
    while k < len(per) and PROCESS_BASE_GB + sum(per[: k + 1]) <= limit:
        k += 1
    batch_peak = PROCESS_BASE_GB + sum(per[:k])
    if force is not None:
        if force not in STRATEGIES:
            raise ValueError(f"unknown strategy {force!r}; one of {STRATEGIES}")
        if force == "batched" and not static:
            raise ValueError("batched runs only static predictions")
        peak = {"one_by_one": one_peak, "batched": batch_peak, "process_per_core": ppc_peak}
        if peak[force] > limit:
            raise MemoryLimitError(
                f"{force} needs about {peak[force]:.1f} GB, over the {limit:.1f} GB limit"
            )
        return Plan(
            force,
            workers if force == "process_per_core" else 1,
            k if force == "batched" else 1,
            limit,
            peak[force],
            sizes,
            "forced",
        )
    # relaxations: ~50 force calls each (typical FIRE relaxations here took 10-60 steps)
    per_s = [SECONDS_PER_GRAPH_ITEM * n * (1 if static else 50) for n in sizes]
    work_s = sum(per_s)
    makespan = max(max(per_s), work_s / workers) + WORKER_STARTUP_S
    if workers > 1 and ppc_peak <= limit and makespan < work_s:
        return Plan(
            "process_per_core",
            workers,
            1,
            limit,
            ppc_peak,
            sizes,
            f"estimated {work_s:.0f} s of work takes ~{makespan:.0f} s on {workers} worker "
            f"processes (with their {WORKER_STARTUP_S:.0f} s start), and {ppc_peak:.1f} GB fits",
        )
    if workers == 1:
        reason = f"{cores} idle core(s) for {len(structures)} structure(s)"
    elif ppc_peak > limit:
        reason = f"a process per core would need {ppc_peak:.1f} GB"
    else:
        reason = "too little work to pay for starting worker processes"
    return Plan("one_by_one", 1, 1, limit, one_peak, sizes, reason)


# --------------------------------------------------------------------------- memory


class PeakMemory:
    """Samples the resident memory of this process and its children (every 20 ms)."""

    def __init__(self, interval: float = 0.02) -> None:
        import psutil

        self._proc = psutil.Process()
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self) -> int:
        import psutil

        total = 0
        try:
            total += self._proc.memory_info().rss
            for child in self._proc.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:
                    pass
        except psutil.Error:
            pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self.peak = self._rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def peak_gb(self) -> float:
        return self.peak / 1e9


# --------------------------------------------------------------------------- work


def _prediction(pred: dict[str, Any], n_atoms: int) -> dict[str, Any]:
    forces = np.asarray(pred["f"], dtype=float)
    return {
        "energy_per_atom": float(pred["e"]),
        "energy": float(pred["e"]) * n_atoms,
        "forces": forces.tolist(),
        "max_force": float(np.linalg.norm(forces, axis=1).max()) if n_atoms else 0.0,
        "stress": np.asarray(pred["s"], dtype=float).tolist(),
        "magmoms": np.asarray(pred["m"], dtype=float).ravel().tolist(),
    }


def predict_one(structure: Any, model: Any | None = None) -> dict[str, Any]:
    """Energy [eV, eV/atom], forces [eV/Å], stress [GPa], magnetic moments [μB]."""
    model = model or load_model()
    return _prediction(model.predict_structure(structure), len(structure))


def relax_one(
    structure: Any,
    *,
    fmax: float = 0.1,
    steps: int = 500,
    relax_cell: bool = True,
    optimizer: str = "FIRE",
    model: Any | None = None,
    potential: str = "chgnet",
    d3: bool = False,
) -> dict[str, Any]:
    """Relax with CHGNet (or SevenNet-0, optionally plus D3(BJ)) through ASE
    (FrechetCellFilter when the cell relaxes); returns the relaxed structure (pymatgen dict),
    its prediction and the convergence."""
    import io
    import warnings
    from contextlib import redirect_stdout

    if potential != "chgnet" or d3:
        return _relax_ase(structure, fmax, steps, relax_cell, optimizer, model, potential, d3)
    from chgnet.model import StructOptimizer

    model = model or load_model()
    with redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt = StructOptimizer(model=model, optimizer_class=optimizer)
        out = opt.relax(structure, fmax=fmax, steps=steps, relax_cell=relax_cell, verbose=False)
    final = out["final_structure"]
    traj = out["trajectory"]
    pred = predict_one(final, model)
    n_steps = max(0, len(traj.energies) - 1)
    # ASE's optimiser stops before ``steps`` only when every force (with a relaxed cell: the
    # filter's cell forces too) is below fmax, so fewer steps than allowed means converged
    converged = n_steps < steps
    return {
        "structure": final.as_dict(),
        "prediction": pred,
        "steps": n_steps,
        "converged": bool(converged),
        "initial_energy": float(traj.energies[0]) if len(traj.energies) else math.nan,
    }


def _relax_ase(
    structure: Any,
    fmax: float,
    steps: int,
    relax_cell: bool,
    optimizer: str,
    model: Any | None,
    potential: str,
    d3: bool,
) -> dict[str, Any]:
    """The same relaxation on any ASE calculator of :mod:`.potentials`."""
    import warnings

    from ase import optimize
    from ase.filters import FrechetCellFilter
    from pymatgen.io.ase import AseAtomsAdaptor

    from bigmap.tenants.crystal.potentials import GPA_PER_EV_A3, calculator

    adaptor = AseAtomsAdaptor()
    atoms = adaptor.get_atoms(structure)
    atoms.calc = calculator(potential, d3, model)  # type: ignore[arg-type]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        initial = float(atoms.get_potential_energy())
        target = FrechetCellFilter(atoms) if relax_cell else atoms
        opt = getattr(optimize, optimizer)(target, logfile=None)
        converged = bool(opt.run(fmax=fmax, steps=steps))
        energy = float(atoms.get_potential_energy())
        forces = np.asarray(atoms.get_forces(), dtype=float)
        stress = np.asarray(atoms.get_stress(voigt=True), dtype=float) * GPA_PER_EV_A3
    magmoms = [0.0] * len(atoms)
    calcs = getattr(atoms.calc, "calcs", [atoms.calc])
    mag = calcs[0].results.get("magmoms") if potential == "chgnet" else None
    if mag is not None:
        magmoms = np.asarray(mag, dtype=float).ravel().tolist()
    final = adaptor.get_structure(atoms)
    n = len(atoms)
    return {
        "structure": final.as_dict(),
        "prediction": {
            "energy_per_atom": energy / n,
            "energy": energy,
            "forces": forces.tolist(),
            "max_force": float(np.linalg.norm(forces, axis=1).max()) if n else 0.0,
            # ASE's sign: positive = tensile; CHGNet's predict_structure reports GPa the same way
            "stress": stress.tolist(),
            "magmoms": magmoms,
        },
        "steps": int(opt.nsteps),
        "converged": converged,
        "initial_energy": initial,
    }


# worker-process side ----------------------------------------------------------------

_WORKER_MODEL: Any = None


def _init_worker(threads: int) -> None:
    import warnings

    import torch

    warnings.filterwarnings("ignore")
    torch.set_num_threads(threads)
    global _WORKER_MODEL
    from chgnet.model import CHGNet

    _WORKER_MODEL = CHGNet.load(verbose=False)


def _worker_task(task: tuple[str, dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
    from pymatgen.core import Structure

    kind, sdict, kwargs = task
    s = Structure.from_dict(sdict)
    if kind == "predict":
        return predict_one(s, _WORKER_MODEL)
    return relax_one(s, model=_WORKER_MODEL, **kwargs)


def run_many(
    structures: Sequence[Any],
    how: Plan,
    *,
    kind: str = "predict",
    relax: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Predict (``kind="predict"``) or relax (``"relax"``) every structure by plan ``how``;
    results in input order."""
    relax = relax or {}
    n = len(structures)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, n)

    if how.strategy == "process_per_core":
        ctx = multiprocessing.get_context("spawn")
        tasks = [(kind, s.as_dict(), relax) for s in structures]
        out: list[dict[str, Any]] = []
        with ProcessPoolExecutor(
            max_workers=how.workers, mp_context=ctx, initializer=_init_worker, initargs=(1,)
        ) as pool:
            for r in pool.map(_worker_task, tasks, chunksize=1):
                out.append(r)
                tick()
        return out
    model = load_model()
    if how.strategy == "batched":
        if kind != "predict":
            raise ValueError("batched runs only static predictions")
        out = []
        for start in range(0, n, how.batch_size):
            chunk = list(structures[start : start + how.batch_size])
            preds = model.predict_structure(chunk, batch_size=len(chunk))
            if isinstance(preds, dict):
                preds = [preds]
            for s, p in zip(chunk, preds, strict=True):
                out.append(_prediction(p, len(s)))
                tick()
        return out
    results = []
    for s in structures:
        results.append(
            predict_one(s, model) if kind == "predict" else relax_one(s, model=model, **relax)
        )
        tick()
    return results


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, seconds, peak GB of this process tree) of ``fn()``."""
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        result = fn()
        dt = time.perf_counter() - t0
    return result, dt, mem.peak_gb
