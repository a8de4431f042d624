"""The ``virtual-lab`` tenant: laboratory capabilities served by instruments through the
driver interface (``bigmap.tenants.lab.instrument``). ``build_tenant`` takes the instruments,
so the same functions serve real devices (pass drivers) and the emulators (the default).

Capabilities (FINALES schemas where FINALES defines them):

- ``electrolyte/flow``: mix a formulation from stock solutions (result: the formulation
  actually prepared, the stock amounts dosed in ``electrolyte.stock_solutions``).
- ``conductivity/two_electrode``: prepare, equilibrate, impedance spectra (attached as EC-Lab
  .mpt files), equivalent-circuit fit, cell constant -> conductivity. ``values`` holds the
  replicates [S/m]; ``uncertainty`` their standard error combined with the calibration's.
- ``cell_assembly/autobass_assembly``: a batch of emulated coin cells with ids.
- ``capacity/cycling``: formation + cycling on the emulated cycler; the Maccor export is
  attached and the result is computed by reading that file back (``bigmap.analysis``).
- ``degradationEOL/degradation_model``: early cycle-life prediction (``bigmap.analysis.lifemodel``).
- ``cycling_analysis/figures_of_merit``: any cycler file stored at the broker (or sent inline)
  -> normalised table (attached as Parquet) and figures of merit.

Emulated time: ``BIGMAP_LAB_TIME_SCALE`` (default 0: results come as fast as the emulators
compute; e.g. 0.001 makes a 25-minute measurement last 1.5 s). Failure rates:
``BIGMAP_LAB_FAULT_RATE``, ``BIGMAP_LAB_BUBBLE_RATE`` (defaults 0.01 each).
"""

from __future__ import annotations

import base64
import os
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from bigmap.client import CalculationFailed, InputError, JobContext, Tenant
from bigmap.schemas import formulation as fm
from bigmap.tenants.lab.instrument import (
    Command,
    CommandRejected,
    CommandResult,
    Instrument,
    InstrumentError,
)

LAB_ADDRESS = "bigmap virtual lab"
LIFE_MODEL = Path(__file__).with_name("life_model.json")


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def _run(
    inst: Instrument,
    cmd: Command | dict[str, Any],
    ctx: JobContext,
    share: tuple[float, float] = (0, 1),
) -> CommandResult:
    """Execute a command; instrument errors become the request's failure with the reason."""
    a, b = share
    try:
        inst.connect()
        res = inst.execute(cmd, lambda f, m: ctx.progress(a + (b - a) * f, m))
    except CommandRejected as exc:
        raise InputError(str(exc)) from None
    except InstrumentError as exc:
        inst.reset()
        raise CalculationFailed(f"{inst.name}: {exc}") from None
    for f in res.files:
        ctx.attach(f.name, f.content, f.media_type)
    ctx.provenance.setdefault("instruments", {})[inst.name] = inst.info()
    ctx.provenance["emulated"] = bool(ctx.provenance.get("emulated")) or inst.emulated
    return res


def _meta(rating: int = 4) -> dict[str, Any]:
    return {"success": True, "rating": rating}


