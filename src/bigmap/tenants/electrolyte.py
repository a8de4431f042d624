"""The ``electrolyte-model`` tenant: transport properties of LiPF6 carbonate electrolytes.

Capabilities (FINALES conductivity shapes, plus ``uncertainty`` and ``model``)
------------------------------------------------------------------------------
``conductivity/transport_model``
    Two models behind one capability, chosen by the formulation's domain:

    * ``landesfeind2019``: the fits of J. Landesfeind and H. A. Gasteiger, "Temperature and
      Concentration Dependence of the Ionic Transport Properties of Lithium-Ion Battery
      Electrolytes", J. Electrochem. Soc. 166 (2019) A3079, doi:10.1149/2.0571912jes, as PyBaMM
      ships them: the functional forms are PyBaMM's own
      (``pybamm/input/parameters/lithium_ion/ORegan2022.py``, ``*_base_Landesfeind2019``), the
      coefficients those of PyBaMM's parameter files for LiPF6 in EC:EMC (3:7 w:w; also in
      ORegan2022.py), EC:DMC (1:1 w:w) and EMC:FEC (19:1 w:w) (PyBaMM 23.4,
      ``testing_only/electrolytes/lipf6_*_Landesfeind2019``). Validity: the measured span of
      the paper, -10...+50 degC and up to 2 mol/L (:data:`LG_T_RANGE`, :data:`LG_C_RANGE`).
    * ``hte_gp``: a Gaussian process (scikit-learn) on log conductivity over the HTE dataset's
      coordinates (r, c, T) (``bigmap.data.load_hte``: E. Flores et al., Digital Discovery 1
      (2022) 440, doi:10.1039/D2DD00027J; 3,626 measurements of LiPF6 in EC/PC/EMC, 243-333 K),
      the formulation mapped by :func:`bigmap.schemas.formulation.formulation_to_hte`. Its
      predictive standard deviation includes the measurement noise (a white-noise kernel), so
      it states how far a new measurement may fall. Cross-validated error and 95 % coverage:
      ``benchmarks/electrolyte_model_validation.py``.

    A formulation inside neither domain is refused (``InputError``) with the reason of each.
``diffusivity/transport_model``, ``transference_number/transport_model``
    The Landesfeind-Gasteiger fits of the salt diffusivity [m2/s] and the transference number
    t+ (the HTE dataset has neither).

Concentrations: the fits take the molarity c [mol/L]; a formulation gives mole fractions. The
molarity is c = n_salt / V with V by volume additivity: the pure solvents at their densities
(25 degC, K. Xu, Chem. Rev. 104 (2004) 4303, Table 1; EC 1.321 g/cm3 at 40 degC; FEC 1.454
g/cm3 from its data sheets) and the salt at an apparent molar volume of 30 cm3/mol
(:data:`LIPF6_APPARENT_MOLAR_VOLUME`: an estimate, not a published value, back-calculated from
the densities commercial 1 mol/L LiPF6 electrolytes are sold with, about 1.2 g/cm3 in EC:EMC
3:7 and 1.3 g/cm3 in EC:DMC 1:1, which give 25-33 cm3/mol). The conversion's relative
uncertainty :data:`C_REL_UNCERTAINTY` (3 %) is propagated into the stated uncertainty,
together with an assumed relative error of the fits themselves (:data:`LG_REL_UNCERTAINTY`,
5 %; an assumption of this module, checked against the HTE measurements at the lowest PC share
by ``benchmarks/electrolyte_model_validation.py``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from bigmap.client import InputError, JobContext, Tenant
from bigmap.data import HTE_CITATION, load_hte
from bigmap.schemas import formulation as fm

log = logging.getLogger("bigmap.tenants.electrolyte")

LG_CITATION = (
    "J. Landesfeind, H. A. Gasteiger, J. Electrochem. Soc. 166 (2019) A3079, "
    "doi:10.1149/2.0571912jes (fits as shipped by PyBaMM)"
)
# The measured grid of the fits, the same for every solvent system and quantity as far as
# bigmap knows: -10 ... +50 degC and up to 2 mol/L. UNCHECKED: the paper's text and SI were
# not readable from this workplace (searched: PyBaMM's parameter files and issues #859, #1063
# state no range), so these are the span the module has always claimed, not a verified grid;
# every result says so (``domain.grid_checked`` = False). The physical bounds below are
# checked on every value, whatever the grid.
LG_T_RANGE = (263.15, 323.15)  # K
LG_C_RANGE = (0.05, 2.0)  # mol/L
LG_GRID_CHECKED = False
LG_GRID_SOURCE = (
    "J. Landesfeind, H. A. Gasteiger, J. Electrochem. Soc. 166 (2019) A3079 (measurement span "
    "as claimed by bigmap; not read in the paper: unchecked)"
)
# Where a fit's value means something: (lower, upper), exclusive. A polynomial fit of t+ can
# leave (0, 1) inside the grid (EC:EMC 3:7 at 1 mol/L and -10 degC gives t+ = -0.38; EMC:FEC
# 19:1 -0.41): such a value is refused, never returned.
LG_PHYSICAL = {
    "conductivity": (0.0, math.inf),
    "diffusivity": (0.0, math.inf),
    "transference_number": (0.0, 1.0),
}
LG_REL_UNCERTAINTY = 0.05
C_REL_UNCERTAINTY = 0.03
MASS_RATIO_TOLERANCE = 0.02  # absolute, in the mass fraction of each solvent

# Densities [g/cm3] for the molality -> molarity conversion (see the module docstring).
DENSITY = {
    "EC": 1.321,
    "PC": 1.200,
    "DMC": 1.063,
    "EMC": 1.006,
    "DEC": 0.969,
    "FEC": 1.454,
}
LIPF6_APPARENT_MOLAR_VOLUME = 30.0  # cm3/mol, see the module docstring

# Landesfeind-Gasteiger 2019 coefficients, as in PyBaMM (see the module docstring).
# conductivity p1..p6 [mS/cm form], diffusivity p1..p4, transference number p1..p9.
LG_SYSTEMS: dict[str, dict[str, Any]] = {
    "EC:EMC 3:7": {
        "solvents": {"EC": 0.3, "EMC": 0.7},
        "conductivity": [5.21e-1, 2.28e2, -1.06, 3.53e-1, -3.59e-3, 1.48e-3],
        "diffusivity": [1.01e3, 1.01, -1.56e3, -4.87e2],
        "transference_number": [
            -1.28e1,
            -6.12,
            8.21e-2,
            9.04e-1,
            3.18e-2,
            -1.27e-4,
            1.75e-2,
            -3.12e-3,
            -3.96e-5,
        ],
    },
    "EC:DMC 1:1": {
        "solvents": {"EC": 0.5, "DMC": 0.5},
        "conductivity": [7.98e-1, 2.28e2, -1.22, 5.09e-1, -4e-3, 3.79e-3],
        "diffusivity": [1.47e3, 1.33, -1.69e3, -5.63e2],
        "transference_number": [
            -7.91,
            2.45e-1,
            5.28e-2,
            6.98e-1,
            -1.08e-2,
            -8.21e-5,
            7.43e-4,
            -2.22e-3,
            3.07e-5,
        ],
    },
    "EMC:FEC 19:1": {
        "solvents": {"EMC": 0.95, "FEC": 0.05},
        "conductivity": [2.51e-2, 1.75e2, 1.23, 2.05e-1, -8.81e-2, 2.83e-3],
        "diffusivity": [5.86e2, 1.33, -1.38e3, -5.82e2],
        "transference_number": [
            -1.22e1,
            -3.05,
            8.38e-2,
            1.78,
            1.51e-3,
            -1.37e-4,
            -2.45e-2,
            -5.15e-3,
            2.14e-5,
        ],
    },
}


def lg_conductivity(c: np.ndarray | float, T: np.ndarray | float, p: list[float]) -> np.ndarray:
    """Conductivity [S/m] at molarity c [mol/L] and T [K]: PyBaMM's
    ``electrolyte_conductivity_base_Landesfeind2019`` in numpy."""
    c = np.asarray(c, dtype=float)
    T = np.asarray(T, dtype=float)
    p1, p2, p3, p4, p5, p6 = p
    A = p1 * (1 + (T - p2))
    B = 1 + p3 * np.sqrt(c) + p4 * (1 + p5 * np.exp(1000 / T)) * c
    C = 1 + c**4 * (p6 * np.exp(1000 / T))
    return A * c * B / C / 10.0  # mS/cm -> S/m


def lg_diffusivity(c: np.ndarray | float, T: np.ndarray | float, p: list[float]) -> np.ndarray:
    """Salt diffusivity [m2/s]: PyBaMM's ``electrolyte_diffusivity_base_Landesfeind2019``."""
    c = np.asarray(c, dtype=float)
    T = np.asarray(T, dtype=float)
    p1, p2, p3, p4 = p
    return p1 * np.exp(p2 * c) * np.exp(p3 / T) * np.exp(p4 * c / T) * 1e-10


