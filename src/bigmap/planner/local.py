"""A campaign without a broker: the same planner, rules and funnel, with a Python function
as the measurement. For benchmarks, for trying a spec, and for problems the planner has
never seen (``run_local(spec, evaluate)``)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bigmap.planner.core import Candidate, History, Observation, Pending, Planner
from bigmap.planner.rules import Rules, Verdict
from bigmap.planner.spec import CampaignSpec

Evaluate = Callable[[Candidate], dict[str, float]]


@dataclass
class LocalRun:
    planner: Planner
    history: History
    steps: int
    reason: str
    status: str
    decisions: dict[str, Verdict] = field(default_factory=dict)
    model_states: list[dict[str, Any]] = field(default_factory=list)

    @property
    def best(self) -> Observation | None:
        return self.planner.best(self.history)

    def summary(self) -> dict[str, Any]:
        return Rules(self.planner).summary(self.history, self.steps, decisions=self.decisions)


def run_local(
    spec: CampaignSpec,
    evaluate: Evaluate,
    *,
    pool: list[dict[str, Any]] | None = None,
    planner: Planner | None = None,
    keep_model_states: bool = False,
    on_step: Callable[[int, History], None] | None = None,
) -> LocalRun:
    """Run a campaign to its budget or stopping rule. ``evaluate(candidate)`` returns the
    outputs ``{name: value}`` of ``candidate.x`` measured by ``candidate.capability`` (or
    raises: the request counts as failed, with the exception as its message)."""
    planner = planner or Planner(spec, pool)
    rules = Rules(planner)
    h = History()
    decisions: dict[str, Verdict] = {}
    states: list[dict[str, Any]] = []
    t0 = time.monotonic()
    step = 0
    status, reason = "completed", ""
    n_obs = 0
    while True:
        stop = rules.should_stop(h)
        if stop:
            status, reason = stop
            break
        why = rules.exhausted(h)
        if why:
            reason = why
            break
        if spec.budget.wall_seconds and time.monotonic() - t0 > spec.budget.wall_seconds:
            reason = "the wall-time budget is spent"
            break
        step += 1
        req_left, _ = rules.left(h)
        n = int(min(spec.batch_size, req_left))
        prop = planner.propose(h, n, step)
        if keep_model_states:
            states.extend({"step": step, **m.state()} for m in prop.models.values())
        cands = rules.affordable(prop.candidates, h)
        if not cands:
            reason = (
                "nothing left to propose within the budget"
                if prop.candidates
                else ("; ".join(prop.notes) or "the strategy has nothing more to propose")
            )
            break
        planner.note_proposed(h, cands)
        queue: list[tuple[Candidate, Pending]] = []

        def enqueue(
            cs: list[Candidate], step: int = step, queue: list[tuple[Candidate, Pending]] = queue
        ) -> None:
            for c in cs:
                p = Pending(
                    c.x, c.capability, f"queued-{id(c)}", step, c.tier, pool_index=c.pool_index
                )
                h.pending.append(p)
                queue.append((c, p))

        enqueue(cands)
        while queue:
            c, p = queue.pop(0)
            h.pending.remove(p)
            n_obs += 1
            obs = Observation(
                x=c.x,
                capability=c.capability,
                tier=c.tier,
                step=step,
                cost=planner.cost_of[c.capability],
                fidelity=planner.fid_of[c.capability],
                request_id=f"local-{n_obs}",
                result_id=f"local-{n_obs}",
                pool_index=c.pool_index,
            )
            try:
                y = evaluate(c)
                obs.y = {k: float(v) for k, v in y.items()}
                if not all(math.isfinite(v) for v in obs.y.values()):
                    raise ValueError(f"non-finite output {obs.y}")
            except Exception as exc:
                obs.failed = True
                obs.message = f"{type(exc).__name__}: {exc}"
            h.observations.append(obs)
            v = rules.judge(obs, h)
            if v is not None:
                decisions[obs.key] = v
                if v.kind == "advance":
                    nxt = rules.affordable([rules.advance(obs, v)], h)
                    if nxt:
                        enqueue(nxt)
                    else:
                        decisions[obs.key] = Verdict(
                            "reject", "passed, but the budget cannot pay the next tier", v.threshold
                        )
        if on_step is not None:
            on_step(step, h)
    return LocalRun(planner, h, step, reason, status, decisions, states)
