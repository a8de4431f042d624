"""The planner's decisions, apart from any broker: what it has seen (``History``), what it
proposes next (``Planner.propose``) and which measurement each candidate gets.

Strategies (``spec.strategy.name``, the ``bigmap.strategies`` entry points of
``planner/strategies.py``; an installed package may add its own):

- ``random``: uniform over the feasible space (or the pool);
- ``sobol``: a scrambled Sobol sequence (I. M. Sobol', USSR Comput. Math. Math. Phys. 7
  (1967) 86; Owen scrambling as in SciPy's ``qmc.Sobol``), mapped onto mixtures and
  filtered by the constraints;
- ``grid``: a full factorial grid, as fine as the request budget allows;
- ``botorch``: Sobol for the first ``n_init`` candidates, then Gaussian-process Bayesian
  optimisation with batch acquisition: qLogNoisyExpectedImprovement for one objective
  (S. Ament, S. Daulton, D. Eriksson, M. Balandat, E. Bakshy, "Unexpected improvements to
  expected improvement for Bayesian optimization", NeurIPS 2023), qLogNEHVI for several
  (S. Daulton, M. Balandat, E. Bakshy, "Parallel Bayesian optimization of multiple noisy
  objectives with expected hypervolume improvement", NeurIPS 2021; log form from Ament et
  al. 2023), outcome constraints as probabilistic feasibility (BoTorch ``constraints``),
  pending and failed candidates as ``X_pending`` (asynchronous proposals: the joint
  acquisition integrates over the outcomes still to come), outliers left out of the fit
  (``models.py``), several fidelities of one output in one multi-fidelity GP with the
  fidelity of each candidate chosen by the variance it removes per unit of budget.
  The Sobol start has ``max(5, 2 d)`` candidates (Ax's rule), at most a quarter of the
  request budget. An exploration safeguard (issue 20, docs/planner.md): when the best
  result is ``explore_after`` results old (default ``max(4, 2 * batch_size)``), one
  candidate of the batch maximises qUCB (beta 4) instead, once per ``explore_after``
  results while the campaign stays stalled.
"""

from __future__ import annotations

import csv
import math
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bigmap.planner.models import OutputModel, fit_output, predict, variance_reduction
from bigmap.planner.space import Space
from bigmap.planner.spec import CampaignSpec, Measurement, OutcomeConstraint
from bigmap.planner.strategies import strategy

FEASIBLE = "_answered"  # the model of where requests succeed


@dataclass
class Observation:
    """One answered (or failed) request, as the planner took it in."""

    x: dict[str, Any]
    capability: str
    y: dict[str, float] = field(default_factory=dict)
    failed: bool = False
    message: str = ""
    request_id: str | None = None
    result_id: str | None = None
    tier: int | None = None
    step: int = 0
    cost: float = 0.0
    fidelity: float = 1.0
    std: dict[str, float] = field(default_factory=dict)
    pool_index: int | None = None

    @property
    def key(self) -> str:
        return self.result_id or self.request_id or f"obs-{id(self)}"


@dataclass
class Pending:
    """A request posted and not yet answered."""

    x: dict[str, Any]
    capability: str
    request_id: str
    step: int
    tier: int | None = None
    posted_at: float = field(default_factory=time.time)
    pool_index: int | None = None


@dataclass
class Candidate:
    """One thing to measure: ``x`` by ``capability``."""

    x: dict[str, Any]
    capability: str
    source: str
    acquisition: float | None = None
    predicted: dict[str, float] | None = None
    tier: int | None = None
    pool_index: int | None = None
    origin: str | None = None  # the observation a funnel advancement comes from

    def event(self, request_id: str | None = None) -> dict[str, Any]:
        out = {
            "x": self.x,
            "capability": self.capability,
            "request_id": request_id,
            "acquisition": self.acquisition,
            "predicted": self.predicted,
            "tier": self.tier,
            "source": self.source,
        }
        if self.pool_index is not None:
            out["pool_index"] = self.pool_index
        if self.origin is not None:
            out["origin"] = self.origin
        return out


@dataclass
class History:
    """Everything the planner has seen and done; rebuilt from campaign events on resume."""

    observations: list[Observation] = field(default_factory=list)
    pending: list[Pending] = field(default_factory=list)
    proposed: list[dict[str, Any]] = field(default_factory=list)  # x of each new candidate
    proposed_pool: set[int] = field(default_factory=set)
    sobol_used: int = 0
    grid_next: int = 0
    outliers: set[str] = field(default_factory=set)

    def n_requests(self) -> int:
        return len(self.observations) + len(self.pending)

    def cost(self, spec: CampaignSpec) -> float:
        caps = {m.capability: m.cost for m in spec.measurements}
        return sum(caps.get(o.capability, 0.0) for o in self.observations) + sum(
            caps.get(p.capability, 0.0) for p in self.pending
        )


