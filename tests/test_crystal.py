"""crystal-sim: real CHGNet (with D3(BJ) and a SevenNet-0 cross-check) calculations on cells
of a few atoms, locally and through a broker with a real ``bigmap worker crystal-sim``
process; the structure library; the throughput planner; bad structures."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from bigmap.client import InputError, RequestFailed, ValidationFailed
from bigmap.tenants.crystal import tenant, throughput
from bigmap.tenants.crystal.library import LIBRARY, PAIRS, builtin
from bigmap.tenants.crystal.structures import to_cif
from tests.conftest import cli_worker

warnings.filterwarnings("ignore")

EXPECTED = {  # formula, space group number, atoms in the cell
    "LiFePO4": ("LiFePO4", 62, 28),
    "FePO4": ("FePO4", 62, 24),
    "LiCoO2": ("LiCoO2", 166, 4),
    "CoO2": ("CoO2", 166, 3),
    "LiMn2O4": ("LiMn2O4", 227, 14),
    "Mn2O4": ("MnO2", 227, 12),
    "LiC6": ("LiC6", 191, 7),
    "graphite": ("C", 194, 4),
    "Li": ("Li", 229, 2),
    "LiF": ("LiF", 225, 2),
    "Li2O": ("Li2O", 225, 3),
    "NaFePO4": ("NaFePO4", 62, 28),
    "Na": ("Na", 229, 2),
}


def run(quantity, method, **params):
    return tenant.run_local(quantity, method, params)


@pytest.mark.slow  # science: seconds to minutes (left out of make test-fast)
def test_library_reproduces_the_published_structures():
    assert set(LIBRARY) == set(EXPECTED)
    for name, (formula, sg, n) in EXPECTED.items():
        s = builtin(name)
        assert s.composition.reduced_formula == formula, name
        assert s.get_space_group_info()[1] == sg, name
        assert len(s) == n, name
        d = s.distance_matrix
        np.fill_diagonal(d, np.inf)
        assert d.min() > 1.4, name  # no overlapping or mis-placed Wyckoff sites
    # octahedral Mn-O in the spinel (1.96 Å) and the Fe-O octahedra of olivine (2.0-2.3 Å)
    spinel = builtin("LiMn2O4")
    mn = next(i for i, site in enumerate(spinel) if site.specie.symbol == "Mn")
    assert len(spinel.get_neighbors(spinel[mn], 2.1)) == 6
    for lith, delith in PAIRS.items():
        ion = "Na" if lith.startswith("Na") else "Li"
        assert builtin(lith).composition[ion] > builtin(delith).composition[ion]


@pytest.mark.slow  # science: seconds to minutes (left out of make test-fast)
def test_relaxed_structure_of_lif():
    out, ctx = run("relaxed_structure", "chgnet", structure="LiF", fmax=0.05)
    (r,) = out["structures"]
    assert r["converged"] and r["max_force"] <= 0.05 and r["n_atoms"] == 2
    # rocksalt LiF: primitive a = a_conv / sqrt(2), experiment a_conv = 4.026 Å (PBE-like +1%)
    assert r["lattice"]["a"] * 2**0.5 == pytest.approx(4.026, rel=0.03)
    assert max(abs(x) for x in r["stress"]) < 1.0  # GPa, relaxed cell
    assert len(r["magmoms"]) == 2 and max(abs(m) for m in r["magmoms"]) < 0.1
    assert -6.0 < r["energy_per_atom"] < -4.0
    assert r["cif"].startswith("# generated using pymatgen")
    assert ctx.provenance["relaxation"]["optimizer"] == "FIRE"
    assert ctx.provenance["throughput"]["strategy"] == "one_by_one"
    assert ctx.files[0][0] == "relaxed_0.cif"
    # rocksalt is 3-D bonded: no dispersion under "auto", no method limit
    assert out["layered"] == [False] and not out["dispersion_applied"]
    assert out["method_limits"] == []


@pytest.mark.slow  # science: seconds to minutes (left out of make test-fast)
def test_graphite_c_with_d3_within_3_percent():
    """Graphite's layers are bound by dispersion: CHGNet alone overshoots c (7.69 Å measured
    here), CHGNet + D3(BJ) lands within 3 % of 6.711 Å (Trucano & Chen 1975)."""
    out, ctx = run("relaxed_structure", "chgnet", structure="graphite", fmax=0.02)
    (r,) = out["structures"]
    assert out["layered"] == [True] and out["dispersion_applied"]  # "auto" found the layers
    assert r["converged"]
    assert r["lattice"]["c"] == pytest.approx(6.711, rel=0.03)
    assert r["lattice"]["a"] == pytest.approx(2.464, rel=0.02)
    assert "D3(BJ)" in ctx.provenance["relaxation"]["calculator"]
    bare, _ = run("relaxed_structure", "chgnet", structure="graphite", fmax=0.02, dispersion="none")
    assert bare["structures"][0]["lattice"]["c"] > r["lattice"]["c"] + 0.3
    assert any("without dispersion" in m["note"] for m in bare["method_limits"])


@pytest.mark.slow  # science: seconds to minutes (left out of make test-fast)
def test_intercalation_voltage_of_licoo2():
    out, ctx = run(
        "intercalation_voltage", "chgnet", lithiated="LiCoO2", delithiated="CoO2", fmax=0.1
    )
    assert out["formula"] == "CoO2 + 1 Li -> Li1CoO2" and out["li_per_host"] == 1
    # the formula, recomputed from the reported energies
    v = -(out["energy_lithiated"] - out["energy_delithiated"] - out["energy_li_metal"])
    assert out["average_voltage"] == pytest.approx(v)
    assert 2.5 < out["average_voltage"] < 5.0  # experiment ~3.9-4.0 V
    assert out["li_metal"]["formula"] == "Li2" and out["ion"] == "Li"
    # CoO2 is layered: "auto" adds D3 to all three structures
    assert out["dispersion_applied"] and ctx.provenance["layered"]["delithiated"]
    # a GGA+U-trained potential underestimates TM-oxide voltages: the result says so
    notes = " ".join(m["note"] + m["source"] for m in out["method_limits"])
    assert "transition-metal oxide" in notes and "Phys. Rev. B 70 (2004) 235121" in notes
    assert out["cross_check"] is None and out["uncertainty"] is None


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_sevennet_cross_check_widens_the_uncertainty():
    """The same voltage with SevenNet-0 (weights from the sevenn wheel, no download): its
    disagreement with CHGNet is the reported uncertainty."""
    out, ctx = run(
        "intercalation_voltage",
        "chgnet",
        lithiated="LiCoO2",
        delithiated="CoO2",
        fmax=0.1,
        cross_check="sevennet",
    )
    check = out["cross_check"]
    assert check["potential"].startswith("SevenNet-0") and 2.0 < check["average_voltage"] < 5.5
    assert check["difference"] == pytest.approx(out["average_voltage"] - check["average_voltage"])
    assert out["uncertainty"] == pytest.approx(abs(check["difference"]))
    assert all(c["converged"] for c in ctx.provenance["convergence"].values())
    assert {f[0] for f in ctx.files} == {"lithiated.cif", "delithiated.cif", "li_metal.cif"}


@pytest.mark.slow  # science: seconds to minutes (left out of make test-fast)
def test_vacancy_hop_in_lithium_metal():
    out, ctx = run(
        "migration_barrier",
        "chgnet_neb",
        structure="Li",
        supercell=[2, 2, 2],
        images=3,
        fmax=0.05,
        max_steps=150,
    )
    assert out["n_atoms"] == 15 and out["supercell"] == [2, 2, 2]
    assert out["hop_distance"] == pytest.approx(3.51 * 3**0.5 / 2, rel=0.05)
    e = [p["energy"] for p in out["profile"]]
    assert len(e) == 5 and e[0] == 0.0
    # a symmetric hop: equal end energies, the saddle in the middle
    assert abs(out["reaction_energy"]) < 0.02
    assert int(np.argmax(e)) == 2
    assert 0.01 < out["barrier"] < 0.5  # bcc Li vacancy migration: ~0.05-0.15 eV
    x = [p["reaction_coordinate"] for p in out["profile"]]
    assert x == sorted(x) and x[-1] >= out["hop_distance"] * 0.9
    assert out["converged"] and ctx.provenance["neb"]["interpolation"] == "idpp"
    assert "neb_profile.csv" in {f[0] for f in ctx.files}
    (limit,) = out["method_limits"]
    assert "too low" in limit["note"] and "npj Comput. Mater. 11 (2025) 9" in limit["source"]


@pytest.mark.slow  # science: seconds to minutes (left out of make test-fast)
def test_work_of_adhesion_li_on_lif():
    out, ctx = run(
        "interface_adhesion",
        "chgnet",
        film="Li",
        substrate="LiF",
        film_miller=[1, 1, 0],
        substrate_miller=[1, 1, 0],
        film_layers=1,
        substrate_layers=1,
        max_area=40,
        fmax=0.1,
        max_steps=100,
    )
    assert out["n_atoms"] <= 20 and out["area"] == pytest.approx(34.4, rel=0.05)
    assert out["strain"] < 0.05
    assert 0.05 < out["work_of_adhesion"] < 2.0  # J/m^2: Li sticks to LiF, weakly
    w = (out["energy_film"] + out["energy_substrate"] - out["energy_interface"]) / out["area"]
    assert out["work_of_adhesion"] == pytest.approx(w * 16.021766208)
    assert ctx.provenance["interface_builder"]["builder"].endswith("CoherentInterfaceBuilder")


@pytest.mark.parametrize(
    ("quantity", "method", "params", "message"),
    [
        ("relaxed_structure", "chgnet", {"structure": "unobtainium"}, "no built-in structure"),
        ("relaxed_structure", "chgnet", {"structure": {"cif": "data_x\nnonsense"}}, "cif"),
        (
            "relaxed_structure",
            "chgnet",
            {"structure": {"pymatgen": {"lattice": 3}}},
            "not a pymatgen Structure",
        ),
        ("relaxed_structure", "chgnet", {"structures": ["Li", "bad"]}, r"structures\[1\]"),
        ("relaxed_structure", "chgnet", {"structure": "Li", "structures": ["Li"]}, "exactly one"),
        (
            "intercalation_voltage",
            "chgnet",
            {"lithiated": "LiCoO2", "delithiated": "FePO4"},
            "must differ only in Li",
        ),
        (
            "intercalation_voltage",
            "chgnet",
            {"lithiated": "FePO4", "delithiated": "LiFePO4"},
            "no more Li or Na",
        ),
        (
            "intercalation_voltage",
            "chgnet",
            {"lithiated": "NaFePO4", "delithiated": "LiFePO4"},
            "must differ only in Na",
        ),
        (
            "intercalation_voltage",
            "chgnet",
            {"lithiated": "LiFePO4", "delithiated": "FePO4", "cross_check": "mace"},
            "cross_check",
        ),
        pytest.param(  # builds the supercell with CHGNet loaded: seconds
            "migration_barrier",
            "chgnet_neb",
            {"structure": "LiF", "hop": [1, 0]},
            "not a Li site",
            marks=pytest.mark.slow,
        ),
        pytest.param(  # searches the interfaces: seconds
            "interface_adhesion",
            "chgnet",
            {
                "film": "Li",
                "substrate": "LiF",
                "film_miller": [1, 1, 1],
                "substrate_miller": [1, 1, 1],
                "max_area": 20,
            },
            "no lattice match",
            marks=pytest.mark.slow,
        ),
    ],
)
def test_bad_input_is_a_clear_failure(quantity, method, params, message):
    from pydantic import ValidationError

    with pytest.raises((InputError, ValidationError), match=message):
        run(quantity, method, **params)


def _cif(species, coords, a=4.0):
    from pymatgen.core import Lattice, Structure

    return to_cif(Structure(Lattice.cubic(a), species, coords))


def test_unsupported_elements_and_overlapping_atoms_are_refused():
    with pytest.raises(InputError, match="Cm are not supported by CHGNet"):
        run("relaxed_structure", "chgnet", structure={"cif": _cif(["Cm"], [[0, 0, 0]])})
    overlap = _cif(["Li", "F"], [[0, 0, 0], [0.01, 0, 0]])
    with pytest.raises(InputError, match="overlapping atoms"):
        run("relaxed_structure", "chgnet", structure={"cif": overlap})
    from pymatgen.core import Lattice, Structure

    disordered = Structure(Lattice.cubic(4.0), [{"Li": 0.5, "Na": 0.5}], [[0, 0, 0]])
    with pytest.raises(InputError, match="partial occupancies"):
        run("relaxed_structure", "chgnet", structure={"pymatgen": disordered.as_dict()})


# ----------------------------------------------------------------------------- throughput


def test_plan_respects_the_memory_limit():
    cells = [builtin("LiF"), builtin("Li")]
    with pytest.raises(throughput.MemoryLimitError, match="over the 0.1 GB limit"):
        throughput.plan(cells, memory_limit_gb=0.1)
    p = throughput.plan(cells, memory_limit_gb=6.0)
    assert p.strategy == "one_by_one" and p.estimated_peak_gb < 1.0  # too little work
    big = [builtin("LiFePO4") for _ in range(32)]
    items = [throughput.graph_items(big[0])] * 32
    p = throughput.plan(big, memory_limit_gb=6.0, cores=2, static=False, items=items)
    assert p.strategy == "process_per_core" and p.workers == 2
    p = throughput.plan(big, memory_limit_gb=1.2, cores=2, static=False, items=items)
    assert p.strategy == "one_by_one" and "would need" in p.reason
    p = throughput.plan(big, memory_limit_gb=3.0, force="batched", items=items)
    assert p.batch_size >= 2 and p.estimated_peak_gb <= 3.0
    with pytest.raises(throughput.MemoryLimitError):
        throughput.plan(big, memory_limit_gb=1.2, cores=2, force="process_per_core", items=items)


@pytest.mark.slow  # science: seconds to minutes (left out of make test-fast)
def test_strategies_agree():
    cells = [builtin("LiF"), builtin("Li"), builtin("Li2O")]
    one = throughput.run_many(cells, throughput.plan(cells, force="one_by_one"))
    batched = throughput.run_many(cells, throughput.plan(cells, force="batched"))
    ppc = throughput.run_many(cells, throughput.plan(cells, force="process_per_core", cores=2))
    for a, b, c in zip(one, batched, ppc, strict=True):
        assert a["energy"] == pytest.approx(b["energy"], abs=1e-3)
        assert a["energy"] == pytest.approx(c["energy"], abs=1e-3)
        assert np.allclose(a["forces"], c["forces"], atol=1e-3)


# ----------------------------------------------------------------------------- broker


@pytest.fixture(scope="module")
def worker(live_one):
    with cli_worker(live_one, "crystal-sim", timeout=90):
        yield live_one


def test_through_the_broker(worker):
    live = worker
    with live.client("alice") as c:
        me = c.register_tenant({"name": "crystal-test-planner", "kind": "planner"})
        for q, m in [
            ("relaxed_structure", "chgnet"),
            ("intercalation_voltage", "chgnet"),
            ("migration_barrier", "chgnet_neb"),
            ("interface_adhesion", "chgnet"),
        ]:
            assert c.capability(q, m)["quantity"] == q
        cif = to_cif(builtin("Li"))
        req = c.create_request(
            "relaxed_structure", "chgnet", {"structure": {"cif": cif}}, tenant_id=me["id"]
        )
        res = c.wait_result(req["id"], timeout=180)
        (r,) = res["data"]["structures"]
        assert r["converged"] and r["formula"] == "Li2"
        assert res["software"]["name"] == "chgnet" and res["software"]["pymatgen"]
        assert res["provenance"]["relaxation"]["fmax_eV_per_A"] == 0.1
        assert res["provenance"]["throughput"]["strategy"] == "one_by_one"
        got = c.download(res["files"][0]["id"]).decode()
        assert "_cell_length_a" in got
        assert res["data"]["dispersion_applied"] is False and res["data"]["layered"] == [False]

        # the dispersion option through the broker: graphite with D3(BJ)
        req = c.create_request(
            "relaxed_structure",
            "chgnet",
            {"structure": "graphite", "dispersion": "d3bj", "fmax": 0.05},
            tenant_id=me["id"],
        )
        res = c.wait_result(req["id"], timeout=300)
        assert res["data"]["dispersion_applied"] is True
        assert res["data"]["structures"][0]["lattice"]["c"] == pytest.approx(6.711, rel=0.03)
        assert res["software"]["dftd3"] and res["software"]["sevenn"]
        spec = c.capability("intercalation_voltage", "chgnet")
        assert {"dispersion", "cross_check"} <= set(spec["parameter_schema"]["properties"])
        with pytest.raises(ValidationFailed) as exc:
            c.create_request(
                "relaxed_structure",
                "chgnet",
                {"structure": "graphite", "dispersion": "d4"},
                tenant_id=me["id"],
            )
        assert exc.value.status_code == 422 and "dispersion" in exc.value.message

        bad = c.create_request(
            "relaxed_structure",
            "chgnet",
            {"structure": {"cif": "this is not a CIF"}},
            tenant_id=me["id"],
        )
        with pytest.raises(RequestFailed, match="not a readable CIF"):
            c.wait_result(bad["id"], timeout=120)
        assert c.request(bad["id"])["status_info"]["last_error"]["kind"] == "input_error"

        with pytest.raises(ValidationFailed) as exc:
            c.create_request(
                "migration_barrier",
                "chgnet_neb",
                {"structure": "LiFePO4", "images": 1},
                tenant_id=me["id"],
            )
        assert exc.value.status_code == 422 and "images" in exc.value.message
