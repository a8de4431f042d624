"""Campaign specifications: a complete spec loads; every kind of mistake is refused with
the path of the offending field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from bigmap.planner.runner import build_parameters, extract_outputs
from bigmap.planner.space import Space
from bigmap.planner.spec import SpecError, load_spec, parse_spec

FULL = textwrap.dedent(
    """
    name: electrolyte screen
    description: every feature at once
    seed: 11
    variables:
      - name: solvent
        type: mixture
        components: [{name: EC, high: 0.6}, {name: PC}, {name: EMC, low: 0.2}]
      - {name: c_LiPF6, low: 0.2, high: 2.0, unit: mol/kg}
      - {name: rate, type: continuous, low: 0.01, high: 10, log: true}
      - {name: layers, type: integer, low: 1, high: 4}
      - {name: salt_batch, type: categorical, values: [A, B, C]}
    context: {temperature: 298.15}
    objectives:
      - {name: conductivity, direction: maximize, unit: S/m}
      - {name: viscosity, direction: min, reference: 10}
    constraints:
      - {type: linear, coefficients: {EC: 1, PC: 1}, op: "<=", rhs: 0.7}
      - {type: outcome, output: density, op: "<=", value: 1.4}
    measurements:
      - capability: conductivity/transport_model
        cost: 1
        fidelity: 0.5
        parameters:
          formulation: [{name: EC, fraction: "${EC}"}, {name: PC, fraction: "${PC}"}]
          temperature: "${temperature}"
          label: "batch {salt_batch} at {temperature} K"
        outputs: {conductivity: values.0}
        uncertainty: {conductivity: uncertainty.0}
      - capability: conductivity/two_electrode
        cost: 10
        outputs: {conductivity: conductivity.mean}
        timeout_seconds: 60
      - {capability: viscosity/rheometer, cost: 5, outputs: {viscosity: eta, density: rho}}
    batch_size: 3
    max_pending: 5
    budget: {requests: 50, cost: 300, wall_seconds: 3600}
    stopping: {target: {conductivity: 1.2}, patience: 10}
    strategy: {name: bo, n_init: 6}
    """
)


def test_full_spec_loads_and_maps(tmp_path: Path) -> None:
    p = tmp_path / "spec.yaml"
    p.write_text(FULL)
    spec = load_spec(p)
    assert spec.strategy.name == "botorch"  # alias
    assert spec.objectives[1].direction == "minimize"  # alias
    assert spec.variables[1].type == "continuous"  # the default type
    assert spec.names() == ["EC", "PC", "EMC", "c_LiPF6", "rate", "layers", "salt_batch"]
    assert spec.outputs() == ["conductivity", "viscosity", "density"]
    assert [m.capability for m in spec.measurements_of("conductivity")] == [
        "conductivity/transport_model",
        "conductivity/two_electrode",
    ]
    x = {
        "EC": 0.3,
        "PC": 0.2,
        "EMC": 0.5,
        "c_LiPF6": 1.0,
        "rate": 1.0,
        "layers": 2,
        "salt_batch": "B",
    }
    params = build_parameters(spec.measurements[0], x, spec.context)
    assert params == {
        "formulation": [{"name": "EC", "fraction": 0.3}, {"name": "PC", "fraction": 0.2}],
        "temperature": 298.15,
        "label": "batch B at 298.15 K",
    }
    flat = build_parameters(spec.measurements[1], x, spec.context)
    assert flat == {"temperature": 298.15, **x}
    ys, stds = extract_outputs(
        spec.measurements[0], spec, {"values": [0.81], "uncertainty": [0.05]}
    )
    assert ys == {"conductivity": 0.81} and stds == {"conductivity": 0.05}
    with pytest.raises(ValueError, match=r"no value at 'values.0'"):
        extract_outputs(spec.measurements[0], spec, {"values": []})
    with pytest.raises(ValueError, match="not a finite number"):
        extract_outputs(spec.measurements[0], spec, {"values": ["high"]})
    # the encoded space: mixture as free coordinates, one-hot categories, constraints hold
    space = Space(spec)
    assert space.column_names == ["EC", "PC", "c_LiPF6", "rate", "layers"] + [
        f"salt_batch={v}" for v in "ABC"
    ]
    xs, used = space.sample(64, np.random.default_rng(0), sobol_seed=spec.seed)
    assert used >= 64 and all(space.feasible(c) for c in xs)
    assert all(abs(c["EC"] + c["PC"] + c["EMC"] - 1) < 1e-9 for c in xs)
    assert all(c["EC"] + c["PC"] <= 0.7 + 1e-9 and c["EMC"] >= 0.2 - 1e-12 for c in xs)
    assert space.decode(space.encode(x)) == x


BAD = [
    ("name: x\nvariables: []", "$.variables", "at least 1 item"),
    ("[1, 2]", "$", "mapping"),
    ("name: x\nvariables: [{name: a, low: 1, high: 0}]", "$.variables[0].high", "greater than low"),
    ("name: x\nvariables: [{name: a, type: weird}]", "$.variables[0]", "type must be one of"),
    (
        "name: x\nvariables: [{name: a, low: 0, high: 1, colour: red}]",
        "$.variables[0].colour",
        "unknown field",
    ),
    ("name: x\nvariables: [{name: '1a', low: 0, high: 1}]", "$.variables[0].name", "pattern"),
    (
        "name: x\nvariables: [{name: a, type: categorical, values: [u, u]}]",
        "$.variables[0].values",
        "distinct",
    ),
    (
        "name: x\nvariables: [{name: a, low: -1, high: 1, log: true}]",
        "$.variables[0].low",
        "log-scale",
    ),
    (
        "name: x\nvariables: [{name: m, type: mixture, components: [{name: a, low: 0.7}, {name: b, low: 0.5}]}]",
        "$.variables[0].components",
        "lower bounds sum",
    ),
    (
        "name: x\nvariables: [{name: m, type: mixture, components: [{name: a, high: 0.2}, {name: b, high: 0.3}]}]",
        "$.variables[0].components",
        "upper bounds sum",
    ),
    (
        "name: x\nvariables: [{name: a, low: 0, high: 1}, {name: a, low: 0, high: 2}]",
        "$.variables[1].name",
        "used twice",
    ),
    ("name: x\ncontext: {a: 1}", "$.context.a", "also a variable"),
    (
        "name: x\nobjectives: [{name: y, direction: sideways}]",
        "$.objectives[0].direction",
        "maximize",
    ),
    (
        "name: x\nconstraints: [{coefficients: {b: 1}, rhs: 0}]",
        "$.constraints[0].coefficients.b",
        "not a variable",
    ),
    (
        "name: x\nconstraints: [{coefficients: {a: 1}, op: '>=', rhs: 5}]",
        "$.constraints[0]",
        "no point",
    ),
    (
        "name: x\nconstraints: [{type: outcome, output: z, op: '<', value: 1}]",
        "$.constraints[0].op",
        "'<='",
    ),
    ("name: x\nmeasurements: [{capability: nomethod}]", "$.measurements[0].capability", "pattern"),
    (
        "name: x\nmeasurements: [{capability: q/m, cost: 0}]",
        "$.measurements[0].cost",
        "greater than 0",
    ),
    (
        "name: x\nmeasurements: [{capability: q/m, outputs: {zz: v}}]",
        "$.measurements[0].outputs.zz",
        "neither an objective",
    ),
    (
        "name: x\nmeasurements: [{capability: q/m, parameters: {t: '${nope}'}}]",
        "$.measurements[0].parameters",
        "'nope'",
    ),
    (
        "name: x\nobjectives: [{name: y}, {name: w}]\nmeasurements: [{capability: q/m, outputs: {y: v}}]",
        "$.objectives[1].name",
        "no measurement gives 'w'",
    ),
    (
        "name: x\nmeasurements: [{capability: q/m, fidelity: 0.5}, {capability: q/n, fidelity: 0.5}]",
        "$.measurements[1].fidelity",
        "same fidelity",
    ),
    ("name: x\nbudget: {}", "$.budget", "at least one"),
    ("name: x\nbudget: {requests: 0}", "$.budget.requests", "greater than or equal to 1"),
    ("name: x\nstopping: {target: {w: 1}}", "$.stopping.target.w", "not an objective"),
    (
        "name: x\nstrategy: {name: annealing}",
        "$.strategy.name",
        "one of botorch, grid, random, sobol",
    ),
    ("name: x\nstrategy: {acquisition: qlognehvi}", "$.strategy.acquisition", "two objectives"),
    (
        "name: x\ntiers: [{name: a, capability: q/zz, threshold: 1}, {name: b, capability: q/m}]",
        "$.tiers[0].capability",
        "not one of the measurements",
    ),
    (
        "name: x\ntiers: [{name: a, capability: q/m}, {name: b, capability: q/m}]",
        "$.tiers[0]",
        "exactly one of threshold",
    ),
    ("name: x\npool: {}", "$.pool", "exactly one of rows, csv"),
    ("name: x\nbatch_size: 0", "$.batch_size", "greater than or equal to 1"),
]

BASE = {
    "name": "x",
    "variables": [{"name": "a", "low": 0, "high": 1}],
    "objectives": [{"name": "y"}],
    "measurements": [{"capability": "q/m"}],
    "budget": {"requests": 5},
}


@pytest.mark.parametrize(("patch", "path", "msg"), BAD, ids=[b[1] + ":" + b[2] for b in BAD])
def test_bad_specs_name_the_path(patch: str, path: str, msg: str) -> None:
    import yaml

    data = yaml.safe_load(patch)
    doc = data if not isinstance(data, dict) else {**BASE, **data}
    with pytest.raises(SpecError) as info:
        parse_spec(doc)
    errs = info.value.errors
    assert any(p == path and msg in m for p, m in errs), errs
    assert path in str(info.value)


def test_yaml_syntax_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec("name: x\nvariables: [{name: a\n  low: 0}\n")
    assert info.value.errors[0][0].startswith("line ")
    with pytest.raises(SpecError, match="cannot read"):
        load_spec(tmp_path / "nope.yaml")
    # several problems at once are all reported
    with pytest.raises(SpecError) as info:
        parse_spec({**BASE, "batch_size": 0, "budget": {}})
    paths = {p for p, _ in info.value.errors}
    assert {"$.batch_size", "$.budget"} <= paths or "$.batch_size" in paths


def test_funnel_and_pool_specs(tmp_path: Path) -> None:
    (tmp_path / "pool.csv").write_text("a,kind\n0.1,u\n0.5,v\n0.9,u\n")
    spec = parse_spec(
        {
            **BASE,
            "variables": [
                {"name": "a", "low": 0, "high": 1},
                {"name": "kind", "type": "categorical", "values": ["u", "v"]},
            ],
            "measurements": [
                {"capability": "q/cheap", "fidelity": 0.3},
                {"capability": "q/mid", "fidelity": 0.6},
                {"capability": "q/exact", "fidelity": 1.0},
            ],
            "tiers": [
                {"name": "screen", "capability": "q/cheap", "threshold": 0.5},
                {"name": "check", "capability": "q/mid", "quantile": 0.7},
                {"name": "confirm", "capability": "q/exact"},
            ],
            "pool": {"csv": "pool.csv"},
        }
    )
    from bigmap.planner.core import load_pool

    rows = load_pool(spec, tmp_path)
    assert rows == [{"a": 0.1, "kind": "u"}, {"a": 0.5, "kind": "v"}, {"a": 0.9, "kind": "u"}]
    with pytest.raises(SpecError, match="last tier has no threshold"):
        parse_spec(
            {
                **BASE,
                "measurements": [{"capability": "q/m", "fidelity": 0.5}, {"capability": "q/n"}],
                "tiers": [
                    {"name": "a", "capability": "q/m", "threshold": 1},
                    {"name": "b", "capability": "q/n", "threshold": 2},
                ],
            }
        )


def test_shipped_example_matches_the_demo() -> None:
    from importlib import resources

    from bigmap.planner.demo import demo_spec, formulation_parameters

    path = Path(str(resources.files("bigmap.planner") / "examples" / "conductivity.yaml"))
    spec = load_spec(path)
    demo = parse_spec(demo_spec(298.15, 60, 1))
    assert (
        spec.variables == demo.variables
        and spec.measurements[0].outputs == demo.measurements[0].outputs
    )
    x = {"EC": 0.2, "PC": 0.1, "EMC": 0.7, "c_LiPF6": 1.0}
    params = formulation_parameters(x, spec.context)
    assert params["temperature"] == 298.15
    assert abs(sum(c["fraction"] for c in params["formulation"]) - 1) < 1e-9
    from bigmap.schemas.formulation import formulation_to_hte

    r, c = formulation_to_hte(params["formulation"])
    assert abs(r - 1 / 3) < 1e-6 and abs(c - 1.0) < 1e-6
