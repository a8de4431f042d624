"""Tenant ``molecule-sim``: redox windows of electrolyte molecules.

One capability family, two fidelities on the same input and output
(:class:`~bigmap.tenants.molecule.redox.RedoxOutput`):

- ``redox_potential/gfn2_xtb`` (:mod:`.xtb`): GFN2-xTB or IPEA1-xTB (tblite) with ALPB
  implicit solvation and xtb's empirical IP/EA shift; seconds per molecule: the cheap screen.
- ``redox_potential/dft`` (:mod:`.dft`): a D3(BJ)-corrected hybrid functional, a def2 basis
  and a polarisable continuum (PySCF); minutes to hours per molecule: the confirmation.

Both: a molecule by SMILES -> RDKit 3D embedding and a small conformer search -> the neutral
(the given charge), oxidised (+1) and reduced (-1) species -> adiabatic and vertical
ionisation energies and electron affinities, HOMO/LUMO, and oxidation/reduction potentials
vs Li+/Li by the thermodynamic cycle of :mod:`.redox`. ``benchmarks/validation_molecule.py``
compares both with published values.
"""

from __future__ import annotations

from bigmap.client import Tenant
from bigmap.tenants.molecule import dft, xtb
from bigmap.tenants.molecule.redox import LI_ABSOLUTE_V, UNITS, RedoxOutput
from bigmap.tenants.molecule.xtb import IPEA_SHIFT_EV, XTB_IPEA_SHIFT_HARTREE

__all__ = ["IPEA_SHIFT_EV", "LI_ABSOLUTE_V", "XTB_IPEA_SHIFT_HARTREE", "tenant"]

tenant = Tenant(
    "molecule-sim",
    kind="simulation",
    description=(
        "Electrolyte molecules: redox windows with GFN2-xTB (tblite, the screen) and "
        "dispersion-corrected hybrid DFT (PySCF, the confirmation)."
    ),
    software=xtb.software,
)

tenant.capability(
    "redox_potential",
    "gfn2_xtb",
    parameters=xtb.RedoxInput,
    result=RedoxOutput,
    units=UNITS,
    cost=1.0,
    fidelity=0.3,
    lease_seconds=300.0,
)(xtb.redox_potential)

# cost relative to gfn2_xtb: ~30 s for a carbonate with GFN2-xTB against tens of minutes of
# DFT single points on this machine (benchmarks/validation_molecule.py prints both)
tenant.capability(
    "redox_potential",
    "dft",
    parameters=dft.DftRedoxInput,
    result=RedoxOutput,
    units=UNITS,
    cost=100.0,
    fidelity=0.7,
    lease_seconds=1800.0,
)(dft.redox_potential)
