"""The virtual lab through a real broker (``live_one``): the electrolyte station, the cell line
and the analysis capability; raw files re-read; instrument states and failures."""

from __future__ import annotations

import base64
import copy
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from bigmap.analysis import read_cycler_file
from bigmap.client import CalculationFailed, InputError, RequestFailed
from bigmap.schemas import formulation as fm
from bigmap.tenants.lab import tenant
from bigmap.tenants.lab.instrument import InstrumentBusy, InstrumentOffline, InstrumentState
from bigmap.tenants.lab.station import (
    Calibrate,
    EmulatedElectrolyteStation,
    MeasureConductivity,
    StationConfig,
    fit_series_resistance,
    read_peis,
)
from bigmap.tenants.lab.tenant import build_tenant
from tests.conftest import CYCLER_FILES
from tests.conftest import FINALES as FINALES_DATA

FINALES = FINALES_DATA / "examples"
NEWARE = CYCLER_FILES / "nw_regular_export_ife_example.csv"


@pytest.fixture(scope="module")
def lab(live_one):
    """The virtual-lab worker serving the broker; yields (client, tenant id). Its station has
    no random faults: those are tested on their own (test_station_failures...)."""
    c = live_one.client("alice")
    stop = threading.Event()
    lab_tenant = build_tenant(
        station=EmulatedElectrolyteStation(config=StationConfig(fault_rate=0.0, bubble_rate=0.0))
    )
    t = threading.Thread(
        target=lab_tenant.serve,
        args=(c,),
        kwargs={"stop": stop, "install_signals": False, "poll": 1},
        daemon=True,
    )
    t.start()
    tid = None
    for _ in range(300):
        # other modules on the same broker may run a virtual-lab of another user (bob's in
        # test_first_hour): this one is alice's
        mine = [x for x in c.tenants() if x["name"] == "virtual-lab" and x["owner"] == "alice"]
        if mine:
            tid = mine[0]["id"]
            break
        time.sleep(0.1)
    assert tid, "the virtual-lab tenant did not register"
    yield c, tid
    stop.set()
    t.join(30)


def _ask(c, tid, quantity, method, params, timeout=240):
    req = c.create_request(quantity, method, params, tenant_id=tid)
    return c.wait_result(req["id"], timeout=timeout)


def test_flow_and_conductivity_through_the_broker(lab):
    c, tid = lab
    form = fm.hte_to_formulation(0.4, 1.0)
    res = _ask(c, tid, "electrolyte", "flow", {"electrolyte": {"formulation": form}, "volume": 4.0})
    out = res["data"]["electrolyte"]
    assert out["meta"]["success"] and out["volume"] == 4.0
    assert len(out["stock_solutions"]) == 4
    r, conc = fm.formulation_to_hte(out["formulation"])  # what was actually dosed
    assert r == pytest.approx(0.4, abs=0.01) and conc == pytest.approx(1.0, rel=0.02)
    prov = res["provenance"]
    assert prov["emulated"] is True
    assert prov["instruments"]["virtual-asab"]["emulated"] is True

    res = _ask(
        c, tid, "conductivity", "two_electrode", {"formulation": form, "temperature": 298.15}
    )
    cond = res["data"]["conductivity"]
    assert len(cond["values"]) == 3
    # the HTE data near (r = 0.4, c = 1.0 mol/kg) at 25 °C: about 0.7-0.9 S/m
    assert 0.5 < np.mean(cond["values"]) < 1.1
    assert abs(cond["temperature"] - 298.15) < 0.5
    assert res["provenance"]["instruments"]["virtual-asab"]["calibration"]
    # the raw spectra came with the result; the conductivity is re-derived from one of them
    spectra = [f for f in res["files"] if f["name"].endswith(".mpt")]
    assert len(spectra) == 3
    raw = c.download(spectra[0]["id"])
    f, z = read_peis(raw)
    r0, _, resid = fit_series_resistance(f, z)
    an = res["provenance"]["analysis"]
    kappa = an["cell_constant_per_m"] / (r0 - an["lead_resistance_ohm"])
    assert kappa == pytest.approx(cond["values"][0], rel=1e-6)
    assert resid < 0.02


def test_conductivity_outside_the_data_fails_with_a_reason(lab):
    c, tid = lab
    # EC/EMC 1:1 by mass: the station's stocks are 3:7 blends
    moles = {"LiPF6": 0.1, "EC": 0.5 / 0.088062, "EMC": 0.5 / 0.104105}
    form = fm.formulation_from_mole_fractions(moles)
    req = c.create_request(
        "conductivity", "two_electrode", {"formulation": form, "temperature": 298.15}, tenant_id=tid
    )
    with pytest.raises(RequestFailed, match="EMC"):
        c.wait_result(req["id"], timeout=60)
    assert c.request(req["id"])["status"] == "failed"


