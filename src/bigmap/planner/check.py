"""A campaign specification checked against a live broker's catalogue, before any request:
``bigmap campaign validate SPEC`` and ``bigmap campaign run`` (which refuses to start on an
error).

What it checks, each finding with the spec path it concerns:

- every capability exists in the catalogue and is served: an active tenant provides it and
  at least one of them is running (a heartbeat within the broker's window);
- every output and uncertainty path exists in the capability's result schema and leads to a
  number (``values.0``; ``values.mean``, ``.min``, ``.max`` reduce a list); a path the schema
  does not declare is accepted only when the capability's recent results hold it;
- units: every unit of the spec is one pint can read, and the unit of each output (the
  capability's) converts to the objective's; the runner then converts the values (never
  relabels them), see :func:`output_units`; a template parameter that is exactly a variable
  takes the variable's value converted to the parameter's unit;
- the parameters of a probe candidate (the middle of the space) are valid for the
  capability's parameter schema, and lie within some running tenant's limitations.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from typing import Any

from bigmap.planner.spec import (
    CampaignSpec,
    CategoricalVariable,
    ContinuousVariable,
    IntegerVariable,
    Measurement,
    MixtureVariable,
)

AGGREGATES = ("mean", "min", "max")


@dataclass
class Finding:
    path: str
    message: str
    level: str = "error"  # error | warning | ok

    def line(self) -> str:
        return f"{self.level}: {self.path}: {self.message}"


@dataclass
class CheckReport:
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    def add(self, path: str, message: str, level: str = "error") -> None:
        self.findings.append(Finding(path, message, level))


# ----------------------------------------------------------------------------- paths


def split_path(path: str) -> list[str | int]:
    return [int(p) if p.isdigit() else p for p in path.split(".") if p != ""]


def _resolve(node: Any, root: dict[str, Any]) -> Any:
    from bigmap.schemas.units import subschema

    # subschema with an empty path resolves $ref / allOf / anyOf of a node
    return subschema({**root, **node}, []) if isinstance(node, dict) else node


def schema_paths(schema: dict[str, Any], limit: int = 400) -> list[str]:
    """The dotted paths of the numbers (and lists of numbers) a result schema declares."""
    from bigmap.schemas.units import subschema

    out: list[str] = []

    def walk(parts: list[str | int], depth: int) -> None:
        if len(out) >= limit or depth > 6:
            return
        node = subschema(schema, parts) or {}
        kind = node.get("type")
        if kind in ("number", "integer"):
            out.append(".".join(map(str, parts)))
        elif kind == "array":
            item = subschema(schema, [*parts, 0]) or {}
            if item.get("type") in ("number", "integer"):
                out.append(".".join(map(str, [*parts, 0])))
                out.append(".".join(map(str, [*parts, "mean"])))
            elif item.get("type") == "object" or item.get("properties"):
                walk([*parts, 0], depth + 1)
        for key in node.get("properties") or {}:
            walk([*parts, key], depth + 1)

    walk([], 0)
    return out


def schema_leaf(schema: dict[str, Any], path: str) -> tuple[str, Any]:
    """('ok', node) when ``path`` leads to a number in the schema (an aggregate of a list of
    numbers counts); ('list', node) for a list left unreduced; ('not-number', node); or
    ('missing', None)."""
    from bigmap.schemas.units import subschema

    parts = split_path(path)
    if parts and parts[-1] in AGGREGATES:
        node = subschema(schema, parts[:-1])
        if node is not None and node.get("type") == "array":
            item = subschema(schema, [*parts[:-1], 0]) or {}
            if item.get("type") in ("number", "integer"):
                return "ok", node
            return "not-number", node
    node = subschema(schema, parts)
    if node is None:
        return "missing", None
    kind = node.get("type")
    if kind in ("number", "integer"):
        return "ok", node
    if kind == "array":
        return "list", node
    if kind is None and not node.get("properties"):
        return "ok", node  # an untyped leaf: the value decides at run time
    return "not-number", node


def data_has(data: Any, path: str) -> bool:
    from bigmap.planner.runner import get_path

    try:
        v = get_path(data, path)
    except KeyError:
        return False
    return isinstance(v, int | float) and not isinstance(v, bool)


def unit_at(cap: dict[str, Any], path: str) -> str | None:
    """The unit the capability gives for the number at ``path`` (None: it says none)."""
    from bigmap.schemas.units import subschema, unit_for

    parts = split_path(path)
    if parts and parts[-1] in AGGREGATES:
        node = subschema(cap.get("result_schema") or {}, parts[:-1]) or {}
        if node.get("type") == "array":
            parts = parts[:-1]
    keys = [p for p in parts if isinstance(p, str)]
    if not keys:
        return None
    return unit_for(parts, keys[-1], {}, cap.get("units") or {}, cap.get("result_schema"))


# ----------------------------------------------------------------------------- units


def output_units(
    spec: CampaignSpec, caps: dict[str, dict[str, Any]]
) -> dict[str, dict[str, tuple[str, str]]]:
    """For each measurement, output -> (unit the capability gives, unit the campaign
    uses): the objective's unit, or, when it names none, that of the first measurement of
    the output that has one. Outputs without a known unit on either side are left out."""
    target: dict[str, str] = {o.name: o.unit for o in spec.objectives if o.unit}
    given: dict[str, dict[str, str]] = {}
    for m in spec.measurements:
        cap = caps.get(m.capability)
        if cap is None:
            continue
        for out, path in m.output_map(spec).items():
            u = unit_at(cap, path)
            if u:
                given.setdefault(m.capability, {})[out] = u
                target.setdefault(out, u)
    return {
        capability: {out: (u, target[out]) for out, u in outs.items()}
        for capability, outs in given.items()
    }


def probe(spec: CampaignSpec) -> dict[str, Any]:
    """A candidate in the middle of the search space (for checking parameters)."""
    x: dict[str, Any] = {}
    for v in spec.variables:
        if isinstance(v, ContinuousVariable):
            x[v.name] = math.sqrt(v.low * v.high) if v.log else (v.low + v.high) / 2
        elif isinstance(v, IntegerVariable):
            x[v.name] = (v.low + v.high) // 2
        elif isinstance(v, CategoricalVariable):
            x[v.name] = v.values[0]
        elif isinstance(v, MixtureVariable):
            bounds = [v.bounds(i) for i in range(len(v.components))]
            lows = sum(lo for lo, _ in bounds)
            room = sum(hi - lo for lo, hi in bounds)
            share = (v.total - lows) / room if room > 0 else 0.0
            for c, (lo, hi) in zip(v.components, bounds, strict=True):
                x[c.name] = lo + share * (hi - lo)
    return x


def template_units(
    spec: CampaignSpec, m: Measurement, cap: dict[str, Any] | None
) -> list[tuple[str, str, str, str]]:
    """(variable, parameter path, variable unit, parameter unit) for every template entry
    that is exactly ``"${variable}"`` where both sides name a unit."""
    from bigmap.schemas.units import unit_for

    if m.parameters is None or cap is None:
        return []
    units = {v.name: getattr(v, "unit", "") for v in spec.variables}
    for v in spec.variables:
        if isinstance(v, MixtureVariable):
            for c in v.components:
                units[c.name] = v.unit
    out = []

    def walk(obj: Any, parts: list[str | int]) -> None:
        if isinstance(obj, dict):
            for k, val in obj.items():
                walk(val, [*parts, k])
        elif isinstance(obj, list):
            for i, val in enumerate(obj):
                walk(val, [*parts, i])
        elif isinstance(obj, str) and obj.startswith("${") and obj.endswith("}"):
            name = obj[2:-1]
            keys = [p for p in parts if isinstance(p, str)]
            pu = unit_for(parts, keys[-1], {}, {}, cap.get("parameter_schema")) if keys else None
            if units.get(name) and pu:
                out.append((name, ".".join(map(str, parts)), units[name], pu))

    walk(m.parameters, [])
    return out


def _probe_parameters(
    rep: CheckReport,
    at: str,
    m: Measurement,
    cap: dict[str, Any],
    spec: CampaignSpec,
    running: list[dict[str, Any]],
) -> None:
    """The parameters of a candidate in the middle of the space: valid for the capability's
    schema, and within some running tenant's limitations."""
    from bigmap.planner.runner import build_parameters
    from bigmap.schemas.limitations import outside
    from bigmap.schemas.validation import validate

    where = f"{at}.{'builder' if m.builder else 'parameters'}"
    try:
        params = build_parameters(m, probe(spec), spec.context)
    except Exception as exc:  # a builder's own error, a template's missing name
        rep.add(where, f"cannot build the parameters of a candidate: {type(exc).__name__}: {exc}")
        return
    errs = validate(cap.get("parameter_schema") or {}, params, ["parameters"])
    for e in errs[:5]:
        rep.add(
            where,
            f"a candidate's parameters break the schema of {m.capability} at {e.path}: {e.msg}",
        )
    if errs or not running:
        return
    reasons = []
    for t in running:
        for p in t.get("provides") or []:
            if f"{p['quantity']}/{p['method']}" != m.capability:
                continue
            why = outside(p.get("limitations") or {}, params)
            if why is None:
                return
            reasons.append(f"{t['name']}: {why}")
    if reasons:
        rep.add(
            at,
            "a candidate in the middle of the search space lies outside what its tenants "
            f"accept ({'; '.join(reasons[:3])}): such requests would be refused",
            "warning",
        )


