"""``redox_potential/gfn2_xtb``: the cheap screen. GFN2-xTB or IPEA1-xTB (tblite) with ALPB
implicit solvation; each method optimises its own geometries.

Methods:

- GFN2-xTB: C. Bannwarth, S. Ehlert, S. Grimme, J. Chem. Theory Comput. 15 (2019) 1652,
  doi:10.1021/acs.jctc.8b01176. Code: tblite (https://github.com/tblite/tblite).
- IPEA1-xTB: V. Asgeirsson, C. A. Bauer, S. Grimme, Chem. Sci. 8 (2017) 4879,
  doi:10.1039/c7sc00601b: GFN1-xTB reparametrised for ionisation energies and electron
  affinities (diffuse s functions on light main-group elements). tblite gives its gradients,
  so IPEA1 optimises its own geometries here (its ALPB parameters are GFN1's).
- ALPB implicit solvation: S. Ehlert, M. Stahn, S. Spicher, S. Grimme, J. Chem. Theory
  Comput. 17 (2021) 4250, doi:10.1021/acs.jctc.1c00471. A named solvent uses the
  parametrised ALPB model (with the CDS and empirical shift terms); a dielectric constant
  uses the non-empirical ALPB electrostatics only (tblite "GBE" with the P16 kernel).

The empirical IP/EA shift, applied as the xtb program applies it. xtb subtracts one constant
from every delta-SCC ionisation energy and electron affinity, whatever the xTB Hamiltonian
(grimme-lab/xtb, commit 2b5cd4829290775e575807daee21560f851ff7e1):

- ``src/xtb/gfn2.f90`` line 56: ``ipeashift = 1.78069_wp`` in the GFN2 globals, scaled at
  line 740: ``self%ipeashift = gfn2Globals%ipeashift * 0.1_wp`` (= 0.178069 Eh; GFN1 the
  same, ``src/xtb/gfn1.f90`` lines 55 and 572; ``param_ipea-xtb.txt`` line 12 the same);
- ``src/tblite/calculator.F90`` line 149: ``global_ipeashift = 0.17806900_wp`` "Global IP/EA
  shift for all models in Hartree", set for every tblite model at line 292;
- ``src/prog/main.F90`` lines 679/685 take it from the calculator, line 902:
  ``ip = etot2 - etot - ipeashift`` and line 921: ``ea = etot - etot2 - ipeashift``, printed
  as "empirical IP shift (eV): 4.8455".

So IE = E(M+) - E(M) - 4.8455 eV and EA = E(M) - E(M-) - 4.8455 eV for GFN2-xTB and
IPEA1-xTB alike, once per electron. xtb applies it to vertical values (``--vipea``); the same
constant is applied here to the adiabatic ones, which differ from the vertical ones only by
the ion's relaxation on the same energy surface.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import numpy as np
from pydantic import Field

from bigmap.client import CalculationFailed, InputError, JobContext
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

#: xtb's empirical IP/EA shift [Eh]: grimme-lab/xtb src/xtb/gfn2.f90:56,740 and
#: src/tblite/calculator.F90:149 (see the module docstring); subtracted once per electron.
XTB_IPEA_SHIFT_HARTREE = 0.178069
#: the same in eV (xtb prints 4.8455)
IPEA_SHIFT_EV = XTB_IPEA_SHIFT_HARTREE * HARTREE_EV

#: OpenMP threads of one xTB calculation. Small molecules gain nothing from threads, and on a
#: shared, loaded machine OpenMP spinning made a 1 s job take 14 s (measured here).
XTB_THREADS = int(os.environ.get("BIGMAP_XTB_THREADS", "1"))

XTB_METHODS = ("GFN2-xTB", "IPEA1-xTB")


class RedoxInput(RedoxCommon):
    """Parameters of ``redox_potential/gfn2_xtb``."""

    method: Literal["GFN2-xTB", "IPEA1-xTB"] = Field(
        default="GFN2-xTB",
        description=(
            "Hamiltonian of the geometries and the energies: GFN2-xTB, or IPEA1-xTB (made for "
            "ionisation energies and electron affinities); both with xtb's 4.8455 eV shift"
        ),
    )


def xtb_solvation(solvent: str | float | None) -> tuple[tuple[Any, ...] | None, Solvation]:
    """tblite's solvation arguments and their description for a ``solvent`` input."""
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