def test_cell_line_through_the_broker(lab):
    c, tid = lab
    asm = json.loads((FINALES / "requests/cell_assembly/autobass_assembly.json").read_text())
    params = asm["parameters"]["autobass_assembly"]
    params["batch_volume"] = 2
    res = _ask(c, tid, "cell_assembly", "autobass_assembly", params)
    cells = [b["cell_info"]["uuid"] for b in res["data"]["batch_output"]]
    assert len(cells) == 2 and cells[0] != cells[1]

    cyc = json.loads((FINALES / "requests/capacity/cycling.json").read_text())
    p = cyc["parameters"]["cycling"]
    p.update(
        number_cycles=12,
        repetions_formation_cycle=1,
        c_rate_charge_formation=0.1,
        c_rate_discharge_formation=0.1,
        CV_I_cutoff_formation=0.00005,
        CV_I_cutoff=0.0001,
    )
    runs = {}
    for cell in cells:
        q = copy.deepcopy(p)
        q["cell_info"]["uuid"] = cell
        runs[cell] = _ask(c, tid, "capacity", "cycling", q)
    res = runs[cells[0]]
    d = res["data"]
    assert len(d["capacity_list"]) == 2 * 13
    assert d["capacity_list"][1] == pytest.approx(0.0015, rel=0.1)  # the 1.5 mA h cell
    assert d["capacity_vector_variance"] < 0
    assert res["provenance"]["emulated"] is True
    # the raw file is a Maccor export; reading it back gives the reported capacities
    raw = [f for f in res["files"] if f["name"].endswith(".txt")][0]
    content = c.download(raw["id"])
    assert content.startswith(b"Today's Date:")
    import tempfile

    with tempfile.TemporaryDirectory() as td:
        path = Path(td) / raw["name"]
        path.write_bytes(content)
        df = read_cycler_file(path)
    g = df.groupby("cycle")
    back = [
        x
        for pair in zip(
            g["charge_capacity_Ah"].max(), g["discharge_capacity_Ah"].max(), strict=True
        )
        for x in pair
    ]
    assert back == pytest.approx(d["capacity_list"], rel=1e-9)
    # cell-to-cell variation: two cells of one batch differ
    q2 = runs[cells[1]]["data"]["capacity_list"]
    assert q2[1] != pytest.approx(d["capacity_list"][1], rel=1e-4)

    # the analysis capability on the stored raw file gives the same figures of merit
    fom = _ask(
        c, tid, "cycling_analysis", "figures_of_merit", {"file_id": raw["id"], "name": raw["name"]}
    )
    assert fom["data"]["figures_of_merit"]["discharge_capacity_Ah"] == pytest.approx(
        d["figures_of_merit"]["discharge_capacity_Ah"]
    )
    assert any(f["name"].endswith(".parquet") for f in fom["files"])


def test_analysis_capability_on_a_real_neware_file(lab):
    c, tid = lab
    body = {
        "content_base64": base64.b64encode(NEWARE.read_bytes()).decode(),
        "name": NEWARE.name,
        "delta_q_cycles": [2, 20],
    }
    res = _ask(c, tid, "cycling_analysis", "figures_of_merit", body)
    fom = res["data"]["figures_of_merit"]
    assert fom["cycles"] == list(range(1, 21))
    assert fom["discharge_capacity_Ah"][0] == pytest.approx(0.33067, abs=1e-5)
    bad = {"content_base64": base64.b64encode(b"not a cycler file").decode(), "name": "x.bin"}
    req = c.create_request("cycling_analysis", "figures_of_merit", bad, tenant_id=tid)
    with pytest.raises(RequestFailed, match="x.bin"):
        c.wait_result(req["id"], timeout=60)


