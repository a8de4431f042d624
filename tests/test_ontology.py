"""Semantics without a broker: the vocabulary from the shipped BattINFO assets, JSON-LD of
chemicals, formulations, cells, capabilities, requests and results, SHACL (BattINFO's shapes
and bigmap's), SPARQL, PROV rendering, and the minimum-metadata rules."""

from __future__ import annotations

import dataclasses
import json
import re
import uuid

import pytest
import rdflib

from bigmap.ontology import jsonld as ld
from bigmap.ontology import metadata as md
from bigmap.ontology import prov as provo
from bigmap.ontology import shacl, sparql
from bigmap.ontology.vocab import BIGMAP, vocabulary
from bigmap.schemas import formulation as fm
from bigmap.schemas.capability import finales_capabilities, finales_capability
from bigmap.store.fair import ProvBundle
from tests.conftest import FINALES

EMMO_NAMESPACES = (
    "https://w3id.org/emmo#",
    "https://w3id.org/emmo/domain/",
)


def example(kind: str, path: str) -> dict:
    return json.loads((FINALES / "examples" / kind / path).read_text())


def conductivity_result(**over) -> dict:
    ex = example("results", "conductivity/two_electrode.json")
    res = {
        "id": str(uuid.uuid4()),
        "request_id": str(uuid.uuid4()),
        "quantity": "conductivity",
        "method": "two_electrode",
        "parameters": ex["parameters"]["two_electrode"],
        "data": ex["data"],
        "tenant_id": str(uuid.uuid4()),
        "status": "original",
        "sha256": "a" * 64,
        "software": {"name": "station-driver", "version": "2.1"},
        "provenance": {"tenant": {"kind": "instrument"}},
        "files": [
            {
                "id": str(uuid.uuid4()),
                "name": "eis.mpt",
                "media_type": "text/plain",
                "size": 1200,
                "sha256": "b" * 64,
                "created_at": "2026-01-01T00:00:00+00:00",
            }
        ],
        "created_at": "2026-01-01T00:00:00+00:00",
        "access": "public",
        "access_groups": [],
        "embargo_until": None,
    }
    res.update(over)
    return res


def shipped_iris() -> set[str]:
    """Every IRI that the shipped assets (and core-relations.ttl) name."""
    v = vocabulary()
    iris = set(v.labels.values())
    iris |= {t.iri for t in v.properties.values()} | {t.iri for t in v.units.values()}
    return iris


def emmo_iris(graph: rdflib.Graph) -> set[str]:
    out = set()
    for triple in graph:
        for term in triple:
            if isinstance(term, rdflib.URIRef) and str(term).startswith(EMMO_NAMESPACES):
                out.add(str(term))
    return out


# ----------------------------------------------------------------------------- vocabulary


def test_vocabulary_comes_from_the_shipped_assets():
    v = vocabulary()
    # the curated tables of BattINFO, not the candidates (which hold wrong classes)
    assert v.property_term("charging_temperature_max").label == "MaximumChargingTemperature"
    assert len(v.properties) >= 70 and len(v.units) >= 30
    assert v.term("ElectrolyticConductivity").iri == (
        "https://w3id.org/emmo#EMMO_e6e7277a_1d40_4be5_a3a9_afd3da53d937"
    )
    # the quantity pattern's relations
    assert v.iri("hasNumberValue").endswith("EMMO_faf79f53_749d_40b2_807c_d34244c192f4")
    # the assets are packaged (a source note and the licence beside them)
    from importlib import resources

    root = resources.files("bigmap.ontology") / "battinfo"
    assert "Apache License" in (root / "LICENSE").read_text()
    assert (root / "shapes" / "publication.shapes.ttl").is_file()
    curated = json.loads((root / "mappings" / "property_map.curated.json").read_text())
    assert curated["status"] == "curated" and len(json.dumps(curated)) > 1000


