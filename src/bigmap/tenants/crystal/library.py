"""Textbook battery structures built from published lattice parameters and Wyckoff
positions (pymatgen ``Structure.from_spacegroup``; no downloads).

Delithiated hosts whose full refinements are not reproduced here start from the lithiated
positions without Li in the published delithiated cell (said at each entry); a CHGNet
relaxation (cell and positions) takes them to their minimum before any energy is used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from pymatgen.core import Lattice, Structure


@dataclass(frozen=True)
class Entry:
    name: str
    description: str
    source: str
    build: Callable[[], Structure]


def _lifepo4(a: float, b: float, c: float, with_li: bool = True, ion: str = "Li") -> Structure:
    # Olivine LiFePO4, Pnma (62): A. A. Streltsov, E. L. Belokoneva, V. G. Tsirelson,
    # N. K. Hansen, Acta Cryst. B49 (1993) 147 (single-crystal X-ray refinement).
    species = ["Fe", "P", "O", "O", "O"]
    coords = [
        [0.28222, 0.25, 0.97472],  # Fe 4c
        [0.09486, 0.25, 0.41820],  # P 4c
        [0.09678, 0.25, 0.74279],  # O1 4c
        [0.45710, 0.25, 0.20602],  # O2 4c
        [0.16558, 0.04646, 0.28473],  # O3 8d
    ]
    if with_li:
        species.insert(0, ion)
        coords.insert(0, [0.0, 0.0, 0.0])  # Li 4a
    return Structure.from_spacegroup("Pnma", Lattice.orthorhombic(a, b, c), species, coords)


def _layered(a: float, c: float, z_o: float, with_li: bool = True) -> Structure:
    # alpha-NaFeO2 type LiCoO2, R-3m (166), hexagonal axes: Co 3a (0,0,0), Li 3b (0,0,1/2),
    # O 6c (0,0,z).
    species, coords = ["Co", "O"], [[0, 0, 0], [0, 0, z_o]]
    if with_li:
        species.insert(0, "Li")
        coords.insert(0, [0, 0, 0.5])
    s = Structure.from_spacegroup("R-3m", Lattice.hexagonal(a, c), species, coords)
    return s.get_primitive_structure()


def _spinel(a: float, x_o: float, with_li: bool = True) -> Structure:
    # Spinel LiMn2O4, Fd-3m (227). Published in origin choice 2: Li 8a (1/8,1/8,1/8),
    # Mn 16d (1/2,1/2,1/2), O 32e (x,x,x); pymatgen's Fd-3m is origin choice 1, where the same
    # sites are Li (0,0,0), Mn (5/8,5/8,5/8), O (x+1/8, x+1/8, x+1/8).
    xo = x_o + 0.125
    species, coords = ["Mn", "O"], [[0.625, 0.625, 0.625], [xo, xo, xo]]
    if with_li:
        species.insert(0, "Li")
        coords.insert(0, [0.0, 0.0, 0.0])
    s = Structure.from_spacegroup("Fd-3m", Lattice.cubic(a), species, coords)
    return s.get_primitive_structure()


def _lic6() -> Structure:
    # LiC6, P6/mmm (191), AA-stacked graphene with Li over hexagon centres: Li 1a (0,0,0),
    # C 6k (1/3,0,1/2); a = 4.305 Å, c = 3.706 Å: D. Guérard, A. Hérold, Carbon 13 (1975) 337.
    return Structure.from_spacegroup(
        "P6/mmm", Lattice.hexagonal(4.305, 3.706), ["Li", "C"], [[0, 0, 0], [1 / 3, 0, 0.5]]
    )


def _graphite() -> Structure:
    # Hexagonal (AB) graphite, P6_3/mmc (194): C 2b (0,0,1/4), C 2c (1/3,2/3,1/4);
    # a = 2.464 Å, c = 6.711 Å: P. Trucano, R. Chen, Nature 258 (1975) 136.
    return Structure.from_spacegroup(
        "P6_3/mmc",
        Lattice.hexagonal(2.464, 6.711),
        ["C", "C"],
        [[0, 0, 0.25], [1 / 3, 2 / 3, 0.25]],
    )


def _bcc_li() -> Structure:
    # bcc Li, Im-3m (229), a = 3.51 Å at room temperature: R. Berliner, O. Fajen, H. G. Smith,
    # R. L. Hitterman, Phys. Rev. B 40 (1989) 12086.
    return Structure.from_spacegroup("Im-3m", Lattice.cubic(3.51), ["Li"], [[0, 0, 0]])


def _bcc_na() -> Structure:
    # bcc Na, Im-3m (229), a = 4.29 Å at room temperature (value as remembered from the
    # standard tables, not checked here; the cell is relaxed before its energy is used)
    return Structure.from_spacegroup("Im-3m", Lattice.cubic(4.29), ["Na"], [[0, 0, 0]])


def _rocksalt(el: str, a: float) -> Structure:
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(a), ["Li", el], [[0, 0, 0], [0.5, 0.5, 0.5]]
    ).get_primitive_structure()


def _antifluorite_li2o() -> Structure:
    # Li2O, antifluorite Fm-3m (225): O 4a (0,0,0), Li 8c (1/4,1/4,1/4); a = 4.611 Å:
    # T. W. D. Farley, W. Hayes, S. Hull, M. T. Hutchings, M. Vrtis, J. Phys.: Condens. Matter
    # 3 (1991) 4761.
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(4.611), ["O", "Li"], [[0, 0, 0], [0.25, 0.25, 0.25]]
    ).get_primitive_structure()


LIBRARY: dict[str, Entry] = {
    e.name: e
    for e in [
        Entry(
            "LiFePO4",
            "olivine LiFePO4 (Pnma), 28 atoms",
            "Streltsov et al., Acta Cryst. B49 (1993) 147: a=10.332, b=6.010, c=4.692 Å",
            lambda: _lifepo4(10.332, 6.010, 4.692),
        ),
        Entry(
            "FePO4",
            "heterosite FePO4 (Pnma), 24 atoms: LiFePO4 positions without Li in the FePO4 cell",
            "cell: A. S. Andersson, B. Kalska, L. Häggström, J. O. Thomas, Solid State Ionics "
            "130 (2000) 41: a=9.821, b=5.792, c=4.788 Å",
            lambda: _lifepo4(9.821, 5.792, 4.788, with_li=False),
        ),
        Entry(
            "LiCoO2",
            "layered O3 LiCoO2 (R-3m), primitive cell, 4 atoms",
            "K. Akimoto, Y. Gotoh, Y. Oosawa, J. Solid State Chem. 141 (1998) 298: "
            "a=2.8156, c=14.0542 Å, z(O)=0.2396",
            lambda: _layered(2.8156, 14.0542, 0.2396),
        ),
        Entry(
            "CoO2",
            "CoO2 (R-3m, O3 stacking kept), 3 atoms: LiCoO2 positions without Li",
            "start: the LiCoO2 cell of Akimoto et al. (1998) without Li; the real end member "
            "is O1-CoO2 (G. G. Amatucci, J.-M. Tarascon, L. C. Klein, J. Electrochem. Soc. 143 "
            "(1996) 1114)",
            lambda: _layered(2.8156, 14.0542, 0.2396, with_li=False),
        ),
        Entry(
            "LiMn2O4",
            "spinel LiMn2O4 (Fd-3m), primitive cell, 14 atoms",
            "M. M. Thackeray, W. I. F. David, P. G. Bruce, J. B. Goodenough, Mater. Res. Bull. "
            "18 (1983) 461: a=8.245 Å, x(O)=0.263",
            lambda: _spinel(8.245, 0.263),
        ),
        Entry(
            "Mn2O4",
            "lambda-MnO2 (Fd-3m), 12 atoms: LiMn2O4 positions without Li",
            "cell: J. C. Hunter, J. Solid State Chem. 39 (1981) 142: a=8.03 Å",
            lambda: _spinel(8.03, 0.263, with_li=False),
        ),
        Entry(
            "LiC6",
            "LiC6 (P6/mmm), 7 atoms",
            "D. Guérard, A. Hérold, Carbon 13 (1975) 337: a=4.305, c=3.706 Å",
            _lic6,
        ),
        Entry(
            "graphite",
            "AB graphite (P6_3/mmc), 4 atoms",
            "P. Trucano, R. Chen, Nature 258 (1975) 136: a=2.464, c=6.711 Å",
            _graphite,
        ),
        Entry(
            "Li",
            "bcc Li metal (Im-3m), 1 atom",
            "R. Berliner et al., Phys. Rev. B 40 (1989) 12086: a=3.51 Å",
            _bcc_li,
        ),
        Entry(
            "NaFePO4",
            "olivine NaFePO4 (Pnma), 28 atoms: LiFePO4 positions with Na in a larger cell",
            "cell as remembered from P. Moreau, D. Guyomard, J. Gaubicher, F. Boucher, Chem. "
            "Mater. 22 (2010) 4126 (a=10.406, b=6.218, c=4.946 Å; not checked here), positions "
            "of LiFePO4 (Streltsov et al. 1993); relaxed before use",
            lambda: _lifepo4(10.406, 6.218, 4.946, ion="Na"),
        ),
        Entry(
            "Na",
            "bcc Na metal (Im-3m), 1 atom",
            "a=4.29 Å (as remembered, not checked here; relaxed before use)",
            _bcc_na,
        ),
        Entry(
            "LiF",
            "rocksalt LiF (Fm-3m), 2 atoms",
            "a=4.026 Å: R. W. G. Wyckoff, Crystal Structures, Vol. 1, 2nd ed., Wiley (1963)",
            lambda: _rocksalt("F", 4.026),
        ),
        Entry(
            "Li2O",
            "antifluorite Li2O (Fm-3m), 3 atoms",
            "Farley et al., J. Phys.: Condens. Matter 3 (1991) 4761: a=4.611 Å",
            _antifluorite_li2o,
        ),
    ]
}

#: lithiated/delithiated pairs for intercalation voltages
PAIRS: dict[str, str] = {
    "LiFePO4": "FePO4",
    "LiCoO2": "CoO2",
    "LiMn2O4": "Mn2O4",
    "LiC6": "graphite",
    "NaFePO4": "FePO4",
}


@cache
def _built(name: str) -> Structure:
    return LIBRARY[name].build()


def builtin(name: str) -> Structure:
    """A copy of a library structure (KeyError for unknown names)."""
    return _built(name).copy()
