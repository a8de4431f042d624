"""The search space: candidates ``x`` (dicts by name) <-> points ``z`` of the unit cube, and
space-filling designs (random, Sobol, grid) that respect mixtures and linear constraints.

Encoding, one or more columns of ``z`` per variable, every column in [0, 1]:

- continuous: ``(v - low) / (high - low)`` (of the logarithms for a log-scale variable);
- integer: the same, rounded back on decoding;
- categorical: one-hot, decoded by the largest column;
- mixture: one column per component, ``(f - low_i) / (high_i - low_i)``; the sum rule
  ``sum f = total`` becomes a linear equality in ``z``. A component with ``low == high`` is
  fixed.

Linear constraints on the variables are linear in ``z`` and are handed to BoTorch in its
``(indices, coefficients, rhs)`` form (``sum c * z[i] >= rhs``).

Uniform sampling of a mixture uses uniform spacings: the gaps between ``k - 1`` sorted
uniform numbers are uniform on the simplex (L. Devroye, *Non-Uniform Random Variate
Generation*, Springer 1986, ch. V.2). Points that break a component bound or a linear
constraint are rejected; when almost everything is rejected, hit-and-run sampling of the
polytope takes over (BoTorch ``get_polytope_samples``; R. L. Smith, Oper. Res. 32 (1984)
1296).
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bigmap.planner.spec import (
    CampaignSpec,
    CategoricalVariable,
    ContinuousVariable,
    IntegerVariable,
    LinearConstraint,
    MixtureVariable,
)

TOL = 1e-6


@dataclass
class _Col:
    """How one variable sits in ``z``. For a mixture, ``comp_cols[j]`` is the column of
    component ``j`` (None for a fixed component and for the dependent one, ``dep``, which
    is whatever the others leave of the total)."""

    var: Any
    cols: list[int]
    lows: list[float] = field(default_factory=list)
    highs: list[float] = field(default_factory=list)
    comp_cols: list[int | None] = field(default_factory=list)
    dep: int | None = None


class Space:
    """The variables of a campaign as the unit cube, with constraints."""

    def __init__(self, spec: CampaignSpec) -> None:
        self.spec = spec
        self.parts: list[_Col] = []
        self.names = spec.names()
        col = 0
        self.fixed: dict[int, float] = {}
        self.int_cols: list[int] = []
        self.cat_groups: list[list[int]] = []
        self.column_names: list[str] = []
        # a numeric name's value as const + sum(coef * z[col])
        self._terms: dict[str, tuple[float, dict[int, float]]] = {}
        self.inequalities: list[tuple[list[int], list[float], float]] = []
        self.equalities: list[tuple[list[int], list[float], float]] = []
        self.user_equalities = False
        for v in spec.variables:
            if isinstance(v, ContinuousVariable | IntegerVariable):
                part = _Col(v, [col], [float(v.low)], [float(v.high)])
                if isinstance(v, IntegerVariable):
                    self.int_cols.append(col)
                if not (isinstance(v, ContinuousVariable) and v.log):
                    self._terms[v.name] = (float(v.low), {col: float(v.high) - float(v.low)})
                self.column_names.append(v.name)
                col += 1
            elif isinstance(v, CategoricalVariable):
                cols = list(range(col, col + len(v.values)))
                part = _Col(v, cols)
                self.cat_groups.append(cols)
                self.column_names.extend(f"{v.name}={val}" for val in v.values)
                col += len(cols)
            else:
                assert isinstance(v, MixtureVariable)
                lows, highs = [], []
                for j in range(len(v.components)):
                    lo, hi = v.bounds(j)
                    lows.append(lo)
                    highs.append(hi)
                free = [j for j in range(len(lows)) if highs[j] - lows[j] >= TOL]
                dep = free[-1] if free else None
                comp_cols: list[int | None] = [None] * len(lows)
                cols = []
                for j in free[:-1]:
                    comp_cols[j] = col
                    cols.append(col)
                    self.column_names.append(v.components[j].name)
                    col += 1
                part = _Col(v, cols, lows, highs, comp_cols, dep)
                # values of the components in z
                rest = v.total - sum(
                    lows[j] for j in range(len(lows)) if comp_cols[j] is None and j != dep
                )
                dep_const = rest - sum(lows[j] for j in free[:-1])
                for j, c in enumerate(v.components):
                    if comp_cols[j] is not None:
                        self._terms[c.name] = (lows[j], {comp_cols[j]: highs[j] - lows[j]})
                    elif j == dep:
                        self._terms[c.name] = (
                            dep_const,
                            {comp_cols[k]: -(highs[k] - lows[k]) for k in free[:-1]},
                        )
                    else:
                        self._terms[c.name] = (lows[j], {})
                if dep is not None and cols:
                    w = [highs[k] - lows[k] for k in free[:-1]]
                    # lows[dep] <= dep_const - sum(w z) <= highs[dep], where it can bind
                    if dep_const - sum(w) < lows[dep] - 1e-12:
                        self.inequalities.append((cols, [-a for a in w], lows[dep] - dep_const))
                    if dep_const > highs[dep] + 1e-12:
                        self.inequalities.append((cols, w, dep_const - highs[dep]))
            self.parts.append(part)
        self.d = col
        for c in spec.constraints:
            if not isinstance(c, LinearConstraint):
                continue
            coefs: dict[int, float] = {}
            rhs = c.rhs
            for name, a in c.coefficients.items():
                const, terms = self._terms[name]
                rhs -= a * const
                for j, b in terms.items():
                    coefs[j] = coefs.get(j, 0.0) + a * b
            idx = [j for j, b in coefs.items() if abs(b) > 0]
            coef = [coefs[j] for j in idx]
            if c.op == "==":
                self.equalities.append((idx, coef, rhs))
                self.user_equalities = True
            elif c.op == ">=":
                self.inequalities.append((idx, coef, rhs))
            else:
                self.inequalities.append((idx, [-a for a in coef], -rhs))

    # ------------------------------------------------------------------ encode / decode

    @property
    def has_constraints(self) -> bool:
        return bool(self.equalities or self.inequalities)

    def encode(self, x: dict[str, Any]) -> np.ndarray:
        z = np.zeros(self.d)
        for part in self.parts:
            v = part.var
            if isinstance(v, ContinuousVariable):
                val = float(x[v.name])
                if v.log:
                    z[part.cols[0]] = (math.log(val) - math.log(v.low)) / (
                        math.log(v.high) - math.log(v.low)
                    )
                else:
                    z[part.cols[0]] = (val - v.low) / (v.high - v.low)
            elif isinstance(v, IntegerVariable):
                z[part.cols[0]] = (float(x[v.name]) - v.low) / (v.high - v.low)
            elif isinstance(v, CategoricalVariable):
                val = x[v.name]
                try:
                    k = v.values.index(val)
                except ValueError:
                    k = [str(a) for a in v.values].index(str(val))
                z[part.cols[k]] = 1.0
            else:
                for j, comp in enumerate(v.components):
                    c = part.comp_cols[j]
                    if c is not None:
                        lo, hi = part.lows[j], part.highs[j]
                        z[c] = (float(x[comp.name]) - lo) / (hi - lo)
        return z

    def decode(self, z: np.ndarray) -> dict[str, Any]:
        z = np.clip(np.asarray(z, dtype=float), 0.0, 1.0)
        x: dict[str, Any] = {}
        for part in self.parts:
            v = part.var
            if isinstance(v, ContinuousVariable):
                t = z[part.cols[0]]
                if v.log:
                    val = math.exp(math.log(v.low) + t * (math.log(v.high) - math.log(v.low)))
                else:
                    val = v.low + t * (v.high - v.low)
                x[v.name] = float(_tidy(min(max(val, v.low), v.high)))
            elif isinstance(v, IntegerVariable):
                x[v.name] = int(
                    min(max(round(v.low + z[part.cols[0]] * (v.high - v.low)), v.low), v.high)
                )
            elif isinstance(v, CategoricalVariable):
                x[v.name] = v.values[int(np.argmax(z[part.cols]))]
            else:
                lows = np.array(part.lows)
                highs = np.array(part.highs)
                f = lows.copy()
                for j, c in enumerate(part.comp_cols):
                    if c is not None:
                        f[j] = lows[j] + z[c] * (highs[j] - lows[j])
                if part.dep is not None:
                    f[part.dep] = v.total - (f.sum() - f[part.dep])
                f = _project_mixture(f, lows, highs, v.total)
                for comp, val in zip(v.components, f, strict=True):
                    x[comp.name] = float(_tidy(val))
        return x

    def canonical(self, x: dict[str, Any]) -> dict[str, Any]:
        """``x`` as it will be measured: rounded integers, a mixture that sums exactly."""
        return self.decode(self.encode(x))

    def feasible(self, x: dict[str, Any], tol: float = 1e-6) -> bool:
        try:
            z = self.encode(x)
        except (KeyError, ValueError, TypeError):
            return False
        for part in self.parts:
            if isinstance(part.var, MixtureVariable):
                f = [float(x[c.name]) for c in part.var.components]
                if abs(sum(f) - part.var.total) > 1e-6 * max(1.0, part.var.total):
                    return False
                if any(
                    a < lo - tol or a > hi + tol
                    for a, lo, hi in zip(f, part.lows, part.highs, strict=True)
                ):
                    return False
        return self.feasible_z(z, tol) and bool(np.all((z >= -tol) & (z <= 1 + tol)))

    def feasible_z(self, z: np.ndarray, tol: float = 1e-6) -> bool:
        return bool(self.feasible_rows(np.atleast_2d(z), tol).all())

    def feasible_rows(self, z: np.ndarray, tol: float = 1e-6) -> np.ndarray:
        ok = np.ones(len(z), dtype=bool)
        for idx, coef, rhs in self.inequalities:
            ok &= z[:, idx] @ np.array(coef) >= rhs - tol * max(1.0, abs(rhs))
        for idx, coef, rhs in self.equalities:
            ok &= np.abs(z[:, idx] @ np.array(coef) - rhs) <= 1e-4 * max(1.0, abs(rhs))
        return ok

    # ------------------------------------------------------------------ designs

    def _n_free(self) -> int:
        n = 0
        for part in self.parts:
            v = part.var
            if isinstance(v, MixtureVariable):
                free = sum(
                    1 for lo, hi in zip(part.lows, part.highs, strict=True) if hi - lo >= TOL
                )
                n += max(free - 1, 0)
            else:
                n += 1
        return n

    def from_unit(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map points of the ``_n_free``-cube to ``z`` (uniform in, uniform on each
        variable's own domain out); returns ``(z, ok)`` with ``ok`` False where a mixture
        bound or a linear constraint is broken."""
        u = np.atleast_2d(u)
        n = len(u)
        z = np.zeros((n, self.d))
        ok = np.ones(n, dtype=bool)
        k = 0
        for part in self.parts:
            v = part.var
            if isinstance(v, ContinuousVariable | IntegerVariable):
                z[:, part.cols[0]] = u[:, k]
                k += 1
            elif isinstance(v, CategoricalVariable):
                idx = np.minimum((u[:, k] * len(v.values)).astype(int), len(v.values) - 1)
                z[np.arange(n)[:, None], np.array(part.cols)[idx][:, None]] = 1.0
                k += 1
            else:
                lows = np.array(part.lows)
                highs = np.array(part.highs)
                free = np.where(highs - lows >= TOL)[0]
                room = v.total - lows.sum()
                if len(free) == 0:
                    continue
                if len(free) == 1:
                    w = np.ones((n, 1))
                else:
                    s = np.sort(u[:, k : k + len(free) - 1], axis=1)
                    w = np.diff(np.concatenate([np.zeros((n, 1)), s, np.ones((n, 1))], axis=1))
                    k += len(free) - 1
                f = lows[free] + w * room
                ok &= np.all(f <= highs[free] + 1e-12, axis=1)
                for i, j in enumerate(free):
                    c = part.comp_cols[j]
                    if c is not None:
                        z[:, c] = (f[:, i] - lows[j]) / (highs[j] - lows[j])
        if self.inequalities:
            ok &= self.feasible_rows(z)
        return np.clip(z, 0.0, 1.0), ok

    def sample(
        self, n: int, rng: np.random.Generator, *, sobol_seed: int | None = None, skip: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        """``n`` feasible candidates, uniformly at random or (``sobol_seed`` given) from a
        scrambled Sobol sequence of which ``skip`` raw points were used before. Returns the
        candidates and the raw points used in all (to skip next time)."""
        if n <= 0:
            return [], skip
        k = max(self._n_free(), 1)
        out: list[np.ndarray] = []
        used = skip
        drawn = 0
        if sobol_seed is not None:
            from scipy.stats import qmc

            engine = qmc.Sobol(d=k, scramble=True, seed=sobol_seed)
            if skip:
                engine.fast_forward(skip)
        if self.user_equalities:  # a measure-zero set: rejection cannot hit it
            return [self.decode(z) for z in self._hit_and_run(n, rng)], skip
        while len(out) < n:
            m = max(2 * (n - len(out)), 16)
            if sobol_seed is not None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # "balance properties" of non-2^k draws
                    u = engine.random(m)
            else:
                u = rng.random((m, k))
            z, ok = self.from_unit(u)
            if self.int_cols and self.inequalities:  # rounding may break a constraint
                zc = np.array([self.encode(self.decode(row)) for row in z])
                ok &= self.feasible_rows(zc)
            for i in range(m):
                if len(out) >= n:
                    break
                used += 1
                if ok[i]:
                    out.append(z[i])
            drawn += m
            if drawn > 20000 and len(out) < max(1, drawn // 1000):
                out.extend(self._hit_and_run(n - len(out), rng))
                break
        return [self.decode(z) for z in out[:n]], used

    def _hit_and_run(self, n: int, rng: np.random.Generator) -> list[np.ndarray]:
        """Uniform points of the constrained polytope when rejection fails."""
        import torch
        from botorch.utils.sampling import get_polytope_samples

        cont = [c for c in range(self.d) if not any(c in g for g in self.cat_groups)]
        bounds = torch.tensor([[0.0] * self.d, [1.0] * self.d], dtype=torch.double)
        for c, val in self.fixed.items():
            bounds[0, c] = bounds[1, c] = val
        ineq = [
            (torch.tensor(i), torch.tensor(cf, dtype=torch.double), float(r))
            for i, cf, r in self.inequalities
        ]
        eq = [
            (torch.tensor(i), torch.tensor(cf, dtype=torch.double), float(r))
            for i, cf, r in self.equalities
        ]
        samples = get_polytope_samples(
            n,
            bounds,
            inequality_constraints=ineq or None,
            equality_constraints=eq or None,
            seed=int(rng.integers(2**31 - 1)),
            n_burnin=200,
            n_thinning=20,
        ).numpy()
        for g in self.cat_groups:
            samples[:, g] = 0.0
            pick = rng.integers(len(g), size=n)
            samples[np.arange(n), np.array(g)[pick]] = 1.0
        del cont
        return list(samples)

    def grid(self, points: int) -> list[dict[str, Any]]:
        """A full factorial grid with ``points`` levels per continuous variable (integers:
        at most that many values; categorical: every value; mixtures: the simplex lattice
        with ``points - 1`` divisions), without the points that break a constraint."""
        axes: list[list[dict[str, Any]]] = []
        for part in self.parts:
            v = part.var
            if isinstance(v, ContinuousVariable):
                if v.log:
                    vals = np.exp(np.linspace(math.log(v.low), math.log(v.high), points))
                else:
                    vals = np.linspace(v.low, v.high, points)
                axes.append([{v.name: float(_tidy(a))} for a in vals])
            elif isinstance(v, IntegerVariable):
                vals = sorted({int(round(a)) for a in np.linspace(v.low, v.high, points)})
                axes.append([{v.name: a} for a in vals])
            elif isinstance(v, CategoricalVariable):
                axes.append([{v.name: a} for a in v.values])
            else:
                lows = np.array(part.lows)
                highs = np.array(part.highs)
                free = [i for i in range(len(lows)) if highs[i] - lows[i] >= TOL]
                room = v.total - lows.sum()
                divisions = max(points - 1, 1)
                pts = []
                for combo in _compositions(divisions, len(free)):
                    f = lows.copy()
                    f[free] += np.array(combo) / divisions * room
                    if np.all(f <= highs + 1e-9):
                        pts.append(
                            {c.name: float(_tidy(a)) for c, a in zip(v.components, f, strict=True)}
                        )
                axes.append(pts)
        out = []
        for combo in itertools.product(*axes):
            x: dict[str, Any] = {}
            for d in combo:
                x.update(d)
            if not self.inequalities or self.feasible(x):
                out.append(x)
        return out

    def grid_size(self, points: int) -> int:
        size = 1
        for part in self.parts:
            v = part.var
            if isinstance(v, ContinuousVariable):
                size *= points
            elif isinstance(v, IntegerVariable):
                size *= min(points, v.high - v.low + 1)
            elif isinstance(v, CategoricalVariable):
                size *= len(v.values)
            else:
                free = sum(
                    1 for lo, hi in zip(part.lows, part.highs, strict=True) if hi - lo >= TOL
                )
                size *= math.comb(points - 1 + free - 1, free - 1) if free else 1
        return size

    def auto_grid_points(self, budget: int) -> int:
        """The most levels per variable for which the full grid fits in ``budget``."""
        points = 2
        while points < 1000 and self.grid_size(points + 1) <= budget:
            points += 1
        return points

    # ------------------------------------------------------------------ for BoTorch

    def botorch_constraints(self) -> dict[str, Any]:
        import torch

        def conv(items):
            return [
                (torch.tensor(i, dtype=torch.long), torch.tensor(c, dtype=torch.double), float(r))
                for i, c, r in items
                if i
            ] or None

        return {
            "inequality_constraints": conv(self.inequalities),
            "equality_constraints": conv(self.equalities),
        }

    def categorical_choices(self, limit: int = 32) -> list[dict[int, float]] | None:
        """Every combination of categories as fixed one-hot columns (None if too many)."""
        if not self.cat_groups:
            return None
        n = math.prod(len(g) for g in self.cat_groups)
        if n > limit:
            return None
        out = []
        for picks in itertools.product(*self.cat_groups):
            fixed = {}
            for g, p in zip(self.cat_groups, picks, strict=True):
                for c in g:
                    fixed[c] = 1.0 if c == p else 0.0
            out.append(fixed)
        return out


def _compositions(total: int, parts: int):
    """All tuples of ``parts`` non-negative integers that sum to ``total``."""
    if parts <= 0:
        return
    if parts == 1:
        yield (total,)
        return
    for i in range(total + 1):
        for rest in _compositions(total - i, parts - 1):
            yield (i, *rest)


def _project_mixture(
    f: np.ndarray, lows: np.ndarray, highs: np.ndarray, total: float
) -> np.ndarray:
    """The nearest fractions within the bounds that sum to ``total`` (shift the free
    components equally, re-clipping, until the sum is met)."""
    f = np.clip(f, lows, highs)
    for _ in range(100):
        r = total - f.sum()
        if abs(r) < 1e-12:
            break
        room = (highs - f) if r > 0 else (f - lows)
        movable = room > 1e-15
        if not movable.any():
            break
        step = r / movable.sum()
        f = np.where(movable, f + step, f)
        f = np.clip(f, lows, highs)
    return f


def _tidy(v: float) -> float:
    """Round away floating-point dust (12 significant digits)."""
    if v == 0 or not math.isfinite(v):
        return v
    return float(f"{v:.12g}")
