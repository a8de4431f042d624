"""Validation of the electrolyte-model tenant's data-driven conductivity model (``hte_gp``).

Grouped K-fold cross-validation on the 3,626 HTE measurements (E. Flores et al., Digital
Discovery 1 (2022) 440; ``bigmap.data.load_hte``): the folds hold out whole formulations
(every temperature and replicate of a given (r, c, series)), so the score is that of
predicting a formulation never measured. Each outer fold trains the model as the tenant does,
its calibration included (an inner grouped CV on the training part only). Prints the RMSE
[S/m], the mean absolute percentage error and the coverage of the 95 % predictive intervals
(the fraction of held-out measurements inside them; 0.95 is calibrated), overall, per
temperature and per series, against a baseline measured in the same run: the per-temperature
mean of the training folds (a model that knows nothing of composition).

    .venv/bin/python benchmarks/electrolyte_model_validation.py [--folds 5] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def cross_validate(folds: int = 5, seed: int = 0) -> dict:
    """Grouped K-fold predictions of the HTE GP: the data with columns pred, lo, hi, sd, base."""
    from sklearn.model_selection import GroupKFold

    from bigmap.data import load_hte
    from bigmap.tenants.electrolyte import HteGP

    d = load_hte()
    groups = d.groupby(["r", "c", "series"]).ngroup().to_numpy()
    y = d["kappa"].to_numpy()
    for col in ("pred", "lo", "hi", "sd", "base"):
        d[col] = np.nan
    t0 = time.perf_counter()
    for train, test in GroupKFold(n_splits=folds).split(d, y, groups):
        tr, te = d.iloc[train], d.iloc[test]
        gp = HteGP(seed=seed).fit(tr["r"], tr["c"], tr["T"], tr["kappa"], tr["w_emc"])
        m, s = gp.predict(te["r"], te["c"], te["T"], te["w_emc"])
        a, b = gp.interval(te["r"], te["c"], te["T"], 0.95, te["w_emc"])
        d.iloc[test, d.columns.get_loc("pred")] = m
        d.iloc[test, d.columns.get_loc("sd")] = s
        d.iloc[test, d.columns.get_loc("lo")] = a
        d.iloc[test, d.columns.get_loc("hi")] = b
        means = tr.groupby("T")["kappa"].mean()
        d.iloc[test, d.columns.get_loc("base")] = te["T"].map(means).to_numpy()
    return {"data": d, "elapsed": time.perf_counter() - t0}


def scores(d) -> dict:
    y = d["kappa"].to_numpy()
    p = d["pred"].to_numpy()
    return {
        "n": int(y.size),
        "rmse": float(np.sqrt(np.mean((p - y) ** 2))),
        "mape": float(np.mean(np.abs(p - y) / y)),
        "baseline_mape": float(np.mean(np.abs(d["base"].to_numpy() - y) / y)),
        "coverage95": float(np.mean((y >= d["lo"].to_numpy()) & (y <= d["hi"].to_numpy()))),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="write the scores as JSON to this file")
    args = ap.parse_args()

    cv = cross_validate(args.folds, args.seed)
    d = cv["data"]
    overall = scores(d)
    per_t = {f"{T:.2f}": scores(g) for T, g in d.groupby("T")}
    per_s = {s: scores(g) for s, g in d.groupby("series")}
    print(f"HTE GP, {args.folds}-fold cross-validation grouped by formulation (n = {len(d)})")
    print(
        f"  MAPE           {100 * overall['mape']:.2f} %   (baseline per-T mean "
        f"{100 * overall['baseline_mape']:.2f} %; ratio "
        f"{overall['mape'] / overall['baseline_mape']:.3f})"
    )
    print(f"  RMSE           {overall['rmse']:.4f} S/m")
    print(f"  95 % coverage  {overall['coverage95']:.3f}   (target 0.95 +- 0.02)")
    print(f"  time           {cv['elapsed']:.0f} s for {args.folds} folds (each with its own CV)")
    print("  per temperature:   T [K]     n   MAPE %  coverage")
    for k, v in per_t.items():
        print(f"                  {k}  {v['n']:4d}  {100 * v['mape']:6.2f}  {v['coverage95']:.3f}")
    print("  per series:  (EC+PC):EMC   n   MAPE %  coverage")
    for k, v in per_s.items():
        print(
            f"                  {k:>6}  {v['n']:6d}  {100 * v['mape']:6.2f}  {v['coverage95']:.3f}"
        )
    if args.json:
        args.json.write_text(
            json.dumps({"overall": overall, "per_temperature": per_t, "per_series": per_s})
        )


if __name__ == "__main__":
    main()
