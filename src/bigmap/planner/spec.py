"""The campaign specification: a YAML document, validated with errors that name their path.

A campaign says *what* to search (variables, fixed context, constraints), *what for*
(objectives), *how to measure* (the capabilities that give each output, with their cost and
fidelity, optionally a funnel of tiers), *how much* (batch size, budget, stopping rules) and
*how* (the strategy and a random seed). Example::

    name: electrolyte conductivity at 298 K
    seed: 7
    variables:
      - {name: solvent, type: mixture, components: [{name: EC}, {name: PC}, {name: EMC}]}
      - {name: c_LiPF6, type: continuous, low: 0.2, high: 2.1, unit: mol/kg}
    context: {temperature: 298.15}
    objectives:
      - {name: conductivity, direction: maximize, unit: S/m}
    measurements:
      - capability: conductivity/transport_model
        cost: 1
        fidelity: 0.5
        outputs: {conductivity: values.0}
      - capability: conductivity/two_electrode
        cost: 10
        fidelity: 1.0
        outputs: {conductivity: values.0}
    batch_size: 2
    budget: {requests: 40, cost: 200}
    strategy: {name: botorch}

``load_spec`` reads a file or a string and raises ``SpecError`` listing every problem as
``path: message`` (``$.variables[1].high: must be greater than low (0.2)``).
"""

from __future__ import annotations

import difflib
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
)
from pydantic_core import PydanticCustomError

from bigmap.schemas.validation import json_path

NAME = r"^[A-Za-z_][A-Za-z0-9_\-]*$"
CAPABILITY = r"^[A-Za-z][A-Za-z0-9_\-]*/[A-Za-z][A-Za-z0-9_\-]*$"


class SpecError(ValueError):
    """A campaign specification that cannot be used; ``errors`` lists ``(path, message)``."""

    def __init__(self, errors: list[tuple[str, str]], source: str = "") -> None:
        self.errors = errors
        self.source = source
        head = f"invalid campaign specification{f' {source}' if source else ''}"
        super().__init__(head + ":\n" + "\n".join(f"  {p}: {m}" for p, m in errors))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


# ----------------------------------------------------------------------------- variables


class ContinuousVariable(_Model):
    type: Literal["continuous"] = "continuous"
    name: str = Field(pattern=NAME, max_length=100)
    low: float
    high: float
    unit: str = ""
    log: bool = Field(default=False, description="search on a log scale (low must be > 0)")


class IntegerVariable(_Model):
    type: Literal["integer"]
    name: str = Field(pattern=NAME, max_length=100)
    low: int
    high: int
    unit: str = ""


class CategoricalVariable(_Model):
    type: Literal["categorical"]
    name: str = Field(pattern=NAME, max_length=100)
    values: list[str | int | float] = Field(min_length=2, max_length=100)


class Component(_Model):
    name: str = Field(pattern=NAME, max_length=100)
    low: float = Field(default=0.0, ge=0)
    high: float | None = Field(default=None, ge=0, description="default: the mixture's total")


class MixtureVariable(_Model):
    """Fractions that sum to ``total`` (a formulation); ``x`` names each component."""

    type: Literal["mixture"]
    name: str = Field(pattern=NAME, max_length=100)
    components: list[Component] = Field(min_length=2, max_length=20)
    total: float = Field(default=1.0, gt=0)
    unit: str = ""

    def bounds(self, i: int) -> tuple[float, float]:
        c = self.components[i]
        return c.low, self.total if c.high is None else min(c.high, self.total)


def _variable_type(v: Any) -> str:
    if isinstance(v, dict):
        return v.get("type", "continuous")
    return getattr(v, "type", "continuous")


Variable = Annotated[
    Annotated[ContinuousVariable, Tag("continuous")]
    | Annotated[IntegerVariable, Tag("integer")]
    | Annotated[CategoricalVariable, Tag("categorical")]
    | Annotated[MixtureVariable, Tag("mixture")],
    Discriminator(
        _variable_type,
        custom_error_type="variable_type",
        custom_error_message="type must be one of continuous, integer, categorical, mixture",
    ),
]


