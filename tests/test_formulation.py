"""The HTE chemicals and the FINALES formulation <-> (r, c) mapping."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bigmap.schemas import formulation as fm
from tests.conftest import FINALES, data_files

EXAMPLES = FINALES / "examples"


def test_identities_match_the_finales_examples():
    seen = {}
    for path in data_files(EXAMPLES, "*.json", 32):
        text = path.read_text()
        for key, entry in fm.HTE_CHEMICALS.items():
            if entry["InChIKey"] in text:
                seen[key] = True
                # wherever the example names this InChIKey, our SMILES is its SMILES
                assert entry["SMILES"] in text, (key, path)
    assert set(seen) == {"EC", "PC", "EMC", "LiPF6"}


def test_molar_masses_from_atomic_weights():
    # IUPAC 2021 conventional atomic weights: EC C3H4O3, PC C4H6O3, EMC C4H8O3, LiPF6
    assert fm.HTE_CHEMICALS["EC"]["molar_mass"] == pytest.approx(0.088062, abs=1e-6)
    assert fm.HTE_CHEMICALS["PC"]["molar_mass"] == pytest.approx(0.102089, abs=1e-6)
    assert fm.HTE_CHEMICALS["EMC"]["molar_mass"] == pytest.approx(0.104105, abs=1e-6)
    assert fm.HTE_CHEMICALS["LiPF6"]["molar_mass"] == pytest.approx(0.151904, abs=1e-6)


@pytest.mark.parametrize("r", [0.087, 0.3, 0.598, 1.0])
@pytest.mark.parametrize("c", [0.194, 1.0, 2.118])
def test_round_trip(r, c):
    f = fm.hte_to_formulation(r, c)
    assert sum(x["fraction"] for x in f) == pytest.approx(1.0, abs=1e-12)
    assert all(x["fraction_type"] == "molPerMol" for x in f)
    r2, c2 = fm.formulation_to_hte(json.loads(json.dumps(f)))
    assert r2 == pytest.approx(r, abs=1e-12)
    assert c2 == pytest.approx(c, rel=1e-12)


def test_definition_by_hand():
    # 1 kg of solvent: 0.7 kg EMC, 0.3 kg of EC + PC with n_PC / (n_EC + n_PC) = r; c mol LiPF6
    r, c = 0.25, 1.2
    m_cyc = 0.75 * 0.088062 + 0.25 * 0.102089  # kg per mol of cyclic carbonate
    n = {
        "EC": 0.3 / m_cyc * 0.75,
        "PC": 0.3 / m_cyc * 0.25,
        "EMC": 0.7 / 0.104105,
        "LiPF6": 1.2,
    }
    total = sum(n.values())
    got = {fm.identify(x["chemical"]): x["fraction"] for x in fm.hte_to_formulation(r, c)}
    for k, v in n.items():
        assert got[k] == pytest.approx(v / total, rel=1e-5)
    x = fm.mole_fractions(fm.hte_to_formulation(r, c))
    assert x["PC"] / (x["PC"] + x["EC"]) == pytest.approx(r)
    w = fm.solvent_mass_fractions(fm.hte_to_formulation(r, c))
    assert w["EMC"] == pytest.approx(0.7)


def test_r_is_the_molar_share_as_in_the_raw_records():
    # fuzhanrahmanian/MADAP data/Dataframe_STRUCTURED_all508.csv (commit 9d614d6), the weighed
    # masses of two experiments that are in the HTE file at r = 0.464 and r = 0.598
    assert fm.pc_share_to_r(m_ec=1.506, m_pc=1.509) == pytest.approx(0.464, abs=6e-4)
    assert fm.pc_share_to_r(m_ec=1.0, m_pc=1.0 * 0.633 / 0.367) == pytest.approx(0.598, abs=1e-3)
    # EC:PC = 9.2:1 by mass, the campaign's largest ratio, gives the file's smallest r
    assert fm.pc_share_to_r(9.2, 1.0) == pytest.approx(0.086, abs=1e-3)
    w_ec, w_pc = fm.r_to_pc_share(fm.pc_share_to_r(0.3, 0.7))
    assert (w_ec, w_pc) == pytest.approx((0.3, 0.7))


def test_pc_only_and_ec_only_leave_the_zero_component_out():
    names = [fm.identify(x["chemical"]) for x in fm.hte_to_formulation(1.0, 1.0)]
    assert "EC" not in names and "PC" in names
    names = [fm.identify(x["chemical"]) for x in fm.hte_to_formulation(0.0, 1.0)]
    assert "PC" not in names and "EC" in names


def test_dataset_span_maps_into_itself():
    from bigmap.data import load_hte

    d = load_hte()
    for r, c in d[["r", "c"]].drop_duplicates().to_numpy()[::7]:
        r2, c2 = fm.formulation_to_hte(fm.hte_to_formulation(float(r), float(c)))
        assert np.isclose([r2, c2], [r, c]).all()


def _comp(name, fraction, **kw):
    return {
        "chemical": fm.chemical_entry(name),
        "fraction": fraction,
        "fraction_type": "molPerMol",
    } | kw


@pytest.mark.parametrize(
    "formulation, message",
    [
        ([_comp("DMC", 0.9), _comp("LiPF6", 0.1)], "DMC is not in the HTE dataset"),
        (
            [
                {
                    "chemical": {"SMILES": "O", "InChIKey": "XLYOFNOQVPJJNP-UHFFFAOYSA-N"},
                    "fraction": 1.0,
                    "fraction_type": "molPerMol",
                }
            ],
            "unknown chemical",
        ),
        ([_comp("EC", 0.5), _comp("EMC", 0.3)], "sum to 0.8"),
        ([_comp("EC", 0.5), _comp("EC", 0.5)], "listed twice"),
        ([_comp("EC", 1.2)], "outside [0, 1]"),
        ([_comp("EC", 0.5, fraction_type="gPerG"), _comp("EMC", 0.5)], "only molar fractions"),
        ([_comp("EMC", 0.9), _comp("LiPF6", 0.1)], "neither EC nor PC"),
        # EC:EMC 1:1 by mass is not the dataset's 3:7 series
        ([_comp("EC", 0.54), _comp("EMC", 0.46)], "wt% EMC"),
        (
            [
                {
                    "chemical": {
                        "SMILES": "CC1COC(=O)O1",
                        "InChIKey": fm.CHEMICALS["EC"]["InChIKey"],
                    },
                    "fraction": 1.0,
                    "fraction_type": "molPerMol",
                }
            ],
            "inconsistent",
        ),
        ("EC", "must be a list"),
        ([], "empty"),
    ],
)
def test_bad_formulations(formulation, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        fm.formulation_to_hte(formulation)


def test_bad_coordinates():
    for r, c in [(-0.1, 1.0), (1.1, 1.0), (0.5, -1.0), (float("nan"), 1.0)]:
        with pytest.raises(ValueError):
            fm.hte_to_formulation(r, c)


def test_identify_accepts_rdkit_spellings():
    assert fm.identify({"SMILES": "O=C1OCCO1", "InChIKey": "x"}) == "EC"
    assert fm.identify({"SMILES": "F[P-](F)(F)(F)(F)F.[Li+]", "InChIKey": ""}) == "LiPF6"