def _chemicals_info(formulation: list[dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for comp in formulation:
        try:
            name = fm.identify(comp["chemical"])
        except ValueError:
            continue
        entry = fm.CHEMICALS[name]
        out[entry["InChIKey"]] = {
            "name": entry["name"],
            "molar_mass": [round(entry["molar_mass"] * 1000, 4), 0.001],
            "manufacturer": None,
        }
    return out


def _formulation_limitations() -> list[list[dict[str, Any]]]:
    return [
        [
            {"chemical": fm.chemical_entry(n), "fraction": [{"min": 0.0, "max": 1.0}]}
            for n in ("LiPF6", "EC", "PC", "EMC")
        ]
    ]


class FomInput(BaseModel):
    file_id: str | None = Field(default=None, description="id of a file stored at the broker")
    content_base64: str | None = Field(default=None, description="the file itself, base64")
    name: str = Field(default="upload", description="file name (its extension helps detection)")
    format: str | None = Field(default=None, description="reader (default: detect)")
    delta_q_cycles: list[int] | None = Field(default=None, min_length=2, max_length=2)


class FomOutput(BaseModel):
    source: dict[str, Any]
    figures_of_merit: dict[str, Any]


def build_tenant(
    station: Instrument | None = None,
    assembler: Instrument | None = None,
    cycler: Instrument | None = None,
    *,
    name: str = "virtual-lab",
) -> Tenant:
    """The lab tenant over these instruments (default: the emulators)."""
    from bigmap.tenants.lab.cell_line import EmulatedCellAssembler, EmulatedCycler
    from bigmap.tenants.lab.station import EmulatedElectrolyteStation, StationConfig

    if station is None:
        station = EmulatedElectrolyteStation(
            config=StationConfig(
                time_scale=_env_float("BIGMAP_LAB_TIME_SCALE", 0.0),
                fault_rate=_env_float("BIGMAP_LAB_FAULT_RATE", 0.01),
                bubble_rate=_env_float("BIGMAP_LAB_BUBBLE_RATE", 0.01),
            )
        )
    assembler = assembler or EmulatedCellAssembler()
    cycler = cycler or EmulatedCycler(time_scale=_env_float("BIGMAP_LAB_TIME_SCALE", 0.0))

    def software() -> dict[str, Any]:
        from bigmap import __version__

        return {"name": "bigmap-virtual-lab", "version": __version__}

    tenant = Tenant(
        name,
        kind="instrument",
        description="electrolyte station, cell assembly and cycler"
        + (" (emulated)" if station.emulated else ""),
        software=software,
    )
    tenant.instruments = {"station": station, "assembler": assembler, "cycler": cycler}  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ electrolyte/flow

    @tenant.capability(
        "electrolyte",
        "flow",
        limitations={
            "electrolyte": {"formulation": _formulation_limitations()},
            "volume": [{"min": 0.1, "max": 50}],
        },
        lease_seconds=300,
    )
    def flow(p: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        # Mix an electrolyte from stock solutions. (no docstring: a FINALES capability's
        # definition must stay exactly the shipped one, description included)
        formulation = p["electrolyte"]["formulation"]
        res = _run(
            station,
            {"command": "prepare", "formulation": formulation, "volume_ml": p["volume"]},
            ctx,
        )
        d = res.data
        location = {
            "address": LAB_ADDRESS,
            "detail_1": station.name,
            "detail_2": f"vial {d['sample']}",
        }
        return {
            "run_info": {
                "formulation": formulation,
                "internal_reference": d["sample"],
                "formulation_info": {
                    "name": None,
                    "uuid": d["sample"],
                    "preparation_date": res.finished,
                    "batch": None,
                    "location": location,
                },
                "chemicals_info": _chemicals_info(d["formulation"]),
            },
            "electrolyte": {
                "formulation": d["formulation"],
                "volume": p["volume"],
                "location": location,
                "meta": _meta(4),
                "stock_solutions": d["stock_solutions"],
            },
        }

    # ------------------------------------------------------------------ conductivity

    @tenant.capability(
        "conductivity",
        "two_electrode",
        limitations={
            "formulation": _formulation_limitations(),
            "temperature": [{"min": fm.HTE_T_RANGE[0], "max": fm.HTE_T_RANGE[1]}],
        },
        lease_seconds=300,
    )
    def conductivity(p: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        # Conductivity from impedance spectra in a two-electrode cell. (no docstring: a FINALES capability's
        # definition must stay exactly the shipped one, description included)
        temperature = p.get("temperature")
        if temperature is None:
            temperature = 298.15
        prep = _run(
            station,
            {"command": "prepare", "formulation": p["formulation"], "volume_ml": 2.0},
            ctx,
            (0, 0.3),
        )
        sample = prep.data["sample"]
        res = _run(
            station,
            {
                "command": "measure_conductivity",
                "formulation": prep.data["formulation"],
                "temperature": float(temperature),
                "sample": sample,
            },
            ctx,
            (0.3, 1.0),
        )
        d = res.data
        ctx.provenance["analysis"] = {
            "fit_circuit": "L0-R0-CPE0",
            "software": "impedance.py",
            "cell_constant_per_m": d["cell_constant"],
            "lead_resistance_ohm": d["lead_resistance"],
            "fits": d["fits"],
        }
        return {
            "run_info": {
                "formulation": p["formulation"],
                "internal_reference": sample,
                "formulation_info": {
                    "name": None,
                    "uuid": sample,
                    "preparation_date": prep.finished,
                    "batch": None,
                    "location": None,
                },
                "chemicals_info": _chemicals_info(prep.data["formulation"]),
            },
            "conductivity": {
                "values": d["values"],
                "temperature": d["temperature"],
                "meta": _meta(4),
                "uncertainty": d["uncertainty"],
                "mean": d["mean"],
                "prepared_formulation": prep.data["formulation"],
                "spectra": [f.name for f in res.files],
            },
        }

    # ------------------------------------------------------------------ cell assembly

    @tenant.capability("cell_assembly", "autobass_assembly", lease_seconds=300)
    def assembly(p: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        # Assemble a batch of coin cells. (no docstring: a FINALES capability's
        # definition must stay exactly the shipped one, description included)
        n = int(p.get("batch_volume") or 1)
        if not 1 <= n <= 64:
            raise InputError(f"batch_volume must be 1-64 cells, not {n}")
        res = _run(
            assembler,
            {"command": "assemble", "cell": p["cell"], "cell_info": p["cell_info"], "count": n},
            ctx,
        )
        return res.data

    # ------------------------------------------------------------------ cycling

    @tenant.capability(
        "capacity",
        "cycling",
        limitations=[
            {
                "number_cycles": [{"min": 1, "max": 1000}],
                "V_max": [{"min": 3.5, "max": 4.2}],
                "V_min": [{"min": 2.5, "max": 3.5}],
                "cycling_V_max": [{"min": 3.5, "max": 4.2}],
                "cycling_V_min": [{"min": 2.5, "max": 3.5}],
                "c_rate_charge": [{"min": 0.05, "max": 6}],
                "c_rate_discharge": [{"min": 0.05, "max": 6}],
                "capacity": [{"min": 1e-4, "max": 10}],
            }
        ],
        lease_seconds=600,
    )
    def cycling(p: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        # Formation and cycling of a cell on the cycler; results read from its raw file. (no docstring: a FINALES capability's
        # definition must stay exactly the shipped one, description included)
        res = _run(cycler, {"command": "cycle", **p}, ctx)
        raw = res.files[0]
        n_form = int(res.data["formation_cycles"])
        data, ctx.provenance["analysis"] = cycling_figures(raw.name, raw.content, n_form, "maccor")
        return {
            **data,
            "channel_list": [int(res.data["channel"])],
            "cell_info": p["cell_info"],
            "formation_cycles": n_form,
            "raw_file": raw.name,
        }

    # ------------------------------------------------------------------ life prediction

    @tenant.capability(
        "degradationEOL",
        "degradation_model",
        limitations={"capacity_vector_variance": [{"min": -15.0, "max": 0.0}]},
    )
    def life(p: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        # Predict the cycle life of a cell from its early cycles (Severson-type model).
        #
        # ``input_cycles``: discharge capacities [A h] of the cycles after formation (cycle 1
        # first); ``capacity_vector_variance``: log10 var ΔQ(V) [A² h²] between cycle 10 and
        # cycle b of the model (as ``capacity/cycling`` reports it; the model uses it relative
        # to the capacity of cycle 10, so cells of any size can be asked about);
        # ``delta_coulombic_efficiency`` and ``voltage_gap_charge_discharge``: differences
        # between the same two cycles.
        from bigmap.analysis.lifemodel import LifeModel

        if not LIFE_MODEL.exists():
            raise CalculationFailed(
                "no trained life model (run benchmarks/life_model.py --write-model)"
            )
        model = LifeModel.load(LIFE_MODEL)
        a, b = model.cycles
        caps = p.get("input_cycles") or []
        if p.get("capacity_vector_variance") is None:
            raise InputError("capacity_vector_variance (log10 var ΔQ(V)) is required by this model")
        if len(caps) < b:
            raise InputError(
                f"input_cycles needs the discharge capacities of the first {b} cycles ({len(caps)} given)"
            )
        import numpy as np

        from bigmap.analysis.lifemodel import relative_log10_var

        bad = [i for i, q in enumerate(caps[:b]) if not (isinstance(q, int | float) and q > 0)]
        if bad:
            raise InputError(
                f"input_cycles[{bad[0]}]: a discharge capacity must be a positive number"
            )
        ret = np.asarray(caps[1:b], float) / float(caps[1])
        try:
            rel = relative_log10_var(float(p["capacity_vector_variance"]), float(caps[a - 1]))
        except ValueError as exc:
            raise InputError(f"input_cycles[{a - 1}]: {exc}") from None
        feats = {
            "log10_var_dq": float(p["capacity_vector_variance"]),
            "log10_var_dq_rel": rel,
            "delta_coulombic_efficiency": p.get("delta_coulombic_efficiency"),
            "delta_voltage_gap": p.get("voltage_gap_charge_discharge"),
            "fade_slope": float(np.polyfit(np.arange(2, b + 1), ret, 1)[0]),
        }
        missing = [k for k, v in feats.items() if v is None and k in model.features]
        if missing:
            raise InputError(f"the model needs {missing}")
        pred = model.predict(feats)
        eol = int(round(pred["cycle_life"]))
        # capacity trajectory: linear from the last given cycle to 80 % at the predicted end
        q0, qlast = float(caps[0]), float(caps[min(len(caps), b) - 1])
        n_last = min(len(caps), b)
        future = list(range(n_last + 1, max(eol, n_last + 1) + 1))
        traj, unc = [], []
        for k in future:
            frac = (k - n_last) / max(eol - n_last, 1)
            traj.append(1000 * (qlast + frac * (0.8 * q0 - qlast)))
            unc.append(1000 * abs(0.8 * q0 - qlast) * frac * pred["std"] / max(eol, 1))
        ctx.provenance["model"] = {
            "kind": "elastic net on log10 cycle life",
            "cycles": [a, b],
            **model.info,
        }
        return {
            "run_info": {
                "formulation": p["battery_chemistry"]["electrolyte"],
                "internal_reference": f"life-model:{ctx.request_id or 'local'}",
            },
            "degradationEOL": {
                "end_of_life": eol,
                "end_of_life_uncertainty": pred["std"],
                "capacity_trajectory": traj,
                "capacity_trajectory_uncertainty": unc,
                "meta": _meta(3),
                "cell_info": p["cell_info"],
                "interval95": [pred["lower95"], pred["upper95"]],
            },
        }

    # ------------------------------------------------------------------ analysis of any file

    @tenant.capability(
        "cycling_analysis",
        "figures_of_merit",
        parameters=FomInput,
        result=FomOutput,
        cost=1,
        fidelity=1.0,
        description="read a cycler file (BioLogic, Maccor, Neware, Arbin, CSV) into the normalised table and compute its figures of merit",
    )
    def analyse(p: FomInput, ctx: JobContext) -> FomOutput:
        """Ingest a cycler file and compute figures of merit."""
        from bigmap.analysis import IngestError, read_cycler_file, write_parquet
        from bigmap.analysis.fom import figures_of_merit

        if bool(p.file_id) == bool(p.content_base64):
            raise InputError("give exactly one of file_id and content_base64")
        if p.file_id:
            if ctx.client is None:
                raise InputError("file_id needs a broker")
            content = ctx.client.download(p.file_id)
        else:
            try:
                content = base64.b64decode(p.content_base64 or "", validate=True)
            except ValueError as exc:
                raise InputError(f"content_base64: {exc}") from None
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(p.name).name
            path.write_bytes(content)
            try:
                df = read_cycler_file(path, p.format)
                fom = figures_of_merit(
                    df, delta_q_cycles=tuple(p.delta_q_cycles) if p.delta_q_cycles else None
                )
            except (IngestError, ValueError) as exc:
                raise InputError(str(exc)) from None
            out = write_parquet(df, Path(tmp) / "table.parquet", df.attrs["source"])
            ctx.attach(path.stem + ".parquet", out.read_bytes(), "application/vnd.apache.parquet")
        return FomOutput(source=df.attrs["source"], figures_of_merit=fom)

    return tenant


def cycling_figures(
    name: str, content: bytes, formation_cycles: int, fmt: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A cycler's raw file -> the computed part of a FINALES ``capacity/cycling`` result
    (``capacity_list``: charge and discharge capacity of each cycle, alternately [A h]; the
    early-life descriptors between cycle 10 of cycling and the last, when there are enough
    cycles; ``figures_of_merit``) and the provenance of that analysis. ``fmt`` names the reader
    (``None``: detected from the content). Used by ``virtual-lab`` and by SiLA 2 cyclers
    (``bigmap.tenants.sila``), so a cycler's file gives the same result either way."""
    from bigmap.analysis import IngestError, read_cycler_file
    from bigmap.analysis.fom import early_life_features, figures_of_merit

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / (Path(name).name or "cycler-file")
        path.write_bytes(content)
        try:
            df = read_cycler_file(path, fmt)
        except IngestError as exc:
            raise CalculationFailed(f"the cycler's file cannot be read: {exc}") from None
    fom = figures_of_merit(df)
    caps: list[float] = []
    for qc, qd in zip(fom["charge_capacity_Ah"], fom["discharge_capacity_Ah"], strict=True):
        caps += [qc or 0.0, qd or 0.0]
    # the FINALES early-life descriptors between cycle x (the last) and cycle 10 of cycling
    extra: dict[str, Any] = early_life_features(df, fom, formation_cycles)
    source = dict(df.attrs.get("source") or {})
    provenance = {
        "read_from": name,
        "reader": f"bigmap.analysis {source.get('format') or fmt}",
        "source": source,
        "capacity_vector_variance": "log10 of the variance of ΔQ(V) between cycle 10 of cycling and the last cycle",
    }
    return {"capacity_list": caps, **extra, "figures_of_merit": fom}, provenance


def utc_date() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


__all__ = ["build_tenant", "uuid"]
