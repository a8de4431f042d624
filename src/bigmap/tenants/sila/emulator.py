"""The SiLA 2 face of bigmap's emulated lab: a SiLA 2 server (``sila2`` package) in front of
the emulated electrolyte station (``bigmap.tenants.lab.station``) and the emulated cell line
(``bigmap.tenants.lab.cell_line``: coin-cell assembler and battery cycler), so that the same
campaign runs against the emulators directly (``bigmap worker virtual-lab``) or through
SiLA 2 (``bigmap sila serve-emulator`` + ``bigmap worker --sila lab-emulator.yaml``), and
real SiLA 2 devices replace them by changing the mapping file.

Features (FDL in ``features/``):

- ``org.bigmap/lab/ElectrolyteStation/v1``: observable command ``MeasureConductivity``
  (prepare 2 mL, equilibrate, spectra, fit), observable property ``State``;
- ``org.bigmap/lab/CoinCellAssembler/v1``: observable command ``AssembleCells``;
- ``org.bigmap/lab/BatteryCycler/v1``: observable command ``RunCycling`` (formation and
  cycling; responses: channel, cycles, the raw Maccor export byte for byte, which bigmap reads
  as it reads any cycler's file), observable property ``State``;
- ``org.bigmap/lab/EmulatorInfo/v1``, whose ``Description`` tells every client that the
  devices are emulated: the adapter puts ``emulated: true`` and the emulators' models into
  the provenance of every result that passes through it.
"""

from __future__ import annotations

import json
from collections import namedtuple
from pathlib import Path
from queue import Queue
from typing import Any

from sila2.framework import DefinedExecutionError, Feature
from sila2.server import FeatureImplementationBase, SilaServer

from bigmap.tenants.lab.cell_line import EmulatedCellAssembler, EmulatedCycler
from bigmap.tenants.lab.instrument import CommandRejected, Instrument, InstrumentError
from bigmap.tenants.lab.station import EmulatedElectrolyteStation, StationConfig

FEATURES = Path(__file__).with_name("features")
StationFeature = Feature(str(FEATURES / "ElectrolyteStation.sila.xml"))
AssemblerFeature = Feature(str(FEATURES / "CoinCellAssembler.sila.xml"))
CyclerFeature = Feature(str(FEATURES / "BatteryCycler.sila.xml"))
EmulatorInfoFeature = Feature(str(FEATURES / "EmulatorInfo.sila.xml"))
# the virtual-lab's instrument capabilities (conductivity/two_electrode,
# cell_assembly/autobass_assembly, capacity/cycling) served through this server
LAB_MAPPING = Path(__file__).with_name("lab-emulator.yaml")


def _to_components(items: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "chemical": {"SMILES": c.SMILES, "InChIKey": c.InChIKey},
            "fraction": c.Fraction,
            "fraction_type": c.FractionType,
        }
        for c in items
    ]


def _from_components(formulation: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "SMILES": c["chemical"]["SMILES"],
            "InChIKey": c["chemical"]["InChIKey"],
            "Fraction": float(c["fraction"]),
            "FractionType": str(c.get("fraction_type", "molPerMol")),
        }
        for c in formulation
    ]


