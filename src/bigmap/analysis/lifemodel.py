"""Early cycle-life prediction from ΔQ(V) features, after K.A. Severson et al., "Data-driven
prediction of battery cycle life before capacity degradation", Nature Energy 4, 383-391
(2019), doi:10.1038/s41560-019-0356-8.

Their approach, kept here: features of the early cycles (above all log10 of the variance of
ΔQ(V) = Q_b(V) − Q_a(V) between two early discharge curves), a regularised linear model
(elastic net, penalty chosen by cross-validation) of log10(cycle life). Their cycles are
a = 10, b = 100 for cells living 150-2300 cycles; here ``a``/``b`` are parameters (the emulated
corpus uses 10 and 50 for lives of roughly 100-500 cycles).

Predictive uncertainty (Severson et al. give none): the spread of the predictions of models
refitted on bootstrap resamples of the training cells (parameter uncertainty), added in
quadrature to the cross-validated residual standard deviation in log10 space (noise).

numpy/pandas only: the elastic net is solved by coordinate descent (J. Friedman, T. Hastie,
R. Tibshirani, "Regularization paths for generalized linear models via coordinate
descent", J. Stat. Softw. 33 (2010) 1), on standardised features.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bigmap.analysis.fom import cycle_summary, delta_q, delta_q_statistics

#: the features of the model, in order
#: (all four can be sent in a FINALES degradationEOL/degradation_model request:
#: capacity_vector_variance, delta_coulombic_efficiency, voltage_gap_charge_discharge, and the
#: capacities in input_cycles)
#:
#: ``log10_var_dq_rel`` is Severson et al.'s log10 var ΔQ(V) made independent of the cell's
#: size: log10 var(ΔQ(V) / Q_a) = log10 var ΔQ(V) − 2 log10 Q_a, with Q_a the discharge
#: capacity of cycle a. (Their cells all had the same 1.1 A h rating, so the absolute variance
#: served; a lab's coin cells and pouch cells do not, and a model trained on 5 mA h cells must
#: not read a 1.5 mA h cell's smaller ΔQ as a longer life.)
FEATURES = (
    "log10_var_dq_rel",
    "delta_coulombic_efficiency",
    "delta_voltage_gap",
    "fade_slope",
)


def relative_log10_var(log10_var_dq: float, capacity_a: float) -> float:
    """log10 var(ΔQ/Q_a) from log10 var ΔQ [A² h²] and Q_a [A h]."""
    if not capacity_a > 0:
        raise ValueError(f"the capacity of cycle a must be positive, not {capacity_a}")
    return float(log10_var_dq) - 2.0 * math.log10(capacity_a)


def life_features(df: pd.DataFrame, a: int = 10, b: int = 50) -> dict[str, float]:
    """Early-cycle features of one cell from its normalised cycling table. Cycle numbers are
    counted from the first cycle with a discharge (1 = that cycle)."""
    s = cycle_summary(df)
    cycles = [int(c) for c in s.index[s["discharge_capacity_Ah"] > 0]]
    if len(cycles) < b:
        raise ValueError(
            f"the features need {b} cycles with a discharge, the table has {len(cycles)}"
        )
    ca, cb = cycles[a - 1], cycles[b - 1]
    _, dq = delta_q(df, ca, cb)
    st = delta_q_statistics(dq)
    ret = (
        s.loc[cycles[1:b], "discharge_capacity_Ah"].to_numpy()
        / s.loc[cycles[1], "discharge_capacity_Ah"]
    )
    x = np.arange(2, b + 1, dtype=float)
    slope = float(np.polyfit(x, ret, 1)[0])
    log10_var = math.log10(max(st["variance"], 1e-30))
    return {
        "log10_var_dq": log10_var,
        "log10_var_dq_rel": relative_log10_var(
            log10_var, float(s.loc[ca, "discharge_capacity_Ah"])
        ),
        "log10_abs_min_dq": math.log10(max(abs(st["minimum"]), 1e-30)),
        "delta_coulombic_efficiency": float(
            s.loc[cb, "coulombic_efficiency"] - s.loc[ca, "coulombic_efficiency"]
        ),
        "delta_voltage_gap": float(s.loc[cb, "voltage_gap_V"] - s.loc[ca, "voltage_gap_V"]),
        "fade_slope": slope,
    }


def cycle_life(df: pd.DataFrame, threshold: float = 0.8) -> int | None:
    """Cycles (counted from the first discharge) until the discharge capacity is at or below
    ``threshold`` of the first cycle's."""
    s = cycle_summary(df)
    q = s["discharge_capacity_Ah"].to_numpy()
    q = q[q > 0]
    if len(q) == 0:
        return None
    hit = np.flatnonzero(q <= threshold * q[0])
    return int(hit[0]) + 1 if len(hit) else None


def elastic_net(
    x: np.ndarray, y: np.ndarray, alpha: float, l1_ratio: float = 0.5, iters: int = 2000
) -> tuple[np.ndarray, float]:
    """min 1/(2n)|y − b0 − X w|² + α (ρ|w|₁ + (1−ρ)/2 |w|²) for standardised X; (w, b0)."""
    n, p = x.shape
    w = np.zeros(p)
    b0 = float(y.mean())
    r = y - b0
    col_sq = (x**2).sum(axis=0) / n
    for _ in range(iters):
        w_old = w.copy()
        for j in range(p):
            r += x[:, j] * w[j]
            rho = float(x[:, j] @ r) / n
            w[j] = (
                np.sign(rho)
                * max(abs(rho) - alpha * l1_ratio, 0.0)
                / (col_sq[j] + alpha * (1 - l1_ratio))
            )
            r -= x[:, j] * w[j]
        if np.max(np.abs(w - w_old)) < 1e-9:
            break
    return w, b0