# ----------------------------------------------------------------------------- the check


def check_spec(spec: CampaignSpec, client: Any) -> CheckReport:
    """Every finding about ``spec`` against the broker ``client`` talks to."""
    from bigmap.client.errors import NotFoundError
    from bigmap.schemas.units import UnitError, converter, parse_unit

    rep = CheckReport()
    for i, v in enumerate(spec.variables):
        unit = getattr(v, "unit", "")
        if unit:
            try:
                parse_unit(unit)
            except UnitError as exc:
                rep.add(f"$.variables[{i}].unit", str(exc))
    for i, o in enumerate(spec.objectives):
        if o.unit:
            try:
                parse_unit(o.unit)
            except UnitError as exc:
                rep.add(f"$.objectives[{i}].unit", str(exc))

    catalogue = {f"{c['quantity']}/{c['method']}": c for c in client.capabilities()}
    tenants = client.tenants()
    caps: dict[str, dict[str, Any]] = {}
    bad_paths: set[str] = set()  # capability:path of outputs that are not there
    for i, m in enumerate(spec.measurements):
        at = f"$.measurements[{i}]"
        listed = catalogue.get(m.capability)
        if listed is None:
            close = difflib.get_close_matches(m.capability, list(catalogue), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            rep.add(
                f"{at}.capability",
                f"no capability {m.capability} in the broker's catalogue{hint} "
                "(bigmap capability list shows them)",
            )
            continue
        try:
            cap = client.capability(m.quantity, m.method)
        except NotFoundError:
            rep.add(f"{at}.capability", f"no capability {m.capability}")
            continue
        caps[m.capability] = cap
        if not cap.get("is_active", True):
            rep.add(f"{at}.capability", f"{m.capability} is not active on this broker")
        providers = [
            t
            for t in tenants
            if t.get("is_active", True)
            and any(
                f"{p['quantity']}/{p['method']}" == m.capability for p in t.get("provides") or []
            )
        ]
        running = [t for t in providers if t.get("alive")]
        if not providers:
            rep.add(
                f"{at}.capability",
                f"no tenant provides {m.capability}: start one that does (bigmap worker NAME) "
                "before the campaign",
            )
        elif not running:
            names = ", ".join(sorted({t["name"] for t in providers}))
            rep.add(
                f"{at}.capability",
                f"{m.capability} is provided by {names}, but none of them is running "
                "(no heartbeat): start its worker first",
            )
        else:
            names = ", ".join(sorted({t["name"] for t in running}))
            rep.add(f"{at}.capability", f"{m.capability} served by {names}", "ok")

        # outputs and uncertainties: paths into the result
        recent: list[dict[str, Any]] | None = None
        schema = cap.get("result_schema") or {}
        for kind, mapping in (("outputs", m.output_map(spec)), ("uncertainty", m.uncertainty)):
            for out, path in mapping.items():
                where = f"{at}.{kind}.{out}"
                status, _ = schema_leaf(schema, path)
                if status == "ok":
                    continue
                bad_paths.add(f"{m.capability}:{path}")
                if status == "list":
                    rep.add(
                        where,
                        f"{path!r} is a list in the result of {m.capability}: pick an element "
                        f"({path}.0) or reduce it ({path}.mean)",
                    )
                    continue
                if status == "not-number":
                    rep.add(where, f"{path!r} is not a number in the result of {m.capability}")
                    continue
                if recent is None:
                    recent = client.results(
                        quantity=m.quantity, method=m.method, limit=3, newest_first=True
                    )
                found = [r for r in recent if data_has(r.get("data"), path)]
                if found:
                    bad_paths.discard(f"{m.capability}:{path}")
                    rep.add(
                        where,
                        f"{path!r} is not declared in the result schema of {m.capability}, "
                        f"but its recent results hold it (e.g. result {found[0]['id']})",
                        "warning",
                    )
                    continue
                known = schema_paths(schema)
                close = difflib.get_close_matches(path, known, n=3, cutoff=0.5)
                hint = (
                    f"; did you mean {' or '.join(repr(c) for c in close)}?"
                    if close
                    else f" (it declares: {', '.join(known[:8]) or 'no numbers'})"
                )
                rep.add(
                    where,
                    f"{path!r} is not in the result schema of {m.capability}"
                    + (" nor in its recent results" if recent else "")
                    + hint,
                )

        # the parameters of a probe candidate
        _probe_parameters(rep, at, m, cap, spec, running)

        # template parameters that are exactly a variable: units must convert
        for name, ppath, vu, pu in template_units(spec, m, cap):
            try:
                converter(vu, pu)
            except UnitError as exc:
                rep.add(f"{at}.parameters.{ppath}", f"variable {name}: {exc}")

    # outputs: the capability's unit must convert to the campaign's
    for i, m in enumerate(spec.measurements):
        cap = caps.get(m.capability)
        if cap is None:
            continue
        for out, path in m.output_map(spec).items():
            if f"{m.capability}:{path}" in bad_paths:
                continue
            obj = next((o for o in spec.objectives if o.name == out), None)
            given = unit_at(cap, path)
            where = f"$.measurements[{i}].outputs.{out}"
            if obj is not None and obj.unit and not given:
                rep.add(
                    where,
                    f"{m.capability} declares no unit for {path!r}: its values are taken as "
                    f"{obj.unit} unchecked",
                    "warning",
                )
    try:
        conv = output_units(spec, caps)
    except UnitError as exc:
        rep.add("$.measurements", str(exc))
        conv = {}
    for i, m in enumerate(spec.measurements):
        for out, (given, wanted) in conv.get(m.capability, {}).items():
            if f"{m.capability}:{m.output_map(spec)[out]}" in bad_paths:
                continue
            where = f"$.measurements[{i}].outputs.{out}"
            try:
                converter(given, wanted)
            except UnitError as exc:
                obj = next((k for k, o in enumerate(spec.objectives) if o.name == out), None)
                rep.add(
                    where if obj is None else f"$.objectives[{obj}].unit",
                    f"{m.capability} gives {out} in {given}, the campaign wants {wanted}: {exc}",
                )
                continue
            if parse_unit(given) != parse_unit(wanted):
                rep.add(
                    where,
                    f"{m.capability} gives {out} in {given}; its values are converted to {wanted}",
                    "ok",
                )
    return rep
