"""The dashboard in a real browser: Debian's Chromium driven by Playwright against a real
broker (``live_one``), a campaign advanced by the test planner of ``dashboard_scenario``, and
results computed by real codes. Screenshots go to ``$BIGMAP_SCREENSHOTS`` when it is set
(``BIGMAP_SCREENSHOTS=docs/dashboard pytest tests/test_dashboard.py`` refreshes those of docs/).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dashboard_scenario import ScenarioPlanner, formulation, lg_tenant, post_other_results

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = os.environ.get("BIGMAP_SCREENSHOTS")

playwright_api = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():  # `make test` installs it (apt-get install chromium)
    pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium", pytrace=False)

pytestmark = pytest.mark.timeout(300)


@dataclass
class World:
    url: str
    planner: ScenarioPlanner
    others: dict[str, dict[str, Any]]
    secret_campaign: dict[str, Any]
    secret_result: dict[str, Any]


def _wait(pred, timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = pred()
        if out:
            return out
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def world(live_one) -> Iterator[World]:
    alice = live_one.client("alice")
    stop = threading.Event()
    worker = threading.Thread(
        target=lg_tenant.serve,
        args=(alice,),
        kwargs={"stop": stop, "install_signals": False, "poll": 0.5},
        daemon=True,
    )
    worker.start()
    try:
        _wait(lambda: any(t["name"] == "lg-fit" for t in alice.tenants()), what="the worker")
        others = post_other_results(alice)
        planner = ScenarioPlanner(alice)
        for _ in range(3):
            planner.step()
        secret = ScenarioPlanner(alice, name="secret campaign", access="confidential")
        req = alice.create_request(
            "conductivity",
            "landesfeind2019",
            {"formulation": formulation(1.0), "temperature": 298.15},
            tenant_id=secret.tenant["id"],
            access="confidential",
        )
        secret_result = alice.wait_result(req["id"], timeout=60)
        yield World(live_one.url, planner, others, secret.camp, secret_result)
    finally:
        stop.set()
        worker.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True)
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.set_default_timeout(20000)
    yield pg
    ctx.close()
    assert not errors, f"JavaScript errors: {errors}"


def login(page, url: str, user: str = "alice", password: str | None = None) -> None:
    page.goto(f"{url}/")
    page.wait_for_selector("#login-form")
    page.fill("#username", user)
    page.fill("#password", password or f"{user}-password")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#signout")


def shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.wait_for_timeout(300)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def until(page, fn, timeout: float = 20, what: str = "the page") -> Any:
    """Poll ``fn()`` (the page's CSP forbids the string evaluation of wait_for_function)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = fn()
        if out:
            return out
        page.wait_for_timeout(100)
    raise AssertionError(f"timed out waiting for {what}")


def points(page, selector: str) -> int:
    return int(page.get_attribute(selector, "data-points") or 0)


# ------------------------------------------------------------------ without a browser


def test_paths_do_not_shadow_finales_and_need_no_build(world, live_one):
    url = world.url
    r = httpx.get(f"{url}/", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "/ui/campaigns"
    shell = httpx.get(f"{url}/ui/results/whatever")
    assert (
        shell.status_code == 200 and '<script type="module" src="/ui/static/app.js">' in shell.text
    )
    assert "Content-Security-Policy" in shell.headers
    js = httpx.get(f"{url}/ui/static/app.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert httpx.get(f"{url}/ui/static/nope.js").status_code == 404
    # the FINALES paths at the root still answer as FINALES does, in JSON
    h = live_one.headers("alice")
    tenants = httpx.get(f"{url}/tenants/", headers=h)
    assert tenants.status_code == 200 and isinstance(tenants.json(), list)
    assert httpx.get(f"{url}/capabilities/templates/", headers=h).json()["conductivity"]
    rid = world.planner.obs[0]["request_id"]
    assert httpx.get(f"{url}/requests/{rid}", headers=h).json()["uuid"] == rid
    assert (
        httpx.get(f"{url}/results/{world.planner.obs[0]['result_id']}", headers=h).status_code
        == 200
    )


def test_depiction_endpoint(world, live_one):
    url, h = world.url, live_one.headers("olga")
    assert (
        httpx.get(f"{url}/api/v1/depict/molecule.svg", params={"smiles": "CCO"}).status_code == 401
    )
    r = httpx.get(f"{url}/api/v1/depict/molecule.svg", params={"smiles": "C1COC(=O)O1"}, headers=h)
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert "<svg" in r.text and "</svg>" in r.text
    bad = httpx.get(f"{url}/api/v1/depict/molecule.svg", params={"smiles": "C1CC(("}, headers=h)
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["path"] == "$.smiles"
    assert "not a valid SMILES" in bad.json()["detail"][0]["msg"]


def _sse_events(url: str, headers: dict[str, str], n: int, timeout: float = 20, **params):
    """The first ``n`` events of the stream as (event, data)."""
    out: list[tuple[str, dict[str, Any]]] = []
    with httpx.stream(
        "GET", f"{url}/api/v1/events/stream", headers=headers, params=params, timeout=timeout
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        event, data = "message", []
        for line in r.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif line == "" and data:
                out.append((event, json.loads("\n".join(data))))
                event, data = "message", []
                if len(out) >= n:
                    break
    return out


def test_event_stream_names_only_what_the_caller_may_see(world, live_one):
    url = world.url
    assert httpx.get(f"{url}/api/v1/events/stream", timeout=5).status_code == 401
    secret = world.secret_campaign["id"]
    # the first event lists every topic and the campaigns the caller may see
    ((kind, first),) = _sse_events(url, live_one.headers("alice"), 1)
    assert kind == "change" and set(first["topics"]) == {
        "campaigns",
        "requests",
        "results",
        "tenants",
    }
    assert secret in first["campaigns"] and world.planner.id in first["campaigns"]
    ((_, bob_first),) = _sse_events(url, live_one.headers("bob"), 1)
    assert world.planner.id in bob_first["campaigns"] and secret not in bob_first["campaigns"]

    # a change to the secret campaign: alice hears which, bob hears nothing about it
    got: dict[str, list] = {}

    def listen(user: str) -> None:
        got[user] = _sse_events(url, live_one.headers(user), 2, timeout=15, max_seconds=6)

    threads = [threading.Thread(target=listen, args=(u,)) for u in ("alice", "bob")]
    for t in threads:
        t.start()
    time.sleep(1.0)
    live_one.client("alice").call(
        "POST",
        f"/api/v1/campaigns/{secret}/events",
        json={"kind": "decision", "data": {"kind": "stop", "reason": "test"}},
    )
    for t in threads:
        t.join(20)
    alice_change = [d for e, d in got["alice"][1:] if e == "change"]
    assert alice_change and secret in alice_change[0]["campaigns"]
    assert all(secret not in d.get("campaigns", []) for _, d in got["bob"])


# ------------------------------------------------------------------ in the browser


def test_login_refuses_a_wrong_password_then_signs_in(world, page):
    page.goto(f"{world.url}/ui/campaigns")
    page.wait_for_selector("#login-form")  # not signed in: the login page, nothing else
    assert "/ui/login" in page.url
    page.fill("#username", "alice")
    page.fill("#password", "not-her-password")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#login-error:has-text('Wrong user or password')")
    shot(page, "login")
    page.fill("#password", "alice-password")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#campaigns")
    assert page.locator("#campaigns").get_by_text("conductivity screen").count() == 1
    shot(page, "campaigns")
    assert page.evaluate("sessionStorage.getItem('bigmap.token')")
    page.wait_for_selector("body[data-live=on]")
    page.click("#signout")
    page.wait_for_selector("#login-form")
    assert page.evaluate("sessionStorage.getItem('bigmap.token')") is None


def test_watch_a_campaign_advance_and_steer_it(world, page, live_one):
    pl = world.planner
    login(page, world.url)
    page.click(f"#campaigns a[href='/ui/campaigns/{pl.id}']")
    page.wait_for_selector("#model-panel svg.heatmap")
    page.wait_for_selector("body[data-live=on]")
    page.evaluate("window.__notReloaded = true")
    n0 = int(page.inner_text("#n-events"))
    events = live_one.client("alice").call("GET", f"/api/v1/campaigns/{pl.id}/events")
    assert n0 == len(events)
    # the plots show what the API returns
    obs = [e for e in events if e["kind"] == "observation" and not e["data"]["failed"]]
    assert points(page, "#proposals-panel svg") >= len(obs)
    grid = [e for e in events if e["kind"] == "model_state"][-1]["data"]["grid"]
    assert page.get_attribute("#model-panel svg.heatmap", "data-cells") == str(
        len(grid["a"]) * len(grid["b"])
    )
    assert points(page, "#pareto-panel svg") >= len(obs)
    summary = live_one.client("alice").campaign(pl.id)["summary"]
    assert points(page, "#best-panel svg") >= len(summary["best_so_far"])
    assert page.locator("#funnel-panel svg.bars").count() == 1
    assert page.inner_text("#step") == str(pl.k)
    # the lab request of the funnel's second tier waits in the live queue
    assert pl.lab_request is not None
    assert page.locator(f"#queue a[href='/ui/requests/{pl.lab_request['id']}']").count() == 1
    shot(page, "campaign")

    # the planner runs on while the page is open: new steps show up without a reload
    stop = threading.Event()
    k0 = pl.k
    runner = threading.Thread(
        target=pl.run, args=(pl.k + 3, stop), kwargs={"between": 1.0}, daemon=True
    )
    runner.start()
    try:
        until(page, lambda: int(page.inner_text("#n-events")) > n0, what="a new event")
        until(page, lambda: int(page.inner_text("#step")) > k0, 30, "the next step")
        assert page.evaluate("window.__notReloaded") is True
        # pause from the page: the control is stored, the planner obeys, the page shows it
        page.click("[data-control=pause]")
        _wait(lambda: live_one.client("alice").campaign(pl.id)["control"] == "pause", what="pause")
        page.wait_for_selector("h1 .badge.paused", timeout=30000)
        k_paused = pl.k
        time.sleep(1.0)
        assert pl.k == k_paused  # no step while paused
        shot(page, "campaign-paused")
        page.click("[data-control=run]")
        page.wait_for_selector("h1 .badge.completed", timeout=60000)
        assert page.evaluate("window.__notReloaded") is True
        assert live_one.client("alice").campaign(pl.id)["control"] == "run"
    finally:
        stop.set()
        runner.join(30)
    rows = page.locator("#events tbody tr").count()
    assert rows == len(live_one.client("alice").call("GET", f"/api/v1/campaigns/{pl.id}/events"))
    assert page.locator("[data-control=stop]").is_disabled()


def test_other_user_cannot_steer(world, page):
    login(page, world.url, "bob")
    page.goto(f"{world.url}/ui/campaigns/{world.planner.id}")
    page.wait_for_selector("#controls")
    assert page.locator("#controls").get_by_text("only its owner or an admin").count() == 1
    assert page.locator("[data-control=pause]").is_disabled()


def test_result_page_data_provenance_and_downloads(world, page, live_one):
    pl = world.planner
    login(page, world.url)
    page.goto(f"{world.url}/ui/campaigns/{pl.id}")
    obs = next(o for o in pl.obs if "result_id" in o)
    page.click(f"#events a[href='/ui/results/{obs['result_id']}']")
    page.wait_for_selector("#render-conductivity svg")
    assert f"{obs['y']:.4g}"[:4] in page.inner_text("#conductivity-value")
    # every conductivity result alice may see (on this shared broker other tests add theirs)
    with live_one.client("alice") as c:
        visible = c.results(quantity="conductivity", limit=1000)
    n_visible = sum(1 for r in visible if (r["data"].get("conductivity") or {}).get("values"))
    assert n_visible >= len([o for o in pl.obs if "result_id" in o]) + 1  # + alice's secret one
    assert points(page, "#render-conductivity svg:nth-of-type(2)") == n_visible
    assert page.locator("#render-conductivity circle.hi").count() == 2  # this one, in both plots
    # provenance: the broker's PROV graph when it serves one, else the result's record with
    # the request, the campaign that proposed it, the tenant, the software
    page.wait_for_selector("#prov-graph svg.graph")
    nodes = page.eval_on_selector_all(
        "#prov-graph [data-node]", "els => els.map(e => e.dataset.node)"
    )
    if page.get_attribute("#prov-graph", "data-source") == "prov":
        doc = live_one.client("alice").call("GET", f"/api/v1/provenance/{obs['result_id']}")
        assert len(nodes) == sum(len(doc.get(k, {})) for k in ("entity", "activity", "agent"))
        assert any(obs["result_id"] in n for n in nodes)
    else:
        assert obs["request_id"] in nodes and pl.id in nodes and obs["result_id"] in nodes
        assert any(n.startswith("t:") for n in nodes) and "software" in nodes
    shot(page, "result-conductivity")
    with page.expect_download() as dl:
        page.click("#dl-json")
    saved = json.loads(Path(dl.value.path()).read_text())
    assert (
        saved["id"] == obs["result_id"] and saved["data"]["conductivity"]["values"][0] == obs["y"]
    )
    # from the provenance graph on to what it links (a request, a campaign, a result)
    target = page.get_attribute("#prov-graph a[data-link] >> nth=0", "href")
    page.click("#prov-graph a[data-link] >> nth=0")
    page.wait_for_url(f"**{target}")
    page.wait_for_selector("main h1")
    assert "Error" not in page.inner_text("main h1")


def test_results_of_every_kind_are_drawn(world, page, live_one):
    login(page, world.url)
    o = world.others
    page.goto(f"{world.url}/ui/results/{o['cycling']['id']}")
    page.wait_for_selector("#render-cycling svg")
    charts = page.locator("#render-cycling svg.chart")
    assert charts.count() == 3  # voltage-capacity per cycle, fade, retention
    traces = o["cycling"]["data"]["traces"]
    assert points(page, "#render-cycling svg.chart >> nth=0") == sum(
        len(t["time"]) for t in traces.values()
    )
    assert points(page, "#render-cycling svg.chart >> nth=1") == len(
        o["cycling"]["data"]["discharge_capacity"]
    )
    shot(page, "result-cycling")

    page.goto(f"{world.url}/ui/results/{o['impedance']['id']}")
    page.wait_for_selector("#render-nyquist svg")
    assert points(page, "#render-nyquist svg") == 50  # every frequency of the .mpt file
    assert page.locator("text=emulated").count() >= 1
    f = o["impedance"]["files"][0]
    with page.expect_download() as dl:
        page.click(f"[data-file='{f['id']}']")
    assert Path(dl.value.path()).read_bytes() == live_one.client("alice").download(f["id"])
    shot(page, "result-impedance")

    page.goto(f"{world.url}/ui/results/{o['molecule']['id']}")
    page.wait_for_selector("#depiction svg")
    page.wait_for_selector("svg.structure[data-atoms='10']")  # EC with its hydrogens
    shot(page, "result-molecule")

    page.goto(f"{world.url}/ui/results/{o['crystal']['id']}")
    page.wait_for_selector("svg.structure[data-atoms='8']")  # the conventional LiF cell
    assert page.locator("svg.structure line.cell").count() == 12
    shot(page, "result-crystal")


def test_submit_a_request_through_the_form(world, page):
    login(page, world.url)
    page.click("nav a[data-nav=capabilities]")
    page.wait_for_selector("#cap-list")
    page.fill("#cap-filter", "landesfeind")
    page.click("#cap-list a[href='/ui/capabilities/conductivity/landesfeind2019']")
    page.wait_for_selector("#request-form")
    template = json.loads(page.input_value("#parameters"))
    assert set(template) == {"formulation", "temperature"}
    page.select_option("#tenant", label="test-planner")
    # not JSON: said so, nothing posted
    page.fill("#parameters", '{"temperature": ')
    page.click("#submit")
    page.wait_for_selector("#json-error")
    # JSON that breaks the schema: the broker's 422 with the JSON path of each field
    page.fill("#parameters", json.dumps({"formulation": [], "temperature": "warm"}))
    page.click("#submit")
    page.wait_for_selector("#form-errors")
    errors = page.inner_text("#form-errors")
    assert "temperature" in errors and "formulation" in errors and "$." in errors
    shot(page, "capability-form-errors")
    good = {"formulation": formulation(1.2), "temperature": 303.15}
    page.fill("#parameters", json.dumps(good, indent=2))
    page.click("#submit")
    page.wait_for_selector("#form-success a")
    shot(page, "capability-form")
    page.click("#form-success a")
    # the worker serves it; the request page learns of the result live
    page.wait_for_selector("#result-link", timeout=30000)
    page.click("#result-link")
    page.wait_for_selector("#render-conductivity")


def test_tenants_requests_and_results_tables(world, page, live_one):
    login(page, world.url)
    page.click("nav a[data-nav=tenants]")
    page.wait_for_selector("#tenants tr[data-tenant='lg-fit'] .badge.alive")
    assert "conductivity/landesfeind2019" in page.inner_text("#tenants tr[data-tenant='lg-fit']")
    # a claim shows with its tenant and for how long it has been held
    alice = live_one.client("alice")
    inst = next(t for t in alice.tenants() if t["name"] == "test-instrument")
    req = alice.create_request(
        "impedance_spectrum", "peis", {}, tenant_id=inst["id"], queue=True
    )  # nobody provides it yet: kept pending
    alice.register_tenant(
        {
            "name": "test-instrument",
            "kind": "instrument",
            "limitations": [{"quantity": "impedance_spectrum", "method": "peis"}],
        }
    )
    alice.claim(req["id"], inst["id"], lease_seconds=120)
    page.wait_for_selector(
        f"#tenants tr[data-tenant='test-instrument'] a[href='/ui/requests/{req['id']}']"
    )
    shot(page, "tenants")
    alice.retract(req["id"], "test over")

    page.click("nav a[data-nav=requests]")
    page.wait_for_selector("#requests tbody tr")
    page.fill("#search", "two_electrode")
    until(page, lambda: page.locator("#requests tbody tr").count() == 1, what="the search")
    page.select_option("#status", "retracted")
    page.fill("#search", "")
    page.wait_for_selector(f"#requests a[href='/ui/requests/{req['id']}']")
    shot(page, "requests")

    page.click("nav a[data-nav=results]")
    page.wait_for_selector("#results tbody tr")
    page.fill("#search", "peis")
    until(page, lambda: page.locator("#results tbody tr").count() == 1, what="the search")
    shot(page, "results")


def test_what_a_user_may_not_see_is_not_shown(world, page):
    secret_c, secret_r = world.secret_campaign, world.secret_result
    login(page, world.url, "bob")
    page.wait_for_selector("#campaigns")
    listing = page.inner_text("#campaigns")
    assert "conductivity screen" in listing and "secret campaign" not in listing
    page.goto(f"{world.url}/ui/campaigns/{secret_c['id']}")
    page.wait_for_selector("h1:has-text('Not found')")
    assert "secret" not in page.inner_text("main")
    page.goto(f"{world.url}/ui/results")
    page.wait_for_selector("#results tbody tr")
    assert page.locator(f"#results a[href='/ui/results/{secret_r['id']}']").count() == 0
    page.goto(f"{world.url}/ui/results/{secret_r['id']}")
    page.wait_for_selector("h1:has-text('Not found')")
    page.goto(f"{world.url}/ui/requests")
    page.wait_for_selector("#requests tbody tr")
    assert page.locator(f"#requests a[href='/ui/requests/{secret_r['request_id']}']").count() == 0
    # the owner sees both
    page.click("#signout")
    login(page, world.url, "alice")
    page.goto(f"{world.url}/ui/results/{secret_r['id']}")
    page.wait_for_selector("#render-conductivity")
    assert page.locator("h1 .badge.confidential").count() == 1


def test_an_observer_reads_but_is_not_offered_the_form(world, page):
    login(page, world.url, "olga")
    page.goto(f"{world.url}/ui/capabilities/conductivity/landesfeind2019")
    page.wait_for_selector("#cap-detail h2")
    assert page.locator("#request-form").count() == 0
    assert page.get_by_text("Observers read").count() == 1


def test_dark_scheme(world, browser):
    ctx = browser.new_context(viewport={"width": 1440, "height": 900}, color_scheme="dark")
    page = ctx.new_page()
    try:
        login(page, world.url)
        page.goto(f"{world.url}/ui/campaigns/{world.planner.id}")
        page.wait_for_selector("#model-panel svg.heatmap")
        bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
        fg = page.evaluate("getComputedStyle(document.body).color")
        lum = lambda c: sum(int(x) for x in c[c.index("(") + 1 : c.index(")")].split(",")[:3])  # noqa: E731
        assert lum(bg) < 150 < lum(fg)
        shot(page, "campaign-dark")
    finally:
        ctx.close()


# ------------------------------------------------------------------ the first hour (issue 15)


def test_login_lands_on_the_page_asked_for(world, page):
    page.goto(f"{world.url}/ui/tenants")
    page.wait_for_selector("#login-form")
    assert "/ui/login?next=" in page.url
    page.fill("#username", "alice")
    page.fill("#password", "alice-password")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#tenants")
    assert page.url == f"{world.url}/ui/tenants"  # the address follows, no ?next= left


def test_measurements_and_predictions_told_apart(world, page, live_one):
    pl = world.planner
    login(page, world.url)
    # a model's result (the electrolyte fit is a simulation tenant) says so
    obs = next(o for o in pl.obs if "result_id" in o)
    page.goto(f"{world.url}/ui/results/{obs['result_id']}")
    page.wait_for_selector("#render-conductivity svg")
    assert "model prediction" in page.inner_text("#result-source")
    # the chart's series say which is which
    legend = page.text_content("#render-conductivity svg:nth-of-type(2)")
    assert "model prediction" in legend
    # names beside the SMILES, units beside the values
    comp = page.inner_text("#composition")
    assert "LiPF6" in comp and "EC" in comp and "EMC" in comp and "[Li+]" in comp
    assert "S/m" in page.inner_text("#values")
    # the temperature axis: no two ticks read the same
    for axis in ("x", "y"):
        ticks = page.eval_on_selector_all(
            f"#render-conductivity svg:nth-of-type(2) text.tick.{axis}",
            "els => els.map(e => e.textContent)",
        )
        assert len(ticks) >= 2 and len(set(ticks)) == len(ticks), ticks
    # an emulated instrument's result is a measurement, and says it is emulated
    page.goto(f"{world.url}/ui/results/{world.others['impedance']['id']}")
    page.wait_for_selector("#render-nyquist svg")
    assert "measured (emulated instrument)" in page.inner_text("#result-source")
    # the results table has a source column
    page.goto(f"{world.url}/ui/results")
    page.wait_for_selector(f"#results a[href='/ui/results/{world.others['impedance']['id']}']")
    row = page.locator(f"#results tr:has(a[href='/ui/results/{world.others['impedance']['id']}'])")
    assert "measured" in row.inner_text()
    # the campaign's best-so-far plots name their series
    page.goto(f"{world.url}/ui/campaigns/{pl.id}")
    page.wait_for_selector("#best-panel svg")
    best = page.inner_text("#best-panel")
    assert "best model prediction" in best and "filled: measured" in best


def test_nyquist_plot_has_equal_scales_that_fit_the_data(world, page, live_one):
    login(page, world.url)
    res = world.others["impedance"]
    page.goto(f"{world.url}/ui/results/{res['id']}")
    page.wait_for_selector("#render-nyquist svg")
    svg = "#render-nyquist svg"
    x0, x1, y0, y1 = map(float, page.get_attribute(svg, "data-range").split())
    pw, ph = map(float, page.get_attribute(svg, "data-plot").split())
    assert (x1 - x0) / pw == pytest.approx((y1 - y0) / ph, rel=1e-3)  # ohms per pixel alike
    text = live_one.client("alice").download(res["files"][0]["id"]).decode()
    lines = text.splitlines()
    n = int(next(line for line in lines[:5] if "Nb header lines" in line).split(":")[1])
    head = lines[n - 1].split("\t")
    re_col = head.index("Re(Z)/Ohm")
    xs = [float(row.split("\t")[re_col]) for row in lines[n:] if row.strip()]
    assert x0 <= min(xs) and max(xs) <= x1
    assert (max(xs) - min(xs)) >= 0.25 * (x1 - x0)  # the data fills the width it is given


def test_an_unservable_request_shows_its_reason(world, page, live_one):
    pl = world.planner
    assert pl.lab_request is not None  # the funnel's station request: nobody serves it here
    login(page, world.url)
    page.goto(f"{world.url}/ui/requests/{pl.lab_request['id']}")
    page.wait_for_selector("main h1")
    reason = page.inner_text("main .kv")
    assert "servable" in reason and "no active tenant provides conductivity" in reason


def test_form_request_follows_its_status_live(world, page):
    login(page, world.url)
    page.goto(f"{world.url}/ui/capabilities/conductivity/landesfeind2019")
    page.wait_for_selector("#request-form")
    page.select_option("#tenant", label="test-planner")
    page.fill("#parameters", json.dumps({"formulation": formulation(0.9), "temperature": 300.0}))
    page.click("#submit")
    page.wait_for_selector("#form-success")
    # the worker answers; the line learns it without a reload
    page.wait_for_selector("#form-success #posted-result", timeout=30000)
    assert "resolved" in page.inner_text("#form-success")
    # outside what any tenant accepts: refused with the reason, unless queued
    page.fill("#parameters", json.dumps({"formulation": formulation(0.9), "temperature": 400.0}))
    page.click("#submit")
    page.wait_for_selector("#form-errors")
    assert "no tenant can serve it now" in page.inner_text("#form-errors")
    page.check("#queue")
    page.click("#submit")
    page.wait_for_selector("#form-success")
    assert "pending" in page.inner_text("#form-success")
    assert "outside the limitations" in page.inner_text("#form-success")


def test_provenance_groups_siblings_and_expands_them(world, page, live_one):
    alice = live_one.client("alice")
    inst = next(t for t in alice.tenants() if t["name"] == "test-instrument")

    def post(k: int, **kw: Any) -> dict[str, Any]:
        return alice.post_result(
            None,
            inst["id"],
            {"circuit": "R0-p(R1,C1)", "R0": 10.0 + k, "R1": 40.0},
            quantity="impedance_spectrum",
            method="peis",
            parameters={},
            **kw,
        )

    parts = [post(k) for k in range(12)]
    total = post(99, provenance={"inputs": [p["id"] for p in parts]})
    login(page, world.url)
    page.goto(f"{world.url}/ui/results/{total['id']}")
    page.wait_for_selector("#prov-graph svg.graph")
    nodes = lambda: page.locator("#prov-graph [data-node]").count()  # noqa: E731
    if int(page.get_attribute("#prov-graph", "data-grouped") or 0) == 0:
        pytest.skip("this broker's provenance graph does not list the inputs as siblings")
    grouped = nodes()
    group = page.locator("#prov-graph [data-group]").first
    assert "siblings" in (group.text_content() or "")
    group.click()
    until(page, lambda: nodes() > grouped, what="the group to expand")