@pytest.mark.parametrize(
    "text,label",
    [
        ("ampere * hour", "AmpereHour"),
        ("A*h", "AmpereHour"),
        ("mAh", "MilliAmpereHour"),
        ("watt * hour", "WattHour"),
        ("kelvin", "Kelvin"),
        ("degC", "DegreeCelsius"),
        ("V", "Volt"),
        ("gram / centimeter ** 3", "GramPerCubicCentiMetre"),
        ("micrometer", "MicroMetre"),
        ("dimensionless", "UnitOne"),
        ("hour", "Hour"),
    ],
)
def test_units_map_to_emmo_units(text, label):
    assert vocabulary().unit_term(text).label == label


@pytest.mark.parametrize(
    "text", ["siemens / meter", "S/m", "eV", "mol/kg", "percent", "furlong", "not a unit", ""]
)
def test_units_without_an_iri_are_not_invented(text):
    # none of these is in BattINFO's unit map: no IRI (not a near miss, not a made-up one)
    if text == "":
        assert vocabulary().unit_term(text).label == "UnitOne"
    else:
        assert vocabulary().unit_term(text) is None


def test_context_names_every_label():
    ctx = ld.context()
    v = vocabulary()
    for label, iri in v.labels.items():
        entry = ctx[label]
        assert (entry["@id"] if isinstance(entry, dict) else entry) == iri
    assert ctx["bigmap"] == BIGMAP


# ----------------------------------------------------------------------------- chemistry


def test_formulation_jsonld_types_chemicals_and_derives_mass_fractions():
    form = fm.hte_to_formulation(0.3, 1.0)
    out = ld.formulation_jsonld(form)
    g = ld.to_graph(out.document)
    v = vocabulary()
    for label in ("EthyleneCarbonate", "PropyleneCarbonate", "EthylMethylCarbonate"):
        assert (None, rdflib.RDF.type, rdflib.URIRef(v.iri(label))) in g
    salt = rdflib.URIRef(ld.inchikey_uri(fm.CHEMICALS["LiPF6"]["InChIKey"]))
    sol = next(g.subjects(rdflib.RDF.type, rdflib.URIRef(v.iri("ElectrolyteSolution"))))
    assert (sol, rdflib.URIRef(v.iri("hasSolute")), salt) in g
    assert len(list(g.objects(sol, rdflib.URIRef(v.iri("hasSolvent"))))) == 3
    # the mass fractions (derived with the IUPAC molar masses) sum to one
    q = sparql.run(
        g,
        """SELECT (SUM(?w) AS ?total) WHERE {
             ?p a ?cls . ?cls skos:prefLabel "MassFraction"@en .
             ?p emmo:EMMO_8ef3cd6d_ae58_4a8d_9fc0_ad8f49015cd0/emmo:EMMO_faf79f53_749d_40b2_807c_d34244c192f4 ?w }""",
    )
    assert float(sparql.rows(q)[0]["total"]) == pytest.approx(1.0)
    # amount fractions have no EMMO class in the assets: reported
    assert "property:fraction (molPerMol)" in out.report.unmapped_terms()
    assert shacl.validate(g).conforms


def test_to_jsonld_dispatches_by_kind():
    form = fm.hte_to_formulation(0.3, 1.0)
    assert ld.to_jsonld("formulation", form).document == ld.formulation_jsonld(form).document
    chem = fm.chemical_entry("PC")
    assert "PropyleneCarbonate" in ld.to_jsonld("chemicals", chem).document["@type"]
    with pytest.raises(ValueError, match="no JSON-LD form"):
        ld.to_jsonld("spaceship", {})


def test_unknown_chemical_is_reported_and_flagged():
    out = ld.chemical_jsonld({"SMILES": "w", "InChIKey": "ww"})
    assert out.report.unmapped[0]["kind"] == "chemical"
    report = shacl.validate(ld.to_graph(out.document))
    assert not report.conforms
    assert "InChIKey" in report.violations[0].message


