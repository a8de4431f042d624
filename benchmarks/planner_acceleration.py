"""Does the planner find the best candidates faster than random search, and as fast as
BayBE, on landscapes it was not tuned on?

    .venv/bin/python benchmarks/planner_acceleration.py                  # the suite, 20 seeds
    .venv/bin/python benchmarks/planner_acceleration.py --heldout        # the held-out set
    .venv/bin/python benchmarks/planner_acceleration.py --seeds 3 --landscapes hte_T293
    .venv/bin/python benchmarks/planner_acceleration.py --timing         # seconds per proposal

Every landscape is run by bigmap's planner (``strategy: botorch``, its defaults), BayBE
(Merck KGaA, its default two-phase recommender: random, then a BoTorch GP) and random
search, on the same seeds, in one invocation. Each run is cached in
``benchmarks/out/cache/`` under a key of the landscape, the budget, the optimiser and the
optimiser's code (the sha256 of ``src/bigmap/planner/*.py`` for bigmap, the version for
BayBE), so a run that was cut off resumes where it stopped and a change of the planner
recomputes only the planner. Progress goes to ``benchmarks/out/planner_acceleration.log``.

The target is the top 1 % of each landscape: of the volume of a continuous space (the 99th
percentile of the true, noise-free function over 2^16 scrambled Sobol points), of the
candidates of a pool (the ``ceil(N/100)`` best means). Per landscape and optimiser:

- **hits**: the runs that measured a target candidate within the budget;
- **evaluations to first hit**: median, quartiles and range over the runs that hit;
- **acceleration factor** ``AF = E_random / n``, ``E_random`` random search's expected
  evaluations to a first hit (``1/p`` in a continuous space where a share ``p`` is on
  target; ``(N+1)/(K+1)`` for a pool of ``N`` with ``K`` targets, drawn without
  replacement) and ``n`` the evaluations to the first hit, a miss counted as budget + 1
  (so a miss cannot look good): reported as the median over the runs (``AF_med``) and on
  the mean (``AF_mean = E_random / mean n``, the figure of issue 20);
- **enhancement factor** ``EF = P_hit(budget) / P_random(budget)``, the share of runs that
  hit within the budget over random search's exact probability to do so;
- **seconds per proposal**: the wall time of the optimiser's propose/recommend calls.

Definitions after B. Rohr, H. S. Stein, D. Guevarra, Y. Wang, J. A. Haber, M. Aykol,
S. K. Suram, J. M. Gregoire, "Benchmarking the acceleration of materials discovery by
sequential learning", Chem. Sci. 11 (2020) 2696, doi:10.1039/C9SC05999G (AF and EF on the
probability of having found a top-percentile candidate, anyALM) and Q. Liang et al.,
"Benchmarking the performance of Bayesian optimization across multiple experimental
materials science domains", npj Comput. Mater. 7 (2021) 188, doi:10.1038/s41524-021-00656-9
(pool-based benchmarks on measured data, random search as the baseline).

Landscapes (``SUITE``; ``HELDOUT`` is fixed here too and was not run while the planner's
defaults were chosen; see docs/planner.md):

- ``hte_T<K>``: measured conductivities of LiPF6 in EC/PC/EMC (E. Flores et al., Digital
  Discovery 1 (2022) 440; ``bigmap.data.load_hte``) at one temperature as a continuous
  landscape over (r, c): a thin-plate-spline interpolant (scipy ``RBFInterpolator``,
  smoothing 1e-3 on standardised values, set once, not tuned) of the mean of each measured
  (r, c); a measurement adds Gaussian noise with the pooled standard deviation of the
  replicates at that temperature (the real scatter).
- ``hte_pool``: the 849 measured (T, r, c) points as a pool; a measurement returns one of
  that point's replicates at random.
- ``pybamm_pool``: volumetric energy of a 2C discharge over electrode thicknesses and
  porosities (PyBaMM SPMe, Chen2020 parameters), 512 Sobol designs computed once and
  cached in benchmarks/out/ (a pool, so that the benchmark stays affordable: one solve
  takes about 0.5 s); noise-free.
- ``branin``, ``hartmann6``, ``ackley4``, (held out: ``hartmann3``, ``levy4``,
  ``styblinski3``): standard test functions as implemented in ``botorch.test_functions``
  (Branin: L. C. W. Dixon, G. P. Szegö, "Towards global optimisation 2", North-Holland
  1978; Hartmann: the same; Ackley: D. H. Ackley, "A connectionist machine for genetic
  hillclimbing", Kluwer 1987; Levy: A. V. Levy, A. Montalvo, SIAM J. Sci. Stat. Comput. 6
  (1985) 15; Styblinski-Tang: M. A. Styblinski, T.-S. Tang, Neural Networks 3 (1990) 467;
  definitions checked against S. Surjanovic, D. Bingham, "Virtual Library of Simulation
  Experiments", sfu.ca/~ssurjano), maximised (the minimisation problems negated), with
  Gaussian noise of 2 % of the function's 0.1-99.9 % range.
- ``mixture_h3``: four fractions that sum to one; the value is Hartmann-3 of the first
  three (a synthetic mixture landscape: a simplex slice of the cube), noise as above.
- ``mf_branin``: the augmented Branin of J. Wu, S. Toscano-Palmerin, P. I. Frazier,
  A. G. Wilson, "Practical multi-fidelity Bayesian optimization for hyperparameter
  tuning", UAI 2019 (``botorch.test_functions.multi_fidelity.AugmentedBranin``): the
  target fidelity s = 1 costs 3, s = 0.5 costs 1, budget 120 cost units. Only target
  measurements count as hits and evaluations are counted in cost/3 (target-equivalent
  evaluations). BayBE and random measure at the target fidelity only (40 evaluations).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(__file__).resolve().parent / "out"
CACHE = OUT / "cache"
LANDSCAPE_VERSION = 1  # bump when a landscape's definition changes (invalidates the cache)
BATCH = 4


@dataclass
class Landscape:
    name: str
    kind: str  # continuous | pool | mixture | multi_fidelity
    names: list[str]
    lows: list[float]
    highs: list[float]
    budget: int  # evaluations (multi-fidelity: target-equivalent evaluations)
    label: str
    fn: Callable[[np.ndarray], np.ndarray] | None = None  # true value of rows of x
    noise_sd: float = 0.0
    threshold: float = math.nan
    p_target: float = 0.01
    pool: list[dict[str, Any]] | None = None
    replicates: list[np.ndarray] | None = None
    targets: set[int] = field(default_factory=set)
    mf_fn: Callable[[np.ndarray, float], np.ndarray] | None = None
    mf_costs: tuple[float, float] = (1.0, 3.0)  # low, target

    @property
    def is_pool(self) -> bool:
        return self.pool is not None

    def expected_random(self) -> float:
        """Random search's expected evaluations to the first target."""
        if self.is_pool:
            n, k = len(self.pool or []), len(self.targets)
            return (n + 1) / (k + 1)
        return 1.0 / self.p_target

    def p_random(self, n: int) -> float:
        """Random search's probability of a target within ``n`` evaluations."""
        if self.is_pool:
            N, K = len(self.pool or []), len(self.targets)
            p_none = 1.0
            for j in range(n):
                p_none *= max(N - K - j, 0) / (N - j)
            return 1 - p_none
        return 1 - (1 - self.p_target) ** n

    def true(self, x: dict[str, Any]) -> float:
        assert self.fn is not None
        return float(self.fn(np.array([[x[n] for n in self.names]]))[0])

    def measure(self, x: dict[str, Any], index: int | None, rng: np.random.Generator) -> float:
        if self.is_pool:
            assert index is not None and self.replicates is not None
            reps = self.replicates[index]
            return float(reps[rng.integers(len(reps))])
        return self.true(x) + float(rng.normal(0.0, self.noise_sd))

    def hit(self, x: dict[str, Any], index: int | None) -> bool:
        if self.is_pool:
            return index in self.targets
        return bool(self.true(x) >= self.threshold)

    def spec(self, seed: int, strategy: dict[str, Any], batch: int = BATCH) -> dict[str, Any]:
        if self.kind == "mixture":
            variables: list[dict[str, Any]] = [
                {
                    "name": "blend",
                    "type": "mixture",
                    "components": [{"name": n, "low": 0.0, "high": 1.0} for n in self.names],
                }
            ]
        else:
            variables = [
                {"name": n, "low": lo, "high": hi}
                for n, lo, hi in zip(self.names, self.lows, self.highs, strict=True)
            ]
        doc: dict[str, Any] = {
            "name": self.name,
            "seed": seed,
            "variables": variables,
            "objectives": [{"name": "y", "direction": "maximize"}],
            "measurements": [{"capability": "bench/measure"}],
            "batch_size": batch,
            "budget": {"requests": self.budget},
            "strategy": strategy,
        }
        if self.kind == "multi_fidelity" and strategy.get("name") != "random":
            lo_c, hi_c = self.mf_costs
            doc["measurements"] = [
                {"capability": "bench/low", "fidelity": 0.5, "cost": lo_c},
                {"capability": "bench/measure", "fidelity": 1.0, "cost": hi_c},
            ]
            doc["budget"] = {"cost": self.budget * hi_c}
        return doc


