"""FINALES limitation notation: structural checks and matching."""

import json

import pytest

from bigmap.schemas import limitations as lim
from bigmap.schemas.capability import finales_capability
from tests.conftest import FINALES, data_files

EC = {"SMILES": "C1COC(=O)O1", "InChIKey": "KMTRUDSVKNLOMY-UHFFFAOYSA-N"}
EMC = {"SMILES": "CCOC(=O)OC", "InChIKey": "JBTWLSYIZRCDFO-UHFFFAOYSA-N"}
LIPF6 = {"SMILES": "[Li+].F[P-](F)(F)(F)(F)F", "InChIKey": "AXPLOJNSKRXQPA-UHFFFAOYSA-N"}
DMC = {"SMILES": "COC(=O)OC", "InChIKey": "IEJIGPNLZYLLBP-UHFFFAOYSA-N"}


def asab() -> dict:
    doc = json.loads((FINALES / "examples/tenants/conductivity/ASAB.json").read_text())
    return doc["limitations"][0]["limitations"]


def comp(chem: dict, x: float) -> dict:
    return {"chemical": chem, "fraction": x, "fraction_type": "molPerMol"}


def test_inside_asab_limits():
    params = {
        "formulation": [comp(EC, 0.3), comp(LIPF6, 0.1), comp(EMC, 0.6)],
        "temperature": 301.15,
    }
    assert lim.outside(asab(), params) is None


def test_chemical_matched_by_inchikey_whatever_the_smiles():
    other_smiles = {"SMILES": "O=C1OCCO1", "InChIKey": EC["InChIKey"]}
    params = {"formulation": [comp(other_smiles, 0.3), comp(EMC, 0.7)], "temperature": 301.15}
    assert lim.outside(asab(), params) is None


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        (
            {"formulation": [comp(EC, 0.6), comp(EMC, 0.4)], "temperature": 301.15},
            "0.6 is outside [0.0, 0.542]",
        ),
        ({"formulation": [comp(DMC, 0.5), comp(EMC, 0.5)], "temperature": 301.15}, "InChIKey"),
        (
            {"formulation": [comp(EC, 0.3), comp(EMC, 0.7)], "temperature": 298.15},
            "$.temperature: 298.15 is outside",
        ),
        (
            {
                "formulation": [{**comp(EC, 0.3), "fraction_type": "massPerMass"}, comp(EMC, 0.7)],
                "temperature": 301.15,
            },
            "massPerMass",
        ),
    ],
)
def test_outside_asab_limits_names_the_reason(params, fragment):
    reason = lim.outside(asab(), params)
    assert reason is not None and fragment in reason


def test_ranges_steps_lists_and_anyof():
    limits = {
        "anyOf": [
            {
                "n": [{"minimum": 1, "maximum": 64, "step": 1}],
                "mode": ["fast", "slow"],
                "xs": [[{"min": 0, "max": 5}]],
            }
        ]
    }
    assert lim.outside(limits, {"n": 12, "mode": "fast", "xs": [0, 2.5, 5]}) is None
    assert "grid" in lim.outside(limits, {"n": 12.5})
    assert "not one of" in lim.outside(limits, {"mode": "medium"})
    assert "outside [0.0, 5.0]" in lim.outside(limits, {"xs": [1, 6]})
    # empty lists limit nothing; parameters not mentioned are not limited
    assert lim.outside({"cell_info": [], "a": [1]}, {"cell_info": {"x": 1}, "b": 2, "a": 1}) is None


def test_alternatives_at_top_level():
    limits = [{"t": [{"min": 0, "max": 1}]}, {"t": [{"min": 10, "max": 11}]}]
    assert lim.outside(limits, {"t": 10.5}) is None
    assert "; or " in lim.outside(limits, {"t": 5})


def test_check_reports_errors_and_warnings():
    schema = finales_capability("conductivity", "two_electrode").parameter_schema
    errors, warnings = lim.check(asab(), schema, ["limitations"])
    assert errors == [] and warnings == []
    errors, warnings = lim.check(
        {"temperature": [{"min": 400, "max": 300}], "pressure": [1]}, schema, ["l"]
    )
    assert errors and "exceeds" in errors[0].msg and errors[0].path == "$.l.temperature[0]"
    assert warnings and "pressure" in warnings[0]
    errors, _ = lim.check({"temperature": [{"min": "cold"}]}, schema, ["l"])
    assert errors[0].path == "$.l.temperature[0].min"
    errors, _ = lim.check("everything", schema, ["l"])
    assert errors


def test_every_finales_tenant_file_checks_clean():
    from bigmap.schemas.tenant import load_tenant_file

    for path in data_files(FINALES / "examples/tenants", "*.json", 6):
        spec = load_tenant_file(path)
        for prov in spec.limitations:
            schema = finales_capability(prov.quantity, prov.method).parameter_schema
            errors, _ = lim.check(prov.limitations, schema, ["limitations"])
            assert errors == [], (path, errors)
