"""Minimum metadata per data type: cycling, impedance, conductivity, simulation.

A result is checked when it arrives; the report lists what is missing, each item with a
reason and where it would go. How strictly the rules apply is set per capability:

- ``off``: no check;
- ``report`` (the default): the result is stored, the report with it;
- ``strict``: a result that misses an item is refused (422, each missing item a JSON path).

The rules follow the project's standardisation sources, cited per data type:

- cycling: BattINFO ``test.schema.json`` (BIG-MAP/BattINFO a600a72): a test names its cell
  (``cell_id``, required) and its conditions ("temperature, voltage window, C-rate, frequency
  range, etc."), with datasets (``dataset_ids``) and instrument;
- impedance: the same BattINFO test record for ``kind`` ``eis`` / ``impedance`` (conditions:
  frequency range, perturbation), plus the spectrum itself;
- conductivity: F. Rahmanian et al., "Conductivity experiments for electrolyte formulations
  and their automated analysis", Sci. Data 10 (2023) 43, doi:10.1038/s41597-023-01936-3
  (formulation of every sample, temperature, the conductivity with its uncertainty from
  replicate spectra), and the FINALES ``ConductivityOutput`` schema;
- simulation: CEN Workshop Agreement CWA 17284:2018 "Materials modelling - terminology,
  classification and metadata" (MODA): the model used, the software and its version, the
  numerical settings / success of the run.

Every data type also needs what BIG-MAP's data management plan asks of all data: who or
what produced it (software and version, or instrument) and the unit of every number.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

DATA_TYPES = ("cycling", "impedance", "conductivity", "simulation")


class Strictness(StrEnum):
    off = "off"
    report = "report"
    strict = "strict"


@dataclass
class Context:
    """Everything a check may look at: the result as it arrives, and its capability."""

    quantity: str
    method: str
    parameters: dict[str, Any]
    data: dict[str, Any]
    provenance: dict[str, Any] = field(default_factory=dict)
    software: dict[str, Any] | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    units: dict[str, str] = field(default_factory=dict)
    result_schema: dict[str, Any] | None = None
    tenant_kind: str | None = None
    unit_cache: dict[str, str | None] | None = None  # schema units by path, per capability

    def docs(self) -> dict[str, Any]:
        return {"parameters": self.parameters, "data": self.data, "provenance": self.provenance}

    def items(self, where: str = "all") -> list[tuple[tuple[Any, ...], Any]]:
        """Every (path, value) of the documents (``data`` only, or all), walked once."""
        cache = self.__dict__.setdefault("_items", {})
        if where not in cache:
            cache[where] = list(_items(self.data if where == "data" else self.docs()))
        return cache[where]

    def keys(self, where: str = "all") -> set[str]:
        """The (lower-case) keys with a non-empty value, anywhere in the documents."""
        cache = self.__dict__.setdefault("_keys", {})
        if where not in cache:
            cache[where] = {
                p[-1].lower()
                for p, v in self.items(where)
                if isinstance(p[-1], str) and v not in (None, "", [], {})
            }
        return cache[where]

    def has(self, *keys: str, where: str = "all") -> bool:
        return not self.keys(where).isdisjoint(k.lower() for k in keys)


def _items(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every (path, value) under ``doc``, depth first, without recursion."""
    stack: list[tuple[tuple[Any, ...], Any]] = [(path, doc)]
    while stack:
        here, node = stack.pop()
        if isinstance(node, dict):
            children = [((*here, k), v) for k, v in node.items()]
        elif isinstance(node, list):
            children = [((*here, i), v) for i, v in enumerate(node)]
        else:
            continue
        yield from children
        stack.extend(reversed(children))


def has_key(doc: Any, *keys: str) -> bool:
    """Some key of ``keys`` (case-insensitive) occurs anywhere with a non-empty value."""
    wanted = {k.lower() for k in keys}
    return any(
        isinstance(p[-1], str) and p[-1].lower() in wanted and v not in (None, "", [], {})
        for p, v in _items(doc)
    )


