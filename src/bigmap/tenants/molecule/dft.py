"""``redox_potential/dft``: the confirmation. A dispersion-corrected hybrid functional
(PySCF), a def2 basis set and a polarisable continuum, on the same input and output as
``redox_potential/gfn2_xtb``.

- PySCF: Q. Sun et al., J. Chem. Phys. 153 (2020) 024109, doi:10.1063/5.0006074.
- B3LYP: A. D. Becke, J. Chem. Phys. 98 (1993) 5648; P. J. Stephens et al., J. Phys. Chem. 98
  (1994) 11623 (PySCF's ``b3lyp``: VWN5 in the correlation part since PySCF 2.3). PBE0:
  C. Adamo, V. Barone, J. Chem. Phys. 110 (1999) 6158.
- D3(BJ): S. Grimme, S. Ehrlich, L. Goerigk, J. Comput. Chem. 32 (2011) 1456, through the
  ``dftd3`` package (simple-dftd3) and ASE's calculator sum; the functional's own damping
  parameters from that package.
- def2 basis sets: F. Weigend, R. Ahlrichs, Phys. Chem. Chem. Phys. 7 (2005) 3297; def2-SVPD:
  D. Rappoport, F. Furche, J. Chem. Phys. 133 (2010) 134105. Density fitting with the
  def2-universal-JKFIT auxiliary basis (F. Weigend, J. Comput. Chem. 29 (2008) 167).
- Continuum: C-PCM (V. Barone, M. Cossi, J. Phys. Chem. A 102 (1998) 1995) or IEF-PCM
  (E. Cancès, B. Mennucci, J. Tomasi, J. Chem. Phys. 107 (1997) 3032), PySCF's
  implementation; dielectric constants of named solvents from the Minnesota Solvent
  Descriptor Database as shipped in ``pyscf.solvent.smd`` (A. V. Marenich, C. J. Cramer,
  D. G. Truhlar et al., https://comp.chem.umn.edu/solvation/mnsddb.pdf), of the battery
  solvents from K. Xu, Chem. Rev. 104 (2004) 4303, Table 1.

Geometries (``geometry``):

- ``gfn2_xtb`` (default): every species optimised with GFN2-xTB in its implicit solvent
  (ALPB or the same dielectric constant), DFT single points on them: DFT//GFN2-xTB, five
  self-consistent-field runs per molecule. The adiabatic energy of an ion is the lower of its
  DFT energies at its own GFN2-xTB geometry and at the neutral's (vertical) geometry, so the
  adiabatic potentials stay on the favourable side of the vertical ones.
- ``dft``: every species optimised with the DFT gradients (after a GFN2-xTB pre-optimisation),
  the full protocol; tens of SCF and gradient runs per species.

Cost on this 2-core machine: see ``benchmarks/validation_molecule.py`` (it prints the time of
every molecule); the declared ``cost`` of the capability is relative to ``gfn2_xtb`` (1).
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any, Literal

import numpy as np
from pydantic import Field

from bigmap.client import CalculationFailed, InputError, JobContext, package_version
from bigmap.tenants.molecule.redox import (
    ALPB_SOLVENTS,
    BOHR_A,
    DIELECTRIC_CONSTANTS,
    HARTREE_EV,
    RedoxCommon,
    RedoxOutput,
    Solvation,
    compute,
    parse,
)
from bigmap.tenants.molecule.xtb import XTB, xtb_solvation

#: atoms (with hydrogens) a DFT request may have: a def2-SVP hybrid on 30 atoms takes hours
#: on this machine's two cores.
MAX_DFT_ATOMS = 30
#: PySCF's DFT integration grid level: 2, one coarser than PySCF's default, for speed (not
#: compared with level 3 here)
GRID_LEVEL = 2
#: threads of PySCF's BLAS and integrals; BIGMAP_DFT_THREADS overrides
DFT_THREADS = int(os.environ.get("BIGMAP_DFT_THREADS", "2"))

#: ALPB solvent names -> the name of the same solvent in PySCF's SMD table
SMD_NAMES = {
    "ch2cl2": "dichloromethane",
    "chcl3": "chloroform",
    "cs2": "carbon disulfide",
    "dioxane": "1,4-dioxane",
    "dmf": "N,N-dimethylformamide",
    "dmso": "dimethylsulfoxide",
    "ether": "diethylether",
    "ethylacetate": "ethylethanoate",
    "furane": "furan",
    "hexadecane": "n-hexadecane",
    "hexane": "n-hexane",
    "octanol": "1-octanol",
    "thf": "tetrahydrofuran",
}


@cache
def _smd_epsilon() -> dict[str, float]:
    """Static dielectric constants of the ALPB solvent names found in PySCF's copy of the
    Minnesota Solvent Descriptor Database (column 6: eps)."""
    from pyscf.solvent.smd import solvent_db

    out = {}
    for name in ALPB_SOLVENTS:
        row = solvent_db.get(SMD_NAMES.get(name, name))
        if row is not None:
            out[name] = float(row[5])
    return out


def dft_solvation(solvent: str | float | None, model: str) -> Solvation:
    if solvent is None:
        return Solvation(model="none")
    if isinstance(solvent, str):
        table = _smd_epsilon()
        if solvent in DIELECTRIC_CONSTANTS:
            return Solvation(model=model, solvent=solvent, epsilon=DIELECTRIC_CONSTANTS[solvent])
        if solvent in table:
            return Solvation(model=model, solvent=solvent, epsilon=table[solvent])
        raise InputError(
            f"solvent: no dielectric constant for {solvent!r}; use one of "
            f"{', '.join(sorted(table))}, {', '.join(DIELECTRIC_CONSTANTS)} or a number"
        )
    return Solvation(model=model, epsilon=float(solvent))


class DftRedoxInput(RedoxCommon):
    """Parameters of ``redox_potential/dft``."""

    functional: Literal["B3LYP", "PBE0"] = Field(default="B3LYP", description="hybrid functional")
    dispersion: Literal["D3BJ", "none"] = Field(
        default="D3BJ", description="Grimme's D3 with Becke-Johnson damping, or none"
    )
    basis: Literal["def2-SVP", "def2-SVPD", "def2-TZVP"] = Field(
        default="def2-SVP", description="basis set (def2-SVPD: diffuse functions for anions)"
    )
    solvation_model: Literal["C-PCM", "IEF-PCM"] = Field(
        default="C-PCM", description="continuum model of the solvent"
    )
    geometry: Literal["gfn2_xtb", "dft"] = Field(
        default="gfn2_xtb",
        description=(
            "gfn2_xtb: GFN2-xTB geometries, DFT energies (5 SCF runs); dft: DFT-optimised "
            "geometries (tens of SCF and gradient runs per species)"
        ),
    )
    conformers: int = Field(default=5, ge=1, le=50, description="conformers screened (GFN2-xTB)")
    fmax: float = Field(default=0.05, gt=0, le=1.0, description="force criterion [eV/Å]")
    max_steps: int = Field(default=100, ge=1, le=1000, description="optimiser steps per species")
    max_scf_iterations: int = Field(default=100, ge=1, le=1000, description="SCF iterations")


def _ase_calculator(dft: DFT, charge: int, mult: int) -> Any:
    """An ASE calculator (energy, forces) on ``dft``'s surface for one charge state."""
    from ase.calculators.calculator import Calculator, all_changes

    class PySCFCalculator(Calculator):
        implemented_properties = ["energy", "forces"]

        def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
            super().calculate(atoms, properties, system_changes)
            e, g = dft.run(self.atoms.numbers, self.atoms.positions, charge, mult, True)
            self.results = {"energy": e, "forces": -g}

    return PySCFCalculator()