class XTB:
    """An xTB Hamiltonian through tblite's Python API (energies in eV)."""

    def __init__(
        self,
        numbers: np.ndarray,
        solvation: tuple[Any, ...] | None,
        max_iter: int,
        method: str = "GFN2-xTB",
    ):
        self.name = method
        self.shift_ev = IPEA_SHIFT_EV
        self.numbers = numbers
        self.solvation = solvation
        self.max_iter = max_iter

    def _single_point(self, positions: np.ndarray, charge: int, mult: int) -> Any:
        from tblite.interface import Calculator

        try:
            calc = Calculator(
                self.name, self.numbers, positions / BOHR_A, charge=charge, uhf=mult - 1
            )
            calc.set("verbosity", 0)
            calc.set("max-iter", self.max_iter)
            if self.solvation is not None:
                kind, *args = self.solvation
                calc.add(f"{kind}-solvation", *args)
            return calc.singlepoint()
        except RuntimeError as exc:  # TBLiteRuntimeError: SCF not converged and friends
            raise CalculationFailed(
                f"{self.name} failed for charge {charge}, multiplicity {mult}: {exc}"
            ) from None

    def energy(self, positions: np.ndarray, charge: int, mult: int) -> float:
        return float(self._single_point(positions, charge, mult).get("energy")) * HARTREE_EV

    def frontier(self, positions: np.ndarray, charge: int, mult: int) -> tuple[float, float]:
        """HOMO and LUMO [eV]: the highest orbital holding at least half an electron and the
        lowest holding less (occupations are Fermi-smeared at 300 K)."""
        res = self._single_point(positions, charge, mult)
        eps = np.asarray(res.get("orbital-energies"), dtype=float).ravel() * HARTREE_EV
        occ = np.asarray(res.get("orbital-occupations"), dtype=float).ravel()
        occupied, empty = eps[occ >= 0.5], eps[occ < 0.5]
        if occupied.size == 0 or empty.size == 0:
            raise CalculationFailed(f"no HOMO or no LUMO in the {self.name} orbitals")
        return float(occupied.max()), float(empty.min())

    def ase_calculator(self, charge: int, mult: int) -> Any:
        from tblite.ase import TBLite

        kwargs: dict[str, Any] = {
            "method": self.name,
            "charge": charge,
            "multiplicity": mult,
            "verbosity": 0,
            "max_iterations": self.max_iter,
        }
        if self.solvation is not None:
            kwargs["solvation"] = self.solvation
        return TBLite(**kwargs)


def software() -> dict[str, Any]:
    from bigmap.client import package_version

    return {
        "name": "tblite",
        "version": package_version("tblite"),
        "method": "GFN2-xTB",
        "rdkit": package_version("rdkit"),
        "ase": package_version("ase"),
    }


def redox_potential(p: RedoxInput, ctx: JobContext) -> RedoxOutput:
    """Oxidation and reduction potentials (V vs Li+/Li), IE, EA, HOMO and LUMO of a molecule
    from GFN2-xTB (or IPEA1-xTB) optimisations of the neutral, oxidised and reduced species in
    ALPB solvent, with xtb's empirical IP/EA shift of 4.8455 eV. The cheap screen of the
    ``redox_potential`` family; ``redox_potential/dft`` confirms."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=XTB_THREADS, user_api="openmp"):
        mol = parse(p.smiles)
        solvation, info = xtb_solvation(p.solvent)
        numbers = np.array([a.GetAtomicNum() for a in mol.GetAtoms()])
        engine = XTB(numbers, solvation, p.max_scf_iterations, method=p.method)
        ctx.software = software() | {"method": p.method}
        out = compute(
            p, ctx, engine=engine, geometry=engine, screen=engine, solvation=info, mol=mol
        )
        ctx.provenance["openmp_threads"] = XTB_THREADS
        ctx.provenance["ipea_shift_source"] = (
            "grimme-lab/xtb src/xtb/gfn2.f90:56,740; src/tblite/calculator.F90:149; "
            "subtracted in src/prog/main.F90:902 (IP) and :921 (EA)"
        )
        return out
