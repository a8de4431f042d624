"""The ``cell-sim`` tenant: PyBaMM cells cycled by an experiment, and a multiscale chain.

Capabilities
------------
``cell_cycling/pybamm``
    A PyBaMM parameter set by name (Chen2020, Marquis2019, OKane2022, ...) or a BPX document,
    a model (SPM, SPMe, DFN), an experiment (PyBaMM step strings) repeated ``cycles`` times at an
    ambient ``temperature`` [K], PyBaMM's degradation options and overrides of named
    parameters (``electrolyte_conductivity`` [S/m] rescales the parameter set's conductivity
    function so that it passes through that value at the initial electrolyte concentration and
    the ambient temperature: the hook for a ``conductivity`` result). The result has, per cycle,
    the discharge capacity [A.h], discharge energy [W.h], coulombic efficiency and capacity
    retention, the cycle at which retention crosses 80 % (``eol_cycle``), downsampled
    time/voltage/current traces of the first and last cycles, solver statistics and the PyBaMM
    version.
``cell_performance/multiscale``
    Posts a ``conductivity`` sub-request for the formulation at the cell's temperature, then
    ``cell_cycling/pybamm`` sub-requests with conductivities sampled from the conductivity
    result's mean and standard uncertainty, and returns the cell's figures of merit with the
    electrolyte model's uncertainty propagated (mean, standard deviation, 2.5/97.5 percentiles
    over the samples). All sub-requests are children of the request; while it waits, the job
    runs its own ``cell_cycling`` children itself when nobody else has claimed them (so one
    single-threaded worker cannot deadlock on its own sub-requests).

The engine (for other tenants, e.g. the lab emulator's cycler)
--------------------------------------------------------------
``simulate_cycling(params) -> (summary, cycles)``
    ``params``: a :class:`CyclingParameters` or a dict of its fields (the parameters of
    ``cell_cycling/pybamm``). ``summary``: the ``cell_cycling/pybamm`` result (a dict, traces
    downsampled). ``cycles``: full-resolution traces, one entry per completed cycle, each a list of
    steps ``{"step": str, "index": int, "time": [s], "voltage": [V], "current": [A]
    (discharge > 0), "temperature": [K], "discharge_capacity": [A.h]}`` (numpy arrays; time runs
    on from the start of the experiment; ``index`` is the step's position in its cycle: a step
    that PyBaMM skipped because its end condition held at its start, an ``EmptySolution``, is
    left out). Cell-to-cell variation: pass ``overrides`` (any named PyBaMM parameter, e.g.
    ``{"Negative electrode active material volume fraction": 0.74}``). A whole cycler test in
    one continuous run: ``formation`` steps repeated ``formation_cycles`` times before the
    ``experiment`` cycles, ``termination`` (PyBaMM's, e.g. ``"60% capacity"``: stop after the
    cycle where the cell's capacity falls below it), ``period`` (output period [s]),
    ``initial_soc`` (0 starts from an empty cell), ``rtol``/``atol`` (solver tolerances).
    Retention and ``eol_cycle`` count from the first cycle after formation that discharged.
    Raises ``InputError`` (bad parameter set, option, experiment or termination) or
    ``CalculationFailed`` (PyBaMM's solver failed: its message is in the exception).

Speed: a model is built and discretised once per (model, parameter set, options, names of the
overridden parameters, tolerances) and reused across requests through PyBaMM input parameters. A single
constant-current discharge ("Discharge at 2C until 2.5 V", one cycle) runs on a model whose
current, temperature, cut-off voltage and overrides are all input parameters; a general
experiment runs on a cached ``pybamm.Simulation`` per (... , formation, experiment, cycles,
termination, period, temperature) with the
overrides as inputs (PyBaMM does not allow the ambient temperature as an input of an
experiment). Independent requests run in parallel on Dask: a ``LocalCluster`` by default
(``BIGMAP_DASK_WORKERS`` workers, default 2, threads; ``BIGMAP_DASK_PROCESSES=1`` for worker
processes: 64 discharges ran 16.9x faster than a plain PyBaMM loop on 2 threads and 6.7x on 2
processes, which each build the model once), or the
cluster whose scheduler address is in ``BIGMAP_DASK_SCHEDULER`` (e.g. one whose workers
dask-jobqueue started on a SLURM machine). ``BIGMAP_DASK_SCHEDULER=none`` runs in-process.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import re
import threading
import time
from collections import OrderedDict
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bigmap.client import (
    BrokerError,
    CalculationFailed,
    ConflictError,
    InputError,
    JobContext,
    RequestFailed,
    Tenant,
)

log = logging.getLogger("bigmap.tenants.cell")

ModelName = Literal["SPM", "SPMe", "DFN"]
EOL_RETENTION = 0.8
# Known-good PyBaMM parameter sets for a lithium-ion cell (pybamm.parameter_sets).
LI_ION_SETS = (
    "Ai2020",
    "Chen2020",
    "Chen2020_composite",
    "Ecker2015",
    "Marquis2019",
    "Mohtat2020",
    "NCA_Kim2011",
    "OKane2022",
    "ORegan2022",
    "Prada2013",
    "Ramadass2004",
    "Xu2019",
)


def _pybamm() -> Any:
    import pybamm  # bigmap/__init__ has set PYBAMM_DISABLE_TELEMETRY

    return pybamm


def _pybamm_version() -> str:
    try:
        from importlib.metadata import version

        return version("pybamm")
    except Exception:
        return "unknown"


# ----------------------------------------------------------------------------- schemas


class Degradation(BaseModel):
    """PyBaMM's degradation submodels (model options) to switch on."""

    model_config = ConfigDict(extra="forbid")

    sei: (
        Literal[
            "none",
            "constant",
            "reaction limited",
            "solvent-diffusion limited",
            "electron-migration limited",
            "interstitial-diffusion limited",
            "ec reaction limited",
        ]
        | None
    ) = Field(default=None, description="SEI growth model (PyBaMM option 'SEI')")
    lithium_plating: Literal["reversible", "partially reversible", "irreversible"] | None = Field(
        default=None, description="PyBaMM option 'lithium plating'"
    )
    particle_cracking: bool = Field(
        default=False, description="particle mechanics 'swelling and cracking'"
    )
    loss_of_active_material: bool = Field(
        default=False, description="'loss of active material': 'stress-driven'"
    )

    def options(self) -> dict[str, str]:
        opts: dict[str, str] = {}
        if self.sei and self.sei != "none":
            opts["SEI"] = self.sei
            opts["SEI porosity change"] = "true"
        if self.lithium_plating:
            opts["lithium plating"] = self.lithium_plating
        if self.particle_cracking:
            opts["particle mechanics"] = "swelling and cracking"
        if self.loss_of_active_material:
            opts["loss of active material"] = "stress-driven"
            opts.setdefault("particle mechanics", "swelling only")
        return opts