# ----------------------------------------------------------------------------- objectives


class Objective(_Model):
    name: str = Field(pattern=NAME, max_length=100)
    direction: Literal["maximize", "minimize"] = "maximize"
    unit: str = ""
    reference: float | None = Field(
        default=None,
        description="worst acceptable value: the reference point of the hypervolume "
        "(multi-objective); default: inferred from the data",
    )

    @field_validator("direction", mode="before")
    @classmethod
    def _dir(cls, v: Any) -> Any:
        # the short and British spellings a scientist types are the same direction
        aliases = {"max": "maximize", "maximise": "maximize", "min": "minimize"}
        aliases["minimise"] = "minimize"
        return aliases.get(v, v) if isinstance(v, str) else v

    @property
    def sign(self) -> float:
        return 1.0 if self.direction == "maximize" else -1.0


# ----------------------------------------------------------------------------- constraints


class LinearConstraint(_Model):
    """``sum(coefficients[v] * v) op rhs`` on numeric variables or mixture components."""

    type: Literal["linear"] = "linear"
    coefficients: dict[str, float] = Field(min_length=1)
    op: Literal["<=", ">=", "=="] = "<="
    rhs: float


class OutcomeConstraint(_Model):
    """A threshold on a measured output: candidates that break it are not 'good'."""

    type: Literal["outcome"]
    output: str = Field(pattern=NAME)
    op: Literal["<=", ">="]
    value: float


def _constraint_type(v: Any) -> str:
    if isinstance(v, dict):
        return v.get("type", "linear")
    return getattr(v, "type", "linear")


Constraint = Annotated[
    Annotated[LinearConstraint, Tag("linear")] | Annotated[OutcomeConstraint, Tag("outcome")],
    Discriminator(
        _constraint_type,
        custom_error_type="constraint_type",
        custom_error_message="type must be linear or outcome",
    ),
]


# ----------------------------------------------------------------------------- measurements


class Measurement(_Model):
    """A capability that measures some outputs, with its cost and fidelity.

    ``parameters`` is the request's parameter template: any string ``"${name}"`` is replaced
    by the value of a variable, mixture component or context entry (keeping its type), and
    ``"{name}"`` inside longer strings by its text. Without a template the parameters are the
    context and the candidate, flat. ``builder`` (``"package.module:function"``) builds them in
    Python instead: ``function(x, context) -> dict``.

    ``outputs`` maps an output name (an objective or a constrained outcome) to a path in the
    result's data (``"conductivity"``, ``"values.0"``); ``uncertainty`` likewise to its
    standard uncertainty, when the capability gives one."""

    capability: str = Field(pattern=CAPABILITY)
    cost: float = Field(default=1.0, gt=0)
    fidelity: float = Field(default=1.0, gt=0, le=1)
    parameters: dict[str, Any] | None = None
    builder: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    outputs: dict[str, str] = Field(default_factory=dict)
    uncertainty: dict[str, str] = Field(default_factory=dict)
    timeout_seconds: float | None = Field(
        default=None, gt=0, description="a request unanswered this long is retracted (failed)"
    )
    priority: int = Field(default=0, ge=-1000, le=1000)

    @property
    def quantity(self) -> str:
        return self.capability.split("/", 1)[0]

    def output_map(self, spec: CampaignSpec) -> dict[str, str]:
        """Output name -> path in the result data (default: an output of the same name)."""
        if self.outputs:
            return dict(self.outputs)
        return {o: o for o in spec.outputs()}

    @property
    def method(self) -> str:
        return self.capability.split("/", 1)[1]


class Tier(_Model):
    """A stage of a funnel: a candidate measured here advances to the next tier only when
    its ``output`` passes ``threshold`` (an absolute value) or ``quantile`` (better than that
    share of the tier's results so far). The last tier needs neither."""

    name: str = Field(pattern=NAME, max_length=100)
    capability: str = Field(pattern=CAPABILITY)
    output: str | None = Field(default=None, description="default: the first objective")
    threshold: float | None = None
    quantile: float | None = Field(default=None, gt=0, lt=1)


