"""Electrolyte formulations: the chemicals of the HTE dataset and the mapping between a
FINALES formulation and the dataset's coordinates ``(r, c)``.

The HTE dataset (``bigmap.data.load_hte()``; E. Flores et al., Digital Discovery 1 (2022)
440-447, doi:10.1039/D2DD00027J; measured at Helmholtz-Institute Muenster, described in full
in F. Rahmanian et al., "Conductivity experiments for electrolyte formulations and their
automated analysis", Sci. Data 10 (2023) 43, doi:10.1038/s41597-023-01936-3) holds LiPF6 in
blends of ethylene carbonate (EC), propylene carbonate (PC) and ethyl methyl carbonate (EMC).
The blends were mixed by mass: the EC:PC mass ratio was varied while the mass ratio
(EC + PC):EMC was held fixed (Rahmanian et al.: "The mass ratio of EC to PC was varied, while
keeping the mass ratio of (EC + PC) and EMC at fixed values of 3:7 and 1:1").

The coordinates of the dataset are

* ``c`` [mol/kg]: LiPF6 molality, moles of salt per kilogram of the solvent blend
  (EC + PC + EMC);
* ``r``: the solvent-ratio coordinate that Flores et al. call the "PC:EC ratio": the **molar**
  share of PC in the cyclic carbonates,

      r = n_PC / (n_EC + n_PC),

  so that r = 0 is an EC/EMC blend and r = 1 a PC/EMC blend (no EC). The dataset spans
  r = 0.087 ... 1.0.

How ``r`` was pinned down (recorded so that it can be re-checked). The article's full text
was not readable from this workplace, but the raw records behind it are, in part: the
repository of its analysis package (fuzhanrahmanian/MADAP, ``data/Dataframe_STRUCTURED_all508
.csv``, commit 9d614d6) holds four complete experiments with the weighed masses of PC, EC, EMC
and LiPF6 and the conductivity at each temperature. Two of them are in the HTE file, with
conductivities identical to four digits at every temperature:

* PYA_25082021_BM169_1: PC 1.509 g, EC 1.506 g, EMC 7.2024 g, LiPF6 0.3006 g, i.e. a PC mass
  share of 0.500 and a molar share of 0.464, 0.194 mol/kg: the file's rows at r = 0.464,
  c = 0.194 (0.1542 S/m at 253.15 K = 1.5416 mS/cm in the record);
* WOC_02112021_BM241_3: mass share 0.633, molar share 0.598, 1.993 mol/kg: the file's rows at
  r = 0.598, c = 1.993.

The file has no r = 0.500 or 0.633, so r is the molar share. The file's own span agrees: its
smallest r, 0.087, is below 1/(1 + 9.2) = 0.098, the smallest mass share the campaign's EC:PC
mass ratios (up to 9.2) allow, while the molar share of EC:PC = 9.2:1 by mass is 0.086.

The EMC share: the article mixes two series, (EC + PC):EMC = 3:7 and 1:1 by mass (Rahmanian
et al., abstract), and r does not say which. The third record above in the HTE file,
WOC_23032021_BM063_4 (PC 0 g, EMC 50 wt%, 0.593 mol/kg, rows 1490-1499), is of the 1:1
series. ``bigmap.data.load_hte`` labels the series of every row (see there);
:func:`formulation_to_hte` maps a formulation of either series (``emc_mass_fraction``), by
default the 3:7 one (:data:`HTE_EMC_MASS_FRACTION`). :func:`pc_share_to_r` /
:func:`r_to_pc_share` are the only places that define r.

Molar masses are computed from the IUPAC conventional standard atomic weights
(CIAAW, "Standard atomic weights of the elements 2021", Pure Appl. Chem. 95 (2023) 1159):
C 12.011, H 1.008, O 15.999, F 18.998403163, P 30.973761998, Li 6.94. SMILES and InChIKeys
are those used by the FINALES examples (``tests/data/finales/examples``, from the FINALES repository, MIT), checked with RDKit.

Pure Python + numpy: no pydantic model is needed here, a formulation is the FINALES list of
``{chemical: {SMILES, InChIKey}, fraction, fraction_type: "molPerMol"}``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "CHEMICALS",
    "HTE_CHEMICALS",
    "HTE_EMC_MASS_FRACTION",
    "HTE_SERIES",
    "HTE_R_RANGE",
    "HTE_C_RANGE",
    "HTE_T_RANGE",
    "MOLAR_FRACTION_TYPES",
    "chemical_entry",
    "identify",
    "mole_fractions",
    "mass_fractions",
    "solvent_mass_fractions",
    "molality",
    "formulation_to_hte",
    "hte_to_formulation",
    "pc_share_to_r",
    "r_to_pc_share",
    "formulation_from_mole_fractions",
]

# IUPAC/CIAAW 2021 conventional standard atomic weights [g/mol] (see module docstring).
_ATOMIC_WEIGHT = {
    "H": 1.008,
    "Li": 6.94,
    "C": 12.011,
    "O": 15.999,
    "F": 18.998403163,
    "P": 30.973761998,
}


def _molar_mass(formula: Mapping[str, int]) -> float:
    """Molar mass [kg/mol] of a formula given as {element: count}."""
    return sum(_ATOMIC_WEIGHT[el] * n for el, n in formula.items()) / 1000.0


# Every chemical bigmap knows by name. SMILES/InChIKey as in the FINALES examples (EC, PC,
# EMC, DMC, LiPF6); FEC and DEC from RDKit for the Landesfeind-Gasteiger solvent systems.
# molar_mass in kg/mol (SI), formula for the record.
CHEMICALS: dict[str, dict[str, Any]] = {
    "EC": {
        "name": "ethylene carbonate",
        "SMILES": "C1COC(=O)O1",
        "InChIKey": "KMTRUDSVKNLOMY-UHFFFAOYSA-N",
        "formula": {"C": 3, "H": 4, "O": 3},
    },
    "PC": {
        "name": "propylene carbonate",
        "SMILES": "CC1COC(=O)O1",
        "InChIKey": "RUOJZAUFBMNUDX-UHFFFAOYSA-N",
        "formula": {"C": 4, "H": 6, "O": 3},
    },
    "EMC": {
        "name": "ethyl methyl carbonate",
        "SMILES": "CCOC(=O)OC",
        "InChIKey": "JBTWLSYIZRCDFO-UHFFFAOYSA-N",
        "formula": {"C": 4, "H": 8, "O": 3},
    },
    "LiPF6": {
        "name": "lithium hexafluorophosphate",
        "SMILES": "[Li+].F[P-](F)(F)(F)(F)F",
        "InChIKey": "AXPLOJNSKRXQPA-UHFFFAOYSA-N",
        "formula": {"Li": 1, "P": 1, "F": 6},
    },
    "DMC": {
        "name": "dimethyl carbonate",
        "SMILES": "COC(=O)OC",
        "InChIKey": "IEJIGPNLZYLLBP-UHFFFAOYSA-N",
        "formula": {"C": 3, "H": 6, "O": 3},
    },
    "FEC": {
        "name": "fluoroethylene carbonate",
        "SMILES": "O=C1OCC(F)O1",
        "InChIKey": "SBLRHMKNNHXPHG-UHFFFAOYSA-N",
        "formula": {"C": 3, "H": 3, "F": 1, "O": 3},
    },
    "DEC": {
        "name": "diethyl carbonate",
        "SMILES": "CCOC(=O)OCC",
        "InChIKey": "OIFBSDVPJOWBCH-UHFFFAOYSA-N",
        "formula": {"C": 5, "H": 10, "O": 3},
    },
}
for _entry in CHEMICALS.values():
    _entry["molar_mass"] = _molar_mass(_entry["formula"])

SALTS = frozenset({"LiPF6"})

# The public contract: {SMILES, InChIKey, molar_mass} for the four HTE chemicals.
# molar_mass is in kg/mol (SI, as everything in bigmap): EC 0.088062, PC 0.102089,
# EMC 0.104105, LiPF6 0.151904.
HTE_CHEMICALS: dict[str, dict[str, Any]] = {
    key: {
        "SMILES": CHEMICALS[key]["SMILES"],
        "InChIKey": CHEMICALS[key]["InChIKey"],
        "molar_mass": CHEMICALS[key]["molar_mass"],
    }
    for key in ("EC", "PC", "EMC", "LiPF6")
}

# Mass fraction of EMC in the solvent blend of the dataset: (EC + PC):EMC = 3:7 by mass.
HTE_EMC_MASS_FRACTION = 0.7
# The two series of the dataset, EMC mass fraction of the solvent by name (Rahmanian et al.).
HTE_SERIES = {"3:7": 0.7, "1:1": 0.5}
# Tolerance on that EMC share when a formulation is mapped onto the dataset (absolute, in
# mass fraction): a formulation written with 3-4 significant figures still maps.
HTE_EMC_TOLERANCE = 0.02
# The span of the measurements (bigmap.data.load_hte()).
HTE_R_RANGE = (0.087, 1.0)
HTE_C_RANGE = (0.194, 2.118)  # mol/kg
HTE_T_RANGE = (243.15, 333.15)  # K

# FINALES writes molar fractions as "molPerMol"; its older examples say "molar fraction".
MOLAR_FRACTION_TYPES = frozenset({"molPerMol", "molar fraction", "mol/mol"})
# How far the fractions of a formulation may sum away from 1 before it is refused.
SUM_TOLERANCE = 1e-2

_BY_INCHIKEY = {entry["InChIKey"]: key for key, entry in CHEMICALS.items()}
# Some spellings of the same SMILES that clients are known to send.
_SMILES_ALIASES = {
    "O=C1OCCO1": "EC",
    "C1COC(=O)O1": "EC",
    "CC1COC(=O)O1": "PC",
    "CC1OC(=O)OC1": "PC",
    "O=C1OCC(C)O1": "PC",
    "CCOC(=O)OC": "EMC",
    "COC(=O)OCC": "EMC",
    "[Li+].F[P-](F)(F)(F)(F)F": "LiPF6",
    "F[P-](F)(F)(F)(F)F.[Li+]": "LiPF6",
    "COC(=O)OC": "DMC",
    "O=C1OCC(F)O1": "FEC",
    "C1C(OC(=O)O1)F": "FEC",
    "FC1COC(=O)O1": "FEC",
    "CCOC(=O)OCC": "DEC",
}


def chemical_entry(name: str) -> dict[str, str]:
    """The FINALES ``chemical`` object ``{SMILES, InChIKey}`` of a known chemical."""
    entry = CHEMICALS[name]
    return {"SMILES": entry["SMILES"], "InChIKey": entry["InChIKey"]}


def identify(chemical: Mapping[str, Any]) -> str:
    """The short name ("EC", "LiPF6", ...) of a FINALES chemical object, by InChIKey (the
    identity that FINALES matches on), else by SMILES. ``ValueError`` if unknown or if its
    InChIKey and SMILES name two different chemicals."""
    if not isinstance(chemical, Mapping):
        raise ValueError(f"a chemical must be an object with SMILES and InChIKey, not {chemical!r}")
    key = chemical.get("InChIKey")
    smiles = chemical.get("SMILES")
    by_key = _BY_INCHIKEY.get(key) if isinstance(key, str) else None
    by_smiles = _SMILES_ALIASES.get(smiles) if isinstance(smiles, str) else None
    if by_key and by_smiles and by_key != by_smiles:
        raise ValueError(
            f"chemical is inconsistent: InChIKey {key} is {by_key} but SMILES {smiles!r} is "
            f"{by_smiles}"
        )
    name = by_key or by_smiles
    if name is None:
        known = ", ".join(f"{k} ({v['InChIKey']})" for k, v in CHEMICALS.items())
        raise ValueError(f"unknown chemical (SMILES {smiles!r}, InChIKey {key!r}); known: {known}")
    return name


def mole_fractions(formulation: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """``{name: mole fraction}`` of a FINALES formulation, normalised to sum 1.

    Every component must be a known chemical (:data:`CHEMICALS`), appear once, have a
    molar fraction type (``molPerMol``) and a fraction in [0, 1]; the fractions must sum to
    1 within :data:`SUM_TOLERANCE`. Otherwise ``ValueError`` with the offending index."""
    if isinstance(formulation, Mapping | str | bytes) or not isinstance(formulation, Sequence):
        raise ValueError("a formulation must be a list of components")
    if not formulation:
        raise ValueError("the formulation is empty")
    out: dict[str, float] = {}
    for i, comp in enumerate(formulation):
        if not isinstance(comp, Mapping):
            raise ValueError(f"formulation[{i}] must be an object")
        for field in ("chemical", "fraction"):
            if field not in comp:
                raise ValueError(f"formulation[{i}] has no '{field}'")
        ftype = comp.get("fraction_type", "molPerMol")
        if ftype not in MOLAR_FRACTION_TYPES:
            raise ValueError(
                f"formulation[{i}].fraction_type is {ftype!r}; only molar fractions "
                f"('molPerMol') are supported"
            )
        try:
            name = identify(comp["chemical"])
        except ValueError as exc:
            raise ValueError(f"formulation[{i}].chemical: {exc}") from None
        frac = comp["fraction"]
        if isinstance(frac, bool) or not isinstance(frac, int | float) or not math.isfinite(frac):
            raise ValueError(f"formulation[{i}].fraction must be a finite number, not {frac!r}")
        if frac < 0 or frac > 1:
            raise ValueError(f"formulation[{i}].fraction {frac} is outside [0, 1]")
        if name in out:
            raise ValueError(f"formulation[{i}]: {name} is listed twice")
        out[name] = float(frac)
    total = sum(out.values())
    if abs(total - 1.0) > SUM_TOLERANCE:
        raise ValueError(
            f"the molar fractions of the formulation sum to {total:.6g}, not 1 "
            f"(tolerance {SUM_TOLERANCE})"
        )
    return {k: v / total for k, v in out.items()}


def mass_fractions(formulation: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """``{name: mass fraction}`` of the whole formulation (salt included)."""
    x = mole_fractions(formulation)
    masses = {k: v * CHEMICALS[k]["molar_mass"] for k, v in x.items()}
    total = sum(masses.values())
    return {k: m / total for k, m in masses.items()}


def solvent_mass_fractions(formulation: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """``{solvent: mass fraction}`` within the solvent blend (salts left out).
    ``ValueError`` if the formulation has no solvent."""
    x = mole_fractions(formulation)
    masses = {k: v * CHEMICALS[k]["molar_mass"] for k, v in x.items() if k not in SALTS}
    total = sum(masses.values())
    if total <= 0:
        raise ValueError("the formulation has no solvent")
    return {k: m / total for k, m in masses.items()}


def molality(formulation: Sequence[Mapping[str, Any]], salt: str = "LiPF6") -> float:
    """Salt molality [mol/kg]: moles of ``salt`` per kilogram of solvent."""
    x = mole_fractions(formulation)
    solvent_kg = sum(v * CHEMICALS[k]["molar_mass"] for k, v in x.items() if k not in SALTS)
    if solvent_kg <= 0:
        raise ValueError("the formulation has no solvent")
    return x.get(salt, 0.0) / solvent_kg


def pc_share_to_r(m_ec: float, m_pc: float) -> float:
    """The dataset's ``r`` (the molar share of PC in EC + PC, see the module docstring) from
    the masses (or mass fractions) of EC and PC."""
    if m_ec + m_pc <= 0:
        raise ValueError("r is undefined without EC or PC in the blend")
    n_ec = m_ec / CHEMICALS["EC"]["molar_mass"]
    n_pc = m_pc / CHEMICALS["PC"]["molar_mass"]
    return n_pc / (n_ec + n_pc)


def r_to_pc_share(r: float) -> tuple[float, float]:
    """``(w_EC, w_PC)``: mass shares of EC and PC in the cyclic carbonates for a given ``r``
    (the molar share of PC)."""
    m_ec = (1.0 - r) * CHEMICALS["EC"]["molar_mass"]
    m_pc = r * CHEMICALS["PC"]["molar_mass"]
    if m_ec + m_pc <= 0:
        raise ValueError(f"r = {r} gives no cyclic carbonate")
    return m_ec / (m_ec + m_pc), m_pc / (m_ec + m_pc)


def formulation_to_hte(
    formulation: Sequence[Mapping[str, Any]],
    *,
    emc_mass_fraction: float = HTE_EMC_MASS_FRACTION,
    emc_tolerance: float = HTE_EMC_TOLERANCE,
) -> tuple[float, float]:
    """``(r, c)`` of a FINALES formulation: the dataset's solvent-ratio coordinate and the
    LiPF6 molality [mol/kg].

    ``ValueError`` (with a clear reason) for a chemical other than EC, PC, EMC, LiPF6, for a
    malformed formulation (see :func:`mole_fractions`), for a blend without EC and PC, and
    for an EMC share of the solvent that is not the dataset's ((EC + PC):EMC = 3:7 by mass,
    within ``emc_tolerance``). Whether ``(r, c)`` lies inside the measured span is not
    checked here (a model's domain is the model's business)."""
    x = mole_fractions(formulation)
    other = sorted(set(x) - set(HTE_CHEMICALS))
    if other:
        raise ValueError(
            f"{', '.join(other)} is not in the HTE dataset's chemical space "
            f"(LiPF6 in EC/PC/EMC only)"
        )
    w = solvent_mass_fractions(formulation)
    w_ec, w_pc, w_emc = w.get("EC", 0.0), w.get("PC", 0.0), w.get("EMC", 0.0)
    if w_ec + w_pc <= 0:
        raise ValueError("the blend has neither EC nor PC: r is undefined")
    if abs(w_emc - emc_mass_fraction) > emc_tolerance:
        raise ValueError(
            f"the solvent is {100 * w_emc:.1f} wt% EMC; the HTE dataset holds blends with "
            f"(EC + PC):EMC = {1 - emc_mass_fraction:.2g}:{emc_mass_fraction:.2g} by mass "
            f"({100 * emc_mass_fraction:.0f} wt% EMC, tolerance {100 * emc_tolerance:.0f} wt%)"
        )
    return pc_share_to_r(w_ec, w_pc), molality(formulation)


def hte_to_formulation(
    r: float, c: float, *, emc_mass_fraction: float = HTE_EMC_MASS_FRACTION
) -> list[dict[str, Any]]:
    """The FINALES formulation (molPerMol fractions summing to 1) of the dataset's point
    ``(r, c [mol/kg])``. Components with a zero amount (EC at r = 1, PC at r = 0, the salt at
    c = 0) are left out. ``ValueError`` for r outside [0, 1] or c < 0."""
    for label, v in (("r", r), ("c", c)):
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ValueError(f"{label} must be a finite number, not {v!r}")
    if not 0.0 <= r <= 1.0:
        raise ValueError(f"r = {r} is outside [0, 1]")
    if c < 0:
        raise ValueError(f"c = {c} mol/kg is negative")
    w_ec, w_pc = r_to_pc_share(r)
    solvent_mass = {  # kg per kg of solvent
        "EC": (1.0 - emc_mass_fraction) * w_ec,
        "PC": (1.0 - emc_mass_fraction) * w_pc,
        "EMC": emc_mass_fraction,
    }
    moles = {k: m / HTE_CHEMICALS[k]["molar_mass"] for k, m in solvent_mass.items()}
    moles["LiPF6"] = float(c)
    return formulation_from_mole_fractions(moles)


def formulation_from_mole_fractions(amounts: Mapping[str, float]) -> list[dict[str, Any]]:
    """A FINALES formulation from ``{name: amount}`` (moles or fractions; normalised to 1);
    zero amounts are left out. Salt first, then solvents in the order given."""
    total = sum(amounts.values())
    if total <= 0:
        raise ValueError("a formulation needs a positive amount of something")
    order = [k for k in amounts if k in SALTS] + [k for k in amounts if k not in SALTS]
    out = []
    for name in order:
        if name not in CHEMICALS:
            raise ValueError(f"unknown chemical {name!r}")
        amount = amounts[name]
        if amount < 0:
            raise ValueError(f"negative amount of {name}")
        if amount == 0:
            continue
        out.append(
            {
                "chemical": chemical_entry(name),
                "fraction": amount / total,
                "fraction_type": "molPerMol",
            }
        )
    return out