class CyclingParameters(BaseModel):
    """Parameters of ``cell_cycling/pybamm``."""

    model_config = ConfigDict(extra="forbid")

    parameter_set: str | dict[str, Any] = Field(
        default="Chen2020",
        description="a PyBaMM parameter set by name, or a BPX document (JSON object)",
    )
    model: ModelName = Field(default="SPMe", description="PyBaMM lithium-ion model")
    experiment: list[str] = Field(
        default_factory=lambda: ["Discharge at 1C until 2.5 V"],
        min_length=1,
        max_length=50,
        description="one cycle as PyBaMM step strings",
    )
    cycles: int = Field(default=1, ge=1, le=1000, description="repetitions of the experiment")
    temperature: float = Field(default=298.15, ge=233.15, le=353.15, description="ambient [K]")
    degradation: Degradation = Field(default_factory=Degradation)
    overrides: dict[str, float] = Field(
        default_factory=dict, description="named PyBaMM parameters and their values (SI)"
    )
    electrolyte_conductivity: float | None = Field(
        default=None,
        gt=0,
        le=10,
        description="electrolyte conductivity [S/m] at the initial concentration and the "
        "ambient temperature (e.g. from a conductivity result): the parameter set's "
        "conductivity function is scaled to pass through it",
    )
    formation: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="one formation cycle as PyBaMM step strings, run formation_cycles times "
        "before the experiment, in the same continuous test",
    )
    formation_cycles: int = Field(default=0, ge=0, le=20, description="repetitions of formation")
    termination: str | None = Field(
        default=None,
        description="PyBaMM experiment termination, e.g. '60% capacity' (the test stops at the "
        "end of the cycle where the cell's capacity falls below it)",
    )
    period: float | None = Field(
        default=None, gt=0, le=3600, description="output period [s] of the traces (PyBaMM's)"
    )
    initial_soc: float | None = Field(default=None, ge=0, le=1)
    rtol: float = Field(default=1e-6, ge=1e-10, le=1e-3, description="solver relative tolerance")
    atol: float = Field(default=1e-8, ge=1e-12, le=1e-4, description="solver absolute tolerance")
    trace_points: int = Field(default=200, ge=10, le=5000, description="points per trace")
    timeout: float = Field(default=600, gt=0, le=24 * 3600, description="wall-clock limit [s]")

    @field_validator("experiment", "formation")
    @classmethod
    def _steps(cls, v: list[str]) -> list[str]:
        out = [s.strip() for s in v]
        if any(not s for s in out):
            raise ValueError("an experiment step is empty")
        return out

    @model_validator(mode="after")
    def _formation(self) -> CyclingParameters:
        if self.formation_cycles and not self.formation:
            raise ValueError("formation_cycles > 0 needs the formation steps")
        return self

    def protocol(self) -> list[list[str]]:
        """The whole test, one list of step strings per cycle (formation first)."""
        form = [list(self.formation)] * self.formation_cycles
        return form + [list(self.experiment)] * self.cycles


class Trace(BaseModel):
    time: list[float] = Field(description="[s] from the start of the cycle")
    voltage: list[float] = Field(description="[V]")
    current: list[float] = Field(description="[A], discharge positive")


class CyclingMeta(BaseModel):
    model_config = ConfigDict(extra="allow")

    success: bool
    rating: int = Field(ge=0, le=5)


