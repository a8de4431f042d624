"""What a SiLA 2 feature definition (FDL, the feature's XML) says: commands with their
parameters, responses and errors, properties, data types, units and numeric constraints.

The FDL format is the SiLA 2 standard's (Part A, "Feature Definition Language";
schema ``FeatureDefinition.xsd`` of gitlab.com/SiLA2/sila_base). bigmap reads it itself, with
lxml, rather than through the ``sila2`` package's private parsed objects, so that the adapter
depends only on the standard and on ``sila2``'s public client. A unit is a SiLA ``Unit``
constraint: SI value = value × Factor + Offset, with SI base components and exponents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lxml import etree

NS = {"s": "http://www.sila-standard.org"}

# SiLA SIUnit names -> pint symbols (the seven SI base units and "Dimensionless")
SI_SYMBOL = {
    "Dimensionless": "",
    "Meter": "m",
    "Kilogram": "kg",
    "Second": "s",
    "Ampere": "A",
    "Kelvin": "K",
    "Mole": "mol",
    "Candela": "cd",
}


@dataclass
class SilaUnit:
    """A SiLA ``Unit`` constraint: SI value = value * factor + offset."""

    label: str
    factor: float
    offset: float
    si: str  # the SI base expression, pint syntax ("kg**-1*m**-3*s**3*A**2"; "" dimensionless)

    def describe(self) -> str:
        return f"{self.label} (= {self.factor:g} {self.si or '1'}" + (
            f" + {self.offset:g})" if self.offset else ")"
        )


@dataclass
class SilaType:
    """A SiLA data type: ``kind`` is basic, list, structure or a data type identifier."""

    kind: str  # "basic" | "list" | "structure"
    basic: str = ""  # String, Integer, Real, Boolean, Binary, Date, Time, Timestamp, Any
    item: SilaType | None = None
    elements: dict[str, SilaType] = field(default_factory=dict)
    unit: SilaUnit | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_min: bool = False
    exclusive_max: bool = False
    allowed: list[str] = field(default_factory=list)
    name: str = ""  # the data type identifier it came from, if any

    def describe(self) -> str:
        if self.kind == "list" and self.item is not None:
            out = f"List<{self.item.describe()}>"
        elif self.kind == "structure":
            out = (
                "Structure{"
                + ", ".join(f"{k}: {v.describe()}" for k, v in self.elements.items())
                + "}"
            )
        else:
            out = self.basic
        if self.name:
            out = f"{self.name}={out}"
        if self.unit:
            out += f" [{self.unit.label}]"
        if self.minimum is not None or self.maximum is not None:
            lo = "" if self.minimum is None else f"{self.minimum:g}"
            hi = "" if self.maximum is None else f"{self.maximum:g}"
            out += f" ({lo}..{hi})"
        if self.allowed:
            out += " {" + "|".join(self.allowed) + "}"
        return out

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema of this type as bigmap carries it (SI-free: numbers are numbers)."""
        if self.kind == "list" and self.item is not None:
            return {"type": "array", "items": self.item.json_schema()}
        if self.kind == "structure":
            return {
                "type": "object",
                "properties": {k: v.json_schema() for k, v in self.elements.items()},
                "required": list(self.elements),
            }
        base = {
            "Real": {"type": "number"},
            "Integer": {"type": "integer"},
            "String": {"type": "string"},
            "Boolean": {"type": "boolean"},
            "Binary": {"type": "string", "contentEncoding": "base64"},
            "Date": {"type": "string", "format": "date"},
            "Time": {"type": "string", "format": "time"},
            "Timestamp": {"type": "string", "format": "date-time"},
        }.get(self.basic, {})
        out = dict(base)
        if self.allowed:
            out["enum"] = list(self.allowed)
        return out

    @property
    def numeric(self) -> bool:
        return self.kind == "basic" and self.basic in ("Real", "Integer")

    def leaf(self) -> SilaType:
        """The element type of (nested) lists: what a unit applies to."""
        t = self
        while t.kind == "list" and t.item is not None:
            t = t.item
        return t


@dataclass
class Element:
    identifier: str
    display_name: str
    description: str
    type: SilaType


@dataclass
class CommandInfo:
    identifier: str
    display_name: str
    description: str
    observable: bool
    parameters: dict[str, Element]
    responses: dict[str, Element]
    intermediate: dict[str, Element]
    errors: list[str]


@dataclass
class PropertyInfo:
    identifier: str
    display_name: str
    description: str
    observable: bool
    type: SilaType
    errors: list[str]


@dataclass
class FeatureInfo:
    identifier: str
    display_name: str
    description: str
    originator: str
    category: str
    version: str
    commands: dict[str, CommandInfo]
    properties: dict[str, PropertyInfo]
    errors: dict[str, str]  # identifier -> description

    @property
    def fully_qualified(self) -> str:
        return f"{self.originator}/{self.category}/{self.identifier}/v{self.version.split('.')[0]}"


def _text(node: Any, path: str) -> str:
    found = node.xpath(path + "/text()", namespaces=NS)
    return " ".join(str(found[0]).split()) if found else ""


def _float(node: Any, path: str) -> float | None:
    t = _text(node, path)
    try:
        return float(t) if t else None
    except ValueError:
        return None


