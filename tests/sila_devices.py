"""SiLA 2 servers written for the tests with the ``sila2`` package (its dynamic server API:
a feature definition in FDL and a ``FeatureImplementationBase`` subclass, no generated code).
They stand in for lab hardware, which the tests cannot have: a conductivity meter and one
channel of a battery cycler. Each runs in a process of its own
(``python tests/sila_devices.py meter|cycler PORT``) so a test can kill it mid-command, as a
device that loses power or its network would.

- ``ConductivityMeter`` (feature ``org.bigmap.test/measurement/ConductivityMeter/v1``):
  observable command ``MeasureConductivity(SampleTemperature [°C], Replicates, SampleName)``
  -> ``Conductivities`` [mS/cm], ``MeasuredTemperature`` [°C], ``CellConstant`` [1/cm];
  progress per replicate; a sample called ``dry`` raises the defined execution error
  ``ElectrodeNotImmersed``, one called ``crash`` an undefined one. Observable property
  ``SensorStatus`` (idle/measuring), unobservable ``SerialNumber``.
- ``CyclerChannel`` (``org.bigmap.test/cycling/CyclerChannel/v1``): observable command
  ``RunCycling(Cycles, ChargeCurrent [mA], DischargeCurrent [mA], UpperVoltage [V],
  LowerVoltage [V], StepSeconds [s])`` with the intermediate response ``CurrentCycle`` ->
  ``ChargeCapacities``/``DischargeCapacities`` [mA h] and ``RawData`` (a CSV, Binary);
  observable properties ``ChannelState`` and ``CellVoltage`` [V].

The numbers are a test device's: conductivity follows an Arrhenius law in temperature,
kappa = 10.9 mS/cm * exp(-Ea/R (1/T - 1/298.15 K)) with Ea = 15 kJ/mol (a test value of the
order of LiPF6 carbonate electrolytes, unchecked); capacity fades 0.2 % per cycle from
C0 = current × 1 h. They are emulated hardware, and the servers say so in their description.
"""

from __future__ import annotations

import csv
import io
import math
import sys
import time
from collections import namedtuple
from queue import Queue
from typing import Any

from sila2.framework import DefinedExecutionError, Feature
from sila2.server import FeatureImplementationBase, SilaServer

R_GAS = 8.314462618  # J/(mol K), CODATA 2018


def _unit(label: str, factor: float, offset: float, comps: list[tuple[str, int]]) -> str:
    parts = "".join(
        f"<UnitComponent><SIUnit>{u}</SIUnit><Exponent>{e}</Exponent></UnitComponent>"
        for u, e in comps
    )
    return (
        f"<Unit><Label>{label}</Label><Factor>{factor}</Factor><Offset>{offset}</Offset>"
        f"{parts}</Unit>"
    )


def _dtype(basic: str, *constraints: str, list_: bool = False) -> str:
    inner = f"<DataType><Basic>{basic}</Basic></DataType>"
    if constraints:
        inner = (
            f"<DataType><Constrained>{inner}<Constraints>{''.join(constraints)}"
            "</Constraints></Constrained></DataType>"
        )
    if list_:
        inner = f"<DataType><List>{inner}</List></DataType>"
    return inner


def _el(tag: str, ident: str, dtype: str, desc: str = "") -> str:
    return (
        f"<{tag}><Identifier>{ident}</Identifier><DisplayName>{ident}</DisplayName>"
        f"<Description>{desc or ident}</Description>{dtype}</{tag}>"
    )


def _feature(ident: str, category: str, body: str) -> str:
    return (
        '<Feature xmlns="http://www.sila-standard.org" SiLA2Version="1.0" FeatureVersion="1.0" '
        f'Originator="org.bigmap.test" Category="{category}">'
        f"<Identifier>{ident}</Identifier><DisplayName>{ident}</DisplayName>"
        f"<Description>{ident} of the tests</Description>{body}</Feature>"
    )


DEG_C = _unit("degC", 1, 273.15, [("Kelvin", 1)])
MS_PER_CM = _unit("mS/cm", 0.1, 0, [("Kilogram", -1), ("Meter", -3), ("Second", 3), ("Ampere", 2)])
PER_CM = _unit("1/cm", 100, 0, [("Meter", -1)])
MILLIAMPERE = _unit("mA", 0.001, 0, [("Ampere", 1)])
MAH = _unit("mAh", 3.6, 0, [("Ampere", 1), ("Second", 1)])
VOLT = _unit("V", 1, 0, [("Kilogram", 1), ("Meter", 2), ("Second", -3), ("Ampere", -1)])
SECOND = _unit("s", 1, 0, [("Second", 1)])