def _sobol_unit(d: int, n: int = 2**16, seed: int = 7) -> np.ndarray:
    from scipy.stats import qmc

    return qmc.Sobol(d, scramble=True, seed=seed).random(n)


def _threshold(values: np.ndarray) -> float:
    return float(np.quantile(values, 0.99))


# ----------------------------------------------------------------------------- landscapes

HTE_R = (0.087, 1.0)  # the measured range of r (molar share of PC in EC + PC)
HTE_C = (0.194, 2.118)  # and of c [mol/kg]


def land_hte_temperature(T: float, budget: int = 40) -> Landscape:
    from scipy.interpolate import RBFInterpolator

    from bigmap.data import load_hte

    d = load_hte()
    s = d[np.isclose(d["T"], T)]
    if s.empty:
        raise ValueError(f"no HTE measurements at {T} K")
    g = s.groupby(["r", "c"])["kappa"]
    means = g.mean()
    sd = g.std().dropna()
    noise = float(np.sqrt((sd**2).mean()))  # pooled replicate standard deviation
    P = np.array(list(means.index), dtype=float)
    lo = np.array([HTE_R[0], HTE_C[0]])
    hi = np.array([HTE_R[1], HTE_C[1]])
    y = means.to_numpy()
    mu, sigma = y.mean(), y.std()
    rbf = RBFInterpolator(
        (P - lo) / (hi - lo), (y - mu) / sigma, kernel="thin_plate_spline", smoothing=1e-3
    )

    def fn(X: np.ndarray) -> np.ndarray:
        return rbf((np.atleast_2d(X) - lo) / (hi - lo)) * sigma + mu

    u = _sobol_unit(2)
    thr = _threshold(fn(lo + u * (hi - lo)))
    return Landscape(
        f"hte_T{T:.0f}",
        "continuous",
        ["r", "c"],
        list(lo),
        list(hi),
        budget,
        f"measured conductivity at {T:.2f} K over (r, c), {len(y)} measured points, "
        f"noise {noise:.3g} S/m",
        fn=fn,
        noise_sd=noise,
        threshold=thr,
    )


