"""molecule-sim: redox_potential/gfn2_xtb with real GFN2-xTB (tblite) on small molecules,
locally and through a broker with a real ``bigmap worker molecule-sim`` process."""

from __future__ import annotations

import io

import pytest
from ase.io import read

from bigmap.client import CalculationFailed, InputError, RequestFailed, ValidationFailed
from bigmap.tenants.molecule import IPEA_SHIFT_EV, LI_ABSOLUTE_V, tenant
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
    assert out["energy_method"] == "GFN2-xTB" and out["energy_shift"] == 0.0
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


def test_ipea1_energies_apply_the_published_shift(formaldehyde):
    gfn2, _ = formaldehyde
    out, ctx = run(smiles=FORMALDEHYDE, conformers=2, energy_method="IPEA1-xTB")
    assert out["energy_method"] == "IPEA1-xTB" and out["energy_shift"] == IPEA_SHIFT_EV == 4.8455
    assert ctx.provenance["energy_shift_ev"] == 4.8455
    # same geometries (GFN2-xTB), different energies
    a = read(io.StringIO(out["neutral"]["xyz"]), format="xyz").positions
    b = read(io.StringIO(gfn2["neutral"]["xyz"]), format="xyz").positions
    assert abs(a - b).max() < 1e-6
    assert abs(out["oxidation_potential"] - gfn2["oxidation_potential"]) > 0.5
    assert out["oxidation_potential"] > out["reduction_potential"]


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