def test_cell_from_finales_cell_assembly():
    p = example("requests", "cell_assembly/autobass_assembly.json")["parameters"][
        "autobass_assembly"
    ]
    out = ld.cell_jsonld(p["cell"], p["cell_info"])
    node = out.document_node()
    assert {"BatteryCell", "CR2032"} <= set(node["@type"])
    assert node["@id"] == "urn:bigmap:cell:CELL-1"
    assert "ElectrolyteSolution" in node["hasElectrolyte"]["@type"]
    assert "MassLoading" in node["hasPositiveElectrode"]["hasProperty"][0]["@type"]


# ----------------------------------------------------------------------------- results, requests


def test_result_jsonld_maps_the_conductivity_and_reports_the_rest():
    cap = finales_capability("conductivity", "two_electrode").model_dump()
    res = conductivity_result()
    out = ld.result_jsonld(res, capability=cap, tenant={"kind": "instrument"}, base_url="http://b")
    g = ld.to_graph(out.document)
    rows = sparql.rows(
        sparql.run(
            g,
            """SELECT ?value ?unit WHERE {
                 ?r a bigmap:Result ; emmo:EMMO_e1097637_70d2_4895_973f_2396f04fa204 ?q .
                 ?q a ?cls . ?cls skos:prefLabel "ElectrolyticConductivity"@en .
                 ?q a emmo:EMMO_873b0ab3_88e6_4054_b901_5531e01f14a4 .
                 ?q emmo:EMMO_8ef3cd6d_ae58_4a8d_9fc0_ad8f49015cd0/emmo:EMMO_faf79f53_749d_40b2_807c_d34244c192f4 ?value .
                 OPTIONAL { ?q bigmap:unitText ?unit } }""",
        )
    )
    assert [float(r["value"]) for r in rows] == res["data"]["conductivity"]["values"]
    assert rows[0]["unit"] == "siemens / meter"
    unmapped = out.report.unmapped_terms()
    # S/m is not in BattINFO's unit map and temperature has no class there: reported
    assert "unit:siemens / meter" in unmapped and "property:temperature" in unmapped
    # FINALES' [value, uncertainty] pairs become one quantity with its uncertainty
    dens = [q for q in out.document_node()["hasProperty"] if "Density" in q["@type"]]
    assert dens and all("bigmap:standardUncertainty" in q for q in dens)
    # every EMMO IRI in the graph is one the shipped assets name: nothing invented
    assert emmo_iris(g) <= shipped_iris()
    # nothing lost: the data rides along as JSON
    data = next(g.objects(rdflib.URIRef(ld.uri(res["id"])), rdflib.URIRef(BIGMAP + "data")))
    assert json.loads(str(data)) == res["data"]
    assert set(json.loads(json.dumps(out.document_node()["bigmap:unmappedTerm"]))) == set(unmapped)
    report = shacl.validate(g)
    assert report.conforms, report.text()
    assert report.count("Warning") >= 1  # quantities whose unit has no IRI


def test_request_jsonld_of_a_cycling_test_is_a_battery_test_of_its_cell():
    p = example("requests", "capacity/cycling.json")
    req = {
        "id": str(uuid.uuid4()),
        "quantity": "capacity",
        "methods": ["cycling"],
        "parameters": p["parameters"],
        "tenant_id": str(uuid.uuid4()),
        "claimed_by": str(uuid.uuid4()),
        "result_id": str(uuid.uuid4()),
        "status": "resolved",
        "created_at": "2026-01-01T00:00:00+00:00",
    }
    out = ld.request_jsonld(req, tenant_kind="instrument")
    node = out.document_node()
    assert "BatteryTest" in node["@type"] and node["hasTestObject"] == "urn:bigmap:cell:CELL-1"
    labels = {q["rdfs:label"]: q["@type"][0] for q in node["hasMeasurementParameter"]}
    assert labels["V_max"] == "UpperVoltageLimit" and labels["V_min"] == "LowerVoltageLimit"
    g = ld.to_graph(out.document)
    report = shacl.validate(g)
    # BattINFO's publication shapes apply to the battery test (and it satisfies them)
    assert report.conforms, report.text()
    assert emmo_iris(g) <= shipped_iris()
    # a simulation (not an instrument) is no battery test
    assert (
        "BatteryTest"
        not in ld.request_jsonld(req, tenant_kind="simulation").document_node()["@type"]
    )


