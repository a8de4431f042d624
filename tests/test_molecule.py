"""molecule-sim: redox_potential/gfn2_xtb with real GFN2-xTB and IPEA1-xTB (tblite) and
redox_potential/dft with real PySCF on small molecules, locally and through a broker with a
real ``bigmap worker molecule-sim`` process."""

from __future__ import annotations

import io

import pytest
from ase.io import read

from bigmap.client import CalculationFailed, InputError, RequestFailed, ValidationFailed
from bigmap.tenants.molecule import IPEA_SHIFT_EV, LI_ABSOLUTE_V, XTB_IPEA_SHIFT_HARTREE, tenant
from bigmap.tenants.molecule.redox import HARTREE_EV
from tests.conftest import cli_worker

FORMALDEHYDE = "C=O"


def run(**params):
    return tenant.run_local("redox_potential", "gfn2_xtb", params)


@pytest.fixture(scope="module")
def formaldehyde():
    return run(smiles=FORMALDEHYDE, conformers=2)


def test_result_follows_the_thermodynamic_cycle(formaldehyde):
    out, ctx = formaldehyde
    assert out["smiles"] == FORMALDEHYDE and out["formula"] == "CH2O"
    assert abs(LI_ABSOLUTE_V - 1.40) < 1e-12
    assert out["oxidation_potential"] == pytest.approx(out["ionization_energy"] - 1.40)
    assert out["reduction_potential"] == pytest.approx(out["electron_affinity"] - 1.40)
    assert out["electrochemical_window"] == pytest.approx(
        out["oxidation_potential"] - out["reduction_potential"]
    )
    # relaxing the ion can only lower its energy: adiabatic IE <= vertical IE, EA >= vertical
    assert out["ionization_energy"] <= out["vertical_ionization_energy"] + 1e-3
    assert out["electron_affinity"] >= out["vertical_electron_affinity"] - 1e-3
    assert out["homo"] < out["lumo"] and out["homo_lumo_gap"] > 1.0
    assert out["oxidation_potential"] > out["reduction_potential"]
    assert out["neutral"]["charge"] == 0 and out["oxidized"]["charge"] == 1
    assert out["reduced"]["charge"] == -1 and out["oxidized"]["multiplicity"] == 2
    assert out["energy_method"] == out["geometry_method"] == "GFN2-xTB"
    # xtb's IP/EA shift, applied once per electron (grimme-lab/xtb src/prog/main.F90:902,921)
    assert out["energy_shift"] == IPEA_SHIFT_EV == XTB_IPEA_SHIFT_HARTREE * HARTREE_EV
    assert round(IPEA_SHIFT_EV, 4) == 4.8455 and XTB_IPEA_SHIFT_HARTREE == 0.178069
    e = {n: out[n]["energy"] for n in ("neutral", "oxidized", "reduced")}
    assert out["ionization_energy"] == pytest.approx(
        e["oxidized"] - e["neutral"] - 4.8455, abs=1e-3
    )
    assert out["electron_affinity"] == pytest.approx(e["neutral"] - e["reduced"] - 4.8455, abs=1e-3)
    for name in ("neutral", "oxidized", "reduced"):
        sp = out[name]
        assert sp["converged"] and sp["max_force"] <= 0.02 + 1e-9
        atoms = read(io.StringIO(sp["xyz"]), format="xyz")
        assert atoms.get_chemical_formula() == "CH2O"
    assert sorted(f[0] for f in ctx.files) == ["neutral.xyz", "oxidized.xyz", "reduced.xyz"]
    assert ctx.provenance["solvation"] == {"model": "alpb", "solvent": "acetone", "epsilon": None}
    assert ctx.provenance["convergence"]["neutral"]["converged"]
    assert tenant.software["name"] == "tblite" and tenant.software["version"][0].isdigit()


def test_solvent_stabilises_the_ions(formaldehyde):
    solv, _ = formaldehyde
    gas, ctx = run(smiles=FORMALDEHYDE, conformers=1, solvent=None)
    assert ctx.provenance["solvation"]["model"] == "none"
    # a continuum solvent lowers the ions' energies by eV: IE falls, EA rises
    assert gas["ionization_energy"] > solv["ionization_energy"] + 0.5
    assert gas["electron_affinity"] < solv["electron_affinity"] - 0.5
    eps, ctx = run(smiles=FORMALDEHYDE, conformers=1, solvent="ec")
    assert ctx.provenance["solvation"] == {
        "model": "alpb-epsilon",
        "solvent": "ec",
        "epsilon": 89.78,
    }
    assert eps["ionization_energy"] < gas["ionization_energy"]


