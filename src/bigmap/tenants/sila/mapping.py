"""The mapping file: which commands of a SiLA 2 server become which bigmap capabilities, how
request parameters become SiLA parameters and SiLA responses become result fields, in which
units, and which properties feed the tenant's status. Reference: docs/lab.md, "Instruments".

``load_mapping`` reads and checks the file on its own (structure, paths, pint units);
``check_against_device`` checks it against the server's feature definitions once connected
(commands, parameters, responses, properties and units exist and agree). Every problem is a
``MappingError`` line naming the field: ``$.capabilities[0].parameters.SampleTemperature.sila_unit``.
"""

from __future__ import annotations

import difflib
import math
import string
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bigmap.schemas.units import UnitError, converter, parse_unit
from bigmap.schemas.validation import json_path
from bigmap.tenants.sila.fdl import FeatureInfo, SilaType, SilaUnit

PARAM_ROOTS = ("params", "device")
RESULT_ROOTS = ("params", "response", "device", "execution", "analysis")


class MappingError(ValueError):
    """A mapping file that cannot be used; ``problems`` are (JSON path, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]], label: str = "") -> None:
        self.problems = problems
        self.label = label
        head = f"{label}: " if label else ""
        super().__init__(head + "; ".join(f"{p}: {m}" for p, m in problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class FieldMap(_Strict):
    """One value: taken ``from`` a path, or a constant ``value``; numbers converted from
    ``unit`` (bigmap's side) to ``sila_unit`` (the device's side) or back."""

    from_: str | None = Field(default=None, alias="from")
    value: Any = None
    unit: str | None = None
    sila_unit: str | None = None
    each: dict[str, FieldMap] | None = None
    json_: bool = Field(default=False, alias="json")
    default: Any = None

    @model_validator(mode="after")
    def _one_source(self) -> FieldMap:
        has_value = "value" in self.model_fields_set
        if (self.from_ is None) == (not has_value):
            raise ValueError("give exactly one of 'from' (a path) and 'value' (a constant)")
        if self.each is not None and self.from_ is None:
            raise ValueError("'each' maps the items of a list taken 'from' a path")
        return self


class FileMap(_Strict):
    from_: str = Field(alias="from")
    name: str = Field(min_length=1, max_length=200)
    media_type: str = "application/octet-stream"


class ServerSpec(_Strict):
    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    insecure: bool = False
    root_certs: str | None = None
    private_key: str | None = None
    cert_chain: str | None = None
    connect_timeout_s: float = Field(default=10.0, gt=0, le=600)

    @model_validator(mode="after")
    def _tls(self) -> ServerSpec:
        if self.insecure and (self.root_certs or self.private_key or self.cert_chain):
            raise ValueError("insecure: true cannot be combined with certificates")
        if bool(self.private_key) != bool(self.cert_chain):
            raise ValueError("a client certificate needs both private_key and cert_chain")
        return self


class TenantSpec(_Strict):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    contact_person: str = ""


class StatusSpec(_Strict):
    properties: list[str] = Field(default_factory=list)
    poll_s: float = Field(default=5.0, gt=0, le=3600)


class AnalysisMap(_Strict):
    """A cycler's raw file, taken from a response, read with bigmap's readers (as ``bigmap
    ingest`` reads it) into the cycling figures that results take ``from: analysis.*``:
    ``capacity_list`` (charge and discharge capacity of each cycle, alternately, A h),
    ``figures_of_merit``, and, with at least 11 cycles after formation, the early-life
    descriptors ``delta_coulombic_efficiency``, ``voltage_gap_charge_discharge``,
    ``capacity_vector_variance`` (as ``virtual-lab``'s ``capacity/cycling`` computes them)."""

    cycler_file: str = Field(description="response.NAME: the raw file (Binary or String)")
    format: str | None = Field(default=None, description="a reader; default: detect")
    name: str = Field(default="cycler-file", min_length=1, max_length=200)
    formation_cycles: FieldMap | None = None


class CapabilityMap(_Strict):
    quantity: str = Field(min_length=1)
    method: str = Field(min_length=1)
    command: str = Field(description="Feature.Command")
    description: str = ""
    parameters: dict[str, FieldMap] = Field(default_factory=dict)
    result: dict[str, FieldMap] = Field(default_factory=dict)
    files: list[FileMap] = Field(default_factory=list)
    errors: dict[str, Literal["input_error", "calculation_failed"]] = Field(default_factory=dict)
    analysis: AnalysisMap | None = None
    parameter_schema: dict[str, Any] | None = None
    result_schema: dict[str, Any] | None = None
    limitations: dict[str, Any] | list[Any] | None = None
    lease_seconds: float = Field(default=600.0, gt=0)
    timeout_s: float = Field(default=24 * 3600.0, gt=0)
    cost: float | None = None
    fidelity: float | None = None


class Mapping(_Strict):
    server: ServerSpec
    tenant: TenantSpec
    emulated: bool = False
    status: StatusSpec = Field(default_factory=StatusSpec)
    capabilities: list[CapabilityMap] = Field(min_length=1)

    # set by load_mapping
    base_dir: Path = Field(default=Path("."), exclude=True)
    label: str = Field(default="", exclude=True)

    def read_file(self, name: str | None) -> bytes | None:
        if not name:
            return None
        path = Path(name)
        if not path.is_absolute():
            path = self.base_dir / path
        return path.read_bytes()


# ----------------------------------------------------------------------------- paths


def split_path(path: str) -> list[str | int]:
    """``a.b.0.c`` -> ["a", "b", 0, "c"]."""
    out: list[str | int] = []
    for part in path.split("."):
        out.append(int(part) if part.isdigit() else part)
    return out


def get_path(data: Any, parts: list[str | int]) -> Any:
    """The value at ``parts``; ``KeyError`` naming the first missing step."""
    node = data
    for i, part in enumerate(parts):
        in_list = isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node)
        if in_list:
            node = node[part]  # type: ignore[index]
        elif isinstance(node, dict) and str(part) in node:
            node = node[str(part)]
        else:
            raise KeyError(".".join(str(p) for p in parts[: i + 1]))
    return node