def test_life_model_through_the_broker(lab):
    """The shipped early-life model: a cell's first b cycles through ``capacity/cycling``, its
    prediction through ``degradationEOL/degradation_model``, then the same cell cycled on to
    its end of life: the measured life lies in the predicted 95 % interval."""
    from bigmap.tenants.lab.tenant import LIFE_MODEL

    c, tid = lab
    assert LIFE_MODEL.exists(), "the trained model ships in the package"
    a, b = json.loads(LIFE_MODEL.read_text())["cycles"]
    cyc = json.loads((FINALES / "requests/capacity/cycling.json").read_text())
    p = cyc["parameters"]["cycling"]  # a 1.5 mA h cell; the model was trained on 5 mA h cells
    p.update(
        number_cycles=b,
        repetions_formation_cycle=0,
        CV_I_cutoff=0.0001,
        c_rate_charge=3.0,
        I_max=0.005,
    )
    p["cell_info"]["uuid"] = "life-test-cell"
    d = _ask(c, tid, "capacity", "cycling", p)["data"]
    req = json.loads((FINALES / "requests/degradationEOL/degradation_model.json").read_text())
    q = req["parameters"]["degradation_model"]
    q.update(
        input_cycles=d["capacity_list"][1::2],
        capacity_vector_variance=d["capacity_vector_variance"],
        delta_coulombic_efficiency=d["delta_coulombic_efficiency"],
        voltage_gap_charge_discharge=d["voltage_gap_charge_discharge"],
    )
    q.setdefault("cell_info", {"uuid": "life-test-cell"})
    res = _ask(c, tid, "degradationEOL", "degradation_model", q)
    out = res["data"]["degradationEOL"]
    assert res["provenance"]["model"]["cycles"] == [a, b]
    lo, hi = out["interval95"]
    assert b < lo < out["end_of_life"] < hi
    assert out["end_of_life_uncertainty"] > 0
    assert len(out["capacity_trajectory"]) == len(out["capacity_trajectory_uncertainty"]) > 0

    # the same cell (same id: same variation) cycled until PyBaMM's 60 % safety stop
    p["number_cycles"] = 600
    full = _ask(c, tid, "capacity", "cycling", p, timeout=600)["data"]
    assert full["capacity_list"][: 2 * b] == pytest.approx(d["capacity_list"], rel=1e-9)
    life = full["figures_of_merit"]["cycle_at_80pct_retention"]
    assert life is not None and lo <= life <= hi, (life, out["end_of_life"], lo, hi)
    assert abs(out["end_of_life"] - life) / life < 0.25

    # bad requests fail with the reason
    for bad, why in (
        ({**q, "input_cycles": q["input_cycles"][: b - 1]}, f"first {b} cycles"),
        ({**q, "input_cycles": [-1.0] * b}, "positive"),
    ):
        r = c.create_request("degradationEOL", "degradation_model", bad, tenant_id=tid)
        with pytest.raises(RequestFailed, match=why):
            c.wait_result(r["id"], timeout=60)


def test_life_model_missing_fails_clearly(monkeypatch, tmp_path):
    import importlib

    module = importlib.import_module("bigmap.tenants.lab.tenant")  # (the package's `tenant`
    monkeypatch.setattr(module, "LIFE_MODEL", tmp_path / "no_model.json")  # is the Tenant)
    ex = json.loads((FINALES / "requests/degradationEOL/degradation_model.json").read_text())
    params = {**ex["parameters"]["degradation_model"], "capacity_vector_variance": -8.0}
    with pytest.raises(CalculationFailed, match="no trained life model"):
        tenant.run_local("degradationEOL", "degradation_model", params)


# ----------------------------------------------------------------------------- without a broker


@pytest.mark.slow  # science: seconds to minutes (left out of make test-fast)
def test_instrument_states_and_commands():
    st = EmulatedElectrolyteStation(config=StationConfig(seed=3))
    assert st.state is InstrumentState.offline
    with pytest.raises(InstrumentOffline):
        st.execute(Calibrate())
    st.connect()
    assert st.state is InstrumentState.idle
    cal = {c.quantity: c for c in st.calibration()}
    assert cal["cell constant"].value == pytest.approx(100, rel=0.1)
    with pytest.raises(Exception, match="knows no command"):
        st.execute({"command": "self_destruct"})
    # busy: a second command while one runs
    st2 = EmulatedElectrolyteStation(config=StationConfig(seed=4, time_scale=0.002))
    st2.connect()
    form = fm.hte_to_formulation(0.5, 1.0)
    th = threading.Thread(
        target=st2.execute, args=(MeasureConductivity(formulation=form, temperature=320.0),)
    )
    th.start()
    for _ in range(100):
        if st2.state is InstrumentState.busy:
            break
        time.sleep(0.01)
    with pytest.raises(InstrumentBusy):
        st2.execute(Calibrate())
    th.join(30)
    assert st2.state is InstrumentState.idle
    assert st2.info()["emulator"]["emulated_time_s"] > 1000  # temperature step + spectra