@dataclass
class Proposal:
    candidates: list[Candidate]
    strategy: str
    models: dict[str, OutputModel] = field(default_factory=dict)
    grid: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


def same_x(a: dict[str, Any], b: dict[str, Any], tol: float = 1e-9) -> bool:
    if a.keys() != b.keys():
        return False
    for k, v in a.items():
        w = b[k]
        if isinstance(v, int | float) and isinstance(w, int | float):
            if abs(float(v) - float(w)) > tol * max(1.0, abs(float(v))):
                return False
        elif v != w:
            return False
    return True


def load_pool(spec: CampaignSpec, base: Path | None = None) -> list[dict[str, Any]] | None:
    """The candidate pool of the spec as rows of ``x`` (numbers parsed from a CSV)."""
    if spec.pool is None:
        return None
    if spec.pool.rows is not None:
        rows = spec.pool.rows
    else:
        path = Path(spec.pool.csv)  # type: ignore[arg-type]
        if not path.is_absolute() and base is not None:
            path = base / path
        with path.open(newline="") as fh:
            rows = []
            for r in csv.DictReader(fh):
                rows.append({k: _num(v) for k, v in r.items()})
    names = spec.names()
    out = []
    for i, r in enumerate(rows):
        missing = [n for n in names if n not in r]
        if missing:
            raise ValueError(f"pool row {i} has no {', '.join(missing)}")
        out.append({n: r[n] for n in names})
    return out


def _num(v: str) -> Any:
    try:
        f = float(v)
    except ValueError:
        return v
    return int(f) if f.is_integer() and re.fullmatch(r"-?\d+", v.strip()) else f


# ----------------------------------------------------------------------------- the planner


