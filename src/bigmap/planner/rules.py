"""Rules a campaign runs by, the same through a broker and locally: the budget, the
stopping rules, the funnel's thresholds, and the summary the dashboard reads."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from bigmap.planner.core import Candidate, History, Observation, Planner


@dataclass
class Verdict:
    """A funnel decision about one result."""

    kind: str  # advance | reject | final
    reason: str
    threshold: float | None = None
    next_tier: int | None = None


class Rules:
    def __init__(self, planner: Planner) -> None:
        self.planner = planner
        self.spec = planner.spec

    # ------------------------------------------------------------------ budget

    def left(self, h: History) -> tuple[float, float]:
        """(requests, cost) still allowed (inf when unlimited)."""
        b = self.spec.budget
        req = math.inf if b.requests is None else b.requests - h.n_requests()
        cost = math.inf if b.cost is None else b.cost - h.cost(self.spec)
        return req, cost

    def affordable(self, cands: list[Candidate], h: History) -> list[Candidate]:
        """The candidates that fit in the budget, in order; a candidate's measurements are
        kept or dropped together."""
        req, cost = self.left(h)
        out: list[Candidate] = []
        groups: list[list[Candidate]] = []
        for c in cands:
            if groups and groups[-1][0].x is c.x:
                groups[-1].append(c)
            else:
                groups.append([c])
        for g in groups:
            need = sum(self.planner.cost_of[c.capability] for c in g)
            if len(g) <= req and need <= cost + 1e-9:
                out.extend(g)
                req -= len(g)
                cost -= need
        return out

    def exhausted(self, h: History) -> str | None:
        req, cost = self.left(h)
        if req <= 0:
            return f"the request budget ({self.spec.budget.requests}) is spent"
        cheapest = min(self.planner.cost_of[c] for c in self._entry_caps())
        if cost < cheapest - 1e-9:
            return f"the cost budget ({self.spec.budget.cost:g}) is spent"
        return None

    def _entry_caps(self) -> list[str]:
        if self.spec.tiers:
            return [self.spec.tiers[0].capability]
        return [m.capability for m in self.spec.measurements]

    # ------------------------------------------------------------------ stopping

    def should_stop(self, h: History) -> tuple[str, str] | None:
        """(status, reason) when a stopping rule fires."""
        st = self.spec.stopping
        fails = 0
        for o in reversed(h.observations):
            if not o.failed:
                break
            fails += 1
        if fails >= st.max_consecutive_failures:
            return (
                "failed",
                f"{fails} requests failed in a row (last: {h.observations[-1].message})",
            )
        best = self.planner.best(h)
        if st.target and best is not None:
            hit = all(
                (ob.sign * best.y.get(ob.name, -math.inf * ob.sign) >= ob.sign * st.target[ob.name])
                for ob in self.spec.objectives
                if ob.name in st.target
            )
            if hit:
                return "completed", f"the target {st.target} is reached"
        if st.patience is not None:
            trace = self.best_trace(h)
            if len(trace) > st.patience + self.planner.n_init:
                last_gain = 0
                for i in range(1, len(trace)):
                    if trace[i]["value"] > trace[i - 1]["value"] + st.min_improvement:
                        last_gain = i
                if len(trace) - 1 - last_gain >= st.patience:
                    return "completed", f"no improvement in the last {st.patience} results"
        return None

    # ------------------------------------------------------------------ funnel

    def judge(self, o: Observation, h: History) -> Verdict | None:
        """Whether a tier's result advances its candidate (None outside a funnel)."""
        tiers = self.spec.tiers
        if not tiers or o.tier is None or o.failed:
            return None
        tier = tiers[o.tier]
        if o.tier == len(tiers) - 1:
            return None
        out = tier.output or self.spec.objectives[0].name
        sign = next((ob.sign for ob in self.spec.objectives if ob.name == out), 1.0)
        val = o.y.get(out)
        if val is None:
            return Verdict("reject", f"the result has no {out}")
        if tier.threshold is not None:
            thr = tier.threshold
        else:
            # better than this share of the tier's results so far (this one included)
            upto = []
            for p in h.observations:
                if p.tier == o.tier and not p.failed and out in p.y:
                    upto.append(sign * p.y[out])
                if p is o:
                    break
            q = tier.quantile if tier.quantile is not None else 0.5
            thr = sign * float(np.quantile(upto, q)) if len(upto) >= 3 else None
            if thr is None:
                return Verdict(
                    "advance",
                    f"fewer than 3 results in tier {tier.name}: advanced to learn the scale",
                    None,
                    o.tier + 1,
                )
        passed = sign * val >= sign * thr
        word = ">=" if sign > 0 else "<="
        if passed:
            return Verdict(
                "advance", f"{out} = {val:.6g} {word} {thr:.6g} ({tier.name})", thr, o.tier + 1
            )
        return Verdict("reject", f"{out} = {val:.6g} misses {word} {thr:.6g} ({tier.name})", thr)

    def advance(self, o: Observation, v: Verdict) -> Candidate:
        tier = self.spec.tiers[v.next_tier]  # type: ignore[index]
        return Candidate(
            dict(o.x),
            tier.capability,
            "advance",
            tier=v.next_tier,
            pool_index=o.pool_index,
            origin=o.key,
        )

    def tier_stats(self, h: History, decisions: dict[str, Verdict]) -> list[dict[str, Any]]:
        out = []
        for i, t in enumerate(self.spec.tiers):
            n_in = sum(1 for o in h.observations if o.tier == i and not o.failed)
            n_passed = sum(
                1
                for o in h.observations
                if o.tier == i and decisions.get(o.key) and decisions[o.key].kind == "advance"
            )
            thr = t.threshold
            if thr is None:
                thrs = [
                    decisions[o.key].threshold
                    for o in h.observations
                    if o.tier == i and o.key in decisions and decisions[o.key].threshold is not None
                ]
                thr = thrs[-1] if thrs else None
            out.append(
                {
                    "name": t.name,
                    "capability": t.capability,
                    "threshold": thr,
                    "quantile": t.quantile,
                    "n_in": n_in,
                    "n_passed": n_passed if i < len(self.spec.tiers) - 1 else None,
                }
            )
        return out

    # ------------------------------------------------------------------ summary

    def best_trace(self, h: History) -> list[dict[str, Any]]:
        """Best target-fidelity value after each request taken in: ``{n, cost, value}``."""
        ob = self.spec.objectives[0]
        tgt = self.planner.target[ob.name].capability
        out: list[dict[str, Any]] = []
        best = None
        cost = 0.0
        for n, o in enumerate(h.observations, start=1):
            cost += self.planner.cost_of.get(o.capability, 0.0)
            if (
                not o.failed
                and o.capability == tgt
                and ob.name in o.y
                and o.key not in h.outliers
                and self.planner.feasible_obs(o, h)
            ):
                v = o.y[ob.name]
                if best is None or ob.sign * v > ob.sign * best:
                    best = v
                if best is not None:
                    out.append({"n": n, "cost": round(cost, 9), "value": best})
        return out

    def summary(
        self,
        h: History,
        step: int,
        *,
        decisions: dict[str, Verdict] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        spec = self.spec
        best = self.planner.best(h)
        trace = self.best_trace(h)
        if trace and len(trace) > 200:  # keep the summary small: thin the trace, keep the ends
            idx = sorted(set(np.linspace(0, len(trace) - 1, 200).astype(int).tolist()))
            trace = [trace[i] for i in idx]
        out: dict[str, Any] = {
            "step": step,
            "strategy": spec.strategy.name,
            "objectives": [
                {"name": o.name, "direction": o.direction, "unit": o.unit} for o in spec.objectives
            ],
            "n_requests": h.n_requests(),
            "n_results": sum(1 for o in h.observations if not o.failed),
            "n_failed": sum(1 for o in h.observations if o.failed),
            "n_pending": len(h.pending),
            "cost_spent": round(h.cost(spec), 9),
            "budget": spec.budget.model_dump(),
            "best": None
            if best is None
            else {
                "x": best.x,
                "y": {k: v for k, v in best.y.items()},
                "request_id": best.request_id,
                "result_id": best.result_id,
                "capability": best.capability,
            },
            "best_so_far": trace,
            "pareto": self.planner.pareto(h),
            "tiers": self.tier_stats(h, decisions or {}) if spec.tiers else [],
            "outliers": sorted(h.outliers),
        }
        if extra:
            out.update(extra)
        return out