class CyclingResult(BaseModel):
    discharge_capacity: list[float] = Field(description="[A.h] per cycle")
    discharge_energy: list[float] = Field(description="[W.h] per cycle")
    charge_capacity: list[float] = Field(description="[A.h] per cycle")
    coulombic_efficiency: list[float | None] = Field(
        description="discharge / charge capacity per cycle (null without a charge)"
    )
    capacity_retention: list[float] = Field(description="discharge capacity / first cycle's")
    eol_cycle: int | None = Field(description="first cycle (1-based) with retention < 80 %")
    traces: dict[str, Trace] = Field(description="'first' and 'last' cycle, downsampled")
    temperature: float = Field(description="ambient [K]")
    meta: CyclingMeta


# ----------------------------------------------------------------------------- engine


def parameter_values(parameter_set: str | dict[str, Any]) -> Any:
    """``pybamm.ParameterValues`` from a set name or a BPX document; ``InputError`` if not."""
    pybamm = _pybamm()
    if isinstance(parameter_set, dict):
        try:
            return pybamm.ParameterValues.create_from_bpx_obj(copy.deepcopy(parameter_set))
        except Exception as exc:
            raise InputError(f"parameter_set: not a valid BPX document: {exc}") from None
    if parameter_set not in pybamm.parameter_sets:
        raise InputError(
            f"parameter_set: unknown PyBaMM parameter set {parameter_set!r}; known: "
            f"{', '.join(sorted(pybamm.parameter_sets))}"
        )
    pv = pybamm.ParameterValues(parameter_set)
    if pv.get("chemistry", "lithium_ion") != "lithium_ion":
        raise InputError(f"parameter_set: {parameter_set} is not a lithium-ion parameter set")
    return pv


def _set_key(parameter_set: str | dict[str, Any]) -> str:
    if isinstance(parameter_set, str):
        return parameter_set
    blob = json.dumps(parameter_set, sort_keys=True, default=str).encode()
    return "bpx:" + hashlib.sha256(blob).hexdigest()[:16]


_CC = re.compile(
    r"^discharge at (?P<value>[0-9.eE+-]+) ?(?P<unit>C|A) until (?P<v>[0-9.eE+-]+) ?V$",
    re.IGNORECASE,
)


class _Entry:
    """A cached, built model (or Simulation) with its lock."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj
        self.lock = threading.Lock()
        self.uses = 0


_CACHE: OrderedDict[tuple, _Entry] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = int(os.environ.get("BIGMAP_CELL_CACHE", "16"))
_STATS = {"hits": 0, "misses": 0}


def cache_stats() -> dict[str, int]:
    """Hits and misses of this process's model cache."""
    return {**_STATS, "size": len(_CACHE)}


def clear_cache() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()
        _STATS.update(hits=0, misses=0)


def _cached(key: tuple, build: Any) -> tuple[_Entry, bool]:
    with _CACHE_LOCK:
        entry = _CACHE.get(key)
        if entry is not None:
            _CACHE.move_to_end(key)
            _STATS["hits"] += 1
            return entry, True
    obj = build()
    with _CACHE_LOCK:
        entry = _CACHE.setdefault(key, _Entry(obj))
        _CACHE.move_to_end(key)
        _STATS["misses"] += 1
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return entry, False


def _solver(pybamm: Any, rtol: float = 1e-6, atol: float = 1e-8) -> Any:
    return pybamm.IDAKLUSolver(rtol=rtol, atol=atol, options={"max_num_steps": 200000})


def _model(pybamm: Any, name: str, options: dict[str, str]) -> Any:
    cls = {
        "SPM": pybamm.lithium_ion.SPM,
        "SPMe": pybamm.lithium_ion.SPMe,
        "DFN": pybamm.lithium_ion.DFN,
    }[name]
    try:
        return cls(options=dict(options))
    except pybamm.OptionError as exc:
        raise InputError(f"degradation: PyBaMM refuses these options: {exc}") from None


def _prepare_values(p: CyclingParameters, input_names: list[str]) -> Any:
    """Parameter values with the overrides (and the conductivity scale) as input parameters."""
    pybamm = _pybamm()
    pv = parameter_values(p.parameter_set)
    missing = [k for k in p.overrides if k not in pv]
    if missing:
        raise InputError(
            f"overrides: {', '.join(map(repr, missing))} is not a parameter of this set"
        )
    for name in input_names:
        pv[name] = "[input]"
    if p.electrolyte_conductivity is not None:
        base = pv["Electrolyte conductivity [S.m-1]"]
        scale = pybamm.InputParameter("Electrolyte conductivity scale")
        if callable(base):
            pv["Electrolyte conductivity [S.m-1]"] = lambda c_e, T: base(c_e, T) * scale
        else:
            pv["Electrolyte conductivity [S.m-1]"] = base * scale
    return pv


def _conductivity_scale(p: CyclingParameters) -> float | None:
    """Factor that makes the set's kappa(c_e0, T_amb) equal ``electrolyte_conductivity``."""
    if p.electrolyte_conductivity is None:
        return None
    pybamm = _pybamm()
    pv = parameter_values(p.parameter_set)
    for k, v in p.overrides.items():
        pv[k] = v
    kappa = pv["Electrolyte conductivity [S.m-1]"]
    c0 = pv["Initial concentration in electrolyte [mol.m-3]"]
    if callable(kappa):
        value = pv.evaluate(kappa(pybamm.Scalar(c0), pybamm.Scalar(p.temperature)))
    else:
        value = float(kappa)
    value = float(np.asarray(value).ravel()[0])
    if not math.isfinite(value) or value <= 0:
        raise InputError(
            f"the parameter set's electrolyte conductivity at {p.temperature} K is {value}; "
            "it cannot be rescaled"
        )
    return p.electrolyte_conductivity / value