def test_every_finales_capability_has_a_jsonld_form():
    specs = finales_capabilities()
    assert len(specs) == 13  # FINALES' published capability files, as shipped
    for spec in specs:
        out = ld.capability_jsonld({**spec.model_dump(), "id": str(uuid.uuid4())})
        g = ld.to_graph(out.document)
        assert emmo_iris(g) <= shipped_iris()
        assert any(u["kind"] == "method" for u in out.report.unmapped)
    conductivity = ld.capability_jsonld(
        finales_capability("conductivity", "two_electrode").model_dump()
    )
    assert conductivity.document_node()["bigmap:quantityKind"]["@id"] == vocabulary().iri(
        "ElectrolyticConductivity"
    )


def test_campaign_graph_validates_against_battinfo_and_bigmap_shapes():
    cap = finales_capability("conductivity", "two_electrode").model_dump()
    res = conductivity_result()
    camp = {
        "id": str(uuid.uuid4()),
        "name": "c",
        "tenant_id": str(uuid.uuid4()),
        "owner": "alice",
        "status": "running",
        "spec": {},
        "summary": {},
        "created_at": "2026-01-01T00:00:00+00:00",
        "access": "public",
    }
    req = {
        "id": res["request_id"],
        "quantity": "conductivity",
        "methods": ["two_electrode"],
        "parameters": {"two_electrode": res["parameters"]},
        "tenant_id": camp["tenant_id"],
        "status": "resolved",
        "result_id": res["id"],
        "created_at": "2026-01-01T00:00:00+00:00",
        "access": "public",
    }
    ev = {
        "id": str(uuid.uuid4()),
        "seq": 1,
        "kind": "proposal",
        "data": {"step": 1, "strategy": "sobol"},
        "request_ids": [req["id"]],
        "created_at": "2026-01-01T00:00:00+00:00",
    }
    out = ld.campaign_jsonld(
        camp,
        events=[ev],
        requests=[req],
        results=[res],
        capabilities=[cap],
        license="https://spdx.org/licenses/CC-BY-4.0",
    )
    g = ld.to_graph(out.document)
    report = shacl.validate(g)
    assert report.conforms, report.text()
    assert (
        rdflib.URIRef(ld.uri(req["id"])),
        rdflib.PROV.wasInformedBy,
        rdflib.URIRef(ld.uri(ev["id"])),
    ) in g
    # break it: no request behind the result, a malformed hash, a catalogue without a name
    bad = conductivity_result(sha256="not-a-hash")
    bad_doc = ld.result_jsonld(bad, capability=cap).document
    del bad_doc["prov:wasGeneratedBy"]
    broken = shacl.validate(ld.to_graph(bad_doc))
    assert not broken.conforms
    text = broken.text()
    assert "exactly one request" in text and "sha256" in text
    assert {f.severity for f in broken.findings} >= {"Violation"}


def test_shipped_cell_spec_shapes_are_applied():
    v = vocabulary()
    doc = {
        "@context": ld.context(),
        "@id": "urn:bigmap:test-cell",
        "hasProperty": [
            {
                "@type": ["NominalVoltage"],
                "hasNumericalPart": {"@type": "RealData", "hasNumberValue": 37.0},
                "hasMeasurementUnit": v.unit_term("V").iri,
            }
        ],
    }
    report = shacl.validate(ld.to_graph(doc))
    assert report.conforms  # BattINFO's plausibility checks are warnings
    assert any("decimal-shift" in f.message for f in report.findings if f.severity == "Warning")


# ----------------------------------------------------------------------------- SPARQL


