"""Tenant ``molecule-sim``: redox windows of electrolyte molecules with GFN2-xTB.

Capability ``redox_potential/gfn2_xtb``: a molecule by SMILES -> RDKit 3D embedding and a
small conformer search -> GFN2-xTB (tblite) geometry optimisation of the neutral (the given
charge), the oxidised (+1) and the reduced (-1) species in an implicit solvent (ALPB, a named
solvent or a dielectric constant) -> adiabatic and vertical ionisation energies and electron
affinities, HOMO/LUMO, and oxidation/reduction potentials vs Li+/Li.

Method references:

- GFN2-xTB: C. Bannwarth, S. Ehlert, S. Grimme, J. Chem. Theory Comput. 15 (2019) 1652,
  doi:10.1021/acs.jctc.8b01176. Code: tblite (https://github.com/tblite/tblite).
- ALPB implicit solvation: S. Ehlert, M. Stahn, S. Spicher, S. Grimme, J. Chem. Theory
  Comput. 17 (2021) 4250, doi:10.1021/acs.jctc.1c00471. A named solvent uses the
  parametrised ALPB model (with the CDS and empirical shift terms); a dielectric constant
  uses the non-empirical ALPB electrostatics only (tblite "GBE" with the P16 kernel).
- ETKDG conformer embedding: S. Riniker, G. A. Landrum, J. Chem. Inf. Model. 55 (2015) 2562.

The thermodynamic cycle (one electron, 298 K, all species in the same continuum solvent)::

    M(solv) -> M+(solv) + e-      dG_ox  = G(M+) - G(M)          (= adiabatic IE in solution)
    M(solv) + e- -> M-(solv)      dG_red = G(M-) - G(M)          (= -adiabatic EA in solution)

    E_ox  (V vs Li+/Li) =  dG_ox / e  - E_abs(SHE) - E(Li+/Li vs SHE)
    E_red (V vs Li+/Li) = -dG_red / e - E_abs(SHE) - E(Li+/Li vs SHE)

with the absolute potential of the standard hydrogen electrode E_abs(SHE) = 4.44 V
(S. Trasatti, Pure Appl. Chem. 58 (1986) 955, IUPAC recommendation) and the Li+/Li couple
at -3.04 V vs SHE (A. J. Bard, R. Parsons, J. Jordan, Standard Potentials in Aqueous
Solution, IUPAC/Marcel Dekker 1985; CRC Handbook "Electrochemical series"), i.e. the
constant 4.44 - 3.04 = 1.40 V that Borodin and co-workers use for carbonate electrolytes
(O. Borodin, W. Behl, T. R. Jow, J. Phys. Chem. C 117 (2013) 8661).

G is approximated by the GFN2-xTB total energy, which includes the ALPB solvation free
energy; zero-point and thermal vibrational terms are left out (they change redox potentials
of small organics by ~0.1 V). No empirical shift is applied: GFN2-xTB's minimal valence
basis misplaces the energy of an added or removed electron by several eV (measured here for
EC, PC, DMC and EMC in acetone: oxidation potentials 4.5-5.0 V above published DFT values,
reduction potentials ~4.5 V above the IPEA1-xTB ones), so absolute GFN2-xTB potentials are
far off and only trends between related molecules carry meaning.

``energy_method="IPEA1-xTB"`` keeps the GFN2-xTB geometries and takes the energies from
IPEA1-xTB, the xtb authors' reparametrisation of GFN1-xTB for ionisation energies and
electron affinities, with its published constant shift of 4.8455 eV per electron, applied as
xtb does (IE = E(M+) - E(M) - 4.8455 eV, EA = E(M) - E(M-) - 4.8455 eV): V. Asgeirsson,
C. A. Bauer, S. Grimme, Chem. Sci. 8 (2017) 4879, doi:10.1039/c7sc00601b, and xtb's
``--vipea`` ("empirical IP shift (eV): 4.8455"). ``benchmarks/validation_atomistic.py``
compares both with published calculations.
"""

from __future__ import annotations

