"""``bigmap demo`` (``make demo``): the closed loop a new user sees first.

An embedded broker (``bigmap serve`` in a child process, SQLite in a temporary folder), two
workers as child processes (``bigmap worker electrolyte-model``: the data-driven transport
model, cheap and approximate; ``bigmap worker virtual-lab``: the emulated electrolyte
station, which prepares the formulation and measures impedance spectra, expensive and
close to the truth), and the planner maximising the ionic conductivity of LiPF6 in
EC/PC/EMC at a chosen temperature. The planner's GP spans both fidelities: the model's
predictions guide where the station measures. At the end the best formulations it measured
are printed against the best measured in the HTE dataset (``bigmap.data.load_hte()``,
Flores et al., Digital Discovery 1 (2022) 440).

The search space is the one the dataset spans (Rahmanian et al., Sci. Data 10 (2023) 43):
EC and PC share 30 % of the solvent mass, EMC 70 %; the PC share of the cyclic carbonates
r = m_PC / (m_EC + m_PC) runs over 0.087 ... 1, the LiPF6 molality over 0.2 ... 2.1 mol/kg.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bigmap.schemas import formulation as fm


class DemoError(RuntimeError):
    pass


# EMC is 70 % of the solvent mass in the dataset; EC + PC share the rest.
EMC = fm.HTE_EMC_MASS_FRACTION
CYCLIC = 1.0 - EMC
R_MIN = fm.HTE_R_RANGE[0]


def formulation_parameters(x: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """Request parameters (FINALES conductivity shape) of a candidate: solvent mass
    fractions EC/PC/EMC and the LiPF6 molality ``c_LiPF6`` [mol/kg]."""
    cyclic = x["EC"] + x["PC"]
    r = x["PC"] / cyclic if cyclic > 0 else 1.0
    return {
        "formulation": fm.hte_to_formulation(r, x["c_LiPF6"], emc_mass_fraction=x["EMC"]),
        "temperature": context["temperature"],
    }


def demo_spec(temperature: float, requests: int, seed: int) -> dict[str, Any]:
    return {
        "name": f"max conductivity of LiPF6 in EC/PC/EMC at {temperature:g} K",
        "description": "bigmap demo: the electrolyte model guides the emulated station",
        "seed": seed,
        "variables": [
            {
                "name": "solvent",
                "type": "mixture",
                "unit": "mass fraction",
                "components": [
                    {"name": "EC", "low": 0.0, "high": round(CYCLIC * (1 - R_MIN), 6)},
                    {"name": "PC", "low": round(CYCLIC * R_MIN, 6), "high": round(CYCLIC, 6)},
                    {"name": "EMC", "low": EMC, "high": EMC},
                ],
            },
            {"name": "c_LiPF6", "type": "continuous", "low": 0.2, "high": 2.1, "unit": "mol/kg"},
        ],
        "context": {"temperature": temperature},
        "objectives": [{"name": "conductivity", "direction": "maximize", "unit": "S/m"}],
        "measurements": [
            {
                "capability": "conductivity/transport_model",
                "cost": 1,
                "fidelity": 0.5,
                "builder": "bigmap.planner.demo:formulation_parameters",
                "outputs": {"conductivity": "conductivity.values.0"},
                "uncertainty": {"conductivity": "conductivity.uncertainty.0"},
                "timeout_seconds": 600,
            },
            {
                "capability": "conductivity/two_electrode",
                "cost": 10,
                "fidelity": 1.0,
                "builder": "bigmap.planner.demo:formulation_parameters",
                "outputs": {"conductivity": "conductivity.values.mean"},
                "timeout_seconds": 600,
            },
        ],
        "batch_size": 2,
        "max_pending": 3,
        # the cost budget binds (a station measurement costs 10 model predictions), so the
        # planner must choose where the station's measurements are worth it
        # the wall-time budget is a safety net only: 60 requests take about 5 min on a quiet
        # 2-core machine (much longer when it is shared)
        "budget": {"requests": requests, "cost": 2.5 * requests, "wall_seconds": 3600.0},
        "strategy": {"name": "botorch", "n_init": 4, "fidelity": "cost_aware"},
    }


def _worker(name: str, url: str, token: str, log: Path, env: dict[str, str]) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "bigmap.cli",
        "worker",
        name,
        "--broker",
        url,
        "--token",
        token,
        "--poll",
        "1",
        "--log-level",
        "warning",
    ]
    return subprocess.Popen(cmd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def _wait_tenants(
    client: Any, names: set[str], procs: list[subprocess.Popen], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        have = {t["name"] for t in client.tenants()}
        if names <= have:
            return
        for p in procs:
            if p.poll() is not None:
                raise DemoError(f"a worker exited with code {p.returncode} (see the worker logs)")
        time.sleep(0.5)
    raise DemoError(f"the workers {sorted(names)} did not register within {timeout:g} s")


def dataset_best(temperature: float, top: int = 3) -> list[dict[str, Any]]:
    """The best formulations of the HTE dataset at ``temperature``, replicates averaged.
    The dataset is measured every 10 K; between two measured temperatures every formulation
    measured at both is interpolated linearly in T (``interpolated``)."""
    from bigmap.data import load_hte

    d = load_hte()
    temps = sorted(float(t) for t in d["T"].unique())
    means = d.groupby(["T", "r", "c"])["kappa"].agg(["mean", "count"]).reset_index()
    exact = [t for t in temps if abs(t - temperature) < 1e-6]
    if exact:
        g = means[means["T"] == exact[0]].sort_values("mean", ascending=False).head(top)
        rows = [
            (float(r["r"]), float(r["c"]), float(r["mean"]), int(r["count"]))
            for _, r in g.iterrows()
        ]
        between = None
    else:
        below = max(t for t in temps if t < temperature)
        above = min(t for t in temps if t > temperature)
        w = (temperature - below) / (above - below)
        lo = means[means["T"] == below].set_index(["r", "c"])
        hi = means[means["T"] == above].set_index(["r", "c"])
        both = lo.join(hi, lsuffix="_lo", rsuffix="_hi", how="inner")
        both["kappa"] = (1 - w) * both["mean_lo"] + w * both["mean_hi"]
        both["n"] = both["count_lo"] + both["count_hi"]
        g = both.sort_values("kappa", ascending=False).head(top).reset_index()
        rows = [
            (float(r["r"]), float(r["c"]), float(r["kappa"]), int(r["n"])) for _, r in g.iterrows()
        ]
        between = [below, above]
    return [
        {
            "T": temperature,
            "r": r,
            "c": c,
            "kappa": k,
            "n": n,
            "interpolated": between is not None,
            "between": between,
        }
        for r, c, k, n in rows
    ]


def default_demo_db() -> Path:
    """Where the demo keeps its database: the user data dir, one file per run."""
    from datetime import UTC, datetime

    from bigmap.config import default_data_dir

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return default_data_dir() / "demo" / f"demo-{stamp}.db"


DEMO_USER, DEMO_PASSWORD = "demo", "demo-password-123"


def run_demo(
    *,
    temperature: float = 298.15,
    requests: int = 60,
    seed: int = 1,
    db: Path | None = None,
    keep: bool = False,
    console: Any = None,
    wait_forever: Any = None,
) -> dict[str, Any]:
    """Run the demo; with ``keep`` the broker and the workers stay up afterwards until
    ``wait_forever()`` returns (Ctrl-C at the command line)."""
    from rich.console import Console
    from rich.table import Table

    from bigmap.embedded import LocalBroker
    from bigmap.planner.display import CampaignProgress
    from bigmap.planner.runner import CampaignRunner
    from bigmap.planner.spec import parse_spec

    console = console or Console()
    lo, hi = fm.HTE_T_RANGE
    if not lo <= temperature <= hi:
        raise DemoError(
            f"the temperature must be within the dataset's {lo}-{hi} K, not {temperature}"
        )
    t0 = time.monotonic()
    tmp = tempfile.TemporaryDirectory(prefix="bigmap-demo-")
    work = Path(tmp.name)
    db_path = (db or default_demo_db()).expanduser().resolve()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{db_path}"
    env = {
        **os.environ,
        "BIGMAP_LAB_TIME_SCALE": os.environ.get("BIGMAP_LAB_TIME_SCALE", "0.0002"),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
    }
    spec = parse_spec(demo_spec(temperature, requests, seed))
    procs: list[subprocess.Popen] = []
    broker = LocalBroker(url, log_path=work / "broker.log")
    console.print(
        f"[bold]bigmap demo[/bold]: a closed loop that maximises the ionic conductivity of LiPF6 "
        f"in EC/PC/EMC at {temperature:g} K. It starts a broker, two workers (the electrolyte "
        "model, cheap, and an emulated electrolyte station, expensive) and a planner that "
        f"spends {requests} requests (cost budget {2.5 * requests:g}: a station measurement "
        "costs 10 model predictions). It takes about 5 minutes on a quiet 2-core machine "
        f"(it stops after an hour at most). Database: {db_path}",
        soft_wrap=True,
    )
    try:
        broker.start()
        # its workers define their capabilities: the role that may (docs/security.md)
        token = broker.user(DEMO_USER, "maintainer", password=DEMO_PASSWORD)
        client = broker.client(token)
        console.print(
            f"broker at {broker.url}; starting workers electrolyte-model, virtual-lab ..."
        )
        for name in ("electrolyte-model", "virtual-lab"):
            procs.append(_worker(name, broker.url, token, work / f"{name}.log", env))
        _wait_tenants(client, {"electrolyte-model", "virtual-lab"}, procs, 120)
        runner = CampaignRunner.create(client, spec, poll=0.3)
        console.print(
            f"campaign {runner.cid}: watch it at {broker.url}/ui/campaigns/{runner.cid} "
            f"(sign in as {DEMO_USER} / {DEMO_PASSWORD})",
            soft_wrap=True,
        )
        with CampaignProgress(spec, console) as view:
            runner.on_update = view.update
            runner.run()
        result = _report(runner, temperature, console, Table)
        result["seconds"] = time.monotonic() - t0
        result["database"] = str(db_path)
        console.print(
            f"done in {result['seconds']:.0f} s: {result['n_model']} model predictions, "
            f"{result['n_measured']} station measurements, {result['n_failed']} failed "
            f"({runner.reason})"
        )
        console.print(f"database kept at {db_path}", soft_wrap=True)
        if keep:
            console.print(
                f"the broker and its workers keep running (Ctrl-C stops them):\n"
                f"  dashboard: {broker.url}/ui/campaigns/{runner.cid} "
                f"(user {DEMO_USER}, password {DEMO_PASSWORD})\n"
                f"  export BIGMAP_BROKER_URL={broker.url} BIGMAP_TOKEN={token}\n"
                "  then, in another terminal: bigmap campaign show "
                f"{runner.cid[:8]}; bigmap request conductivity/transport_model --template",
                soft_wrap=True,
            )
            (wait_forever or _wait_for_ctrl_c)()
        else:
            console.print(
                "next: 'bigmap demo --keep' keeps the broker running to explore it in the "
                "dashboard; docs/tutorial.md takes you from here to a campaign and a tenant of "
                f"your own; serve this database again with: bigmap serve --db {db_path}",
                soft_wrap=True,
            )
        return result
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        broker.close()
        tmp.cleanup()


def _wait_for_ctrl_c() -> None:
    """Wait for Ctrl-C or SIGTERM (then the caller stops the broker and the workers)."""

    def stop(*_: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)  # also when started with SIGINT ignored (&, nohup)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


def _report(runner: Any, temperature: float, console: Any, Table: Any) -> dict[str, Any]:
    h = runner.h
    meas = [
        o
        for o in h.observations
        if o.capability == "conductivity/two_electrode" and not o.failed and "conductivity" in o.y
    ]
    model = [
        o for o in h.observations if o.capability == "conductivity/transport_model" and not o.failed
    ]
    meas.sort(key=lambda o: -o.y["conductivity"])
    predicted: dict[str, dict[str, float]] = {}
    for ev in runner.client.campaign_events(runner.cid, kind="proposal"):
        for c in ev["data"]["candidates"]:
            if c.get("request_id") and c.get("predicted"):
                predicted[c["request_id"]] = c["predicted"]
    t = Table(title=f"best formulations measured by the emulated station at {temperature:g} K")
    for col in ("#", "EC:PC:EMC (mass)", "LiPF6 mol/kg", "r", "kappa S/m", "mS/cm", "expected"):
        t.add_column(col)
    for i, o in enumerate(meas[:3], start=1):
        x = o.x
        r = x["PC"] / (x["EC"] + x["PC"])
        pred = predicted.get(o.request_id or "")
        t.add_row(
            str(i),
            f"{x['EC']:.3f}:{x['PC']:.3f}:{x['EMC']:.2f}",
            f"{x['c_LiPF6']:.3f}",
            f"{r:.3f}",
            f"{o.y['conductivity']:.4f}",
            f"{o.y['conductivity'] * 10:.2f}",
            f"{pred['mean']:.3f}±{pred['std']:.3f}" if pred else "-",
        )
    console.print(t)
    console.print("(expected: the planner's GP over both fidelities, before the measurement)")
    ref = dataset_best(temperature)
    how = (
        f"interpolated between {ref[0]['between'][0]:g} and {ref[0]['between'][1]:g} K"
        if ref and ref[0]["interpolated"]
        else "as measured"
    )
    d = Table(title=f"best in the measured HTE dataset at {temperature:g} K ({how})")
    for col in ("#", "r", "LiPF6 mol/kg", "kappa S/m", "mS/cm", "measurements"):
        d.add_column(col)
    for i, row in enumerate(ref, start=1):
        d.add_row(
            str(i),
            f"{row['r']:.3f}",
            f"{row['c']:.3f}",
            f"{row['kappa']:.4f}",
            f"{row['kappa'] * 10:.2f}",
            str(row["n"]),
        )
    console.print(d)
    console.print("(Flores et al., Digital Discovery 1 (2022) 440; replicates averaged)")
    return {
        "campaign_id": runner.cid,
        "best": None
        if not meas
        else {
            "x": meas[0].x,
            "conductivity": meas[0].y["conductivity"],
            "result_id": meas[0].result_id,
        },
        "dataset_best": ref,
        "n_model": len(model),
        "n_measured": len(meas),
        "n_failed": sum(1 for o in h.observations if o.failed),
        "status": runner.status,
    }
