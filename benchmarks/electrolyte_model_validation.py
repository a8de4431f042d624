"""Validation of the electrolyte-model tenant's data-driven conductivity model (``hte_gp``).

Grouped K-fold cross-validation on the 3,626 HTE measurements (E. Flores et al., Digital
Discovery 1 (2022) 440; ``bigmap.data.load_hte``): the folds hold out whole formulations
(every temperature of a given (r, c)), so the score is that of predicting a formulation never
measured. Prints the RMSE [S/m], the mean absolute percentage error and the coverage of the
95 % predictive intervals (the fraction of held-out measurements inside them; 0.95 is
calibrated), against a baseline measured in the same run: the per-temperature mean of the
training folds (a model that knows nothing of composition).

Also compares the Landesfeind-Gasteiger EC:EMC 3:7 fit with the HTE measurements at the lowest
PC share (r < 0.1, i.e. nearly EC:EMC 3:7), converting molality to molarity as the tenant does.

    .venv/bin/python benchmarks/electrolyte_model_validation.py [--folds 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from sklearn.model_selection import GroupKFold

    from bigmap.data import load_hte
    from bigmap.schemas.formulation import CHEMICALS, formulation_from_mole_fractions
    from bigmap.tenants.electrolyte import LG_SYSTEMS, HteGP, lg_conductivity, molarity

    d = load_hte()
    groups = d.groupby(["r", "c"]).ngroup().to_numpy()
    y = d["kappa"].to_numpy()
    pred = np.empty_like(y)
    lo = np.empty_like(y)
    hi = np.empty_like(y)
    sd = np.empty_like(y)
    base = np.empty_like(y)
    t0 = time.perf_counter()
    for train, test in GroupKFold(n_splits=args.folds).split(d, y, groups):
        tr, te = d.iloc[train], d.iloc[test]
        gp = HteGP(seed=args.seed).fit(tr["r"], tr["c"], tr["T"], tr["kappa"])
        m, s = gp.predict(te["r"], te["c"], te["T"])
        a, b = gp.interval(te["r"], te["c"], te["T"], 0.95)
        pred[test], sd[test], lo[test], hi[test] = m, s, a, b
        means = tr.groupby("T")["kappa"].mean()
        base[test] = te["T"].map(means).to_numpy()
    elapsed = time.perf_counter() - t0

    def scores(p: np.ndarray) -> tuple[float, float]:
        return float(np.sqrt(np.mean((p - y) ** 2))), float(np.mean(np.abs(p - y) / y))

    rmse, mape = scores(pred)
    b_rmse, b_mape = scores(base)
    inside = (y >= lo) & (y <= hi)
    z = np.abs(pred - y) / sd
    print(f"HTE GP, {args.folds}-fold cross-validation grouped by formulation (n = {y.size})")
    print(
        f"  RMSE           {rmse:.4f} S/m   (baseline per-T mean {b_rmse:.4f} S/m; ratio {rmse / b_rmse:.3f})"
    )
    print(
        f"  MAPE           {100 * mape:.2f} %    (baseline {100 * b_mape:.2f} %; ratio {mape / b_mape:.3f})"
    )
    print(f"  95 % coverage  {inside.mean():.3f}   (calibrated: 0.950)")
    print(f"  |error| < 1 sd {np.mean(z < 1):.3f}   (normal: 0.683)")
    print(f"  mean stated sd {np.mean(sd):.4f} S/m")
    print(f"  fit time       {elapsed:.1f} s for {args.folds} folds")

    # Landesfeind-Gasteiger EC:EMC 3:7 against the nearly-EC:EMC HTE blends.
    near = d[(d["r"] < 0.1) & (d["T"] >= 263.15) & (d["T"] <= 323.15)]
    p = LG_SYSTEMS["EC:EMC 3:7"]["conductivity"]
    rel = []
    for _, row in near.iterrows():
        n = {
            "EC": 0.3 / CHEMICALS["EC"]["molar_mass"],
            "EMC": 0.7 / CHEMICALS["EMC"]["molar_mass"],
            "LiPF6": row["c"],
        }
        c_molar = molarity(formulation_from_mole_fractions(n))
        rel.append(float(lg_conductivity(c_molar, row["T"], p)) / row["kappa"] - 1.0)
    rel_a = np.asarray(rel)
    print(
        f"Landesfeind-Gasteiger EC:EMC 3:7 vs HTE at r < 0.1, 263-323 K (n = {rel_a.size}): "
        f"mean deviation {100 * rel_a.mean():+.1f} %, RMS {100 * np.sqrt(np.mean(rel_a**2)):.1f} %"
    )


if __name__ == "__main__":
    main()