import io
import math
import os
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from bigmap.client import CalculationFailed, InputError, JobContext, Tenant, package_version

# --------------------------------------------------------------------------- constants

#: absolute potential of the SHE [V]: Trasatti, Pure Appl. Chem. 58 (1986) 955 (IUPAC).
SHE_ABSOLUTE_V = 4.44
#: Li+/Li vs SHE [V]: Bard, Parsons, Jordan, Standard Potentials in Aqueous Solution (1985).
LI_VS_SHE_V = -3.04
#: subtract from an absolute potential to get V vs Li+/Li
LI_ABSOLUTE_V = SHE_ABSOLUTE_V + LI_VS_SHE_V

#: GFN2-xTB is parametrised for Z = 1..86 (Bannwarth et al. 2019).
MAX_Z = 86

#: ALPB solvents with GFN2-xTB parameters in tblite (Ehlert et al. 2021, Table 1)
ALPB_SOLVENTS = [
    "acetone",
    "acetonitrile",
    "aniline",
    "benzaldehyde",
    "benzene",
    "ch2cl2",
    "chcl3",
    "cs2",
    "dioxane",
    "dmf",
    "dmso",
    "ether",
    "ethylacetate",
    "furane",
    "hexadecane",
    "hexane",
    "methanol",
    "nitromethane",
    "octanol",
    "woctanol",
    "phenol",
    "toluene",
    "thf",
    "water",
    "ethanol",
]

#: battery solvents without ALPB parameters: static dielectric constants from K. Xu,
#: Chem. Rev. 104 (2004) 4303, Table 1 (EC at 40 degC, the others at 25 degC except PC, 20).
DIELECTRIC_CONSTANTS = {
    "ec": 89.78,
    "pc": 64.92,
    "dmc": 3.107,
    "emc": 2.958,
    "dec": 2.805,
}

HARTREE_EV = 27.211386245988  # CODATA 2018

#: IPEA1-xTB's empirical shift per added/removed electron [eV]: Asgeirsson, Bauer, Grimme,
#: Chem. Sci. 8 (2017) 4879 (the value printed by xtb --vipea).
IPEA_SHIFT_EV = 4.8455

#: OpenMP threads of one GFN2-xTB calculation. Small molecules gain nothing from threads, and
#: on a shared, loaded machine OpenMP spinning made a 1 s job take 14 s (measured here).
XTB_THREADS = int(os.environ.get("BIGMAP_XTB_THREADS", "1"))


# --------------------------------------------------------------------------- schemas


class RedoxInput(BaseModel):
    """Parameters of ``redox_potential/gfn2_xtb``."""

    model_config = ConfigDict(extra="forbid")

    smiles: str = Field(min_length=1, max_length=500, description="the molecule (SMILES)")
    charge: int | None = Field(
        default=None,
        ge=-4,
        le=4,
        description="total charge of the reference species; default: the SMILES formal charges",
    )
    multiplicity: int | None = Field(
        default=None,
        ge=1,
        le=6,
        description="spin multiplicity of the reference species; default: from radical electrons",
    )
    solvent: str | float | None = Field(
        default="acetone",
        description=(
            "implicit solvent: an ALPB solvent name (parametrised ALPB), a battery solvent with a "
            "tabulated dielectric constant (ec, pc, dmc, emc, dec; non-empirical ALPB), a "
            "dielectric constant > 1 (non-empirical ALPB), or null for the gas phase"
        ),
    )
    conformers: int = Field(default=5, ge=1, le=50, description="RDKit conformers to embed")
    seed: int = Field(default=42, ge=0, description="random seed of the embedding")
    fmax: float = Field(
        default=0.02, gt=0, le=1.0, description="force criterion of the optimisations [eV/Å]"
    )
    max_steps: int = Field(default=400, ge=1, le=5000, description="optimiser steps per species")
    max_scf_iterations: int = Field(default=250, ge=1, le=1000, description="SCC iterations")
    energy_method: Literal["GFN2-xTB", "IPEA1-xTB"] = Field(
        default="GFN2-xTB",
        description=(
            "energies for IE/EA and the potentials: GFN2-xTB (no shift) or IPEA1-xTB single "
            "points at the GFN2-xTB geometries with its published 4.8455 eV shift"
        ),
    )

    @field_validator("solvent")
    @classmethod
    def _solvent(cls, v: str | float | None) -> str | float | None:
        if isinstance(v, str):
            v = v.strip().lower()
            if v in ("", "none", "gas", "vacuum"):
                return None
        elif v is not None and not v > 1.0:
            raise ValueError("a dielectric constant must be > 1")
        return v