class Planner:
    """Proposes candidates and their measurements from a ``History``."""

    def __init__(
        self, spec: CampaignSpec, pool: list[dict[str, Any]] | None = None, base: Path | None = None
    ) -> None:
        self.spec = spec
        self.space = Space(spec)
        self.pool = pool if pool is not None else load_pool(spec, base)
        self.pool_z = (
            np.array([self.space.encode(x) for x in self.pool]) if self.pool is not None else None
        )
        self.outputs = spec.outputs()
        self.objectives = spec.objectives
        self.measures: dict[str, list[Measurement]] = {
            o: sorted(spec.measurements_of(o), key=lambda m: m.fidelity) for o in self.outputs
        }
        self.multi_fidelity = any(len(ms) > 1 for ms in self.measures.values())
        self.target: dict[str, Measurement] = {o: ms[-1] for o, ms in self.measures.items()}
        self.fid_of = {m.capability: m.fidelity for m in spec.measurements}
        self.cost_of = {m.capability: m.cost for m in spec.measurements}
        self.strategy = strategy(spec.strategy.name)
        free = self.space._n_free()
        # Ax's rule for the Sobol start, max(5, 2 d) (Ax ``choose_generation_strategy``),
        # at most a quarter of a request budget and 20
        cap = max(2, spec.budget.requests // 4) if spec.budget.requests else 20
        self.n_init = spec.strategy.n_init or min(max(5, 2 * free), cap, 20)
        if spec.strategy.name == "grid":
            first_tier_budget = spec.budget.requests or 10**6
            per_x = max(1, len(self._caps_for_new()))
            self.grid_points = spec.strategy.grid_points or self.space.auto_grid_points(
                max(first_tier_budget // per_x, 2)
            )
            self._grid = self.space.grid(self.grid_points) if self.pool is None else None

    # ------------------------------------------------------------------ bookkeeping

    def _caps_for_new(self) -> list[str]:
        if self.spec.tiers:
            return [self.spec.tiers[0].capability]
        caps: list[str] = []
        for o in self.outputs:
            ms = self.measures[o]
            if len(ms) == 1 and ms[0].capability not in caps:
                caps.append(ms[0].capability)
        return caps or [self.measures[self.outputs[0]][0].capability]

    def seed(self, step: int) -> int:
        return (self.spec.seed * 1_000_003 + step * 7919) % (2**31 - 1)

    def observed(self, output: str, h: History, *, target_only: bool = False) -> list[Observation]:
        out = []
        tgt = self.target[output].capability
        for o in h.observations:
            if o.failed or output not in o.y or not math.isfinite(o.y[output]):
                continue
            if target_only and o.capability != tgt:
                continue
            out.append(o)
        return out

    # ------------------------------------------------------------------ best, pareto

    def feasible_obs(self, o: Observation, h: History) -> bool:
        """Whether an observation meets the outcome constraints (those it was measured on,
        or measured at the same x by another target measurement)."""
        for c in self.spec.constraints:
            if not isinstance(c, OutcomeConstraint):
                continue
            val = o.y.get(c.output)
            if val is None:
                for p in self.observed(c.output, h, target_only=True):
                    if same_x(p.x, o.x):
                        val = p.y[c.output]
                        break
            if val is None:
                return False
            if (c.op == "<=" and val > c.value) or (c.op == ">=" and val < c.value):
                return False
        return True

    def best(self, h: History) -> Observation | None:
        obj = self.objectives[0]
        rows = [o for o in self.observed(obj.name, h, target_only=True) if self.feasible_obs(o, h)]
        clean = [o for o in rows if o.key not in h.outliers] or rows
        if not clean:
            return None
        return max(clean, key=lambda o: obj.sign * o.y[obj.name])

    def pareto(self, h: History) -> list[dict[str, Any]]:
        """The non-dominated target-fidelity results (several objectives)."""
        if len(self.objectives) < 2:
            return []
        pts: list[tuple[dict[str, Any], dict[str, float], list[str]]] = []
        by_x: list[tuple[dict[str, Any], dict[str, float], list[str]]] = []
        for o in h.observations:
            if o.failed or o.key in h.outliers:
                continue
            ys = {
                k: v
                for k, v in o.y.items()
                if k in self.target and self.target[k].capability == o.capability
            }
            if not ys:
                continue
            for x, y, ids in by_x:
                if same_x(x, o.x):
                    y.update(ys)
                    ids.append(o.key)
                    break
            else:
                by_x.append((o.x, ys, [o.key]))
        for x, y, ids in by_x:
            if all(ob.name in y for ob in self.objectives):
                pts.append((x, y, ids))
        if not pts:
            return []
        F = np.array([[ob.sign * y[ob.name] for ob in self.objectives] for _, y, _ in pts])
        keep = []
        for i in range(len(F)):
            dominated = np.any(np.all(F[i] <= F, axis=1) & np.any(F[i] < F, axis=1))
            if not dominated:
                keep.append(i)
        return [
            {
                "x": pts[i][0],
                "y": {ob.name: pts[i][1][ob.name] for ob in self.objectives},
                "result_id": pts[i][2][-1],
            }
            for i in keep
        ]

    # ------------------------------------------------------------------ proposing

    def propose(
        self, h: History, n: int, step: int, *, budget_cost: float | None = None
    ) -> Proposal:
        """Up to ``n`` new candidates (each with its measurement)."""
        name = self.spec.strategy.name
        rng = np.random.default_rng(self.seed(step))
        if n <= 0:
            return Proposal([], name)
        chosen = self.strategy
        if not chosen.model:
            assert chosen.propose is not None
            xs = [dict(x) for x in chosen.propose(self, h, n, rng)][:n]
            prop = Proposal([], name)
        else:
            have = len(self.observed(self.objectives[0].name, h))
            if len(h.proposed) < self.n_init:
                xs = self._sobol(h, min(n, self.n_init - len(h.proposed)))
            elif have < 2:
                if h.pending:
                    return Proposal([], "botorch", notes=["waiting for the first results"])
                xs = self._sobol(h, n)  # failures ate the initial design: more of it
            else:
                return self._model_proposal(h, n, step, rng, budget_cost)
            prop = Proposal([], "botorch")
            for x in xs:
                x["_source"] = "sobol"
        cands = []
        for x in xs:
            src = x.pop("_source", name)
            idx = x.pop("_pool", None)
            for cap, tier in self.assign(x, h, None):
                cands.append(Candidate(x, cap, src, tier=tier, pool_index=idx))
        prop.candidates = cands
        return prop

    def note_proposed(self, h: History, cands: list[Candidate]) -> None:
        """Record new candidates in the history (what ``propose`` returned and was posted)."""
        seen: list[dict[str, Any]] = []
        for c in cands:
            if c.source == "advance":
                continue
            if c.pool_index is not None:
                if c.pool_index in h.proposed_pool:
                    continue
                h.proposed_pool.add(c.pool_index)
                h.proposed.append(c.x)
            elif not any(same_x(c.x, s) for s in seen):
                seen.append(c.x)
                h.proposed.append(c.x)

    # -- baselines

    def _free_pool(self, h: History) -> list[int]:
        assert self.pool is not None
        return [i for i in range(len(self.pool)) if i not in h.proposed_pool]

    def _pool_x(self, i: int) -> dict[str, Any]:
        assert self.pool is not None
        x = dict(self.pool[i])
        x["_pool"] = i
        return x

    def _random(self, h: History, n: int, rng: np.random.Generator) -> list[dict[str, Any]]:
        if self.pool is not None:
            free = self._free_pool(h)
            pick = rng.choice(len(free), size=min(n, len(free)), replace=False)
            return [self._pool_x(free[i]) for i in pick]
        xs, _ = self.space.sample(n, rng)
        return xs

    def _sobol(self, h: History, n: int) -> list[dict[str, Any]]:
        if self.pool is not None:
            # the Sobol points, each replaced by the nearest unused pool candidate
            free = self._free_pool(h)
            xs, used = self.space.sample(
                n, np.random.default_rng(0), sobol_seed=self.spec.seed, skip=h.sobol_used
            )
            h.sobol_used = used
            out = []
            taken: set[int] = set()
            for x in xs:
                z = self.space.encode(x)
                order = np.argsort(np.linalg.norm(self.pool_z[free] - z, axis=1))  # type: ignore[index]
                for j in order:
                    if free[j] not in taken:
                        taken.add(free[j])
                        out.append(self._pool_x(free[j]))
                        break
            return out
        xs, used = self.space.sample(
            n, np.random.default_rng(0), sobol_seed=self.spec.seed, skip=h.sobol_used
        )
        h.sobol_used = used
        return xs

    def _grid_next(self, h: History, n: int) -> list[dict[str, Any]]:
        if self.pool is not None:
            free = self._free_pool(h)
            return [self._pool_x(i) for i in free[:n]]
        out = self._grid[h.grid_next : h.grid_next + n]
        h.grid_next += len(out)
        return [dict(x) for x in out]

    # -- measurements for a candidate

    def assign(
        self, x: dict[str, Any], h: History, models: dict[str, OutputModel] | None
    ) -> list[tuple[str, int | None]]:
        """The measurements (capability, tier) a new candidate gets."""
        if self.spec.tiers:
            return [(self.spec.tiers[0].capability, 0)]
        caps: list[str] = []
        for o in self.outputs:
            ms = self.measures[o]
            pick = ms[0] if len(ms) == 1 else self._choose_fidelity(o, x, h, models)
            if pick.capability not in caps:
                caps.append(pick.capability)
        return [(c, None) for c in caps]

    def _choose_fidelity(
        self, output: str, x: dict[str, Any], h: History, models: dict[str, OutputModel] | None
    ) -> Measurement:
        ms = self.measures[output]
        if self.spec.budget.cost is not None:  # what the budget can still pay for
            left = self.spec.budget.cost - h.cost(self.spec)
            ms = [m for m in ms if m.cost <= left + 1e-9] or ms[:1]
        rule = self.spec.strategy.fidelity
        if rule == "highest":
            return ms[-1]
        done = {o.capability for o in h.observations if not o.failed and same_x(o.x, x)}
        done |= {p.capability for p in h.pending if same_x(p.x, x)}
        if rule == "lowest_first" or models is None or output not in models:
            for m in ms:
                if m.capability not in done:
                    return m
            return ms[-1]
        model = models[output]
        z = self.space.encode(x)
        s_t = ms[-1].fidelity
        best, best_score = ms[-1], -1.0
        for m in ms:
            share = variance_reduction(model.model, z, s_t, m.fidelity)
            score = share / self.effective_cost(m, h)
            if score > best_score:
                best, best_score = m, score
        return best

    def effective_cost(self, m: Measurement, h: History) -> float:
        """The share of the remaining budget one request of ``m`` uses: its cost over the
        cost left, or one request over the requests left, whichever binds more."""
        b = self.spec.budget
        shares = []
        if b.cost is not None:
            shares.append(m.cost / max(b.cost - h.cost(self.spec), 1e-9))
        if b.requests is not None:
            shares.append(1.0 / max(b.requests - h.n_requests(), 1))
        return max(shares) if shares else m.cost

    # ------------------------------------------------------------------ the model

    def fit(self, h: History, step: int) -> dict[str, OutputModel]:
        """One GP per output with data (fidelity as an extra input when it has several)."""
        models: dict[str, OutputModel] = {}
        st = self.spec.strategy
        signs = {o.name: o.sign for o in self.objectives}
        for output in self.outputs:
            rows = self.observed(output, h)
            if len(rows) < 2:
                continue
            Z = np.array([self.space.encode(o.x) for o in rows])
            if self.multi_fidelity:
                Z = np.hstack([Z, np.array([[self.fid_of[o.capability]] for o in rows])])
            y = np.array([o.y[output] for o in rows])
            if np.ptp(y) == 0:
                y = y + np.random.default_rng(step).normal(0, 1e-9, len(y))
            mf = len(self.measures[output]) > 1
            models[output] = fit_output(
                output,
                Z,
                y,
                [o.key for o in rows],
                fidelity_col=self.space.d if mf else None,
                d_model=self.space.d,
                robust=st.robust,
                outlier_z=st.outlier_z,
                sign=signs.get(output, 1.0),
                seed=self.seed(step),
                kernel=st.kernel,
            )
            h.outliers |= set(models[output].outliers)
        feas = self._feasibility(h, step)
        if feas is not None:
            models[FEASIBLE] = feas
        return models

    def _feasibility(self, h: History, step: int) -> OutputModel | None:
        """Where requests fail: a GP on +1 (answered) / -1 (failed) labels, used as an
        unknown constraint (M. A. Gelbart, J. Snoek, R. P. Adams, "Bayesian optimization
        with unknown constraints", UAI 2014), so that a region where requests keep failing
        is avoided while an occasional random failure barely matters."""
        fails = [o for o in h.observations if o.failed]
        good = [o for o in h.observations if not o.failed and o.y]
        if not fails or len(good) < 2:
            return None
        rows = good + fails
        Z = np.array([self.space.encode(o.x) for o in rows])
        if self.multi_fidelity:
            Z = np.hstack([Z, np.zeros((len(Z), 1))])  # ignored by this model
        y = np.array([1.0] * len(good) + [-1.0] * len(fails))
        return fit_output(
            FEASIBLE,
            Z,
            y,
            [o.key for o in rows],
            fidelity_col=None,
            d_model=self.space.d,
            robust=False,
            seed=self.seed(step),
        )

    def _with_fidelity(self, Z: np.ndarray) -> np.ndarray:
        if not self.multi_fidelity:
            return Z
        s = max(m.fidelity for m in self.spec.measurements)
        return np.hstack([Z, np.full((len(Z), 1), s)])

    def _acquisition(self, models: dict[str, OutputModel], h: History, step: int):
        import torch
        from botorch.acquisition.logei import qLogExpectedImprovement, qLogNoisyExpectedImprovement
        from botorch.acquisition.monte_carlo import qUpperConfidenceBound
        from botorch.acquisition.multi_objective.logei import (
            qLogNoisyExpectedHypervolumeImprovement,
        )
        from botorch.acquisition.multi_objective.objective import IdentityMCMultiOutputObjective
        from botorch.acquisition.objective import GenericMCObjective
        from botorch.models import ModelListGP
        from botorch.sampling import SobolQMCNormalSampler

        st = self.spec.strategy
        names = [o for o in self.outputs if o in models] + [n for n in models if n == FEASIBLE]
        obj_names = [o.name for o in self.objectives if o.name in models]
        # the baseline: every x with data, at the target fidelity
        xs: list[dict[str, Any]] = []
        for o in h.observations:
            if not o.failed and not any(same_x(o.x, x) for x in xs):
                xs.append(o.x)
        X_base = torch.tensor(self._with_fidelity(np.array([self.space.encode(x) for x in xs])))
        avoid = [p.x for p in h.pending]
        X_pending = (
            torch.tensor(self._with_fidelity(np.array([self.space.encode(x) for x in avoid])))
            if avoid
            else None
        )
        sampler = SobolQMCNormalSampler(sample_shape=torch.Size([128]), seed=self.seed(step))
        constraints = []
        for c in self.spec.constraints:
            if isinstance(c, OutcomeConstraint) and c.output in models:
                k = names.index(c.output)
                thr = float(c.value)
                sg = models[c.output].sign  # the model predicts sign * output
                if c.op == "<=":
                    constraints.append(lambda Y, k=k, t=thr, sg=sg: sg * Y[..., k] - t)
                else:
                    constraints.append(lambda Y, k=k, t=thr, sg=sg: t - sg * Y[..., k])
        if FEASIBLE in models:  # answered where the label model is positive
            kf = names.index(FEASIBLE)
            constraints.append(lambda Y, k=kf: -Y[..., k])
        if len(names) == 1:
            model = models[names[0]].model
            objective = None
        else:
            model = ModelListGP(*[models[n].model for n in names])
            objective = None
        acq_name = st.acquisition
        if len(obj_names) >= 2 or acq_name == "qlognehvi":
            idx = [names.index(n) for n in obj_names]
            ref = self._ref_point(models, h, obj_names)
            return qLogNoisyExpectedHypervolumeImprovement(
                model=model,
                ref_point=ref,
                X_baseline=X_base,
                sampler=sampler,
                objective=IdentityMCMultiOutputObjective(outcomes=idx),
                constraints=constraints or None,
                X_pending=X_pending,
                prune_baseline=True,
            )
        k0 = names.index(obj_names[0])
        if len(names) > 1:
            objective = GenericMCObjective(lambda Y, X=None, k=k0: Y[..., k])
        if acq_name == "qucb":
            return qUpperConfidenceBound(
                model, beta=st.beta, sampler=sampler, objective=objective, X_pending=X_pending
            )
        if acq_name == "qlogei":
            with torch.no_grad():
                post = model.posterior(X_base)
                mean = post.mean[..., k0] if post.mean.shape[-1] > 1 else post.mean[..., 0]
            return qLogExpectedImprovement(
                model,
                best_f=float(mean.max()),
                sampler=sampler,
                objective=objective,
                X_pending=X_pending,
                constraints=constraints or None,
            )
        return qLogNoisyExpectedImprovement(
            model,
            X_baseline=X_base,
            sampler=sampler,
            objective=objective,
            X_pending=X_pending,
            constraints=constraints or None,
            prune_baseline=True,
        )

    def _ref_point(
        self, models: dict[str, OutputModel], h: History, obj_names: list[str]
    ) -> list[float]:
        import torch
        from botorch.utils.multi_objective.hypervolume import infer_reference_point

        refs = {o.name: o.reference for o in self.objectives}
        signs = {o.name: o.sign for o in self.objectives}
        if all(refs[n] is not None for n in obj_names):
            return [signs[n] * float(refs[n]) for n in obj_names]  # type: ignore[arg-type]
        ys = []
        for p in self.pareto(h) or []:
            ys.append([signs[n] * p["y"][n] for n in obj_names])
        if not ys:
            cols = []
            for n in obj_names:
                vals = [signs[n] * o.y[n] for o in self.observed(n, h)]
                cols.append(min(vals))
            inferred = cols
        else:
            inferred = infer_reference_point(torch.tensor(ys, dtype=torch.double)).tolist()
        return [
            signs[n] * float(refs[n]) if refs[n] is not None else float(inferred[i])  # type: ignore[arg-type]
            for i, n in enumerate(obj_names)
        ]

    def _model_proposal(
        self, h: History, n: int, step: int, rng: np.random.Generator, budget_cost: float | None
    ) -> Proposal:
        import torch
        from botorch.acquisition.fixed_feature import FixedFeatureAcquisitionFunction

        torch.manual_seed(self.seed(step))
        models = self.fit(h, step)
        notes: list[str] = []
        if not any(o.name in models for o in self.objectives):
            xs = self._sobol(h, n)
            return Proposal(
                [Candidate(x, c, "sobol", tier=t) for x in xs for c, t in self.assign(x, h, None)],
                "botorch",
                models,
                notes=["no objective has two results yet: Sobol"],
            )
        acq = self._acquisition(models, h, step)
        d = self.space.d
        if self.multi_fidelity:
            s = max(m.fidelity for m in self.spec.measurements)
            acq_z = FixedFeatureAcquisitionFunction(acq, d=d + 1, columns=[d], values=[s])
        else:
            acq_z = acq
        if self.pool is not None and not self._free_pool(h):
            return Proposal([], "botorch", models, notes=["the pool is exhausted"])
        explore = self._explore_due(h, n, models)
        n_main = n - 1 if explore else n
        picked = self._optimise(acq_z, n_main, h, rng, step, [], notes) if n_main > 0 else []
        if explore and (self.pool is None or len(self._free_pool(h)) > len(picked)):
            ucb = self._explore_acquisition(models, h, step, [p[0] for p in picked])
            more = self._optimise(ucb, 1, h, rng, step, picked, notes)
            picked.extend((x, v, i, "explore") for x, v, i, _ in more)
            notes.append(
                f"no better result in the last {self._explore_after()} or more: one candidate "
                "explores (qUCB, beta 4)"
            )
        obj = self.objectives[0].name
        cands: list[Candidate] = []
        for x, val, idx, source in picked:
            pred = None
            if obj in models:
                mz = self._with_fidelity(self.space.encode(x)[None, :])
                m, s = predict(models[obj].model, mz, models[obj].sign)
                pred = {"mean": float(m[0]), "std": float(s[0])}
            for cap, tier in self.assign(x, h, models):
                cands.append(
                    Candidate(
                        x, cap, source, acquisition=val, predicted=pred, tier=tier, pool_index=idx
                    )
                )
        return Proposal(cands, "botorch", models, grid=self.model_grid(models, h), notes=notes)

    def _optimise(
        self,
        acq_z: Any,
        q: int,
        h: History,
        rng: np.random.Generator,
        step: int,
        already: list[tuple[dict[str, Any], float | None, int | None, str]],
        notes: list[str],
    ) -> list[tuple[dict[str, Any], float | None, int | None, str]]:
        """The ``q`` candidates that maximise an acquisition (pool or continuous space)."""
        import torch
        from botorch.optim import optimize_acqf, optimize_acqf_discrete, optimize_acqf_mixed

        st = self.spec.strategy
        d = self.space.d
        picked: list[tuple[dict[str, Any], float | None, int | None, str]] = []
        if self.pool is not None:
            taken = {p[2] for p in already}
            free = [i for i in self._free_pool(h) if i not in taken]
            if not free:
                return []
            choices = torch.tensor(self.pool_z[free])  # type: ignore[index]
            with torch.no_grad():
                X, vals = optimize_acqf_discrete(
                    acq_z, q=min(q, len(free)), choices=choices, max_batch_size=1024, unique=True
                )
            Xn = X.numpy()
            for row, v in zip(
                Xn,
                vals.reshape(-1).tolist() if vals.numel() > 1 else [float(vals)] * len(Xn),
                strict=False,
            ):
                j = int(np.argmin(np.linalg.norm(self.pool_z[free] - row, axis=1)))  # type: ignore[index]
                i = free[j]
                picked.append((dict(self.pool[i]), float(v), i, "model"))  # type: ignore[index]
                free = [f for f in free if f != i]
                if not free:
                    break
            return picked
        bounds = torch.stack(
            [torch.zeros(d, dtype=torch.double), torch.ones(d, dtype=torch.double)]
        )
        cons = self.space.botorch_constraints()
        kwargs = dict(
            q=q,
            # effort grows with the dimension: a 2-D space needs fewer starts than a 6-D one
            num_restarts=min(st.num_restarts, 2 + d),
            raw_samples=min(st.raw_samples, max(64, 64 * d)),
            options={"batch_limit": 8, "maxiter": 200, "seed": self.seed(step)},
            retry_on_optimization_warning=False,
            **cons,
        )
        fixed = dict(self.space.fixed)
        choices = self.space.categorical_choices()
        try:
            if choices:
                X, vals = optimize_acqf_mixed(
                    acq_z, bounds, fixed_features_list=[{**fixed, **c} for c in choices], **kwargs
                )
            else:
                X, vals = optimize_acqf(
                    acq_z, bounds, fixed_features=fixed or None, sequential=st.sequential, **kwargs
                )
            Xn = X.detach().numpy().reshape(-1, d)
            v = vals.detach().reshape(-1).tolist() if vals is not None else [None]
            acq_value = float(v[0]) if v and v[0] is not None else None
        except Exception as exc:  # optimisation failed: keep going with Sobol points
            notes.append(
                f"acquisition optimisation failed ({type(exc).__name__}: {exc}); Sobol instead"
            )
            Xn = np.array([self.space.encode(x) for x in self._sobol(h, q)])
            acq_value = None
        for row in Xn:
            x = self.space.decode(row)
            if self.space.inequalities and not self.space.feasible(x, tol=1e-4):
                notes.append(
                    "a proposal broke a constraint after rounding: replaced by a random feasible point"
                )
                x = self.space.sample(1, rng)[0][0]
            dup = any(same_x(x, p[0]) for p in [*already, *picked]) or any(
                same_x(x, p.x) for p in h.pending
            )
            if dup and self.space.int_cols + sum(self.space.cat_groups, []):
                x = self.space.sample(1, rng)[0][0]
                notes.append("a duplicate after rounding: replaced by a random point")
            picked.append((x, acq_value, None, "model"))
        return picked

    # -- the exploration safeguard

    def _explore_after(self) -> int:
        st = self.spec.strategy
        if st.explore_after is not None:
            return st.explore_after
        return max(4, 2 * self.spec.batch_size)

    def _explore_due(self, h: History, n: int, models: dict[str, OutputModel]) -> bool:
        """Whether one candidate of this batch should explore: the best target result is
        ``explore_after`` or more results old, once per ``explore_after`` results while it
        stays so. Single objective, no outcome constraints and no failures (exploring must
        not walk into what the constraints keep out), and not with qUCB (it explores)."""
        k = self._explore_after()
        if k <= 0 or len(self.objectives) != 1 or FEASIBLE in models:
            return False
        if self.spec.strategy.acquisition in ("qucb", "qlognehvi"):
            return False
        if any(isinstance(c, OutcomeConstraint) for c in self.spec.constraints):
            return False
        obj = self.objectives[0]
        rows = self.observed(obj.name, h, target_only=True)
        if len(rows) <= k:
            return False
        vals = [obj.sign * o.y[obj.name] for o in rows]
        since = len(vals) - 1 - int(np.argmax(vals))
        return since >= k and (since - k) % k < max(n, 1)

    def _explore_acquisition(
        self, models: dict[str, OutputModel], h: History, step: int, also: list[dict[str, Any]]
    ) -> Any:
        """qUCB with beta 4 (about mean + 2 posterior standard deviations) on the objective,
        with the pending candidates and the rest of the batch as ``X_pending`` (N. Srinivas,
        A. Krause, S. Kakade, M. Seeger, "Gaussian process optimization in the bandit
        setting", ICML 2010; batch form of J. T. Wilson, F. Hutter, M. P. Deisenroth,
        "Maximizing acquisition functions for Bayesian optimization", NeurIPS 2018)."""
        import torch
        from botorch.acquisition.fixed_feature import FixedFeatureAcquisitionFunction
        from botorch.acquisition.monte_carlo import qUpperConfidenceBound
        from botorch.sampling import SobolQMCNormalSampler

        model = models[self.objectives[0].name].model
        avoid = [p.x for p in h.pending] + also
        X_pending = (
            torch.tensor(self._with_fidelity(np.array([self.space.encode(x) for x in avoid])))
            if avoid
            else None
        )
        sampler = SobolQMCNormalSampler(sample_shape=torch.Size([128]), seed=self.seed(step) + 1)
        acq = qUpperConfidenceBound(model, beta=4.0, sampler=sampler, X_pending=X_pending)
        if self.multi_fidelity:
            s = max(m.fidelity for m in self.spec.measurements)
            d = self.space.d
            return FixedFeatureAcquisitionFunction(acq, d=d + 1, columns=[d], values=[s])
        return acq

    # ------------------------------------------------------------------ for the dashboard

    def model_grid(
        self, models: dict[str, OutputModel], h: History, n: int = 15
    ) -> dict[str, Any] | None:
        """The model's mean and std over the two most relevant numeric variables (shortest
        length-scales), the others fixed at the best candidate."""
        obj = self.objectives[0].name
        if obj not in models:
            return None
        numeric = [
            i
            for i, name in enumerate(self.space.column_names)
            if "=" not in name and i not in self.space.fixed
        ]
        if len(numeric) < 2:
            return None
        om = models[obj]
        try:
            ls = np.array(
                om.model.covar_module.lengthscale.detach().reshape(-1).tolist()
                if hasattr(om.model.covar_module, "lengthscale")
                else [1.0] * (self.space.d + 1)
            )
        except Exception:
            ls = np.ones(self.space.d + 1)
        order = sorted(numeric, key=lambda i: ls[i] if i < len(ls) else 1.0)
        a, b = order[0], order[1]
        best = self.best(h)
        base = self.space.encode(best.x) if best is not None else np.full(self.space.d, 0.5)
        ts = np.linspace(0, 1, n)
        Z = np.repeat(base[None, :], n * n, axis=0)
        Z[:, a] = np.repeat(ts, n)
        Z[:, b] = np.tile(ts, n)
        mean, std = predict(om.model, self._with_fidelity(Z), om.sign)
        va = [self._col_value(a, t) for t in ts]
        vb = [self._col_value(b, t) for t in ts]
        names = self.space.column_names
        fixed = {
            k: v
            for k, v in (self.space.decode(base) if best is None else best.x).items()
            if k not in (names[a], names[b])
        }
        return {
            "variables": [names[a], names[b]],
            names[a]: va,
            names[b]: vb,
            "a": va,
            "b": vb,
            "mean": np.round(mean.reshape(n, n), 8).tolist(),
            "std": np.round(std.reshape(n, n), 8).tolist(),
            "fixed": fixed,
        }

    def _col_value(self, col: int, t: float) -> float:
        for part in self.space.parts:
            if col not in part.cols:
                continue
            v = part.var
            if part.comp_cols:
                j = part.comp_cols.index(col)
                lo, hi = part.lows[j], part.highs[j]
            else:
                lo, hi = float(getattr(v, "low", 0)), float(getattr(v, "high", 1))
                if getattr(v, "log", False):
                    return float(math.exp(math.log(lo) + t * (math.log(hi) - math.log(lo))))
            return float(lo + t * (hi - lo))
        return t


def as_dict(obj: Any) -> dict[str, Any]:
    return asdict(obj)
