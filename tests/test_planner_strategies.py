"""Each strategy on small problems with known answers, run through the local loop (the
same planner, rules and funnel that the broker runner uses)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bigmap.planner.core import History, Observation, Pending, Planner
from bigmap.planner.local import run_local
from bigmap.planner.spec import parse_spec
from tests.planner_tenant import F_MAX, bias, f

XY = [{"name": "x1", "low": 0, "high": 1}, {"name": "x2", "low": 0, "high": 1}]


def spec(**kw):
    doc = {
        "name": "t",
        "seed": 2,
        "variables": XY,
        "objectives": [{"name": "y"}],
        "measurements": [{"capability": "q/exact"}],
        "budget": {"requests": 16},
        "batch_size": 2,
    }
    doc.update(kw)
    return parse_spec(doc)


def bumps(c) -> dict[str, float]:
    return {"y": f(c.x["x1"], c.x["x2"])}


def test_baselines_are_feasible_and_resumable() -> None:
    doc = {
        "variables": [
            {
                "name": "m",
                "type": "mixture",
                "components": [{"name": "a", "high": 0.7}, {"name": "b"}, {"name": "c"}],
            },
            {"name": "n", "type": "integer", "low": 1, "high": 3},
        ],
        "constraints": [{"coefficients": {"a": 1, "n": 0.1}, "op": "<=", "rhs": 0.6}],
        "budget": {"requests": 30},
    }
    for name in ("random", "sobol", "grid"):
        s = spec(strategy={"name": name}, **doc)
        seen = []

        def ev(c, seen=seen):
            seen.append(c.x)
            return {"y": c.x["a"] - 0.1 * c.x["n"]}

        run = run_local(s, ev)
        assert len(run.history.observations) <= 30
        p = run.planner
        assert all(p.space.feasible(x) for x in seen), name
        assert all(abs(x["a"] + x["b"] + x["c"] - 1) < 1e-9 for x in seen)
        if name == "grid":
            assert len(seen) == len(p._grid) <= 30  # the grid fits the budget
    # Sobol continues its sequence after a restart exactly where it stopped
    s = spec(strategy={"name": "sobol"})
    one = Planner(s)
    h1 = History()
    a = [c.x for c in one.propose(h1, 3, 1).candidates] + [
        c.x for c in one.propose(h1, 3, 2).candidates
    ]
    h2 = History()
    b = [c.x for c in Planner(s).propose(h2, 6, 1).candidates]
    assert a == b and h1.sobol_used == h2.sobol_used


@pytest.mark.slow  # science: seconds to minutes (left out of make test-fast)
def test_botorch_finds_the_global_maximum_and_beats_random() -> None:
    bo = run_local(spec(strategy={"name": "botorch", "n_init": 4}), bumps)
    rnd = [
        run_local(spec(seed=k, strategy={"name": "random"}), bumps).best.y["y"] for k in range(8)
    ]
    assert bo.best.y["y"] >= 0.95 * F_MAX
    assert bo.best.y["y"] > np.mean(rnd)  # random search with the same 16 requests
    assert abs(bo.best.x["x1"] - 0.3) < 0.1 and abs(bo.best.x["x2"] - 0.7) < 0.1
    s = bo.summary()
    assert s["n_results"] == 16 and s["best"]["y"]["y"] == bo.best.y["y"]
    assert [t["value"] for t in s["best_so_far"]] == sorted(t["value"] for t in s["best_so_far"])


@pytest.mark.slow  # science: seconds to minutes (left out of make test-fast)
def test_minimize_with_an_outcome_constraint() -> None:
    # minimise x1 + x2 subject to the measured r2 = (x1-1)^2 + (x2-1)^2 <= 1:
    # the optimum is on the circle at x1 = x2 = 1 - 1/sqrt(2), value 2 - sqrt(2) = 0.586
    s = spec(
        objectives=[{"name": "y", "direction": "minimize"}],
        constraints=[{"type": "outcome", "output": "r2", "op": "<=", "value": 1.0}],
        budget={"requests": 20},
        strategy={"n_init": 5},
    )

    def ev(c):
        x1, x2 = c.x["x1"], c.x["x2"]
        return {"y": x1 + x2, "r2": (x1 - 1) ** 2 + (x2 - 1) ** 2}

    run = run_local(s, ev)
    best = run.best
    assert best.y["r2"] <= 1.0
    assert best.y["y"] < 0.75
    assert all(o.y["r2"] <= 1.0 or o.key != best.key for o in run.history.observations)


@pytest.mark.slow  # science: seconds to minutes (left out of make test-fast)
def test_multi_objective_pareto_front() -> None:
    s = spec(
        objectives=[{"name": "u"}, {"name": "v"}],
        budget={"requests": 12},
        strategy={"n_init": 6},
    )

    def ev(c):
        x1, x2 = c.x["x1"], c.x["x2"]
        return {"u": x1 * (1 - 0.3 * x2), "v": (1 - x1) * (1 - 0.3 * x2)}  # best: x2 = 0

    run = run_local(s, ev)
    front = run.planner.pareto(run.history)
    assert front
    F = np.array([[p["y"]["u"], p["y"]["v"]] for p in front])
    for i in range(len(F)):  # no point of the front dominates another
        assert not np.any(np.all(F[i] <= F, axis=1) & np.any(F[i] < F, axis=1))
    model_x2 = [o.x["x2"] for o in run.history.observations[6:]]
    assert np.mean(model_x2) < 0.35  # qLogNEHVI pushes towards the true front, x2 = 0


@pytest.mark.slow  # science: seconds to minutes (left out of make test-fast)
def test_an_outlier_is_left_out_of_the_model() -> None:
    s = spec(budget={"requests": 16}, strategy={"n_init": 6})
    calls = {"n": 0}

    def ev(c):
        calls["n"] += 1
        y = f(c.x["x1"], c.x["x2"])
        return {"y": y + 25.0 if calls["n"] == 3 else y}  # a wild reading

    run = run_local(s, ev, keep_model_states=True)
    bad = run.history.observations[2].key
    assert any(bad in st["outliers"] for st in run.model_states)
    assert run.best.key != bad and run.best.y["y"] < 2  # the best is a real value
    assert bad in run.summary()["outliers"]


@pytest.mark.slow  # science: seconds to minutes (left out of make test-fast)
def test_multi_fidelity_uses_the_cheap_model_and_reports_the_measurement() -> None:
    s = spec(
        measurements=[
            {"capability": "q/model", "cost": 1, "fidelity": 0.5},
            {"capability": "q/exact", "cost": 10, "fidelity": 1.0},
        ],
        budget={"cost": 70, "requests": 40},
        strategy={"n_init": 4},
    )

    def broad(x1: float, x2: float) -> float:  # one broad optimum, 1.0 at (0.3, 0.7)
        return math.exp(-((x1 - 0.3) ** 2 + (x2 - 0.7) ** 2) / 0.2)

    def ev(c):
        x1, x2 = c.x["x1"], c.x["x2"]
        extra = bias(x1, x2) if c.capability == "q/model" else 0.0
        return {"y": broad(x1, x2) + extra}

    run = run_local(s, ev)
    caps = [o.capability for o in run.history.observations]
    assert caps.count("q/model") >= 6 and caps.count("q/exact") >= 2
    assert run.history.cost(s) <= 70
    assert run.best.capability == "q/exact"  # the best is a real measurement
    assert run.best.y["y"] >= 0.95
    # with 7 exact measurements alone (same cost), random search does worse on average
    alone = spec(budget={"requests": 7}, strategy={"name": "random"})
    rnd = [run_local(alone.model_copy(update={"seed": k}), ev).best.y["y"] for k in range(10)]
    assert run.best.y["y"] > np.mean(rnd)


@pytest.mark.slow  # science: seconds to minutes (left out of make test-fast)
def test_pool_of_candidates() -> None:
    rng = np.random.default_rng(5)
    pool = [{"x1": float(a), "x2": float(b)} for a, b in rng.random((300, 2))]
    values = [f(p["x1"], p["x2"]) for p in pool]
    top = set(np.argsort(values)[-3:])  # the top 1 %
    s = spec(budget={"requests": 24}, strategy={"n_init": 4})
    run = run_local(s, lambda c: {"y": values[c.pool_index]}, pool=pool)
    idx = [o.pool_index for o in run.history.observations]
    assert len(set(idx)) == len(idx)  # a pool candidate is measured once
    assert top & set(idx)  # a top-1 % candidate found with 8 % of the pool
    rnd = run_local(
        spec(strategy={"name": "random"}, budget={"requests": 24}),
        lambda c: {"y": values[c.pool_index]},
        pool=pool,
    )
    assert run.best.y["y"] >= rnd.best.y["y"]


@pytest.mark.slow  # science: seconds to minutes (left out of make test-fast)
def test_failed_requests_do_not_stall_and_are_avoided() -> None:
    s = spec(budget={"requests": 14}, strategy={"n_init": 4})

    def ev(c):
        if c.x["x2"] > 0.8:
            raise RuntimeError("sample spilled")
        return bumps(c)

    run = run_local(s, ev)
    h = run.history
    assert len(h.observations) == 14 and run.reason.startswith("the request budget")
    failed = [o for o in h.observations if o.failed]
    assert all("spilled" in o.message for o in failed)
    xs = [o.x for o in h.observations]
    assert len({(round(x["x1"], 9), round(x["x2"], 9)) for x in xs}) == len(xs)
    first = next(i for i, o in enumerate(h.observations) if o.failed)
    assert sum(o.failed for o in h.observations[first + 1 :]) <= 2  # the region is avoided
    rnd = [
        run_local(spec(seed=k, budget={"requests": 14}, strategy={"name": "random"}), ev)
        for k in range(10)
    ]
    assert run.best.y["y"] > np.mean([r.best.y["y"] for r in rnd])
    assert np.mean([sum(o.failed for o in r.history.observations) for r in rnd]) > 1.5


def test_pending_points_steer_new_proposals_away() -> None:
    s = spec(strategy={"n_init": 2})
    p = Planner(s)
    h = History()
    for i, (a, b) in enumerate([(0.1, 0.1), (0.9, 0.9), (0.5, 0.2), (0.2, 0.9), (0.7, 0.5)]):
        h.observations.append(
            Observation(
                x={"x1": a, "x2": b}, capability="q/exact", y={"y": f(a, b)}, result_id=f"r{i}"
            )
        )
        h.proposed.append({"x1": a, "x2": b})
    first = p.propose(h, 1, 1).candidates[0]
    h.pending.append(Pending(first.x, first.capability, "req-1", 1))
    second = p.propose(h, 1, 2).candidates[0]
    d = math.dist((first.x["x1"], first.x["x2"]), (second.x["x1"], second.x["x2"]))
    assert d > 0.02  # not the same point again while the first is pending
    assert second.predicted is not None and second.acquisition is not None


@pytest.mark.parametrize("kind", ["threshold", "quantile"])
def test_funnel_advances_only_what_passes(kind: str) -> None:
    tier0 = {"name": "screen", "capability": "q/model"}
    tier0.update({"threshold": 0.5} if kind == "threshold" else {"quantile": 0.6})
    s = spec(
        measurements=[
            {"capability": "q/model", "cost": 1, "fidelity": 0.5},
            {"capability": "q/exact", "cost": 5, "fidelity": 1.0},
        ],
        tiers=[tier0, {"name": "confirm", "capability": "q/exact"}],
        budget={"requests": 30},
        strategy={"name": "sobol"},
        batch_size=4,
    )

    def ev(c):
        y = f(c.x["x1"], c.x["x2"])
        return {"y": y + (bias(c.x["x1"], c.x["x2"]) if c.capability == "q/model" else 0)}

    run = run_local(s, ev)
    h = run.history
    screen = [o for o in h.observations if o.tier == 0]
    confirm = [o for o in h.observations if o.tier == 1]
    assert screen and confirm
    for o in screen:
        v = run.decisions[o.key]
        advanced = any(c.x == o.x for c in confirm)
        assert advanced == (v.kind == "advance")
        if kind == "threshold":
            assert (v.kind == "advance") == (o.y["y"] >= 0.5)
    stats = run.summary()["tiers"]
    assert stats[0]["n_in"] == len(screen) and stats[0]["n_passed"] == len(confirm)
    assert run.best.capability == "q/exact"


def test_stopping_rules() -> None:
    def never(c):
        raise ValueError("instrument offline")

    run = run_local(
        spec(strategy={"name": "random"}, stopping={"max_consecutive_failures": 4}), never
    )
    assert run.status == "failed" and len(run.history.observations) == 4
    assert "offline" in run.reason
    run = run_local(
        spec(
            strategy={"name": "random"}, budget={"requests": 200}, stopping={"target": {"y": 0.5}}
        ),
        bumps,
    )
    assert run.status == "completed" and run.best.y["y"] >= 0.5 and "target" in run.reason
    run = run_local(
        spec(strategy={"name": "random"}, budget={"requests": 200}, stopping={"patience": 5}),
        lambda c: {"y": 1.0},
    )
    assert "no improvement" in run.reason and len(run.history.observations) < 20


@pytest.mark.slow  # science: seconds to minutes (left out of make test-fast)
def test_categorical_and_integer_variables() -> None:
    s = spec(
        variables=[
            {"name": "x1", "low": 0, "high": 1},
            {"name": "k", "type": "integer", "low": 0, "high": 6},
            {"name": "solvent", "type": "categorical", "values": ["EC", "PC", "DMC"]},
        ],
        budget={"requests": 18},
        strategy={"n_init": 6},
    )
    shift = {"EC": 0.0, "PC": 0.6, "DMC": 0.2}

    def ev(c):
        return {"y": -((c.x["x1"] - 0.4) ** 2) - 0.05 * (c.x["k"] - 4) ** 2 + shift[c.x["solvent"]]}

    run = run_local(s, ev)
    xs = [o.x for o in run.history.observations]
    assert all(isinstance(x["k"], int) and x["solvent"] in shift for x in xs)
    assert run.best.x["solvent"] == "PC" and abs(run.best.x["k"] - 4) <= 1


def _stalled_history(n: int = 10) -> History:
    """The best result came first; the nine after it were all worse (a stalled campaign)."""
    h = History()
    rng = np.random.default_rng(0)
    pts = [(0.8, 0.2)] + [tuple(rng.uniform(0.6, 1.0, 2)) for _ in range(n - 1)]
    for i, (a, b) in enumerate(pts):
        y = f(0.8, 0.2) if i == 0 else min(f(a, b), f(0.8, 0.2) - 0.05)
        h.observations.append(
            Observation(x={"x1": a, "x2": b}, capability="q/exact", y={"y": y}, result_id=f"r{i}")
        )
        h.proposed.append({"x1": a, "x2": b})
    return h


def test_a_stalled_campaign_explores_with_one_candidate_only() -> None:
    h = _stalled_history()
    prop = Planner(spec(strategy={"n_init": 2}, batch_size=4)).propose(h, 4, 5)
    sources = [c.source for c in prop.candidates]
    assert sources.count("explore") == 1 and sources.count("model") == 3
    assert any("explores" in n for n in prop.notes)
    ex = next(c for c in prop.candidates if c.source == "explore")
    others = [c for c in prop.candidates if c.source == "model"]
    # it goes where the model knows little: away from the cluster of results and the batch
    assert ex.predicted is not None and ex.predicted["std"] > max(
        c.predicted["std"] for c in others
    )
    # not when switched off, nor while the best is recent, nor with outcome constraints
    off = Planner(spec(strategy={"n_init": 2, "explore_after": 0}, batch_size=4))
    assert {c.source for c in off.propose(h, 4, 5).candidates} == {"model"}
    fresh = Planner(spec(strategy={"n_init": 2, "explore_after": 20}, batch_size=4))
    assert {c.source for c in fresh.propose(h, 4, 5).candidates} == {"model"}
    cons = spec(
        strategy={"n_init": 2},
        batch_size=4,
        objectives=[{"name": "y"}],
        constraints=[{"type": "outcome", "output": "y", "op": ">=", "value": 0.1}],
    )
    assert "explore" not in {c.source for c in Planner(cons).propose(h, 4, 5).candidates}


def test_the_initial_design_follows_the_dimension_and_the_budget() -> None:
    assert Planner(spec(budget={"requests": 40})).n_init == 5  # max(5, 2 d), d = 2
    six = [{"name": f"x{i}", "low": 0, "high": 1} for i in range(6)]
    assert Planner(spec(variables=six, budget={"requests": 80})).n_init == 12
    assert Planner(spec(variables=six, budget={"requests": 16})).n_init == 4  # a quarter
    assert Planner(spec(strategy={"n_init": 7})).n_init == 7