# ----------------------------------------------------------------------------- run control


class Budget(_Model):
    requests: int | None = Field(default=None, ge=1)
    cost: float | None = Field(default=None, gt=0)
    wall_seconds: float | None = Field(default=None, gt=0)


class Stopping(_Model):
    target: dict[str, float] = Field(
        default_factory=dict, description="stop when the best reaches these objective values"
    )
    patience: int | None = Field(
        default=None, ge=1, description="stop after this many results without improvement"
    )
    min_improvement: float = Field(default=0.0, ge=0)
    max_consecutive_failures: int = Field(
        default=10, ge=1, description="stop (failed) after this many failures in a row"
    )


class StrategySpec(_Model):
    name: str = Field(
        default="botorch",
        description="the strategy: random, sobol, grid, botorch (bigmap's own) or another "
        "of the installed `bigmap.strategies` entry points",
    )
    n_init: int | None = Field(
        default=None, ge=1, description="space-filling (Sobol) proposals before the model"
    )
    acquisition: Literal["auto", "qlognei", "qlogei", "qucb", "qlognehvi"] = "auto"
    robust: bool = Field(default=True, description="detect and down-weight outliers")
    outlier_z: float = Field(default=4.0, gt=2)
    fidelity: Literal["cost_aware", "highest", "lowest_first"] = Field(
        default="cost_aware",
        description="with several measurements of one output: choose by information per cost",
    )
    grid_points: int | None = Field(default=None, ge=2, le=1000)
    raw_samples: int = Field(
        default=256,
        ge=16,
        le=100000,
        description="random points that seed the acquisition's optimiser",
    )
    num_restarts: int = Field(
        default=6, ge=1, le=100, description="starts of the acquisition's optimiser"
    )
    beta: float = Field(default=2.0, gt=0, description="qUCB exploration weight")
    kernel: Literal["matern", "rbf"] = Field(default="rbf", description="GP kernel")
    sequential: bool = Field(
        default=False, description="build a batch greedily, one candidate at a time"
    )
    explore_after: int | None = Field(
        default=None,
        ge=0,
        le=10000,
        description="results without a better best after which one candidate explores "
        "(qUCB, beta 4); default max(4, 2 * batch_size); 0: never",
    )

    @field_validator("name", mode="before")
    @classmethod
    def _alias(cls, v: Any) -> Any:
        return {"bo": "botorch", "gp": "botorch", "bayesian": "botorch"}.get(v, v)

    @field_validator("name")
    @classmethod
    def _installed(cls, v: str) -> str:
        from bigmap.planner.strategies import names

        known = names()
        if v not in known:
            raise PydanticCustomError(
                "strategy",
                "{name!r} is not one of {known} (the installed bigmap.strategies)",
                {"name": v, "known": ", ".join(known)},
            )
        return v


class Pool(_Model):
    """A discrete set of candidates to choose from (a library, a plate): rows of ``x``."""

    rows: list[dict[str, Any]] | None = None
    csv: str | None = Field(default=None, description="a CSV file with one column per variable")


# ----------------------------------------------------------------------------- the spec


