"""The emulated cell line: cell assembly and a battery cycler backed by PyBaMM with
degradation, writing its raw data as a Maccor text export.

Physics: PyBaMM's single-particle model (SPM), parameter set ``OKane2022`` (S.E.J. O'Kane et
al., "Lithium-ion battery degradation: how to model it", Phys. Chem. Chem. Phys. 24 (2022)
7909, doi:10.1039/D2CP00417H; an LG M50 21700 cell, NMC811 / graphite-SiOx, 5 A h), with three
of that paper's degradation mechanisms: SEI growth (solvent-diffusion limited), partially
reversible lithium plating (plated lithium strips back on discharge except what turns into
dead lithium) and stress-driven loss of active material (the rate grows with the hydrostatic
stress in the particles to the power ``m`` = 2, J.M. Reniers, G. Mulder, D.A. Howey, J.
Electrochem. Soc. 166 (2019) A3189, doi:10.1149/2.0281914jes; stresses after W. Ai et al., J.
Electrochem. Soc. 167 (2020) 013512). The emulator runs on the cell-sim engine
(:func:`bigmap.tenants.cell.simulate_cycling`): one cached model per protocol, the cell's
parameters as PyBaMM input parameters.

Why the charging protocol matters, and why not through plating alone: in PyBaMM the plating
rate depends on the plating overpotential, i.e. on the graphite surface potential vs Li/Li+
(``j = -j0 exp(-α F η / RT)``, ``j0 = F k_plating c_e``, α = 0.65; the C-rate enters through
the intercalation overpotential and the particle-surface saturation, the temperature through
RT and the Arrhenius terms of diffusivity and exchange current). With OKane2022 the graphite
sits at about +7 mV vs Li at the end of a 4.2 V charge whatever the protocol, so in the SPM the
plating at the top of charge is almost the same for slow and fast charging (measured, capacity
lost to plating in the third cycle with 1.5C/1C vs 6C/3C charging: 120 vs 136 mA h with
irreversible plating at the published rate constant, 0.14 vs 0.18 mA h with partially
reversible plating; a DFN with its electrolyte gradients widens it only to 1.3 vs 1.8 mA h at
k_plating = 1e-11 m/s). The concentration gradients of fast charging do drive the particle
stresses, so the stress-driven loss of active material is what makes the protocol count: the
positive electrode's LAM over six cycles triples from 1C/1C to 6C/3C charging (0.51 % vs
1.51 %), and lithium is lost with it.

Accelerated ageing: OKane2022's rate constants give lives of about 4,000 cycles; the emulated
cells use them times ``DEGRADATION_SCALE`` (LAM of the positive electrode ×100, of the
negative ×3, plating and SEI as published), so that a cell reaches 80 % retention within
about 100-400 cycles (measured on cells without variation: 333 cycles with 1.5C/1C charging,
180 with 3.5C/2C, 112 with 6C/3C), which keeps an emulated campaign and the life-model corpus
affordable. Every result carries the factors in its provenance (``instruments`` →
``emulator``).

An emulated cell is that electrode stack cut to the requested capacity (a coin cell is the
same chemistry on a smaller area): the model is per unit electrode area, so currents,
capacities and energies scale by ``capacity / 5 A h`` and voltages do not. Cell-to-cell
variation: each cell draws, from a seed derived from its id (so a cell is the same cell every
time it is cycled), multiplicative variations of the active-material volume fractions
(σ = 1 %), of the plating, SEI and LAM rate constants (log-normal, σ = 35 %) and a capacity
spread (σ = 1 %, manufacturing variation of the coated area).

Formation and cycling run as one PyBaMM experiment (formation cycles first) from an empty
cell, so the cell's state carries over; the test stops at the requested cycles or when
PyBaMM's capacity falls below 60 % (a safety stop; the measured end of life is computed from
the file).

Raw data: :func:`maccor_export` writes the records in the layout of a Maccor text export (the
header block and the columns ``Rec# Cyc# Step TestTime StepTime Amp-hr Watt-hr Amps Volts
State ES DPt Time ACImp/Ohms DCIR/Ohms Aux #1  Units``, tab separated; Amp-hr and Watt-hr
restart at each step; Amps unsigned with the State C/D/R giving the direction), as in
``tests/data/cycler_files/maccor_001.txt``, with more decimals than Maccor's 5 so that
coin-cell capacities keep their resolution.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from bigmap.tenants.cell import CyclingParameters, Degradation, simulate_cycling

PARAMETER_SET = "OKane2022"
MODEL = "SPM"
NOMINAL_AH = 5.0  # the parameter set's "Nominal cell capacity [A.h]"
_LAM = 2.7778e-07  # OKane2022 "... electrode LAM constant proportional term [s-1]" (both)
#: the varied parameters (PyBaMM names) and their OKane2022 values
VARIED = {
    "Negative electrode active material volume fraction": 0.75,
    "Positive electrode active material volume fraction": 0.665,
    "Lithium plating kinetic rate constant [m.s-1]": 1e-9,
    "SEI solvent diffusivity [m2.s-1]": 2.5e-22,
    "Negative electrode LAM constant proportional term [s-1]": _LAM,
    "Positive electrode LAM constant proportional term [s-1]": _LAM,
}
#: accelerated ageing: factors on OKane2022's rate constants for the emulated cells (see the
#: module docstring); every result's provenance carries them
DEGRADATION_SCALE = {
    "Lithium plating kinetic rate constant [m.s-1]": 1.0,
    "SEI solvent diffusivity [m2.s-1]": 1.0,
    "Negative electrode LAM constant proportional term [s-1]": 3.0,
    "Positive electrode LAM constant proportional term [s-1]": 100.0,
}
#: log-normal cell-to-cell spread (sigma of the log) of the degradation rate constants
RATE_SPREAD = 0.35

#: the emulated cells' physics as the cell-sim engine's degradation options
DEGRADATION = Degradation(
    sei="solvent-diffusion limited",
    lithium_plating="partially reversible",
    loss_of_active_material=True,
)
#: PyBaMM's safety stop: the test ends after the cycle where the cell's capacity (PyBaMM's
#: electrode state-of-health calculation) falls below this; the measured end of life is
#: computed from the file
TERMINATION = "60% capacity"


def cell_seed(cell_id: str) -> int:
    return int.from_bytes(hashlib.sha256(cell_id.encode()).digest()[:8], "little")


def cell_variation(cell_id: str, spread: float = 1.0) -> dict[str, float]:
    """The physical parameters of one emulated cell (deterministic in its id): active-material
    fractions (sigma 1 %), degradation rate constants (log-normal, sigma ``RATE_SPREAD``, times
    ``DEGRADATION_SCALE``) and the coated area (``area_factor``, sigma 1 %)."""
    rng = np.random.default_rng(cell_seed(cell_id))
    z = rng.standard_normal(len(VARIED) + 1) * spread
    out: dict[str, float] = {}
    for k, (name, value) in enumerate(VARIED.items()):
        if name in DEGRADATION_SCALE:
            out[name] = value * DEGRADATION_SCALE[name] * float(np.exp(RATE_SPREAD * z[k]))
        else:
            out[name] = value * (1 + 0.01 * z[k])
    out["area_factor"] = float(1 + 0.01 * z[-1])
    return out


def run_cell(
    cycle: list[str],
    cycles: int,
    *,
    variation: dict[str, float],
    formation: list[str] | None = None,
    formation_cycles: int = 0,
    temperature: float = 298.15,
    period: float = 30.0,
    termination: str | None = TERMINATION,
    model: str = MODEL,
) -> list[list[dict[str, Any]]]:
    """Cycle one emulated cell from empty: ``formation_cycles`` of ``formation`` then
    ``cycles`` of ``cycle`` (PyBaMM step strings), one continuous test on the cell-sim engine
    (:func:`bigmap.tenants.cell.simulate_cycling`, whose cache keeps the built model; the
    cell's variation goes in as input parameters). Returns, per completed cycle, per step
    that ran: ``index`` (the step's position in its cycle), time [s], voltage [V], current [A]
    (charge positive, as a cycler counts it) and temperature [K], for the full-size 5 A h
    stack. Raises ``InputError`` / ``CalculationFailed`` as the engine does."""
    params = CyclingParameters(
        parameter_set=PARAMETER_SET,
        model=model,
        degradation=DEGRADATION,
        experiment=list(cycle),
        cycles=cycles,
        formation=list(formation or []),
        formation_cycles=formation_cycles,
        temperature=temperature,
        overrides={k: float(variation[k]) for k in VARIED},
        termination=termination,
        period=period,
        initial_soc=0.0,
        # PyBaMM's IDAKLU defaults (as the emulator always used): about 2x faster than
        # cell-sim's 1e-6/1e-8 on these cycles, capacities within 6e-4 of theirs
        rtol=1e-4,
        atol=1e-6,
        trace_points=10,
        timeout=24 * 3600,
    )
    _, traces = simulate_cycling(params)
    return [
        [
            {
                "index": r["index"],
                "time": r["time"],
                "voltage": r["voltage"],
                # PyBaMM: discharge positive; a cycler: charge positive
                "current": -r["current"],
                "temperature": r["temperature"],
            }
            for r in steps
        ]
        for steps in traces
    ]


def _fmt_duration(seconds: float) -> str:
    d, rem = divmod(max(seconds, 0.0), 86400.0)
    h, rem = divmod(rem, 3600.0)
    m, s = divmod(rem, 60.0)
    sec = f"{s:.4f}".rstrip("0").rstrip(".")
    return f"  {int(d)}d {int(h):02d}:{int(m):02d}:{sec}"


def maccor_export(
    cycles: list[list[dict[str, Any]]],
    *,
    scale: float,
    filename: str,
    procedure: str,
    channel: int = 1,
    start: datetime | None = None,
    voltage_noise: float = 0.0,
    current_noise: float = 0.0,
    rng: np.random.Generator | None = None,
) -> bytes:
    """The records as a Maccor text export (see the module docstring). ``scale`` multiplies
    currents, capacities and energies; small Gaussian noise may be added to voltage [V] and
    current (relative)."""
    start = start or datetime.now(UTC).replace(microsecond=0)
    rng = rng or np.random.default_rng(0)
    lines = [
        f"Today's Date:\t{datetime.now(UTC).strftime('%d %B %Y')}\tDate of Test:\t"
        f"{start.strftime('%d %B %Y, %I:%M:%S %p')}",
        f"    Filename:\t{filename}\tTester Channel:\t{channel}",
        f"Procedure:\t{procedure}\tDescription:",
        "Rec#\tCyc#\tStep\tTestTime\tStepTime\tAmp-hr\tWatt-hr\tAmps\tVolts\tState\tES\t"
        "DPt Time\tACImp/Ohms\tDCIR/Ohms\tAux #1\t Units",
    ]
    rec = 0
    t0 = None
    for ci, steps in enumerate(cycles, start=1):
        for st in steps:
            t = st["time"]
            if t0 is None:
                t0 = float(t[0])
            i = st["current"] * scale
            v = st["voltage"]
            if voltage_noise:
                v = v + rng.normal(0.0, voltage_noise, v.shape)
            if current_noise:
                i = i * (1 + rng.normal(0.0, current_noise, i.shape))
            # the cycler's own counters: trapezoidal integration within the step
            dt = np.diff(t, prepend=t[0])
            ai = np.abs(i)
            ah = np.cumsum(0.5 * (ai + np.r_[ai[0], ai[:-1]]) * dt) / 3600.0
            p = ai * v
            wh = np.cumsum(0.5 * (p + np.r_[p[0], p[:-1]]) * dt) / 3600.0
            mean_i = float(np.mean(i))
            state = "C" if mean_i > 1e-12 else "D" if mean_i < -1e-12 else "R"
            tc = st["temperature"] - 273.15
            step_no = st["index"] + 1
            for k in range(len(t)):
                rec += 1
                es = 0 if k == 0 else (5 if k == len(t) - 1 and state != "R" else 1)
                stamp = (start + timedelta(seconds=float(t[k] - t0))).strftime("%m/%d/%Y %H:%M:%S")
                lines.append(
                    f"{rec}\t{ci}\t{step_no}\t{_fmt_duration(t[k] - t0)}\t"
                    f"{_fmt_duration(t[k] - t[0])}\t{ah[k]:.8f}\t{wh[k]:.8f}\t{ai[k]:.8f}\t"
                    f"{v[k]:.6f}\t{state}\t{es}\t{stamp}\t0.00000\t0.00000\t{tc[k]:.3f}\t C  "
                )
    return ("\n".join(lines) + "\n").encode("latin-1")


def fast_charge_cycle(c1: float, soc1: float, c2: float, discharge_c: float = 1.0) -> list[str]:
    """One cycle of a two-step fast-charge protocol in the manner of Severson et al. 2019:
    ``c1`` C for the first ``soc1`` of the capacity, then ``c2`` C to 4.2 V, a CV hold to C/20,
    rest, a ``discharge_c`` C discharge to 2.5 V, rest."""
    return [
        f"Charge at {c1:g}C for {60 * soc1 / c1:.3f} minutes or until 4.2 V",
        f"Charge at {c2:g}C until 4.2 V",
        "Hold at 4.2 V until C/20",
        "Rest for 5 minutes",
        f"Discharge at {discharge_c:g}C until 2.5 V",
        "Rest for 5 minutes",
    ]