class StationImpl(FeatureImplementationBase):
    def __init__(self, server: SilaServer, station: EmulatedElectrolyteStation) -> None:
        super().__init__(server)
        self.station = station
        self._State_producer_queue: Queue = Queue()
        self._State_producer_queue.put(station.state.value)

    def _error(self, name: str, message: str) -> DefinedExecutionError:
        return DefinedExecutionError(StationFeature.defined_execution_errors[name], message)

    def State_on_subscription(self, *, metadata: Any) -> None:
        return None

    def MeasureConductivity(
        self,
        Formulation: list[Any],
        Temperature: float,
        Replicates: int,
        *,
        metadata: Any,
        instance: Any,
    ) -> Any:
        instance.begin_execution()
        st = self.station
        formulation = _to_components(Formulation)

        def progress(a: float, b: float) -> Any:
            return lambda f, m: setattr(instance, "progress", min(1.0, a + (b - a) * f))

        try:
            self._State_producer_queue.put("busy")
            st.connect()
            prep = st.execute(
                {"command": "prepare", "formulation": formulation, "volume_ml": 2.0},
                progress(0, 0.3),
            )
            res = st.execute(
                {
                    "command": "measure_conductivity",
                    "formulation": prep.data["formulation"],
                    "temperature": float(Temperature),
                    "replicates": int(Replicates),
                    "sample": prep.data["sample"],
                },
                progress(0.3, 1.0),
            )
        except CommandRejected as exc:
            raise self._error("OutsideRange", str(exc)) from None
        except InstrumentError as exc:
            st.reset()
            raise self._error("InstrumentFault", f"{st.name}: {exc}") from None
        finally:
            self._State_producer_queue.put(st.state.value)
        d = res.data
        names = [
            "Sample",
            "PreparedFormulation",
            "Conductivities",
            "Mean",
            "Uncertainty",
            "MeasuredTemperature",
            "Spectra",
            "Analysis",
        ]
        analysis = {
            "fit_circuit": "L0-R0-CPE0",
            "software": "impedance.py",
            "cell_constant_per_m": d["cell_constant"],
            "lead_resistance_ohm": d["lead_resistance"],
            "fits": d["fits"],
        }
        return namedtuple("Responses", names)(
            Sample=prep.data["sample"],
            PreparedFormulation=_from_components(prep.data["formulation"]),
            Conductivities=[float(v) for v in d["values"]],
            Mean=float(d["mean"]),
            Uncertainty=float(d["uncertainty"]),
            MeasuredTemperature=float(d["temperature"]),
            Spectra=[f.content.decode("utf-8", "replace") for f in res.files],
            Analysis=json.dumps(analysis),
        )


def _execute(
    feature: Feature, inst: Instrument, command: dict[str, Any], instance: Any, state: Queue
) -> Any:
    """Run a command on an emulated instrument; its refusals and faults as the feature's
    defined execution errors, its progress as the observable command's."""

    def progress(f: float, m: str) -> None:
        instance.progress = min(1.0, max(0.0, f))

    try:
        state.put("busy")
        inst.connect()
        return inst.execute(command, progress)
    except CommandRejected as exc:
        raise DefinedExecutionError(
            feature.defined_execution_errors["OutsideRange"], str(exc)
        ) from None
    except InstrumentError as exc:
        inst.reset()
        raise DefinedExecutionError(
            feature.defined_execution_errors["InstrumentFault"], f"{inst.name}: {exc}"
        ) from None
    finally:
        state.put(inst.state.value)


class AssemblerImpl(FeatureImplementationBase):
    def __init__(self, server: SilaServer, assembler: EmulatedCellAssembler) -> None:
        super().__init__(server)
        self.assembler = assembler
        self.state: Queue = Queue()

    def AssembleCells(
        self, Cell: str, CellInfo: str, Count: int, *, metadata: Any, instance: Any
    ) -> Any:
        instance.begin_execution()
        try:
            cell, info = json.loads(Cell), json.loads(CellInfo or "{}")
        except ValueError as exc:
            raise DefinedExecutionError(
                AssemblerFeature.defined_execution_errors["OutsideRange"],
                f"Cell and CellInfo are JSON: {exc}",
            ) from None
        if not isinstance(cell, dict) or not isinstance(info, dict):
            raise DefinedExecutionError(
                AssemblerFeature.defined_execution_errors["OutsideRange"],
                "Cell and CellInfo are JSON objects",
            )
        res = _execute(
            AssemblerFeature,
            self.assembler,
            {"command": "assemble", "cell": cell, "cell_info": info, "count": int(Count)},
            instance,
            self.state,
        )
        out = namedtuple("Responses", ["BatchId", "Cells"])
        return out(BatchId=res.data["batch_id"], Cells=json.dumps(res.data["batch_output"]))


def _given(v: float) -> float | None:
    """Zero stands for a parameter not given (SiLA has no null): the cycler's default."""
    return float(v) if v else None