class CampaignSpec(_Model):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    variables: list[Variable] = Field(min_length=1, max_length=50)
    context: dict[str, Any] = Field(default_factory=dict)
    objectives: list[Objective] = Field(min_length=1, max_length=6)
    constraints: list[Constraint] = Field(default_factory=list)
    measurements: list[Measurement] = Field(min_length=1, max_length=20)
    tiers: list[Tier] = Field(default_factory=list, max_length=10)
    batch_size: int = Field(default=1, ge=1, le=100)
    max_pending: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="requests in flight at once (asynchronous: propose as soon as one returns); "
        "default: batch_size",
    )
    asynchronous: bool = Field(
        default=True, description="propose while earlier requests are pending"
    )
    budget: Budget
    stopping: Stopping = Field(default_factory=Stopping)
    strategy: StrategySpec = Field(default_factory=StrategySpec)
    pool: Pool | None = None
    unservable_timeout_seconds: float = Field(
        default=300.0, gt=0, description="retract a request that no tenant can serve after this"
    )

    # -- derived views ------------------------------------------------------------------

    def names(self) -> list[str]:
        """The names in a candidate ``x``: variables, with mixtures as their components."""
        out: list[str] = []
        for v in self.variables:
            if isinstance(v, MixtureVariable):
                out.extend(c.name for c in v.components)
            else:
                out.append(v.name)
        return out

    def outputs(self) -> list[str]:
        """Every measured output: the objectives and the constrained outcomes."""
        out = [o.name for o in self.objectives]
        for c in self.constraints:
            if isinstance(c, OutcomeConstraint) and c.output not in out:
                out.append(c.output)
        return out

    def measurements_of(self, output: str) -> list[Measurement]:
        return [m for m in self.measurements if output in m.output_map(self)]

    def measurement(self, capability: str) -> Measurement:
        for m in self.measurements:
            if m.capability == capability:
                return m
        raise KeyError(capability)

    @property
    def in_flight(self) -> int:
        return self.max_pending or self.batch_size


# ----------------------------------------------------------------------------- checks