def land_hte_pool(budget: int = 60) -> Landscape:
    from bigmap.data import load_hte

    d = load_hte()
    groups = d.groupby(["T", "r", "c"])
    keys = list(groups.groups.keys())
    pool = [{"T": float(t), "r": float(r), "c": float(c)} for t, r, c in keys]
    reps = [groups.get_group(k)["kappa"].to_numpy() for k in keys]
    values = np.array([r.mean() for r in reps])
    k = math.ceil(0.01 * len(pool))
    return Landscape(
        "hte_pool",
        "pool",
        ["T", "r", "c"],
        [243.15, HTE_R[0], HTE_C[0]],
        [333.15, HTE_R[1], HTE_C[1]],
        budget,
        f"measured conductivity, pool of {len(pool)} (T, r, c), top {k}, replicate scatter",
        pool=pool,
        replicates=reps,
        targets=set(np.argsort(-values)[:k].tolist()),
    )


PYBAMM_NAMES = ["L_neg_um", "L_pos_um", "eps_neg", "eps_pos"]
PYBAMM_LOW = [40.0, 40.0, 0.2, 0.2]
PYBAMM_HIGH = [120.0, 120.0, 0.5, 0.5]


def pybamm_energy_density(
    L_neg_um: float, L_pos_um: float, eps_neg: float, eps_pos: float
) -> float:
    """Wh/L of the electrode stack (current collectors, electrodes, separator) delivered in
    a 2C discharge to 2.5 V; PyBaMM SPMe with the Chen2020 parameter set. The C-rate is
    relative to the design's theoretical capacity (the smaller of the two electrodes between
    the Chen2020 initial and final stoichiometries 0.9014/0.0279 and 0.2661/0.9084)."""
    import pybamm

    F = 96485.33212  # C/mol (CODATA 2018, exact)
    p = pybamm.ParameterValues("Chen2020")
    area = p["Electrode width [m]"] * p["Electrode height [m]"]
    p.update(
        {
            "Negative electrode thickness [m]": L_neg_um * 1e-6,
            "Positive electrode thickness [m]": L_pos_um * 1e-6,
            "Negative electrode porosity": eps_neg,
            "Positive electrode porosity": eps_pos,
            "Negative electrode active material volume fraction": 1 - eps_neg,
            "Positive electrode active material volume fraction": 1 - eps_pos,
        }
    )
    cn = p["Maximum concentration in negative electrode [mol.m-3]"]
    cp = p["Maximum concentration in positive electrode [mol.m-3]"]
    th_n0 = p["Initial concentration in negative electrode [mol.m-3]"] / cn
    th_p0 = p["Initial concentration in positive electrode [mol.m-3]"] / cp
    q_neg = area * L_neg_um * 1e-6 * (1 - eps_neg) * cn * F * (th_n0 - 0.0279) / 3600
    q_pos = area * L_pos_um * 1e-6 * (1 - eps_pos) * cp * F * (0.9084 - th_p0) / 3600
    q = min(q_neg, q_pos)
    p["Nominal cell capacity [A.h]"] = q
    p["Current function [A]"] = 2.0 * q
    sim = pybamm.Simulation(pybamm.lithium_ion.SPMe(), parameter_values=p)
    sol = sim.solve([0, 3600 / 2.0 * 1.2])
    t = sol["Time [s]"].entries
    v = sol["Voltage [V]"].entries
    i = sol["Current [A]"].entries
    energy_wh = float(np.trapezoid(v * i, t)) / 3600
    thickness = (
        p["Negative current collector thickness [m]"]
        + L_neg_um * 1e-6
        + p["Separator thickness [m]"]
        + L_pos_um * 1e-6
        + p["Positive current collector thickness [m]"]
    )
    return energy_wh / (area * thickness) / 1000.0  # Wh/m^3 -> Wh/L