METER_FDL = _feature(
    "ConductivityMeter",
    "measurement",
    "<Command><Identifier>MeasureConductivity</Identifier><DisplayName>Measure Conductivity"
    "</DisplayName><Description>Measure the conductivity of the sample in the cell"
    "</Description><Observable>Yes</Observable>"
    + _el(
        "Parameter",
        "SampleTemperature",
        _dtype(
            "Real",
            DEG_C,
            "<MinimalInclusive>-20</MinimalInclusive>",
            "<MaximalInclusive>60</MaximalInclusive>",
        ),
    )
    + _el(
        "Parameter",
        "Replicates",
        _dtype(
            "Integer",
            "<MinimalInclusive>1</MinimalInclusive>",
            "<MaximalInclusive>10</MaximalInclusive>",
        ),
    )
    + _el("Parameter", "SampleName", _dtype("String"))
    + _el("Response", "Conductivities", _dtype("Real", MS_PER_CM, list_=True))
    + _el("Response", "MeasuredTemperature", _dtype("Real", DEG_C))
    + _el("Response", "CellConstant", _dtype("Real", PER_CM))
    + "<DefinedExecutionErrors><Identifier>ElectrodeNotImmersed</Identifier>"
    "</DefinedExecutionErrors></Command>"
    "<Property><Identifier>SensorStatus</Identifier><DisplayName>Sensor Status</DisplayName>"
    "<Description>idle or measuring</Description><Observable>Yes</Observable>"
    + _dtype("String")
    + "</Property>"
    "<Property><Identifier>SerialNumber</Identifier><DisplayName>Serial Number</DisplayName>"
    "<Description>serial number</Description><Observable>No</Observable>"
    + _dtype("String")
    + "</Property>"
    "<DefinedExecutionError><Identifier>ElectrodeNotImmersed</Identifier><DisplayName>"
    "Electrode Not Immersed</DisplayName><Description>The electrodes are not in the liquid."
    "</Description></DefinedExecutionError>",
)

CYCLER_FDL = _feature(
    "CyclerChannel",
    "cycling",
    "<Command><Identifier>RunCycling</Identifier><DisplayName>Run Cycling</DisplayName>"
    "<Description>Constant-current cycles between two voltages</Description>"
    "<Observable>Yes</Observable>"
    + _el(
        "Parameter",
        "Cycles",
        _dtype(
            "Integer",
            "<MinimalInclusive>1</MinimalInclusive>",
            "<MaximalInclusive>1000</MaximalInclusive>",
        ),
    )
    + _el("Parameter", "ChargeCurrent", _dtype("Real", MILLIAMPERE))
    + _el("Parameter", "DischargeCurrent", _dtype("Real", MILLIAMPERE))
    + _el("Parameter", "UpperVoltage", _dtype("Real", VOLT))
    + _el("Parameter", "LowerVoltage", _dtype("Real", VOLT))
    + _el("Parameter", "StepSeconds", _dtype("Real", SECOND))
    + _el("Response", "ChargeCapacities", _dtype("Real", MAH, list_=True))
    + _el("Response", "DischargeCapacities", _dtype("Real", MAH, list_=True))
    + _el("Response", "RawData", _dtype("Binary"))
    + _el("IntermediateResponse", "CurrentCycle", _dtype("Integer"))
    + "</Command>"
    "<Property><Identifier>ChannelState</Identifier><DisplayName>Channel State</DisplayName>"
    "<Description>idle or running</Description><Observable>Yes</Observable>"
    + _dtype("String")
    + "</Property>"
    "<Property><Identifier>CellVoltage</Identifier><DisplayName>Cell Voltage</DisplayName>"
    "<Description>the cell's voltage</Description><Observable>Yes</Observable>"
    + _dtype("Real", VOLT)
    + "</Property>",
)


def _responses(names: list[str], **values: Any) -> Any:
    return namedtuple("Responses", names)(**values)


