"""Tenant ``crystal-sim``: electrode and interface properties with the CHGNet universal
potential through ASE and pymatgen.

Capabilities:

- ``relaxed_structure/chgnet``: one or many structures relaxed (cell and positions); energy
  per atom, stress, magnetic moments, convergence. Many structures run by the memory-bounded
  plan of :mod:`bigmap.tenants.crystal.throughput`.
- ``intercalation_voltage/chgnet``: the average voltage vs Li (or Na) metal of a lithiated
  and a delithiated structure from relaxed energies; optionally cross-checked with SevenNet-0,
  whose disagreement is the reported uncertainty.
- ``migration_barrier/chgnet_neb``: the barrier of a Li-vacancy hop by climbing-image NEB.
- ``interface_adhesion/chgnet``: a lattice-matched interface (pymatgen's coherent interface
  builder with the Zur-McGill lattice match), relaxed; the work of adhesion.

CHGNet: B. Deng, P. Zhong, K. Jun, J. Riebesell, K. Han, C. J. Bartel, G. Ceder, Nat. Mach.
Intell. 5 (2023) 1031, doi:10.1038/s42256-023-00716-3; the pretrained weights (0.3.0, trained
on the Materials Project trajectory set, i.e. PBE/PBE+U energies) ship in the chgnet wheel.

Dispersion (``dispersion``): PBE has no van der Waals binding, and neither has a potential
trained on it, so layered hosts come apart (graphite c = 7.69 Å instead of 6.71 Å). ``auto``
(the default) adds Grimme's D3(BJ) with PBE parameters (:mod:`.potentials`) to every
structure of a calculation when one of them is layered (ASE's dimensionality analysis);
``d3bj`` always, ``none`` never. Every result lists its ``method_limits`` with their sources.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from bigmap.client import CalculationFailed, InputError, JobContext, Tenant, package_version
from bigmap.tenants.crystal import potentials, throughput
from bigmap.tenants.crystal.potentials import Dispersion, MethodLimit, Potential
from bigmap.tenants.crystal.structures import StructureRef, load, to_cif

EV_PER_A2_TO_J_PER_M2 = 16.021766208  # 1 eV/Å^2 = 1.602176634e-19 J / 1e-20 m^2


def _software() -> dict[str, Any]:
    return {
        "name": "chgnet",
        "version": package_version("chgnet"),
        "model": "CHGNet 0.3.0 pretrained weights",
        "dftd3": package_version("dftd3"),
        "sevenn": package_version("sevenn"),
        "ase": package_version("ase"),
        "pymatgen": package_version("pymatgen"),
        "torch": package_version("torch"),
    }


tenant = Tenant(
    "crystal-sim",
    kind="simulation",
    description="Electrode and interface properties with the CHGNet universal potential.",
    software=_software,
)


# --------------------------------------------------------------------------- shared models


class RelaxSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fmax: float = Field(default=0.1, gt=0, le=5, description="force criterion [eV/Å]")
    max_steps: int = Field(default=500, ge=1, le=5000, description="optimiser steps")
    optimizer: str = Field(default="FIRE", pattern="^(FIRE|BFGS|LBFGS)$")
    dispersion: Dispersion = Field(
        default="auto",
        description=(
            "D3(BJ) dispersion (PBE parameters) on top of the potential: auto = when a "
            "structure of the calculation is layered, d3bj = always, none = never"
        ),
    )


class Lattice(BaseModel):
    a: float
    b: float
    c: float
    alpha: float
    beta: float
    gamma: float
    volume: float = Field(description="[Å^3]")


class Relaxed(BaseModel):
    formula: str
    n_atoms: int
    energy: float = Field(description="total energy [eV]")
    energy_per_atom: float = Field(description="[eV/atom]")
    stress: list[float] = Field(description="Voigt stress (xx, yy, zz, yz, xz, xy) [GPa]")
    magmoms: list[float] = Field(description="magnetic moment of each site [μB]")
    max_force: float = Field(description="largest residual force [eV/Å]")
    converged: bool
    steps: int
    relax_cell: bool
    lattice: Lattice
    cif: str


def _lattice(s: Any) -> Lattice:
    la = s.lattice
    return Lattice(
        a=la.a, b=la.b, c=la.c, alpha=la.alpha, beta=la.beta, gamma=la.gamma, volume=la.volume
    )


def _relaxed(r: dict[str, Any], relax_cell: bool) -> tuple[Relaxed, Any]:
    from pymatgen.core import Structure

    s = Structure.from_dict(r["structure"])
    p = r["prediction"]
    if not math.isfinite(p["energy"]):
        raise CalculationFailed(f"CHGNet returned a non-finite energy for {s.formula}")
    stress = np.asarray(p["stress"], dtype=float).ravel()
    if stress.size == 9:
        m = stress.reshape(3, 3)
        stress = np.array([m[0, 0], m[1, 1], m[2, 2], m[1, 2], m[0, 2], m[0, 1]])
    return (
        Relaxed(
            formula=s.composition.formula,
            n_atoms=len(s),
            energy=p["energy"],
            energy_per_atom=p["energy_per_atom"],
            stress=stress.tolist(),
            magmoms=p["magmoms"],
            max_force=p["max_force"],
            converged=r["converged"],
            steps=r["steps"],
            relax_cell=relax_cell,
            lattice=_lattice(s),
            cif=to_cif(s),
        ),
        s,
    )


def _plan(structures: list[Any], static: bool, ctx: JobContext) -> throughput.Plan:
    try:
        how = throughput.plan(structures, static=static)
    except throughput.MemoryLimitError as exc:
        raise InputError(str(exc)) from None
    ctx.provenance["throughput"] = how.as_dict()
    return how


def _relax_all(
    structures: list[Any],
    settings: RelaxSettings,
    relax_cell: bool,
    ctx: JobContext,
    what: str = "relaxing",
    span: tuple[float, float] = (0.0, 1.0),
    *,
    d3: bool = False,
    potential: Potential = "chgnet",
) -> list[dict[str, Any]]:
    how = _plan(structures, static=False, ctx=ctx)
    lo, hi = span

    def progress(done: int, n: int) -> None:
        ctx.progress(lo + (hi - lo) * done / n, f"{what}: {done}/{n} ({how.strategy})")

    with throughput.PeakMemory() as mem:
        out = throughput.run_many(
            structures,
            how,
            kind="relax",
            relax={
                "fmax": settings.fmax,
                "steps": settings.max_steps,
                "relax_cell": relax_cell,
                "optimizer": settings.optimizer,
                "potential": potential,
                "d3": d3,
            },
            progress=progress,
        )
    ctx.provenance.setdefault("peak_memory_gb", 0.0)
    ctx.provenance["peak_memory_gb"] = max(ctx.provenance["peak_memory_gb"], mem.peak_gb)
    return out


def _settings_provenance(
    settings: RelaxSettings, relax_cell: bool, ctx: JobContext, d3: bool = False
) -> None:
    ctx.provenance["relaxation"] = {
        "calculator": "CHGNet + D3(BJ) (PBE parameters, dftd3) by ase SumCalculator"
        if d3
        else "chgnet.model.StructOptimizer (ASE)",
        "dispersion": "D3(BJ), PBE parameters (dftd3)" if d3 else None,
        "optimizer": settings.optimizer,
        "fmax_eV_per_A": settings.fmax,
        "max_steps": settings.max_steps,
        "relax_cell": relax_cell,
        "cell_filter": "ase.filters.FrechetCellFilter" if relax_cell else None,
    }


# --------------------------------------------------------------------------- relaxed_structure


class RelaxInput(RelaxSettings):
    """Parameters of ``relaxed_structure/chgnet``."""

    structure: StructureRef | None = Field(
        default=None, description="a built-in name, {'cif': ...} or {'pymatgen': {...}}"
    )
    structures: list[StructureRef] | None = Field(default=None, min_length=1, max_length=256)
    relax_cell: bool = True

    @model_validator(mode="after")
    def _one(self) -> RelaxInput:
        if (self.structure is None) == (self.structures is None):
            raise ValueError("give exactly one of structure, structures")
        return self


class RelaxOutput(BaseModel):
    structures: list[Relaxed]
    strategy: str = Field(description="how the structures ran: one_by_one or process_per_core")
    dispersion_applied: bool = Field(description="D3(BJ) was added to the potential")
    layered: list[bool] = Field(description="each input structure is layered (not 3-D bonded)")
    method_limits: list[MethodLimit] = Field(default_factory=list)


@tenant.capability(
    "relaxed_structure",
    "chgnet",
    parameters=RelaxInput,
    result=RelaxOutput,
    units={"energy": "eV", "energy_per_atom": "eV/atom", "stress": "GPa", "magmoms": "μB"},
    cost=1.0,
    fidelity=0.5,
    lease_seconds=300.0,
)
def relaxed_structure(p: RelaxInput, ctx: JobContext) -> RelaxOutput:
    """Relaxed structure(s) with CHGNet: energy per atom, stress, magnetic moments and the
    convergence of each; many structures run within the tenant's memory limit."""
    refs = [p.structure] if p.structure is not None else list(p.structures or [])
    where = "structure" if p.structure is not None else "structures"
    structures = [
        load(r, where if p.structure is not None else f"{where}[{i}]") for i, r in enumerate(refs)
    ]
    d3, layered = potentials.use_d3(p.dispersion, structures)
    _settings_provenance(p, p.relax_cell, ctx, d3)
    raw = _relax_all(structures, p, p.relax_cell, ctx, d3=d3)
    out = []
    for i, r in enumerate(raw):
        rel, _ = _relaxed(r, p.relax_cell)
        out.append(rel)
        ctx.attach(f"relaxed_{i}.cif", rel.cif, "chemical/x-cif")
    ctx.provenance["convergence"] = [
        {"converged": r.converged, "steps": r.steps, "max_force": r.max_force} for r in out
    ]
    limits = potentials.relax_limits(d3, layered)
    ctx.provenance["method_limits"] = [m.model_dump() for m in limits]
    return RelaxOutput(
        structures=out,
        strategy=ctx.provenance["throughput"]["strategy"],
        dispersion_applied=d3,
        layered=layered,
        method_limits=limits,
    )