def _constant_current(p: CyclingParameters) -> tuple[str, float, float] | None:
    """(unit, value, cut-off V) when the job is one constant-current discharge."""
    if p.cycles != 1 or len(p.experiment) != 1 or p.formation_cycles:
        return None
    if p.termination is not None or p.period is not None:
        return None
    m = _CC.match(p.experiment[0])
    if not m:
        return None
    try:
        return m["unit"].upper(), float(m["value"]), float(m["v"])
    except ValueError:
        return None


def _check_failure(pybamm: Any, exc: Exception) -> Exception:
    if isinstance(exc, InputError | CalculationFailed):
        return exc
    if isinstance(exc, KeyError):
        return InputError(
            f"the parameter set lacks a parameter that this model/option needs: {exc}"
        )
    if isinstance(exc, pybamm.SolverError):
        return CalculationFailed(f"PyBaMM solver failed: {exc}")
    if isinstance(exc, pybamm.ModelError | pybamm.OptionError | pybamm.DiscretisationError):
        return InputError(f"PyBaMM refuses the model: {exc}")
    return CalculationFailed(f"PyBaMM failed: {type(exc).__name__}: {exc}")


def _is_empty(step: Any) -> bool:
    """A step PyBaMM skipped: its end condition held at its start (e.g. a CC charge to 4.2 V
    right after a step that ended at 4.2 V): ``None`` or an ``EmptySolution``, no data."""
    return step is None or type(step).__name__ == "EmptySolution"


def _steps_of(
    sol: Any, protocol: list[list[str]], cc: bool
) -> tuple[list[list[dict[str, Any]]], bool]:
    """Full-resolution traces: per cycle, per step (skipped steps left out; ``index`` is the
    step's position in its cycle). Also whether the last cycle ran all its steps."""
    out: list[list[dict[str, Any]]] = []
    cycles = [sol] if cc else list(sol.cycles)
    last_complete = True
    for ci, cyc in enumerate(cycles):
        if cyc is None:
            break
        plan = protocol[ci] if ci < len(protocol) else protocol[-1]
        steps = [cyc] if cc else list(cyc.steps)
        last_complete = len(steps) >= len(plan)
        rows = []
        for si, st in enumerate(steps):
            if _is_empty(st):
                continue
            rows.append(
                {
                    "step": plan[si] if si < len(plan) else f"step {si + 1}",
                    "index": si,
                    "cycle": ci + 1,
                    "time": np.asarray(st["Time [s]"].entries, dtype=float),
                    "voltage": np.asarray(st["Voltage [V]"].entries, dtype=float),
                    "current": np.asarray(st["Current [A]"].entries, dtype=float),
                    "temperature": np.asarray(
                        st["Volume-averaged cell temperature [K]"].entries, dtype=float
                    ),
                    "discharge_capacity": np.asarray(
                        st["Discharge capacity [A.h]"].entries, dtype=float
                    ),
                }
            )
        if not rows:
            break
        out.append(rows)
    return out, last_complete


def _integrate(t: np.ndarray, y: np.ndarray) -> float:
    if t.size < 2:
        return 0.0
    return float(np.sum(0.5 * (y[1:] + y[:-1]) * np.diff(t)))


def _cycle_figures(rows: list[dict[str, Any]]) -> tuple[float, float, float]:
    """Discharge capacity [A.h], discharge energy [W.h], charge capacity [A.h] of one cycle."""
    q_dis = e_dis = q_ch = 0.0
    for r in rows:
        t, i, v = r["time"], r["current"], r["voltage"]
        q_dis += _integrate(t, np.clip(i, 0, None)) / 3600.0
        q_ch += _integrate(t, np.clip(-i, 0, None)) / 3600.0
        e_dis += _integrate(t, np.clip(i, 0, None) * v) / 3600.0
    return q_dis, e_dis, q_ch


def _downsample(rows: list[dict[str, Any]], n: int) -> Trace:
    t = np.concatenate([r["time"] for r in rows])
    v = np.concatenate([r["voltage"] for r in rows])
    i = np.concatenate([r["current"] for r in rows])
    t0 = t[0] if t.size else 0.0
    if t.size > n:
        idx = np.unique(np.linspace(0, t.size - 1, n).round().astype(int))
        t, v, i = t[idx], v[idx], i[idx]
    return Trace(
        time=[round(float(x - t0), 6) for x in t],
        voltage=[round(float(x), 6) for x in v],
        current=[round(float(x), 6) for x in i],
    )