class ConductivityMeterImpl(FeatureImplementationBase):
    feature = Feature(METER_FDL)

    def __init__(self, server: SilaServer) -> None:
        super().__init__(server)
        self._SensorStatus_producer_queue: Queue = Queue()
        self._SensorStatus_producer_queue.put("idle")
        self.cell_constant_per_cm = 1.02

    def SensorStatus_on_subscription(self, *, metadata: Any) -> None:
        return None

    def get_SerialNumber(self, *, metadata: Any) -> str:
        return "CM-TEST-0001"

    def MeasureConductivity(
        self,
        SampleTemperature: float,
        Replicates: int,
        SampleName: str,
        *,
        metadata: Any,
        instance: Any,
    ) -> Any:
        instance.begin_execution()
        self._SensorStatus_producer_queue.put("measuring")
        try:
            if SampleName == "dry":
                raise DefinedExecutionError(
                    self.feature.defined_execution_errors["ElectrodeNotImmersed"],
                    "conductance below 1 nS: the electrodes are in air",
                )
            if SampleName == "crash":
                raise RuntimeError("ADC overflow on channel 2")
            t_k = SampleTemperature + 273.15
            kappa = 10.9 * math.exp(-15000 / R_GAS * (1 / t_k - 1 / 298.15))
            values = []
            for k in range(Replicates):
                time.sleep(0.05)
                values.append(kappa * (1 + 0.001 * (k - (Replicates - 1) / 2)))
                instance.progress = (k + 1) / Replicates
            return _responses(
                ["Conductivities", "MeasuredTemperature", "CellConstant"],
                Conductivities=values,
                MeasuredTemperature=SampleTemperature,
                CellConstant=self.cell_constant_per_cm,
            )
        finally:
            self._SensorStatus_producer_queue.put("idle")


class CyclerChannelImpl(FeatureImplementationBase):
    feature = Feature(CYCLER_FDL)

    def __init__(self, server: SilaServer) -> None:
        super().__init__(server)
        self._ChannelState_producer_queue: Queue = Queue()
        self._ChannelState_producer_queue.put("idle")
        self._CellVoltage_producer_queue: Queue = Queue()
        self._CellVoltage_producer_queue.put(3.0)

    def ChannelState_on_subscription(self, *, metadata: Any) -> None:
        return None

    def CellVoltage_on_subscription(self, *, metadata: Any) -> None:
        return None

    def RunCycling(
        self,
        Cycles: int,
        ChargeCurrent: float,
        DischargeCurrent: float,
        UpperVoltage: float,
        LowerVoltage: float,
        StepSeconds: float,
        *,
        metadata: Any,
        instance: Any,
    ) -> Any:
        instance.begin_execution()
        self._ChannelState_producer_queue.put("running")
        q0 = ChargeCurrent * 1.0  # mA h: one hour of the charge current
        charge, discharge = [], []
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["cycle", "charge_capacity_mAh", "discharge_capacity_mAh"])
        try:
            for n in range(1, Cycles + 1):
                time.sleep(StepSeconds)
                qc = q0 * (1 - 0.002 * (n - 1))
                qd = qc * 0.995
                charge.append(qc)
                discharge.append(qd)
                w.writerow([n, f"{qc:.6f}", f"{qd:.6f}"])
                self._CellVoltage_producer_queue.put(LowerVoltage)
                instance.send_intermediate_response(_responses(["CurrentCycle"], CurrentCycle=n))
                instance.progress = n / Cycles
        finally:
            self._ChannelState_producer_queue.put("idle")
        return _responses(
            ["ChargeCapacities", "DischargeCapacities", "RawData"],
            ChargeCapacities=charge,
            DischargeCapacities=discharge,
            RawData=out.getvalue().encode(),
        )


def make_server(kind: str) -> SilaServer:
    impl_cls = {"meter": ConductivityMeterImpl, "cycler": CyclerChannelImpl}[kind]
    server = SilaServer(
        server_name=f"Test {kind} (emulated)",
        server_type="TestDevice",
        server_description=f"a {kind} emulated for bigmap's tests",
        server_version="1.0",
        server_vendor_url="https://example.org/bigmap-tests",
    )
    server.set_feature_implementation(impl_cls.feature, impl_cls(server))
    return server


def main(argv: list[str]) -> None:
    kind, port = argv[0], int(argv[1])
    server = make_server(kind)
    server.start_insecure("127.0.0.1", port, enable_discovery=False)
    print(f"ready {kind} {port}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