# --------------------------------------------------------------------------- intercalation


class VoltageInput(RelaxSettings):
    """Parameters of ``intercalation_voltage/chgnet``."""

    lithiated: StructureRef = Field(
        description="the ion-rich structure, e.g. 'LiFePO4', 'NaFePO4' or {'cif': ...}"
    )
    delithiated: StructureRef = Field(description="the ion-poor one, e.g. 'FePO4'")
    relax_cell: bool = True
    cross_check: Literal["none", "sevennet"] = Field(
        default="none",
        description=(
            "repeat the calculation with SevenNet-0 (weights in the sevenn wheel); the "
            "difference of the two voltages is reported as the uncertainty"
        ),
    )


class CrossCheck(BaseModel):
    potential: str
    average_voltage: float = Field(description="[V]")
    difference: float = Field(description="CHGNet minus this potential [V]")


class VoltageOutput(BaseModel):
    average_voltage: float = Field(description="average voltage vs the ion's metal [V]")
    ion: str = Field(description="the intercalating ion: Li or Na")
    formula: str = Field(
        description="the reaction per host formula unit, e.g. FePO4 + Li -> LiFePO4"
    )
    li_per_host: float = Field(description="ions exchanged per host formula unit")
    energy_lithiated: float = Field(description="per host formula unit [eV]")
    energy_delithiated: float = Field(description="per host formula unit [eV]")
    energy_li_metal: float = Field(description="the bcc metal of the ion, per atom [eV]")
    volume_change: float = Field(description="(V_lith - V_delith) / V_delith per host unit")
    dispersion_applied: bool = Field(description="D3(BJ) was added to the potential")
    uncertainty: float | None = Field(
        description=(
            "|CHGNet - SevenNet-0| [V] when cross-checked; null without a cross-check (the "
            "method limits still apply)"
        )
    )
    cross_check: CrossCheck | None = None
    method_limits: list[MethodLimit] = Field(default_factory=list)
    lithiated: Relaxed
    delithiated: Relaxed
    li_metal: Relaxed