class DFT:
    """Energies [eV], gradients [eV/Å] and frontier orbitals of a hybrid functional in a
    continuum, with the D3(BJ) correction added."""

    def __init__(self, p: DftRedoxInput, solvation: Solvation) -> None:
        disp = "-D3(BJ)" if p.dispersion == "D3BJ" else ""
        solv = f"/{solvation.model}" if solvation.model != "none" else ""
        self.name = f"{p.functional}{disp}/{p.basis}{solv}"
        self.shift_ev = 0.0
        self.p = p
        self.solvation = solvation
        self._dm: dict[tuple[int, int, int], Any] = {}
        self.scf_runs = 0
        self.gradient_runs = 0
        self._last: tuple[bytes, int, int, Any] | None = None

    def _scf(self, numbers: np.ndarray, positions: np.ndarray, charge: int, mult: int) -> Any:
        from pyscf import dft, gto

        try:
            mol = gto.M(
                atom=[(int(z), tuple(r)) for z, r in zip(numbers, positions, strict=True)],
                unit="Angstrom",
                basis=self.p.basis.lower(),
                charge=charge,
                spin=mult - 1,
                verbose=0,
            )
        except RuntimeError as exc:
            raise InputError(
                f"basis: {self.p.basis} cannot describe this molecule ({exc})"
            ) from None
        mf = dft.RKS(mol) if mult == 1 else dft.UKS(mol)
        mf = mf.density_fit(auxbasis="def2-universal-jkfit")
        mf.xc = self.p.functional.lower()
        mf.max_cycle = self.p.max_scf_iterations
        mf.grids.level = GRID_LEVEL
        if self.solvation.model != "none":
            mf = mf.PCM()
            mf.with_solvent.method = self.solvation.model
            mf.with_solvent.eps = float(self.solvation.epsilon or 1.0)
            mf.with_solvent.lebedev_order = 17  # 110 points per sphere (PySCF default: 302)
        key = (len(numbers), charge, mult)
        guess = self._dm.get(key)
        if guess is None and self._dm:  # another charge state's density, spin-split
            other = next(iter(self._dm.values()))
            total = other if np.ndim(other) == 2 else other[0] + other[1]
            guess = total if mult == 1 else np.array([total / 2, total / 2])
        mf.kernel(dm0=guess)
        self.scf_runs += 1
        if not mf.converged:
            raise CalculationFailed(
                f"{self.name}: SCF not converged in {self.p.max_scf_iterations} iterations "
                f"(charge {charge}, multiplicity {mult})"
            )
        self._dm[key] = mf.make_rdm1()
        self._last = (positions.tobytes(), charge, mult, mf)
        return mf

    def _dispersion(
        self, numbers: np.ndarray, positions: np.ndarray, grad: bool
    ) -> tuple[float, np.ndarray]:
        if self.p.dispersion == "none":
            return 0.0, np.zeros((len(numbers), 3))
        from dftd3.interface import DispersionModel, RationalDampingParam

        model = DispersionModel(numbers, positions / BOHR_A)
        res = model.get_dispersion(RationalDampingParam(method=self.p.functional.lower()), grad)
        g = res.get("gradient", np.zeros((len(numbers), 3)))
        return float(res["energy"]) * HARTREE_EV, np.asarray(g) * HARTREE_EV / BOHR_A

    def run(
        self, numbers: np.ndarray, positions: np.ndarray, charge: int, mult: int, grad: bool
    ) -> tuple[float, np.ndarray]:
        from pyscf import lib

        lib.num_threads(DFT_THREADS)
        mf = self._scf(numbers, positions, charge, mult)
        e = float(mf.e_tot) * HARTREE_EV
        g = np.zeros((len(numbers), 3))
        if grad:
            g = np.asarray(mf.nuc_grad_method().kernel()) * HARTREE_EV / BOHR_A
            self.gradient_runs += 1
        ed, gd = self._dispersion(numbers, positions, grad)
        return e + ed, g + gd

    # the Engine protocol -----------------------------------------------------------

    numbers: np.ndarray

    def energy(self, positions: np.ndarray, charge: int, mult: int) -> float:
        return self.run(self.numbers, positions, charge, mult, False)[0]

    def frontier(self, positions: np.ndarray, charge: int, mult: int) -> tuple[float, float]:
        last = self._last
        if last is not None and last[:3] == (positions.tobytes(), charge, mult):
            mf = last[3]  # the SCF of the energy just computed at this geometry
        else:
            mf = self._scf(self.numbers, positions, charge, mult)
        eps = np.concatenate([np.ravel(x) for x in np.atleast_2d(mf.mo_energy)]) * HARTREE_EV
        occ = np.concatenate([np.ravel(x) for x in np.atleast_2d(mf.mo_occ)])
        occupied, empty = eps[occ > 0.5], eps[occ <= 0.5]
        if occupied.size == 0 or empty.size == 0:
            raise CalculationFailed(f"no HOMO or no LUMO in the {self.name} orbitals")
        return float(occupied.max()), float(empty.min())

    def ase_calculator(self, charge: int, mult: int) -> Any:
        return _ase_calculator(self, charge, mult)