@pytest.mark.parametrize(
    "query,reason",
    [
        ("SELECT * WHERE { SERVICE <http://example.org/sparql> { ?s ?p ?o } }", "SERVICE"),
        ("SELECT * FROM <http://example.org/g> WHERE { ?s ?p ?o }", "FROM"),
        ("DELETE WHERE { ?s ?p ?o }", "not a valid SPARQL query"),
        ("SELECT ?s WHERE { ?s ?p }", "not a valid SPARQL query"),
        ("   ", "empty"),
    ],
)
def test_sparql_refuses_what_is_not_a_local_read(query, reason):
    with pytest.raises(sparql.QueryError, match=reason):
        sparql.run(rdflib.Graph(), query)


def test_sparql_ask_and_construct():
    g = ld.to_graph(ld.chemical_jsonld(fm.chemical_entry("EC")).document)
    assert sparql.run(g, "ASK { ?c schema:inChIKey ?k }")["boolean"] is True
    out = sparql.run(g, "CONSTRUCT { ?c schema:name ?n } WHERE { ?c schema:name ?n }")
    assert "ethylene carbonate" in out["turtle"]


# ----------------------------------------------------------------------------- PROV


def test_prov_json_and_jsonld_of_a_bundle():
    pb = ProvBundle("urn:uuid:r")
    pb.node("urn:uuid:r", "entity", ["prov:Entity", "bigmap:Result"], quantity="q", data={"x": 1})
    pb.node("urn:uuid:q", "activity", ["prov:Activity"], started_at="2026-01-01T00:00:00+00:00")
    pb.node("urn:uuid:f", "entity", ["prov:Entity", "bigmap:RawFile"], name="a.csv")
    pb.node("urn:uuid:t", "agent", ["prov:Agent"], name="t")
    pb.relate("wasGeneratedBy", "urn:uuid:r", "urn:uuid:q")
    pb.relate("wasDerivedFrom", "urn:uuid:r", "urn:uuid:f")
    pb.relate("wasAssociatedWith", "urn:uuid:q", "urn:uuid:t")
    doc = provo.prov_json(pb)
    assert set(doc) >= {"prefix", "entity", "activity", "agent", "wasGeneratedBy"}
    assert doc["entity"]["uuid:r"]["bigmap:data"] == '{"x": 1}'
    rel = next(iter(doc["wasDerivedFrom"].values()))
    assert rel == {"prov:generatedEntity": "uuid:r", "prov:usedEntity": "uuid:f"}
    g = ld.to_graph(provo.prov_jsonld(pb))
    assert (
        rdflib.URIRef("urn:uuid:r"),
        rdflib.PROV.wasDerivedFrom,
        rdflib.URIRef("urn:uuid:f"),
    ) in g
    assert [f["name"] for f in provo.raw_files(pb)] == ["a.csv"]


# ----------------------------------------------------------------------------- minimum metadata


def ctx(**over) -> md.Context:
    base = dict(
        quantity="conductivity",
        method="two_electrode",
        parameters={"formulation": fm.hte_to_formulation(0.5, 1.0), "temperature": 298.15},
        data={"conductivity": {"values": [0.81, 0.83], "temperature": 298.2}},
        provenance={"instruments": {"station": {"serial": "1"}}},
        files=[{"name": "eis.mpt", "media_type": "text/plain"}],
        units={"values": "siemens / meter", "temperature": "kelvin"},
        tenant_kind="instrument",
    )
    base.update(over)
    return md.Context(**base)


def test_metadata_conductivity_complete_and_missing():
    assert md.check(ctx()).complete
    # a chemical without InChIKey, and no temperature anywhere
    r = md.check(
        ctx(
            parameters={"formulation": [{"chemical": {"SMILES": "C"}, "fraction": 1}]},
            data={"conductivity": {"values": [0.81, 0.83]}},
        )
    )
    assert [m["rule"] for m in r.missing] == ["formulation", "temperature"]
    assert "InChIKey" in r.text()
    # one value without its uncertainty, and no unit declared for it
    r = md.check(ctx(data={"conductivity": {"values": [0.8]}}, units={}))
    by_rule = {m["rule"]: m for m in r.missing}
    assert set(by_rule) == {"uncertainty", "units"}
    assert by_rule["units"]["paths"] == ["data.conductivity.values"]


