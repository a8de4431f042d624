"""What every ``redox_potential/*`` capability shares: the thermodynamic cycle, the input and
output schemas, the molecule from SMILES, the conformer search, the geometry optimiser and
the driver that turns the energies of one *engine* (GFN2-xTB, IPEA1-xTB, DFT) into
potentials.

The thermodynamic cycle (one electron, 298 K, all species in the same continuum solvent)::

    M(solv) -> M+(solv) + e-      dG_ox  = G(M+) - G(M)          (= adiabatic IE in solution)
    M(solv) + e- -> M-(solv)      dG_red = G(M-) - G(M)          (= -adiabatic EA in solution)

    E_ox  (V vs Li+/Li) =  dG_ox / e  - E_abs(SHE) - E(Li+/Li vs SHE)
    E_red (V vs Li+/Li) = -dG_red / e - E_abs(SHE) - E(Li+/Li vs SHE)

with the absolute potential of the standard hydrogen electrode E_abs(SHE) = 4.44 V
(S. Trasatti, Pure Appl. Chem. 58 (1986) 955, IUPAC recommendation) and the Li+/Li couple
at -3.04 V vs SHE (A. J. Bard, R. Parsons, J. Jordan, Standard Potentials in Aqueous
Solution, IUPAC/Marcel Dekker 1985), i.e. the constant 4.44 - 3.04 = 1.40 V that Borodin and
co-workers use for carbonate electrolytes (O. Borodin, W. Behl, T. R. Jow, J. Phys. Chem. C
117 (2013) 8661). G is approximated by the electronic energy with the implicit solvent's
free energy; zero-point and thermal terms are left out (~0.1 V for small organics).

*Adiabatic* energies of an ion are the lowest energy the engine finds for it: the optimiser
starts from the neutral's geometry, so the relaxed ion lies at or below the vertical one, and
the driver takes the vertical energy if an optimisation ever ended above it (then says so in
the provenance). Hence, by construction and as physics demands,

    adiabatic IE <= vertical IE   and   adiabatic EA >= vertical EA,

i.e. the adiabatic oxidation potential is never above the vertical one and the adiabatic
reduction potential never below it.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from bigmap.client import CalculationFailed, InputError, JobContext

# --------------------------------------------------------------------------- constants

#: absolute potential of the SHE [V]: Trasatti, Pure Appl. Chem. 58 (1986) 955 (IUPAC).
SHE_ABSOLUTE_V = 4.44
#: Li+/Li vs SHE [V]: Bard, Parsons, Jordan, Standard Potentials in Aqueous Solution (1985).
LI_VS_SHE_V = -3.04
#: subtract from an absolute potential to get V vs Li+/Li
LI_ABSOLUTE_V = SHE_ABSOLUTE_V + LI_VS_SHE_V

HARTREE_EV = 27.211386245988  # CODATA 2018
#: rms displacement of an ion's starting geometry from the neutral's [Å] (see compute())
SYMMETRY_KICK_A = 0.02
BOHR_A = 0.52917721090380  # CODATA 2018 [Å]

#: GFN2-xTB is parametrised for Z = 1..86 (Bannwarth et al. 2019); so are def2 bases and D3.
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


# --------------------------------------------------------------------------- schemas


class RedoxCommon(BaseModel):
    """Parameters every ``redox_potential/*`` method takes."""

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
            "implicit solvent: an ALPB solvent name, a battery solvent with a tabulated "
            "dielectric constant (ec, pc, dmc, emc, dec), a dielectric constant > 1, or null "
            "for the gas phase"
        ),
    )
    conformers: int = Field(default=5, ge=1, le=50, description="RDKit conformers to embed")
    seed: int = Field(default=42, ge=0, description="random seed of the embedding")
    fmax: float = Field(
        default=0.02, gt=0, le=1.0, description="force criterion of the optimisations [eV/Å]"
    )
    max_steps: int = Field(default=400, ge=1, le=5000, description="optimiser steps per species")
    max_scf_iterations: int = Field(default=250, ge=1, le=1000, description="SCF iterations")

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
    model: str = Field(description="alpb, alpb-epsilon, C-PCM, IEF-PCM, ddCOSMO or none")
    solvent: str | None = None
    epsilon: float | None = None


class SpeciesResult(BaseModel):
    charge: int
    multiplicity: int
    energy: float = Field(description="energy (energy method) at its own geometry [eV]")
    converged: bool
    steps: int
    max_force: float = Field(description="largest residual force of the geometry method [eV/Å]")
    xyz: str = Field(description="optimised geometry, XYZ")
    bonds_changed: list[str] = Field(
        default_factory=list,
        description="bonds of the reference geometry broken or formed on optimisation",
    )


class RedoxOutput(BaseModel):
    """Result of every ``redox_potential/*`` method. Energies in eV, potentials in V vs
    Li+/Li."""

    smiles: str = Field(description="canonical SMILES")
    formula: str
    solvation: Solvation
    energy_method: str = Field(description="method of the energies")
    geometry_method: str = Field(description="method of the optimised geometries")
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
        description="screening single-point energies of the RDKit conformers, relative [eV]"
    )
    reference_potentials: dict[str, float] = Field(
        description="absolute SHE potential and Li+/Li vs SHE used in the cycle [V]"
    )


UNITS = {
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
    "energy_shift": "eV",
}


# --------------------------------------------------------------------------- engines


class Engine(Protocol):
    """Energies of one electronic-structure method (eV, positions in Å)."""

    name: str
    #: subtracted from every IE and EA [eV] (xtb's empirical IP/EA shift; 0 for DFT)
    shift_ev: float

    def energy(self, positions: np.ndarray, charge: int, mult: int) -> float: ...

    def frontier(self, positions: np.ndarray, charge: int, mult: int) -> tuple[float, float]: ...

    def ase_calculator(self, charge: int, mult: int) -> Any: ...


# --------------------------------------------------------------------------- the molecule


def parse(smiles: str, what: str = "GFN2-xTB", max_atoms: int = 200) -> Any:
    """RDKit molecule with hydrogens, or InputError naming the field."""
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
            f"smiles: element(s) {', '.join(bad)} are not supported by {what} (Z = 1..{MAX_Z})"
        )
    if mol.GetNumAtoms() > 200:
        raise InputError(f"smiles: {mol.GetNumAtoms()} heavy atoms; this capability takes <= 200")
    mol = Chem.AddHs(mol)
    if mol.GetNumAtoms() > max_atoms:
        raise InputError(
            f"smiles: {mol.GetNumAtoms()} atoms with hydrogens; {what} here takes <= {max_atoms}"
        )
    return mol


def charge_multiplicity(mol: Any, p: RedoxCommon) -> tuple[int, int]:
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
    if electrons < 2:
        raise InputError("smiles: the molecule has fewer than two electrons to remove")
    return charge, mult


def embed(mol: Any, n: int, seed: int) -> list[np.ndarray]:
    """Conformers by RDKit ETKDGv3 (S. Riniker, G. A. Landrum, J. Chem. Inf. Model. 55 (2015)
    2562), pre-relaxed with MMFF94 (or UFF)."""
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


def xyz(numbers: np.ndarray, positions: np.ndarray, comment: str) -> str:
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


def bond_changes(numbers: np.ndarray, ref: np.ndarray, new: np.ndarray) -> list[str]:
    from ase.data import chemical_symbols

    a, b = _bonds(numbers, ref), _bonds(numbers, new)

    def name(i: int, j: int) -> str:
        return f"{chemical_symbols[numbers[i]]}{i + 1}-{chemical_symbols[numbers[j]]}{j + 1}"

    return [f"broken {name(i, j)}" for i, j in sorted(a - b)] + [
        f"formed {name(i, j)}" for i, j in sorted(b - a)
    ]


@dataclass
class Optimised:
    positions: np.ndarray
    energy: float  # of the geometry method [eV]
    converged: bool
    steps: int
    max_force: float


def optimise(
    engine: Engine,
    numbers: np.ndarray,
    positions: np.ndarray,
    charge: int,
    mult: int,
    fmax: float,
    steps: int,
) -> Optimised:
    """LBFGS (ASE) on the engine's energy surface."""
    from ase import Atoms
    from ase.calculators.calculator import CalculationFailed as AseCalculationFailed
    from ase.optimize import LBFGS

    atoms = Atoms(numbers=numbers, positions=positions.copy())
    atoms.calc = engine.ase_calculator(charge, mult)
    try:
        if len(atoms) == 1:
            return Optimised(atoms.positions.copy(), atoms.get_potential_energy(), True, 0, 0.0)
        opt = LBFGS(atoms, logfile=None)
        converged = bool(opt.run(fmax=fmax, steps=steps))
        energy = float(atoms.get_potential_energy())
        fm = float(np.linalg.norm(atoms.get_forces(), axis=1).max())
    except (AseCalculationFailed, RuntimeError) as exc:
        raise CalculationFailed(
            f"{engine.name} failed while optimising charge {charge}, multiplicity {mult}: {exc}"
        ) from None
    return Optimised(atoms.positions.copy(), energy, converged, int(opt.nsteps), fm)


def shifted_multiplicity(mult: int) -> int:
    """Lowest-spin multiplicity after adding or removing one electron."""
    return 2 if mult == 1 else mult - 1


# --------------------------------------------------------------------------- the driver


def compute(
    p: RedoxCommon,
    ctx: JobContext,
    *,
    engine: Engine,
    geometry: Engine,
    screen: Engine,
    solvation: Solvation,
    mol: Any,
    preoptimise: Engine | None = None,
) -> RedoxOutput:
    """Potentials of ``mol`` with energies from ``engine`` at geometries optimised with
    ``geometry`` (optionally pre-optimised with ``preoptimise``); conformers ranked by
    ``screen``. Every energy that enters a potential comes from ``engine``."""
    from rdkit import Chem
    from rdkit.Chem.rdMolDescriptors import CalcMolFormula

    charge, mult = charge_multiplicity(mol, p)
    numbers = np.array([a.GetAtomicNum() for a in mol.GetAtoms()])
    canonical = Chem.MolToSmiles(Chem.RemoveHs(mol))

    ctx.progress(0.02, "embedding conformers (RDKit ETKDG)")
    confs = embed(mol, p.conformers, p.seed)
    ctx.progress(0.05, f"{screen.name} single points of {len(confs)} conformer(s)")
    screened = [screen.energy(c, charge, mult) for c in confs]
    best = int(np.argmin(screened))

    species: dict[str, tuple[int, int]] = {
        "neutral": (charge, mult),
        "oxidized": (charge + 1, shifted_multiplicity(mult)),
        "reduced": (charge - 1, shifted_multiplicity(mult)),
    }
    same = geometry is engine

    def relax(start: np.ndarray, q: int, m: int) -> Optimised:
        if preoptimise is not None:
            start = optimise(preoptimise, numbers, start, q, m, p.fmax, p.max_steps).positions
        return optimise(geometry, numbers, start, q, m, p.fmax, p.max_steps)

    ctx.progress(0.1, f"optimising the reference species ({geometry.name})")
    ref = relax(confs[best], charge, mult)
    # An ion often relaxes by breaking the neutral's symmetry (a planar radical anion
    # puckering): started exactly at a symmetric geometry the optimiser may sit on the saddle
    # or fall off it by rounding noise, so each ion starts from the neutral's geometry
    # displaced by a small, seeded random vector (rms SYMMETRY_KICK_A).
    rng = np.random.default_rng(p.seed)
    pos0 = ref.positions
    e0 = ref.energy if same else engine.energy(pos0, charge, mult)
    homo, lumo = engine.frontier(pos0, charge, mult)

    results: dict[str, SpeciesResult] = {}
    adiabatic: dict[str, float] = {"neutral": e0}
    vertical: dict[str, float] = {}
    lowered: dict[str, float] = {}
    kept_vertical: list[str] = []
    for i, (name, (q, m)) in enumerate(species.items()):
        if name == "neutral":
            opt, e = ref, e0
        else:
            ctx.progress(0.1 + 0.4 * i, f"{name} species (charge {q}): vertical, then relaxed")
            vertical[name] = engine.energy(pos0, q, m)
            kick = rng.normal(0.0, SYMMETRY_KICK_A, pos0.shape) if len(pos0) > 2 else 0.0
            opt = relax(pos0 + kick, q, m)
            e = opt.energy if same else engine.energy(opt.positions, q, m)
            lowered[name] = vertical[name] - e
            if e > vertical[name]:  # the relaxed ion is never above the vertical one
                kept_vertical.append(name)
                opt = Optimised(pos0, e, opt.converged, opt.steps, opt.max_force)
                e = vertical[name]
            adiabatic[name] = e
        label = f"{canonical} {name} charge={q} mult={m} {geometry.name}"
        results[name] = SpeciesResult(
            charge=q,
            multiplicity=m,
            energy=e,
            converged=opt.converged,
            steps=opt.steps,
            max_force=opt.max_force,
            xyz=xyz(numbers, opt.positions, label),
            bonds_changed=[] if name == "neutral" else bond_changes(numbers, pos0, opt.positions),
        )

    shift = engine.shift_ev
    ie = adiabatic["oxidized"] - adiabatic["neutral"] - shift
    ea = adiabatic["neutral"] - adiabatic["reduced"] - shift
    vie = vertical["oxidized"] - adiabatic["neutral"] - shift
    vea = adiabatic["neutral"] - vertical["reduced"] - shift
    values = [ie, ea, vie, vea, homo, lumo]
    if not all(math.isfinite(v) for v in values):
        raise CalculationFailed(f"{engine.name} returned a non-finite energy")
    e_ox, e_red = ie - LI_ABSOLUTE_V, ea - LI_ABSOLUTE_V
    for name, r in results.items():
        ctx.attach(f"{name}.xyz", r.xyz, "chemical/x-xyz")
    ctx.provenance.update(
        {
            "method": f"{engine.name} energies at {geometry.name} geometries",
            "energy_shift_ev": shift,
            "solvation": solvation.model_dump(),
            "optimizer": {"name": "ase.optimize.LBFGS", "fmax": p.fmax, "max_steps": p.max_steps},
            "preoptimizer": None if preoptimise is None else preoptimise.name,
            "scf_max_iterations": p.max_scf_iterations,
            "conformer_search": {
                "embedding": "RDKit ETKDGv3 + MMFF94",
                "screening": screen.name,
                "requested": p.conformers,
                "embedded": len(confs),
                "chosen": best,
                "seed": p.seed,
            },
            "convergence": {
                n: {"converged": r.converged, "steps": r.steps, "max_force": r.max_force}
                for n, r in results.items()
            },
            "not_converged": [n for n, r in results.items() if not r.converged],
            "relaxation_energy_ev": lowered,
            "adiabatic_kept_vertical": kept_vertical,
            "thermodynamic_cycle": "E_ox = dG_ox/e - 1.40 V; E_red = -dG_red/e - 1.40 V; "
            "absolute SHE 4.44 V (Trasatti 1986), Li+/Li -3.04 V vs SHE",
            "approximations": [
                "electronic energies with implicit-solvent free energies; no zero-point or "
                "thermal terms (~0.1 V)",
                "an isolated molecule in a continuum: no Li+ or anion coordination (Li+ binding "
                "stabilises a carbonate's radical anion and raises its reduction potential)",
            ],
        }
    )
    return RedoxOutput(
        smiles=canonical,
        formula=CalcMolFormula(mol),
        solvation=solvation,
        energy_method=engine.name,
        geometry_method=geometry.name,
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
        conformer_energies=[e - min(screened) for e in screened],
        reference_potentials={
            "she_absolute": SHE_ABSOLUTE_V,
            "li_vs_she": LI_VS_SHE_V,
            "li_absolute": LI_ABSOLUTE_V,
        },
    )