def set_path(data: dict[str, Any], parts: list[str | int], value: Any) -> None:
    node: Any = data
    for part in parts[:-1]:
        node = node.setdefault(str(part), {})
    node[str(parts[-1])] = value


# ----------------------------------------------------------------------------- units


class Conversion:
    """Numbers from one side to the other: pint units, or a SiLA Unit constraint's
    factor/offset to SI (SI = value × factor + offset)."""

    def __init__(self, fn: Any, text: str) -> None:
        self.fn = fn
        self.text = text

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{value!r} is not a number")
        return self.fn(float(value))


def sila_unit_conversion(unit: SilaUnit) -> tuple[Any, Any]:
    """(to SI, from SI) functions of a SiLA unit."""
    f, o = unit.factor, unit.offset
    return (lambda v: v * f + o), (lambda v: (v - o) / f)


def check_sila_unit(text: str, unit: SilaUnit) -> str | None:
    """Why the pint unit ``text`` is not the device's SiLA unit (None when they agree)."""
    try:
        to_si = converter(text, unit.si or "dimensionless")
    except UnitError as exc:
        return f"{text!r} is not what the device declares, {unit.describe()}: {exc}"
    for v in (0.0, 1.0, 100.0):
        want = v * unit.factor + unit.offset
        got = to_si(v)
        if not math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9):
            return (
                f"{text!r} is not what the device declares, {unit.describe()}: "
                f"{v:g} {text} = {got:g} {unit.si or '1'}, the device's {v:g} {unit.label} = {want:g}"
            )
    return None