def test_metadata_simulation_and_cycling_rules():
    sim = ctx(
        quantity="cell_cycling",
        method="pybamm",
        parameters={"parameter_set": "Chen2020", "experiment": ["Discharge at 1C until 2.5 V"]},
        data={
            "discharge_capacity": [5.0],
            "traces": {"first": {"time": [0, 1]}},
            "temperature": 298.15,
            "meta": {"success": True},
        },
        units={"discharge_capacity": "ampere * hour", "temperature": "kelvin", "time": "s"},
        provenance={},
        software={"name": "pybamm", "version": "25.1"},
        files=[],
        tenant_kind="simulation",
    )
    r = md.check(sim)
    assert r.data_types == ["cycling", "simulation"]
    assert r.complete, r.text()
    r = md.check(
        dataclasses.replace(sim, software={"name": "pybamm", "version": "unknown"}, parameters={})
    )
    assert {m["rule"] for m in r.missing} >= {"software_version", "cell", "protocol"}
    assert md.check(sim, strictness="off").satisfied == []


def test_metadata_data_types_and_policy_keys():
    assert md.data_types_for("impedance", "eis") == ["impedance"]
    assert md.data_types_for("conductivity", "transport_model", "simulation") == [
        "conductivity",
        "simulation",
    ]
    assert md.data_types_for("x", "y", declared=["cycling", "bogus"]) == ["cycling"]
    r = md.check(ctx(), required=["operator"])
    assert [m["rule"] for m in r.missing] == ["required:operator"]
    r = md.check(
        ctx(provenance={"operator": "jd", "instruments": {"s": {}}}), required=["operator"]
    )
    assert r.complete
    assert re.search(
        r"missing metadata: required:operator", md.check(ctx(), required=["operator"]).text()
    )


def test_bigmap_expander_gives_the_graph_pyld_gives():
    """The fast JSON-LD expander for bigmap's own documents against an independent JSON-LD
    1.1 processor (pyld): the same triples, no key dropped, for a result, every capability,
    a cell, a campaign and a PROV view. (rdflib's own JSON-LD parser is not the reference:
    it writes 3.0 as an xsd:double and JSON literals uncanonicalised, against JSON-LD 1.1.)"""
    from bigmap.ontology.ldcheck import compare

    cap = finales_capability("conductivity", "two_electrode").model_dump()
    res = conductivity_result(
        access="restricted", access_groups=["lab-a"], embargo_until="2030-01-01T00:00:00+00:00"
    )
    docs = [ld.result_jsonld(res, capability=cap, base_url="http://b").document]
    docs += [ld.capability_jsonld(c.model_dump()).document for c in finales_capabilities()]
    p = example("requests", "cell_assembly/autobass_assembly.json")["parameters"][
        "autobass_assembly"
    ]
    docs.append(ld.cell_jsonld(p["cell"], p["cell_info"]).document)
    camp = {
        "id": str(uuid.uuid4()),
        "name": "c",
        "tenant_id": str(uuid.uuid4()),
        "owner": "a",
        "created_at": "2026-01-01T00:00:00+00:00",
        "spec": {"a": [1, 2]},
        "summary": {},
    }
    docs.append(
        ld.campaign_jsonld(camp, results=[res, conductivity_result()], capabilities=[cap]).document
    )
    pb = ProvBundle("urn:uuid:r")
    pb.node(
        "urn:uuid:r",
        "entity",
        ["prov:Entity"],
        data={"x": [1.5]},
        generated_at="2026-01-01T00:00:00+00:00",
    )
    pb.node("urn:uuid:q", "activity", ["prov:Activity"], name="q")
    pb.relate("wasGeneratedBy", "urn:uuid:r", "urn:uuid:q")
    docs.append(provo.prov_jsonld(pb))
    for doc in docs:
        assert len(ld.to_graph(doc)) > 5
        assert compare(doc) == {"dropped": [], "only_pyld": [], "only_bigmap": []}