class Solvation(BaseModel):
    model: str = Field(description="alpb (parametrised), alpb-epsilon (non-empirical) or none")
    solvent: str | None = None
    epsilon: float | None = None


class SpeciesResult(BaseModel):
    charge: int
    multiplicity: int
    energy: float = Field(description="GFN2-xTB total energy at its own optimised geometry [eV]")
    converged: bool
    steps: int
    max_force: float = Field(description="largest residual force [eV/Å]")
    xyz: str = Field(description="optimised geometry, XYZ")
    bonds_changed: list[str] = Field(
        default_factory=list,
        description="bonds of the reference geometry broken or formed on optimisation",
    )


class RedoxOutput(BaseModel):
    """Result of ``redox_potential/gfn2_xtb``. Energies in eV, potentials in V vs Li+/Li."""

    smiles: str = Field(description="canonical SMILES")
    formula: str
    solvation: Solvation
    energy_method: str = Field(description="method of the energies (geometries: GFN2-xTB)")
    energy_shift: float = Field(description="empirical shift per electron applied [eV]")
    oxidation_potential: float = Field(description="adiabatic oxidation potential [V vs Li+/Li]")
    reduction_potential: float = Field(description="adiabatic reduction potential [V vs Li+/Li]")
    vertical_oxidation_potential: float = Field(description="[V vs Li+/Li]")
    vertical_reduction_potential: float = Field(description="[V vs Li+/Li]")
    electrochemical_window: float = Field(description="oxidation - reduction potential [V]")
    ionization_energy: float = Field(description="adiabatic IE in the solvent [eV]")
    vertical_ionization_energy: float = Field(description="[eV]")
    electron_affinity: float = Field(description="adiabatic EA in the solvent [eV]")
    vertical_electron_affinity: float = Field(description="[eV]")
    homo: float = Field(description="HOMO energy of the optimised reference species [eV]")
    lumo: float = Field(description="LUMO energy of the optimised reference species [eV]")
    homo_lumo_gap: float = Field(description="[eV]")
    neutral: SpeciesResult = Field(description="the reference species (the given charge)")
    oxidized: SpeciesResult
    reduced: SpeciesResult
    conformer_energies: list[float] = Field(
        description="GFN2-xTB single-point energies of the RDKit conformers, relative [eV]"
    )
    reference_potentials: dict[str, float] = Field(
        description="absolute SHE potential and Li+/Li vs SHE used in the cycle [V]"
    )


# --------------------------------------------------------------------------- tenant


def _software() -> dict[str, Any]:
    return {
        "name": "tblite",
        "version": package_version("tblite"),
        "method": "GFN2-xTB",
        "rdkit": package_version("rdkit"),
        "ase": package_version("ase"),
    }


tenant = Tenant(
    "molecule-sim",
    kind="simulation",
    description="Electrolyte molecules with GFN2-xTB (tblite) and RDKit: redox windows.",
    software=_software,
)


def _charge_multiplicity(mol: Any, p: RedoxInput) -> tuple[int, int]:
    from rdkit import Chem

    charge = p.charge if p.charge is not None else Chem.GetFormalCharge(mol)
    electrons = sum(a.GetAtomicNum() for a in mol.GetAtoms()) - charge
    if p.multiplicity is not None:
        mult = p.multiplicity
    else:
        radicals = sum(a.GetNumRadicalElectrons() for a in mol.GetAtoms())
        mult = radicals + 1 if radicals else (1 if electrons % 2 == 0 else 2)
    if (electrons + mult - 1) % 2 != 0:
        raise InputError(
            f"multiplicity {mult} is impossible with {electrons} electrons (charge {charge})"
        )
    if mult - 1 > electrons:
        raise InputError(f"multiplicity {mult} needs more than {electrons} electrons")
    return charge, mult