def _host(comp: Any, ion: str) -> Any:
    from pymatgen.core import Composition

    return Composition({el: amt for el, amt in comp.items() if el.symbol != ion})


#: working ions and their metals in the structure library
IONS = {"Li": "Li", "Na": "Na"}


@tenant.capability(
    "intercalation_voltage",
    "chgnet",
    parameters=VoltageInput,
    result=VoltageOutput,
    units={
        "average_voltage": "V",
        "uncertainty": "V",
        "energy_lithiated": "eV",
        "energy_delithiated": "eV",
    },
    cost=2.0,
    fidelity=0.5,
    lease_seconds=600.0,
)
def intercalation_voltage(p: VoltageInput, ctx: JobContext) -> VoltageOutput:
    """Average intercalation voltage vs Li (or Na) metal from relaxed CHGNet energies, with
    D3(BJ) dispersion for layered hosts and an optional SevenNet-0 cross-check.

    For A_x1 H -> A_x2 H (x1 > x2) per host formula unit H (Aydinol, Kohan, Ceder,
    Cho, Joannopoulos, Phys. Rev. B 56 (1997) 1354):

        V = -[E(A_x1 H) - E(A_x2 H) - (x1 - x2) E(A, bcc)] / ((x1 - x2) e)

    Energies are total energies of structures relaxed with their cells; E(A) per atom of
    relaxed bcc metal. Entropy and pV terms are neglected."""
    from bigmap.tenants.crystal.library import builtin

    lith = load(p.lithiated, "lithiated")
    delith = load(p.delithiated, "delithiated")
    present = [ion for ion in IONS if lith.composition[ion] > 0]
    ion = next((i for i in present if lith.composition[i] > delith.composition[i]), None)
    if ion is None:
        raise InputError(
            "lithiated: holds no more Li or Na than the delithiated structure; the two "
            "structures must differ only in Li or in Na"
        )
    h1, h2 = _host(lith.composition, ion), _host(delith.composition, ion)
    if not h1.elements:
        raise InputError(f"lithiated: the structure holds nothing but {ion}")
    if h1.reduced_composition != h2.reduced_composition:
        raise InputError(
            f"delithiated: host {h2.reduced_formula} differs from the lithiated host "
            f"{h1.reduced_formula}; the two structures must differ only in {ion}"
        )
    unit = h1.reduced_composition
    n1 = h1.num_atoms / unit.num_atoms  # host formula units per cell
    n2 = h2.num_atoms / unit.num_atoms
    x1 = lith.composition[ion] / n1
    x2 = delith.composition[ion] / n2
    if x1 - x2 <= 1e-6:
        raise InputError(
            f"lithiated: {ion} per host unit ({x1:g}) is not above the delithiated one ({x2:g})"
        )
    metal = builtin(IONS[ion])
    d3, layered = potentials.use_d3(p.dispersion, [lith, delith])
    _settings_provenance(p, p.relax_cell, ctx, d3)
    dx = x1 - x2

    def voltage(potential: Potential, span: tuple[float, float]) -> tuple[float, list]:
        raw = _relax_all(
            [lith, delith, metal],
            p,
            p.relax_cell,
            ctx,
            f"relaxing lithiated, delithiated, {ion} ({potential})",
            span,
            d3=d3,
            potential=potential,
        )
        rel = [_relaxed(r, p.relax_cell) for r in raw]
        (r1, _), (r2, _), (rm, sm) = rel
        e1, e2, em = r1.energy / n1, r2.energy / n2, rm.energy / len(sm)
        return -(e1 - e2 - dx * em) / dx, rel

    v, rel = voltage("chgnet", (0.0, 0.5 if p.cross_check != "none" else 1.0))
    (r1, s1), (r2, s2), (rli, sli) = rel
    check = None
    if p.cross_check == "sevennet":
        v7, _ = voltage("sevennet", (0.5, 1.0))
        check = CrossCheck(
            potential="SevenNet-0 (11Jul2024)", average_voltage=v7, difference=v - v7
        )
        ctx.provenance["cross_check"] = check.model_dump()
    limits = potentials.voltage_limits(unit, d3, any(layered))
    for name, r in (("lithiated", r1), ("delithiated", r2), ("li_metal", rli)):
        ctx.attach(f"{name}.cif", r.cif, "chemical/x-cif")
    ctx.provenance["formula"] = "V = -[E(A_x1 H) - E(A_x2 H) - (x1-x2) E(A bcc)] / (x1-x2) e"
    ctx.provenance["layered"] = {"lithiated": layered[0], "delithiated": layered[1]}
    ctx.provenance["method_limits"] = [m.model_dump() for m in limits]
    ctx.provenance["convergence"] = {
        n: {"converged": r.converged, "steps": r.steps, "max_force": r.max_force}
        for n, r in (("lithiated", r1), ("delithiated", r2), ("li_metal", rli))
    }
    a2 = f"{ion}{x2:g}" if x2 > 1e-9 else ""
    return VoltageOutput(
        average_voltage=v,
        ion=ion,
        formula=f"{a2}{unit.reduced_formula} + {dx:g} {ion} -> {ion}{x1:g}{unit.reduced_formula}",
        li_per_host=dx,
        energy_lithiated=r1.energy / n1,
        energy_delithiated=r2.energy / n2,
        energy_li_metal=rli.energy / len(sli),
        volume_change=(s1.volume / n1 - s2.volume / n2) / (s2.volume / n2),
        dispersion_applied=d3,
        uncertainty=None if check is None else abs(check.difference),
        cross_check=check,
        method_limits=limits,
        lithiated=r1,
        delithiated=r2,
        li_metal=rli,
    )