def test_ipea1_optimises_its_own_geometries(formaldehyde):
    gfn2, _ = formaldehyde
    out, ctx = run(smiles=FORMALDEHYDE, conformers=2, method="IPEA1-xTB")
    assert out["energy_method"] == out["geometry_method"] == "IPEA1-xTB"
    assert (
        out["energy_shift"] == IPEA_SHIFT_EV and ctx.provenance["energy_shift_ev"] == IPEA_SHIFT_EV
    )
    # its own geometries, not GFN2-xTB's
    a = read(io.StringIO(out["neutral"]["xyz"]), format="xyz").positions
    b = read(io.StringIO(gfn2["neutral"]["xyz"]), format="xyz").positions
    assert abs(a - b).max() > 1e-3
    assert all(out[n]["converged"] for n in ("neutral", "oxidized", "reduced"))
    assert out["oxidation_potential"] > out["reduction_potential"]


CARBONATES = {
    "EC": "O=C1OCCO1",
    "PC": "CC1COC(=O)O1",
    "DMC": "COC(=O)OC",
    "EMC": "CCOC(=O)OC",
    "FEC": "O=C1OCC(F)O1",
    "VC": "O=C1OC=CO1",
}


@pytest.mark.slow  # science: seconds to minutes (left out of make test-fast)
@pytest.mark.parametrize("method", ["GFN2-xTB", "IPEA1-xTB"])
@pytest.mark.parametrize("name", list(CARBONATES))
def test_adiabatic_is_never_less_favourable_than_vertical(name, method):
    """Relaxing the ion can only lower its energy: the adiabatic oxidation potential is at
    or below the vertical one and the adiabatic reduction potential at or above it."""
    out, ctx = run(smiles=CARBONATES[name], conformers=1, method=method)
    assert out["oxidation_potential"] <= out["vertical_oxidation_potential"] + 1e-9
    assert out["reduction_potential"] >= out["vertical_reduction_potential"] - 1e-9
    assert out["ionization_energy"] <= out["vertical_ionization_energy"] + 1e-9
    assert out["electron_affinity"] >= out["vertical_electron_affinity"] - 1e-9
    assert all(v >= -1e-9 for v in ctx.provenance["relaxation_energy_ev"].values())
    # with the shift, carbonates oxidise between 5 and 8.5 V vs Li+/Li (not 4.85 V higher)
    assert 5.0 < out["oxidation_potential"] < 8.5, out["oxidation_potential"]


@pytest.mark.slow
def test_dft_agrees_with_xtb_on_ordering():
    """The confirmation step: B3LYP-D3(BJ)/def2-SVP/C-PCM orders the oxidation potentials of
    ammonia and water as GFN2-xTB does (NH3 oxidises first), and follows the same cycle."""
    ox = {}
    for smi in ("N", "O"):
        d, ctx = tenant.run_local(
            "redox_potential", "dft", {"smiles": smi, "conformers": 1, "solvent": "water"}
        )
        x, _ = run(smiles=smi, conformers=1, solvent="water")
        ox[smi] = (d["oxidation_potential"], x["oxidation_potential"])
        assert d["energy_method"] == "B3LYP-D3(BJ)/def2-SVP/C-PCM"
        assert d["geometry_method"] == "GFN2-xTB" and d["energy_shift"] == 0.0
        assert d["oxidation_potential"] <= d["vertical_oxidation_potential"] + 1e-9
        assert d["reduction_potential"] >= d["vertical_reduction_potential"] - 1e-9
        assert d["oxidation_potential"] == pytest.approx(d["ionization_energy"] - LI_ABSOLUTE_V)
        assert d["homo"] < d["lumo"]
        assert ctx.software["name"] == "pyscf" and ctx.provenance["dft"]["scf_runs"] == 5
        assert ctx.provenance["solvation"] == {
            "model": "C-PCM",
            "solvent": "water",
            "epsilon": 78.355,
        }
    assert ox["N"][0] < ox["O"][0] and ox["N"][1] < ox["O"][1]
    # the two methods within 1.5 V of each other for these small molecules
    assert all(abs(d - x) < 1.5 for d, x in ox.values()), ox


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        ({"smiles": "C1CC("}, InputError, "RDKit cannot parse"),
        ({"smiles": "[U]"}, InputError, "U are not supported by GFN2-xTB"),
        ({"smiles": "O", "multiplicity": 2}, InputError, "multiplicity 2 is impossible"),
        ({"smiles": "O", "solvent": "unobtainium"}, InputError, "unknown solvent"),
        ({"smiles": "O", "solvent": 0.5}, InputError, "dielectric constant must be > 1"),
        ({"smiles": "O", "max_scf_iterations": 1}, CalculationFailed, "SCF not converged"),
    ],
)
def test_bad_input_is_a_clear_failure(params, error, message):
    with pytest.raises(error, match=message):
        run(**params)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"smiles": "CCCCCCCCCCCC"}, "atoms with hydrogens; redox_potential/dft here takes <= 30"),
        ({"smiles": "O", "solvent": "woctanol"}, "no dielectric constant for 'woctanol'"),
        ({"smiles": "[U]"}, "not supported by redox_potential/dft"),
    ],
)
def test_dft_refuses_what_it_cannot_do(params, message):
    with pytest.raises(InputError, match=message):
        tenant.run_local("redox_potential", "dft", params)