def _check(spec: CampaignSpec) -> list[tuple[str, str]]:
    """Rules that span fields; each problem with its path."""
    errs: list[tuple[str, str]] = []
    seen: dict[str, str] = {}

    def claim(name: str, where: str) -> None:
        if name in seen:
            errs.append((where, f"the name {name!r} is used twice (also at {seen[name]})"))
        else:
            seen[name] = where

    numeric: dict[str, tuple[float, float, bool]] = {}
    for i, v in enumerate(spec.variables):
        at = f"$.variables[{i}]"
        if isinstance(v, ContinuousVariable | IntegerVariable):
            claim(v.name, f"{at}.name")
            if not (math.isfinite(v.low) and math.isfinite(v.high)):
                errs.append((f"{at}.low", "bounds must be finite numbers"))
            elif v.high <= v.low:
                errs.append((f"{at}.high", f"must be greater than low ({v.low})"))
            if isinstance(v, ContinuousVariable) and v.log and v.low <= 0:
                errs.append((f"{at}.low", "a log-scale variable needs low > 0"))
            numeric[v.name] = (
                float(v.low),
                float(v.high),
                isinstance(v, ContinuousVariable) and v.log,
            )
        elif isinstance(v, CategoricalVariable):
            claim(v.name, f"{at}.name")
            if len({repr(x) for x in v.values}) != len(v.values):
                errs.append((f"{at}.values", "values must be distinct"))
        else:
            claim(v.name, f"{at}.name")
            lows = highs = 0.0
            for j, c in enumerate(v.components):
                claim(c.name, f"{at}.components[{j}].name")
                lo, hi = v.bounds(j)
                if hi < lo:
                    errs.append((f"{at}.components[{j}].high", f"must be at least low ({c.low})"))
                if lo > v.total:
                    errs.append(
                        (f"{at}.components[{j}].low", f"exceeds the mixture's total ({v.total})")
                    )
                lows += lo
                highs += hi
                numeric[c.name] = (lo, hi, False)
            if lows > v.total + 1e-9:
                errs.append(
                    (f"{at}.components", f"the lower bounds sum to {lows:g} > total {v.total:g}")
                )
            if highs < v.total - 1e-9:
                errs.append(
                    (
                        f"{at}.components",
                        f"the upper bounds sum to {highs:g} < total {v.total:g}: no mixture fits",
                    )
                )
    for key in spec.context:
        if key in seen:
            errs.append((f"$.context.{key}", f"{key!r} is also a variable ({seen[key]})"))
    obj_names = set()
    for i, o in enumerate(spec.objectives):
        if o.name in obj_names:
            errs.append((f"$.objectives[{i}].name", f"objective {o.name!r} is listed twice"))
        obj_names.add(o.name)
    outputs = spec.outputs()
    for i, c in enumerate(spec.constraints):
        at = f"$.constraints[{i}]"
        if isinstance(c, LinearConstraint):
            for name in c.coefficients:
                if name not in numeric:
                    hint = "a categorical variable" if name in seen else "not a variable"
                    errs.append(
                        (
                            f"{at}.coefficients.{name}",
                            f"{name!r} is {hint}; linear constraints take numeric variables "
                            "and mixture components",
                        )
                    )
                elif numeric[name][2]:
                    errs.append(
                        (f"{at}.coefficients.{name}", "a log-scale variable cannot be constrained")
                    )
            known = [n for n in c.coefficients if n in numeric]
            if known and len(known) == len(c.coefficients):
                lo = sum(
                    min(a * numeric[n][0], a * numeric[n][1]) for n, a in c.coefficients.items()
                )
                hi = sum(
                    max(a * numeric[n][0], a * numeric[n][1]) for n, a in c.coefficients.items()
                )
                if (c.op == "<=" and lo > c.rhs + 1e-9) or (c.op == ">=" and hi < c.rhs - 1e-9):
                    errs.append((at, "no point within the variables' bounds satisfies it"))
                if c.op == "==" and not (lo - 1e-9 <= c.rhs <= hi + 1e-9):
                    errs.append((at, "no point within the variables' bounds satisfies it"))
    provided: dict[str, list[int]] = {}
    caps = set()
    for i, m in enumerate(spec.measurements):
        at = f"$.measurements[{i}]"
        if m.capability in caps:
            errs.append((f"{at}.capability", f"{m.capability} is listed twice"))
        caps.add(m.capability)
        if m.parameters is not None and m.builder is not None:
            errs.append((at, "give either parameters (a template) or builder, not both"))
        for out in m.outputs:
            if out not in outputs:
                errs.append(
                    (
                        f"{at}.outputs.{out}",
                        f"{out!r} is neither an objective nor a constrained outcome "
                        f"(known: {', '.join(outputs)})",
                    )
                )
        for out in m.uncertainty:
            if out not in m.output_map(spec):
                errs.append((f"{at}.uncertainty.{out}", f"{out!r} is not one of its outputs"))
        for out in m.output_map(spec):
            provided.setdefault(out, []).append(i)
        if m.parameters is not None:
            for ref in sorted(_template_refs(m.parameters)):
                if ref not in seen and ref not in spec.context:
                    errs.append(
                        (
                            f"{at}.parameters",
                            f"the template refers to {ref!r}, which is neither a variable nor "
                            "a context entry",
                        )
                    )
    for i, name in enumerate(outputs):
        if name not in provided:
            where = f"$.objectives[{i}].name" if i < len(spec.objectives) else "$.constraints"
            errs.append((where, f"no measurement gives {name!r}"))
    for out, idx in provided.items():
        fids = [spec.measurements[i].fidelity for i in idx]
        if len(set(fids)) != len(fids):
            errs.append(
                (
                    f"$.measurements[{idx[-1]}].fidelity",
                    f"two measurements of {out!r} have the same fidelity; give each its own",
                )
            )
    for key, _ in spec.stopping.target.items():
        if key not in obj_names:
            errs.append((f"$.stopping.target.{key}", f"{key!r} is not an objective"))
    b = spec.budget
    if b.requests is None and b.cost is None and b.wall_seconds is None:
        errs.append(("$.budget", "set at least one of requests, cost, wall_seconds"))
    if spec.tiers:
        for i, t in enumerate(spec.tiers):
            at = f"$.tiers[{i}]"
            if t.capability not in caps:
                errs.append((f"{at}.capability", f"{t.capability} is not one of the measurements"))
            out = t.output or spec.objectives[0].name
            if t.capability in caps and out not in spec.measurement(t.capability).output_map(spec):
                errs.append((f"{at}.output", f"{t.capability} does not give {out!r}"))
            last = i == len(spec.tiers) - 1
            if not last and (t.threshold is None) == (t.quantile is None):
                errs.append((at, "a tier before the last needs exactly one of threshold, quantile"))
            if last and (t.threshold is not None or t.quantile is not None):
                errs.append((at, "the last tier has no threshold: nothing comes after it"))
        if len({t.name for t in spec.tiers}) != len(spec.tiers):
            errs.append(("$.tiers", "tier names must be distinct"))
        if len({t.capability for t in spec.tiers}) != len(spec.tiers):
            errs.append(("$.tiers", "each tier needs its own capability"))
        if len(spec.objectives) > 1:
            errs.append(("$.tiers", "a funnel works with one objective"))
    if spec.strategy.acquisition == "qlognehvi" and len(spec.objectives) < 2:
        errs.append(("$.strategy.acquisition", "qlognehvi needs two objectives or more"))
    if spec.pool is not None and (spec.pool.rows is None) == (spec.pool.csv is None):
        errs.append(("$.pool", "give exactly one of rows, csv"))
    return errs


