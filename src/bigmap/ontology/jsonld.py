"""JSON-LD forms of bigmap's objects, with EMMO / BattINFO IRIs.

Every function takes the object as the native API returns it (a dict: ``RequestOut``,
``ResultOut``, ``CampaignOut``, ``CapabilityOut``, ``TenantOut`` dumped to JSON, or a FINALES
chemical / formulation / cell document) and returns a ``JsonLd``: the document (with its
``@context`` inline, so it needs no network) and a ``MappingReport`` of every term that was
mapped to an IRI and every term that has none (reported, never invented).

The pattern is BattINFO's (EMMO's quantity pattern)::

    <result> hasProperty [ a ElectrolyticConductivity, MeasuredProperty ;
                           hasNumericalPart [ a RealData ; hasNumberValue 0.91 ] ;
                           hasMeasurementUnit <unit> ] .

Provenance uses W3C PROV-O, catalogue terms DCAT and schema.org, checksums SPDX. Nothing is
lost: the full data and parameters ride along as JSON literals (``bigmap:data``,
``bigmap:parameters``), the mapped quantities are the semantic view of them.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from bigmap.ontology.vocab import (
    BIGMAP,
    GENERIC_KEYS,
    PREFIXES,
    MappingReport,
    Term,
    vocabulary,
)
from bigmap.schemas.common import canonical_json
from bigmap.schemas.units import subschema, unit_for, unit_from_text

MAX_SERIES = 64  # arrays longer than this stay in the JSON literal only

MEASURED_KINDS = frozenset({"instrument"})
_ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass
class JsonLd:
    document: dict[str, Any]
    report: MappingReport = field(default_factory=MappingReport)

    def document_node(self) -> dict[str, Any]:
        """The document without its context (to nest it in another)."""
        return {k: v for k, v in self.document.items() if k != "@context"}


# ----------------------------------------------------------------------------- context


def context() -> dict[str, Any]:
    """The JSON-LD context: prefixes, EMMO labels as terms, and the relations used."""
    return dict(_context())


@lru_cache(maxsize=1)
def _context() -> dict[str, Any]:
    v = vocabulary()
    ctx: dict[str, Any] = {"@version": 1.1, **PREFIXES}
    for label, iri in sorted(v.labels.items()):
        ctx[label] = {"@id": iri, "@type": "@id"} if label[:1].islower() else iri
    ctx.update(
        {
            "hasProperty": {"@id": v.iri("hasProperty"), "@container": "@set"},
            "hasNumericalPart": {"@id": v.iri("hasNumericalPart")},
            "hasNumberValue": {"@id": v.iri("hasNumberValue")},
            "hasMeasurementUnit": {"@id": v.iri("hasMeasurementUnit"), "@type": "@id"},
            "hasMeasurementParameter": {"@id": v.iri("hasMeasurementParameter")},
            "hasSolvent": {"@id": v.iri("hasSolvent")},
            "hasSolute": {"@id": v.iri("hasSolute")},
            "hasConstituent": {"@id": v.iri("hasConstituent")},
            "hasTestObject": {"@id": v.iri("hasTestObject"), "@type": "@id"},
            "bigmap:data": {"@type": "@json"},
            "bigmap:parameters": {"@type": "@json"},
            "bigmap:spec": {"@type": "@json"},
            "bigmap:summary": {"@type": "@json"},
            "bigmap:eventData": {"@type": "@json"},
            "bigmap:hyperparameters": {"@type": "@json"},
            "bigmap:limitations": {"@type": "@json"},
            "bigmap:parameterSchema": {"@type": "@json"},
            "bigmap:resultSchema": {"@type": "@json"},
            "bigmap:statusInfo": {"@type": "@json"},
            "bigmap:provenance": {"@type": "@json"},
            "bigmap:extra": {"@type": "@json"},
            "dcterms:created": {"@type": "xsd:dateTime"},
            "dcterms:modified": {"@type": "xsd:dateTime"},
            "bigmap:embargoUntil": {"@type": "xsd:dateTime"},
            "prov:startedAtTime": {"@type": "xsd:dateTime"},
            "prov:endedAtTime": {"@type": "xsd:dateTime"},
            "prov:generatedAtTime": {"@type": "xsd:dateTime"},
            "dcat:byteSize": {"@type": "xsd:nonNegativeInteger"},
            "dcat:downloadURL": {"@type": "@id"},
            "schema:contentUrl": {"@type": "@id"},
            "dcterms:license": {"@type": "@id"},
        }
    )
    return ctx


def _es_number(x: float) -> str:
    """A number as ECMAScript writes it (RFC 8785, section 3.2.2.3): Python's shortest
    round-trip digits, placed by ECMAScript's rules."""
    from decimal import Decimal

    if x == 0:
        return "0"
    if not math.isfinite(x):
        raise ValueError("NaN and Infinity are not JSON")
    sign = "-" if x < 0 else ""
    t = Decimal(repr(abs(x))).normalize().as_tuple()
    digits = "".join(map(str, t.digits))
    k, n = len(digits), t.exponent + len(digits)  # type: ignore[operator]
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        text = digits[0] + ("." + digits[1:] if k > 1 else "") + ("e+" if e > 0 else "e-")
        text += str(abs(e))
    return sign + text