# --------------------------------------------------------------------------- migration


class MigrationInput(BaseModel):
    """Parameters of ``migration_barrier/chgnet_neb``."""

    model_config = ConfigDict(extra="forbid")

    structure: StructureRef = Field(description="the lithiated structure, e.g. 'LiFePO4'")
    hop: list[int] | None = Field(
        default=None,
        min_length=2,
        max_length=2,
        description=(
            "indices [from, to] of two Li sites of the input cell; the Li at 'to' (its image "
            "nearest to 'from') is removed and the Li at 'from' hops into the vacancy. "
            "Default: the first Li site and its nearest Li neighbour"
        ),
    )
    supercell: list[int] | None = Field(
        default=None,
        min_length=3,
        max_length=3,
        description="repetitions of the input cell; default: until every axis is >= min_length",
    )
    min_length: float = Field(default=9.0, gt=0, le=30, description="[Å], for the default cell")
    images: int = Field(default=5, ge=3, le=15, description="intermediate NEB images")
    fmax: float = Field(default=0.05, gt=0, le=2, description="NEB force criterion [eV/Å]")
    max_steps: int = Field(default=300, ge=1, le=3000, description="NEB optimiser steps")
    endpoint_steps: int = Field(default=300, ge=1, le=3000, description="endpoint relaxations")
    climb: bool = True