_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_\-]*)\}|\{([A-Za-z_][A-Za-z0-9_\-]*)\}")


def _template_refs(obj: Any) -> set[str]:
    refs: set[str] = set()
    if isinstance(obj, dict):
        for v in obj.values():
            refs |= _template_refs(v)
    elif isinstance(obj, list):
        for v in obj:
            refs |= _template_refs(v)
    elif isinstance(obj, str):
        for a, b in _REF.findall(obj):
            refs.add(a or b)
    return refs


def parse_spec(data: Any, source: str = "") -> CampaignSpec:
    """A validated ``CampaignSpec`` from parsed YAML/JSON; ``SpecError`` otherwise."""
    if not isinstance(data, dict):
        raise SpecError(
            [("$", "a campaign specification is a mapping (name: ..., variables: ...)")], source
        )
    try:
        spec = CampaignSpec.model_validate(data)
    except ValidationError as exc:
        errors = []
        for e in exc.errors():
            loc = [p for p in e["loc"] if not (isinstance(p, str) and p in _UNION_TAGS)]
            msg = e["msg"]
            if e["type"] == "extra_forbidden":
                msg = "unknown field" + _did_you_mean(str(loc[-1]) if loc else "", _field_names())
            elif e["type"] in ("literal_error", "enum") and isinstance(e.get("input"), str):
                expected = re.findall(r"'([^']*)'", str((e.get("ctx") or {}).get("expected", "")))
                msg = f"{e['input']!r} is not one of {', '.join(expected)}" + _did_you_mean(
                    e["input"], expected
                )
            elif e["type"] == "strategy" and isinstance(e.get("input"), str):
                from bigmap.planner.strategies import names

                msg += _did_you_mean(e["input"], names())
            elif e["type"] == "union_tag_invalid":
                msg = (
                    f"unknown type {e.get('input', {}).get('type')!r}"
                    if isinstance(e.get("input"), dict)
                    else msg
                )
            errors.append((json_path(loc), msg))
        raise SpecError(errors, source) from None
    errs = _check(spec)
    if errs:
        raise SpecError(errs, source)
    return spec


def _did_you_mean(word: str, choices: list[str] | set[str]) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def _field_names() -> set[str]:
    """Every key a specification may hold, at any depth (for spelling suggestions)."""
    out: set[str] = set()
    todo: list[type[BaseModel]] = [CampaignSpec]
    seen: set[type[BaseModel]] = set()
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, f in model.model_fields.items():
            out.add(name)
            for arg in _models_in(f.annotation):
                todo.append(arg)
    return out


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    from typing import get_args

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for a in get_args(annotation) for m in _models_in(a)]


_UNION_TAGS = {
    "continuous",
    "integer",
    "categorical",
    "mixture",
    "linear",
    "outcome",
}


def load_spec(source: str | Path) -> CampaignSpec:
    """Read a campaign specification from a YAML file path or from YAML text."""
    label = ""
    if isinstance(source, Path) or (
        isinstance(source, str)
        and "\n" not in source
        and source.endswith((".yaml", ".yml", ".json"))
    ):
        path = Path(source)
        label = str(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise SpecError([("$", f"cannot read {path}: {exc.strerror or exc}")], label) from None
    else:
        text = str(source)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "$"
        raise SpecError(
            [(where, f"not valid YAML: {getattr(exc, 'problem', exc)}")], label
        ) from None
    return parse_spec(data, label)