def simulate_cycling(
    params: CyclingParameters | dict[str, Any],
) -> tuple[dict[str, Any], list[list[dict[str, Any]]]]:
    """Run one cycling job here (cached model); see the module docstring."""
    p = params if isinstance(params, CyclingParameters) else CyclingParameters(**params)
    pybamm = _pybamm()
    t_start = time.perf_counter()
    options = p.degradation.options()
    override_names = sorted(p.overrides)
    scale = _conductivity_scale(p)
    inputs: dict[str, float] = {k: float(v) for k, v in p.overrides.items()}
    if scale is not None:
        inputs["Electrolyte conductivity scale"] = scale
    base_key = (
        p.model,
        _set_key(p.parameter_set),
        tuple(sorted(options.items())),
        tuple(override_names),
        scale is not None,
        p.initial_soc,
        p.rtol,
        p.atol,
    )
    cc = _constant_current(p)
    protocol = [list(p.experiment)] if cc is not None else p.protocol()
    try:
        if cc is not None:
            unit, value, cutoff = cc
            names = [
                "Current function [A]",
                "Ambient temperature [K]",
                "Initial temperature [K]",
                "Lower voltage cut-off [V]",
                *override_names,
            ]

            def build_cc() -> Any:
                pv = _prepare_values(p, names)
                if p.initial_soc is not None:
                    pv.set_initial_state(p.initial_soc)
                sim = pybamm.Simulation(
                    _model(pybamm, p.model, options),
                    parameter_values=pv,
                    solver=_solver(pybamm, p.rtol, p.atol),
                )
                sim.build()
                return {"sim": sim, "nominal": parameter_values(p.parameter_set)}

            entry, hit = _cached(("cc", *base_key), build_cc)
            nominal = entry.obj["nominal"]["Nominal cell capacity [A.h]"]
            current = value * nominal if unit == "C" else value
            if current <= 0:
                raise InputError("experiment: the discharge current must be positive")
            inputs.update(
                {
                    "Current function [A]": current,
                    "Ambient temperature [K]": p.temperature,
                    "Initial temperature [K]": p.temperature,
                    "Lower voltage cut-off [V]": cutoff,
                }
            )
            t_end = 3600.0 * max(nominal, 1e-9) / current * 1.5 + 600.0
            with entry.lock:
                entry.uses += 1
                sol = entry.obj["sim"].solve([0, t_end], inputs=inputs)
            if not str(sol.termination).startswith("event"):
                raise CalculationFailed(
                    f"the discharge did not reach {cutoff} V within {t_end:.0f} s "
                    f"(termination: {sol.termination})"
                )
        else:
            exp_kw: dict[str, Any] = {}
            if p.period is not None:
                exp_kw["period"] = f"{p.period:g} seconds"
            if p.termination is not None:
                try:
                    pybamm.Experiment.read_termination(p.termination)
                except Exception as exc:
                    raise InputError(f"termination: PyBaMM cannot parse it: {exc}") from None
                exp_kw["termination"] = p.termination

            def build_exp() -> Any:
                try:
                    experiment = pybamm.Experiment([tuple(c) for c in protocol], **exp_kw)
                except Exception as exc:
                    raise InputError(f"experiment: PyBaMM cannot parse it: {exc}") from None
                pv = _prepare_values(p, override_names)
                pv["Ambient temperature [K]"] = p.temperature
                pv["Initial temperature [K]"] = p.temperature
                sim = pybamm.Simulation(
                    _model(pybamm, p.model, options),
                    parameter_values=pv,
                    experiment=experiment,
                    solver=_solver(pybamm, p.rtol, p.atol),
                )
                return {"sim": sim, "nominal": parameter_values(p.parameter_set)}

            key = (
                "exp",
                *base_key,
                tuple(p.formation),
                p.formation_cycles,
                tuple(p.experiment),
                p.cycles,
                p.termination,
                p.period,
                round(p.temperature, 6),
            )
            entry, hit = _cached(key, build_exp)
            with entry.lock:
                entry.uses += 1
                kwargs: dict[str, Any] = {"inputs": inputs}
                if p.initial_soc is not None:
                    kwargs["initial_soc"] = p.initial_soc
                sol = entry.obj["sim"].solve(**kwargs)
                # the cached Simulation keeps its last solution: drop it, or each cached
                # experiment holds a whole (possibly hundreds of cycles) solution in memory
                entry.obj["sim"]._solution = None
    except Exception as exc:  # noqa: BLE001  (classified below)
        raise _check_failure(pybamm, exc) from None
    if sol is None:
        raise CalculationFailed("PyBaMM returned no solution (the first step was infeasible)")

    cycles, last_complete = _steps_of(sol, protocol, cc is not None)
    if not cycles:
        raise CalculationFailed(f"no cycle completed: {getattr(sol, 'termination', '')}")
    # An experiment cut short leaves an incomplete last cycle: keep only full cycles.
    if not last_complete:
        cycles = cycles[:-1]
    if not cycles:
        raise CalculationFailed(
            f"the first cycle did not complete (PyBaMM: {getattr(sol, 'termination', '')})"
        )
    figures = [_cycle_figures(rows) for rows in cycles]
    q_dis = [f[0] for f in figures]
    e_dis = [f[1] for f in figures]
    q_ch = [f[2] for f in figures]
    ce = [(qd / qc) if qc > 1e-12 else None for qd, qc in zip(q_dis, q_ch, strict=True)]
    # retention against the first cycle after formation that discharged (a test that starts
    # from an empty cell with a discharge has nothing to discharge in its first cycle)
    n_form = min(p.formation_cycles, len(cycles))
    ref = next((q for q in q_dis[n_form:] if q > 0), 0.0)
    q0 = ref if ref > 0 else float("nan")
    retention = [q / q0 if q0 == q0 else 0.0 for q in q_dis]
    eol = next((k + 1 for k, r in enumerate(retention) if k >= n_form and r < EOL_RETENTION), None)
    stats = getattr(sol, "solve_time", None)
    full = len(cycles) == len(protocol)
    meta = {
        "success": True,
        "rating": 4 if full else 2,
        "model": p.model,
        "parameter_set": _set_key(p.parameter_set),
        "options": options,
        "cycles_requested": len(protocol),
        "cycles_completed": len(cycles),
        "formation_cycles": p.formation_cycles,
        "termination": str(getattr(sol, "termination", "")),
        "solver": {
            "name": "IDAKLUSolver",
            "rtol": p.rtol,
            "atol": p.atol,
            "solve_time_s": float(stats.value) if hasattr(stats, "value") else None,
            "wall_time_s": round(time.perf_counter() - t_start, 6),
            "time_points": int(sum(r["time"].size for c in cycles for r in c)),
            "cached_model": bool(hit),
            "path": "input-parameter discharge" if cc is not None else "experiment",
        },
        "electrolyte_conductivity_scale": scale,
        "pybamm_version": _pybamm_version(),
    }
    summary = CyclingResult(
        discharge_capacity=[round(x, 9) for x in q_dis],
        discharge_energy=[round(x, 9) for x in e_dis],
        charge_capacity=[round(x, 9) for x in q_ch],
        coulombic_efficiency=[None if x is None else round(x, 9) for x in ce],
        capacity_retention=[round(x, 9) for x in retention],
        eol_cycle=eol,
        traces={
            "first": _downsample(cycles[0], p.trace_points),
            "last": _downsample(cycles[-1], p.trace_points),
        },
        temperature=p.temperature,
        meta=CyclingMeta(**meta),
    ).model_dump(mode="json")
    return summary, cycles