def test_failures_are_reported_with_their_reason():
    faulty = build_tenant(
        station=EmulatedElectrolyteStation(config=StationConfig(fault_rate=1.0, seed=1)),
        name="virtual-lab-faulty",
    )
    form = fm.hte_to_formulation(0.3, 0.8)
    with pytest.raises(CalculationFailed, match="thermostat|syringe"):
        faulty.run_local("conductivity", "two_electrode", {"formulation": form, "temperature": 300})
    station = faulty.instruments["station"]
    assert station.state is InstrumentState.idle  # reset after the fault
    bubbly = build_tenant(
        station=EmulatedElectrolyteStation(config=StationConfig(bubble_rate=0.5, seed=2)),
        name="virtual-lab-bubbly",
    )
    with pytest.raises(CalculationFailed, match="bubble"):
        for _ in range(10):
            bubbly.run_local(
                "conductivity", "two_electrode", {"formulation": form, "temperature": 300}
            )
    with pytest.raises(InputError, match="outside"):
        tenant.run_local(
            "conductivity", "two_electrode", {"formulation": fm.hte_to_formulation(0.5, 3.5)}
        )
    cyc = json.loads((FINALES / "requests/capacity/cycling.json").read_text())
    p = cyc["parameters"]["cycling"]  # the example's CV cut-off of 1 A for a 1.5 mA h cell
    with pytest.raises(InputError, match="CV cut-off"):
        tenant.run_local("capacity", "cycling", p)


# ----------------------------------------------------------------------------- the engine


@pytest.mark.slow  # science: seconds to minutes (left out of make test-fast)
def test_the_engine_runs_a_whole_cycler_test():
    """``cell.simulate_cycling`` with what the cycler needs: formation then cycling as one run
    from an empty cell, a step PyBaMM skips, an output period, a capacity termination."""
    from bigmap.tenants import cell
    from bigmap.tenants.lab import cycler as phys

    var = phys.cell_variation("engine-test")
    cycling = [
        "Discharge at 1C until 2.5 V",  # nothing to discharge right after formation: skipped
        "Rest for 5 minutes",
        "Charge at 2C until 4.2 V",
        "Hold at 4.2 V until C/20",
    ]
    summary, cycles = cell.simulate_cycling(
        {
            "parameter_set": "OKane2022",
            "model": "SPM",
            "degradation": phys.DEGRADATION.model_dump(),
            "overrides": {k: var[k] for k in phys.VARIED},
            "formation": ["Charge at 0.5C until 4.2 V", "Discharge at 0.5C until 2.5 V"],
            "formation_cycles": 1,
            "experiment": cycling,
            "cycles": 3,
            "initial_soc": 0.0,
            "period": 60.0,
            "rtol": 1e-4,
            "atol": 1e-6,
        }
    )
    meta = summary["meta"]
    assert len(cycles) == 4 and meta["cycles_completed"] == 4 and meta["formation_cycles"] == 1
    assert [r["step"] for r in cycles[0]] == [
        "Charge at 0.5C until 4.2 V",
        "Discharge at 0.5C until 2.5 V",
    ]
    # an empty cell: the formation charge fills the whole 5 A h stack
    assert 4.5 < summary["charge_capacity"][0] < 5.5
    assert [r["index"] for r in cycles[1]] == [1, 2, 3]  # the skipped discharge is left out
    assert [r["step"] for r in cycles[1]] == cycling[1:]
    assert [r["index"] for r in cycles[2]] == [0, 1, 2, 3]
    assert summary["discharge_capacity"][1] == 0 and summary["discharge_capacity"][2] > 4
    # retention counts from the first cycle after formation that discharged
    assert summary["capacity_retention"][2] == 1.0
    dt = np.concatenate([np.diff(r["time"]) for c in cycles for r in c])
    assert dt.max() <= 60 + 1e-6 and np.median(dt) == pytest.approx(60)
    t = np.concatenate([r["time"] for c in cycles for r in c])
    assert np.all(np.diff(t) >= 0)

    # the capacity termination stops a long test early (6C charging ages fast)
    recs = phys.run_cell(
        phys.fast_charge_cycle(6.0, 0.4, 3.0), 200, variation=var, termination="98% capacity"
    )
    assert 1 < len(recs) < 60
    assert recs[0][0]["current"].mean() > 0  # a cycler's sign: charge positive

    with pytest.raises(InputError, match="termination"):
        cell.simulate_cycling(
            {
                "parameter_set": "OKane2022",
                "model": "SPM",
                "experiment": cycling,
                "cycles": 2,
                "termination": "when it feels tired",
            }  # fmt: skip
        )
    with pytest.raises(ValueError, match="formation"):
        cell.CyclingParameters(formation_cycles=2)