def _numbers(doc: Any) -> list[tuple[tuple[Any, ...], Any]]:
    pairs = doc.items("data") if isinstance(doc, Context) else _items(doc)
    return [
        (p, v)
        for p, v in pairs
        if isinstance(v, int | float)
        and not isinstance(v, bool)
        or (
            isinstance(v, list)
            and v
            and all(isinstance(x, int | float) and not isinstance(x, bool) for x in v)
        )
    ]


UNITLESS_KEYS = frozenset(
    {
        "fraction",
        "rating",
        "seed",
        "index",
        "step",
        "cycle",
        "cycles",
        "number_cycles",
        "eol_cycle",
        "count",
        "attempts",
        "n",
        "samples",
        "batch_volume",
        "priority",
    }
)


def numbers_without_unit(ctx: Context) -> list[str]:
    """Result fields holding numbers for which no unit is declared (capability ``units``,
    a ``unit`` in the result schema, or a ``unit`` key beside the number)."""
    from bigmap.ontology.jsonld import GENERIC_KEYS, _subschema, _unit_for

    missing = []
    for path, value in _numbers(ctx):
        if any(isinstance(p, int) for p in path[-1:]):
            continue
        key = path[-1]
        if not isinstance(key, str) or key.lower() in UNITLESS_KEYS or key.startswith("n_"):
            continue
        parent: Any = ctx.data
        for p in path[:-1]:
            parent = parent[p]
        if isinstance(value, int) and not isinstance(value, bool):
            dotted = "type:" + ".".join(str(p) for p in path if not isinstance(p, int))
            cache = ctx.unit_cache if ctx.unit_cache is not None else {}
            if dotted not in cache:
                cache[dotted] = (_subschema(ctx.result_schema, list(path)) or {}).get("type")
            if cache[dotted] == "integer":
                continue
        named = key
        if key in GENERIC_KEYS and len(path) >= 2 and isinstance(path[-2], str):
            named = path[-2]
        unit = _unit_for(
            list(path),
            key,
            parent if isinstance(parent, dict) else {},
            ctx.units,
            ctx.result_schema,
        )
        if unit is None and named != key:
            unit = ctx.units.get(named)
        if unit is None:
            missing.append("data." + ".".join(str(p) for p in path))
    return missing


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    where: str
    check: Callable[[Context], bool | list[str]]


def _formulation_ok(ctx: Context) -> bool:
    from bigmap.ontology.jsonld import is_formulation

    for _p, v in ctx.items():
        if is_formulation(v) and all(
            isinstance(c.get("chemical"), dict)
            and c["chemical"].get("InChIKey")
            and c.get("fraction_type")
            for c in v
        ):
            return True
    return False


def _producer(ctx: Context) -> bool:
    sw = ctx.software or ctx.provenance.get("software") or {}
    if isinstance(sw, dict) and sw.get("name") and sw.get("version") not in (None, "", "unknown"):
        return True
    return bool(ctx.provenance.get("instruments") or ctx.provenance.get("instrument"))


def _software_version(ctx: Context) -> bool:
    sw = ctx.software or ctx.provenance.get("software") or {}
    return bool(
        isinstance(sw, dict) and sw.get("name") and sw.get("version") not in (None, "", "unknown")
    )


def _raw_or_series(*series: str) -> Callable[[Context], bool]:
    def check(ctx: Context) -> bool:
        return bool(ctx.files) or ctx.has(*series, where="data")

    return check


def _conductivity_value(ctx: Context) -> bool:
    for path, _v in _numbers(ctx):
        if any(isinstance(p, str) and "conductivity" in p.lower() for p in path):
            return True
    return ctx.quantity == "conductivity" and ctx.has("values", "value", "mean", where="data")