def run_cycling_job(params: dict[str, Any]) -> dict[str, Any]:
    """What a Dask worker runs: the summary of :func:`simulate_cycling`, or an error record
    (exceptions are returned, not raised, so that their kind survives pickling)."""
    try:
        summary, _ = simulate_cycling(params)
        return {"ok": True, "result": summary, "cache": cache_stats(), "pid": os.getpid()}
    except InputError as exc:
        return {"ok": False, "kind": "input", "message": str(exc)}
    except CalculationFailed as exc:
        return {"ok": False, "kind": "calc", "message": str(exc)}
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "kind": "calc", "message": f"{type(exc).__name__}: {exc}"}


# ----------------------------------------------------------------------------- Dask


class DaskRunner:
    """Runs cycling jobs on Dask: a LocalCluster by default, ``BIGMAP_DASK_SCHEDULER`` if set
    (``none``: in this process, no Dask)."""

    def __init__(
        self,
        scheduler: str | None = None,
        n_workers: int | None = None,
        processes: bool | None = None,
    ) -> None:
        self.scheduler = (
            scheduler if scheduler is not None else os.environ.get("BIGMAP_DASK_SCHEDULER", "")
        )
        self.n_workers = n_workers or int(os.environ.get("BIGMAP_DASK_WORKERS", "2"))
        if processes is None:
            # threads by default: measured faster here (benchmarks/cell_sim_throughput.py: one
            # shared model cache, no per-process build); processes isolate memory and let a
            # stuck solve be killed (BIGMAP_DASK_PROCESSES=1).
            processes = os.environ.get("BIGMAP_DASK_PROCESSES", "0") in ("1", "true", "yes")
        self.processes = processes
        self._client: Any = None
        self._cluster: Any = None
        self._lock = threading.Lock()

    @property
    def in_process(self) -> bool:
        return self.scheduler.lower() == "none"

    def client(self) -> Any:
        with self._lock:
            if self._client is None and not self.in_process:
                from distributed import Client, LocalCluster

                if self.scheduler:
                    self._client = Client(self.scheduler)
                else:
                    self._cluster = LocalCluster(
                        n_workers=self.n_workers,
                        threads_per_worker=1,
                        processes=self.processes,
                        dashboard_address=None,
                        memory_limit="3GiB" if self.processes else None,
                    )
                    self._client = Client(self._cluster)
            return self._client

    def describe(self) -> dict[str, Any]:
        if self.in_process:
            return {"scheduler": "in-process"}
        if self.scheduler:
            return {"scheduler": self.scheduler}
        return {
            "scheduler": "LocalCluster",
            "workers": self.n_workers,
            "processes": self.processes,
        }

    def map(self, jobs: list[dict[str, Any]], timeout: float = 3600) -> list[dict[str, Any]]:
        """Run jobs in parallel; the records of :func:`run_cycling_job`, in order."""
        if self.in_process:
            return [run_cycling_job(j) for j in jobs]
        client = self.client()
        futures = client.map(run_cycling_job, jobs, pure=False)
        out = []
        for fut in futures:
            try:
                out.append(fut.result(timeout=timeout))
            except TimeoutError:
                fut.cancel()
                if self._cluster is not None and self.processes:  # a stuck solve: restart
                    client.restart(wait_for_workers=False)
                out.append(
                    {
                        "ok": False,
                        "kind": "calc",
                        "message": f"the solve exceeded the wall-clock limit of {timeout} s",
                    }
                )
        return out

    def run(self, job: dict[str, Any], timeout: float = 3600) -> dict[str, Any]:
        return self.map([job], timeout=timeout)[0]

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
            if self._cluster is not None:
                self._cluster.close()
            self._client = self._cluster = None