def lg_transference_number(
    c: np.ndarray | float, T: np.ndarray | float, p: list[float]
) -> np.ndarray:
    """t+: PyBaMM's ``electrolyte_transference_number_base_Landesfeind2019``."""
    c = np.asarray(c, dtype=float)
    T = np.asarray(T, dtype=float)
    p1, p2, p3, p4, p5, p6, p7, p8, p9 = p
    return (
        p1
        + p2 * c
        + p3 * T
        + p4 * c**2
        + p5 * c * T
        + p6 * T**2
        + p7 * c**3
        + p8 * c**2 * T
        + p9 * c * T**2
    )


LG_FUNCTIONS: dict[str, Callable[..., np.ndarray]] = {
    "conductivity": lg_conductivity,
    "diffusivity": lg_diffusivity,
    "transference_number": lg_transference_number,
}


def molarity(formulation: list[dict[str, Any]]) -> float:
    """LiPF6 molarity [mol/L] of a formulation by volume additivity (see the docstring)."""
    x = fm.mole_fractions(formulation)
    volume_cm3 = 0.0
    for name, xi in x.items():
        if name == "LiPF6":
            volume_cm3 += xi * LIPF6_APPARENT_MOLAR_VOLUME
        elif name in DENSITY:
            volume_cm3 += xi * fm.CHEMICALS[name]["molar_mass"] * 1000.0 / DENSITY[name]
        else:
            raise ValueError(f"no density for {name}")
    return x.get("LiPF6", 0.0) / (volume_cm3 / 1000.0)