def _parse(smiles: str) -> Any:
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise InputError(f"smiles: RDKit cannot parse {smiles!r}")
    bad = sorted(
        {a.GetSymbol() for a in mol.GetAtoms() if not 1 <= a.GetAtomicNum() <= MAX_Z},
    )
    if bad:
        raise InputError(
            f"smiles: element(s) {', '.join(bad)} are not supported by GFN2-xTB (Z = 1..{MAX_Z})"
        )
    if mol.GetNumAtoms() > 200:
        raise InputError(f"smiles: {mol.GetNumAtoms()} heavy atoms; this capability takes <= 200")
    return Chem.AddHs(mol)


def _embed(mol: Any, n: int, seed: int) -> list[np.ndarray]:
    from rdkit.Chem import AllChem

    if mol.GetNumAtoms() == 1:
        return [np.zeros((1, 3))]
    params = AllChem.ETKDGv3()
    params.randomSeed = seed
    ids = list(AllChem.EmbedMultipleConfs(mol, numConfs=n, params=params))
    if not ids:
        params.useRandomCoords = True
        ids = list(AllChem.EmbedMultipleConfs(mol, numConfs=n, params=params))
    if not ids:
        raise InputError("smiles: RDKit could not embed the molecule in 3D")
    if AllChem.MMFFHasAllMoleculeParams(mol):
        AllChem.MMFFOptimizeMoleculeConfs(mol, maxIters=500)
    elif AllChem.UFFHasAllMoleculeParams(mol):
        AllChem.UFFOptimizeMoleculeConfs(mol, maxIters=500)
    return [mol.GetConformer(i).GetPositions() for i in ids]


def _solvation(solvent: str | float | None) -> tuple[tuple[Any, ...] | None, Solvation]:
    if solvent is None:
        return None, Solvation(model="none")
    if isinstance(solvent, str):
        if solvent in ALPB_SOLVENTS:
            return ("alpb", solvent), Solvation(model="alpb", solvent=solvent)
        if solvent in DIELECTRIC_CONSTANTS:
            eps = DIELECTRIC_CONSTANTS[solvent]
            return ("gbe", eps, "p16"), Solvation(
                model="alpb-epsilon", solvent=solvent, epsilon=eps
            )
        raise InputError(
            f"solvent: unknown solvent {solvent!r}; use one of {', '.join(ALPB_SOLVENTS)}, "
            f"{', '.join(DIELECTRIC_CONSTANTS)} or a dielectric constant"
        )
    return ("gbe", float(solvent), "p16"), Solvation(model="alpb-epsilon", epsilon=float(solvent))


class _XTB:
    """GFN2-xTB energies, forces and orbitals through tblite's Python API."""

    def __init__(
        self,
        numbers: np.ndarray,
        solvation: tuple[Any, ...] | None,
        max_iter: int,
        method: str = "GFN2-xTB",
    ):
        self.method = method
        self.numbers = numbers
        self.solvation = solvation
        self.max_iter = max_iter

    def calculator(self, positions: np.ndarray, charge: int, mult: int) -> Any:
        from tblite.interface import Calculator

        bohr = 0.52917721090380  # CODATA 2018 [Å]
        calc = Calculator(self.method, self.numbers, positions / bohr, charge=charge, uhf=mult - 1)
        calc.set("verbosity", 0)
        calc.set("max-iter", self.max_iter)
        if self.solvation is not None:
            kind, *args = self.solvation
            calc.add(f"{kind}-solvation", *args)
        return calc

    def single_point(self, positions: np.ndarray, charge: int, mult: int) -> Any:
        try:
            return self.calculator(positions, charge, mult).singlepoint()
        except RuntimeError as exc:  # TBLiteRuntimeError: SCF not converged and friends
            raise CalculationFailed(
                f"{self.method} failed for charge {charge}, multiplicity {mult}: {exc}"
            ) from None

    def ase_calculator(self, charge: int, mult: int) -> Any:
        from tblite.ase import TBLite

        kwargs: dict[str, Any] = {
            "method": "GFN2-xTB",
            "charge": charge,
            "multiplicity": mult,
            "verbosity": 0,
            "max_iterations": self.max_iter,
        }
        if self.solvation is not None:
            kwargs["solvation"] = self.solvation
        return TBLite(**kwargs)