class CyclerImpl(FeatureImplementationBase):
    def __init__(self, server: SilaServer, cycler: EmulatedCycler) -> None:
        super().__init__(server)
        self.cycler = cycler
        self._State_producer_queue: Queue = Queue()
        self._State_producer_queue.put(cycler.state.value)

    def State_on_subscription(self, *, metadata: Any) -> None:
        return None

    def RunCycling(
        self,
        CellId: str,
        Cycles: int,
        NominalCapacity: float,
        FormationCycles: int,
        FormationChargeRate: float,
        FormationDischargeRate: float,
        FormationCVCutoff: float,
        FormationUpperVoltage: float,
        FormationLowerVoltage: float,
        ChargeRate: float,
        DischargeRate: float,
        CVCutoff: float,
        UpperVoltage: float,
        LowerVoltage: float,
        MaxCurrent: float,
        *,
        metadata: Any,
        instance: Any,
    ) -> Any:
        instance.begin_execution()
        command = {
            "command": "cycle",
            "number_cycles": int(Cycles),
            "cell_info": {"uuid": CellId},
            "capacity": _given(NominalCapacity),
            "repetions_formation_cycle": int(FormationCycles),
            "c_rate_charge_formation": _given(FormationChargeRate),
            "c_rate_discharge_formation": _given(FormationDischargeRate),
            "CV_I_cutoff_formation": _given(FormationCVCutoff),
            "V_max": _given(FormationUpperVoltage),
            "V_min": _given(FormationLowerVoltage),
            "c_rate_charge": _given(ChargeRate),
            "c_rate_discharge": _given(DischargeRate),
            "CV_I_cutoff": _given(CVCutoff),
            "cycling_V_max": _given(UpperVoltage),
            "cycling_V_min": _given(LowerVoltage),
            "I_max": _given(MaxCurrent),
        }
        res = _execute(CyclerFeature, self.cycler, command, instance, self._State_producer_queue)
        d, raw = res.data, res.files[0]
        names = [
            "CellId",
            "Channels",
            "FormationCycles",
            "CyclesCompleted",
            "TestDuration",
            "RawFileName",
            "RawData",
        ]
        return namedtuple("Responses", names)(
            CellId=d["cell_id"],
            Channels=[int(d["channel"])],
            FormationCycles=int(d["formation_cycles"]),
            CyclesCompleted=int(d["cycles_completed"]),
            TestDuration=float(d["emulated_duration_s"]),
            RawFileName=raw.name,
            RawData=raw.content,
        )


class EmulatorInfoImpl(FeatureImplementationBase):
    def __init__(self, server: SilaServer, instruments: list[Instrument]) -> None:
        super().__init__(server)
        self.instruments = instruments

    def get_Description(self, *, metadata: Any) -> str:
        return json.dumps(
            {"emulated": True, "instruments": {i.name: i.info() for i in self.instruments}},
            default=str,
        )


def make_emulator_server(
    *, time_scale: float = 0.0, seed: int | None = None, fault_rate: float | None = None
) -> SilaServer:
    """A SiLA 2 server (not started) in front of a fresh emulated station, coin-cell
    assembler and cycler."""
    from bigmap import __version__

    config = StationConfig(time_scale=time_scale, seed=seed)
    if fault_rate is not None:
        config.fault_rate = fault_rate
        config.bubble_rate = fault_rate
    station = EmulatedElectrolyteStation(config=config)
    assembler = EmulatedCellAssembler(time_scale=time_scale)
    cycler = EmulatedCycler(time_scale=time_scale)
    server = SilaServer(
        server_name="bigmap emulated lab",
        server_type="BigmapEmulatedLab",
        server_description="bigmap's emulated lab: an ASAB-like electrolyte station, an "
        "AutoBASS-like coin-cell assembler and a battery cycler (emulated hardware: its results "
        "are not measurements)",
        server_version=__version__.split("+")[0].replace("-", "_"),
        server_vendor_url="https://github.com/bigmap",
    )
    server.set_feature_implementation(StationFeature, StationImpl(server, station))
    server.set_feature_implementation(AssemblerFeature, AssemblerImpl(server, assembler))
    server.set_feature_implementation(CyclerFeature, CyclerImpl(server, cycler))
    server.set_feature_implementation(
        EmulatorInfoFeature, EmulatorInfoImpl(server, [station, assembler, cycler])
    )
    return server