def conversion(
    bigmap_unit: str | None, device_unit: str | None, sila: SilaUnit | None, to_device: bool
) -> Conversion | None:
    """The conversion between bigmap's ``bigmap_unit`` and the device's unit (its
    ``sila_unit`` in the mapping, else its SiLA Unit constraint)."""
    if bigmap_unit is None:
        return None
    if device_unit is not None:
        fn = (
            converter(bigmap_unit, device_unit)
            if to_device
            else converter(device_unit, bigmap_unit)
        )
        return Conversion(
            fn,
            f"{bigmap_unit} -> {device_unit}" if to_device else f"{device_unit} -> {bigmap_unit}",
        )
    if sila is None:
        return None
    to_si, from_si = sila_unit_conversion(sila)
    si = sila.si or "dimensionless"
    if to_device:
        c = converter(bigmap_unit, si)
        return Conversion(lambda v: from_si(c(v)), f"{bigmap_unit} -> {sila.label}")
    c = converter(si, bigmap_unit)
    return Conversion(lambda v: c(to_si(v)), f"{sila.label} -> {bigmap_unit}")


# ----------------------------------------------------------------------------- loading


def _loc(loc: tuple[Any, ...]) -> str:
    return json_path(
        [
            p.replace("from_", "from").replace("json_", "json") if isinstance(p, str) else p
            for p in loc
        ]
    )


def _check_field(
    fm: FieldMap, where: str, roots: tuple[str, ...], problems: list[tuple[str, str]]
) -> None:
    if fm.from_ is not None:
        parts = fm.from_.split(".")
        if parts[0] not in roots or any(p == "" for p in parts):
            problems.append(
                (
                    f"{where}.from",
                    f"{fm.from_!r} must be a dotted path starting with one of {', '.join(roots)}",
                )
            )
        elif parts[0] in ("params", "response") and len(parts) < 2:
            problems.append((f"{where}.from", f"{fm.from_!r} names no field of {parts[0]}"))
    for key in ("unit", "sila_unit"):
        text = getattr(fm, key)
        if text is not None:
            try:
                parse_unit(text)
            except UnitError as exc:
                problems.append((f"{where}.{key}", str(exc)))
    if fm.unit and fm.sila_unit:
        try:
            converter(fm.unit, fm.sila_unit)
        except UnitError as exc:
            problems.append((f"{where}.sila_unit", str(exc)))
    if fm.each:
        for k, sub in fm.each.items():
            _check_field(sub, f"{where}.each.{k}", roots + ("item",), problems)


def _check_analysis(a: AnalysisMap, where: str, problems: list[tuple[str, str]]) -> None:
    parts = a.cycler_file.split(".")
    if parts[0] != "response" or len(parts) < 2 or not all(parts):
        problems.append(
            (
                f"{where}.cycler_file",
                f"{a.cycler_file!r}: the file comes from a response (response.NAME)",
            )
        )
    if a.format is not None:
        from bigmap.analysis.readers import formats

        known = list(formats())
        if a.format not in known:
            problems.append(
                (f"{where}.format", f"no reader {a.format!r}{_suggest(a.format, known)}")
            )
    if a.formation_cycles is not None:
        if a.formation_cycles.each or a.formation_cycles.json_:
            problems.append((f"{where}.formation_cycles", "a number: 'from' a path or a 'value'"))
        _check_field(
            a.formation_cycles,
            f"{where}.formation_cycles",
            ("params", "response", "device", "execution"),
            problems,
        )