def _uncertainty(ctx: Context) -> bool:
    if ctx.has("uncertainty", "std", "standard_deviation", "stderr", "error", where="data"):
        return True
    return any(
        isinstance(v, list) and len(v) >= 2 and isinstance(p[-1], str) and p[-1] == "values"
        for p, v in ctx.items("data")
    )


def _protocol(ctx: Context) -> bool:
    if ctx.has("experiment", "protocol", "test_protocol", "steps"):
        return True
    rate = ctx.has("c_rate", "c_rate_charge", "c_rate_discharge", "current", "crate")
    window = ctx.has(
        "v_max",
        "v_min",
        "cycling_v_max",
        "cycling_v_min",
        "upper_voltage_limit",
        "lower_voltage_limit",
        "voltage_window",
        "charging_cutoff_voltage",
        "discharging_cutoff_voltage",
    )
    return rate and window


COMMON: list[Rule] = [
    Rule(
        "producer",
        "who or what produced the data: the software with its version, or the instrument",
        "provenance.software {name, version} or provenance.instruments",
        _producer,
    ),
    Rule(
        "units",
        "a unit for every number of the result",
        "capability units, a 'unit' in the result schema, or a 'unit' key beside the number",
        numbers_without_unit,
    ),
]

RULES: dict[str, list[Rule]] = {
    "cycling": [
        Rule(
            "cell",
            "the cell tested: its id, specification or model parameter set",
            "parameters.cell / cell_info / cell_id or parameters.parameter_set",
            lambda c: c.has(
                "cell", "cell_id", "cell_info", "cell_uuid", "cell_name", "parameter_set"
            ),
        ),
        Rule(
            "protocol",
            "the cycling protocol: steps, or C-rates/currents and the voltage window",
            "parameters.experiment, or parameters.c_rate_* with V_max/V_min",
            _protocol,
        ),
        Rule(
            "temperature",
            "the (ambient) temperature",
            "parameters.temperature or data.temperature",
            lambda c: c.has("temperature", "ambient_temperature"),
        ),
        Rule(
            "raw_data",
            "the measured or computed time series: a cycler file or traces",
            "an attached file, or data.traces / time, voltage, current",
            _raw_or_series("traces", "time", "voltage", "current", "time_series"),
        ),
    ],
    "impedance": [
        Rule(
            "frequency_range",
            "the frequency range of the spectrum",
            "parameters.frequency_range / f_min, f_max, or data.frequency",
            lambda c: c.has("frequency", "frequencies", "frequency_range", "f_min", "f_max"),
        ),
        Rule(
            "perturbation",
            "the AC perturbation amplitude",
            "parameters.amplitude",
            lambda c: c.has("amplitude", "ac_amplitude", "perturbation", "excitation"),
        ),
        Rule(
            "temperature",
            "the temperature",
            "parameters.temperature",
            lambda c: c.has("temperature"),
        ),
        Rule(
            "sample",
            "the sample: a cell or an electrolyte formulation",
            "parameters.cell / formulation",
            lambda c: c.has("cell", "cell_id", "formulation", "sample"),
        ),
        Rule(
            "spectrum",
            "the spectrum: an attached file or the impedance data",
            "an attached file, or data.z_real / z_imag / impedance",
            _raw_or_series("z_real", "z_imag", "impedance", "re_z", "im_z", "spectrum"),
        ),
    ],
    "conductivity": [
        Rule(
            "formulation",
            "the formulation, every chemical identified by InChIKey, with its fraction type",
            "parameters.formulation",
            _formulation_ok,
        ),
        Rule(
            "temperature",
            "the temperature of the measurement or simulation",
            "parameters.temperature or data.conductivity.temperature",
            lambda c: c.has("temperature"),
        ),
        Rule("value", "the conductivity value", "data.conductivity.values", _conductivity_value),
        Rule(
            "uncertainty",
            "the uncertainty of the value, or replicates",
            "data.<quantity>.uncertainty or several data.<quantity>.values",
            _uncertainty,
        ),
    ],
    "simulation": [
        Rule(
            "software_version",
            "the simulation software and its version",
            "provenance.software {name, version}",
            _software_version,
        ),
        Rule(
            "model",
            "the physics or data-based model used (MODA: the model)",
            "parameters.model / parameter_set, or data.model, or provenance.model",
            lambda c: c.has(
                "model",
                "model_name",
                "potential",
                "functional",
                "level_of_theory",
                "parameter_set",
                "method_detail",
            ),
        ),
        Rule(
            "outcome",
            "whether the run succeeded (convergence / success flag)",
            "data.meta.success, data.converged or provenance.converged",
            lambda c: c.has("success", "converged", "convergence", "status"),
        ),
    ],
}


