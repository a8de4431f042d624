"""The emulated cell line as instruments: a coin-cell assembler (after BIG-MAP's AutoBASS) and
a battery cycler. The physics and the raw-file format are in ``bigmap.tenants.lab.cycler``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

import numpy as np
from pydantic import ConfigDict, Field

from bigmap.client import CalculationFailed, InputError
from bigmap.tenants.lab import cycler as phys
from bigmap.tenants.lab.instrument import (
    Command,
    CommandRejected,
    CommandResult,
    EmulatedClock,
    Instrument,
    InstrumentFault,
    Progress,
    RawFile,
)


class Assemble(Command):
    command: str = "assemble"
    cell: dict[str, Any]
    cell_info: dict[str, Any] = Field(default_factory=dict)
    count: int = Field(default=1, ge=1, le=64)


class EmulatedCellAssembler(Instrument):
    """Assembles coin cells: each gets an id that fixes its cell-to-cell variation."""

    kind: ClassVar[str] = "cell_assembly"
    commands: ClassVar[dict[str, type[Command]]] = {"assemble": Assemble}
    emulated: ClassVar[bool] = True

    def __init__(self, name: str = "virtual-autobass", time_scale: float = 0.0) -> None:
        super().__init__(name, serial="AUTOBASS-EMU-0001", firmware="bigmap-emulator")
        self.clock = EmulatedClock(time_scale)

    def _describe(self) -> dict[str, Any]:
        return {
            "make": "bigmap",
            "model": "emulated coin-cell assembler (AutoBASS-like)",
            "emulator": {"cell_variation": "seeded by the cell id (see bigmap.tenants.lab.cycler)"},
        }

    def _run(self, command: Command, progress: Progress) -> CommandResult:
        assert isinstance(command, Assemble)
        batch = f"B-{uuid.uuid4().hex[:8]}"
        out = []
        for k in range(command.count):
            cell_id = f"{batch}-{k + 1:02d}"
            self.clock.spend(300, progress, f"assembling {cell_id}")
            info = {
                **command.cell_info,
                "uuid": cell_id,
                "batch": batch,
                "assembly_date": datetime.now(UTC).strftime("%Y-%m-%d"),
                "cell_location": {
                    "address": "bigmap virtual lab",
                    "detail_1": self.name,
                    "detail_2": f"tray {batch}, slot {k + 1}",
                },
            }
            var = phys.cell_variation(cell_id)
            out.append(
                {
                    "cell_info": info,
                    "cell": command.cell,
                    "manufacturing_img": f"emulated: no image ({cell_id})",
                    "meta": {"success": True, "rating": 4},
                    "temperature": 298.15,
                    "sealing_time": "20 s",
                    "variation": {k2: v for k2, v in var.items()},
                }
            )
        return CommandResult("assemble", {"batch_output": out, "batch_id": batch})


class CycleTest(Command):
    """The FINALES capacity/cycling parameters (C-rates against ``capacity``)."""

    model_config = ConfigDict(extra="allow")
    command: str = "cycle"
    number_cycles: int = Field(ge=1, le=1000)
    cell_info: dict[str, Any]
    capacity: float | None = Field(default=None, gt=0)
    V_max: float | None = None
    V_min: float | None = None
    c_rate_charge_formation: float | None = Field(default=None, gt=0)
    c_rate_discharge_formation: float | None = Field(default=None, gt=0)
    CV_I_cutoff_formation: float | None = Field(default=None, gt=0)
    repetions_formation_cycle: int | None = Field(default=None, ge=0, le=20)
    cycling_V_max: float | None = None
    cycling_V_min: float | None = None
    c_rate_charge: float | None = Field(default=None, gt=0)
    c_rate_discharge: float | None = Field(default=None, gt=0)
    CV_I_cutoff: float | None = Field(default=None, gt=0)
    I_max: float | None = Field(default=None, gt=0)


class EmulatedCycler(Instrument):
    """A battery cycler whose cells are PyBaMM models; writes Maccor text exports."""

    kind: ClassVar[str] = "cycler"
    commands: ClassVar[dict[str, type[Command]]] = {"cycle": CycleTest}
    emulated: ClassVar[bool] = True

    def __init__(
        self, name: str = "virtual-cycler", time_scale: float = 0.0, channels: int = 16
    ) -> None:
        super().__init__(name, serial="CYCLER-EMU-0001", firmware="bigmap-emulator")
        self.clock = EmulatedClock(time_scale)
        self.channels = channels
        self._next = 0

    def _describe(self) -> dict[str, Any]:
        try:
            from importlib.metadata import version

            pv = version("pybamm")
        except Exception:  # noqa: BLE001
            pv = "unknown"
        return {
            "make": "bigmap",
            "model": "emulated cycler (PyBaMM cells), Maccor text export",
            "emulator": {
                "pybamm": pv,
                "model": phys.MODEL,
                "options": phys.DEGRADATION.options(),
                "parameter_set": phys.PARAMETER_SET,
                "degradation_scale": phys.DEGRADATION_SCALE,
                "rate_spread_log": phys.RATE_SPREAD,
                "note": "degradation rate constants scaled for accelerated ageing; currents and "
                "capacities scaled from the 5 A h stack to the cell's capacity",
            },
        }

    @staticmethod
    def protocol(c: CycleTest) -> tuple[list[str], list[str], int, float]:
        """(formation cycle, cycling cycle as PyBaMM steps, formation cycles, scale to the
        cell) for a request."""
        cap = c.capacity or phys.NOMINAL_AH
        scale = cap / phys.NOMINAL_AH
        vmax = c.cycling_V_max or c.V_max or 4.2
        vmin = c.cycling_V_min or c.V_min or 2.5
        fvmax, fvmin = c.V_max or vmax, c.V_min or vmin
        for label, v in (
            ("V_max", fvmax),
            ("cycling_V_max", vmax),
            ("V_min", fvmin),
            ("cycling_V_min", vmin),
        ):
            if not 2.5 <= v <= 4.2:
                raise CommandRejected(f"{label} = {v} V is outside this cell chemistry's 2.5-4.2 V")
        if vmin >= vmax or fvmin >= fvmax:
            raise CommandRejected("the lower voltage limit must be below the upper one")

        def cycle(
            ch: float, dis: float, cut: float | None, hi: float, lo: float, label: str
        ) -> list[str]:
            i_cc = ch * cap
            if c.I_max is not None and max(ch, dis) * cap > c.I_max * (1 + 1e-9):
                raise CommandRejected(
                    f"{label}: {max(ch, dis)}C of {cap} A h exceeds I_max = {c.I_max} A"
                )
            steps = [f"Charge at {ch:g}C until {hi:g} V"]
            if cut is not None:
                if cut >= i_cc:
                    raise CommandRejected(
                        f"{label}: the CV cut-off {cut} A is not below the charge current {i_cc:.4g} A"
                    )
                steps.append(f"Hold at {hi:g} V until {cut / scale:.6g} A")
            steps += [
                "Rest for 10 minutes",
                f"Discharge at {dis:g}C until {lo:g} V",
                "Rest for 10 minutes",
            ]
            return steps

        n_form = c.repetions_formation_cycle or 0
        form = (  # the formation parameters only matter (and are only checked) if it runs
            cycle(
                c.c_rate_charge_formation or 0.1,
                c.c_rate_discharge_formation or 0.1,
                c.CV_I_cutoff_formation,
                fvmax,
                fvmin,
                "formation",
            )
            if n_form
            else []
        )
        main = cycle(
            c.c_rate_charge or 1.0, c.c_rate_discharge or 1.0, c.CV_I_cutoff, vmax, vmin, "cycling"
        )
        return form, main, n_form, scale

    def _run(self, command: Command, progress: Progress) -> CommandResult:
        assert isinstance(command, CycleTest)
        cell_id = str(command.cell_info.get("uuid") or command.cell_info.get("cell_name") or "")
        if not cell_id:
            raise CommandRejected("cell_info.uuid names the cell to cycle")
        form, main, n_form, scale = self.protocol(command)
        var = phys.cell_variation(cell_id)
        progress(0.05, f"cycling {cell_id}: {n_form} + {command.number_cycles} cycles")
        try:
            records = phys.run_cell(
                main,
                command.number_cycles,
                formation=form,
                formation_cycles=n_form,
                variation=var,
                period=30.0,
            )
        except InputError as exc:
            raise CommandRejected(f"cell {cell_id}: {exc}") from None
        except CalculationFailed as exc:
            raise InstrumentFault(f"cell {cell_id}: {exc}") from None
        if not records:
            raise InstrumentFault(f"cell {cell_id}: no cycle completed")
        emulated_s = float(records[-1][-1]["time"][-1] - records[0][0]["time"][0])
        self.clock.spend(emulated_s, progress, "cycling")
        channel = self._next % self.channels + 1
        self._next += 1
        raw = phys.maccor_export(
            records,
            scale=scale * var["area_factor"],
            filename=cell_id,
            procedure=f"bigmap_{command.number_cycles}cyc.000",
            channel=channel,
            voltage_noise=1e-4,
            rng=np.random.default_rng(phys.cell_seed(cell_id) % 2**32),
        )
        name = f"{cell_id}_ch{channel:02d}.txt"
        return CommandResult(
            "cycle",
            {
                "channel": channel,
                "formation_cycles": n_form,
                "cycles_completed": len(records),
                "cell_id": cell_id,
                "emulated_duration_s": emulated_s,
            },
            [RawFile(name, raw, "text/plain")],
        )
