"""The vocabulary: EMMO / BattINFO IRIs for bigmap's words, from the shipped BattINFO assets.

Every IRI here comes from a file in ``battinfo/`` (the curated property, unit, material and
entity-type maps of BattINFO, and its EMMO label file) or from ``core-relations.ttl`` (the
four relations of EMMO's quantity pattern, with their sources). A word that none of them
covers has no IRI: callers report it (``MappingReport``); nothing is invented here.

bigmap's own record-layer words (status, access tier, sha256, ...) live in the namespace
``urn:bigmap:vocab:``, which claims no domain meaning, as BattINFO's own placeholder
namespace does not.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

EMMO = "https://w3id.org/emmo#"
ECHEM = "https://w3id.org/emmo/domain/electrochemistry#"
BATTERY = "https://w3id.org/emmo/domain/battery#"
CHEMSUB = "https://w3id.org/emmo/domain/chemical-substance#"
CHAMEO = "https://w3id.org/emmo/domain/characterisation-methodology/chameo#"
PROV = "http://www.w3.org/ns/prov#"
SCHEMA = "https://schema.org/"
DCTERMS = "http://purl.org/dc/terms/"
DCAT = "http://www.w3.org/ns/dcat#"
SPDX = "http://spdx.org/rdf/terms#"
XSD = "http://www.w3.org/2001/XMLSchema#"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
SKOS = "http://www.w3.org/2004/02/skos/core#"
QUDT_UNIT = "http://qudt.org/vocab/unit/"
BIGMAP = "urn:bigmap:vocab:"

PREFIXES: dict[str, str] = {
    "emmo": EMMO,
    "electrochemistry": ECHEM,
    "battery": BATTERY,
    "chemical": CHEMSUB,
    "chameo": CHAMEO,
    "prov": PROV,
    "schema": SCHEMA,
    "dcterms": DCTERMS,
    "dcat": DCAT,
    "spdx": SPDX,
    "xsd": XSD,
    "rdf": RDF,
    "rdfs": RDFS,
    "skos": SKOS,
    "qudt": QUDT_UNIT,
    "bigmap": BIGMAP,
}

# bigmap keys -> EMMO labels (the label must be in battinfo/vocab/emmo-labels.ttl; checked on
# load). These are bigmap's mapping decisions, for keys that BattINFO's curated property map
# does not have: each names the same physical quantity as the EMMO class.
KEY_ALIASES: dict[str, str] = {
    "conductivity": "ElectrolyticConductivity",
    "ionic_conductivity": "ElectrolyticConductivity",
    "electrolyte_conductivity": "ElectrolyticConductivity",
    "density": "Density",
    "viscosity": "DynamicViscosity",
    "dynamic_viscosity": "DynamicViscosity",
    "porosity": "Porosity",
    "concentration": "AmountConcentration",
    "salt_concentration": "AmountConcentration",
    "mass_fraction": "MassFraction",
    "volume_fraction": "VolumeFraction",
    "mass_loading": "MassLoading",
    "active_mass_loading": "ActiveMassLoading",
    # the first cycle whose retention is below the end-of-life threshold = the cycle life
    "eol_cycle": "CycleLife",
    "cycle_life": "CycleLife",
    "v_max": "UpperVoltageLimit",
    "cycling_v_max": "UpperVoltageLimit",
    "v_min": "LowerVoltageLimit",
    "cycling_v_min": "LowerVoltageLimit",
    "state_of_health": "StateOfHealth",
}

# Capability quantities -> EMMO labels of the quantity they deliver.
QUANTITY_ALIASES: dict[str, str] = {
    "conductivity": "ElectrolyticConductivity",
    "density": "Density",
    "viscosity": "DynamicViscosity",
    "degradationEOL": "CycleLife",
    "cycle_life": "CycleLife",
}

# Leaf keys that carry no meaning of their own: the quantity is named by the parent key
# (FINALES results: {"conductivity": {"values": [...], "temperature": 298}}).
GENERIC_KEYS = frozenset(
    {"values", "value", "mean", "median", "samples", "data", "result", "estimate", "y"}
)

# Unit map symbols that pint cannot read as written; None: match by the exact symbol only
# (a bare "%" is mapped by BattINFO to WeightPercent, which a percentage of anything else
# is not, so it is never matched by dimension).
_PINT_SPELLING: dict[str, str | None] = {
    "mg/cm2": "mg/cm^2",
    "g/cm3": "g/cm^3",
    "Ω": "ohm",
    "mΩ": "milliohm",
    "µm": "micrometer",
    "%": None,
    "vol%": None,
}


@dataclass(frozen=True)
class Term:
    """A word and its IRI, with where the mapping came from."""

    label: str
    iri: str
    source: str


@dataclass
class MappingReport:
    """What was mapped to an IRI and what could not be (and why)."""

    mapped: list[dict[str, str]] = field(default_factory=list)
    unmapped: list[dict[str, str]] = field(default_factory=list)

    def ok(self, path: str, word: str, term: Term) -> None:
        self.mapped.append({"path": path, "term": word, "iri": term.iri, "source": term.source})

    def missing(self, path: str, word: str, kind: str) -> None:
        entry = {"path": path, "term": word, "kind": kind}
        if entry not in self.unmapped:
            self.unmapped.append(entry)

    def merge(self, other: MappingReport) -> None:
        for m in other.mapped:
            self.mapped.append(m)
        for u in other.unmapped:
            if u not in self.unmapped:
                self.unmapped.append(u)

    def unmapped_terms(self) -> list[str]:
        return sorted({f"{u['kind']}:{u['term']}" for u in self.unmapped})

    def as_dict(self) -> dict[str, Any]:
        return {
            "mapped": self.mapped,
            "unmapped": self.unmapped,
            "n_mapped": len(self.mapped),
            "n_unmapped": len(self.unmapped),
        }


def _asset(*parts: str) -> Any:
    return resources.files("bigmap.ontology").joinpath("battinfo", *parts)


def _norm(key: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", key.strip().lower()).strip("_")


class Vocabulary:
    """The mapping tables, loaded once (``vocabulary()``)."""

    def __init__(self) -> None:
        import rdflib

        g = rdflib.Graph()
        g.parse(data=_asset("vocab", "emmo-labels.ttl").read_text("utf-8"), format="turtle")
        g.parse(
            data=resources.files("bigmap.ontology").joinpath("core-relations.ttl").read_text(),
            format="turtle",
        )
        self.labels: dict[str, str] = {}
        for s, _p, o in g.triples((None, rdflib.SKOS.prefLabel, None)):
            self.labels.setdefault(str(o), str(s))
        self.iri_labels = {iri: label for label, iri in self.labels.items()}

        props = json.loads(_asset("mappings", "property_map.curated.json").read_text("utf-8"))
        self.properties: dict[str, Term] = {
            m["key"]: Term(m["class_pref_label"], m["class_iri"], "battinfo:property_map")
            for m in props["mappings"]
            if m.get("status") == "curated" and m.get("class_iri")
        }
        units = json.loads(_asset("mappings", "unit_map.curated.json").read_text("utf-8"))
        self.units: dict[str, Term] = {
            m["symbol"]: Term(m["unit_pref_label"], m["unit_iri"], "battinfo:unit_map")
            for m in units["mappings"]
            if m.get("unit_iri")
        }
        mats = json.loads(_asset("mappings", "material_map.json").read_text("utf-8"))
        self.materials: dict[str, str] = {}
        for m in mats["mappings"]:
            for alias in [m["symbol"], *m.get("aliases", [])]:
                self.materials[_norm(alias)] = m["emmo_class"]
        self.entity_types = json.loads(
            _asset("mappings", "entity_type_map.json").read_text("utf-8")
        )["mappings"]
        for table in (KEY_ALIASES, QUANTITY_ALIASES):
            for key, label in table.items():
                if label not in self.labels:
                    raise RuntimeError(f"alias {key} -> {label}: no such EMMO label in the assets")
        self._unit_signatures: dict[tuple[Any, ...], str] | None = None

    # ------------------------------------------------------------------ lookups

    def term(self, label: str) -> Term | None:
        iri = self.labels.get(label)
        return Term(label, iri, "battinfo:emmo-labels") if iri else None

    def iri(self, label: str) -> str:
        """The IRI of an EMMO label that must exist (a programming error otherwise)."""
        iri = self.labels.get(label)
        if iri is None:
            raise KeyError(f"no EMMO label {label!r} in the shipped vocabulary")
        return iri

    def property_term(self, key: str) -> Term | None:
        """The EMMO quantity class of a property key (BattINFO curated map, then bigmap's
        aliases onto EMMO labels), or None."""
        k = _norm(key)
        if k in self.properties:
            return self.properties[k]
        label = KEY_ALIASES.get(k)
        if label:
            return Term(label, self.labels[label], "bigmap:alias->battinfo:emmo-labels")
        return None

    def quantity_term(self, quantity: str) -> Term | None:
        label = QUANTITY_ALIASES.get(quantity)
        if label:
            return Term(label, self.labels[label], "bigmap:alias->battinfo:emmo-labels")
        return self.property_term(quantity)

    def material_term(self, name: str) -> Term | None:
        label = self.materials.get(_norm(name))
        if label and label in self.labels:
            return Term(label, self.labels[label], "battinfo:material_map")
        return None

    def unit_term(self, unit: str | None) -> Term | None:
        """The EMMO unit of a unit string (a BattINFO symbol or any pint spelling of the
        same unit: "siemens / meter", "ampere * hour", "kelvin", ...), or None."""
        if unit is None:
            return None
        text = unit.strip()
        if text in self.units:
            return self.units[text]
        if text in ("", "1", "dimensionless") and "count" in self.units:
            return self.units["count"]  # EMMO's UnitOne: the unit of dimensionless quantities
        sig = _unit_signature(text)
        if sig is None:
            return None
        symbol = self._signatures().get(sig)
        return self.units[symbol] if symbol else None

    def _signatures(self) -> dict[tuple[Any, ...], str]:
        if self._unit_signatures is None:
            out: dict[tuple[Any, ...], str] = {}
            for symbol in self.units:
                spelled = _PINT_SPELLING.get(symbol, symbol)
                if spelled is None:
                    continue
                sig = _unit_signature(spelled)
                if sig is not None:
                    out.setdefault(sig, symbol)
            self._unit_signatures = out
        return self._unit_signatures

    def cell_types(self, section: str, key: str) -> list[Term]:
        """EMMO classes of a cell's format / chemistry / IEC code (BattINFO entity map)."""
        entry = self.entity_types.get(section, {}).get(_norm(key).replace("_", "-"))
        if entry is None:
            entry = self.entity_types.get(section, {}).get(_norm(key))
        if not entry:
            return []
        return [
            Term(label, self.labels[label], "battinfo:entity_type_map")
            for label in entry.get("battery_types", [])
            if label in self.labels
        ]


@lru_cache(maxsize=1)
def _ureg() -> Any:
    import pint

    return pint.UnitRegistry()


@lru_cache(maxsize=512)
def _unit_signature(text: str) -> tuple[Any, ...] | None:
    """(dimensionality, scale, offset) of a unit in SI base units; None if not a unit."""
    if text in ("", "1"):
        text = "dimensionless"
    try:
        ureg = _ureg()
        unit = ureg.Unit(text)
        q0 = ureg.Quantity(0.0, unit).to_base_units()
        q1 = ureg.Quantity(1.0, unit).to_base_units()
    except Exception:
        return None
    scale = float(q1.magnitude - q0.magnitude)
    offset = float(q0.magnitude)
    if scale == 0 or not math.isfinite(scale):
        return None
    return (str(q1.units), float(f"{scale:.9g}"), float(f"{offset:.9g}"))


@lru_cache(maxsize=1)
def vocabulary() -> Vocabulary:
    return Vocabulary()