def data_types_for(
    quantity: str, method: str, tenant_kind: str | None = None, declared: list[str] | None = None
) -> list[str]:
    """The data types a capability's results are: as declared in its policy, else from its
    name and the kind of tenant that serves it."""
    if declared:
        return [t for t in declared if t in DATA_TYPES]
    qm = f"{quantity}/{method}".lower()
    out = []
    if "conductivity" in qm:
        out.append("conductivity")
    if "impedance" in qm or "eis" in qm.replace("/", " ").split():
        out.append("impedance")
    if any(w in qm for w in ("cycling", "capacity", "cycle")):
        out.append("cycling")
    if tenant_kind == "simulation":
        out.append("simulation")
    return out


@dataclass
class MetadataReport:
    data_types: list[str]
    strictness: str
    satisfied: list[str] = field(default_factory=list)
    missing: list[dict[str, Any]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing

    def as_dict(self) -> dict[str, Any]:
        return {
            "data_types": self.data_types,
            "strictness": self.strictness,
            "complete": self.complete,
            "satisfied": self.satisfied,
            "missing": self.missing,
        }

    def text(self) -> str:
        if self.complete:
            return f"minimum metadata complete ({', '.join(self.data_types) or 'no data type'})"
        return "missing metadata: " + "; ".join(
            f"{m['rule']} ({m['description']}; expected at {m['where']})"
            + (f": {', '.join(m['paths'])}" if m.get("paths") else "")
            for m in self.missing
        )


def check(
    ctx: Context,
    *,
    data_types: list[str] | None = None,
    strictness: Strictness | str = Strictness.report,
    required: list[str] | None = None,
) -> MetadataReport:
    """Check a result against the rules of its data types (and any extra ``required`` keys
    of its capability's policy)."""
    strictness = Strictness(strictness)
    types = (
        data_types
        if data_types is not None
        else data_types_for(ctx.quantity, ctx.method, ctx.tenant_kind)
    )
    report = MetadataReport(types, strictness.value)
    if strictness == Strictness.off:
        return report
    rules: list[tuple[str, Rule]] = [("all", r) for r in COMMON]
    seen = {r.id for r in COMMON}
    for t in types:
        for r in RULES.get(t, []):
            if r.id not in seen:
                rules.append((t, r))
                seen.add(r.id)
    for key in required or []:
        rules.append(
            (
                "policy",
                Rule(
                    f"required:{key}",
                    f"'{key}', required by this capability's policy",
                    f"provenance.{key} (or anywhere in parameters or data)",
                    lambda c, key=key: c.has(key),
                ),
            )
        )
    for data_type, rule in rules:
        outcome = rule.check(ctx)
        ok = outcome if isinstance(outcome, bool) else not outcome
        if ok:
            report.satisfied.append(rule.id)
        else:
            entry: dict[str, Any] = {
                "rule": rule.id,
                "data_type": data_type,
                "description": rule.description,
                "where": rule.where,
            }
            if isinstance(outcome, list):
                entry["paths"] = outcome
            report.missing.append(entry)
    return report