class ProfilePoint(BaseModel):
    reaction_coordinate: float = Field(description="distance along the path [Å]")
    energy: float = Field(description="energy relative to the initial state [eV]")


class MigrationOutput(BaseModel):
    barrier: float = Field(description="forward barrier of the vacancy hop [eV]")
    reverse_barrier: float = Field(description="[eV]")
    reaction_energy: float = Field(description="E(final) - E(initial) [eV]")
    hop_distance: float = Field(description="straight-line hop distance [Å]")
    profile: list[ProfilePoint]
    converged: bool
    steps: int
    max_force: float = Field(description="largest NEB force at the end [eV/Å]")
    n_atoms: int = Field(description="atoms in the NEB cell (with the vacancy)")
    supercell: list[int]
    initial_cif: str
    final_cif: str
    method_limits: list[MethodLimit] = Field(default_factory=list)


def _default_supercell(s: Any, min_length: float) -> list[int]:
    return [max(1, math.ceil(min_length / x - 1e-9)) for x in s.lattice.abc]


@tenant.capability(
    "migration_barrier",
    "chgnet_neb",
    parameters=MigrationInput,
    result=MigrationOutput,
    units={"barrier": "eV", "reverse_barrier": "eV", "hop_distance": "Å"},
    cost=5.0,
    fidelity=0.5,
    lease_seconds=600.0,
)
def migration_barrier(p: MigrationInput, ctx: JobContext) -> MigrationOutput:
    """Barrier of a Li vacancy hop with climbing-image NEB (ASE) on CHGNet, with the energy
    profile along the path. Cell fixed; endpoints relaxed first; IDPP interpolation."""
    import io
    import warnings
    from contextlib import redirect_stdout

    from ase.mep import NEB
    from ase.optimize import FIRE
    from chgnet.model.dynamics import CHGNetCalculator
    from pymatgen.io.ase import AseAtomsAdaptor

    s = load(p.structure)
    li = [i for i, site in enumerate(s) if site.specie.symbol == "Li"]
    if p.hop is not None:
        for k, idx in enumerate(p.hop):
            if not 0 <= idx < len(s) or s[idx].specie.symbol != "Li":
                raise InputError(f"hop[{k}]: site {idx} is not a Li site of the structure")
    if not li:
        raise InputError("structure: no Li sites to hop between")
    sc = p.supercell or _default_supercell(s, p.min_length)
    if any(n < 1 for n in sc):
        raise InputError("supercell: repetitions must be >= 1")
    big = s.copy()
    big.make_supercell(sc)
    if len(big) > 300:
        raise InputError(f"supercell: {len(big)} atoms; NEB here takes at most 300")
    # site i of the input cell is site i*prod(sc) .. in pymatgen's supercell ordering: find it
    # by position instead (robust to the ordering)
    frac_scale = np.array(sc, dtype=float)

    def index_in_big(i: int) -> int:
        target = s[i].frac_coords / frac_scale
        d = big.lattice.get_all_distances(big.frac_coords, [target])[:, 0]
        return int(np.argmin(d))

    if p.hop is None:
        start = index_in_big(li[0])
        cands = [j for j, site in enumerate(big) if site.specie.symbol == "Li" and j != start]
        if not cands:
            raise InputError("structure: needs at least two Li sites in the NEB cell")
        dists = [big.get_distance(start, j) for j in cands]
        end = cands[int(np.argmin(dists))]
    else:
        start = index_in_big(p.hop[0])
        cands = [j for j, site in enumerate(big) if site.specie.symbol == "Li" and j != start]
        # the images of 'to' in the supercell: same site modulo the input cell
        to_frac = s[p.hop[1]].frac_coords
        same = [
            j
            for j in cands
            if np.allclose(
                (big[j].frac_coords * frac_scale - to_frac + 0.5) % 1.0 - 0.5, 0, atol=1e-3
            )
        ]
        if not same:
            raise InputError("hop: the target site has no image besides the start site")
        end = min(same, key=lambda j: big.get_distance(start, j))
    hop_distance = float(big.get_distance(start, end))  # minimum image
    initial = big.copy()
    initial.remove_sites([end])
    moving = start if start < end else start - 1
    final = initial.copy()
    # the hopping Li takes the vacancy's place (the path's continuity across periodic
    # boundaries is restored below, before the interpolation)
    final.replace(moving, "Li", big[end].frac_coords)

    model = throughput.load_model()
    adaptor = AseAtomsAdaptor()
    ctx.progress(0.05, f"relaxing the NEB endpoints ({len(initial)} atoms)")
    ends = []
    for st in (initial, final):
        r = throughput.relax_one(
            st, fmax=p.fmax, steps=p.endpoint_steps, relax_cell=False, model=model
        )
        from pymatgen.core import Structure

        ends.append((Structure.from_dict(r["structure"]), r))
    a0 = adaptor.get_atoms(ends[0][0])
    a1 = adaptor.get_atoms(ends[1][0])
    # keep periodic images continuous along the path
    disp = a1.get_scaled_positions(wrap=False) - a0.get_scaled_positions(wrap=False)
    a1.set_scaled_positions(a0.get_scaled_positions(wrap=False) + (disp - np.round(disp)))
    images = [a0] + [a0.copy() for _ in range(p.images)] + [a1]
    with redirect_stdout(io.StringIO()):  # CHGNetCalculator prints its device
        for im in images:
            im.calc = CHGNetCalculator(model=model, on_isolated_atoms="ignore")
    neb = NEB(images, climb=p.climb, method="improvedtangent", allow_shared_calculator=False)
    neb.interpolate(method="idpp", mic=True)
    ctx.progress(0.2, f"climbing-image NEB, {p.images} images")
    opt = FIRE(neb, logfile=None)
    with redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        converged = bool(opt.run(fmax=p.fmax, steps=p.max_steps))
    energies = np.array([im.get_potential_energy() for im in images])
    forces = neb.get_forces()
    max_force = float(np.linalg.norm(forces.reshape(-1, 3), axis=1).max())
    path = [0.0]
    for prev, cur in zip(images[:-1], images[1:], strict=True):
        d = cur.get_positions() - prev.get_positions()
        frac = np.linalg.solve(cur.cell.T, d.T).T
        d = (frac - np.round(frac)) @ cur.cell
        path.append(path[-1] + float(np.linalg.norm(d)))
    rel = energies - energies[0]
    barrier = float(rel.max())
    ctx.provenance["neb"] = {
        "method": "ase.mep.NEB (improved tangent)" + (", climbing image" if p.climb else ""),
        "interpolation": "idpp",
        "optimizer": "ase.optimize.FIRE",
        "images": p.images,
        "fmax_eV_per_A": p.fmax,
        "max_steps": p.max_steps,
        "steps": int(opt.nsteps),
        "converged": converged,
        "supercell": sc,
        "endpoint_convergence": [
            {"converged": r["converged"], "steps": r["steps"]} for _, r in ends
        ],
    }
    if not np.all(np.isfinite(energies)):
        raise CalculationFailed("CHGNet returned non-finite energies along the NEB path")
    ctx.attach("initial.cif", to_cif(ends[0][0]), "chemical/x-cif")
    ctx.attach("final.cif", to_cif(ends[1][0]), "chemical/x-cif")
    profile_csv = "reaction_coordinate_A,energy_eV\n" + "".join(
        f"{x:.5f},{e:.6f}\n" for x, e in zip(path, rel, strict=True)
    )
    ctx.attach("neb_profile.csv", profile_csv, "text/csv")
    limits = potentials.barrier_limits()
    ctx.provenance["method_limits"] = [m.model_dump() for m in limits]
    return MigrationOutput(
        method_limits=limits,
        barrier=barrier,
        reverse_barrier=float(barrier - rel[-1]),
        reaction_energy=float(rel[-1]),
        hop_distance=hop_distance,
        profile=[
            ProfilePoint(reaction_coordinate=x, energy=float(e))
            for x, e in zip(path, rel, strict=True)
        ],
        converged=converged,
        steps=int(opt.nsteps),
        max_force=max_force,
        n_atoms=len(initial),
        supercell=sc,
        initial_cif=to_cif(ends[0][0]),
        final_cif=to_cif(ends[1][0]),
    )