def software() -> dict[str, Any]:
    return {
        "name": "pyscf",
        "version": package_version("pyscf"),
        "dftd3": package_version("dftd3"),
        "tblite": package_version("tblite"),
        "rdkit": package_version("rdkit"),
        "ase": package_version("ase"),
    }


def redox_potential(p: DftRedoxInput, ctx: JobContext) -> RedoxOutput:
    """Oxidation and reduction potentials (V vs Li+/Li), IE, EA, HOMO and LUMO of a molecule
    from a D3(BJ)-corrected hybrid functional (B3LYP or PBE0), a def2 basis and a polarisable
    continuum (PySCF); geometries from GFN2-xTB or DFT. The confirmation step of the
    ``redox_potential`` family (``gfn2_xtb`` is the cheap screen); no empirical shift."""
    mol = parse(p.smiles, what="redox_potential/dft", max_atoms=MAX_DFT_ATOMS)
    info = dft_solvation(p.solvent, p.solvation_model)
    numbers = np.array([a.GetAtomicNum() for a in mol.GetAtoms()])
    engine = DFT(p, info)
    engine.numbers = numbers
    # GFN2-xTB for the conformer screen and the geometries (or the pre-optimisation), in the
    # same solvent: ALPB for a named solvent, its dielectric constant otherwise
    xtb_solv, _ = xtb_solvation(p.solvent)
    gfn2 = XTB(numbers, xtb_solv, 250)
    ctx.software = software() | {"method": engine.name}
    if p.geometry == "dft":
        out = compute(
            p,
            ctx,
            engine=engine,
            geometry=engine,
            screen=gfn2,
            solvation=info,
            mol=mol,
            preoptimise=gfn2,
        )
    else:
        out = compute(p, ctx, engine=engine, geometry=gfn2, screen=gfn2, solvation=info, mol=mol)
    ctx.provenance["dft"] = {
        "functional": p.functional,
        "dispersion": p.dispersion,
        "basis": p.basis,
        "density_fitting": "def2-universal-jkfit",
        "grid_level": GRID_LEVEL,
        "solvation": info.model_dump(),
        "pcm_lebedev_points_per_sphere": 110,
        "scf_runs": engine.scf_runs,
        "gradient_runs": engine.gradient_runs,
        "threads": DFT_THREADS,
    }
    return out