def lg_system(formulation: list[dict[str, Any]]) -> tuple[str, float]:
    """(system name, molarity [mol/L]) of a formulation in a Landesfeind-Gasteiger solvent
    system; ``ValueError`` with the reason otherwise."""
    x = fm.mole_fractions(formulation)
    if x.get("LiPF6", 0.0) <= 0:
        raise ValueError("the formulation has no LiPF6")
    w = fm.solvent_mass_fractions(formulation)
    for name, sys in LG_SYSTEMS.items():
        target = sys["solvents"]
        if set(w) - set(target):
            continue
        if all(abs(w.get(s, 0.0) - f) <= MASS_RATIO_TOLERANCE for s, f in target.items()):
            return name, molarity(formulation)
    blend = ", ".join(f"{k} {100 * v:.1f} wt%" for k, v in sorted(w.items()))
    raise ValueError(
        f"the solvent ({blend}) is none of the Landesfeind-Gasteiger systems "
        f"({', '.join(LG_SYSTEMS)}, mass ratios within {100 * MASS_RATIO_TOLERANCE:.0f} wt%)"
    )


def lg_predict(quantity: str, formulation: list[dict[str, Any]], T: float) -> dict[str, Any]:
    """Value and standard uncertainty of a Landesfeind-Gasteiger fit; ``ValueError`` outside
    its domain."""
    name, c = lg_system(formulation)
    if not LG_C_RANGE[0] <= c <= LG_C_RANGE[1]:
        raise ValueError(
            f"formulation: LiPF6 at {c:.3g} mol/L is outside the fits' range "
            f"{LG_C_RANGE[0]}-{LG_C_RANGE[1]} mol/L"
        )
    if not LG_T_RANGE[0] <= T <= LG_T_RANGE[1]:
        raise ValueError(
            f"temperature: {T} K is outside the fits' range {LG_T_RANGE[0]}-{LG_T_RANGE[1]} K "
            "(-10...+50 degC)"
        )
    fn = LG_FUNCTIONS[quantity]
    coeffs = LG_SYSTEMS[name][quantity]
    value = float(fn(c, T, coeffs))
    lo, hi = LG_PHYSICAL[quantity]
    if not (lo < value < hi and math.isfinite(value)):
        label = quantity.replace("_", " ")
        raise ValueError(
            f"temperature, formulation: the fit of the {label} leaves physics at {c:.3g} mol/L "
            f"and {T} K in {name} (value {value:.3g}, must lie in ({lo:g}, {hi:g})); refused"
        )
    dc = 1e-4 * max(c, 1e-3)
    dvdc = float((fn(c + dc, T, coeffs) - fn(c - dc, T, coeffs)) / (2 * dc))
    u = math.hypot(LG_REL_UNCERTAINTY * abs(value), dvdc * C_REL_UNCERTAINTY * c)
    return {
        "value": value,
        "uncertainty": u,
        "model": {
            "name": "landesfeind2019",
            "system": f"LiPF6 in {name} (w:w)",
            "molarity_mol_per_L": c,
            "citation": LG_CITATION,
            "domain": {
                "c_mol_per_L": list(LG_C_RANGE),
                "temperature_K": list(LG_T_RANGE),
                "grid_source": LG_GRID_SOURCE,
                "grid_checked": LG_GRID_CHECKED,
                "physical_bounds": [b if math.isfinite(b) else None for b in LG_PHYSICAL[quantity]],
            },
        },
    }