# --------------------------------------------------------------------------- interfaces


class InterfaceInput(RelaxSettings):
    """Parameters of ``interface_adhesion/chgnet``."""

    film: StructureRef = Field(description="bulk film, e.g. 'Li'")
    substrate: StructureRef = Field(description="bulk substrate, e.g. 'LiF'")
    film_miller: list[int] = Field(min_length=3, max_length=3)
    substrate_miller: list[int] = Field(min_length=3, max_length=3)
    max_area: float = Field(default=60.0, gt=0, le=400, description="of the match [Å^2]")
    max_strain: float = Field(default=0.05, gt=0, le=0.2, description="lattice-match tolerance")
    film_layers: int = Field(default=3, ge=1, le=20)
    substrate_layers: int = Field(default=3, ge=1, le=20)
    gap: float = Field(default=2.0, gt=0, le=10, description="initial film-substrate gap [Å]")
    vacuum: float = Field(default=12.0, ge=5, le=40, description="vacuum over the film [Å]")
    termination: int = Field(default=0, ge=0, description="index into the terminations found")
    max_atoms: int = Field(default=150, ge=2, le=400)
    fmax: float = Field(default=0.05, gt=0, le=5, description="force criterion [eV/Å]")
    max_steps: int = Field(default=300, ge=1, le=5000)

    @model_validator(mode="after")
    def _miller(self) -> InterfaceInput:
        for name in ("film_miller", "substrate_miller"):
            if not any(getattr(self, name)):
                raise ValueError(f"{name}: (0 0 0) is not a plane")
        return self