def _frontier(res: Any) -> tuple[float, float]:
    """HOMO and LUMO [eV]: the highest orbital holding at least half an electron and the
    lowest holding less (for an open-shell species: the highest singly occupied and the lowest
    empty orbital; occupations are Fermi-smeared at 300 K)."""
    eps = np.asarray(res.get("orbital-energies"), dtype=float).ravel() * HARTREE_EV
    occ = np.asarray(res.get("orbital-occupations"), dtype=float).ravel()
    occupied, empty = eps[occ >= 0.5], eps[occ < 0.5]
    if occupied.size == 0 or empty.size == 0:
        raise CalculationFailed("no HOMO or no LUMO in the GFN2-xTB orbitals")
    return float(occupied.max()), float(empty.min())


def _xyz(numbers: np.ndarray, positions: np.ndarray, comment: str) -> str:
    from ase import Atoms
    from ase.io import write

    buf = io.StringIO()
    write(buf, Atoms(numbers=numbers, positions=positions), format="xyz", comment=comment)
    return buf.getvalue()


def _bonds(numbers: np.ndarray, positions: np.ndarray) -> set[tuple[int, int]]:
    from ase.data import covalent_radii

    r = covalent_radii[numbers]
    d = np.linalg.norm(positions[:, None, :] - positions[None, :, :], axis=-1)
    close = d < 1.25 * (r[:, None] + r[None, :])
    i, j = np.nonzero(np.triu(close, 1))
    return set(zip(i.tolist(), j.tolist(), strict=True))


def _bond_changes(numbers: np.ndarray, ref: np.ndarray, new: np.ndarray) -> list[str]:
    from ase.data import chemical_symbols

    a, b = _bonds(numbers, ref), _bonds(numbers, new)

    def name(i: int, j: int) -> str:
        return f"{chemical_symbols[numbers[i]]}{i + 1}-{chemical_symbols[numbers[j]]}{j + 1}"

    return [f"broken {name(i, j)}" for i, j in sorted(a - b)] + [
        f"formed {name(i, j)}" for i, j in sorted(b - a)
    ]


def _optimise(
    xtb: _XTB, positions: np.ndarray, charge: int, mult: int, p: RedoxInput
) -> tuple[np.ndarray, float, bool, int, float]:
    from ase import Atoms
    from ase.calculators.calculator import CalculationFailed as AseCalculationFailed
    from ase.optimize import LBFGS

    atoms = Atoms(numbers=xtb.numbers, positions=positions.copy())
    atoms.calc = xtb.ase_calculator(charge, mult)
    if len(atoms) == 1:
        try:
            energy = float(atoms.get_potential_energy())
        except AseCalculationFailed as exc:
            raise CalculationFailed(f"GFN2-xTB failed (charge {charge}): {exc}") from None
        return atoms.positions.copy(), energy, True, 0, 0.0
    opt = LBFGS(atoms, logfile=None)
    try:
        converged = bool(opt.run(fmax=p.fmax, steps=p.max_steps))
        energy = float(atoms.get_potential_energy())
        fmax = float(np.linalg.norm(atoms.get_forces(), axis=1).max())
    except AseCalculationFailed as exc:
        raise CalculationFailed(
            f"GFN2-xTB failed while optimising charge {charge}, multiplicity {mult}: {exc}"
        ) from None
    return atoms.positions.copy(), energy, converged, int(opt.nsteps), fmax


