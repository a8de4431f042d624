"""How much faster does the planner find the best materials than random search?

    .venv/bin/python benchmarks/planner_acceleration.py            # 10 seeds, all problems
    .venv/bin/python benchmarks/planner_acceleration.py --seeds 3 --problems hte   # quick

Metrics, as defined by Rohr et al. and Liang et al.:

- B. Rohr, H. S. Stein, D. Guevarra, Y. Wang, J. A. Haber, M. Aykol, S. K. Suram,
  J. M. Gregoire, "Benchmarking the acceleration of materials discovery by sequential
  learning", Chem. Sci. 11 (2020) 2696, doi:10.1039/C9SC05999G. A campaign's progress is a
  figure of merit after n experiments, averaged over runs: ``allALM(n)``, the fraction of
  the top-percentile materials found, and ``anyALM(n)``, the probability that at least one
  has been found. The **acceleration factor** at a level ``a`` is the ratio of the numbers
  of experiments random search and the strategy need to reach it,
  ``AF(a) = n_random(a) / n_strategy(a)``; the **enhancement factor** after ``n``
  experiments is the ratio of the figures reached, ``EF(n) = m_strategy(n) / m_random(n)``.
- Q. Liang, A. E. Gongora, Z. Ren, A. Tiihonen, Z. Liu, S. Sun, J. R. Deneault,
  D. Bash, F. Mekki-Berrada, S. A. Khan, K. Hippalgaonkar, B. Maruyama, K. A. Brown,
  J. Fisher III, T. Buonassisi, "Benchmarking the performance of Bayesian optimization
  across multiple experimental materials science domains", npj Comput. Mater. 7 (2021)
  188, doi:10.1038/s41524-021-00656-9: the same AF and EF on ``Top%(n)`` (= allALM), over
  pool-based campaigns on measured datasets, with random search as the baseline.

Here the top percentile is the top 1 %. Random search is run in the same invocation, over
200 seeds (it costs nothing but the lookup) and for as many experiments as it needs; its
exact expectation is used beside it (a pool of N with K targets: ``allALM = n/N``,
``anyALM = 1 - C(N-K, n)/C(N, n)``; a continuous space where a fraction p is on target:
``anyALM = 1 - (1-p)^n``). AF is computed on the seed-averaged curves; its 95 % interval
comes from resampling the seeds (bootstrap, 1000 draws).

Problems:

(a) ``hte``: the 3,626 measured conductivities of LiPF6 in EC/PC/EMC (Flores et al.,
    Digital Discovery 1 (2022) 440; bigmap.data.load_hte) as a pool of the 849 measured
    (T, r, c) points; a measurement returns one of that point's replicate measurements at
    random (the real scatter); target: the points whose mean conductivity is in the top 1 %.
(b) ``pybamm``: a cell design problem: volumetric energy [Wh/L, electrode stack with current
    collectors] of a 2C discharge to 2.5 V (PyBaMM SPMe, Chen2020 parameters: C.-H. Chen et
    al., J. Electrochem. Soc. 167 (2020) 080534) over negative and positive electrode
    thickness (40-120 um) and porosity (0.2-0.5, active material = 1 - porosity); 512 Sobol
    designs computed once and cached in benchmarks/out/ (the planner sees only what it
    queries); target: the top 1 % designs.
(c) ``hartmann``: the Hartmann-6 function (maximised; global maximum 3.32237, Dixon & Szego
    1978) on the continuous unit cube; target: the top 1 % of the cube's volume (the 99th
    percentile of f over 10^6 uniform points).

Strategies: bigmap's ``botorch`` (its defaults: GP with an RBF kernel, qLogNEI, a batch of
4 optimised jointly), ``botorch_seq_matern`` (the same with a Matern-5/2 kernel and batches
built greedily, one candidate at a time), ``sobol``, ``random``, and BayBE
0.15 (Merck KGaA; its default two-phase recommender, random then BoTorch GP) with the same
budgets, batch size and seeds. Output: a table, ``benchmarks/out/planner_acceleration.png``
(the curves) and ``benchmarks/out/planner_acceleration.json`` (every run).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

OUT = Path(__file__).resolve().parent / "out"
BATCH = 4
# strategy names of the command line -> bigmap strategy settings (others: {"name": NAME})
VARIANTS: dict[str, dict[str, Any]] = {
    "botorch_joint": {"name": "botorch", "sequential": False},
    "botorch_seq": {"name": "botorch", "sequential": True},
    "botorch_matern": {"name": "botorch", "kernel": "matern"},
    "botorch_seq_matern": {"name": "botorch", "sequential": True, "kernel": "matern"},
}


@dataclass
class Problem:
    name: str
    spec: dict[str, Any]
    budget: int
    pool: list[dict[str, Any]] | None = None
    values: np.ndarray | None = None  # pool: the true value of each candidate
    replicates: list[np.ndarray] | None = None  # pool: what a measurement may return
    targets: set[int] = field(default_factory=set)
    threshold: float = math.nan  # continuous: the top-1 % level
    p_target: float = 0.01
    fn: Any = None  # continuous: x dict -> value
    names: list[str] = field(default_factory=list)
    label: str = ""

    @property
    def is_pool(self) -> bool:
        return self.pool is not None

    def measure(self, x: dict[str, Any], index: int | None, rng: np.random.Generator) -> float:
        if self.is_pool:
            assert index is not None and self.replicates is not None
            reps = self.replicates[index]
            return float(reps[rng.integers(len(reps))])
        return float(self.fn(x))

    def hit(self, x: dict[str, Any], index: int | None) -> bool:
        if self.is_pool:
            return index in self.targets
        return bool(self.fn(x) >= self.threshold)


def _variables(names: list[str], lows: list[float], highs: list[float]) -> list[dict[str, Any]]:
    return [
        {"name": n, "low": lo, "high": hi} for n, lo, hi in zip(names, lows, highs, strict=True)
    ]


def _spec(name: str, variables: list[dict[str, Any]], budget: int, output: str) -> dict[str, Any]:
    return {
        "name": name,
        "variables": variables,
        "objectives": [{"name": output, "direction": "maximize"}],
        "measurements": [{"capability": "bench/measure"}],
        "batch_size": BATCH,
        "budget": {"requests": budget},
    }


def problem_hte(budget: int) -> Problem:
    from bigmap.data import load_hte

    d = load_hte()
    groups = d.groupby(["T", "r", "c"])
    keys = list(groups.groups.keys())
    pool = [{"T": float(t), "r": float(r), "c": float(c)} for t, r, c in keys]
    reps = [groups.get_group(k)["kappa"].to_numpy() for k in keys]
    values = np.array([r.mean() for r in reps])
    k = math.ceil(0.01 * len(pool))
    targets = set(np.argsort(-values)[:k].tolist())
    names = ["T", "r", "c"]
    variables = _variables(names, [243.15, 0.087, 0.194], [333.15, 1.0, 2.118])
    return Problem(
        "hte",
        _spec("hte", variables, budget, "y"),
        budget,
        pool=pool,
        values=values,
        replicates=reps,
        targets=targets,
        names=names,
        label=f"(a) measured conductivity, {len(pool)} points, top {k}",
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


def problem_pybamm(budget: int, n: int = 512) -> Problem:
    import csv

    path = OUT / f"pybamm_landscape_{n}.csv"
    if not path.exists():
        from scipy.stats import qmc

        print(
            f"computing the PyBaMM landscape ({n} designs, once; cached in {path}) ...", flush=True
        )
        u = qmc.Sobol(4, scramble=True, seed=2020).random(n)
        rows = []
        t0 = time.perf_counter()
        for k, row in enumerate(u):
            x = {
                nm: lo + a * (hi - lo)
                for nm, lo, hi, a in zip(PYBAMM_NAMES, PYBAMM_LOW, PYBAMM_HIGH, row, strict=True)
            }
            try:
                e = pybamm_energy_density(**x)
            except Exception as exc:  # a design PyBaMM cannot solve counts as worthless
                print(f"  design {k} failed: {exc}", flush=True)
                e = 0.0
            rows.append({**x, "energy_Wh_per_L": e})
            if (k + 1) % 64 == 0:
                print(f"  {k + 1}/{n} ({time.perf_counter() - t0:.0f} s)", flush=True)
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
    return Problem(
        "pybamm",
        _spec("pybamm", _variables(PYBAMM_NAMES, PYBAMM_LOW, PYBAMM_HIGH), budget, "y"),
        budget,
        pool=pool,
        values=values,
        replicates=[np.array([v]) for v in values],
        targets=set(np.argsort(-values)[:k].tolist()),
        names=PYBAMM_NAMES,
        label=f"(b) PyBaMM 2C energy density, {len(pool)} designs, top {k}",
    )


def problem_hartmann(budget: int) -> Problem:
    import torch
    from botorch.test_functions import Hartmann

    h6 = Hartmann(dim=6, negate=True)
    names = [f"x{i}" for i in range(6)]
    rng = np.random.default_rng(6)
    sample = torch.tensor(rng.random((1_000_000, 6)))
    with torch.no_grad():
        q99 = float(torch.quantile(h6(sample)[:200_000], 0.99))

    def fn(x: dict[str, Any]) -> float:
        with torch.no_grad():
            return float(h6(torch.tensor([[x[n] for n in names]], dtype=torch.double)))

    return Problem(
        "hartmann",
        _spec("hartmann", _variables(names, [0.0] * 6, [1.0] * 6), budget, "y"),
        budget,
        threshold=q99,
        p_target=0.01,
        fn=fn,
        names=names,
        label=f"(c) Hartmann-6, f >= {q99:.3f} (top 1 % of the cube)",
    )


# ----------------------------------------------------------------------------- runs


def run_bigmap(prob: Problem, strategy: str, seed: int, budget: int) -> list[dict[str, Any]]:
    from bigmap.planner.local import run_local
    from bigmap.planner.spec import parse_spec

    doc = {**prob.spec, "seed": seed, "strategy": dict(VARIANTS.get(strategy, {"name": strategy}))}
    doc["budget"] = {"requests": budget}
    if strategy == "random" and budget > 200:
        doc["batch_size"] = 50
    rng = np.random.default_rng(10_000 + seed)
    recs: list[dict[str, Any]] = []

    def ev(c):
        y = prob.measure(c.x, c.pool_index, rng)
        recs.append({"x": c.x, "index": c.pool_index, "y": y, "hit": prob.hit(c.x, c.pool_index)})
        return {"y": y}

    run_local(parse_spec(doc), ev, pool=prob.pool)
    return recs


def run_baybe(prob: Problem, seed: int, budget: int) -> list[dict[str, Any]]:
    import pandas as pd
    from baybe import Campaign
    from baybe.parameters import NumericalContinuousParameter, NumericalDiscreteParameter
    from baybe.searchspace import SearchSpace
    from baybe.targets import NumericalTarget
    from baybe.utils.random import set_random_seed

    set_random_seed(seed)
    rng = np.random.default_rng(10_000 + seed)
    if prob.is_pool:
        df = pd.DataFrame(prob.pool)
        params = [NumericalDiscreteParameter(n, values=sorted(df[n].unique())) for n in prob.names]
        space = SearchSpace.from_dataframe(df[prob.names], parameters=params)
        index = {tuple(row): i for i, row in enumerate(df[prob.names].itertuples(index=False))}
    else:
        lows = [v["low"] for v in prob.spec["variables"]]
        highs = [v["high"] for v in prob.spec["variables"]]
        space = SearchSpace.from_product(
            [
                NumericalContinuousParameter(n, bounds=(lo, hi))
                for n, lo, hi in zip(prob.names, lows, highs, strict=True)
            ]
        )
    camp = Campaign(space, objective=NumericalTarget(name="y"))
    recs: list[dict[str, Any]] = []
    while len(recs) < budget:
        rec = camp.recommend(batch_size=min(BATCH, budget - len(recs)))
        ys = []
        for row in rec[prob.names].itertuples(index=False):
            x = {n: float(v) for n, v in zip(prob.names, row, strict=True)}
            i = index[tuple(row)] if prob.is_pool else None
            y = prob.measure(x, i, rng)
            ys.append(y)
            recs.append({"x": x, "index": i, "y": y, "hit": prob.hit(x, i)})
        rec["y"] = ys
        camp.add_measurements(rec)
    return recs[:budget]


# ----------------------------------------------------------------------------- metrics


def curves(recs: list[dict[str, Any]], n_max: int, k_targets: int) -> tuple[np.ndarray, np.ndarray]:
    """anyALM and allALM (= Top%) after each of the first ``n_max`` experiments; a run that
    ended earlier keeps its last value."""
    any_c = np.zeros(n_max)
    top_c = np.zeros(n_max)
    found: set[Any] = set()
    hit = False
    for n in range(n_max):
        if n < len(recs):
            r = recs[n]
            if r["hit"]:
                hit = True
                found.add(r["index"] if r["index"] is not None else n)
        any_c[n] = 1.0 if hit else 0.0
        top_c[n] = len(found) / k_targets if k_targets else np.nan
    return any_c, top_c


def n_to_reach(curve: np.ndarray, level: float) -> float:
    """Experiments (1-based) until the curve first reaches ``level``; inf if it never does."""
    idx = np.nonzero(curve >= level - 1e-12)[0]
    return float(idx[0] + 1) if len(idx) else math.inf


def exact_random_any(prob: Problem, n: np.ndarray) -> np.ndarray:
    if prob.is_pool:
        N, K = len(prob.pool), len(prob.targets)
        out = []
        for m in n:
            p_none = 1.0
            for j in range(
                int(m)
            ):  # probability of drawing no target in m draws without replacement
                p_none *= max(N - K - j, 0) / (N - j)
            out.append(1 - p_none)
        return np.array(out)
    return 1 - (1 - prob.p_target) ** n


def acceleration(
    per_seed_s: np.ndarray,
    per_seed_r: np.ndarray,
    level: float,
    rng: np.random.Generator,
    boots: int = 1000,
) -> tuple[float, float, float]:
    """AF on the seed-averaged curves and its bootstrap 95 % interval."""

    def af(s: np.ndarray, r: np.ndarray) -> float:
        ns = n_to_reach(s.mean(axis=0), level)
        nr = n_to_reach(r.mean(axis=0), level)
        if math.isinf(ns):
            return 0.0
        return nr / ns

    point = af(per_seed_s, per_seed_r)
    draws = []
    for _ in range(boots):
        i = rng.integers(len(per_seed_s), size=len(per_seed_s))
        j = rng.integers(len(per_seed_r), size=len(per_seed_r))
        draws.append(af(per_seed_s[i], per_seed_r[j]))
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return point, float(lo), float(hi)


# ----------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument(
        "--random-seeds", type=int, default=200, help="runs of the random baseline (cheap)"
    )
    ap.add_argument("--problems", default="hte,pybamm,hartmann")
    ap.add_argument("--strategies", default="botorch,botorch_seq_matern,sobol,baybe")
    ap.add_argument("--budget", type=int, default=60, help="experiments per campaign (pools)")
    ap.add_argument("--budget-hartmann", type=int, default=80)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    makers = {"hte": problem_hte, "pybamm": problem_pybamm, "hartmann": problem_hartmann}
    strategies = [s for s in args.strategies.split(",") if s]
    seeds = list(range(args.seeds))
    results: dict[str, Any] = {}
    rng = np.random.default_rng(0)
    rows = []
    t_all = time.perf_counter()
    for pname in args.problems.split(","):
        budget = args.budget_hartmann if pname == "hartmann" else args.budget
        prob = makers[pname](budget)
        k = len(prob.targets) if prob.is_pool else 0
        # random search, as long as it takes to reach the levels (it is only a lookup)
        n_rand = len(prob.pool) if prob.is_pool else 2000
        print(f"\n{prob.label}: budget {budget}, batch {BATCH}, {len(seeds)} seeds", flush=True)
        runs: dict[str, list[list[dict[str, Any]]]] = {"random": []}
        times: dict[str, float] = {}
        t0 = time.perf_counter()
        for s in range(args.random_seeds):
            runs["random"].append(run_bigmap(prob, "random", s, n_rand))
        times["random"] = (time.perf_counter() - t0) / args.random_seeds
        for strat in strategies:
            runs[strat] = []
            t0 = time.perf_counter()
            for s in seeds:
                ts = time.perf_counter()
                recs = (
                    run_baybe(prob, s, budget)
                    if strat == "baybe"
                    else run_bigmap(prob, strat, s, budget)
                )
                runs[strat].append(recs)
                first = next((i + 1 for i, r in enumerate(recs) if r["hit"]), None)
                print(
                    f"  {strat:8s} seed {s}: best {max(r['y'] for r in recs):.4g}, first top-1 % hit "
                    f"at {first}, {time.perf_counter() - ts:.0f} s",
                    flush=True,
                )
            times[strat] = (time.perf_counter() - t0) / len(seeds)
        n_max = max(n_rand, budget)
        cur = {
            name: np.array([curves(r, n_max, k) for r in rr])  # seeds x 2 x n
            for name, rr in runs.items()
        }
        rand_any = cur["random"][:, 0, :]
        rand_top = cur["random"][:, 1, :]
        exact_any = exact_random_any(prob, np.arange(1, n_max + 1))
        res: dict[str, Any] = {
            "label": prob.label,
            "budget": budget,
            "k_targets": k,
            "strategies": {},
        }
        for name in ["random", *strategies]:
            a = cur[name][:, 0, :]
            t = cur[name][:, 1, :]
            firsts = [n_to_reach(a[i], 1.0) for i in range(len(a))]
            horizon = a.shape[1] if name == "random" else budget  # random runs to the end
            af_any = acceleration(a[:, :horizon], rand_any, 0.5, rng)
            ef_n = budget // 2
            ef = float(a[:, ef_n - 1].mean() / max(rand_any[:, ef_n - 1].mean(), 1e-12))
            row = {
                "problem": pname,
                "strategy": name,
                "first_hit_median": float(np.median(firsts)),
                "first_hit_q25": float(np.percentile(firsts, 25)),
                "first_hit_q75": float(np.percentile(firsts, 75)),
                "hit_within_budget": int(sum(f <= budget for f in firsts)),
                "AF_any50": af_any,
                "AF_any50_vs_exact": n_to_reach(exact_any, 0.5)
                / max(n_to_reach(a[:, :horizon].mean(axis=0), 0.5), 1e-12),
                f"EF_any_at_{ef_n}": ef,
                "best_mean": float(
                    np.mean([max(r["y"] for r in rr[:budget]) for rr in runs[name]])
                ),
                "best_sd": float(np.std([max(r["y"] for r in rr[:budget]) for rr in runs[name]])),
                "seconds_per_campaign": times[name],
            }
            if prob.is_pool:
                row["AF_top50"] = acceleration(t[:, :horizon], rand_top, 0.5, rng)
                row["top_at_budget_mean"] = float(t[:, budget - 1].mean())
                row["top_at_budget_sd"] = float(t[:, budget - 1].std())
                row["EF_top_at_budget"] = float(
                    t[:, budget - 1].mean() / max(rand_top[:, budget - 1].mean(), 1e-12)
                )
            rows.append(row)
            res["strategies"][name] = {
                "row": row,
                "runs": [
                    [{"y": r["y"], "hit": r["hit"], "index": r["index"]} for r in rr]
                    for rr in runs[name]
                ],
            }
        res["exact_random_any"] = exact_any[: max(budget, 1)].tolist()
        results[pname] = res
        _print_table([r for r in rows if r["problem"] == pname], prob)
        _save(args.out, results)
        _plot(args.out, results)
    print(f"\ntotal {time.perf_counter() - t_all:.0f} s", flush=True)


def _fmt_af(t: tuple[float, float, float]) -> str:
    p, lo, hi = t
    return f"{p:5.1f} [{lo:.1f}-{hi:.1f}]"


def _print_table(rows: list[dict[str, Any]], prob: Problem) -> None:
    print(f"\n{prob.label}")
    head = (
        f"{'strategy':9s} {'first hit: median [IQR]':24s} {'hit/seeds':9s} "
        f"{'AF(any 0.5) [95% CI]':22s} {'AF vs exact':11s}"
    )
    if prob.is_pool:
        head += f" {'AF(Top% 0.5) [95% CI]':22s} {'Top% at budget':15s} {'EF(Top%)':8s}"
    head += f" {'EF(any, n/2)':12s} {'best':16s} {'s/campaign':10s}"
    print(head)
    for r in rows:
        first = f"{r['first_hit_median']:.0f} [{r['first_hit_q25']:.0f}-{r['first_hit_q75']:.0f}]"
        ef_key = next(k for k in r if k.startswith("EF_any_at_"))
        line = (
            f"{r['strategy']:9s} {first:24s} {str(r['hit_within_budget']):9s} "
            f"{_fmt_af(r['AF_any50']):22s} {r['AF_any50_vs_exact']:11.1f}"
        )
        if prob.is_pool:
            line += f" {_fmt_af(r['AF_top50']):22s} {r['top_at_budget_mean']:.2f} ± {r['top_at_budget_sd']:.2f}   {r['EF_top_at_budget']:8.1f}"
        line += f" {r[ef_key]:12.2f} {r['best_mean']:.4g} ± {r['best_sd']:.2g}   {r['seconds_per_campaign']:8.1f}"
        print(line)
    print(
        "(random: run in this invocation for as long as it needs; AF = n_random/n_strategy on seed-averaged curves)"
    )


def _save(out: Path, results: dict[str, Any]) -> None:
    def default(o: Any) -> Any:
        if isinstance(o, np.integer | np.floating):
            return o.item()
        if isinstance(o, float) and math.isinf(o):
            return None
        return str(o)

    (out / "planner_acceleration.json").write_text(json.dumps(results, default=default, indent=1))


def _plot(out: Path, results: dict[str, Any]) -> None:
    """Top row: anyALM(n); bottom row: allALM(n) (Top%) for pools, best so far otherwise."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = len(results)
    fig, axes = plt.subplots(2, cols, figsize=(5.2 * cols, 8.0), squeeze=False)
    for j, res in enumerate(results.values()):
        budget = res["budget"]
        n = np.arange(1, budget + 1)
        k = res.get("k_targets") or 0
        top, bottom = axes[0][j], axes[1][j]
        for name, st in res["strategies"].items():
            runs = st["runs"]
            hits = np.array(
                [[1.0 if any(r["hit"] for r in rr[:m]) else 0.0 for m in n] for rr in runs]
            )
            top.plot(n, hits.mean(axis=0), label=name)
            if k:
                frac = np.array(
                    [[len({r["index"] for r in rr[:m] if r["hit"]}) / k for m in n] for rr in runs]
                )
                mean, sd = frac.mean(axis=0), frac.std(axis=0)
            else:
                best = np.array([[max(r["y"] for r in rr[:m]) for m in n] for rr in runs])
                mean, sd = best.mean(axis=0), best.std(axis=0)
            (line,) = bottom.plot(n, mean, label=name)
            bottom.fill_between(n, mean - sd, mean + sd, color=line.get_color(), alpha=0.12)
        top.plot(n, res["exact_random_any"][:budget], "k:", label="random (exact)")
        if k:
            bottom.plot(n, n / (len(res["strategies"]["random"]["runs"][0]) or 1), "k:", lw=0.8)
        top.set_title(res["label"], fontsize=8)
        top.set_ylabel("anyALM: P(a top-1 % candidate found)")
        bottom.set_ylabel("allALM (Top%): share of the top 1 % found" if k else "best value so far")
        for ax in (top, bottom):
            ax.set_xlabel("experiments")
            ax.legend(fontsize=7)
        top.set_ylim(-0.02, 1.02)
    fig.suptitle(
        "mean over seeds (band: one standard deviation); Rohr et al. 2020, Liang et al. 2021",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(out / "planner_acceleration.png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
