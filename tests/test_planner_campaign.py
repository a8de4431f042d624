"""Campaigns through a real broker (``live_one``) with a real worker of the test tenant
(``tests/planner_tenant.py``): the event contract, failures, kill-and-resume without double
posting, pause/stop, unservable and refused requests, a funnel, the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bigmap.cli import app
from bigmap.planner.runner import CampaignRunner
from bigmap.planner.spec import parse_spec
from tests.planner_tenant import tenant

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def worker(live_one):
    """The test tenant, serving in a thread (two jobs at once)."""
    client = live_one.client("alice")
    stop = threading.Event()
    t = threading.Thread(
        target=tenant.serve,
        args=(client,),
        kwargs={"stop": stop, "install_signals": False, "poll": 0.5, "concurrency": 2},
        daemon=True,
    )
    t.start()
    for _ in range(200):
        if any(x["name"] == "planner-test" for x in client.tenants()):
            break
        time.sleep(0.05)
    yield live_one
    stop.set()
    t.join(15)


def base_spec(**kw) -> dict:
    doc = {
        "name": "test campaign",
        "seed": 4,
        "variables": [{"name": "x1", "low": 0, "high": 1}, {"name": "x2", "low": 0, "high": 1}],
        "context": {"spill_above": 0.9},
        "objectives": [{"name": "value", "direction": "maximize"}],
        "measurements": [
            {"capability": "test_yield/cheap_model", "cost": 1, "fidelity": 0.5},
            {"capability": "test_yield/measurement", "cost": 10, "fidelity": 1.0},
        ],
        "batch_size": 2,
        "budget": {"requests": 12, "cost": 60},
        "strategy": {"name": "botorch", "n_init": 4},
    }
    doc.update(kw)
    return doc


def events(client, cid):
    return client.campaign_events(cid)


def check_no_double_posting(client, cid, budget: int) -> tuple[list, list]:
    evs = events(client, cid)
    reqs = client.call("GET", f"/api/v1/campaigns/{cid}/requests")
    posted = [
        c["request_id"] for e in evs if e["kind"] == "proposal" for c in e["data"]["candidates"]
    ]
    posted = [r for r in posted if r]
    assert len(posted) == len(set(posted)), "a request appears in two proposals"
    assert {r["id"] for r in reqs} == set(posted)
    assert len(reqs) <= budget
    obs = [e["data"]["request_id"] for e in evs if e["kind"] == "observation"]
    assert len(obs) == len(set(obs)), "a result was taken in twice"
    assert [e["seq"] for e in evs] == list(range(1, len(evs) + 1))
    return evs, reqs


def test_campaign_through_the_broker(worker):
    client = worker.client("alice")
    spec = parse_spec(base_spec())
    r = CampaignRunner.create(client, spec, poll=0.1)
    summary = r.run()
    assert r.status == "completed", r.reason
    camp = client.campaign(r.cid)
    assert camp["status"] == "completed" and camp["summary"] == summary
    for key in (
        "step",
        "strategy",
        "objectives",
        "n_requests",
        "n_results",
        "n_failed",
        "n_pending",
        "cost_spent",
        "budget",
        "best",
        "best_so_far",
        "pareto",
        "tiers",
    ):
        assert key in summary, key
    assert summary["n_pending"] == 0 and summary["cost_spent"] <= 60
    evs, reqs = check_no_double_posting(client, r.cid, 12)
    kinds = Counter(e["kind"] for e in evs)
    assert kinds["observation"] == len(reqs) == summary["n_requests"]
    assert kinds["intent"] == kinds["proposal"] >= 2 and kinds["model_state"] >= 1
    assert kinds["stop"] == 1
    assert all(q["campaign_id"] == r.cid for q in reqs)
    for e in evs:
        if e["kind"] == "proposal":
            assert set(e["request_ids"]) == {c["request_id"] for c in e["data"]["candidates"]}
            for c in e["data"]["candidates"]:
                assert set(c) >= {
                    "x",
                    "capability",
                    "request_id",
                    "acquisition",
                    "predicted",
                    "tier",
                }
        if e["kind"] == "model_state":
            d = e["data"]
            assert d["model"] in ("SingleTaskGP", "SingleTaskMultiFidelityGP")
            assert d["n_train"] == len(d["training_result_ids"]) >= 2
            assert "noise" in d["hyperparameters"]
            for rid in d["training_result_ids"][:3]:
                assert client.result(rid)["id"] == rid
    grids = [e["data"]["grid"] for e in evs if e["kind"] == "model_state" and "grid" in e["data"]]
    assert grids and len(grids[-1]["mean"]) == len(grids[-1]["a"])
    best = summary["best"]
    res = client.result(best["result_id"])
    assert res["method"] == "measurement" and res["data"]["value"] == best["y"]["value"]
    assert res["provenance"]["software"]["name"] == "planner-test"
    # the CLI shows it with provenance, and the replay re-fits every model state
    env = {"BIGMAP_BROKER_URL": worker.url, "BIGMAP_TOKEN": worker.tokens["alice"]}
    out = CliRunner().invoke(app, ["campaign", "show", r.cid, "--json"], env=env)
    assert out.exit_code == 0, out.output
    shown = json.loads(out.output)
    assert shown["best"][0]["result_id"] == best["result_id"]
    assert "planner-test" in shown["best"][0]["software"]
    out = CliRunner().invoke(app, ["campaign", "replay", r.cid, "--refit"], env=env)
    assert out.exit_code == 0, out.output
    assert "DIFFERS" not in out.output and "ok" in out.output


def test_kill_and_resume_never_double_posts(worker, tmp_path):
    client = worker.client("alice")
    doc = base_spec(
        name="killed", context={"spill_above": 2.0, "sleep": 0.4}, budget={"requests": 12}
    )
    doc["measurements"] = [{"capability": "test_yield/measurement", "cost": 1}]
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(doc))
    env = {
        **os.environ,
        "BIGMAP_BROKER_URL": worker.url,
        "BIGMAP_TOKEN": worker.tokens["alice"],
        "PYTHONPATH": str(ROOT / "src"),
        "OMP_NUM_THREADS": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "bigmap.cli", "campaign", "run", str(spec_file), "--quiet"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    cid = None
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            camps = [c for c in client.campaigns() if c["name"].startswith("killed")]
            if camps:
                cid = camps[0]["id"]
                n_obs = sum(1 for e in events(client, cid) if e["kind"] == "observation")
                if n_obs >= 4:
                    break
            assert proc.poll() is None, proc.stdout.read().decode()
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)  # mid-flight: requests pending, a step maybe half done
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert cid is not None
    before = client.call("GET", f"/api/v1/campaigns/{cid}/requests")
    assert client.campaign(cid)["status"] == "running"  # killed: nobody said it ended
    runner = CampaignRunner.attach(client, cid, poll=0.1)
    assert len(runner.h.observations) >= 4
    runner.run()
    assert runner.status == "completed", runner.reason
    evs, reqs = check_no_double_posting(client, cid, 12)
    assert len(reqs) == 12 and {r["id"] for r in before} <= {r["id"] for r in reqs}
    assert any(e["kind"] == "decision" and e["data"]["kind"] == "resume" for e in evs)
    assert runner.campaign["summary"]["n_results"] + runner.campaign["summary"]["n_failed"] == 12


def test_crash_between_intent_and_posting_record(worker, monkeypatch):
    """The runner dies after posting a step's requests but before recording the proposal:
    the resumed runner posts the same step again and the broker returns the same requests."""
    client = worker.client("alice")
    spec = parse_spec(base_spec(name="crash", budget={"requests": 8}, strategy={"name": "sobol"}))
    runner = CampaignRunner.create(client, spec, poll=0.1)
    real = CampaignRunner._event
    calls = {"proposal": 0}

    def flaky(self, kind, data, key, request_ids=None):
        if kind == "proposal":
            calls["proposal"] += 1
            if calls["proposal"] == 2:
                raise ConnectionError("the planner's machine lost power")
        return real(self, kind, data, key, request_ids)

    monkeypatch.setattr(CampaignRunner, "_event", flaky)
    with pytest.raises(ConnectionError):
        runner.run()
    monkeypatch.setattr(CampaignRunner, "_event", real)
    posted = client.call("GET", f"/api/v1/campaigns/{runner.cid}/requests")
    evs = events(client, runner.cid)
    intents = [e["data"] for e in evs if e["kind"] == "intent"]
    proposals = [e["data"] for e in evs if e["kind"] == "proposal"]
    # two steps were posted (how many candidates the second had depends on how many
    # results were back by then); only the first step's proposal was recorded
    assert len(intents) == 2 and len(proposals) == 1
    assert len(posted) == sum(len(d["candidates"]) for d in intents)
    again = CampaignRunner.attach(client, runner.cid, poll=0.1)
    assert len(again._unposted) == 1
    again.run()
    evs, reqs = check_no_double_posting(client, runner.cid, 8)
    assert len(reqs) == 8 and {r["id"] for r in posted} <= {r["id"] for r in reqs}


def test_pause_and_stop(worker):
    client = worker.client("alice")
    spec = parse_spec(
        base_spec(
            name="controlled",
            context={"spill_above": 2.0, "sleep": 0.3},
            budget={"requests": 200},
            strategy={"name": "random"},
        )
    )
    runner = CampaignRunner.create(client, spec, poll=0.1)
    t = threading.Thread(target=runner.run, daemon=True)
    t.start()

    def wait_for(pred, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return True
            time.sleep(0.1)
        return False

    def n_intents():
        return sum(1 for e in events(client, runner.cid) if e["kind"] == "intent")

    assert wait_for(lambda: n_intents() >= 2)
    client.update_campaign(runner.cid, control="pause")
    assert wait_for(lambda: client.campaign(runner.cid)["status"] == "paused")
    frozen = n_intents()
    time.sleep(1.5)
    assert n_intents() == frozen  # nothing new proposed while paused
    client.update_campaign(runner.cid, control="run")
    assert wait_for(lambda: n_intents() > frozen)
    client.update_campaign(runner.cid, control="stop")
    t.join(60)
    assert not t.is_alive()
    camp = client.campaign(runner.cid)
    assert camp["status"] == "stopped"
    kinds = [(e["kind"], e["data"].get("kind")) for e in events(client, runner.cid)]
    assert ("decision", "pause") in kinds and ("decision", "stop") in kinds
    assert ("stop", None) in kinds
    pending = [
        q
        for q in client.call("GET", f"/api/v1/campaigns/{runner.cid}/requests")
        if q["status"] == "pending"
    ]
    assert not pending  # what nobody had started was retracted


def test_unservable_and_refused_requests_do_not_stall(worker):
    client = worker.client("alice")
    # nobody serves density/vibrating_tube_densimetry (a FINALES capability): retracted
    doc = base_spec(
        name="unservable",
        variables=[{"name": "temperature", "low": 280, "high": 320}],
        context={},
        objectives=[{"name": "density"}],
        measurements=[
            {
                "capability": "density/vibrating_tube_densimetry",
                "parameters": {
                    "formulation": [
                        {
                            "chemical": {
                                "SMILES": "CCOC(=O)OC",
                                "InChIKey": "JBTWLSYIZRCDFO-UHFFFAOYSA-N",
                            },
                            "fraction": 1.0,
                            "fraction_type": "molPerMol",
                        }
                    ],
                    "temperature": "${temperature}",
                },
            }
        ],
        budget={"requests": 6},
        stopping={"max_consecutive_failures": 3},
        unservable_timeout_seconds=0.5,
        strategy={"name": "random"},
    )
    r = CampaignRunner.create(client, parse_spec(doc), poll=0.1)
    r.run()
    assert r.status == "failed" and "requests failed in a row" in r.reason
    assert 3 <= len(r.h.observations) <= 4  # the second of a batch may fail with the third
    assert all("no tenant can serve it" in o.message for o in r.h.observations)
    # parameters outside the capability's schema: refused by the broker (422), recorded
    doc = base_spec(
        name="refused",
        variables=[{"name": "x1", "low": 0, "high": 3}, {"name": "x2", "low": 0, "high": 1}],
        measurements=[{"capability": "test_yield/measurement"}],
        budget={"requests": 6},
        strategy={"name": "sobol"},
    )
    r = CampaignRunner.create(client, parse_spec(doc), poll=0.1)
    r.run()
    refused = [o for o in r.h.observations if o.failed]
    assert refused and all("refused" in o.message and "x1" in o.message for o in refused)
    assert all(o.x["x1"] > 1 for o in refused)
    assert r.status == "completed" and len(r.h.observations) == 6


def test_funnel_through_the_broker(worker):
    client = worker.client("alice")
    doc = base_spec(
        name="funnel",
        tiers=[
            {"name": "screen", "capability": "test_yield/cheap_model", "threshold": 0.3},
            {"name": "confirm", "capability": "test_yield/measurement"},
        ],
        budget={"requests": 14},
        batch_size=3,
        strategy={"name": "sobol"},
    )
    r = CampaignRunner.create(client, parse_spec(doc), poll=0.1)
    s = r.run()
    evs = events(client, r.cid)
    decisions = [
        e["data"]
        for e in evs
        if e["kind"] == "decision" and e["data"]["kind"] in ("advance", "reject")
    ]
    screen = [o for o in r.h.observations if o.tier == 0 and not o.failed]
    confirm = [o for o in r.h.observations if o.tier == 1]
    assert len(decisions) == len(screen)
    for d in decisions:
        o = next(o for o in screen if o.key == d["observation"])
        assert (d["kind"] == "advance") == (
            o.y["value"] >= 0.3 and any(c.x == o.x for c in confirm)
        ) or d["reason"].startswith("passed, but")
    assert s["tiers"][0]["n_in"] == len(screen) and s["tiers"][0]["n_passed"] == len(confirm)
    assert all(o.capability == "test_yield/measurement" for o in confirm)


def test_cli_refuses_a_bad_spec(tmp_path):
    args = ["--token", "x", "--broker", "http://127.0.0.1:9"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nvariables: [{name: a, low: 0, high: 1}]\nobjectives: [{name: y}]\n")
    out = CliRunner().invoke(app, ["campaign", "run", str(bad), *args])
    assert out.exit_code == 2
    assert "$.measurements" in out.output and "$.budget" in out.output
    bad.write_text(
        yaml.safe_dump({**base_spec(), "variables": [{"name": "x1", "low": 2, "high": 1}]})
    )
    out = CliRunner().invoke(app, ["campaign", "run", str(bad), *args])
    assert out.exit_code == 2 and "$.variables[0].high" in out.output
