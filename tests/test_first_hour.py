"""The first hour of a new user (issue 15), mistake by mistake, through the real ``bigmap``
command against a real broker (``live_one``) with real workers: each test is one thing a
newcomer did that used to cost them measurements or a guess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import pytest
import yaml

from bigmap.planner.check import check_spec, schema_leaf
from bigmap.planner.runner import get_path
from bigmap.planner.spec import SpecError, load_spec
from tests.conftest import REPO, cli_worker

EXAMPLE = REPO / "src/bigmap/planner/examples/conductivity.yaml"
REQUEST = REPO / "src/bigmap/planner/examples/conductivity-request.json"
CLI = [sys.executable, "-m", "bigmap.cli"]


def bigmap(
    *args: str, live=None, user: str = "alice", cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    env = {**os.environ}
    env.pop("BIGMAP_DEBUG", None)
    if live is not None:
        env.update(BIGMAP_BROKER_URL=live.url, BIGMAP_TOKEN=live.tokens[user])
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout
    )


@pytest.fixture(scope="module")
def workers(live_one):
    """The demo's two workers, as ``bigmap worker`` processes of bob."""
    env = {**os.environ, "BIGMAP_BROKER_URL": live_one.url, "BIGMAP_TOKEN": live_one.tokens["bob"]}
    env["BIGMAP_LAB_TIME_SCALE"] = "0.0002"
    procs = [
        subprocess.Popen(
            [*CLI, "worker", name, "--poll", "1"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in ("electrolyte-model", "virtual-lab")
    ]
    with live_one.client("alice") as c:
        deadline = time.monotonic() + 400  # a busy 2-core machine imports PyBaMM slowly
        while {"electrolyte-model", "virtual-lab"} - {t["name"] for t in c.tenants() if t["alive"]}:
            assert all(p.poll() is None for p in procs), [p.communicate()[0] for p in procs]
            assert time.monotonic() < deadline, "the workers did not register"
            time.sleep(0.3)
    yield live_one, procs
    for p in procs:
        p.send_signal(signal.SIGTERM)
    outs = [p.communicate(timeout=60)[0] for p in procs]
    # quiet at the default log level: no line per HTTP call
    for out in outs:
        assert "HTTP Request" not in out, out[:2000]


def spec_text(**replace: str) -> str:
    text = EXAMPLE.read_text()
    for a, b in replace.items():
        assert a in text, a
        text = text.replace(a, b)
    return text


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# ------------------------------------------------------------------ campaign files


def test_the_example_spec_is_valid_against_the_demo_workers(workers, tmp_path):
    live, _ = workers
    out = bigmap("campaign", "validate", str(EXAMPLE), live=live)
    assert out.returncode == 0, out.stderr
    assert "valid against" in out.stdout
    # other modules' tenants may serve the same capabilities on this broker: the demo's two
    # workers are among those named
    lines = out.stdout.splitlines()
    assert any("measurements[1].capability" in ln and "virtual-lab" in ln for ln in lines), lines
    assert any("measurements[0].capability" in ln and "electrolyte-model" in ln for ln in lines)


@pytest.mark.parametrize(
    "change, where, says",
    [
        (
            {"two_electrode\n": "two_electrod\n"},
            "$.measurements[1].capability",
            "did you mean 'conductivity/two_electrode'",
        ),
        (
            {"conductivity.values.mean": "conductivity.values.meen"},
            "$.measurements[1].outputs.conductivity",
            "did you mean 'conductivity.values.mean'",
        ),
        ({"unit: mol/kg}": "unit: mol/kgg}"}, "$.variables[1].unit", "did you mean 'kg'"),
        ({"unit: S/m}": "unit: K}"}, "$.objectives[0].unit", "cannot be converted"),
        (
            {"direction: maximize": "direction: maximse"},
            "$.objectives[0].direction",
            "did you mean 'maximize'",
        ),
        ({"batch_size:": "batchsize:"}, "$.batchsize", "did you mean 'batch_size'"),
    ],
)
def test_a_mistake_in_a_spec_stops_the_run_before_any_request(
    workers, tmp_path, change, where, says
):
    live, _ = workers
    spec = write(tmp_path, spec_text(**change))
    with live.client("alice") as c:
        before = len(c.campaigns())
        val = bigmap("campaign", "validate", str(spec), live=live)
        assert val.returncode == 2, val.stdout + val.stderr
        assert where in val.stderr and says in val.stderr, val.stderr
        assert "Traceback" not in val.stderr
        for args in (["--dry-run"], []):
            run = bigmap("campaign", "run", str(spec), "--quiet", *args, live=live)
            assert run.returncode == 2 and where in run.stderr, run.stderr
        assert len(c.campaigns()) == before  # nothing started


def test_a_capability_nobody_serves_is_named_before_the_run(live_one, tmp_path):
    # no worker: the capabilities exist in the catalogue, nobody serves them
    spec = write(tmp_path, spec_text())
    out = bigmap("campaign", "validate", str(spec), live=live_one)
    if "served by" in out.stdout:  # the module's workers are still up: not this test's case
        pytest.skip("workers of another test are running")
    assert out.returncode == 2 and "no tenant provides" in out.stderr, out.stderr


def test_objective_in_other_units_gets_converted_values_not_relabelled(workers):
    live, _ = workers
    with live.client("alice") as c:
        text = spec_text(**{"unit: S/m}": "unit: mS/cm}"})
        spec = load_spec(text)
        rep = check_spec(spec, c)
        assert not rep.errors, rep.errors
        assert any("converted to mS/cm" in f.message for f in rep.findings)
        doc = yaml.safe_load(text)
        doc["measurements"] = doc["measurements"][:1]  # the model only: fast
        doc["budget"] = {"requests": 2}
        doc["strategy"] = {"name": "sobol"}
        from bigmap.planner.runner import CampaignRunner
        from bigmap.planner.spec import parse_spec

        runner = CampaignRunner.create(c, parse_spec(doc), poll=0.2)
        runner.run()
        obs = [o for o in runner.h.observations if not o.failed]
        assert obs
        for o in obs:
            res = c.result(o.result_id)
            si = get_path(res["data"], "conductivity.values.0")
            assert o.y["conductivity"] == pytest.approx(10 * si)  # 1 S/m = 10 mS/cm
            unc = get_path(res["data"], "conductivity.uncertainty.0")
            assert o.std["conductivity"] == pytest.approx(10 * unc)


def test_paths_reduce_lists_and_schema_paths_are_found():
    assert get_path({"a": {"v": [1.0, 2.0, 6.0]}}, "a.v.mean") == 3.0
    assert get_path({"a": {"v": [1.0, 2.0]}}, "a.v.max") == 2.0
    with pytest.raises(KeyError):
        get_path({"a": {"v": []}}, "a.v.mean")
    schema = {
        "type": "object",
        "properties": {"v": {"type": "array", "items": {"type": "number"}}, "mean": {}},
    }
    assert schema_leaf(schema, "v.mean")[0] == "ok"
    assert schema_leaf(schema, "v")[0] == "list"
    assert schema_leaf(schema, "w")[0] == "missing"


def test_spec_spelling_suggestions_without_a_broker():
    with pytest.raises(SpecError) as e:
        load_spec(spec_text(**{"name: botorch": "name: botorh"}))
    assert "did you mean 'botorch'" in str(e.value)


# ------------------------------------------------------------------ campaigns


def test_campaign_ids_status_name_and_dashboard_url(workers, tmp_path):
    live, _ = workers
    doc = yaml.safe_load(spec_text())
    doc["measurements"] = doc["measurements"][:1]
    doc["strategy"] = {"name": "sobol"}
    spec = write(tmp_path, yaml.safe_dump(doc))
    out = bigmap("campaign", "run", str(spec), "--max-steps", "1", "--quiet", live=live)
    assert out.returncode == 0, out.stderr
    cid = next(w for w in out.stdout.split() if len(w) == 36 and w.count("-") == 4)
    assert f"{live.url}/ui/campaigns/{cid}" in out.stdout
    assert "paused" in out.stdout and f"bigmap campaign resume {cid}" in out.stdout
    with live.client("alice") as c:
        camp = c.campaign(cid)
    assert camp["status"] == "paused"  # not "running": nobody runs it now
    assert camp["name"].startswith(doc["name"]) and " UTC, run " in camp["name"]
    listed = bigmap("campaign", "list", live=live)
    assert cid in listed.stdout  # the full id, never cut
    for prefix in (cid[:8], cid[:13]):
        shown = bigmap("campaign", "show", prefix, live=live)
        assert shown.returncode == 0 and cid in shown.stdout, shown.stderr
    replay = bigmap("campaign", "replay", cid[:8], live=live)
    assert replay.returncode == 0, replay.stderr
    none = bigmap("campaign", "show", "ffffffffzz", live=live)
    assert none.returncode == 2 and "no campaign" in none.stderr
    assert len(none.stderr.strip().splitlines()) == 1
    ambiguous = bigmap("campaign", "show", "", live=live)
    assert ambiguous.returncode == 2 and "ambiguous" in ambiguous.stderr
    resumed = bigmap("campaign", "resume", cid[:8], "--max-steps", "1", "--quiet", live=live)
    assert resumed.returncode == 0 and "resuming" in resumed.stdout, resumed.stderr


def test_planner_tenant_is_alive_while_it_runs(workers, tmp_path):
    live, _ = workers
    with live.client("alice") as c:
        doc = yaml.safe_load(spec_text())
        doc["measurements"] = doc["measurements"][:1]
        doc["budget"] = {"requests": 1}
        doc["strategy"] = {"name": "sobol"}
        from bigmap.planner.runner import CampaignRunner
        from bigmap.planner.spec import parse_spec

        runner = CampaignRunner.create(c, parse_spec(doc), poll=0.2)
        runner.run()
        planner = c.tenant(runner.tenant_id)
        assert planner["alive"] and planner["last_seen_at"]


# ------------------------------------------------------------------ asking for a result


def test_request_and_result_from_the_command_line(workers, tmp_path):
    live, _ = workers
    tpl = bigmap("request", "conductivity/transport_model", "--template", live=live)
    assert tpl.returncode == 0 and "formulation" in json.loads(tpl.stdout)
    out = bigmap(
        "request", "conductivity/transport_model", "--json", str(REQUEST), "--wait", live=live
    )
    assert out.returncode == 0, out.stderr
    assert "siemens / meter" in out.stdout and "/ui/results/" in out.stdout
    rid = out.stdout.split()[1]
    again = bigmap("result", rid, live=live)
    assert again.returncode == 0 and "conductivity.values" in again.stdout
    # a typo in the capability, and no parameters: one line each, with the way out
    typo = bigmap("request", "conductivity/transport_modle", "-p", "x=1", live=live)
    assert typo.returncode == 2 and "did you mean 'conductivity/transport_model'" in typo.stderr
    empty = bigmap("request", "conductivity/transport_model", live=live)
    assert empty.returncode == 2 and "--template" in empty.stderr


def test_an_unservable_request_is_refused_with_the_reason_unless_queued(workers, tmp_path):
    live, _ = workers
    tpl = json.loads(REQUEST.read_text())
    tpl["temperature"] = 400.0  # outside what the model accepts (263-323 K)
    f = tmp_path / "hot.json"
    f.write_text(json.dumps(tpl))
    refused = bigmap("request", "conductivity/transport_model", "--json", str(f), live=live)
    assert refused.returncode == 2, refused.stdout
    assert "electrolyte-model" in refused.stderr and "temperature" in refused.stderr
    assert "queue" in refused.stderr
    queued = bigmap(
        "request", "conductivity/transport_model", "--json", str(f), "--queue", live=live
    )
    assert queued.returncode == 0 and "queued:" in queued.stdout, queued.stderr
    rid = queued.stdout.split()[1]
    with live.client("alice") as c:
        req = c.request(rid)
    assert req["status"] == "pending" and req["status_info"]["servable"] is False
    assert req["status_info"]["unservable_reason"].strip()
    waited = bigmap("result", rid, live=live)
    assert waited.returncode == 1 and "no result yet" in waited.stderr
    # the API: 422 naming the field, nothing stored; ?queue=true keeps it
    h = live.headers("alice")
    with live.client("alice") as c:
        tid = next(t["id"] for t in c.tenants() if t["name"] == "alice-cli")
        n = len(c.requests(quantity="conductivity", limit=10000))
    body = {
        "quantity": "conductivity",
        "methods": ["transport_model"],
        "parameters": {"transport_model": tpl},
        "tenant_id": tid,
    }
    r = httpx.post(f"{live.url}/api/v1/requests", json=body, headers=h)
    assert r.status_code == 422 and r.json()["detail"][0]["path"] == "$.methods"
    with live.client("alice") as c:
        assert len(c.requests(quantity="conductivity", limit=10000)) == n
    r = httpx.post(f"{live.url}/api/v1/requests", params={"queue": True}, json=body, headers=h)
    assert r.status_code == 201 and r.json()["status_info"]["servable"] is False


def test_api_reference_works_offline(live_one):
    for page in ("/docs", "/redoc"):
        html = httpx.get(live_one.url + page).text
        assert "cdn." not in html and "https://" not in html.split("<body")[0]
        for ref in ("/api-docs-assets/",):
            assert ref in html
    js = httpx.get(f"{live_one.url}/api-docs-assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000
    assert httpx.get(f"{live_one.url}/api-docs-assets/redoc.standalone.js").status_code == 200


# ------------------------------------------------------------------ own tenants


def test_worker_takes_a_file_or_a_module_of_the_current_folder(live_one, tmp_path):
    (tmp_path / "my_tenant.py").write_text(_readme_snippet())
    for target in ("my_tenant.py", "my_tenant"):
        out = bigmap("worker", target, "--max-jobs", "0", live=live_one, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert "HTTP Request" not in out.stderr


def _readme_snippet() -> str:
    text = (REPO / "README.md").read_text()
    start = text.index("```python\n") + len("```python\n")
    return text[start : text.index("```", start)]


def test_the_readme_snippet_declares_its_units(live_one, tmp_path):
    ns: dict = {}
    exec(compile(_readme_snippet(), "README snippet", "exec"), ns)
    tenant = ns["tenant"]
    (cap,) = tenant.capabilities.values()
    assert cap.spec.units, "the README's capability declares no units"
    from bigmap.schemas.units import parse_unit

    for unit in cap.spec.units.values():
        parse_unit(unit)


def test_tenant_new_scaffold_passes_its_test_and_answers_a_request(live_one, tmp_path):
    out = bigmap("tenant", "new", "arrhenius-fit", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    root = tmp_path / "arrhenius-fit"
    assert {p.name for p in root.iterdir()} >= {"README.md", "pyproject.toml", "tests"}
    tomllib.loads((root / "pyproject.toml").read_text())
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert tests.returncode == 0 and "3 passed" in tests.stdout, tests.stdout + tests.stderr
    again = bigmap("tenant", "new", "arrhenius-fit", cwd=tmp_path)
    assert again.returncode == 2 and "exists" in again.stderr
    with cli_worker(live_one, "arrhenius-fit", target="arrhenius_fit", cwd=root, timeout=300):
        asked = bigmap(
            "request",
            "conductivity/arrhenius_fit",
            "--param",
            "temperature=310",
            "--wait",
            "--timeout",
            "60",
            live=live_one,
        )
    assert asked.returncode == 0, asked.stderr
    assert "conductivity" in asked.stdout and "S/m" in asked.stdout


# ------------------------------------------------------------------ errors and the database


@pytest.mark.integration  # child processes / a server of its own
def test_db_takes_a_plain_path_and_errors_are_one_line(tmp_path):
    path = tmp_path / "plain.sqlite"
    out = bigmap("db", "upgrade", "--db", str(path))
    assert out.returncode == 0 and path.exists(), out.stderr
    added = bigmap("user", "add", "carol", "--password", "carol-password", "--db", str(path))
    assert added.returncode == 0, added.stderr
    assert "carol" in bigmap("user", "list", "--db", str(path)).stdout
    for db in ("postgresql+psycopg://nobody@127.0.0.1:1/none", "xx://a"):
        bad = bigmap("user", "list", "--db", db)
        assert bad.returncode == 2, bad.stderr
        assert bad.stderr.startswith("error: ") and len(bad.stderr.strip().splitlines()) == 1
        assert "Traceback" not in bad.stderr
    debug = bigmap("user", "list", "--db", "xx://a", "--debug")
    assert debug.returncode != 0 and "Traceback" in debug.stderr


@pytest.mark.integration  # child processes / a server of its own
def test_unreachable_broker_is_one_line(tmp_path):
    env_live = type("L", (), {"url": "http://127.0.0.1:9", "tokens": {"alice": "x"}})()
    out = bigmap("campaign", "list", live=env_live, timeout=120)
    assert out.returncode == 1 and "cannot reach the broker" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_pyproject_licence_is_an_spdx_string():
    doc = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert doc["project"]["license"] == "MIT"
    assert (REPO / "LICENSE").exists()


def test_nothing_points_outside_the_repository():
    for path in [REPO / "README.md", *(REPO / "docs").glob("*.md")]:
        text = path.read_text()
        assert "../shared" not in text and "/work/shared" not in text, path


@pytest.mark.integration  # child processes / a server of its own
def test_generated_references_are_current():
    out = subprocess.run(
        [sys.executable, "-m", "bigmap.docgen", "--check"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
    cli = (REPO / "docs/cli.md").read_text()
    for cmd in ("bigmap request", "bigmap result", "bigmap campaign validate", "bigmap tenant new"):
        assert f"## `{cmd}`" in cli


def test_readme_links_the_docs_and_they_exist():
    text = (REPO / "README.md").read_text()
    for doc in ("tutorial", "campaign-spec", "cli", "architecture"):
        assert f"docs/{doc}.md" in text and (REPO / f"docs/{doc}.md").exists()


@pytest.mark.integration  # child processes / a server of its own
@pytest.mark.slow
def test_demo_announces_itself_keeps_its_database_and_its_broker(tmp_path):
    db = tmp_path / "demo.db"
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "COLUMNS": "200"}
    proc = subprocess.Popen(
        [*CLI, "demo", "--requests", "2", "--keep", "--db", str(db)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    dash = None
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "keep running" in line or proc.poll() is not None:
                break
        text = "".join(lines)
        # up front: what it does, how long it takes, where the database is kept
        assert "about 5 minutes" in lines[0]
        assert str(db) in text and "sign in as demo" in text
        assert "database kept at" in text and db.exists()
        url = next(w for w in text.split() if "/ui/campaigns/" in w)
        dash = url.split("/ui/")[0]
        assert httpx.get(f"{dash}/ui/campaigns").status_code == 200  # still serving
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)
    assert proc.returncode == 0, "".join(lines)[-2000:]
    with pytest.raises(httpx.TransportError):  # the broker went with it
        httpx.get(f"{dash}/api/v1/health", timeout=2)