# ----------------------------------------------------------------------------- the GP


class HteGP:
    """A Gaussian process on ``log(kappa)`` over standardised (r, c, T, w_EMC) of the HTE data.

    ``w_EMC`` is the series of the measurement: the EMC mass fraction of the solvent, 0.7 for
    (EC + PC):EMC = 3:7 and 0.5 for 1:1 (``bigmap.data.load_hte``: the file does not carry
    it; the labels are inferred there). Kernel: constant x anisotropic Matern(5/2) + white
    noise. Hyperparameters are fitted by maximum marginal likelihood on ``n_hyper`` points
    (seeded), then the GP is conditioned on all training rows with those hyperparameters
    fixed. The length scales (in standard deviations) have lower bounds so that replicate
    scatter (about 3 %) is counted as noise rather than followed.

    Calibration (:meth:`_calibrate`): the predictive sd is scaled by the factor that makes
    the 95 % intervals cover 95 % of held-out measurements in a ``folds``-fold
    cross-validation grouped by formulation (r, c, series), the split-conformal quantile of
    the standardised residuals (Vovk et al., Algorithmic Learning in a Random World (2005);
    the grouped K-fold variant, "CV+", R. F. Barber et al., Ann. Statist. 49 (2021) 486).
    Each fold refits the hyperparameters without its held-out formulations. The factor is
    taken per measured temperature and series (a Mondrian conformal predictor with
    (T, series) as its taxonomy, Vovk et al. (2005) ch. 4.5): one pooled factor left the cold
    end under-covered (0.908 at 243 K) and the warm end over-covered (0.983 at 333 K),
    because the GP's error grows on cooling faster than its sd does, and per temperature
    alone the 1:1 series was over-covered (0.988) and 3:7 under (0.930). Between measured
    temperatures the factor is interpolated linearly; outside them the nearest one holds. A
    (T, series) cell with fewer than ``min_per_bin`` residuals uses the factor of all series
    at that temperature, and a temperature with fewer than that the pooled factor."""

    def __init__(
        self,
        n_hyper: int = 500,
        seed: int = 0,
        min_length_scales: tuple[float, float, float, float] = (1.0, 1.5, 0.5, 1.0),
        folds: int = 5,
        level: float = 0.95,
        min_per_bin: int = 50,
    ) -> None:
        self.n_hyper = n_hyper
        self.min_length_scales = min_length_scales
        self.seed = seed
        self.folds = folds
        self.level = level
        self.min_per_bin = min_per_bin
        self.gp: Any = None
        self.mu: np.ndarray | None = None
        self.sd: np.ndarray | None = None
        self.n_train = 0
        self.calibration = 1.0  # the pooled factor
        # the factor per measured temperature [K] (Mondrian calibration, see above)
        self.calibration_T: np.ndarray = np.array([298.15])
        # factors per temperature, for all series ("all") and per series (key: w_EMC)
        self.calibration_f: dict[str, np.ndarray] = {"all": np.array([1.0])}
        self.cv_z: np.ndarray | None = None

    @staticmethod
    def _stack(r: Any, c: Any, T: Any, w_emc: Any) -> np.ndarray:
        r = np.ravel(np.asarray(r, dtype=float))
        w = np.full(r.size, fm.HTE_EMC_MASS_FRACTION) if w_emc is None else w_emc
        return np.column_stack(
            [r, np.ravel(c), np.ravel(T), np.broadcast_to(np.ravel(w), r.shape)]
        ).astype(float)

    def _x(self, r: Any, c: Any, T: Any, w_emc: Any = None) -> np.ndarray:
        return (self._stack(r, c, T, w_emc) - self.mu) / self.sd

    def _cache_key(self, X: np.ndarray, y: np.ndarray) -> str:
        import hashlib

        import sklearn

        h = hashlib.sha256()
        h.update(np.ascontiguousarray(X).tobytes() + np.ascontiguousarray(y).tobytes())
        settings = (
            self.n_hyper,
            self.seed,
            self.min_length_scales,
            self.folds,
            self.level,
            self.min_per_bin,
        )
        h.update(repr((HTE_GP_VERSION, settings, sklearn.__version__)).encode())
        return h.hexdigest()

    def fit(
        self,
        r: Any,
        c: Any,
        T: Any,
        kappa: Any,
        w_emc: Any = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> HteGP:
        """Fit on the measurements (kappa [S/m]). With ``cache_dir``, the hyperparameters and
        the calibration factor are kept in a JSON file there, keyed by the data, the settings
        and the scikit-learn version, so that a second fit only conditions the GP."""
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        X = self._stack(r, c, T, w_emc)
        y = np.log(np.ravel(kappa).astype(float))
        self.mu, self.sd = X.mean(axis=0), X.std(axis=0)
        self.sd[self.sd == 0] = 1.0  # one series only: the column is constant
        Xs = (X - self.mu) / self.sd
        kernel = ConstantKernel(1.0, (1e-2, 1e2)) * Matern(
            length_scale=[2.0] * 4,
            length_scale_bounds=[(lo, 1e2) for lo in self.min_length_scales],
            nu=2.5,
        ) + WhiteKernel(1e-2, (1e-5, 1.0))
        cached = None
        path = None
        if cache_dir is not None:
            key = self._cache_key(X, y)
            path = Path(cache_dir) / f"hte_gp-{key[:32]}.json"
            try:
                cached = json.loads(path.read_text())
                if cached.get("key") != key:
                    cached = None
            except (OSError, ValueError):
                cached = None
        self._kernel0 = kernel
        if cached is not None:
            fitted = kernel.clone_with_theta(np.asarray(cached["theta"], dtype=float))
        else:
            fitted = self._hyper(Xs, y)
        self.gp = GaussianProcessRegressor(fitted, normalize_y=True, optimizer=None).fit(Xs, y)
        self.n_train = len(y)
        if cached is not None:
            self.calibration = float(cached["calibration"])
            self.calibration_T = np.asarray(cached["calibration_T"], dtype=float)
            self.calibration_f = {
                k: np.asarray(v, dtype=float) for k, v in cached["calibration_f"].items()
            }
        else:
            self.calibration = self._calibrate(Xs, y, X)
            if path is not None:
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    tmp = path.with_suffix(".tmp")
                    tmp.write_text(
                        json.dumps(
                            {
                                "key": key,
                                "theta": self.gp.kernel_.theta.tolist(),
                                "calibration": self.calibration,
                                "calibration_T": self.calibration_T.tolist(),
                                "calibration_f": {
                                    k: v.tolist() for k, v in self.calibration_f.items()
                                },
                            }
                        )
                    )
                    tmp.replace(path)
                except OSError as exc:  # a read-only cache is no reason to fail
                    log.warning("could not cache the HTE GP in %s: %s", path, exc)
        return self

    def _hyper(self, Xs: np.ndarray, y: np.ndarray) -> Any:
        """The kernel fitted by maximum marginal likelihood on ``n_hyper`` seeded rows."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor

        rng = np.random.default_rng(self.seed)
        idx = rng.choice(len(y), size=min(self.n_hyper, len(y)), replace=False)
        with warnings.catch_warnings():  # a length scale at its lower bound is intended
            warnings.simplefilter("ignore", ConvergenceWarning)
            return (
                GaussianProcessRegressor(
                    self._kernel0, normalize_y=True, n_restarts_optimizer=0, random_state=self.seed
                )
                .fit(Xs[idx], y[idx])
                .kernel_
            )

    def _calibrate(self, Xs: np.ndarray, y: np.ndarray, X: np.ndarray) -> float:
        """The sd factor from grouped K-fold residuals (see the class docstring)."""
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.model_selection import GroupKFold

        groups = np.unique(np.round(X[:, [0, 1, 3]], 6), axis=0, return_inverse=True)[1]
        n_folds = min(self.folds, len(np.unique(groups)))
        if n_folds < 2:
            return 1.0
        z = np.empty(len(y))
        for train, test in GroupKFold(n_splits=n_folds).split(Xs, y, groups):
            # hyperparameters refitted without the held-out formulations: a kernel that has
            # seen them makes the residuals optimistic (coverage 0.909 instead of 0.95)
            kern = self._hyper(Xs[train], y[train])
            gp = GaussianProcessRegressor(kern, normalize_y=True, optimizer=None)
            gp.fit(Xs[train], y[train])
            m, s = gp.predict(Xs[test], return_std=True)
            z[test] = np.abs(y[test] - m) / s
        self.cv_z = z
        pooled = self._conformal(z)
        temps = np.round(X[:, 2], 2)
        series = np.array([self._series_key(w) for w in X[:, 3]])
        Ts = np.unique(temps)
        table: dict[str, list[float]] = {"all": []}
        for t in Ts:
            zt = z[temps == t]
            table["all"].append(self._conformal(zt) if len(zt) >= self.min_per_bin else pooled)
        for key in np.unique(series):
            row = []
            for t, f_all in zip(Ts, table["all"], strict=True):
                zc = z[(temps == t) & (series == key)]
                row.append(self._conformal(zc) if len(zc) >= self.min_per_bin else f_all)
            table[str(key)] = row
        self.calibration_T = Ts.astype(float)
        self.calibration_f = {k: np.array(v) for k, v in table.items()}
        return pooled

    @staticmethod
    def _series_key(w_emc: float) -> str:
        return f"{float(w_emc):.3f}"

    def _conformal(self, z: np.ndarray) -> float:
        """The sd factor whose ``level`` interval holds the finite-sample conformal rank of
        the standardised residuals ``z``."""
        from scipy.stats import norm

        n = len(z)
        q = min(1.0, math.ceil((n + 1) * self.level) / n)  # the finite-sample conformal rank
        return float(np.quantile(z, q, method="higher")) / float(norm.ppf(0.5 + self.level / 2))

    def factor(self, T: Any, w_emc: Any = None) -> np.ndarray:
        """The calibration factor of the predictive sd at temperature(s) ``T`` [K] for the
        series ``w_emc`` (default: 3:7)."""
        T = np.ravel(np.asarray(T, dtype=float))
        w = np.broadcast_to(
            np.ravel(fm.HTE_EMC_MASS_FRACTION if w_emc is None else np.asarray(w_emc, float)),
            T.shape,
        )
        out = np.empty(T.shape)
        for i, (t, wi) in enumerate(zip(T, w, strict=True)):
            f = self.calibration_f.get(self._series_key(wi), self.calibration_f["all"])
            out[i] = np.interp(t, self.calibration_T, f)
        return out

    def _latent(self, r: Any, c: Any, T: Any, w_emc: Any) -> tuple[np.ndarray, np.ndarray]:
        X = self._stack(r, c, T, w_emc)
        m, s = self.gp.predict((X - self.mu) / self.sd, return_std=True)
        return m, s * self.factor(X[:, 2], X[:, 3])

    def predict(self, r: Any, c: Any, T: Any, w_emc: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Median conductivity [S/m] and the predictive standard deviation [S/m] of a new
        measurement (log-normal: sd = median * sqrt(exp(s^2) * (exp(s^2) - 1)))."""
        m, s = self._latent(r, c, T, w_emc)
        median = np.exp(m)
        sd = median * np.sqrt(np.exp(s**2) * (np.exp(s**2) - 1.0))
        return median, sd

    def interval(
        self, r: Any, c: Any, T: Any, level: float = 0.95, w_emc: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The central ``level`` predictive interval [S/m] (exact for the log-normal)."""
        from scipy.stats import norm

        m, s = self._latent(r, c, T, w_emc)
        z = norm.ppf(0.5 + level / 2)
        return np.exp(m - z * s), np.exp(m + z * s)

    @property
    def kernel(self) -> str:
        return str(self.gp.kernel_) if self.gp is not None else ""


_GP: HteGP | None = None
_GP_LOCK = threading.Lock()
HTE_GP_VERSION = 5  # bump when the model changes in a way the cache key does not see


def hte_cache_dir() -> Path:
    """Where the fitted GP's hyperparameters are kept: ``$BIGMAP_CACHE_DIR`` or the user
    cache directory."""
    env = os.environ.get("BIGMAP_CACHE_DIR")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("bigmap", appauthor=False))


def hte_gp() -> HteGP:
    """The GP trained on all 3,626 HTE measurements (fitted once per process)."""
    global _GP
    with _GP_LOCK:
        if _GP is None:
            d = load_hte()
            _GP = HteGP().fit(
                d["r"], d["c"], d["T"], d["kappa"], d["w_emc"], cache_dir=hte_cache_dir()
            )
            log.info("HTE GP fitted on %d points: %s", _GP.n_train, _GP.kernel)
        return _GP


def hte_predict(formulation: list[dict[str, Any]], T: float) -> dict[str, Any]:
    """The GP's conductivity of a formulation of either HTE series ((EC + PC):EMC = 3:7 or 1:1
    by mass); ``ValueError`` outside the measured span of r, c and T."""
    reasons = []
    found: tuple[str, float, float, float] | None = None
    for name, w in fm.HTE_SERIES.items():
        try:
            found = (name, w, *fm.formulation_to_hte(formulation, emc_mass_fraction=w))
            break
        except ValueError as exc:
            reasons.append(str(exc))
    if found is None:
        raise ValueError(reasons[0].replace("3:7 by mass", "3:7 or 1:1 by mass"))
    series, w_emc, r, c = found
    (rlo, rhi), (clo, chi), (tlo, thi) = fm.HTE_R_RANGE, fm.HTE_C_RANGE, fm.HTE_T_RANGE
    for label, v, lo, hi in (
        ("r", r, rlo, rhi),
        ("c [mol/kg]", c, clo, chi),
        ("temperature [K]", T, tlo, thi),
    ):
        if not lo - 1e-9 <= v <= hi + 1e-9:
            raise ValueError(
                f"{label} = {v:.4g} is outside the measured span of the HTE data [{lo}, {hi}]"
            )
    gp = hte_gp()
    median, sd = gp.predict([r], [c], [T], [w_emc])
    lo95, hi95 = gp.interval([r], [c], [T], 0.95, [w_emc])
    return {
        "value": float(median[0]),
        "uncertainty": float(sd[0]),
        "model": {
            "name": "hte_gp",
            "coordinates": {"r": r, "c_mol_per_kg": c, "T": T, "series": series},
            "interval95": [float(lo95[0]), float(hi95[0])],
            "kernel": gp.kernel,
            "sd_calibration": float(gp.factor([T], [w_emc])[0]),
            "sd_calibration_pooled": gp.calibration,
            "calibration": "grouped 5-fold CV (split-conformal) on the training data, "
            "per measured temperature and series (Mondrian), interpolated in T",
            "n_train": gp.n_train,
            "citation": HTE_CITATION,
            "domain": {
                "r": list(fm.HTE_R_RANGE),
                "c_mol_per_kg": list(fm.HTE_C_RANGE),
                "temperature_K": list(fm.HTE_T_RANGE),
                "series": list(fm.HTE_SERIES),
                "r_definition": "molar share of PC in EC + PC",
            },
        },
    }


# ----------------------------------------------------------------------------- schemas


class Chemical(BaseModel):
    SMILES: str
    InChIKey: str


class FormulationComponent(BaseModel):
    chemical: Chemical
    fraction: float = Field(ge=0, le=1)
    fraction_type: str = "molPerMol"


class TransportInput(BaseModel):
    """A FINALES formulation and a temperature, and optionally which model to use."""

    model_config = ConfigDict(extra="forbid")

    formulation: list[FormulationComponent] = Field(min_length=1)
    temperature: float = Field(default=298.15, gt=0, le=1000, description="[K]")
    model: Literal["auto", "landesfeind2019", "hte_gp"] = "auto"


class MethodMeta(BaseModel):
    success: bool
    rating: int = Field(ge=0, le=5)


class RunInfo(BaseModel):
    formulation: list[FormulationComponent]
    internal_reference: str


def _output(name: str, unit: str) -> type[BaseModel]:
    fields = {
        "values": (list[float], Field(description=f"[{unit}]")),
        "uncertainty": (list[float], Field(description=f"standard uncertainty [{unit}]")),
        "temperature": (float, Field(description="[K]")),
        "meta": (MethodMeta, ...),
        "model": (dict[str, Any], Field(description="the model used and its inputs")),
    }
    from pydantic import create_model

    inner = create_model(f"{name.title().replace('_', '')}Output", **fields)  # type: ignore[call-overload]
    return create_model(  # type: ignore[call-overload]
        f"{name.title().replace('_', '')}Result",
        run_info=(RunInfo, ...),
        **{name: (inner, ...)},
    )


ConductivityResult = _output("conductivity", "S/m")
DiffusivityResult = _output("diffusivity", "m2/s")
TransferenceResult = _output("transference_number", "1")


def _chem(name: str) -> dict[str, Any]:
    return {"chemical": fm.chemical_entry(name), "fraction": [{"min": 0.0, "max": 1.0}]}


def _limitations(quantity: str) -> dict[str, Any]:
    """Where the models apply, in FINALES notation (the fine checks are in the function)."""
    alts = [
        {
            "formulation": [[_chem(n) for n in ("LiPF6", *sys["solvents"])]],
            "temperature": [{"min": LG_T_RANGE[0], "max": LG_T_RANGE[1]}],
        }
        for sys in LG_SYSTEMS.values()
    ]
    if quantity == "conductivity":
        alts.append(
            {
                "formulation": [[_chem(n) for n in ("LiPF6", "EC", "PC", "EMC")]],
                "temperature": [{"min": fm.HTE_T_RANGE[0], "max": fm.HTE_T_RANGE[1]}],
            }
        )
    return {"anyOf": alts}


def _predict(quantity: str, p: TransportInput) -> dict[str, Any]:
    formulation = [c.model_dump(mode="json") for c in p.formulation]
    reasons = []
    candidates: list[tuple[str, Callable[[], dict[str, Any]]]] = []
    if p.model in ("auto", "landesfeind2019"):
        candidates.append(
            ("landesfeind2019", lambda: lg_predict(quantity, formulation, p.temperature))
        )
    if p.model in ("auto", "hte_gp"):
        if quantity == "conductivity":
            candidates.append(("hte_gp", lambda: hte_predict(formulation, p.temperature)))
        else:
            reasons.append(f"hte_gp: the HTE dataset has no {quantity.replace('_', ' ')}")
    for name, fn in candidates:
        try:
            return fn()
        except ValueError as exc:
            reasons.append(f"{name}: {exc}")
    raise InputError("outside the domain of every model: " + "; ".join(reasons))


def _result(quantity: str, p: TransportInput, ctx: JobContext) -> dict[str, Any]:
    out = _predict(quantity, p)
    ctx.provenance["model"] = out["model"]["name"]
    ctx.provenance["citation"] = out["model"]["citation"]
    rating = 3 if out["model"]["name"] == "hte_gp" else 2
    return {
        "run_info": {
            "formulation": [c.model_dump(mode="json") for c in p.formulation],
            "internal_reference": f"{out['model']['name']}:{ctx.request_id or 'local'}",
        },
        quantity: {
            "values": [out["value"]],
            "uncertainty": [out["uncertainty"]],
            "temperature": p.temperature,
            "meta": {"success": True, "rating": rating},
            "model": out["model"],
        },
    }


tenant = Tenant(
    "electrolyte-model",
    kind="simulation",
    description="Electrolyte transport: Landesfeind-Gasteiger 2019 fits and a GP on HTE data",
    software=lambda: {"name": "bigmap-electrolyte-model", "version": "0.1.0"},
)


@tenant.capability(
    "conductivity",
    "transport_model",
    parameters=TransportInput,
    result=ConductivityResult,
    limitations=_limitations("conductivity"),
    units={"values": "siemens / meter", "uncertainty": "siemens / meter"},
    cost=1.0,
    fidelity=0.5,
)
def conductivity(p: TransportInput, ctx: JobContext) -> dict[str, Any]:
    """Ionic conductivity of a LiPF6 carbonate electrolyte with its predictive uncertainty."""
    return _result("conductivity", p, ctx)


@tenant.capability(
    "diffusivity",
    "transport_model",
    parameters=TransportInput,
    result=DiffusivityResult,
    limitations=_limitations("diffusivity"),
    units={"values": "meter ** 2 / second", "uncertainty": "meter ** 2 / second"},
    cost=1.0,
    fidelity=0.5,
)
def diffusivity(p: TransportInput, ctx: JobContext) -> dict[str, Any]:
    """Salt diffusivity of LiPF6 in a Landesfeind-Gasteiger solvent system."""
    return _result("diffusivity", p, ctx)


@tenant.capability(
    "transference_number",
    "transport_model",
    parameters=TransportInput,
    result=TransferenceResult,
    limitations=_limitations("transference_number"),
    units={"values": "dimensionless", "uncertainty": "dimensionless"},
    cost=1.0,
    fidelity=0.5,
)
def transference_number(p: TransportInput, ctx: JobContext) -> dict[str, Any]:
    """Cation transference number t+ of LiPF6 in a Landesfeind-Gasteiger solvent system."""
    return _result("transference_number", p, ctx)


@tenant.on_start
def _warm() -> None:
    hte_gp()
