"""Energy models of the crystal tenant beyond plain CHGNet: a D3(BJ) dispersion correction
summed onto the universal potential, a second universal potential (SevenNet-0) for a
cross-check, the layered-structure test that decides when dispersion is needed, and the
method limits each result states.

- D3(BJ): S. Grimme, J. Antony, S. Ehrlich, H. Krieg, J. Chem. Phys. 132 (2010) 154104; S.
  Grimme, S. Ehrlich, L. Goerigk, J. Comput. Chem. 32 (2011) 1456. The ``dftd3`` package
  (simple-dftd3) with the PBE damping parameters, because CHGNet and SevenNet-0 learned PBE
  and PBE+U energies (the Materials Project trajectory set); summed onto the potential with
  ASE's ``SumCalculator``.
- SevenNet-0 (11 July 2024): Y. Park, J. Kim, S. Hwang, S. Han, J. Chem. Theory Comput. 20
  (2024) 4857, doi:10.1021/acs.jctc.4c00190; an equivariant (NequIP-type) potential trained on
  the same MPtrj set as CHGNet, so the two disagree where the architectures generalise
  differently, not where the training data are wrong. Its weights ship in the ``sevenn`` wheel
  (``sevenn/pretrained_potentials/SevenNet_0__11Jul2024``): nothing is downloaded.
"""

from __future__ import annotations

import io
import warnings
from contextlib import redirect_stdout
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, Field

Potential = Literal["chgnet", "sevennet"]
Dispersion = Literal["auto", "none", "d3bj"]

#: bond criterion of the dimensionality test: atoms closer than k times the sum of their
#: covalent radii (ASE's table: B. Cordero et al., Dalton Trans. (2008) 2832) are bonded
BOND_SCALE = 1.3

GPA_PER_EV_A3 = 160.21766208


class MethodLimit(BaseModel):
    """A known limit of the method for this kind of result."""

    quantity: str = Field(description="what the limit concerns")
    note: str
    source: str = Field(description="paper or measurement the note rests on")


@cache
def sevennet_model() -> Any:
    """SevenNet-0's ASE calculator (weights from the sevenn wheel; CPU; one load)."""
    import torch
    from sevenn.calculator import SevenNetCalculator

    from bigmap.tenants.crystal.throughput import TORCH_THREADS

    torch.set_num_threads(TORCH_THREADS)
    with redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SevenNetCalculator("7net-0", device="cpu")


def calculator(potential: Potential, d3: bool, model: Any | None = None) -> Any:
    """An ASE calculator: the universal potential, plus D3(BJ) with PBE parameters."""
    if potential == "sevennet":
        base = sevennet_model()
    else:
        from chgnet.model.dynamics import CHGNetCalculator

        from bigmap.tenants.crystal.throughput import load_model

        with redirect_stdout(io.StringIO()):  # CHGNetCalculator prints its device
            base = CHGNetCalculator(model=model or load_model(), on_isolated_atoms="ignore")
    if not d3:
        return base
    from ase.calculators.mixing import SumCalculator
    from dftd3.ase import DFTD3

    return SumCalculator([base, DFTD3(method="pbe", damping="d3bj")])


def is_layered(structure: Any) -> bool:
    """True when the structure's bonded network (covalent radii x 1.3) is not 3-D: layers,
    chains or molecules held together by dispersion. ASE's rank-determinant analysis
    (P. M. Larsen, M. Pandey, M. Strange, K. W. Jacobsen, Phys. Rev. Mater. 3 (2019) 034003)."""
    from ase.geometry.dimensionality import analyze_dimensionality
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor().get_atoms(structure)
    for interval in analyze_dimensionality(atoms, method="RDA"):
        if interval.a <= BOND_SCALE < interval.b:
            return interval.dimtype != "3D"
    return False


def use_d3(dispersion: Dispersion, structures: list[Any]) -> tuple[bool, list[bool]]:
    """Whether D3 applies, and which structures are layered. ``auto``: when any structure of
    the calculation is layered (all of them then get it, so energies stay comparable)."""
    layered = [is_layered(s) for s in structures]
    if dispersion == "auto":
        return any(layered), layered
    return dispersion == "d3bj", layered