def land_pybamm_pool(budget: int = 60, n: int = 512) -> Landscape:
    import csv

    path = OUT / f"pybamm_landscape_{n}.csv"
    if not path.exists():
        from scipy.stats import qmc

        _log(f"computing the PyBaMM landscape ({n} designs, once; cached in {path}) ...")
        u = qmc.Sobol(4, scramble=True, seed=2020).random(n)
        rows = []
        for k, row in enumerate(u):
            x = {
                nm: lo + a * (hi - lo)
                for nm, lo, hi, a in zip(PYBAMM_NAMES, PYBAMM_LOW, PYBAMM_HIGH, row, strict=True)
            }
            try:
                e = pybamm_energy_density(**x)
            except Exception as exc:  # a design PyBaMM cannot solve counts as worthless
                _log(f"  design {k} failed: {exc}")
                e = 0.0
            rows.append({**x, "energy_Wh_per_L": e})
        OUT.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=[*PYBAMM_NAMES, "energy_Wh_per_L"])
            w.writeheader()
            w.writerows(rows)
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    pool = [{nm: float(r[nm]) for nm in PYBAMM_NAMES} for r in rows]
    values = np.array([float(r["energy_Wh_per_L"]) for r in rows])
    k = math.ceil(0.01 * len(pool))
    return Landscape(
        "pybamm_pool",
        "pool",
        PYBAMM_NAMES,
        PYBAMM_LOW,
        PYBAMM_HIGH,
        budget,
        f"PyBaMM SPMe 2C energy density, pool of {len(pool)} designs, top {k}",
        pool=pool,
        replicates=[np.array([v]) for v in values],
        targets=set(np.argsort(-values)[:k].tolist()),
    )