@dataclass
class LifeModel:
    """A fitted model of log10(cycle life)."""

    features: list[str]
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    alpha: float
    l1_ratio: float
    sigma_log10: float
    bootstrap: list[list[float]] = field(default_factory=list)  # rows: [intercept, *coef]
    cycles: tuple[int, int] = (10, 50)
    info: dict[str, Any] = field(default_factory=dict)

    def _x(self, feats: dict[str, float]) -> np.ndarray:
        missing = [f for f in self.features if f not in feats or feats[f] is None]
        if missing:
            raise ValueError(f"missing features {missing}")
        v = np.array([float(feats[f]) for f in self.features])
        return (v - np.array(self.mean)) / np.array(self.scale)

    def predict(self, feats: dict[str, float]) -> dict[str, float]:
        """Median cycle life, its standard deviation and a 95 % interval."""
        x = self._x(feats)
        mu = self.intercept + float(x @ np.array(self.coef))
        if self.bootstrap:
            b = np.array(self.bootstrap)
            boot = b[:, 0] + b[:, 1:] @ x
            s_par = float(np.std(boot, ddof=1))
        else:
            s_par = 0.0
        s = math.sqrt(s_par**2 + self.sigma_log10**2)
        life = 10**mu
        # standard deviation of a log-normal life with log10 sd s
        sd = life * math.sqrt(math.exp((s * math.log(10)) ** 2) - 1)
        return {
            "cycle_life": life,
            "std": sd,
            "log10_std": s,
            "lower95": 10 ** (mu - 1.96 * s),
            "upper95": 10 ** (mu + 1.96 * s),
        }

    def to_json(self) -> str:
        d = self.__dict__.copy()
        d["cycles"] = list(self.cycles)
        return json.dumps(d, indent=1)

    @classmethod
    def load(cls, path: str | Path) -> LifeModel:
        d = json.loads(Path(path).read_text())
        d["cycles"] = tuple(d["cycles"])
        return cls(**d)


def fit_life_model(
    table: pd.DataFrame,
    *,
    features: tuple[str, ...] = FEATURES,
    l1_ratio: float = 0.5,
    alphas: np.ndarray | None = None,
    folds: int = 5,
    n_bootstrap: int = 200,
    seed: int = 0,
    cycles: tuple[int, int] = (10, 50),
) -> LifeModel:
    """Fit on a table with the feature columns and ``cycle_life`` (one row per cell)."""
    rng = np.random.default_rng(seed)
    x_raw = table[list(features)].to_numpy(dtype=float)
    y = np.log10(table["cycle_life"].to_numpy(dtype=float))
    mean, scale = x_raw.mean(axis=0), x_raw.std(axis=0)
    scale[scale == 0] = 1.0
    x = (x_raw - mean) / scale
    n = len(y)
    alphas = np.logspace(-4, 0, 25) if alphas is None else alphas
    fold = rng.permutation(n) % folds
    cv_err = []
    for a in alphas:
        res = []
        for k in range(folds):
            tr, te = fold != k, fold == k
            w, b0 = elastic_net(x[tr], y[tr], a, l1_ratio)
            res.append(y[te] - (b0 + x[te] @ w))
        cv_err.append(float(np.sqrt(np.mean(np.concatenate(res) ** 2))))
    best = float(alphas[int(np.argmin(cv_err))])
    w, b0 = elastic_net(x, y, best, l1_ratio)
    boot = []
    for _ in range(n_bootstrap):
        i = rng.integers(0, n, n)
        wb, bb = elastic_net(x[i], y[i], best, l1_ratio, iters=500)
        boot.append([bb, *wb.tolist()])
    # residual noise: the cross-validated RMS of the chosen penalty, less the parameter part
    b = np.array(boot)
    # (cells x bootstrap models) predictions; their spread over the models, averaged over cells
    par_sd = float(np.mean(np.std(b[:, 0][None, :] + x @ b[:, 1:].T, axis=1, ddof=1)))
    sigma = math.sqrt(max(min(cv_err) ** 2 - par_sd**2, (0.5 * min(cv_err)) ** 2))
    return LifeModel(
        features=list(features),
        mean=mean.tolist(),
        scale=scale.tolist(),
        coef=w.tolist(),
        intercept=b0,
        alpha=best,
        l1_ratio=l1_ratio,
        sigma_log10=sigma,
        bootstrap=boot,
        cycles=cycles,
        info={"n_train": n, "cv_rmse_log10": min(cv_err)},
    )


def errors(true_life: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """RMSE [cycles] and mean absolute percent error, as Severson et al. report them."""
    t, p = np.asarray(true_life, float), np.asarray(predicted, float)
    return {
        "rmse_cycles": float(np.sqrt(np.mean((p - t) ** 2))),
        "mean_percent_error": float(100 * np.mean(np.abs(p - t) / t)),
    }