def _shifted_multiplicity(mult: int) -> int:
    """Lowest-spin multiplicity after adding or removing one electron."""
    return 2 if mult == 1 else mult - 1


@tenant.capability(
    "redox_potential",
    "gfn2_xtb",
    parameters=RedoxInput,
    result=RedoxOutput,
    units={
        "oxidation_potential": "V",
        "reduction_potential": "V",
        "vertical_oxidation_potential": "V",
        "vertical_reduction_potential": "V",
        "electrochemical_window": "V",
        "ionization_energy": "eV",
        "vertical_ionization_energy": "eV",
        "electron_affinity": "eV",
        "vertical_electron_affinity": "eV",
        "homo": "eV",
        "lumo": "eV",
        "homo_lumo_gap": "eV",
    },
    cost=1.0,
    fidelity=0.3,
    lease_seconds=300.0,
)
def redox_potential(p: RedoxInput, ctx: JobContext) -> RedoxOutput:
    """Oxidation and reduction potentials (V vs Li+/Li), IE, EA, HOMO and LUMO of a molecule
    from GFN2-xTB optimisations of the neutral, oxidised and reduced species in ALPB solvent.

    Thermodynamic cycle: E_ox = [G(M+) - G(M)]/e - 1.40 V, E_red = -[G(M-) - G(M)]/e - 1.40 V
    (absolute SHE 4.44 V, Trasatti 1986; Li+/Li -3.04 V vs SHE); G = GFN2-xTB energy with
    ALPB solvation, no vibrational terms, no empirical shift."""

    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=XTB_THREADS, user_api="openmp"):
        return _redox(p, ctx)