def jcs(value: Any) -> str:
    """The JSON Canonicalization Scheme (RFC 8785) text of a JSON value: the lexical form
    JSON-LD 1.1 gives an ``rdf:JSON`` literal (section 8.6 of the JSON-LD 1.1 API)."""
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: str(kv[0]).encode("utf-16-be"))
        return "{" + ",".join(f"{jcs(str(k))}:{jcs(v)}" for k, v in items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(jcs(v) for v in value) + "]"
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int):
        return str(value) if abs(value) < 10**21 else _es_number(float(value))
    if isinstance(value, float):
        return _es_number(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def _doc(node: dict[str, Any] | list[dict[str, Any]], base: str | None = None) -> dict[str, Any]:
    ctx = context() if base is None else {**context(), "@base": base}
    if isinstance(node, list):
        return {"@context": ctx, "@graph": node}
    return {"@context": ctx, **node}


def resolve(base: str, ref: str) -> str:
    """A relative reference resolved against an absolute base IRI (RFC 3986, section 5.2;
    for any scheme, which ``urllib.parse.urljoin`` does not do)."""
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*:)(//[^/?#]*)?([^?#]*)(\?[^#]*)?(#.*)?$", base)
    if not m or _ABSOLUTE.match(ref):
        return ref
    scheme, authority, path, query = m.group(1), m.group(2) or "", m.group(3), m.group(4) or ""
    if ref.startswith("//"):
        return scheme + ref
    if ref.startswith("#") or ref == "":
        return scheme + authority + path + query + ref
    if ref.startswith("?"):
        return scheme + authority + path + ref
    rest = re.match(r"^([^?#]*)(.*)$", ref)
    rpath, tail = rest.group(1), rest.group(2)  # type: ignore[union-attr]
    if not rpath.startswith("/"):
        rpath = (path[: path.rfind("/") + 1] if "/" in path else "/") + rpath
    out: list[str] = []
    for seg in rpath.split("/")[1:]:
        if seg == "..":
            if out:
                out.pop()
        elif seg != ".":
            out.append(seg)
    last = rpath.rsplit("/", 1)[-1]
    joined = "/" + "/".join(out) + ("/" if last in (".", "..") else "")
    return scheme + authority + joined + tail


def package_base(campaign_id: Any) -> str:
    """The base IRI of an archive package (the Archive and Package URI scheme, arcp,
    https://datatracker.ietf.org/doc/draft-soilandreyes-arcp/, as RO-Crate uses it): paths
    inside the package resolve against it, wherever the package is unpacked."""
    return f"arcp://uuid,{campaign_id}/"


def uri(object_id: Any) -> str:
    return f"urn:uuid:{object_id}"


def user_uri(name: str) -> str:
    return f"urn:bigmap:user:{re.sub(r'[^A-Za-z0-9_.@-]', '_', name)}"


def software_uri(sw: dict[str, Any]) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", str(sw.get("name", "unknown")))
    version = re.sub(r"[^A-Za-z0-9_.+-]", "_", str(sw.get("version", "unknown")))
    return f"urn:bigmap:software:{name}@{version}"


def inchikey_uri(key: str) -> str:
    return f"https://identifiers.org/inchikey:{key}"


def checksum(sha256: str) -> dict[str, Any]:
    return {
        "@type": "spdx:Checksum",
        "spdx:algorithm": {"@id": "spdx:checksumAlgorithm_sha256"},
        "spdx:checksumValue": sha256,
    }


def _dt(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else value.isoformat()


def _access(obj: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "bigmap:accessRights": obj.get("access", "public"),
        "dcterms:accessRights": obj.get("access", "public"),
    }
    if obj.get("access_groups"):
        out["bigmap:accessGroup"] = list(obj["access_groups"])
    if obj.get("embargo_until"):
        out["bigmap:embargoUntil"] = _dt(obj["embargo_until"])
    if obj.get("findable"):
        out["bigmap:findable"] = True
    return out


def _clean(node: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in node.items() if v is not None and v != [] and v != {}}


# ----------------------------------------------------------------------------- units


# the unit of a number of a result: the capability's units, or its schema (bigmap.schemas.units)
_unit_from_text = unit_from_text
_subschema = subschema
_unit_for = unit_for


# ----------------------------------------------------------------------------- quantities


def _quantity_node(
    term: Term,
    value: float,
    unit_text: str | None,
    path: str,
    report: MappingReport,
    *,
    measured: bool,
    name: str,
    index: int | None = None,
    uncertainty: float | None = None,
) -> dict[str, Any]:
    v = vocabulary()
    types = [term.label] + (["MeasuredProperty"] if measured else [])
    node: dict[str, Any] = {
        "@type": types,
        "rdfs:label": name,
        "bigmap:path": path,
        "hasNumericalPart": {"@type": "RealData", "hasNumberValue": value},
    }
    if index is not None:
        node["bigmap:index"] = index
    if uncertainty is not None:
        node["bigmap:standardUncertainty"] = uncertainty
    if unit_text is None:
        report.missing(path, name, "unit-not-given")
    else:
        node["bigmap:unitText"] = unit_text
        unit = v.unit_term(unit_text)
        if unit is None:
            report.missing(path, unit_text, "unit")
        else:
            node["hasMeasurementUnit"] = unit.iri
            report.ok(path, unit_text, unit)
    return node


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def is_chemical(x: Any) -> bool:
    return isinstance(x, dict) and ("InChIKey" in x or "SMILES" in x)


def is_formulation(x: Any) -> bool:
    return (
        isinstance(x, list)
        and bool(x)
        and all(isinstance(c, dict) and "chemical" in c and "fraction" in c for c in x)
    )


def is_cell(x: Any) -> bool:
    return isinstance(x, dict) and ("battery_chemistry" in x or "cell_format" in x)


@dataclass
class _Walk:
    units: dict[str, str]
    schema: dict[str, Any] | None
    report: MappingReport
    measured: bool
    prefix: str
    quantities: list[dict[str, Any]] = field(default_factory=list)
    related: list[dict[str, Any]] = field(default_factory=list)  # chemicals, formulations, cells

    def walk(self, doc: Any, path: list[str | int], parent_key: str | None = None) -> None:
        if isinstance(doc, dict):
            if is_chemical(doc):
                self.related.append(chemical_jsonld(doc).document_node())
                return
            if is_cell(doc):
                out = cell_jsonld(doc)
                self.report.merge(out.report)
                self.related.append(out.document_node())
                return
            skip: set[str] = set()
            info = doc.get("cell_info")
            if is_cell(doc.get("cell")) or (
                isinstance(info, dict) and ("cell_name" in info or "uuid" in info)
            ):
                # a cell (FINALES cell_assembly) and/or its cell_info (capacity/cycling)
                cell = doc.get("cell") if is_cell(doc.get("cell")) else {}
                out = cell_jsonld(cell, info if isinstance(info, dict) else None)
                self.report.merge(out.report)
                self.related.append(out.document_node())
                skip = {"cell", "cell_info"} if cell else {"cell_info"}
            for key, value in doc.items():
                if key not in skip:
                    self.leaf_or_walk(key, value, doc, [*path, key])
        elif isinstance(doc, list):
            for i, item in enumerate(doc):
                if isinstance(item, dict | list):
                    self.walk(item, [*path, i], parent_key)

    def leaf_or_walk(self, key: str, value: Any, parent: dict[str, Any], path: list[Any]) -> None:
        dotted = self.prefix + ".".join(str(p) for p in path)
        if is_formulation(value):
            out = formulation_jsonld(value)
            self.report.merge(out.report)
            self.related.append(out.document_node())
            return
        numbers = None
        if _is_number(value):
            numbers = [value]
        elif isinstance(value, list) and value and all(_is_number(x) for x in value):
            if len(value) > MAX_SERIES:
                return  # a long series: kept in the JSON literal
            numbers = list(value)
        if numbers is None:
            if isinstance(value, dict | list):
                self.walk(value, path, key)
            return
        if key in ("unit", "units", "rating", "index", "seed", "step"):
            return
        named = key
        if key in GENERIC_KEYS and len(path) >= 2 and isinstance(path[-2], str):
            named = path[-2]
        term = vocabulary().property_term(named)
        if term is None:
            self.report.missing(dotted, named, "property")
            return
        self.report.ok(dotted, named, term)
        unit = _unit_for(path, key, parent, self.units, self.schema)
        sub = _subschema(self.schema, path) or {}
        if (
            len(numbers) == 2
            and len(sub.get("prefixItems") or []) == 2
            and "uncertainty" in str(sub.get("description", "")).lower()
        ):
            # FINALES writes [value, uncertainty] pairs (chemicals_info.molar_mass, density)
            self.quantities.append(
                _quantity_node(
                    term,
                    float(numbers[0]),
                    unit,
                    dotted,
                    self.report,
                    measured=self.measured,
                    name=named,
                    uncertainty=float(numbers[1]),
                )
            )
            return
        single = len(numbers) == 1 and _is_number(value)
        for i, x in enumerate(numbers):
            self.quantities.append(
                _quantity_node(
                    term,
                    float(x),
                    unit,
                    dotted if single else f"{dotted}[{i}]",
                    self.report if i == 0 else MappingReport(),
                    measured=self.measured,
                    name=named,
                    index=None if single else i,
                )
            )


# ----------------------------------------------------------------------------- chemistry


def chemical_jsonld(chem: dict[str, Any]) -> JsonLd:
    """A chemical (FINALES ``{SMILES, InChIKey}``): typed by its EMMO class when bigmap knows
    it (by InChIKey, as FINALES matches chemicals)."""
    from bigmap.schemas import formulation as fm

    report = MappingReport()
    v = vocabulary()
    key = chem.get("InChIKey")
    node: dict[str, Any] = {
        "@id": inchikey_uri(key) if key else None,
        "@type": ["schema:MolecularEntity"],
        "schema:inChIKey": key,
        "schema:smiles": chem.get("SMILES"),
    }
    try:
        short = fm.identify(chem)
    except ValueError:
        short = None
    name = chem.get("name") or (fm.CHEMICALS[short]["name"] if short else None)
    node["schema:name"] = name
    term = v.material_term(short) if short else None
    if term is None and name:
        term = v.material_term(name)
    if term is not None:
        node["@type"].append(term.label)
        report.ok("chemical", short or name or "", term)
        if short:
            node["schema:molecularWeight"] = _clean(
                {
                    "@id": f"{node['@id']}#molar-mass" if node.get("@id") else None,
                    "@type": "schema:QuantitativeValue",
                    "schema:value": fm.CHEMICALS[short]["molar_mass"],
                    "schema:unitText": "kg/mol",
                }
            )
    else:
        report.missing("chemical", short or name or key or chem.get("SMILES") or "?", "chemical")
    return JsonLd(_doc(_clean(node)), report)


def formulation_id(components: list[dict[str, Any]]) -> str:
    return "urn:bigmap:formulation:" + hashlib.sha256(canonical_json(components)).hexdigest()[:32]


def formulation_jsonld(components: list[dict[str, Any]]) -> JsonLd:
    """An electrolyte formulation (FINALES list of ``{chemical, fraction, fraction_type}``)
    as an EMMO ``ElectrolyteSolution`` with its solvents and solutes, each constituent's
    amount fraction as given and, where every chemical is known, its mass fraction."""
    from bigmap.schemas import formulation as fm

    report = MappingReport()
    v = vocabulary()
    try:
        w = fm.mass_fractions(components)
    except ValueError:
        w = {}
    constituents = []
    solutes, solvents = [], []
    fid = formulation_id(components)
    for i, comp in enumerate(components):
        chem = chemical_jsonld(comp.get("chemical", {}))
        report.merge(chem.report)
        cnode = chem.document_node()
        try:
            short = fm.identify(comp.get("chemical", {}))
        except ValueError:
            short = None
        entry: dict[str, Any] = {
            # sub-nodes of an identified node get identifiers too: emitted again (by every
            # result on the same formulation) they merge instead of piling up
            "@id": f"{fid}#c{i}",
            "@type": ["bigmap:Constituent"],
            "schema:item": cnode,
            "bigmap:fraction": comp.get("fraction"),
            "bigmap:fractionType": comp.get("fraction_type"),
        }
        report.missing(
            f"formulation[{i}].fraction", f"fraction ({comp.get('fraction_type')})", "property"
        )
        if short and short in w:
            mf = v.term("MassFraction")
            unit_one = v.unit_term("count")
            entry["hasProperty"] = [
                {
                    "@id": f"{fid}#c{i}-mass-fraction",
                    "@type": [mf.label],
                    "rdfs:label": "mass_fraction",
                    "bigmap:derived": "from the molar fractions and IUPAC molar masses",
                    "hasNumericalPart": {
                        "@id": f"{fid}#c{i}-mass-fraction-value",
                        "@type": "RealData",
                        "hasNumberValue": w[short],
                    },
                }
            ]
            if unit_one is not None:
                entry["hasProperty"][0]["hasMeasurementUnit"] = unit_one.iri
        constituents.append(_clean(entry))
        (solutes if short in fm.SALTS else solvents).append({"@id": cnode.get("@id")})
    node = {
        "@id": fid,
        "@type": ["ElectrolyteSolution", "bigmap:Formulation"],
        "hasConstituent": [c["schema:item"] for c in constituents],
        "bigmap:constituent": constituents,
        "hasSolvent": [s for s in solvents if s.get("@id")],
        "hasSolute": [s for s in solutes if s.get("@id")],
    }
    report.ok("formulation", "ElectrolyteSolution", v.term("ElectrolyteSolution"))
    return JsonLd(_doc(_clean(node)), report)


def cell_jsonld(cell: dict[str, Any], cell_info: dict[str, Any] | None = None) -> JsonLd:
    """A cell (FINALES ``cell`` of ``cell_assembly``, optionally with its ``cell_info``):
    ``BatteryCell`` with the classes of its format or IEC code, electrodes, electrolyte and
    separator."""
    report = MappingReport()
    v = vocabulary()
    info = cell_info or cell.get("cell_info") or {}
    types: list[str] = []
    for section, key in (
        ("iec_code", info.get("cell_name") or cell.get("iec_code")),
        ("format", cell.get("cell_format") or cell.get("format")),
        ("chemistry", cell.get("chemistry")),
    ):
        if key:
            terms = v.cell_types(section, str(key))
            if terms:
                for t in terms:
                    report.ok(f"cell.{section}", str(key), t)
                    types.append(t.label)
            else:
                report.missing(f"cell.{section}", str(key), "cell-type")
    if "BatteryCell" not in types:
        types.insert(0, "BatteryCell")
    ident = info.get("uuid")
    if _is_uuid(ident):
        cell_id: str | None = uri(ident)
    elif ident:
        cell_id = "urn:bigmap:cell:" + re.sub(r"[^A-Za-z0-9_.-]", "_", str(ident))
    else:
        cell_id = None
    node: dict[str, Any] = {
        "@id": cell_id,
        "@type": types,
        "schema:name": info.get("cell_name"),
        "schema:identifier": info.get("uuid"),
    }
    chem = cell.get("battery_chemistry") or {}
    if is_formulation(chem.get("electrolyte")):
        el = formulation_jsonld(chem["electrolyte"])
        report.merge(el.report)
        node["hasElectrolyte"] = el.document_node()
    for part, rel in (("cathode", "hasPositiveElectrode"), ("anode", "hasNegativeElectrode")):
        electrode = chem.get(part)
        if not isinstance(electrode, dict):
            continue
        enode: dict[str, Any] = {"@type": ["Electrode"], "rdfs:label": part}
        walk = _Walk({}, None, report, measured=False, prefix=f"cell.{part}.")
        for key in ("mass_loading", "size", "thickness", "porosity"):
            if key in electrode:
                walk.leaf_or_walk(key, electrode[key], electrode, [key])
        if walk.quantities:
            enode["hasProperty"] = walk.quantities
        mats = []
        for comp in electrode.get("material", []) or []:
            if isinstance(comp, dict) and is_chemical(comp.get("chemical")):
                mats.append(chemical_jsonld(comp["chemical"]).document_node())
        if mats:
            enode["hasConstituent"] = mats
        node[rel] = _clean(enode)
    sep = cell.get("separator")
    if isinstance(sep, dict):
        node["hasSeparator"] = _clean(
            {"@type": ["Separator"], "schema:material": sep.get("material")}
        )
    walk = _Walk({}, None, report, measured=False, prefix="cell.")
    for key, value in cell.items():
        if key in ("battery_chemistry", "separator", "cell_info"):
            continue
        walk.leaf_or_walk(key, value, cell, [key])
    if walk.quantities:
        node["hasProperty"] = walk.quantities
    return JsonLd(_doc(_clean(node)), report)


def _is_uuid(x: Any) -> bool:
    import uuid

    try:
        uuid.UUID(str(x))
        return True
    except ValueError:
        return False


# ----------------------------------------------------------------------------- catalogue


def capability_jsonld(cap: dict[str, Any]) -> JsonLd:
    """A capability: the quantity's EMMO class, its units as EMMO units, its schemas."""
    report = MappingReport()
    v = vocabulary()
    term = None
    if cap.get("iri"):
        term = Term(cap["quantity"], cap["iri"], "capability:iri")
    else:
        term = v.quantity_term(cap["quantity"])
    node: dict[str, Any] = {
        "@id": uri(cap["id"]) if cap.get("id") else capability_uri(cap),
        "@type": ["bigmap:Capability", "prov:Plan"],
        "schema:name": f"{cap['quantity']}/{cap['method']}",
        "bigmap:quantityName": cap["quantity"],
        "bigmap:method": cap["method"],
        "schema:description": cap.get("description") or None,
        "bigmap:cost": cap.get("cost"),
        "bigmap:fidelity": cap.get("fidelity"),
        "bigmap:parameterSchema": cap.get("parameter_schema"),
        "bigmap:resultSchema": cap.get("result_schema"),
    }
    if term is not None:
        node["bigmap:quantityKind"] = {"@id": term.iri}
        report.ok("quantity", cap["quantity"], term)
    else:
        report.missing("quantity", cap["quantity"], "quantity")
    report.missing("method", cap["method"], "method")
    units = []
    for fname, unit_text in sorted((cap.get("units") or {}).items()):
        unit = v.unit_term(unit_text)
        entry: dict[str, Any] = {"rdfs:label": fname, "bigmap:unitText": unit_text}
        if unit is None:
            report.missing(f"units.{fname}", unit_text, "unit")
        else:
            report.ok(f"units.{fname}", unit_text, unit)
            entry["hasMeasurementUnit"] = unit.iri
        units.append(entry)
    node["bigmap:fieldUnit"] = units
    node["bigmap:unmappedTerm"] = report.unmapped_terms()
    return JsonLd(_doc(_clean(node)), report)


def capability_uri(cap: dict[str, Any]) -> str:
    return f"urn:bigmap:capability:{cap['quantity']}/{cap['method']}"


def tenant_jsonld(tenant: dict[str, Any]) -> JsonLd:
    report = MappingReport()
    kind = tenant.get("kind", "simulation")
    types = ["prov:Agent", "bigmap:Tenant"]
    if kind == "instrument":
        types.append("MeasuringInstrument")
        report.ok("kind", kind, vocabulary().term("MeasuringInstrument"))
    else:
        types.append("prov:SoftwareAgent")
    node: dict[str, Any] = {
        "@id": uri(tenant["id"]),
        "@type": types,
        "schema:name": tenant.get("name"),
        "bigmap:kind": kind,
        "schema:description": tenant.get("description") or None,
        "bigmap:contactPerson": tenant.get("contact_person") or None,
        "prov:actedOnBehalfOf": {"@id": user_uri(tenant["owner"])} if tenant.get("owner") else None,
        "bigmap:provides": [
            {"@id": capability_uri(p), "bigmap:limitations": p.get("limitations")}
            for p in tenant.get("provides", [])
        ],
    }
    if tenant.get("software"):
        node["bigmap:software"] = software_node(tenant["software"])
    return JsonLd(_doc(_clean(node)), report)


def software_node(sw: dict[str, Any]) -> dict[str, Any]:
    extra = {k: v for k, v in sw.items() if k not in ("name", "version")}
    return _clean(
        {
            "@id": software_uri(sw),
            "@type": ["prov:SoftwareAgent", "schema:SoftwareApplication"],
            "schema:name": sw.get("name"),
            "schema:softwareVersion": sw.get("version"),
            "bigmap:extra": extra or None,
        }
    )


def user_node(name: str) -> dict[str, Any]:
    return {"@id": user_uri(name), "@type": ["prov:Agent"], "schema:name": name}


# ----------------------------------------------------------------------------- requests, results


def request_jsonld(
    req: dict[str, Any],
    *,
    capabilities: dict[tuple[str, str], dict[str, Any]] | None = None,
    tenant_kind: str | None = None,
) -> JsonLd:
    """A request as a PROV activity: what was asked (quantity, methods, parameters as EMMO
    measurement parameters, the formulation / cell it is about), by whom, its state."""
    report = MappingReport()
    v = vocabulary()
    capabilities = capabilities or {}
    qterm = None
    for m in req["methods"]:
        cap = capabilities.get((req["quantity"], m))
        if cap and cap.get("iri"):
            qterm = Term(req["quantity"], cap["iri"], "capability:iri")
    qterm = qterm or v.quantity_term(req["quantity"])
    node: dict[str, Any] = {
        "@id": uri(req["id"]),
        "@type": ["prov:Activity", "bigmap:Request"],
        "schema:name": f"{req['quantity']} by {', '.join(req['methods'])}",
        "bigmap:quantityName": req["quantity"],
        "bigmap:method": list(req["methods"]),
        "bigmap:capability": [
            {"@id": capability_uri({"quantity": req["quantity"], "method": m})}
            for m in req["methods"]
        ],
        "bigmap:status": req.get("status"),
        "dcterms:created": _dt(req.get("created_at")),
        "dcterms:modified": _dt(req.get("updated_at")),
        "bigmap:priority": req.get("priority"),
        "bigmap:requestedBy": {"@id": uri(req["tenant_id"])} if req.get("tenant_id") else None,
        "prov:wasAssociatedWith": {"@id": uri(req["claimed_by"])}
        if req.get("claimed_by")
        else None,
        "bigmap:subRequestOf": {"@id": uri(req["parent_id"])} if req.get("parent_id") else None,
        "bigmap:campaign": {"@id": uri(req["campaign_id"])} if req.get("campaign_id") else None,
        "bigmap:result": {"@id": uri(req["result_id"])} if req.get("result_id") else None,
        "bigmap:parameters": req.get("parameters"),
        **_access(req),
    }
    if qterm is not None:
        node["bigmap:quantityKind"] = {"@id": qterm.iri}
        report.ok("quantity", req["quantity"], qterm)
    else:
        report.missing("quantity", req["quantity"], "quantity")
    params_nodes: list[dict[str, Any]] = []
    used: list[dict[str, Any]] = []
    for method, params in (req.get("parameters") or {}).items():
        cap = capabilities.get((req["quantity"], method), {})
        walk = _Walk(
            cap.get("units") or {},
            cap.get("parameter_schema"),
            report,
            measured=False,
            prefix=f"parameters.{method}.",
        )
        walk.walk(params, [])
        params_nodes.extend(walk.quantities)
        used.extend(walk.related)
    if params_nodes:
        node["hasMeasurementParameter"] = params_nodes
    if used:
        node["prov:used"] = used
        cells = [u for u in used if "BatteryCell" in u.get("@type", [])]
        from bigmap.ontology.metadata import data_types_for

        tests = {"cycling", "impedance"} & set(data_types_for(req["quantity"], req["methods"][0]))
        if cells and tests and tenant_kind == "instrument" and cells[0].get("@id"):
            # a measurement on a cell: an EMMO battery test of that cell
            node["@type"].append("BatteryTest")
            node["hasTestObject"] = cells[0]["@id"]
            if req.get("result_id"):
                node["prov:generated"] = {"@id": uri(req["result_id"])}
    node["bigmap:unmappedTerm"] = report.unmapped_terms()
    return JsonLd(_doc(_clean(node)), report)


def file_node(f: dict[str, Any], *, base_url: str | None = None, path: str | None = None) -> dict:
    """A raw data file: a PROV entity, a DCAT distribution with its checksum."""
    # where to get it: the broker's file path, the package path, else its identifier
    url = path or (f"{base_url.rstrip('/')}/api/v1/files/{f['id']}" if base_url else uri(f["id"]))
    return _clean(
        {
            "@id": uri(f["id"]),
            "@type": ["prov:Entity", "dcat:Distribution", "schema:MediaObject", "bigmap:RawFile"],
            "schema:name": f.get("name"),
            "dcat:mediaType": f.get("media_type"),
            "schema:encodingFormat": f.get("media_type"),
            "dcat:byteSize": f.get("size"),
            "bigmap:sha256": f.get("sha256"),
            "spdx:checksum": checksum(f["sha256"]) if f.get("sha256") else None,
            "dcat:downloadURL": url,
            "schema:contentUrl": url,
            "dcterms:created": _dt(f.get("created_at")),
        }
    )


def result_jsonld(
    res: dict[str, Any],
    *,
    capability: dict[str, Any] | None = None,
    tenant: dict[str, Any] | None = None,
    base_url: str | None = None,
    data_path: str | None = None,
    file_paths: dict[str, str] | None = None,
    license: str | None = None,
) -> JsonLd:
    """A result: a PROV entity generated by its request, a DCAT dataset whose
    distributions are its JSON document and its raw files, with the EMMO quantities of its
    data (``hasProperty``)."""
    report = MappingReport()
    cap = capability or {}
    kind = (tenant or {}).get("kind") or ((res.get("provenance") or {}).get("tenant") or {}).get(
        "kind"
    )
    walk = _Walk(
        cap.get("units") or {},
        cap.get("result_schema"),
        report,
        measured=kind in MEASURED_KINDS,
        prefix="data.",
    )
    walk.walk(res.get("data") or {}, [])
    pwalk = _Walk(cap.get("units") or {}, cap.get("parameter_schema"), report, False, "parameters.")
    pwalk.walk(res.get("parameters") or {}, [])
    files = res.get("files") or []
    self_url = data_path or (
        f"{base_url.rstrip('/')}/api/v1/results/{res['id']}" if base_url else None
    )
    json_dist = _clean(
        {
            "@id": f"{uri(res['id'])}#json",
            "@type": ["dcat:Distribution", "schema:DataDownload"],
            "dcat:downloadURL": self_url or f"{uri(res['id'])}#json",
            "schema:contentUrl": self_url,
            "dcat:mediaType": "application/json",
            "schema:encodingFormat": "application/json",
            "bigmap:sha256": res.get("sha256"),
            "spdx:checksum": checksum(res["sha256"]) if res.get("sha256") else None,
            "bigmap:checksumOf": "the canonical JSON of data (RFC 8785-like)",
        }
    )
    fnodes = [
        file_node(f, base_url=base_url, path=(file_paths or {}).get(str(f["id"]))) for f in files
    ]
    sw = res.get("software")
    prov = res.get("provenance") or {}
    node: dict[str, Any] = {
        "@id": uri(res["id"]),
        "@type": ["prov:Entity", "dcat:Dataset", "schema:Dataset", "bigmap:Result"],
        "schema:name": f"{res['quantity']}/{res['method']} result",
        "bigmap:quantityName": res["quantity"],
        "bigmap:method": res["method"],
        "bigmap:capability": {"@id": capability_uri(res)},
        "bigmap:status": res.get("status"),
        "dcterms:created": _dt(res.get("created_at")),
        "prov:generatedAtTime": _dt(res.get("created_at")),
        "prov:wasGeneratedBy": {"@id": uri(res["request_id"])},
        "prov:wasAttributedTo": [
            x
            for x in (
                {"@id": uri(res["tenant_id"])} if res.get("tenant_id") else None,
                {"@id": software_uri(sw)} if sw else None,
            )
            if x
        ],
        "prov:wasRevisionOf": {"@id": uri(res["amends"])} if res.get("amends") else None,
        "prov:wasDerivedFrom": [{"@id": f["@id"]} for f in fnodes],
        "bigmap:sha256": res.get("sha256"),
        "spdx:checksum": checksum(res["sha256"]) if res.get("sha256") else None,
        "hasProperty": walk.quantities,
        "hasMeasurementParameter": pwalk.quantities,
        "prov:used": walk.related + pwalk.related,
        "bigmap:data": res.get("data"),
        "bigmap:parameters": res.get("parameters"),
        "bigmap:provenance": prov or None,
        "bigmap:emulated": prov.get("emulated") if isinstance(prov.get("emulated"), bool) else None,
        "dcat:distribution": [json_dist, *fnodes],
        "schema:distribution": [{"@id": json_dist["@id"]}, *({"@id": f["@id"]} for f in fnodes)],
        "dcterms:license": license,
        **_access(res),
    }
    node["bigmap:unmappedTerm"] = report.unmapped_terms()
    return JsonLd(_doc(_clean(node)), report)


# ----------------------------------------------------------------------------- campaigns


def event_node(ev: dict[str, Any], campaign: dict[str, Any]) -> dict[str, Any]:
    """A campaign step: proposals and decisions are PROV activities of the planner, model
    states PROV entities derived from the results they were trained on."""
    data = ev.get("data") or {}
    kind = ev.get("kind")
    node: dict[str, Any] = {
        "@id": uri(ev["id"]),
        "@type": ["bigmap:CampaignEvent"],
        "bigmap:eventKind": kind,
        "bigmap:seq": ev.get("seq"),
        "bigmap:step": data.get("step") if isinstance(data.get("step"), int) else None,
        "dcterms:isPartOf": {"@id": uri(campaign["id"])},
        "dcterms:created": _dt(ev.get("created_at")),
        "bigmap:eventData": data,
    }
    planner = {"@id": uri(campaign["tenant_id"])} if campaign.get("tenant_id") else None
    if kind == "model_state":
        node["@type"] += ["prov:Entity", "bigmap:ModelState"]
        node["bigmap:model"] = data.get("model")
        node["bigmap:hyperparameters"] = data.get("hyperparameters")
        node["prov:wasAttributedTo"] = planner
        node["prov:wasDerivedFrom"] = [
            {"@id": uri(r)} for r in data.get("training_result_ids") or [] if _is_uuid(r)
        ]
    else:
        node["@type"] += ["prov:Activity"]
        node["prov:wasAssociatedWith"] = planner
        if kind == "proposal":
            node["@type"].append("bigmap:PlannerStep")
            node["bigmap:strategy"] = data.get("strategy")
        node["prov:startedAtTime"] = _dt(ev.get("created_at"))
        node["bigmap:proposed"] = [{"@id": uri(r)} for r in ev.get("request_ids") or []]
    return _clean(node)


def campaign_jsonld(
    campaign: dict[str, Any],
    *,
    events: list[dict[str, Any]] = (),  # type: ignore[assignment]
    requests: list[dict[str, Any]] = (),  # type: ignore[assignment]
    results: list[dict[str, Any]] = (),  # type: ignore[assignment]
    tenants: list[dict[str, Any]] = (),  # type: ignore[assignment]
    capabilities: list[dict[str, Any]] = (),  # type: ignore[assignment]
    base_url: str | None = None,
    license: str | None = None,
    creators: list[dict[str, Any]] | None = None,
    data_paths: dict[str, str] | None = None,
    file_paths: dict[str, str] | None = None,
) -> JsonLd:
    """A whole campaign as one graph: the campaign (a PROV activity of its planner), a DCAT
    catalogue of its results, every step, request, result, raw file, tenant and
    capability. Pass only what the reader may see."""
    report = MappingReport()
    caps = {(c["quantity"], c["method"]): c for c in capabilities}
    tenant_kinds = {str(t["id"]): t.get("kind") for t in tenants}
    graph: list[dict[str, Any]] = []
    cnode = {
        "@id": uri(campaign["id"]),
        "@type": ["prov:Activity", "bigmap:Campaign"],
        "schema:name": campaign.get("name"),
        "bigmap:status": campaign.get("status"),
        "bigmap:control": campaign.get("control"),
        "prov:wasAssociatedWith": {"@id": uri(campaign["tenant_id"])}
        if campaign.get("tenant_id")
        else None,
        "bigmap:owner": {"@id": user_uri(campaign["owner"])} if campaign.get("owner") else None,
        "dcterms:created": _dt(campaign.get("created_at")),
        "dcterms:modified": _dt(campaign.get("updated_at")),
        "prov:startedAtTime": _dt(campaign.get("created_at")),
        "bigmap:spec": campaign.get("spec"),
        "bigmap:summary": campaign.get("summary"),
        **_access(campaign),
    }
    graph.append(_clean(cnode))
    result_ids = [uri(r["id"]) for r in results]
    catalog = {
        "@id": f"{uri(campaign['id'])}#catalog",
        "@type": ["dcat:Catalog", "schema:DataCatalog"],
        "schema:name": f"bigmap campaign {campaign.get('name')}",
        "dcterms:title": f"bigmap campaign {campaign.get('name')}",
        "dcat:dataset": [{"@id": r} for r in result_ids],
        "schema:dataset": [{"@id": r} for r in result_ids],
        "prov:wasGeneratedBy": {"@id": uri(campaign["id"])},
        "dcterms:license": license,
        "schema:creator": creators
        or ([user_node(campaign["owner"])] if campaign.get("owner") else None),
    }
    graph.append(_clean(catalog))
    for ev in events:
        graph.append(event_node(ev, campaign))
    proposed_by: dict[str, str] = {}
    for ev in events:
        if ev.get("kind") == "proposal":
            for r in ev.get("request_ids") or []:
                proposed_by.setdefault(str(r), uri(ev["id"]))
    for req in requests:
        out = request_jsonld(
            req, capabilities=caps, tenant_kind=tenant_kinds.get(str(req.get("claimed_by")))
        )
        report.merge(out.report)
        node = out.document_node()
        if str(req["id"]) in proposed_by:
            node["prov:wasInformedBy"] = {"@id": proposed_by[str(req["id"])]}
        graph.append(node)
    for res in results:
        out = result_jsonld(
            res,
            capability=caps.get((res["quantity"], res["method"])),
            tenant=next((t for t in tenants if str(t["id"]) == str(res.get("tenant_id"))), None),
            base_url=base_url,
            data_path=(data_paths or {}).get(str(res["id"])),
            file_paths=file_paths,
            license=license,
        )
        report.merge(out.report)
        graph.append(out.document_node())
        if res.get("software"):
            graph.append(software_node(res["software"]))
    for t in tenants:
        out = tenant_jsonld(t)
        report.merge(out.report)
        graph.append(out.document_node())
        if t.get("owner"):
            graph.append(user_node(t["owner"]))
    for c in capabilities:
        out = capability_jsonld(c)
        report.merge(out.report)
        node = out.document_node()
        node["@id"] = capability_uri(c)
        graph.append(node)
    base = package_base(campaign["id"]) if data_paths or file_paths else None
    return JsonLd(_doc(graph, base), report)


def to_jsonld(kind: str, obj: Any, **context: Any) -> JsonLd:
    """The JSON-LD of one object by kind: capability, request, result, chemical,
    formulation, cell, campaign or tenant (``context``: what that kind's function takes)."""
    makers = {
        "capability": capability_jsonld,
        "request": request_jsonld,
        "result": result_jsonld,
        "chemical": chemical_jsonld,
        "formulation": formulation_jsonld,
        "cell": cell_jsonld,
        "campaign": campaign_jsonld,
        "tenant": tenant_jsonld,
    }
    maker = makers.get(kind.removesuffix("s"))
    if maker is None:
        raise ValueError(f"no JSON-LD form for {kind!r}; one of {', '.join(makers)}")
    return maker(obj, **context)


# ----------------------------------------------------------------------------- RDF


class _Expander:
    """JSON-LD to RDF for the documents this module writes (compact form, one inline
    context, no remote contexts): an order of magnitude faster than rdflib's general
    parser on campaign graphs, and checked against it in the tests."""

    def __init__(self, ctx: dict[str, Any]) -> None:
        import rdflib

        self.rdflib = rdflib
        self.ctx = ctx
        # rdflib's namespace attributes are slow to look up: once here
        self.a, self.json_type = rdflib.RDF.type, rdflib.RDF.JSON
        self.integer, self.double = rdflib.XSD.integer, rdflib.XSD.double
        self.base = ctx.get("@base") if isinstance(ctx.get("@base"), str) else None
        self.seen: dict[Any, str] = {}
        self.terms: dict[str, tuple[str, str | None]] = {}
        for key, entry in ctx.items():
            if key.startswith("@"):
                continue
            if isinstance(entry, str):
                self.terms[key] = (self.iri(entry), None)
            elif isinstance(entry, dict):
                kind = entry.get("@type")
                if kind not in (None, "@id", "@json", "@vocab"):
                    kind = self.iri(kind)
                self.terms[key] = (self.iri(entry.get("@id", key)), kind)

    def iri(self, text: str) -> str:
        if ":" in text:
            prefix, local = text.split(":", 1)
            base = self.ctx.get(prefix)
            if isinstance(base, str) and not local.startswith("//"):
                return base + local
        return text

    def ref(self, text: str) -> str:
        """A node reference (``@id`` or an ``@id``-typed value): a compact IRI expanded, a
        relative reference resolved against ``@base`` (JSON-LD drops it without one)."""
        out = self.iri(text)
        if self.base and not _ABSOLUTE.match(out):
            return resolve(self.base, out)
        return out

    def term(self, key: str) -> tuple[str, str | None]:
        hit = self.terms.get(key)
        if hit is None:
            hit = (self.iri(key), None)
            self.terms[key] = hit
        return hit

    def typed(self, key: str) -> Any:
        return self.rdflib.URIRef(self.term(key)[0] if key in self.terms else self.iri(key))

    def node(self, g: Any, obj: dict[str, Any]) -> Any:
        r = self.rdflib
        subject = r.URIRef(self.ref(obj["@id"])) if "@id" in obj else r.BNode()
        if "@id" in obj and len(obj) > 1:
            # the same node again (a formulation, a chemical, a capability named by many
            # results): its triples are in the graph already
            key = json.dumps(obj, sort_keys=True, default=str)
            if self.seen.get(subject) == key:
                return subject
            self.seen[subject] = key
        types = obj.get("@type", [])
        for t in [types] if isinstance(types, str) else types:
            g.add((subject, self.a, self.typed(t)))
        for key, value in obj.items():
            if key.startswith("@"):
                continue
            pred_iri, kind = self.term(key)
            pred = r.URIRef(pred_iri)
            if kind == "@json":
                g.add((subject, pred, self.json_literal(value)))
                continue
            for v in value if isinstance(value, list) else [value]:
                o = self.value(g, v, kind)
                if o is not None:
                    g.add((subject, pred, o))
        return subject

    def json_literal(self, value: Any) -> Any:
        return self.rdflib.Literal(jcs(value), datatype=self.json_type)

    def value(self, g: Any, v: Any, kind: str | None) -> Any:
        r = self.rdflib
        if v is None:
            return None
        if isinstance(v, dict):
            if "@value" in v:
                if v.get("@type") == "@json":
                    return self.json_literal(v["@value"])
                dt = v.get("@type")
                return r.Literal(v["@value"], datatype=r.URIRef(self.iri(dt)) if dt else None)
            if set(v) == {"@id"}:
                return r.URIRef(self.ref(v["@id"]))
            return self.node(g, v)
        if kind not in (None, "@id", "@json", "@vocab") and not isinstance(v, bool):
            return r.Literal(str(v), datatype=r.URIRef(kind))
        if isinstance(v, bool):
            return r.Literal(v)
        if isinstance(v, float) and v.is_integer() and abs(v) < 1e21:
            # JSON-LD 1.1 (to RDF, 8.6): a number without a fractional part is an integer
            return r.Literal(int(v), datatype=self.integer)
        if isinstance(v, int):
            return r.Literal(v, datatype=self.integer)
        if isinstance(v, float):
            return r.Literal(v, datatype=self.double)
        if kind == "@id":
            return r.URIRef(self.ref(str(v)))
        return r.Literal(str(v))

    def add(self, g: Any, doc: dict[str, Any]) -> None:
        items = doc.get("@graph", [doc])
        for item in items:
            self.node(g, item)


def to_graph(*documents: dict[str, Any], labels: bool = True, parser: str = "bigmap") -> Any:
    """An rdflib graph of JSON-LD documents (offline: the contexts are inline). ``parser``:
    bigmap's expander for the documents of this module (fast), or ``rdflib`` (general).
    With ``labels``, the skos:prefLabel of every EMMO term used is added (as BattINFO does),
    so that the graph reads and queries by name without loading EMMO."""
    import rdflib

    # only bigmap's prefixes: rdflib's thirty defaults make Turtle serialisation slow
    g = rdflib.Graph(bind_namespaces="none")
    for prefix, ns in PREFIXES.items():
        g.bind(prefix, ns, override=True)
    expanders: dict[int, _Expander] = {}
    for doc in documents:
        ctx = doc.get("@context")
        if parser == "rdflib" or not isinstance(ctx, dict):
            g.parse(data=json.dumps(doc, default=str), format="json-ld")
            continue
        exp = expanders.get(id(ctx)) or expanders.setdefault(id(ctx), _Expander(ctx))
        exp.add(g, doc)
    if labels:
        for t in label_triples(g):
            g.add(t)
    return g


_SHARED: dict[str, Any] = {}


def graph_into(g: Any, document: dict[str, Any]) -> None:
    """Add the triples of one of this module's documents to ``g`` (a named graph of a
    store, say). The expander of bigmap's own context is built once and reused."""
    ctx = document.get("@context")
    if not isinstance(ctx, dict):
        import rdflib

        g += rdflib.Graph().parse(data=json.dumps(document, default=str), format="json-ld")
        return
    if ctx.get("@base") is None and ctx == _context():
        exp = _SHARED.get("base") or _SHARED.setdefault("base", _Expander(ctx))
        exp.seen = {}
    else:
        exp = _Expander(ctx)
    exp.add(g, document)


def label_triples(g: Any) -> list[tuple[Any, Any, Any]]:
    """The skos:prefLabel of every EMMO term ``g`` (a graph, or a list of triples) uses (as
    BattINFO adds them)."""
    import rdflib

    names = vocabulary().iri_labels
    used = {o for _, _, o in g if isinstance(o, rdflib.URIRef)} | {p for _, p, _ in g}
    return [
        (iri, rdflib.SKOS.prefLabel, rdflib.Literal(names[str(iri)], lang="en"))
        for iri in used
        if str(iri) in names
    ]


def to_turtle(*documents: dict[str, Any]) -> str:
    return to_graph(*documents).serialize(format="turtle")


__all__ = [
    "BIGMAP",
    "JsonLd",
    "campaign_jsonld",
    "capability_jsonld",
    "cell_jsonld",
    "chemical_jsonld",
    "context",
    "formulation_jsonld",
    "request_jsonld",
    "result_jsonld",
    "tenant_jsonld",
    "to_graph",
    "to_jsonld",
    "to_turtle",
]
