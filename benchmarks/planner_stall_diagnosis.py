"""Why do some of the planner's runs never reach the top 1 %? A diagnostic of issue 20.

    .venv/bin/python benchmarks/planner_stall_diagnosis.py --landscape hte_T293 --seeds 10
    .venv/bin/python benchmarks/planner_stall_diagnosis.py --variant '{"robust": false}'

For each seed it runs bigmap's planner on a landscape of ``planner_acceleration.py`` (batch
4) and records, for every model proposal, the fitted GP (length-scales, noise, outcome
scale), the points the outlier filter left out (and whether they were on target or in the
top 5 % of the landscape), how far the batch is from the points measured so far, and the
true value of the incumbent. A run that never hits is a *stall*; the summary says what its
model looked like. ``--variant`` overrides strategy options (a JSON object) to test a cause.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import planner_acceleration as pa  # noqa: E402


def diagnose(land: pa.Landscape, seed: int, strategy: dict[str, Any]) -> dict[str, Any]:
    from bigmap.planner.core import Planner
    from bigmap.planner.local import run_local
    from bigmap.planner.spec import parse_spec

    spec = parse_spec(land.spec(seed, strategy))
    planner = Planner(spec, land.pool)
    rng = np.random.default_rng(10_000 + seed)
    inner = planner.propose
    steps: list[dict[str, Any]] = []
    top5 = (
        float(
            np.quantile(
                land.fn(
                    np.array(land.lows)
                    + pa._sobol_unit(len(land.names)) * (np.array(land.highs) - np.array(land.lows))
                ),
                0.95,
            )
        )
        if land.fn
        else None
    )  # type: ignore[misc]
    evals: list[dict[str, Any]] = []

    def prop(h, n, step, **k):
        p = inner(h, n, step, **k)
        info: dict[str, Any] = {"step": step, "n_obs": len(h.observations), "source": p.strategy}
        if "y" in p.models:
            st = p.models["y"].state()
            hp = st["hyperparameters"]
            info["lengthscale"] = next((v for k2, v in hp.items() if "lengthscale" in k2), None)
            info["noise"] = hp.get("noise")
            info["outliers"] = list(st["outliers"])
            info["outliers_on_target"] = sum(
                1 for o in h.observations if o.key in st["outliers"] and land.hit(o.x, o.pool_index)
            )
            info["outliers_top5"] = sum(
                1
                for o in h.observations
                if o.key in st["outliers"] and top5 is not None and land.true(o.x) >= top5
            )
            Z = np.array([planner.space.encode(o.x) for o in h.observations])
            zc = np.array([planner.space.encode(c.x) for c in p.candidates])
            if len(zc):
                info["min_dist_to_data"] = float(
                    np.min(np.linalg.norm(Z[None, :, :] - zc[:, None, :], axis=2), axis=1).mean()
                )
            inc = planner.best(h)
            info["incumbent_true"] = land.true(inc.x) if inc is not None else None
            info["incumbent_measured"] = inc.y["y"] if inc is not None else None
            info["notes"] = p.notes
            info["proposals_true"] = [round(land.true(c.x), 4) for c in p.candidates]
        steps.append(info)
        return p

    planner.propose = prop  # type: ignore[method-assign]

    def ev(c):
        y = land.measure(c.x, c.pool_index, rng)
        evals.append({"y": y, "hit": land.hit(c.x, c.pool_index), "true": land.true(c.x)})
        return {"y": y}

    run_local(spec, ev, pool=land.pool, planner=planner)
    n_first = pa.first_hit(evals, land.budget)
    return {"seed": seed, "first_hit": n_first, "steps": steps, "evals": evals}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--landscape", default="hte_T293")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--variant", default="{}")
    ap.add_argument("--out", type=Path, default=pa.OUT / "stall_diagnosis.json")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(1)
    land = (pa.SUITE.get(args.landscape) or pa.HELDOUT[args.landscape])()
    strategy = {"name": "botorch", **json.loads(args.variant)}
    out = []
    for seed in range(args.seeds):
        r = diagnose(land, seed, strategy)
        out.append(r)
        model_steps = [s for s in r["steps"] if "lengthscale" in s]
        last = model_steps[-1] if model_steps else {}
        n_out = sum(len(s.get("outliers", [])) > 0 for s in model_steps)
        print(
            f"seed {seed}: first hit {r['first_hit']:.0f}"
            f"{' (STALL)' if r['first_hit'] > land.budget else ''}; last model: lengthscale "
            f"{last.get('lengthscale')}, noise {last.get('noise')}, incumbent true "
            f"{last.get('incumbent_true', float('nan')):.4g} (target {land.threshold:.4g}); "
            f"steps with outliers left out {n_out}/{len(model_steps)}, on target "
            f"{sum(s.get('outliers_on_target', 0) for s in model_steps)}, top 5 % "
            f"{sum(s.get('outliers_top5', 0) for s in model_steps)}; mean distance of proposals "
            f"to data {np.mean([s.get('min_dist_to_data', np.nan) for s in model_steps]):.3f}",
            flush=True,
        )
    hits = sum(r["first_hit"] <= land.budget for r in out)
    print(
        f"{args.landscape} {strategy}: {hits}/{len(out)} hit; first hits {[r['first_hit'] for r in out]}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