def _unit(node: Any) -> SilaUnit:
    parts = []
    for comp in node.xpath("s:UnitComponent", namespaces=NS):
        name = _text(comp, "s:SIUnit")
        exp = int(_text(comp, "s:Exponent") or 1)
        sym = SI_SYMBOL.get(name, "")
        if sym:
            parts.append(sym if exp == 1 else f"{sym}**{exp}")
    return SilaUnit(
        label=_text(node, "s:Label"),
        factor=_float(node, "s:Factor") or 1.0,
        offset=_float(node, "s:Offset") or 0.0,
        si="*".join(parts),
    )


def _type(node: Any, defs: dict[str, Any], depth: int = 0) -> SilaType:
    """``node`` is a ``DataType`` element."""
    if depth > 30:
        raise ValueError("data types nested too deep")
    child = next((c for c in node if isinstance(c.tag, str)), None)
    if child is None:
        return SilaType("basic", "Any")
    tag = etree.QName(child).localname
    if tag == "Basic":
        return SilaType("basic", (child.text or "").strip())
    if tag == "List":
        return SilaType(
            "list", item=_type(child.xpath("s:DataType", namespaces=NS)[0], defs, depth + 1)
        )
    if tag == "Structure":
        elements = {
            _text(e, "s:Identifier"): _type(
                e.xpath("s:DataType", namespaces=NS)[0], defs, depth + 1
            )
            for e in child.xpath("s:Element", namespaces=NS)
        }
        return SilaType("structure", elements=elements)
    if tag == "DataTypeIdentifier":
        name = (child.text or "").strip()
        target = defs.get(name)
        if target is None:
            return SilaType("basic", "Any", name=name)
        t = _type(target, defs, depth + 1)
        t.name = name
        return t
    if tag == "Constrained":
        t = _type(child.xpath("s:DataType", namespaces=NS)[0], defs, depth + 1)
        for c in child.xpath("s:Constraints/*", namespaces=NS):
            ctag = etree.QName(c).localname
            value = (c.text or "").strip()
            try:
                if ctag == "Unit":
                    t.unit = _unit(c)
                elif ctag == "MinimalInclusive":
                    t.minimum = float(value)
                elif ctag == "MinimalExclusive":
                    t.minimum, t.exclusive_min = float(value), True
                elif ctag == "MaximalInclusive":
                    t.maximum = float(value)
                elif ctag == "MaximalExclusive":
                    t.maximum, t.exclusive_max = float(value), True
                elif ctag == "Set":
                    t.allowed = [str(v.text or "") for v in c.xpath("s:Value", namespaces=NS)]
            except ValueError:  # a date bound, say: not a number bigmap checks
                continue
        return t
    return SilaType("basic", "Any")


def _elements(node: Any, tag: str, defs: dict[str, Any]) -> dict[str, Element]:
    return {
        _text(e, "s:Identifier"): Element(
            _text(e, "s:Identifier"),
            _text(e, "s:DisplayName"),
            _text(e, "s:Description"),
            _type(e.xpath("s:DataType", namespaces=NS)[0], defs),
        )
        for e in node.xpath(f"s:{tag}", namespaces=NS)
    }


def parse_feature(xml: str | bytes) -> FeatureInfo:
    """A feature definition's content; ``ValueError`` when it is not an FDL document."""
    data = xml.encode("utf-8") if isinstance(xml, str) else xml
    try:
        root = etree.fromstring(
            data, parser=etree.XMLParser(resolve_entities=False, no_network=True)
        )
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"not a feature definition: {exc}") from None
    if etree.QName(root).localname != "Feature":
        raise ValueError("not a feature definition: the root element is not <Feature>")
    defs = {
        _text(d, "s:Identifier"): d.xpath("s:DataType", namespaces=NS)[0]
        for d in root.xpath("s:DataTypeDefinition", namespaces=NS)
    }
    commands = {}
    for c in root.xpath("s:Command", namespaces=NS):
        ident = _text(c, "s:Identifier")
        commands[ident] = CommandInfo(
            ident,
            _text(c, "s:DisplayName"),
            _text(c, "s:Description"),
            _text(c, "s:Observable") == "Yes",
            _elements(c, "Parameter", defs),
            _elements(c, "Response", defs),
            _elements(c, "IntermediateResponse", defs),
            [
                str(e)
                for e in c.xpath("s:DefinedExecutionErrors/s:Identifier/text()", namespaces=NS)
            ],
        )
    properties = {}
    for p in root.xpath("s:Property", namespaces=NS):
        ident = _text(p, "s:Identifier")
        properties[ident] = PropertyInfo(
            ident,
            _text(p, "s:DisplayName"),
            _text(p, "s:Description"),
            _text(p, "s:Observable") == "Yes",
            _type(p.xpath("s:DataType", namespaces=NS)[0], defs),
            [
                str(e)
                for e in p.xpath("s:DefinedExecutionErrors/s:Identifier/text()", namespaces=NS)
            ],
        )
    errors = {
        _text(e, "s:Identifier"): _text(e, "s:Description")
        for e in root.xpath("s:DefinedExecutionError", namespaces=NS)
    }
    return FeatureInfo(
        _text(root, "s:Identifier"),
        _text(root, "s:DisplayName"),
        _text(root, "s:Description"),
        root.get("Originator", ""),
        root.get("Category", "none"),
        root.get("FeatureVersion", "1.0"),
        commands,
        properties,
        errors,
    )