def land_test_function(
    name: str, cls: str, dim: int | None, budget: int, noise_seed: int = 0
) -> Landscape:
    """A BoTorch test function, maximised, with 2 % Gaussian noise."""
    import torch
    from botorch import test_functions as tf

    f = getattr(tf, cls)(dim=dim) if dim is not None else getattr(tf, cls)()
    sign = -1.0  # botorch states them all as minimisation problems
    b = f.bounds.numpy()
    d = b.shape[1]

    def fn(X: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return (
                sign * f.evaluate_true(torch.tensor(np.atleast_2d(X), dtype=torch.double)).numpy()
            )

    vals = fn(b[0] + _sobol_unit(d) * (b[1] - b[0]))
    spread = float(np.quantile(vals, 0.999) - np.quantile(vals, 0.001))
    return Landscape(
        name,
        "continuous",
        [f"x{i}" for i in range(d)],
        b[0].tolist(),
        b[1].tolist(),
        budget,
        f"{cls}-{d} (maximised), noise sd {0.02 * spread:.3g} (2 % of its range)",
        fn=fn,
        noise_sd=0.02 * spread,
        threshold=_threshold(vals),
    )


def land_mixture_h3(budget: int = 60) -> Landscape:
    import torch
    from botorch.test_functions import Hartmann

    h3 = Hartmann(dim=3)

    def fn(X: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            Z = torch.tensor(np.atleast_2d(X)[:, :3], dtype=torch.double)
            return -h3.evaluate_true(Z).numpy()

    rng = np.random.default_rng(3)
    vals = fn(rng.dirichlet(np.ones(4), size=2**16))
    spread = float(np.quantile(vals, 0.999) - np.quantile(vals, 0.001))
    return Landscape(
        "mixture_h3",
        "mixture",
        ["a", "b", "c", "d"],
        [0.0] * 4,
        [1.0] * 4,
        budget,
        f"mixture of 4 (sum 1), Hartmann-3 of the first three, noise sd {0.02 * spread:.3g}",
        fn=fn,
        noise_sd=0.02 * spread,
        threshold=_threshold(vals),
    )


def land_mf_branin(budget: int = 40) -> Landscape:
    import torch
    from botorch.test_functions.multi_fidelity import AugmentedBranin

    f = AugmentedBranin()

    def mf(X: np.ndarray, s: float) -> np.ndarray:
        X = np.atleast_2d(X)
        Z = np.hstack([X, np.full((len(X), 1), s)])
        with torch.no_grad():
            return -f.evaluate_true(torch.tensor(Z, dtype=torch.double)).numpy()

    def fn(X: np.ndarray) -> np.ndarray:
        return mf(X, 1.0)

    lo, hi = [-5.0, 0.0], [10.0, 15.0]
    vals = fn(np.array(lo) + _sobol_unit(2) * (np.array(hi) - np.array(lo)))
    spread = float(np.quantile(vals, 0.999) - np.quantile(vals, 0.001))
    return Landscape(
        "mf_branin",
        "multi_fidelity",
        ["x0", "x1"],
        lo,
        hi,
        budget,
        "augmented Branin, fidelities 0.5 (cost 1) and 1 (cost 3), budget 120 cost units",
        fn=fn,
        noise_sd=0.02 * spread,
        threshold=_threshold(vals),
        mf_fn=mf,
    )


# the suite the defaults were chosen on, and the held-out set (fixed before any tuning)
SUITE: dict[str, Callable[[], Landscape]] = {
    "hte_T253": lambda: land_hte_temperature(253.15),
    "hte_T293": lambda: land_hte_temperature(293.15),
    "hte_T333": lambda: land_hte_temperature(333.15),
    "hte_pool": land_hte_pool,
    "pybamm_pool": land_pybamm_pool,
    "branin": lambda: land_test_function("branin", "Branin", None, 40),
    "ackley4": lambda: land_test_function("ackley4", "Ackley", 4, 60),
    "hartmann6": lambda: land_test_function("hartmann6", "Hartmann", 6, 80),
    "mixture_h3": land_mixture_h3,
    "mf_branin": land_mf_branin,
}
HELDOUT: dict[str, Callable[[], Landscape]] = {
    "hte_T243": lambda: land_hte_temperature(243.15),
    "hte_T273": lambda: land_hte_temperature(273.15),
    "hte_T313": lambda: land_hte_temperature(313.15),
    "hartmann3": lambda: land_test_function("hartmann3", "Hartmann", 3, 40),
    "levy4": lambda: land_test_function("levy4", "Levy", 4, 60),
    "styblinski3": lambda: land_test_function("styblinski3", "StyblinskiTang", 3, 60),
}


# ----------------------------------------------------------------------------- runs


def _log(msg: str) -> None:
    print(msg, flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    with (OUT / "planner_acceleration.log").open("a") as fh:
        fh.write(f"{time.strftime('%H:%M:%S')} {msg}\n")


def _planner_code_key() -> str:
    h = hashlib.sha256()
    for p in sorted((ROOT / "src" / "bigmap" / "planner").glob("*.py")):
        h.update(p.read_bytes())
    return h.hexdigest()[:12]


def _baybe_key() -> str:
    import baybe

    return f"baybe-{baybe.__version__}"


def run_bigmap(
    land: Landscape, seed: int, strategy: dict[str, Any] | None = None, batch: int = BATCH
) -> dict[str, Any]:
    from bigmap.planner.core import Planner
    from bigmap.planner.local import run_local
    from bigmap.planner.spec import parse_spec

    strategy = strategy or {"name": "botorch"}
    spec = parse_spec(land.spec(seed, strategy, batch))
    planner = Planner(spec, land.pool)
    times: list[float] = []
    inner = planner.propose

    def timed(*a: Any, **k: Any) -> Any:
        t0 = time.perf_counter()
        out = inner(*a, **k)
        times.append(time.perf_counter() - t0)
        return out

    planner.propose = timed  # type: ignore[method-assign]
    rng = np.random.default_rng(10_000 + seed)
    recs: list[dict[str, Any]] = []

    def ev(c: Any) -> dict[str, float]:
        x = {n: float(c.x[n]) for n in land.names} if land.kind == "mixture" else c.x
        target = c.capability == "bench/measure"
        if land.kind == "multi_fidelity" and not target:
            assert land.mf_fn is not None
            y = float(land.mf_fn(np.array([[x[n] for n in land.names]]), 0.5)[0])
            y += float(rng.normal(0.0, land.noise_sd))
            cost = land.mf_costs[0] / land.mf_costs[1]
            recs.append({"y": y, "hit": False, "cost": cost})
            return {"y": y}
        y = land.measure(x, c.pool_index, rng)
        recs.append({"y": y, "hit": land.hit(x, c.pool_index), "cost": 1.0})
        return {"y": y}

    run_local(spec, ev, pool=land.pool, planner=planner)
    return {"evals": recs, "propose_seconds": times}


def run_random(land: Landscape, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(20_000 + seed)
    recs: list[dict[str, Any]] = []
    if land.is_pool:
        order = rng.permutation(len(land.pool or []))[: land.budget]
        for i in order:
            x = (land.pool or [])[int(i)]
            recs.append(
                {"y": land.measure(x, int(i), rng), "hit": land.hit(x, int(i)), "cost": 1.0}
            )
        return {"evals": recs, "propose_seconds": []}
    for _ in range(land.budget):
        if land.kind == "mixture":
            f = rng.dirichlet(np.ones(len(land.names)))
            x = dict(zip(land.names, f.tolist(), strict=True))
        else:
            u = rng.random(len(land.names))
            x = {
                n: lo + a * (hi - lo)
                for n, lo, hi, a in zip(land.names, land.lows, land.highs, u, strict=True)
            }
        recs.append({"y": land.measure(x, None, rng), "hit": land.hit(x, None), "cost": 1.0})
    return {"evals": recs, "propose_seconds": []}


def baybe_campaign(land: Landscape) -> tuple[Any, dict[tuple, int] | None]:
    import pandas as pd
    from baybe import Campaign
    from baybe.constraints import ContinuousLinearConstraint
    from baybe.parameters import NumericalContinuousParameter, NumericalDiscreteParameter
    from baybe.searchspace import SearchSpace
    from baybe.targets import NumericalTarget

    index = None
    if land.is_pool:
        df = pd.DataFrame(land.pool)
        params = [NumericalDiscreteParameter(n, values=sorted(df[n].unique())) for n in land.names]
        space = SearchSpace.from_dataframe(df[land.names], parameters=params)
        index = {tuple(row): i for i, row in enumerate(df[land.names].itertuples(index=False))}
    else:
        params = [
            NumericalContinuousParameter(n, bounds=(lo, hi))
            for n, lo, hi in zip(land.names, land.lows, land.highs, strict=True)
        ]
        cons = []
        if land.kind == "mixture":
            cons = [
                ContinuousLinearConstraint(
                    parameters=land.names,
                    operator="=",
                    coefficients=[1.0] * len(land.names),
                    rhs=1.0,
                )
            ]
        space = SearchSpace.from_product(params, constraints=cons or None)
    return Campaign(space, objective=NumericalTarget(name="y")), index


def run_baybe(land: Landscape, seed: int, batch: int = BATCH) -> dict[str, Any]:
    from baybe.utils.random import set_random_seed

    set_random_seed(seed)
    rng = np.random.default_rng(10_000 + seed)
    camp, index = baybe_campaign(land)
    recs: list[dict[str, Any]] = []
    times: list[float] = []
    while len(recs) < land.budget:
        t0 = time.perf_counter()
        rec = camp.recommend(batch_size=min(batch, land.budget - len(recs)))
        times.append(time.perf_counter() - t0)
        ys = []
        for row in rec[land.names].itertuples(index=False):
            x = {n: float(v) for n, v in zip(land.names, row, strict=True)}
            i = index[tuple(row)] if index is not None else None
            y = land.measure(x, i, rng)
            ys.append(y)
            recs.append({"y": y, "hit": land.hit(x, i), "cost": 1.0})
        rec["y"] = ys
        camp.add_measurements(rec)
    return {"evals": recs[: land.budget], "propose_seconds": times}


def cached_run(
    land: Landscape,
    optimiser: str,
    seed: int,
    key: str,
    fn: Callable[[], dict[str, Any]],
    store: bool = True,
) -> dict[str, Any]:
    path = CACHE / land.name / f"{optimiser}-{key}" / f"seed{seed}.json"
    if store and path.exists():
        return json.loads(path.read_text())
    t0 = time.perf_counter()
    out = fn()
    out["seconds"] = time.perf_counter() - t0
    if not store:
        return out
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out))
    tmp.replace(path)
    return out


# ----------------------------------------------------------------------------- metrics


def first_hit(evals: list[dict[str, Any]], budget: int) -> float:
    """Evaluations (target-equivalent) to the first hit; budget + 1 for a miss."""
    spent = 0.0
    for r in evals:
        spent += r.get("cost", 1.0)
        if spent > budget + 1e-9:
            break
        if r["hit"]:
            return math.ceil(spent - 1e-9)
    return float(budget + 1)


def summarise(land: Landscape, runs: list[dict[str, Any]]) -> dict[str, Any]:
    n = np.array([first_hit(r["evals"], land.budget) for r in runs])
    hit = n <= land.budget
    e = land.expected_random()
    times = [t for r in runs for t in r["propose_seconds"]]
    return {
        "runs": len(runs),
        "hits": int(hit.sum()),
        "first_hit": n.tolist(),
        "first_hit_median_of_hits": float(np.median(n[hit])) if hit.any() else None,
        "first_hit_q25": float(np.percentile(n[hit], 25)) if hit.any() else None,
        "first_hit_q75": float(np.percentile(n[hit], 75)) if hit.any() else None,
        "first_hit_min": float(n[hit].min()) if hit.any() else None,
        "first_hit_max": float(n[hit].max()) if hit.any() else None,
        "AF_median": float(np.median(e / n)),
        "AF_mean": float(e / n.mean()),
        "EF": float(hit.mean() / max(land.p_random(land.budget), 1e-12)),
        "seconds_per_proposal": float(np.mean(times)) if times else None,
        "seconds_per_run": float(np.mean([r.get("seconds", 0.0) for r in runs])),
    }


# ----------------------------------------------------------------------------- timing


def timing(repeats: int = 3, n_obs: int = 20) -> list[dict[str, Any]]:
    """Seconds per proposal with ``n_obs`` results in hand: bigmap vs BayBE, batch 1 and 4,
    in two (measured conductivity) and four dimensions (Hartmann-4)."""
    import pandas as pd

    from bigmap.planner.core import History, Observation, Planner
    from bigmap.planner.spec import parse_spec

    rows = []
    for land in (land_hte_temperature(293.15), land_test_function("hartmann4", "Hartmann", 4, 40)):
        rng = np.random.default_rng(1)
        u = _sobol_unit(len(land.names), n_obs, seed=11)
        X = np.array(land.lows) + u * (np.array(land.highs) - np.array(land.lows))
        xs = [dict(zip(land.names, r.tolist(), strict=True)) for r in X]
        ys = [land.measure(x, None, rng) for x in xs]
        for batch in (1, 4):
            planner = Planner(parse_spec(land.spec(0, {"name": "botorch"}, batch)))
            h = History()
            for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
                h.observations.append(
                    Observation(x=x, capability="bench/measure", y={"y": y}, result_id=f"r{i}")
                )
                h.proposed.append(x)
            tb = []
            for k in range(repeats):
                t0 = time.perf_counter()
                planner.propose(h, batch, 100 + k)
                tb.append(time.perf_counter() - t0)
            df = pd.DataFrame(xs)
            df["y"] = ys
            tz = []
            for _ in range(repeats):
                # a fresh campaign each time: BayBE caches a recommendation until new data
                camp, _ = baybe_campaign(land)
                camp.add_measurements(df)
                t0 = time.perf_counter()
                camp.recommend(batch_size=batch)
                tz.append(time.perf_counter() - t0)
            row = {
                "landscape": land.name,
                "dims": len(land.names),
                "batch": batch,
                "n_obs": n_obs,
                "bigmap_s": float(np.median(tb)),
                "baybe_s": float(np.median(tz)),
            }
            rows.append(row)
            _log(
                f"timing {land.name} ({row['dims']}-D) batch {batch}: bigmap {row['bigmap_s']:.2f} s, "
                f"BayBE {row['baybe_s']:.2f} s per proposal (median of {repeats}; "
                f"ratio {row['bigmap_s'] / row['baybe_s']:.2f})"
            )
    return rows


# ----------------------------------------------------------------------------- main


def _fmt(v: float | None, nd: int = 1) -> str:
    return "-" if v is None else f"{v:.{nd}f}"


def table(results: dict[str, Any]) -> str:
    lines = [
        "| landscape | optimiser | hits | first hit: median [IQR] (range) | AF median | "
        "AF mean | EF | s/proposal |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for lname, res in results.items():
        for opt, s in res["optimisers"].items():
            fh = (
                f"{_fmt(s['first_hit_median_of_hits'], 0)} [{_fmt(s['first_hit_q25'], 0)}-"
                f"{_fmt(s['first_hit_q75'], 0)}] ({_fmt(s['first_hit_min'], 0)}-"
                f"{_fmt(s['first_hit_max'], 0)})"
                if s["hits"]
                else "-"
            )
            lines.append(
                f"| {lname} | {opt} | {s['hits']}/{s['runs']} | {fh} | {s['AF_median']:.1f} | "
                f"{s['AF_mean']:.1f} | {s['EF']:.1f} | {_fmt(s['seconds_per_proposal'], 2)} |"
            )
    return "\n".join(lines)


def overall(land_runs: dict[str, tuple[Landscape, dict[str, list[dict[str, Any]]]]]) -> str:
    out = []
    opts = sorted({o for _, runs in land_runs.values() for o in runs})
    for opt in opts:
        afs = []
        misses = 0
        for land, runs in land_runs.values():
            for r in runs.get(opt, []):
                n = first_hit(r["evals"], land.budget)
                afs.append(land.expected_random() / n)
                misses += n > land.budget
        out.append(
            f"{opt}: median AF over all {len(afs)} runs {np.median(afs):.1f}, misses {misses}"
        )
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--landscapes", default="", help="comma-separated names (default: all)")
    ap.add_argument("--heldout", action="store_true", help="the held-out set instead")
    ap.add_argument("--optimisers", default="random,bigmap,baybe")
    ap.add_argument(
        "--strategy", default='{"name": "botorch"}', help="bigmap's strategy (JSON), for trials"
    )
    ap.add_argument("--batch", type=int, default=BATCH)
    ap.add_argument("--timing", action="store_true", help="seconds per proposal only")
    ap.add_argument("--no-cache", action="store_true")
    ap.add_argument(
        "--report", action="store_true", help="summarise the cached runs only (run nothing)"
    )
    ap.add_argument(
        "--planner-key",
        default=None,
        help="with --report: the planner code key of the cached runs (default: the current code)",
    )
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    if args.timing:
        rows = timing()
        (OUT / "planner_timing.json").write_text(json.dumps(rows, indent=1))
        return 0
    catalogue = HELDOUT if args.heldout else SUITE
    names = [n for n in args.landscapes.split(",") if n] or list(catalogue)
    unknown = [n for n in names if n not in SUITE and n not in HELDOUT]
    if unknown:
        ap.error(f"unknown landscape(s) {unknown}; known: {[*SUITE, *HELDOUT]}")
    strategy = json.loads(args.strategy)
    opts = [o for o in args.optimisers.split(",") if o]
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    skey = hashlib.sha256(json.dumps(strategy, sort_keys=True).encode()).hexdigest()[:6]
    keys = {
        "bigmap": f"{args.planner_key or _planner_code_key()}-{skey}-b{args.batch}-v{LANDSCAPE_VERSION}",
        "baybe": f"{_baybe_key()}-b{args.batch}-v{LANDSCAPE_VERSION}",
        "random": f"v{LANDSCAPE_VERSION}",
    }
    t_all = time.perf_counter()
    results: dict[str, Any] = {}
    land_runs: dict[str, tuple[Landscape, dict[str, list[dict[str, Any]]]]] = {}
    lands = {n: (SUITE.get(n) or HELDOUT[n])() for n in names}
    for lname, land in lands.items():
        _log(f"{lname}: {land.label}; budget {land.budget}, batch {args.batch}")
    runs_by: dict[str, dict[str, dict[int, dict[str, Any]]]] = {
        n: {o: {} for o in opts} for n in names
    }
    # seeds outermost: a run that is cut off has the same seeds on every landscape
    for seed in seeds:
        for lname, land in lands.items():
            for opt in opts:
                fns = {
                    "random": lambda s=seed, la=land: run_random(la, s),
                    "bigmap": lambda s=seed, la=land: run_bigmap(la, s, strategy, args.batch),
                    "baybe": lambda s=seed, la=land: run_baybe(la, s, args.batch),
                }
                path = CACHE / lname / f"{opt}-{keys[opt]}" / f"seed{seed}.json"
                if args.report:
                    if path.exists():
                        runs_by[lname][opt][seed] = json.loads(path.read_text())
                    continue
                r = cached_run(land, opt, seed, keys[opt], fns[opt], store=not args.no_cache)
                runs_by[lname][opt][seed] = r
                _log(
                    f"  {lname} {opt:6s} seed {seed}: first hit "
                    f"{first_hit(r['evals'], land.budget):.0f}, best "
                    f"{max(e['y'] for e in r['evals']):.4g}, {r.get('seconds', 0):.1f} s"
                )
    for lname, land in lands.items():
        # the seeds every optimiser has finished (paired comparisons only)
        done = sorted(set.intersection(*(set(runs_by[lname][o]) for o in opts)))
        if not done:
            continue
        runs = {o: [runs_by[lname][o][k] for k in done] for o in opts}
        results[lname] = {
            "label": land.label,
            "budget": land.budget,
            "seeds": done,
            "expected_random": land.expected_random(),
            "optimisers": {o: summarise(land, rr) for o, rr in runs.items()},
        }
        land_runs[lname] = (land, runs)
    title = "held-out set" if args.heldout else "suite"
    summary = overall(land_runs)
    _log(
        f"\n{title}, batch {args.batch} (seeds per landscape: "
        f"{ {k: len(v['seeds']) for k, v in results.items()} }):\n{table(results)}\n{summary}"
    )
    _log(f"total {time.perf_counter() - t_all:.0f} s")
    stem = "planner_acceleration_heldout" if args.heldout else "planner_acceleration"
    if args.landscapes:
        stem += "_partial"
    (OUT / f"{stem}.json").write_text(
        json.dumps({"seeds": seeds, "batch": args.batch, "results": results}, indent=1)
    )
    (OUT / f"{stem}.md").write_text(f"{table(results)}\n\n{summary}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