_RUNNER: DaskRunner | None = None


def runner() -> DaskRunner:
    global _RUNNER
    if _RUNNER is None:
        _RUNNER = DaskRunner()
    return _RUNNER


def _raise_for(record: dict[str, Any]) -> dict[str, Any]:
    if record.get("ok"):
        return record["result"]
    if record.get("kind") == "input":
        raise InputError(record["message"])
    raise CalculationFailed(record["message"])


# ----------------------------------------------------------------------------- tenant

tenant = Tenant(
    "cell-sim",
    kind="simulation",
    description="PyBaMM cell cycling and a multiscale electrolyte -> cell chain",
    software=lambda: {"name": "pybamm", "version": _pybamm_version()},
)

CYCLING_LIMITS = {
    "model": ["SPM", "SPMe", "DFN"],
    "temperature": [{"min": 233.15, "max": 353.15}],
    "cycles": [{"min": 1, "max": 1000}],
}


@tenant.capability(
    "cell_cycling",
    "pybamm",
    parameters=CyclingParameters,
    result=CyclingResult,
    limitations=CYCLING_LIMITS,
    units={
        "discharge_capacity": "ampere * hour",
        "discharge_energy": "watt * hour",
        "charge_capacity": "ampere * hour",
        "temperature": "kelvin",
    },
    cost=5.0,
    fidelity=0.7,
    lease_seconds=300.0,
)
def cell_cycling(p: CyclingParameters, ctx: JobContext) -> CyclingResult:
    """A PyBaMM cell cycled by an experiment: capacity, energy, efficiency and retention per
    cycle, end of life at 80 % retention, traces of the first and last cycles."""
    ctx.progress(0.0, f"{p.model} on {_set_key(p.parameter_set)}, {p.cycles} cycle(s)")
    rec = runner().run(p.model_dump(mode="json"), timeout=p.timeout)
    out = _raise_for(rec)
    ctx.provenance["pybamm_version"] = _pybamm_version()
    ctx.provenance["dask"] = runner().describe()
    ctx.provenance["model_cache"] = rec.get("cache")
    return CyclingResult.model_validate(out)


class Formulation(BaseModel):
    model_config = ConfigDict(extra="allow")

    chemical: dict[str, str]
    fraction: float
    fraction_type: str = "molPerMol"


class MultiscaleParameters(BaseModel):
    """Parameters of ``cell_performance/multiscale``."""

    model_config = ConfigDict(extra="forbid")

    formulation: list[Formulation] = Field(min_length=1, description="the electrolyte (FINALES)")
    temperature: float = Field(default=298.15, ge=233.15, le=353.15, description="[K]")
    parameter_set: str | dict[str, Any] = "Chen2020"
    model: ModelName = "SPMe"
    experiment: list[str] = Field(
        default_factory=lambda: ["Discharge at 1C until 2.5 V"], min_length=1, max_length=50
    )
    cycles: int = Field(default=1, ge=1, le=200)
    degradation: Degradation = Field(default_factory=Degradation)
    samples: int = Field(default=8, ge=1, le=64, description="conductivity samples")
    seed: int = Field(default=0, ge=0)
    conductivity_method: str = Field(default="transport_model")
    timeout: float = Field(default=1800, gt=0, le=24 * 3600, description="[s] per sub-request")


class Statistic(BaseModel):
    mean: float
    std: float
    p2_5: float
    p97_5: float
    samples: list[float]


class MultiscaleResult(BaseModel):
    temperature: float
    electrolyte_conductivity: dict[str, Any] = Field(
        description="the conductivity sub-result used: value, uncertainty [S/m], model"
    )
    discharge_capacity: Statistic = Field(description="first-cycle [A.h]")
    discharge_energy: Statistic = Field(description="first-cycle [W.h]")
    capacity_retention: Statistic = Field(description="at the last cycle")
    eol_cycle: list[int | None]
    sub_requests: dict[str, Any]
    meta: CyclingMeta


def _stat(values: list[float]) -> Statistic:
    a = np.asarray(values, dtype=float)
    return Statistic(
        mean=float(a.mean()),
        std=float(a.std(ddof=1)) if a.size > 1 else 0.0,
        p2_5=float(np.percentile(a, 2.5)),
        p97_5=float(np.percentile(a, 97.5)),
        samples=[float(x) for x in a],
    )


