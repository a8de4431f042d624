"""Gaussian-process surrogates (BoTorch/GPyTorch), made robust to outliers, and the record
of every fitted state.

- One GP per output: ``SingleTaskGP`` with a Matern-5/2 (or RBF) kernel and the
  dimension-scaled log-normal length-scale priors of C. Hvarfner, E. O. Hellsten, L. Nardi,
  "Vanilla Bayesian optimization performs great in high dimensions", ICML 2024 (BoTorch's
  defaults), or,
  when an output is measured at several fidelities, ``SingleTaskMultiFidelityGP`` with the
  fidelity as an input (linear truncated fidelity kernel of J. Wu, S. Toscano-Palmerin,
  P. Frazier, A. G. Wilson, "Practical multi-fidelity Bayesian optimization for
  hyperparameter tuning", UAI 2019).
- Outliers: after a fit, the leave-one-out residual of each point is computed in closed
  form (C. E. Rasmussen & C. K. I. Williams, *Gaussian Processes for Machine Learning*, MIT
  Press 2006, eq. 5.12: ``mu_-i = y_i - [K^-1 y]_i / [K^-1]_ii``, ``var_-i = 1/[K^-1]_ii``);
  points whose standardised LOO residual exceeds ``outlier_z`` are left out and the GP is
  refitted (at most a fifth of the points, in up to three rounds). This is a cheap
  relative of the relevance-pursuit model of S. Ament et al. (NeurIPS 2024), whose BoTorch
  implementation costs minutes per fit here. Left-out points are named in the model state.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

DTYPE = torch.double


@dataclass
class OutputModel:
    """A fitted GP of one output, and what it was fitted on."""

    output: str
    model: Any
    kind: str
    train_ids: list[str]
    outliers: list[str] = field(default_factory=list)
    multi_fidelity: bool = False
    sign: float = 1.0  # +1: the model predicts the output; -1: its negative (to maximize)

    def state(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "model": self.kind,
            "hyperparameters": hyperparameters(self.model),
            "training_result_ids": self.train_ids,
            "n_train": len(self.train_ids),
            "outliers": self.outliers,
            "multi_fidelity": self.multi_fidelity,
            "negated": self.sign < 0,
        }


def _fit(model: Any) -> None:
    from botorch.fit import fit_gpytorch_mll
    from gpytorch.mlls import ExactMarginalLogLikelihood

    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fit_gpytorch_mll(mll)
        except Exception:  # a failed optimisation keeps the prior's hyper-parameters
            model.train()
    model.eval()


def _build(
    X: torch.Tensor, Y: torch.Tensor, fidelity_col: int | None, d_model: int, kernel: str = "rbf"
) -> Any:
    from botorch.models import SingleTaskGP, SingleTaskMultiFidelityGP
    from botorch.models.transforms.outcome import Standardize
    from botorch.models.utils.gpytorch_modules import get_covar_module_with_dim_scaled_prior

    if fidelity_col is not None:
        return SingleTaskMultiFidelityGP(
            X, Y, data_fidelities=[fidelity_col], outcome_transform=Standardize(m=1)
        )
    # the input may carry a fidelity column this output ignores: active_dims leave it out
    covar = get_covar_module_with_dim_scaled_prior(
        ard_num_dims=d_model,
        use_rbf_kernel=kernel == "rbf",
        active_dims=list(range(d_model)) if X.shape[-1] != d_model else None,
    )
    return SingleTaskGP(X, Y, covar_module=covar, outcome_transform=Standardize(m=1))


def loo_residuals(model: Any) -> np.ndarray:
    """Standardised leave-one-out residuals of an exact GP (Rasmussen & Williams eq. 5.12)."""
    X = model.train_inputs[0]
    y = model.train_targets
    with torch.no_grad():
        K = model.covar_module(X).to_dense()
        noise = model.likelihood.noise.reshape(-1)
        K = K + torch.eye(len(y), dtype=K.dtype) * noise
        mean = model.mean_module(X)
        L = torch.linalg.cholesky(K + 1e-9 * torch.eye(len(y), dtype=K.dtype))
        Kinv = torch.cholesky_inverse(L)
        alpha = Kinv @ (y - mean)
        diag = torch.diagonal(Kinv)
        z = alpha / torch.sqrt(diag)
    return z.numpy()


def fit_output(
    output: str,
    X: np.ndarray,
    y: np.ndarray,
    ids: list[str],
    *,
    fidelity_col: int | None,
    d_model: int,
    robust: bool = True,
    outlier_z: float = 4.0,
    sign: float = 1.0,
    seed: int = 0,
    kernel: str = "rbf",
) -> OutputModel:
    """Fit the GP of one output (values multiplied by ``sign``), leaving out outliers."""
    torch.manual_seed(seed)
    Xt = torch.tensor(X, dtype=DTYPE)
    Yt = torch.tensor(sign * np.asarray(y, dtype=float), dtype=DTYPE).reshape(-1, 1)
    keep = np.ones(len(y), dtype=bool)
    kind = "SingleTaskMultiFidelityGP" if fidelity_col is not None else "SingleTaskGP"
    model = _build(Xt, Yt, fidelity_col, d_model, kernel)
    _fit(model)
    outliers: list[str] = []
    if robust and len(y) >= 8:
        max_out = max(1, len(y) // 5)
        for _ in range(3):
            try:
                z = loo_residuals(model)
            except Exception:  # a singular kernel: nothing to judge
                break
            idx_kept = np.where(keep)[0]
            order = np.argsort(-np.abs(z))
            flagged = [idx_kept[i] for i in order if abs(z[i]) > outlier_z]
            room = max_out - len(outliers)
            if not flagged or room <= 0:
                break
            for i in flagged[: max(1, min(room, len(flagged) // 2 or 1))]:
                keep[i] = False
                outliers.append(ids[i])
            sel = torch.tensor(np.where(keep)[0])
            model = _build(Xt[sel], Yt[sel], fidelity_col, d_model, kernel)
            _fit(model)
    train_ids = [i for i, k in zip(ids, keep, strict=True) if k]
    return OutputModel(
        output,
        model,
        kind,
        train_ids,
        outliers,
        multi_fidelity=fidelity_col is not None,
        sign=sign,
    )


def _vals(t: torch.Tensor) -> Any:
    v = t.detach().reshape(-1).tolist()
    v = [float(f"{a:.6g}") for a in v]
    return v[0] if len(v) == 1 else v


def hyperparameters(model: Any) -> dict[str, Any]:
    """The fitted hyper-parameters of a GP in plain numbers (constrained values)."""
    out: dict[str, Any] = {}
    for name, module in model.named_modules():
        for attr in ("lengthscale", "outputscale", "power", "offset", "variance"):
            if hasattr(module, f"raw_{attr}"):
                try:
                    out[f"{name}.{attr}".lstrip(".")] = _vals(getattr(module, attr))
                except Exception:
                    pass
    try:
        out["noise"] = _vals(model.likelihood.noise)
    except Exception:
        pass
    try:
        out["mean"] = _vals(model.mean_module.constant)
    except Exception:
        pass
    tf = getattr(model, "outcome_transform", None)
    if tf is not None and hasattr(tf, "means"):
        out["y_mean"] = _vals(tf.means)
        out["y_std"] = _vals(tf.stdvs)
    return out


def predict(model: Any, X: np.ndarray, sign: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and standard deviation (latent, in the output's own units)."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        post = model.posterior(torch.tensor(np.atleast_2d(X), dtype=DTYPE))
        mean = post.mean.reshape(-1).numpy() * sign
        std = post.variance.clamp_min(0).sqrt().reshape(-1).numpy()
    return mean, std


def variance_reduction(model: Any, z: np.ndarray, s_target: float, s_other: float) -> float:
    """The share of the posterior variance of f(z, s_target) that one noisy observation
    at (z, s_other) would remove: ``cov^2 / (var_t (var_o + noise))`` (a squared
    correlation, in [0, 1]). Divided by the cost of the observation it ranks the
    fidelities, in the spirit of cost-aware multi-fidelity selection (J. Song, Y. Chen,
    Y. Yue, "A general framework for multi-fidelity Bayesian optimization with Gaussian
    processes", AISTATS 2019); unlike the mutual information it stays bounded when the
    measurement noise is tiny, so a noiseless target does not look infinitely informative."""
    Xa = np.append(np.asarray(z, dtype=float), s_target)  # the fidelity is the last input
    Xb = np.append(np.asarray(z, dtype=float), s_other)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        post = model.posterior(torch.tensor(np.stack([Xa, Xb]), dtype=DTYPE))
        cov = post.mvn.covariance_matrix.detach().numpy().reshape(2, 2)
        tf = getattr(model, "outcome_transform", None)
        scale = float(tf.stdvs.reshape(-1)[0]) ** 2 if tf is not None else 1.0
        noise = float(model.likelihood.noise.reshape(-1)[0]) * scale
    var_t, var_o, c = cov[0, 0], cov[1, 1], cov[0, 1]
    if var_t <= 0:
        return 0.0
    return float(min(max(c * c / (var_t * (var_o + noise)), 0.0), 1.0))
