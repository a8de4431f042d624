"""SiLA 2 devices as bigmap tenants, over real gRPC on loopback: SiLA 2 servers written in
the tests (``tests/sila_devices.py``: a conductivity meter and a cycler channel, each in its
own process) and bigmap's emulated station behind its SiLA 2 face, driven by requests through
a live broker; bad mapping files; a device that disconnects mid-command."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from bigmap.client import RequestFailed
from bigmap.schemas import formulation as fm
from bigmap.tenants.sila.adapter import build_sila_tenant
from bigmap.tenants.sila.mapping import MappingError, load_mapping, parse_mapping
from tests.conftest import FINALES

HERE = Path(__file__).resolve().parent
DEVICES = HERE / "sila_devices.py"
REPO = HERE.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Device:
    """A test SiLA server in a child process (killable, restartable on the same port)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> Device:
        self.proc = subprocess.Popen(
            [sys.executable, str(DEVICES), self.kind, str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("ready"), line
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def meter():
    d = Device("meter").start()
    yield d
    d.kill()


@pytest.fixture
def cycler():
    d = Device("cycler").start()
    yield d
    d.kill()


METER_MAPPING = {
    "tenant": {"name": "test-meter"},
    "status": {"properties": ["ConductivityMeter.SensorStatus"], "poll_s": 1},
    "capabilities": [
        {
            "quantity": "conductivity",
            "method": "sila_meter",
            "command": "ConductivityMeter.MeasureConductivity",
            "parameters": {
                "SampleTemperature": {"from": "params.temperature", "unit": "K"},
                "Replicates": {"from": "params.replicates", "default": 3},
                "SampleName": {"from": "params.sample"},
            },
            "result": {
                "conductivity": {"from": "response.Conductivities", "unit": "S/m"},
                "temperature": {"from": "response.MeasuredTemperature", "unit": "K"},
                "cell_constant": {"from": "response.CellConstant", "unit": "1/m"},
                "sample": {"from": "params.sample"},
            },
            "errors": {"ElectrodeNotImmersed": "input_error"},
        }
    ],
}

CYCLER_MAPPING = {
    "tenant": {"name": "test-cycler"},
    "status": {"properties": ["CyclerChannel.ChannelState", "CyclerChannel.CellVoltage"]},
    "capabilities": [
        {
            "quantity": "capacity",
            "method": "sila_channel",
            "command": "CyclerChannel.RunCycling",
            "parameters": {
                "Cycles": {"from": "params.cycles"},
                "ChargeCurrent": {"from": "params.current", "unit": "A"},
                "DischargeCurrent": {"from": "params.current", "unit": "A"},
                "UpperVoltage": {"value": 4.2, "unit": "V"},
                "LowerVoltage": {"value": 3.0, "unit": "V"},
                "StepSeconds": {"from": "params.step_time", "unit": "ms"},
            },
            "result": {
                "discharge_capacity": {"from": "response.DischargeCapacities", "unit": "A*h"},
                "charge_capacity": {"from": "response.ChargeCapacities", "unit": "C"},
            },
            "files": [
                {"from": "response.RawData", "name": "cycling.csv", "media_type": "text/csv"}
            ],
        }
    ],
}


def mapping_file(tmp_path: Path, doc: dict, device: Device, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    full = {"server": {"host": "127.0.0.1", "port": device.port, "insecure": True}, **doc}
    path.write_text(yaml.safe_dump(full))
    return path


class Worker:
    """``bigmap worker --sila MAPPING`` in a child process, as a user runs it."""

    def __init__(self, live, mapping: Path, name: str) -> None:
        env = {**os.environ, "BIGMAP_BROKER_URL": live.url, "BIGMAP_TOKEN": live.tokens["bob"]}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bigmap.cli", "worker", "--sila", str(mapping), "--poll", "1"],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        with live.client("bob") as c:
            deadline = time.monotonic() + 90
            while not [t for t in c.tenants() if t["name"] == name and t["alive"]]:
                assert self.proc.poll() is None, self.proc.communicate()[0]
                assert time.monotonic() < deadline, f"{name} did not register"
                time.sleep(0.2)

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, out
        return out


def _tenant(client, name: str) -> dict:
    return next(t for t in client.tenants() if t["name"] == name)


# ----------------------------------------------------------------------------- mapping files


def test_mapping_errors_name_the_field(tmp_path: Path) -> None:
    base = {"server": {"host": "127.0.0.1", "port": 1, "insecure": True}, **METER_MAPPING}

    def problems(doc: dict) -> str:
        with pytest.raises(MappingError) as exc:
            parse_mapping(doc, "m.yaml")
        return str(exc.value)

    bad = yaml.safe_load(yaml.safe_dump(base))
    bad["capabilities"][0]["parameters"]["SampleTemperature"]["sila_units"] = "degC"
    msg = problems(bad)
    assert "$.capabilities[0].parameters.SampleTemperature.sila_units" in msg
    assert "did you mean 'sila_unit'" in msg

    bad = yaml.safe_load(yaml.safe_dump(base))
    bad["capabilities"][0]["result"]["conductivity"]["unit"] = "S/mm2x"
    assert "$.capabilities[0].result.conductivity.unit" in problems(bad)

    bad = yaml.safe_load(yaml.safe_dump(base))
    bad["capabilities"][0]["parameters"]["SampleTemperature"]["sila_unit"] = "m"
    msg = problems(bad)
    assert "$.capabilities[0].parameters.SampleTemperature.sila_unit" in msg
    assert "cannot be converted" in msg

    bad = yaml.safe_load(yaml.safe_dump(base))
    bad["capabilities"][0]["parameters"]["SampleName"] = {"from": "request.sample"}
    assert "$.capabilities[0].parameters.SampleName.from" in problems(bad)

    bad = yaml.safe_load(yaml.safe_dump(base))
    bad["capabilities"][0]["parameters"]["Replicates"] = {"from": "params.n", "value": 3}
    assert "exactly one of 'from'" in problems(bad)

    bad = yaml.safe_load(yaml.safe_dump(base))
    bad["server"]["port"] = 70000
    assert "$.server.port" in problems(bad)

    bad = yaml.safe_load(yaml.safe_dump(base))
    bad["capabilities"][0]["command"] = "MeasureConductivity"
    assert "$.capabilities[0].command" in problems(bad)

    path = tmp_path / "broken.yaml"
    path.write_text("server: [unclosed\n")
    with pytest.raises(MappingError, match="not valid YAML"):
        load_mapping(path)


@pytest.mark.integration  # child processes / a server of its own
def test_mapping_checked_against_the_device(tmp_path: Path, meter: Device) -> None:
    doc = yaml.safe_load(yaml.safe_dump(METER_MAPPING))
    doc["capabilities"][0]["command"] = "ConductivityMeter.MeasureConductivty"
    doc["capabilities"][0]["parameters"]["SampleTemperature"]["sila_unit"] = "K"
    doc["capabilities"][0]["result"]["temperature"]["from"] = "response.Temperature"
    with pytest.raises(MappingError) as exc:
        build_sila_tenant(load_mapping(mapping_file(tmp_path, doc, meter)))
    msg = str(exc.value)
    assert "$.capabilities[0].command" in msg and "did you mean 'MeasureConductivity'" in msg

    doc["capabilities"][0]["command"] = "ConductivityMeter.MeasureConductivity"
    del doc["capabilities"][0]["parameters"]["SampleName"]
    with pytest.raises(MappingError) as exc:
        build_sila_tenant(load_mapping(mapping_file(tmp_path, doc, meter)))
    msg = str(exc.value)
    # the device measures in degC: K is not its unit
    assert "$.capabilities[0].parameters.SampleTemperature.sila_unit" in msg and "degC" in msg
    assert "$.capabilities[0].result.temperature.from" in msg and "MeasuredTemperature" in msg
    assert "needs its parameter 'SampleName'" in msg

    # a numeric response without the unit the result holds
    doc = yaml.safe_load(yaml.safe_dump(METER_MAPPING))
    del doc["capabilities"][0]["result"]["conductivity"]["unit"]
    with pytest.raises(MappingError, match=r"result\.conductivity\.unit.*mS/cm"):
        build_sila_tenant(load_mapping(mapping_file(tmp_path, doc, meter)))


@pytest.mark.integration  # child processes / a server of its own
def test_cli_refuses_a_bad_mapping_naming_the_field(tmp_path: Path, meter: Device) -> None:
    doc = yaml.safe_load(yaml.safe_dump(METER_MAPPING))
    doc["capabilities"][0]["result"]["conductivity"]["unit"] = "K"
    path = mapping_file(tmp_path, doc, meter)
    out = subprocess.run(
        [sys.executable, "-m", "bigmap.cli", "worker", "--sila", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "BIGMAP_TOKEN": "x", "BIGMAP_BROKER_URL": "http://127.0.0.1:9"},
        timeout=120,
    )
    assert out.returncode == 2, out
    assert "$.capabilities[0].result.conductivity.unit" in out.stderr + out.stdout


@pytest.mark.integration  # child processes / a server of its own
def test_discover_prints_features_and_a_valid_skeleton(tmp_path: Path, meter: Device) -> None:
    out = tmp_path / "skeleton.yaml"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "bigmap.cli",
            "sila",
            "discover",
            f"127.0.0.1:{meter.port}",
            "--insecure",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "observable command ConductivityMeter.MeasureConductivity" in r.stdout
    assert "parameter SampleTemperature: Real [degC] (-20..60)" in r.stdout
    assert "observable property ConductivityMeter.SensorStatus: String" in r.stdout
    m = load_mapping(out)
    assert m.capabilities[0].command == "ConductivityMeter.MeasureConductivity"
    assert m.status.properties == ["ConductivityMeter.SensorStatus"]
    # the skeleton's units are the device's: the skeleton works as it is
    tenant = build_sila_tenant(m)
    try:
        (key,) = tenant.capabilities
        assert key == ("conductivity_meter", "measure_conductivity")
    finally:
        tenant.sila.stop()


def _features() -> dict:
    from bigmap.tenants.sila.emulator import FEATURES
    from bigmap.tenants.sila.fdl import parse_feature

    out = {}
    for f in FEATURES.glob("*.sila.xml"):
        info = parse_feature(f.read_text())
        out[info.identifier] = info
    return out


def _lab_doc() -> dict:
    from bigmap.tenants.sila.emulator import LAB_MAPPING

    return yaml.safe_load(LAB_MAPPING.read_text())


def _cap(doc: dict, quantity: str) -> dict:
    return next(c for c in doc["capabilities"] if c["quantity"] == quantity)


def test_the_lab_mapping_fits_the_emulators_features() -> None:
    from bigmap.tenants.sila.mapping import check_against_device

    check_against_device(parse_mapping(_lab_doc(), "lab-emulator.yaml"), _features())


@pytest.mark.parametrize(
    "change, where, says",
    [
        (
            lambda c: (
                c["result"].__setitem__("x", {"from": "analysis.capacity_list"})
                or c.pop("analysis")
            ),
            "$.capabilities[2].result.x.from",
            "needs an 'analysis' section",
        ),
        (
            lambda c: c["analysis"].__setitem__("cycler_file", "params.raw"),
            "$.capabilities[2].analysis.cycler_file",
            "comes from a response",
        ),
        (
            lambda c: c["analysis"].__setitem__("format", "macor"),
            "$.capabilities[2].analysis.format",
            "did you mean 'maccor'",
        ),
        (
            lambda c: c["analysis"].__setitem__("formation_cycle", {"value": 0}),
            "$.capabilities[2].analysis.formation_cycle",
            "did you mean 'formation_cycles'",
        ),
        (
            lambda c: c["files"][0].__setitem__("name", "{RawFileName"),
            "$.capabilities[2].files[0].name",
            "not a name template",
        ),
    ],
)
def test_analysis_and_file_name_mistakes_name_the_field(change, where, says) -> None:
    doc = _lab_doc()
    change(_cap(doc, "capacity"))
    with pytest.raises(MappingError) as err:
        parse_mapping(doc, "lab.yaml")
    assert any(p == where and says in m for p, m in err.value.problems), err.value.problems


@pytest.mark.parametrize(
    "change, where, says",
    [
        (
            lambda c: c["analysis"].__setitem__("cycler_file", "response.RawDta"),
            "$.capabilities[2].analysis.cycler_file",
            "did you mean 'RawData'",
        ),
        (
            lambda c: c["analysis"].__setitem__("cycler_file", "response.Channels"),
            "$.capabilities[2].analysis.cycler_file",
            "not one Binary or String",
        ),
        (
            lambda c: c["analysis"].__setitem__(
                "formation_cycles", {"from": "response.RawFileName"}
            ),
            "$.capabilities[2].analysis.formation_cycles.from",
            "not an Integer",
        ),
        (
            lambda c: c["files"][0].__setitem__("name", "{RawFilename}.txt"),
            "$.capabilities[2].files[0].name",
            "did you mean 'RawFileName'",
        ),
    ],
)
def test_analysis_checked_against_the_device(change, where, says) -> None:
    from bigmap.tenants.sila.mapping import check_against_device

    doc = _lab_doc()
    change(_cap(doc, "capacity"))
    with pytest.raises(MappingError) as err:
        check_against_device(parse_mapping(doc, "lab.yaml"), _features())
    assert any(p == where and says in m for p, m in err.value.problems), err.value.problems


def test_generated_schemas_describe_the_items_of_each_lists() -> None:
    """A new capability over the station: its generated parameter and result schemas type
    every property of a formulation's items, so the broker refuses a bad item by its path."""
    import jsonschema

    from bigmap.tenants.sila.adapter import CommandPlan

    doc = _lab_doc()
    cap = {**_cap(doc, "conductivity"), "method": "sila_station"}
    m = parse_mapping({**doc, "capabilities": [cap]}, "lab.yaml")
    feat = _features()["ElectrolyteStation"]
    plan = CommandPlan(m.capabilities[0], 0, feat, feat.commands["MeasureConductivity"])
    good = {"formulation": fm.hte_to_formulation(0.5, 1.0), "temperature": 298.15}
    jsonschema.validate(good, plan.param_schema)
    bad = {"formulation": [{"chemical": {"SMILES": "O"}, "fraction": "half"}]}
    errors = {
        "/".join(map(str, e.absolute_path)) + ":" + e.validator
        for e in jsonschema.Draft202012Validator(plan.param_schema).iter_errors(bad)
    }
    assert "formulation/0/chemical:required" in errors  # no InChIKey
    assert "formulation/0/fraction:type" in errors
    assert "formulation/0:required" in errors  # no fraction_type
    items = plan.result_schema["properties"]["conductivity"]["properties"]["prepared_formulation"][
        "items"
    ]
    assert items["properties"]["chemical"]["properties"]["InChIKey"] == {"type": "string"}
    assert items["properties"]["fraction"] == {"type": "number"}
    assert set(items["required"]) == {"chemical", "fraction", "fraction_type"}


# ----------------------------------------------------------------------------- through a broker


def test_meter_through_the_broker(live_one, tmp_path: Path, meter: Device) -> None:
    path = mapping_file(tmp_path, METER_MAPPING, meter)
    worker = Worker(live_one, path, "test-meter")
    try:
        with live_one.client("alice") as c:
            req = c.create_request(
                "conductivity",
                "sila_meter",
                {"temperature": 308.15, "sample": "B7"},
                tenant_id=_alice_tenant(c),
            )
            res = c.wait_result(req["id"], timeout=60)
            data = res["data"]
            # the device's law at 35 °C in mS/cm, converted to S/m (x 0.1)
            import math

            kappa = 10.9 * math.exp(-15000 / 8.314462618 * (1 / 308.15 - 1 / 298.15))
            assert data["conductivity"][1] == pytest.approx(0.1 * kappa, rel=1e-9)
            assert data["temperature"] == pytest.approx(308.15)
            assert data["cell_constant"] == pytest.approx(102.0)
            assert data["sample"] == "B7"
            prov = res["provenance"]
            assert prov["instrument"]["protocol"] == "SiLA 2"
            assert prov["instrument"]["server_name"] == "Test meter (emulated)"

            # the SiLA message of a defined execution error, as an input error
            req = c.create_request(
                "conductivity",
                "sila_meter",
                {"temperature": 298.15, "sample": "dry"},
                tenant_id=_alice_tenant(c),
            )
            with pytest.raises(RequestFailed, match="ElectrodeNotImmersed: conductance below 1 nS"):
                c.wait_result(req["id"], timeout=60)
            assert c.request(req["id"])["status"] == "failed"
            # an undefined execution error
            req = c.create_request(
                "conductivity",
                "sila_meter",
                {"temperature": 298.15, "sample": "crash"},
                tenant_id=_alice_tenant(c),
            )
            with pytest.raises(
                RequestFailed, match="undefined execution error: RuntimeError - ADC overflow"
            ):
                c.wait_result(req["id"], timeout=60)
            # outside the device's SiLA constraints (60 °C max): refused by the broker
            from bigmap.client import ValidationFailed

            with pytest.raises(ValidationFailed, match="temperature"):
                c.create_request(
                    "conductivity",
                    "sila_meter",
                    {"temperature": 340.0, "sample": "x"},
                    tenant_id=_alice_tenant(c),
                )
            # the observable property in the tenant's status, sent with the heartbeat
            # (the subscription's first value reaches the broker with the next beat: wait)
            deadline = time.monotonic() + 60
            while True:
                status = _tenant(c, "test-meter")["software"]["status"]
                props = status.get("properties") or {}
                if "ConductivityMeter.SensorStatus" in props or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert status["connected"] is True
            assert props["ConductivityMeter.SensorStatus"] in ("idle", "measuring"), status
    finally:
        worker.stop()


def _alice_tenant(c) -> str:
    mine = [t for t in c.tenants() if t["name"] == "alice-planner"]
    if mine:
        return mine[0]["id"]
    return c.register_tenant({"name": "alice-planner", "kind": "planner"})["id"]


def test_cycler_disconnect_mid_command_and_reconnect(
    live_one, tmp_path: Path, cycler: Device
) -> None:
    path = mapping_file(tmp_path, CYCLER_MAPPING, cycler)
    worker = Worker(live_one, path, "test-cycler")
    try:
        with live_one.client("alice") as c:
            me = _alice_tenant(c)
            params = {"cycles": 3, "current": 0.002, "step_time": 50}
            res = c.wait_result(
                c.create_request("capacity", "sila_channel", params, tenant_id=me)["id"], timeout=60
            )
            d = res["data"]
            assert d["discharge_capacity"][0] == pytest.approx(2 * 0.995 / 1000)  # 2 mAh -> A h
            assert d["charge_capacity"][0] == pytest.approx(2 * 3.6)  # 2 mAh -> coulomb
            assert [f["name"] for f in res["files"]] == ["cycling.csv"]

            # a long run; the device dies mid-command
            req = c.create_request(
                "capacity",
                "sila_channel",
                {**params, "cycles": 400, "step_time": 100},
                tenant_id=me,
            )
            deadline = time.monotonic() + 60
            while True:
                r = c.request(req["id"])
                progress = (r.get("status_info") or {}).get("progress") or {}
                if r["status"] == "claimed" and progress.get("fraction"):
                    break
                assert time.monotonic() < deadline, r
                time.sleep(0.2)
            cycler.kill()
            with pytest.raises(RequestFailed, match="lost the connection to the SiLA server"):
                c.wait_result(req["id"], timeout=60)
            assert worker.proc.poll() is None  # the worker survives
            deadline = time.monotonic() + 30
            while _tenant(c, "test-cycler")["software"]["status"]["connected"]:
                assert time.monotonic() < deadline
                time.sleep(0.3)

            # the device comes back: the next request reconnects
            cycler.start()
            res = c.wait_result(
                c.create_request("capacity", "sila_channel", params, tenant_id=me)["id"], timeout=60
            )
            assert len(res["data"]["discharge_capacity"]) == 3
    finally:
        worker.stop()


# ----------------------------------------------------------------------------- the emulated lab


def test_emulated_station_through_its_sila_face(live_one) -> None:
    from bigmap.tenants.sila.emulator import LAB_MAPPING, make_emulator_server

    port = free_port()
    server = make_emulator_server(seed=3, fault_rate=0.0)
    server.start_insecure("127.0.0.1", port, enable_discovery=False)
    doc = yaml.safe_load(LAB_MAPPING.read_text())
    doc["server"]["port"] = port
    doc["tenant"]["name"] = "sila-lab-test"
    tenant = build_sila_tenant(parse_mapping(doc, "lab-emulator.yaml"))
    stop = threading.Event()
    client = live_one.client("bob")
    t = threading.Thread(
        target=tenant.serve,
        args=(client,),
        kwargs={"poll": 1, "stop": stop, "install_signals": False},
        daemon=True,
    )
    t.start()
    try:
        with live_one.client("alice") as c:
            deadline = time.monotonic() + 60
            while not [x for x in c.tenants() if x["name"] == "sila-lab-test" and x["alive"]]:
                assert time.monotonic() < deadline
                time.sleep(0.2)
            formulation = fm.hte_to_formulation(0.5, 1.0)
            req = c.create_request(
                "conductivity",
                "two_electrode",
                {"formulation": formulation, "temperature": 303.15},
                tenant_id=_alice_tenant(c),
            )
            res = c.wait_result(req["id"], timeout=120)
            cond = res["data"]["conductivity"]
            assert len(cond["values"]) == 3 and all(0.1 < v < 2.0 for v in cond["values"])  # S/m
            assert cond["temperature"] == pytest.approx(303.15, abs=0.5)
            assert res["data"]["run_info"]["internal_reference"].startswith("S-")
            assert cond["prepared_formulation"][0]["chemical"]["InChIKey"]
            assert cond["analysis"]["fit_circuit"] == "L0-R0-CPE0"
            prov = res["provenance"]
            assert prov["emulated"] is True
            assert prov["instrument"]["emulator"]["emulated"] is True
            assert len([f for f in res["files"] if f["name"].endswith(".mpt")]) == 3
    finally:
        stop.set()
        t.join(30)
        tenant.sila.stop()
        server.stop(0.5)
        client.close()


# ----------------------------------------------------------------------------- one campaign, two faces

CYCLING = REPO / "src/bigmap/planner/examples/cycling.yaml"


def _campaign(live, spec_file: Path) -> tuple[list, list[dict]]:
    """Run the campaign file to its end as alice; its observations (by step) and results."""
    from bigmap.planner.runner import CampaignRunner
    from bigmap.planner.spec import load_spec

    with live.client("alice") as c:
        runner = CampaignRunner.create(c, load_spec(spec_file), poll=0.2)
        runner.run()
        assert runner.status == "completed", runner.reason
        obs = sorted(runner.h.observations, key=lambda o: o.step)
        assert len(obs) == 3 and not any(o.failed for o in obs), [o.message for o in obs]
        return obs, [c.result(o.result_id) for o in obs]


def test_the_same_campaign_file_against_virtual_lab_and_through_sila(
    live_one, tmp_path: Path
) -> None:
    """The cycling campaign file, unchanged, run twice: against ``bigmap worker virtual-lab``
    and against ``bigmap worker --sila lab-emulator.yaml`` in front of the emulator's SiLA 2
    server. Only the worker differs; the emulated cells are the same (seeded by their ids), so
    the two campaigns propose the same candidates and measure the same capacities."""
    from tests.conftest import cli_worker

    spec_text = CYCLING.read_text()
    with cli_worker(live_one, "virtual-lab", timeout=400):
        direct, direct_results = _campaign(live_one, CYCLING)

    from bigmap.tenants.sila.emulator import LAB_MAPPING, make_emulator_server

    port = free_port()
    server = make_emulator_server()
    server.start_insecure("127.0.0.1", port, enable_discovery=False)
    doc = yaml.safe_load(LAB_MAPPING.read_text())
    doc["server"]["port"] = port  # the one change: where the device listens
    mapping = tmp_path / "lab-emulator.yaml"
    mapping.write_text(yaml.safe_dump(doc))
    worker = Worker(live_one, mapping, "sila-lab")
    try:
        sila, sila_results = _campaign(live_one, CYCLING)
        # the SiLA tenant also serves the station's and the assembler's capabilities
        with live_one.client("alice") as c:
            caps = {(x["quantity"], x["method"]) for x in _tenant(c, "sila-lab")["provides"]}
            me = _alice_tenant(c)
            asm = json.loads(
                (FINALES / "examples/requests/cell_assembly/autobass_assembly.json").read_text()
            )
            params = {**asm["parameters"]["autobass_assembly"], "batch_volume": 2}
            res = c.wait_result(
                c.create_request("cell_assembly", "autobass_assembly", params, tenant_id=me)["id"],
                timeout=120,
            )
            cells = res["data"]["batch_output"]
            assert len({x["cell_info"]["uuid"] for x in cells}) == 2
            assert cells[0]["cell"] == params["cell"] and res["provenance"]["emulated"] is True
            # the cycler refuses a protocol (a SiLA defined execution error): an input error
            bad = {
                **c.request(sila[0].request_id)["parameters"]["cycling"],
                "CV_I_cutoff": 0.01,
                "I_max": None,  # null: not given (the device gets 0)
            }
            req = c.create_request("capacity", "cycling", bad, tenant_id=me)
            with pytest.raises(RequestFailed, match=r"OutsideRange: .*CV cut-off 0.01 A"):
                c.wait_result(req["id"], timeout=120)
    finally:
        worker.stop()
        server.stop(0.5)
    assert CYCLING.read_text() == spec_text
    assert {("capacity", "cycling"), ("conductivity", "two_electrode")} <= caps
    assert ("cell_assembly", "autobass_assembly") in caps

    for a, b, ra, rb in zip(direct, sila, direct_results, sila_results, strict=True):
        assert a.x == b.x  # the same proposals
        assert b.y["discharge_capacity"] == pytest.approx(a.y["discharge_capacity"], rel=1e-12)
        assert 0.001 < a.y["discharge_capacity"] < 0.0055  # A h, the 5 mA h cells
        da, db = ra["data"], rb["data"]
        assert db["capacity_list"] == pytest.approx(da["capacity_list"], rel=1e-12)
        assert len(db["capacity_list"]) == 4  # charge, discharge of 2 cycles
        assert db["figures_of_merit"]["discharge_capacity_Ah"] == pytest.approx(
            da["figures_of_merit"]["discharge_capacity_Ah"], rel=1e-12
        )
        assert db["cell_info"] == da["cell_info"] and db["formation_cycles"] == 0
        # the raw file attached, under the name the cycler gave it, read the same way
        assert [f["name"] for f in rb["files"]] == [db["raw_file"]]
        assert db["raw_file"].startswith(da["cell_info"]["uuid"])
        pa, pb = ra["provenance"], rb["provenance"]
        assert pa["emulated"] is True and pb["emulated"] is True
        assert pb["instrument"]["protocol"] == "SiLA 2"
        assert "org.bigmap/lab/BatteryCycler/v1" in pb["instrument"]["features"]
        assert pb["instrument"]["emulator"]["emulated"] is True
        assert "virtual-cycler" in pb["instrument"]["emulator"]["instruments"]
        assert pb["analysis"]["reader"] == pa["analysis"]["reader"] == "bigmap.analysis maccor"