class InterfaceOutput(BaseModel):
    work_of_adhesion: float = Field(description="(E_film + E_substrate - E_interface)/A [J/m²]")
    area: float = Field(description="interface area [Å^2]")
    strain: float = Field(description="von Mises strain applied to the film")
    strain_tensor: list[list[float]] = Field(description="2x2 in-plane strain of the film")
    termination: list[str]
    terminations: list[list[str]] = Field(description="all terminations the builder found")
    film_miller: list[int]
    substrate_miller: list[int]
    n_atoms: int
    energy_interface: float = Field(description="[eV]")
    energy_film: float = Field(description="film slab alone in the interface cell [eV]")
    energy_substrate: float = Field(description="substrate slab alone [eV]")
    converged: dict[str, bool]
    steps: dict[str, int]
    interface_cif: str


@tenant.capability(
    "interface_adhesion",
    "chgnet",
    parameters=InterfaceInput,
    result=InterfaceOutput,
    units={"work_of_adhesion": "J/m^2", "area": "Å^2", "energy_interface": "eV"},
    cost=5.0,
    fidelity=0.4,
    lease_seconds=600.0,
)
def interface_adhesion(p: InterfaceInput, ctx: JobContext) -> InterfaceOutput:
    """Work of adhesion of a lattice-matched film/substrate interface.

    The interface comes from pymatgen's ``CoherentInterfaceBuilder`` (Zur-McGill lattice
    match: A. Zur, T. C. McGill, J. Appl. Phys. 55 (1984) 378; pymatgen implementation after
    K. Mathew et al., Comput. Mater. Sci. 122 (2016) 183). The interface and each slab alone
    in the same cell (the film strained as in the interface) are relaxed (positions, cell
    fixed) with CHGNet:

        W_ad = (E_film slab + E_substrate slab - E_interface) / A"""
    import warnings

    from pymatgen.analysis.interfaces.coherent_interfaces import CoherentInterfaceBuilder
    from pymatgen.analysis.interfaces.zsl import ZSLGenerator
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    film = load(p.film, "film")
    sub = load(p.substrate, "substrate")
    film = SpacegroupAnalyzer(film).get_conventional_standard_structure()
    sub = SpacegroupAnalyzer(sub).get_conventional_standard_structure()
    ctx.progress(0.02, "lattice matching (Zur-McGill)")
    zsl = ZSLGenerator(
        max_area_ratio_tol=0.09,
        max_area=p.max_area,
        max_length_tol=p.max_strain,
        max_angle_tol=0.01,
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            builder = CoherentInterfaceBuilder(
                substrate_structure=sub,
                film_structure=film,
                film_miller=tuple(p.film_miller),
                substrate_miller=tuple(p.substrate_miller),
                zslgen=zsl,
            )
    except Exception as exc:
        raise InputError(
            f"film_miller/substrate_miller: no lattice match within max_area={p.max_area} Å² "
            f"and max_strain={p.max_strain} ({type(exc).__name__}: {exc})"
        ) from None
    terms = [list(t) for t in builder.terminations]
    if not terms:
        raise InputError(
            f"film_miller/substrate_miller: no lattice match within max_area={p.max_area} Å² "
            f"and max_strain={p.max_strain}"
        )
    if p.termination >= len(terms):
        raise InputError(f"termination: {p.termination} >= the {len(terms)} terminations found")
    term = builder.terminations[p.termination]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            candidates = list(
                builder.get_interfaces(
                    term,
                    gap=p.gap,
                    vacuum_over_film=p.vacuum,
                    film_thickness=p.film_layers,
                    substrate_thickness=p.substrate_layers,
                    in_layers=True,
                )
            )
    except ValueError as exc:
        raise InputError(
            f"film_miller/substrate_miller: no lattice match within max_area={p.max_area} Å² "
            f"and max_strain={p.max_strain} ({exc})"
        ) from None
    if not candidates:
        raise InputError("film_miller/substrate_miller: the builder made no interface")
    interface = min(candidates, key=lambda x: (len(x), x.interface_properties["von_mises_strain"]))
    if len(interface) > p.max_atoms:
        raise InputError(
            f"max_atoms: the smallest matched interface has {len(interface)} atoms "
            f"(> {p.max_atoms}); lower the layers or max_area"
        )
    props = interface.interface_properties
    film_slab = interface.film
    sub_slab = interface.substrate
    from pymatgen.core import Structure

    parts = [
        Structure(interface.lattice, interface.species, interface.frac_coords),
        Structure(film_slab.lattice, film_slab.species, film_slab.frac_coords),
        Structure(sub_slab.lattice, sub_slab.species, sub_slab.frac_coords),
    ]
    _settings_provenance(p, False, ctx)
    raw = _relax_all(parts, p, False, ctx, "relaxing interface, film, substrate", (0.05, 0.95))
    (ri, si), (rf, _), (rs, _) = (_relaxed(r, False) for r in raw)
    lat = si.lattice.matrix
    area = float(np.linalg.norm(np.cross(lat[0], lat[1])))
    w = (rf.energy + rs.energy - ri.energy) / area * EV_PER_A2_TO_J_PER_M2
    strain = np.asarray(props.get("strain", np.zeros((2, 2))), dtype=float)
    if strain.shape == (3, 3):
        strain = strain[:2, :2]
    ctx.attach("interface.cif", ri.cif, "chemical/x-cif")
    ctx.provenance["interface_builder"] = {
        "builder": "pymatgen.analysis.interfaces.CoherentInterfaceBuilder",
        "zsl": {"max_area": p.max_area, "max_length_tol": p.max_strain},
        "film_layers": p.film_layers,
        "substrate_layers": p.substrate_layers,
        "gap": p.gap,
        "vacuum": p.vacuum,
        "candidates": len(candidates),
    }
    ctx.provenance["convergence"] = {
        n: {"converged": r.converged, "steps": r.steps, "max_force": r.max_force}
        for n, r in (("interface", ri), ("film", rf), ("substrate", rs))
    }
    return InterfaceOutput(
        work_of_adhesion=float(w),
        area=area,
        strain=float(props.get("von_mises_strain", 0.0)),
        strain_tensor=strain.tolist(),
        termination=list(term),
        terminations=terms,
        film_miller=p.film_miller,
        substrate_miller=p.substrate_miller,
        n_atoms=len(si),
        energy_interface=ri.energy,
        energy_film=rf.energy,
        energy_substrate=rs.energy,
        converged={"interface": ri.converged, "film": rf.converged, "substrate": rs.converged},
        steps={"interface": ri.steps, "film": rf.steps, "substrate": rs.steps},
        interface_cif=ri.cif,
    )