# ----------------------------------------------------------------------------- broker


@pytest.fixture(scope="module")
def worker(live_one):
    with cli_worker(live_one, "molecule-sim", timeout=60) as registered:
        yield live_one, registered


def test_through_the_broker(worker):
    live, _ = worker
    with live.client("alice") as c:
        t = c.register_tenant({"name": "molecule-test-planner", "kind": "planner"})
        spec = c.capability("redox_potential", "gfn2_xtb")
        assert "oxidation_potential" in spec["result_schema"]["properties"]
        req = c.create_request(
            "redox_potential", "gfn2_xtb", {"smiles": "C=O", "conformers": 1}, tenant_id=t["id"]
        )
        res = c.wait_result(req["id"], timeout=120)
        data = res["data"]
        assert data["oxidation_potential"] > data["reduction_potential"]
        assert res["software"]["name"] == "tblite" and res["software"]["method"] == "GFN2-xTB"
        assert data["energy_shift"] == pytest.approx(4.8455, abs=1e-4)
        assert res["provenance"]["convergence"]["oxidized"]["converged"] is True
        names = sorted(f["name"] for f in res["files"])
        assert names == ["neutral.xyz", "oxidized.xyz", "reduced.xyz"]
        xyz = c.download(next(f["id"] for f in res["files"] if f["name"] == "neutral.xyz"))
        assert xyz.decode().splitlines()[0].strip() == "4"

        bad = c.create_request(
            "redox_potential", "gfn2_xtb", {"smiles": "not a smiles"}, tenant_id=t["id"]
        )
        with pytest.raises(RequestFailed, match="RDKit cannot parse"):
            c.wait_result(bad["id"], timeout=60)
        err = c.request(bad["id"])["status_info"]["last_error"]
        assert err["kind"] == "input_error"

        with pytest.raises(ValidationFailed) as exc:  # the schema refuses it at the broker
            c.create_request(
                "redox_potential", "gfn2_xtb", {"smiles": "O", "conformers": 0}, tenant_id=t["id"]
            )
        assert exc.value.status_code == 422 and "conformers" in exc.value.message

        # the DFT confirmation step is served by the same worker, with its options
        spec = c.capability("redox_potential", "dft")
        props = spec["parameter_schema"]["properties"]
        assert {"functional", "basis", "dispersion", "solvation_model", "geometry"} <= set(props)
        assert spec["cost"] > c.capability("redox_potential", "gfn2_xtb")["cost"]
        with pytest.raises(ValidationFailed) as exc:
            c.create_request(
                "redox_potential", "dft", {"smiles": "O", "basis": "sto-3g"}, tenant_id=t["id"]
            )
        assert exc.value.status_code == 422 and "basis" in exc.value.message
        req = c.create_request(
            "redox_potential",
            "dft",
            {"smiles": "[H][H]", "conformers": 1, "solvent": None, "dispersion": "none"},
            tenant_id=t["id"],
        )
        res = c.wait_result(req["id"], timeout=300)
        assert res["software"]["name"] == "pyscf"
        assert res["data"]["energy_method"] == "B3LYP/def2-SVP"
        assert res["data"]["oxidation_potential"] > res["data"]["reduction_potential"]