def parse_mapping(data: Any, label: str = "", base_dir: Path | None = None) -> Mapping:
    if not isinstance(data, dict):
        raise MappingError(
            [("$", "a mapping file is a YAML mapping (server, tenant, capabilities)")], label
        )
    try:
        m = Mapping.model_validate(data)
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            msg = e["msg"].removeprefix("Value error, ")
            if e["type"] == "extra_forbidden":
                known = _known_fields(e["loc"])
                close = difflib.get_close_matches(str(e["loc"][-1]), known, n=1)
                msg = "unknown field" + (
                    f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(known)})"
                )
            problems.append((_loc(e["loc"]), msg))
        raise MappingError(problems, label) from None
    problems: list[tuple[str, str]] = []
    for i, cap in enumerate(m.capabilities):
        base = f"$.capabilities[{i}]"
        if cap.command.count(".") != 1 or not all(cap.command.split(".")):
            problems.append((f"{base}.command", f"{cap.command!r} must be Feature.Command"))
        for k, fm in cap.parameters.items():
            _check_field(fm, f"{base}.parameters.{k}", PARAM_ROOTS, problems)
        for k, fm in cap.result.items():
            _check_field(fm, f"{base}.result.{k}", RESULT_ROOTS, problems)
            if fm.from_ and fm.from_.split(".")[0] == "analysis" and cap.analysis is None:
                problems.append(
                    (
                        f"{base}.result.{k}.from",
                        f"{fm.from_!r} needs an 'analysis' section (the cycler file to read)",
                    )
                )
        if cap.analysis is not None:
            _check_analysis(cap.analysis, f"{base}.analysis", problems)
        for j, f in enumerate(cap.files):
            try:
                list(string.Formatter().parse(f.name))
            except ValueError as exc:
                problems.append((f"{base}.files[{j}].name", f"not a name template: {exc}"))
            if not f.from_.startswith("response."):
                problems.append(
                    (f"{base}.files[{j}].from", "a file comes from a response (response.NAME)")
                )
        seen = {(c.quantity, c.method) for c in m.capabilities[:i]}
        if (cap.quantity, cap.method) in seen:
            problems.append((f"{base}.method", f"{cap.quantity}/{cap.method} is mapped twice"))
    for j, p in enumerate(m.status.properties):
        if p.count(".") != 1 or not all(p.split(".")):
            problems.append((f"$.status.properties[{j}]", f"{p!r} must be Feature.Property"))
    if problems:
        raise MappingError(problems, label)
    m.base_dir = base_dir or Path(".")
    m.label = label
    for key in ("root_certs", "private_key", "cert_chain"):
        name = getattr(m.server, key)
        if name:
            try:
                m.read_file(name)
            except OSError as exc:
                raise MappingError(
                    [(f"$.server.{key}", f"cannot read {name}: {exc.strerror or exc}")], label
                ) from None
    return m


def _known_fields(loc: tuple[Any, ...]) -> list[str]:
    model: Any = Mapping
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            # a dict of FieldMaps keyed by name: the next level is a FieldMap
            model = FieldMap if model in (CapabilityMap, FieldMap) else model
            continue
        ann = field.annotation
        for cand in (
            CapabilityMap,
            AnalysisMap,
            FieldMap,
            FileMap,
            ServerSpec,
            TenantSpec,
            StatusSpec,
        ):
            if cand is ann or cand.__name__ in str(ann):
                model = cand
                break
    fields = getattr(model, "model_fields", {})
    return sorted((f.alias or k) for k, f in fields.items() if k not in ("base_dir", "label"))