def _claim_and_run(ctx: JobContext, subs: list[dict[str, Any]], timeout: float) -> None:
    """Run the children nobody has claimed yet here (in parallel on Dask) and post them."""
    client = ctx.client
    if client is None or not ctx.tenant_id:
        return
    mine = []
    for sub in subs:
        try:
            client.claim(sub["id"], ctx.tenant_id, method="pybamm", lease_seconds=timeout + 600)
            mine.append(sub)
        except (ConflictError, BrokerError) as exc:  # claimed by another worker, or not ours
            log.debug("sub-request %s left to others: %s", sub["id"], exc)
    if not mine:
        return
    jobs = [s["parameters"]["pybamm"] for s in mine]
    records = runner().map(jobs, timeout=timeout)
    software = tenant.software
    for sub, rec in zip(mine, records, strict=True):
        try:
            if rec.get("ok"):
                data = CyclingResult.model_validate(rec["result"]).model_dump(mode="json")
                client.post_result(
                    sub["id"],
                    ctx.tenant_id,
                    data,
                    method="pybamm",
                    software=software,
                    provenance={"run_by_parent": ctx.request_id, "dask": runner().describe()},
                    idempotency_key=f"{sub['id']}:parent-run",
                )
            else:
                kind = "input_error" if rec.get("kind") == "input" else "calculation_failed"
                client.fail(sub["id"], ctx.tenant_id, rec["message"], kind=kind)
        except (ConflictError, BrokerError) as exc:
            log.warning("could not post sub-request %s: %s", sub["id"], exc)


@tenant.capability(
    "cell_performance",
    "multiscale",
    parameters=MultiscaleParameters,
    result=MultiscaleResult,
    limitations={"temperature": [{"min": 233.15, "max": 353.15}]},
    cost=20.0,
    fidelity=0.6,
    lease_seconds=300.0,
)
def cell_performance(p: MultiscaleParameters, ctx: JobContext) -> MultiscaleResult:
    """Electrolyte conductivity (a sub-request) -> PyBaMM cells (sub-requests), with the
    conductivity's uncertainty propagated by sampling into the cell's figures of merit."""
    if ctx.client is None:
        raise InputError("cell_performance/multiscale needs a broker (it posts sub-requests)")
    formulation = [f.model_dump(mode="json") for f in p.formulation]
    ctx.progress(0.05, "asking for the electrolyte conductivity")
    sub_k = ctx.submit(
        "conductivity",
        [p.conductivity_method],
        {"formulation": formulation, "temperature": p.temperature},
    )
    try:
        res_k = ctx.wait(sub_k["id"], timeout=p.timeout)
    except RequestFailed as exc:
        raise CalculationFailed(f"the conductivity sub-request failed: {exc}") from None
    except TimeoutError:
        raise CalculationFailed(
            f"no conductivity within {p.timeout} s (is a conductivity tenant running?)"
        ) from None
    kdata = res_k["data"].get("conductivity", res_k["data"])
    kappa = float(kdata["values"][0])
    sigma = float((kdata.get("uncertainty") or [0.0])[0])
    rng = np.random.default_rng(p.seed)
    if p.samples == 1 or sigma <= 0:
        draws = [kappa] * p.samples
    else:  # normal, truncated to positive values
        draws = []
        while len(draws) < p.samples:
            x = rng.normal(kappa, sigma, size=p.samples)
            draws.extend(float(v) for v in x if v > 1e-4)
        draws = draws[: p.samples]
    ctx.progress(0.2, f"kappa = {kappa:.4g} +- {sigma:.2g} S/m; {p.samples} cell sub-requests")
    subs = []
    for k in draws:
        cp = CyclingParameters(
            parameter_set=p.parameter_set,
            model=p.model,
            experiment=p.experiment,
            cycles=p.cycles,
            temperature=p.temperature,
            degradation=p.degradation,
            electrolyte_conductivity=k,
            timeout=p.timeout,
        )
        subs.append(ctx.submit("cell_cycling", ["pybamm"], cp.model_dump(mode="json")))
    _claim_and_run(ctx, subs, p.timeout)
    cells = []
    for i, sub in enumerate(subs):
        try:
            cells.append(ctx.wait(sub["id"], timeout=p.timeout)["data"])
        except RequestFailed as exc:
            raise CalculationFailed(f"cell sub-request {sub['id']} failed: {exc}") from None
        except TimeoutError:
            raise CalculationFailed(f"cell sub-request {sub['id']} timed out") from None
        ctx.progress(0.2 + 0.8 * (i + 1) / len(subs), "cells")
    ctx.provenance["inputs"] = [sub_k["id"], *[s["id"] for s in subs]]
    return MultiscaleResult(
        temperature=p.temperature,
        electrolyte_conductivity={
            "value": kappa,
            "uncertainty": sigma,
            "model": kdata.get("model") or res_k["data"].get("model"),
            "result_id": res_k.get("id"),
            "samples": draws,
        },
        discharge_capacity=_stat([c["discharge_capacity"][0] for c in cells]),
        discharge_energy=_stat([c["discharge_energy"][0] for c in cells]),
        capacity_retention=_stat([c["capacity_retention"][-1] for c in cells]),
        eol_cycle=[c["eol_cycle"] for c in cells],
        sub_requests={"conductivity": sub_k["id"], "cell_cycling": [s["id"] for s in subs]},
        meta=CyclingMeta(success=True, rating=3),
    )
