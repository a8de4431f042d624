"""Structure inputs of the crystal capabilities: a library name, CIF text or pymatgen JSON."""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from bigmap.client import InputError

#: CHGNet 0.3.0 embeds elements Z = 1..94 (B. Deng et al., Nat. Mach. Intell. 5 (2023) 1031)
MAX_Z = 94
MAX_ATOMS = 400
MIN_DISTANCE = 0.5  # Å


class StructureSpec(BaseModel):
    """One of: ``name`` (built-in library), ``cif`` (CIF text), ``pymatgen`` (Structure JSON)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=100)
    cif: str | None = Field(default=None, max_length=2_000_000)
    pymatgen: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one(self) -> StructureSpec:
        given = [k for k in ("name", "cif", "pymatgen") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of name, cif, pymatgen")
        return self


StructureRef = str | StructureSpec


def load(ref: StructureRef, where: str = "structure") -> Any:
    """A pymatgen Structure, or ``InputError`` with the parameter path and the reason."""
    from pymatgen.core import Structure

    from bigmap.tenants.crystal.library import LIBRARY, builtin

    if isinstance(ref, str):
        ref = StructureSpec(name=ref)
    if ref.name is not None:
        if ref.name not in LIBRARY:
            raise InputError(
                f"{where}: no built-in structure {ref.name!r}; known: {', '.join(LIBRARY)}"
            )
        s = builtin(ref.name)
    elif ref.cif is not None:
        from pymatgen.io.cif import CifParser

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                parsed = CifParser(io.StringIO(ref.cif)).parse_structures(primitive=False)
        except Exception as exc:
            raise InputError(f"{where}.cif: not a readable CIF structure ({exc})") from None
        if not parsed:
            raise InputError(f"{where}.cif: the CIF holds no structure")
        s = parsed[0]
    else:
        try:
            s = Structure.from_dict(ref.pymatgen)
        except Exception as exc:
            raise InputError(
                f"{where}.pymatgen: not a pymatgen Structure ({type(exc).__name__}: {exc})"
            ) from None
    check(s, where)
    return s


def check(s: Any, where: str = "structure") -> None:
    """Refuse what CHGNet cannot (or should not) compute."""
    if not s.is_ordered:
        raise InputError(f"{where}: partial occupancies; CHGNet needs an ordered structure")
    if len(s) == 0:
        raise InputError(f"{where}: no atoms")
    if len(s) > MAX_ATOMS:
        raise InputError(f"{where}: {len(s)} atoms; this tenant takes at most {MAX_ATOMS}")
    bad = sorted({el.symbol for el in s.composition.elements if not 1 <= el.Z <= MAX_Z})
    if bad:
        raise InputError(
            f"{where}: element(s) {', '.join(bad)} are not supported by CHGNet (Z = 1..{MAX_Z})"
        )
    if s.volume <= 0 or not np.isfinite(s.volume):
        raise InputError(f"{where}: the lattice has no volume")
    if len(s) > 1:
        d = s.distance_matrix
        np.fill_diagonal(d, np.inf)
        if d.min() < MIN_DISTANCE:
            i, j = np.unravel_index(np.argmin(d), d.shape)
            raise InputError(
                f"{where}: atoms {i} ({s[i].specie}) and {j} ({s[j].specie}) are "
                f"{d.min():.2f} Å apart (< {MIN_DISTANCE} Å): overlapping atoms"
            )


def to_cif(s: Any) -> str:
    from pymatgen.io.cif import CifWriter

    return str(CifWriter(s))