def load_mapping(path: str | Path) -> Mapping:
    """Read and check a mapping file (YAML or JSON)."""
    path = Path(path)
    label = str(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise MappingError([("$", f"cannot read {path}: {exc.strerror or exc}")], label) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "$"
        raise MappingError(
            [(where, f"not valid YAML: {getattr(exc, 'problem', exc)}")], label
        ) from None
    return parse_mapping(data, label, path.resolve().parent)


# ----------------------------------------------------------------------------- against the device


def _template_fields(template: str) -> list[str]:
    try:
        return [f for _, f, _, _ in string.Formatter().parse(template) if f]
    except ValueError:
        return []


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return (
        f"; did you mean {close[0]!r}?"
        if close
        else (f" (it has {', '.join(known)})" if known else "")
    )


def _response_type(cmd_responses: dict[str, Any], parts: list[str]) -> SilaType | None:
    el = cmd_responses.get(parts[0])
    t = el.type if el is not None else None
    for p in parts[1:]:
        if t is None:
            return None
        while t.kind == "list" and t.item is not None and p.isdigit():
            t = t.item
            break
        else:
            t = t.elements.get(p) if t.kind == "structure" else None
    return t


def check_against_device(m: Mapping, features: dict[str, FeatureInfo]) -> None:
    """Check the mapping against the server's features; ``MappingError`` naming each field
    that does not fit."""
    problems: list[tuple[str, str]] = []
    for i, cap in enumerate(m.capabilities):
        base = f"$.capabilities[{i}]"
        fname, cname = cap.command.split(".")
        feat = features.get(fname)
        if feat is None:
            problems.append(
                (
                    f"{base}.command",
                    f"the server has no feature {fname!r}{_suggest(fname, list(features))}",
                )
            )
            continue
        cmd = feat.commands.get(cname)
        if cmd is None:
            problems.append(
                (
                    f"{base}.command",
                    f"{fname} has no command {cname!r}{_suggest(cname, list(feat.commands))}",
                )
            )
            continue
        for pname in cap.parameters:
            if pname not in cmd.parameters:
                problems.append(
                    (
                        f"{base}.parameters.{pname}",
                        f"{cap.command} has no parameter {pname!r}{_suggest(pname, list(cmd.parameters))}",
                    )
                )
        for pname, el in cmd.parameters.items():
            fm = cap.parameters.get(pname)
            if fm is None:
                problems.append(
                    (
                        f"{base}.parameters",
                        f"{cap.command} needs its parameter {pname!r} ({el.type.describe()}): map it",
                    )
                )
                continue
            _check_units(fm, el.type, f"{base}.parameters.{pname}", problems, to_device=True)
        for key, fm in cap.result.items():
            if fm.from_ and fm.from_.startswith("response."):
                parts = fm.from_.split(".")[1:]
                t = _response_type(cmd.responses, parts)
                if t is None:
                    problems.append(
                        (
                            f"{base}.result.{key}.from",
                            f"{cap.command} has no response {'.'.join(parts)!r}{_suggest(parts[0], list(cmd.responses))}",
                        )
                    )
                    continue
                _check_units(fm, t, f"{base}.result.{key}", problems, to_device=False)
        for j, f in enumerate(cap.files):
            for name in _template_fields(f.name):
                if name not in ("index", "request") and name not in cmd.responses:
                    problems.append(
                        (
                            f"{base}.files[{j}].name",
                            f"{{{name}}}: not index, request or a response of {cap.command}"
                            f"{_suggest(name, list(cmd.responses))}",
                        )
                    )
            parts = f.from_.split(".")[1:]
            t = _response_type(cmd.responses, parts)
            if t is None:
                problems.append(
                    (
                        f"{base}.files[{j}].from",
                        f"{cap.command} has no response {'.'.join(parts)!r}{_suggest(parts[0], list(cmd.responses))}",
                    )
                )
            elif t.leaf().basic not in ("Binary", "String"):
                problems.append(
                    (
                        f"{base}.files[{j}].from",
                        f"{'.'.join(parts)} is {t.describe()}, not Binary or String",
                    )
                )
        if cap.analysis is not None:
            a = cap.analysis
            parts = a.cycler_file.split(".")[1:]
            t = _response_type(cmd.responses, parts)
            if t is None:
                problems.append(
                    (
                        f"{base}.analysis.cycler_file",
                        f"{cap.command} has no response {'.'.join(parts)!r}{_suggest(parts[0], list(cmd.responses))}",
                    )
                )
            elif t.kind != "basic" or t.basic not in ("Binary", "String"):
                problems.append(
                    (
                        f"{base}.analysis.cycler_file",
                        f"{'.'.join(parts)} is {t.describe()}, not one Binary or String",
                    )
                )
            fc = a.formation_cycles
            if fc is not None and fc.from_ and fc.from_.startswith("response."):
                fparts = fc.from_.split(".")[1:]
                ft = _response_type(cmd.responses, fparts)
                if ft is None:
                    problems.append(
                        (
                            f"{base}.analysis.formation_cycles.from",
                            f"{cap.command} has no response {'.'.join(fparts)!r}{_suggest(fparts[0], list(cmd.responses))}",
                        )
                    )
                elif ft.kind != "basic" or ft.basic != "Integer":
                    problems.append(
                        (
                            f"{base}.analysis.formation_cycles.from",
                            f"{'.'.join(fparts)} is {ft.describe()}, not an Integer",
                        )
                    )
        known_errors = cmd.errors
        for ename in cap.errors:
            if ename not in known_errors:
                problems.append(
                    (
                        f"{base}.errors.{ename}",
                        f"{cap.command} defines no error {ename!r}{_suggest(ename, known_errors)}",
                    )
                )
    for j, p in enumerate(m.status.properties):
        fname, pname = p.split(".")
        feat = features.get(fname)
        if feat is None:
            problems.append(
                (
                    f"$.status.properties[{j}]",
                    f"the server has no feature {fname!r}{_suggest(fname, list(features))}",
                )
            )
        elif pname not in feat.properties:
            problems.append(
                (
                    f"$.status.properties[{j}]",
                    f"{fname} has no property {pname!r}{_suggest(pname, list(feat.properties))}",
                )
            )
    if problems:
        raise MappingError(problems, m.label)


def _check_units(
    fm: FieldMap, t: SilaType, where: str, problems: list[tuple[str, str]], *, to_device: bool
) -> None:
    leaf = t.leaf()
    if fm.each:
        item = t.item if t.kind == "list" and t.item is not None else t
        for k, sub in fm.each.items():
            if to_device:
                el = item.elements.get(k) if item.kind == "structure" else None
                if el is None:
                    problems.append(
                        (
                            f"{where}.each.{k}",
                            f"the device's items have no element {k!r}{_suggest(k, list(item.elements))}",
                        )
                    )
                    continue
                _check_units(sub, el, f"{where}.each.{k}", problems, to_device=True)
            elif sub.from_ and sub.from_.startswith("item."):
                parts = sub.from_.split(".")[1:]
                el = item.elements.get(parts[0]) if item.kind == "structure" else None
                if el is None:
                    problems.append(
                        (
                            f"{where}.each.{k}.from",
                            f"the device's items have no element {parts[0]!r}{_suggest(parts[0], list(item.elements))}",
                        )
                    )
                    continue
                _check_units(sub, el, f"{where}.each.{k}", problems, to_device=False)
        return
    if fm.sila_unit is not None and leaf.unit is not None:
        why = check_sila_unit(fm.sila_unit, leaf.unit)
        if why:
            problems.append((f"{where}.sila_unit", why))
    if fm.unit is not None and leaf.unit is None and fm.sila_unit is None and leaf.numeric:
        problems.append(
            (
                f"{where}.sila_unit",
                f"the device declares no unit for this {leaf.basic}: say which unit it uses (sila_unit)",
            )
        )
    if fm.unit is not None and leaf.unit is not None and fm.sila_unit is None:
        try:
            conversion(fm.unit, None, leaf.unit, to_device)
        except UnitError as exc:
            problems.append(
                (
                    f"{where}.unit",
                    f"cannot be converted to the device's {leaf.unit.describe()}: {exc}",
                )
            )
    if fm.unit is None and leaf.unit is not None and leaf.numeric and not to_device:
        problems.append(
            (
                f"{where}.unit",
                f"the device gives this in {leaf.unit.label}: say which unit the result holds (unit: ...)",
            )
        )
