"""What the dashboard tests (and its screenshots) look at: a campaign run by a small test
planner through the broker's API, and results of several kinds posted by real codes.

The planner is the test's own (docs/campaigns.md is the contract it follows): it maximises
the conductivity of LiPF6 in EC:EMC 3:7 (by mass) over the salt's molality and the
temperature, and minimises the molality as a second objective. Its requests are served by
the real ``electrolyte-model`` tenant (the Landesfeind-Gasteiger 2019 fit for EC:EMC 3:7);
its model is a scikit-learn Gaussian process; its proposals come from a Sobol sequence and
then from an upper confidence bound. It posts proposal, observation, model_state (with the
prediction grid), decision and stop events, keeps ``summary`` up to date, screens in two
tiers (the second, the lab's ``conductivity/two_electrode``, has no provider here, so its
request waits in the queue), and obeys the user's ``control``.

The other results are computed here by real libraries and posted as a test instrument's:
a PyBaMM cycling run (the ``cell-sim`` tenant's function), an impedance spectrum of a
Randles circuit (impedance.py) written as an EC-Lab text export, a molecule embedded by RDKit
(ETKDG) and a crystal built and written as CIF by pymatgen.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from bigmap.client import BrokerClient, InputError, JobContext, Tenant
from bigmap.schemas import formulation as fm

C_RANGE = (0.2, 1.8)  # LiPF6 [mol/kg solvent]
T_RANGE = (268.15, 318.15)  # [K], inside the fit's 263-323 K
THRESHOLD = 0.8  # S/m: the screen tier's pass mark
SPEC = {
    "name": "LiPF6 in EC:EMC 3:7",
    "variables": [
        {"name": "c_LiPF6", "low": C_RANGE[0], "high": C_RANGE[1], "unit": "mol/kg"},
        {"name": "temperature", "low": T_RANGE[0], "high": T_RANGE[1], "unit": "K"},
    ],
    "objectives": [
        {"name": "conductivity", "direction": "maximize", "unit": "S/m"},
        {"name": "c_LiPF6", "direction": "minimize", "unit": "mol/kg"},
    ],
    "strategy": {"name": "ucb", "batch": 2},
    "budget": {"requests": 12, "cost": 40},
}


def formulation(c: float) -> list[dict[str, Any]]:
    """LiPF6 at molality ``c`` in EC:EMC 3:7 by mass, as a FINALES formulation."""
    mm = {k: fm.HTE_CHEMICALS[k]["molar_mass"] for k in ("EC", "EMC")}
    return fm.formulation_from_mole_fractions(
        {"LiPF6": c, "EC": 0.3 / mm["EC"], "EMC": 0.7 / mm["EMC"]}
    )


class LGIn(BaseModel):
    formulation: list[dict[str, Any]] = Field(min_length=1)
    temperature: float = Field(gt=0, le=1000, description="[K]")


class LGOut(BaseModel):
    run_info: dict[str, Any]
    conductivity: dict[str, Any]


lg_tenant = Tenant(
    "lg-fit",
    kind="simulation",
    description="conductivity from the Landesfeind-Gasteiger 2019 fits (test tenant)",
    software={"name": "bigmap-tests-lg-fit", "version": "1.0"},
)


@lg_tenant.capability(
    "conductivity",
    "landesfeind2019",
    parameters=LGIn,
    result=LGOut,
    units={
        "conductivity.values": "S/m",
        "conductivity.uncertainty": "S/m",
        "conductivity.temperature": "K",
    },
    limitations={"temperature": [{"min": 263.15, "max": 323.15}]},
)
def lg_conductivity(p: LGIn, ctx: JobContext) -> LGOut:
    """Conductivity of LiPF6 in a Landesfeind-Gasteiger solvent (J. Landesfeind and
    H. A. Gasteiger, J. Electrochem. Soc. 166 (2019) A3079, doi:10.1149/2.0571912jes)."""
    from bigmap.tenants.electrolyte import lg_predict

    try:
        out = lg_predict("conductivity", p.formulation, p.temperature)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    ctx.provenance["citation"] = out["model"]["citation"]
    return LGOut(
        run_info={"formulation": p.formulation, "internal_reference": "landesfeind2019"},
        conductivity={
            "values": [out["value"]],
            "uncertainty": [out["uncertainty"]],
            "temperature": p.temperature,
            "meta": {"success": True, "rating": 2},
            "model": out["model"],
        },
    )


class ScenarioPlanner:
    """One campaign, step by step, through the API (``step()`` is one loop of the planner)."""

    def __init__(self, client: BrokerClient, name: str = "conductivity screen", **access: Any):
        self.client = client
        self.tenant = client.register_tenant(
            {"name": "test-planner", "kind": "planner", "description": "the dashboard tests"}
        )
        self.camp = client.create_campaign(
            name, SPEC, tenant_id=self.tenant["id"], idempotency_key=str(uuid.uuid4()), **access
        )
        self.id = self.camp["id"]
        self.k = 0
        self.X: list[list[float]] = []
        self.Y: list[float] = []
        self.obs: list[dict[str, Any]] = []
        self.best_so_far: list[dict[str, float]] = []
        self.cost = 0.0
        self.n_failed = 0
        self.lab_request: dict[str, Any] | None = None
        self.gp = None
        self.sobol = __import__("scipy.stats", fromlist=["qmc"]).qmc.Sobol(2, seed=7)

    # -------------------------------------------------------------- API plumbing
    def event(self, kind: str, data: dict[str, Any], request_ids: list[str] | None = None) -> None:
        self.client.call(
            "POST",
            f"/api/v1/campaigns/{self.id}/events",
            json={"kind": kind, "data": data, "request_ids": request_ids or []},
        )

    def control(self) -> str:
        return self.client.campaign(self.id)["control"]

    def set_status(self, status: str, message: str = "") -> None:
        self.client.update_campaign(self.id, status=status, message=message)

    # -------------------------------------------------------------- the model
    def _scaled(self, X: np.ndarray) -> np.ndarray:
        lo = np.array([C_RANGE[0], T_RANGE[0]])
        hi = np.array([C_RANGE[1], T_RANGE[1]])
        return (np.asarray(X) - lo) / (hi - lo)

    def fit(self) -> None:
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        kernel = ConstantKernel(1.0) * Matern(length_scale=[0.5, 0.5], nu=2.5) + WhiteKernel(
            1e-4, (1e-8, 1e-1)
        )
        self.gp = GaussianProcessRegressor(kernel, normalize_y=True, random_state=0)
        self.gp.fit(self._scaled(self.X), np.array(self.Y))

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, std = self.gp.predict(self._scaled(X), return_std=True)
        return mean, std

    def grid(self, n: int = 12) -> dict[str, Any]:
        a = np.linspace(*C_RANGE, n)
        b = np.linspace(*T_RANGE, n)
        A, B = np.meshgrid(a, b, indexing="ij")  # mean[i][j] at (a[i], b[j])
        mean, std = self.predict(np.column_stack([A.ravel(), B.ravel()]))
        return {
            "variables": ["c_LiPF6", "temperature"],
            "a": a.round(6).tolist(),
            "b": b.round(6).tolist(),
            "mean": mean.reshape(n, n).round(6).tolist(),
            "std": std.reshape(n, n).round(6).tolist(),
            "fixed": {"solvent": "EC:EMC 3:7 by mass"},
        }

    # -------------------------------------------------------------- one loop
    def propose(self, n: int) -> tuple[str, list[tuple[list[float], dict[str, float] | None]]]:
        lo = np.array([C_RANGE[0], T_RANGE[0]])
        hi = np.array([C_RANGE[1], T_RANGE[1]])
        if self.gp is None:
            pts = lo + self.sobol.random(n) * (hi - lo)
            return "sobol", [(list(map(float, p)), None) for p in pts]
        cand = lo + np.random.default_rng(self.k).random((256, 2)) * (hi - lo)
        mean, std = self.predict(cand)
        order = np.argsort(-(mean + 2.0 * std))[:n]
        return "ucb", [
            (list(map(float, cand[i])), {"mean": float(mean[i]), "std": float(std[i])})
            for i in order
        ]

    def step(self, n: int = 2, timeout: float = 60) -> None:
        self.k += 1
        if self.k == 1:
            self.set_status("running", "started")
        strategy, cands = self.propose(n)
        reqs = []
        for x, _ in cands:
            reqs.append(
                self.client.create_request(
                    "conductivity",
                    "landesfeind2019",
                    {"formulation": formulation(x[0]), "temperature": x[1]},
                    tenant_id=self.tenant["id"],
                    campaign_id=self.id,
                )
            )
        self.event(
            "proposal",
            {
                "step": self.k,
                "strategy": strategy,
                "candidates": [
                    {
                        "x": {"c_LiPF6": x[0], "temperature": x[1]},
                        "capability": "conductivity/landesfeind2019",
                        "request_id": r["id"],
                        "acquisition": "ucb(beta=2)" if pred else "sobol",
                        "predicted": pred,
                        "tier": "screen",
                    }
                    for (x, pred), r in zip(cands, reqs, strict=True)
                ],
            },
            [r["id"] for r in reqs],
        )
        for (x, _), r in zip(cands, reqs, strict=True):
            try:
                res = self.client.wait_result(r["id"], timeout=timeout)
            except Exception as exc:  # a failed request is an observation too
                self.n_failed += 1
                self.obs.append({"x": x, "failed": True})
                self.event(
                    "observation",
                    {
                        "step": self.k,
                        "request_id": r["id"],
                        "result_id": None,
                        "capability": "conductivity/landesfeind2019",
                        "x": {"c_LiPF6": x[0], "temperature": x[1]},
                        "y": {},
                        "cost": 1.0,
                        "failed": True,
                        "message": str(exc),
                    },
                    [r["id"]],
                )
                continue
            value = res["data"]["conductivity"]["values"][0]
            self.X.append(x)
            self.Y.append(value)
            self.cost += 1.0
            self.obs.append({"x": x, "y": value, "result_id": res["id"], "request_id": r["id"]})
            self.event(
                "observation",
                {
                    "step": self.k,
                    "request_id": r["id"],
                    "result_id": res["id"],
                    "capability": "conductivity/landesfeind2019",
                    "x": {"c_LiPF6": x[0], "temperature": x[1]},
                    "y": {"conductivity": value, "c_LiPF6": x[0]},
                    "cost": 1.0,
                    "failed": False,
                    "message": "",
                },
                [r["id"]],
            )
            best = max(self.Y)
            self.best_so_far.append({"n": len(self.Y), "cost": self.cost, "value": best})
        if len(self.Y) >= 2:
            self.fit()
            self.event(
                "model_state",
                {
                    "step": self.k,
                    "model": "GaussianProcessRegressor(Matern 5/2 + white)",
                    "hyperparameters": {"kernel": str(self.gp.kernel_)},
                    "training_result_ids": [o["result_id"] for o in self.obs if "result_id" in o],
                    "n_train": len(self.Y),
                    "grid": self.grid(),
                },
            )
        passed = [o for o in self.obs if o.get("y", -1) >= THRESHOLD]
        if passed and self.lab_request is None:
            top = max(passed, key=lambda o: o["y"])
            self.lab_request = self.client.create_request(
                "conductivity",
                "two_electrode",
                {"formulation": formulation(top["x"][0]), "temperature": top["x"][1]},
                tenant_id=self.tenant["id"],
                campaign_id=self.id,
                queue=True,  # no station here: it waits for one, marked unservable
            )
            self.event(
                "decision",
                {
                    "step": self.k,
                    "kind": "advance",
                    "reason": f"{top['y']:.3f} S/m passes the screen ({THRESHOLD} S/m): measure it",
                    "request_id": self.lab_request["id"],
                },
                [self.lab_request["id"]],
            )
        self.update_summary(strategy, passed)

    def update_summary(self, strategy: str, passed: list[dict[str, Any]]) -> None:
        good = [o for o in self.obs if "y" in o]
        best = max(good, key=lambda o: o["y"]) if good else None
        pareto = [
            o
            for o in good
            if not any(
                (p["y"] >= o["y"] and p["x"][0] <= o["x"][0])
                and (p["y"] > o["y"] or p["x"][0] < o["x"][0])
                for p in good
            )
        ]
        xy = lambda o: {"c_LiPF6": o["x"][0], "temperature": o["x"][1]}  # noqa: E731
        summary = {
            "step": self.k,
            "strategy": strategy,
            "objectives": SPEC["objectives"],
            "n_requests": len(self.obs) + (1 if self.lab_request else 0),
            "n_results": len(good),
            "n_failed": self.n_failed,
            "n_pending": 1 if self.lab_request else 0,
            "cost_spent": self.cost,
            "budget": SPEC["budget"],
            "best": {
                "x": xy(best),
                "y": {"conductivity": best["y"]},
                "request_id": best["request_id"],
                "result_id": best["result_id"],
            }
            if best
            else None,
            "best_so_far": self.best_so_far,
            "pareto": [
                {
                    "x": xy(o),
                    "y": {"conductivity": o["y"], "c_LiPF6": o["x"][0]},
                    "result_id": o["result_id"],
                }
                for o in pareto
            ],
            "tiers": [
                {
                    "name": "screen",
                    "capability": "conductivity/landesfeind2019",
                    "threshold": THRESHOLD,
                    "n_in": len(good),
                    "n_passed": len(passed),
                },
                {
                    "name": "measure",
                    "capability": "conductivity/two_electrode",
                    "threshold": None,
                    "n_in": 1 if self.lab_request else 0,
                    "n_passed": 0,
                },
            ],
        }
        self.client.update_campaign(self.id, summary=summary)

    def run(
        self, steps: int, stop: threading.Event, poll: float = 0.2, between: float = 0.0
    ) -> None:
        """Steps until ``steps`` are done or ``stop`` is set, obeying pause and stop, with
        ``between`` seconds between steps (a slower loop, as a lab's would be)."""
        while self.k < steps and not stop.is_set():
            if self.k and between:
                time.sleep(between)
            control = self.control()
            if control == "stop":
                break
            if control == "pause":
                if self.client.campaign(self.id)["status"] != "paused":
                    self.set_status("paused", "paused by its user")
                time.sleep(poll)
                continue
            if self.client.campaign(self.id)["status"] == "paused":
                self.set_status("running", "resumed by its user")
            self.step()
        reason = "stopped by its user" if self.control() == "stop" else "budget spent"
        if not stop.is_set():
            self.event("stop", {"reason": reason})
            self.set_status("stopped" if "user" in reason else "completed", reason)


# ------------------------------------------------------------------ results of other kinds


def _capability(client: BrokerClient, quantity: str, method: str, description: str) -> None:
    client.add_capability(
        {
            "quantity": quantity,
            "method": method,
            "description": description,
            "parameter_schema": {"type": "object"},
            "result_schema": {"type": "object"},
        }
    )


def randles_mpt(r0: float = 12.0, r1: float = 40.0, c1: float = 2e-5, w: float = 60.0) -> bytes:
    """A Randles circuit's spectrum (impedance.py) as an EC-Lab PEIS text export."""
    from impedance.models.circuits import CustomCircuit

    f = np.logspace(6, -1, 50)
    z = CustomCircuit("R0-p(R1,C1)-W1", initial_guess=[r0, r1, c1, w]).predict(f)
    cols = ["freq/Hz", "Re(Z)/Ohm", "-Im(Z)/Ohm", "|Z|/Ohm", "Phase(Z)/deg"]
    lines = ["EC-Lab ASCII FILE", "Nb header lines : 5", "", "PEIS (emulated)", "\t".join(cols)]
    for fi, zi in zip(f, z, strict=True):
        phase = math.degrees(math.atan2(zi.imag, zi.real))
        lines.append("\t".join(f"{v:.7E}" for v in (fi, zi.real, -zi.imag, abs(zi), phase)))
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def post_other_results(client: BrokerClient) -> dict[str, dict[str, Any]]:
    """Cycling, impedance, molecule and crystal results of a test instrument; returns them by
    kind."""
    from pymatgen.core import Lattice, Structure
    from pymatgen.io.cif import CifWriter
    from rdkit import Chem
    from rdkit.Chem import AllChem

    from bigmap.tenants.cell import tenant as cell

    inst = client.register_tenant(
        {"name": "test-instrument", "kind": "instrument", "description": "dashboard tests"}
    )
    for q, m, d in [
        ("impedance_spectrum", "peis", "an impedance spectrum (EC-Lab text export attached)"),
        ("molecule_geometry", "rdkit_etkdg", "a 3-D geometry of a molecule (RDKit ETKDG)"),
        ("crystal_structure", "pymatgen", "a crystal structure (CIF)"),
    ]:
        _capability(client, q, m, d)
    out: dict[str, dict[str, Any]] = {}
    params = {
        "model": "SPM",
        "experiment": ["Discharge at 1C until 3.0 V", "Charge at 1C until 4.1 V"],
        "cycles": 3,
        "trace_points": 60,
    }
    data, _ = cell.run_local("cell_cycling", "pybamm", params)
    sim = cell.register(client)  # the cell-sim tenant (and its capabilities) of this user
    out["cycling"] = client.post_result(
        None,
        sim["id"],
        data,
        quantity="cell_cycling",
        method="pybamm",
        parameters=params,
        software={"name": "pybamm", "version": str(data["meta"]["pybamm_version"])},
    )
    out["impedance"] = client.post_result(
        None,
        inst["id"],
        {"circuit": "R0-p(R1,C1)-W1", "R0": 12.0, "R1": 40.0},
        quantity="impedance_spectrum",
        method="peis",
        parameters={},
        provenance={"emulated": True, "instrument": {"emulated": True, "model": "impedance.py"}},
        files=[("randles_peis.mpt", randles_mpt(), "text/plain")],
    )
    mol = Chem.AddHs(Chem.MolFromSmiles("C1COC(=O)O1"))
    AllChem.EmbedMolecule(mol, randomSeed=7)
    AllChem.MMFFOptimizeMolecule(mol)
    out["molecule"] = client.post_result(
        None,
        inst["id"],
        {
            "smiles": "C1COC(=O)O1",
            "name": "ethylene carbonate",
            "geometry": {"xyz": Chem.MolToXYZBlock(mol)},
        },
        quantity="molecule_geometry",
        method="rdkit_etkdg",
        parameters={"smiles": "C1COC(=O)O1"},
    )
    s = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(4.03), ["Li", "F"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    out["crystal"] = client.post_result(
        None,
        inst["id"],
        {
            "formula": s.composition.reduced_formula,
            "structure": {"formula": "LiF", "cif": str(CifWriter(s))},
        },
        quantity="crystal_structure",
        method="pymatgen",
        parameters={"name": "LiF rock salt"},
    )
    return out