# --------------------------------------------------------------------------- method limits

SOFTENING = (
    "B. Deng, Y. Choi, P. Zhong, J. Riebesell, S. Anand, Z. Li, K. Jun, K. A. Persson, "
    "G. Ceder, npj Comput. Mater. 11 (2025) 9, doi:10.1038/s41524-024-01500-6 (abstract: "
    "M3GNet, CHGNet and MACE-MP-0 underpredict energies and forces of ion migration barriers "
    "and other high-energy states, from systematically underpredicted PES curvature)"
)
GGA_U_VOLTAGES = (
    "F. Zhou, M. Cococcioni, C. A. Marianetti, D. Morgan, G. Ceder, Phys. Rev. B 70 (2004) "
    "235121 (abstract: LDA/GGA underestimate Li intercalation voltages of transition-metal "
    "compounds; DFT+U with a self-consistent U reproduces them); the training data (Materials "
    "Project) use one fixed U per element instead"
)
NO_DISPERSION = (
    "graphite relaxed by CHGNet without dispersion: c = 7.69 Å against 6.711 Å measured "
    "(P. Trucano, R. Chen, Nature 258 (1975) 136), benchmarks/validation_crystal.py"
)
D3_ON_MLIP = (
    "D3(BJ) with PBE parameters added to a PBE(+U)-trained potential, as for PBE-D3(BJ); "
    "the potential's own error in the short-range layer binding remains"
)
D3_SOURCE = (
    "S. Grimme, S. Ehrlich, L. Goerigk, J. Comput. Chem. 32 (2011) 1456 (D3 with "
    "Becke-Johnson damping); parameters of the dftd3 package for PBE"
)

#: redox-active metals whose oxides the training data treat with one fixed U
_TM_U = {"Co", "Mn", "Ni", "Fe", "Cr", "V", "Cu", "Mo", "W"}
_POLYANION = {"P", "S", "Si", "B", "As"}


def voltage_limits(host: Any, dispersion_applied: bool, layered: bool) -> list[MethodLimit]:
    """The known limits of an intercalation voltage of ``host`` (a pymatgen Composition)."""
    els = {e.symbol for e in host.elements}
    out: list[MethodLimit] = []
    if els & _TM_U and ("O" in els or "F" in els) and not els & _POLYANION:
        out.append(
            MethodLimit(
                quantity="average_voltage",
                note=(
                    "transition-metal oxide: a potential trained on GGA/GGA+U energies "
                    "underestimates its voltage (CHGNet alone: LiCoO2 3.51 V, LiMn2O4 3.88 V "
                    "against about 3.9-4.1 V measured; LiCoO2 with D3(BJ) 3.80 V, "
                    "benchmarks/validation_crystal.py); treat the value as a lower estimate"
                ),
                source=GGA_U_VOLTAGES,
            )
        )
    if layered and not dispersion_applied:
        out.append(
            MethodLimit(
                quantity="average_voltage",
                note="layered structure without a dispersion correction: interlayer binding "
                "missing, lattice and voltage biased; use dispersion='d3bj' or 'auto'",
                source=NO_DISPERSION,
            )
        )
    if dispersion_applied:
        out.append(MethodLimit(quantity="average_voltage", note=D3_ON_MLIP, source=D3_SOURCE))
    return out


def barrier_limits() -> list[MethodLimit]:
    return [
        MethodLimit(
            quantity="barrier",
            note=(
                "universal potentials soften the energy surface: migration barriers come out "
                "too low; treat the barrier as a lower estimate and confirm with DFT-NEB"
            ),
            source=SOFTENING,
        )
    ]


def relax_limits(dispersion_applied: bool, layered: list[bool]) -> list[MethodLimit]:
    out = []
    if any(layered) and not dispersion_applied:
        out.append(
            MethodLimit(
                quantity="lattice",
                note="layered structure relaxed without dispersion: the stacking axis comes "
                "out too long; use dispersion='d3bj' or 'auto'",
                source=NO_DISPERSION,
            )
        )
    if dispersion_applied:
        out.append(MethodLimit(quantity="lattice", note=D3_ON_MLIP, source=D3_SOURCE))
    return out
