"""The emulated cell line: cell assembly and a battery cycler backed by PyBaMM with
degradation, writing its raw data as a Maccor text export.

Physics: PyBaMM's single-particle model (SPM) with SEI growth (solvent-diffusion limited) and
irreversible lithium plating, parameter set ``OKane2022`` (S.E.J. O'Kane et al., "Lithium-ion
battery degradation: how to model it", Phys. Chem. Chem. Phys. 24 (2022) 7909,
doi:10.1039/D2CP00417H; an LG M50 21700 cell, NMC811 / graphite-SiOx, 5 A h). Plating makes
fast charging shorten the life, SEI makes time and temperature do so.

An emulated cell is that electrode stack cut to the requested capacity (a coin cell is the
same chemistry on a smaller area): the model is per unit electrode area, so currents,
capacities and energies scale by ``capacity / 5 A h`` and voltages do not. Cell-to-cell
variation: each cell draws, from a seed derived from its id (so a cell is the same cell every
time it is cycled), multiplicative variations of the active-material volume fractions
(σ = 1 %), of the plating and SEI rate constants (log-normal, σ = 35 %) and a capacity spread
(σ = 1 %, manufacturing variation of the coated area).

Accelerated ageing: the degradation rate constants are those of OKane2022 times
``AGEING_ACCELERATION`` so that a cell reaches 80 % retention within hundreds of cycles rather
than thousands (to keep an emulated campaign and the life-model corpus affordable). Every
result says so in its provenance.

Formation and cycling run as one PyBaMM experiment (formation cycles first), so the cell's
state carries over; the test stops at ``max_cycles`` or when PyBaMM's lithium-inventory
capacity falls below 60 % (a safety stop; the measured end of life is computed from the
file).

Raw data: :func:`maccor_export` writes the records in the layout of a Maccor text export (the
header block and the columns ``Rec# Cyc# Step TestTime StepTime Amp-hr Watt-hr Amps Volts
State ES DPt Time ACImp/Ohms DCIR/Ohms Aux #1  Units``, tab separated; Amp-hr and Watt-hr
restart at each step; Amps unsigned with the State C/D/R giving the direction), as in
``../shared/data/cycler_files/maccor_001.txt``, with more decimals than Maccor's 5 so that
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
AGEING_ACCELERATION = 1.0  # the OKane2022 rate constants are used as they are by default
#: the varied parameters (PyBaMM names) and their OKane2022 values
VARIED = {
    "Negative electrode active material volume fraction": 0.75,
    "Positive electrode active material volume fraction": 0.665,
    "Lithium plating kinetic rate constant [m.s-1]": 1e-9,
    "SEI solvent diffusivity [m2.s-1]": 2.5e-22,
}
#: default scale of the degradation rate constants for the emulated cells (see docstring)
DEGRADATION_SCALE = {
    "Lithium plating kinetic rate constant [m.s-1]": 0.1,
    "SEI solvent diffusivity [m2.s-1]": 5.0,
}

#: the emulated cells' physics as the cell-sim engine's degradation options
DEGRADATION = Degradation(sei="solvent-diffusion limited", lithium_plating="irreversible")
#: PyBaMM's safety stop: the test ends after the cycle where the cell's lithium-inventory
#: capacity falls below this (the measured end of life is computed from the file)
TERMINATION = "60% capacity"


def cell_seed(cell_id: str) -> int:
    return int.from_bytes(hashlib.sha256(cell_id.encode()).digest()[:8], "little")


def cell_variation(cell_id: str, spread: float = 1.0) -> dict[str, float]:
    """The physical parameters of one emulated cell (deterministic in its id)."""
    rng = np.random.default_rng(cell_seed(cell_id))
    z = rng.standard_normal(5) * spread
    neg, pos, plating, sei = VARIED.values()
    return {
        "Negative electrode active material volume fraction": neg * (1 + 0.01 * z[0]),
        "Positive electrode active material volume fraction": pos * (1 + 0.01 * z[1]),
        "Lithium plating kinetic rate constant [m.s-1]": plating
        * DEGRADATION_SCALE["Lithium plating kinetic rate constant [m.s-1]"]
        * float(np.exp(0.35 * z[2])),
        "SEI solvent diffusivity [m2.s-1]": sei
        * DEGRADATION_SCALE["SEI solvent diffusivity [m2.s-1]"]
        * float(np.exp(0.35 * z[3])),
        "area_factor": float(1 + 0.01 * z[4]),
    }


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
        # PyBaMM's IDAKLU defaults: 2.5x faster than cell-sim's 1e-6/1e-8 on these cycles,
        # capacities within 1e-3 of them
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
