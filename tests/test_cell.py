"""The cell-sim tenant on real PyBaMM solves: physics, the cache, Dask, bad paths, and the
multiscale chain through a real broker."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from bigmap.client import CalculationFailed, InputError
from bigmap.schemas import formulation as fm
from bigmap.tenants import cell


def run(**kw):
    summary, cycles = cell.simulate_cycling(kw)
    return summary, cycles


@pytest.mark.slow  # science: seconds to minutes (left out of make test-fast)
def test_chen2020_1C_is_near_the_LG_M50s_5Ah_and_equals_pybamm():
    import pybamm

    s, _ = run(parameter_set="Chen2020", model="DFN", experiment=["Discharge at 1C until 2.5 V"])
    q = s["discharge_capacity"][0]
    assert 4.7 < q < 5.1
    # PyBaMM called directly, the plain way
    sim = pybamm.Simulation(
        pybamm.lithium_ion.DFN(),
        parameter_values=pybamm.ParameterValues("Chen2020"),
        experiment=pybamm.Experiment(["Discharge at 1C until 2.5 V"]),
    )
    sol = sim.solve()
    direct = float(sol["Discharge capacity [A.h]"].entries[-1])
    assert q == pytest.approx(direct, rel=2e-3)
    assert s["meta"]["pybamm_version"] == pybamm.__version__
    assert s["meta"]["solver"]["path"] == "input-parameter discharge"
    assert len(s["traces"]["first"]["time"]) <= 200
    assert s["traces"]["first"]["voltage"][-1] == pytest.approx(2.5, abs=1e-3)


@pytest.mark.slow  # science: seconds to minutes (left out of make test-fast)
def test_capacity_falls_with_c_rate_and_with_lower_temperature():
    caps = {}
    for rate in (0.5, 1, 1.5, 2):
        for T in (268.15, 298.15):
            s, _ = run(
                parameter_set="Chen2020",
                model="SPMe",
                experiment=[f"Discharge at {rate}C until 2.5 V"],
                temperature=T,
            )
            caps[rate, T] = s["discharge_capacity"][0]
    for T in (268.15, 298.15):
        seq = [caps[r, T] for r in (0.5, 1, 1.5, 2)]
        assert all(a > b for a, b in zip(seq, seq[1:], strict=False)), seq
    for r in (0.5, 1, 1.5, 2):
        assert caps[r, 268.15] < caps[r, 298.15]
    # the model was built once for all eight requests
    hits = cell.cache_stats()["hits"]
    run(parameter_set="Chen2020", model="SPMe", experiment=["Discharge at 1.2C until 2.6 V"])
    assert cell.cache_stats()["hits"] == hits + 1


@pytest.mark.slow  # science: seconds to minutes (left out of make test-fast)
def test_sei_growth_makes_retention_fall_every_cycle():
    steps = [
        "Discharge at 1C until 2.5 V",
        "Rest for 5 minutes",
        "Charge at 1C until 4.2 V",
        "Hold at 4.2 V until C/20",
    ]
    s, cycles = run(
        parameter_set="Chen2020",
        model="SPM",
        experiment=steps,
        cycles=5,
        degradation={"sei": "solvent-diffusion limited"},
    )
    ret = s["capacity_retention"]
    assert len(ret) == 5 and ret[0] == 1.0
    assert all(a > b for a, b in zip(ret, ret[1:], strict=False)), ret
    assert all(0.95 < ce < 1.0 + 1e-6 for ce in s["coulombic_efficiency"][1:])
    assert s["eol_cycle"] is None
    assert s["meta"]["options"]["SEI"] == "solvent-diffusion limited"
    # full-resolution traces per step (what the lab emulator writes into a cycler file)
    assert len(cycles) == 5 and [r["step"] for r in cycles[0]] == steps
    t = np.concatenate([r["time"] for c in cycles for r in c])
    assert np.all(np.diff(t) >= 0)
    assert cycles[0][0]["current"].mean() > 0 > cycles[0][2]["current"].mean()
    # without degradation the capacity holds
    s0, _ = run(parameter_set="Chen2020", model="SPM", experiment=steps, cycles=3)
    assert s0["capacity_retention"][-1] > ret[2]


@pytest.mark.slow  # science: seconds to minutes (left out of make test-fast)
def test_conductivity_override_rescales_the_electrolyte():
    import pybamm

    base, _ = run(
        parameter_set="Chen2020", model="SPMe", experiment=["Discharge at 2C until 2.5 V"]
    )
    low, _ = run(
        parameter_set="Chen2020",
        model="SPMe",
        experiment=["Discharge at 2C until 2.5 V"],
        electrolyte_conductivity=0.15,
    )
    assert low["discharge_capacity"][0] < base["discharge_capacity"][0] - 0.02
    pv = pybamm.ParameterValues("Chen2020")
    k0 = pv.evaluate(
        pv["Electrolyte conductivity [S.m-1]"](pybamm.Scalar(1000.0), pybamm.Scalar(298.15))
    )
    assert low["meta"]["electrolyte_conductivity_scale"] == pytest.approx(0.15 / float(k0))


def test_bad_paths():
    with pytest.raises(InputError, match="unknown PyBaMM parameter set 'Nope2020'"):
        run(parameter_set="Nope2020")
    with pytest.raises(InputError, match="experiment"):
        run(experiment=["Dance at 1C for a while"], cycles=2)
    with pytest.raises(InputError, match="not a parameter of this set"):
        run(overrides={"Flux capacitor [F]": 1.0})
    with pytest.raises(InputError, match="BPX"):
        run(parameter_set={"Header": {"BPX": 0.1}})
    # a solver failure carries PyBaMM's own message
    with pytest.raises(CalculationFailed, match="non-positive at initial conditions"):
        run(
            model="SPM",
            overrides={"Negative electrode exchange-current density [A.m-2]": 1e-30},
        )
    with pytest.raises(ValueError):
        cell.CyclingParameters(model="P2D")
    with pytest.raises(ValueError):
        cell.CyclingParameters(temperature=500)


@pytest.mark.slow  # science: seconds to minutes (left out of make test-fast)
def test_dask_local_cluster_gives_the_in_process_results():
    jobs = [
        cell.CyclingParameters(
            model="SPM", experiment=[f"Discharge at {r}C until 2.5 V"], temperature=T
        ).model_dump()
        for r, T in [(1, 298.15), (2, 288.15), (0.5, 308.15), (1.5, 298.15)]
    ]
    here = [cell.run_cycling_job(j)["result"]["discharge_capacity"][0] for j in jobs]
    runner = cell.DaskRunner(scheduler="", n_workers=2, processes=True)
    try:
        recs = runner.map(jobs, timeout=300)
    finally:
        runner.close()
    assert all(r["ok"] for r in recs)
    assert len({r["pid"] for r in recs}) >= 1
    got = [r["result"]["discharge_capacity"][0] for r in recs]
    np.testing.assert_allclose(got, here, rtol=1e-6)


def _serve(tenant, client, concurrency=1):
    stop = threading.Event()
    t = threading.Thread(
        target=tenant.serve,
        args=(client,),
        kwargs={
            "stop": stop,
            "install_signals": False,
            "poll": 1,
            "concurrency": concurrency,
        },
        daemon=True,
    )
    t.start()
    for _ in range(900):
        mine = [x for x in client.tenants() if x["name"] == tenant.name]
        if mine:
            return stop, t, mine[0]["id"]
        time.sleep(0.1)
    raise AssertionError(f"{tenant.name} did not register")


def _wait_status(client, rid, status, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.request(rid)
        if r["status"] == status:
            return r
        time.sleep(0.2)
    raise AssertionError(f"request {rid} is {r['status']}, not {status}")


def test_through_the_broker_with_the_multiscale_chain(live_one, monkeypatch):
    from bigmap.tenants import electrolyte

    monkeypatch.setattr(cell, "_RUNNER", cell.DaskRunner(scheduler="none"))
    c = live_one.client("alice")
    ctl = live_one.client("bob")
    stops = []
    try:
        stop_e, th_e, _ = _serve(electrolyte.tenant, c)
        stops.append((stop_e, th_e))
        stop_c, th_c, tid = _serve(cell.tenant, c)  # one job at a time
        stops.append((stop_c, th_c))
        me = ctl.register_tenant({"name": "asker", "kind": "planner"})["id"]

        params = {
            "parameter_set": "Chen2020",
            "model": "SPMe",
            "experiment": ["Discharge at 1C until 2.5 V"],
        }
        req = ctl.create_request("cell_cycling", "pybamm", params, tenant_id=me)
        res = ctl.wait_result(req["id"], timeout=120)
        direct, _ = run(**params)
        assert res["data"]["discharge_capacity"] == pytest.approx(direct["discharge_capacity"])
        assert res["provenance"]["software"]["name"] == "pybamm"

        # a solver failure is a failed request with PyBaMM's message, fast
        bad = {
            **params,
            "overrides": {"Negative electrode exchange-current density [A.m-2]": 1e-30},
        }
        req = ctl.create_request("cell_cycling", "pybamm", bad, tenant_id=me)
        r = _wait_status(ctl, req["id"], "failed", timeout=60)
        assert "non-positive at initial conditions" in str(r["status_info"])
        req = ctl.create_request(
            "cell_cycling", "pybamm", {**params, "parameter_set": "Nope2020"}, tenant_id=me
        )
        r = _wait_status(ctl, req["id"], "failed", timeout=60)
        assert "unknown PyBaMM parameter set" in str(r["status_info"])

        # the multiscale chain, served by a single-threaded cell worker
        ms = {
            "formulation": fm.hte_to_formulation(0.6, 1.0),
            "temperature": 298.15,
            "parameter_set": "Chen2020",
            "model": "SPMe",
            "experiment": ["Discharge at 2C until 2.5 V"],
            "samples": 4,
        }
        req = ctl.create_request("cell_performance", "multiscale", ms, tenant_id=me)
        res = ctl.wait_result(req["id"], timeout=240)
        d = res["data"]
        k = d["electrolyte_conductivity"]
        assert k["model"]["name"] == "hte_gp" and k["uncertainty"] > 0
        assert len(d["discharge_capacity"]["samples"]) == 4
        assert d["discharge_capacity"]["std"] > 0
        assert d["discharge_capacity"]["p2_5"] <= d["discharge_capacity"]["mean"]
        kids = ctl.children(req["id"])
        assert {x["quantity"] for x in kids} == {"conductivity", "cell_cycling"}
        assert sum(x["quantity"] == "cell_cycling" for x in kids) == 4
        assert all(x["status"] == "resolved" for x in kids)
        assert set(res["provenance"]["inputs"]) == {x["id"] for x in kids}
        # each cell child used one of the sampled conductivities
        used = sorted(
            x["parameters"]["pybamm"]["electrolyte_conductivity"]
            for x in kids
            if x["quantity"] == "cell_cycling"
        )
        assert used == pytest.approx(sorted(k["samples"]))
    finally:
        for stop, _ in stops:
            stop.set()
        for _, th in stops:
            th.join(15)
