"""The SiLA 2 face of bigmap's emulated lab: a SiLA 2 server (``sila2`` package) in front of
the emulated electrolyte station (``bigmap.tenants.lab.station``), so that the same campaign
runs against the emulator directly (``bigmap worker virtual-lab``) or through SiLA 2
(``bigmap sila serve-emulator`` + ``bigmap worker --sila lab-emulator.yaml``), and a real
SiLA 2 station replaces it by changing the mapping file's ``server``.

Features (FDL in ``features/``): ``org.bigmap/lab/ElectrolyteStation/v1`` (observable
command ``MeasureConductivity``: prepare 2 mL, equilibrate, spectra, fit; observable
property ``State``) and ``org.bigmap/lab/EmulatorInfo/v1``, whose ``Description`` tells every
client that the device is emulated: the adapter puts ``emulated: true`` and the emulator's
model into the provenance of every result that passes through it.
"""

from __future__ import annotations

import json
from collections import namedtuple
from pathlib import Path
from queue import Queue
from typing import Any

from sila2.framework import DefinedExecutionError, Feature
from sila2.server import FeatureImplementationBase, SilaServer

from bigmap.tenants.lab.instrument import CommandRejected, InstrumentError
from bigmap.tenants.lab.station import EmulatedElectrolyteStation, StationConfig

FEATURES = Path(__file__).with_name("features")
StationFeature = Feature(str(FEATURES / "ElectrolyteStation.sila.xml"))
EmulatorInfoFeature = Feature(str(FEATURES / "EmulatorInfo.sila.xml"))
# the same mapping as the virtual-lab's conductivity/two_electrode
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


class EmulatorInfoImpl(FeatureImplementationBase):
    def __init__(self, server: SilaServer, station: EmulatedElectrolyteStation) -> None:
        super().__init__(server)
        self.station = station

    def get_Description(self, *, metadata: Any) -> str:
        info = self.station.info()
        return json.dumps({"emulated": True, "instruments": {self.station.name: info}}, default=str)


def make_emulator_server(
    *, time_scale: float = 0.0, seed: int | None = None, fault_rate: float | None = None
) -> SilaServer:
    """A SiLA 2 server (not started) in front of a fresh emulated station."""
    from bigmap import __version__

    config = StationConfig(time_scale=time_scale, seed=seed)
    if fault_rate is not None:
        config.fault_rate = fault_rate
        config.bubble_rate = fault_rate
    station = EmulatedElectrolyteStation(config=config)
    server = SilaServer(
        server_name="bigmap emulated electrolyte station",
        server_type="BigmapEmulatedStation",
        server_description="bigmap's emulated ASAB-like electrolyte station (emulated hardware: "
        "its results are not measurements)",
        server_version=__version__.split("+")[0].replace("-", "_"),
        server_vendor_url="https://github.com/bigmap",
    )
    server.set_feature_implementation(StationFeature, StationImpl(server, station))
    server.set_feature_implementation(EmulatorInfoFeature, EmulatorInfoImpl(server, station))
    return server