def _redox(p: RedoxInput, ctx: JobContext) -> RedoxOutput:
    from rdkit import Chem
    from rdkit.Chem.rdMolDescriptors import CalcMolFormula

    mol = _parse(p.smiles)
    charge, mult = _charge_multiplicity(mol, p)
    solvation, solv_info = _solvation(p.solvent)
    numbers = np.array([a.GetAtomicNum() for a in mol.GetAtoms()])
    xtb = _XTB(numbers, solvation, p.max_scf_iterations)

    ctx.progress(0.05, "embedding conformers (RDKit ETKDG)")
    confs = _embed(mol, p.conformers, p.seed)
    ctx.progress(0.15, f"GFN2-xTB single points of {len(confs)} conformer(s)")
    energies = [float(xtb.single_point(c, charge, mult).get("energy")) * HARTREE_EV for c in confs]
    best = int(np.argmin(energies))
    start = confs[best]

    species: dict[str, tuple[int, int]] = {
        "neutral": (charge, mult),
        "oxidized": (charge + 1, _shifted_multiplicity(mult)),
        "reduced": (charge - 1, _shifted_multiplicity(mult)),
    }
    total_electrons = int(numbers.sum()) - charge
    if total_electrons < 2:
        raise InputError("smiles: the molecule has fewer than two electrons to remove")

    ctx.progress(0.3, "optimising the reference species")
    pos0, e0, conv0, steps0, f0 = _optimise(xtb, start, charge, mult, p)
    ref = xtb.single_point(pos0, charge, mult)
    homo, lumo = _frontier(ref)

    results: dict[str, SpeciesResult] = {}
    geoms: dict[str, np.ndarray] = {"neutral": pos0}
    adiabatic: dict[str, float] = {"neutral": e0}
    vertical: dict[str, float] = {}
    for i, (name, (q, m)) in enumerate(species.items()):
        if name == "neutral":
            pos, e, conv, steps, fm = pos0, e0, conv0, steps0, f0
        else:
            ctx.progress(0.3 + 0.3 * i, f"optimising the {name} species (charge {q})")
            vertical[name] = float(xtb.single_point(pos0, q, m).get("energy")) * HARTREE_EV
            pos, e, conv, steps, fm = _optimise(xtb, pos0, q, m, p)
            geoms[name] = pos
            adiabatic[name] = e
        label = f"{Chem.MolToSmiles(Chem.RemoveHs(mol))} {name} charge={q} mult={m} GFN2-xTB"
        results[name] = SpeciesResult(
            charge=q,
            multiplicity=m,
            energy=e,
            converged=conv,
            steps=steps,
            max_force=fm,
            xyz=_xyz(numbers, pos, label),
            bonds_changed=[] if name == "neutral" else _bond_changes(numbers, pos0, pos),
        )

    shift = 0.0
    if p.energy_method == "IPEA1-xTB":
        ctx.progress(0.95, "IPEA1-xTB single points at the GFN2-xTB geometries")
        ipea = _XTB(numbers, solvation, p.max_scf_iterations, method="IPEA1-xTB")

        def e(geom: str, species_name: str) -> float:
            q, m = species[species_name]
            return float(ipea.single_point(geoms[geom], q, m).get("energy")) * HARTREE_EV

        adiabatic = {n: e(n, n) for n in species}
        vertical = {"oxidized": e("neutral", "oxidized"), "reduced": e("neutral", "reduced")}
        shift = IPEA_SHIFT_EV
    ie = adiabatic["oxidized"] - adiabatic["neutral"] - shift
    ea = adiabatic["neutral"] - adiabatic["reduced"] - shift
    vie = vertical["oxidized"] - adiabatic["neutral"] - shift
    vea = adiabatic["neutral"] - vertical["reduced"] - shift
    e_ox, e_red = ie - LI_ABSOLUTE_V, ea - LI_ABSOLUTE_V
    for name, r in results.items():
        ctx.attach(f"{name}.xyz", r.xyz, "chemical/x-xyz")
    not_converged = [n for n, r in results.items() if not r.converged]
    ctx.provenance.update(
        {
            "method": "GFN2-xTB geometries, " + p.energy_method + " energies",
            "energy_shift_ev": shift,
            "solvation": solv_info.model_dump(),
            "optimizer": {"name": "ase.optimize.LBFGS", "fmax": p.fmax, "max_steps": p.max_steps},
            "scf_max_iterations": p.max_scf_iterations,
            "conformer_search": {
                "embedding": "RDKit ETKDGv3 + MMFF94",
                "requested": p.conformers,
                "embedded": len(confs),
                "chosen": best,
                "seed": p.seed,
            },
            "convergence": {
                n: {"converged": r.converged, "steps": r.steps, "max_force": r.max_force}
                for n, r in results.items()
            },
            "not_converged": not_converged,
            "thermodynamic_cycle": "E_ox = dG_ox/e - 1.40 V; E_red = -dG_red/e - 1.40 V; "
            "absolute SHE 4.44 V (Trasatti 1986), Li+/Li -3.04 V vs SHE",
            "openmp_threads": XTB_THREADS,
        }
    )
    values = [ie, ea, vie, vea, homo, lumo]
    if not all(math.isfinite(v) for v in values):
        raise CalculationFailed("GFN2-xTB returned a non-finite energy")
    return RedoxOutput(
        smiles=Chem.MolToSmiles(Chem.RemoveHs(mol)),
        formula=CalcMolFormula(mol),
        solvation=solv_info,
        energy_method=p.energy_method,
        energy_shift=shift,
        oxidation_potential=e_ox,
        reduction_potential=e_red,
        vertical_oxidation_potential=vie - LI_ABSOLUTE_V,
        vertical_reduction_potential=vea - LI_ABSOLUTE_V,
        electrochemical_window=e_ox - e_red,
        ionization_energy=ie,
        vertical_ionization_energy=vie,
        electron_affinity=ea,
        vertical_electron_affinity=vea,
        homo=homo,
        lumo=lumo,
        homo_lumo_gap=lumo - homo,
        neutral=results["neutral"],
        oxidized=results["oxidized"],
        reduced=results["reduced"],
        conformer_energies=[e - min(energies) for e in energies],
        reference_potentials={
            "she_absolute": SHE_ABSOLUTE_V,
            "li_vs_she": LI_VS_SHE_V,
            "li_absolute": LI_ABSOLUTE_V,
        },
    )
