"""Reading a campaign back: its best candidates with their provenance (``bigmap campaign
show``) and a step-by-step replay from the stored events (``bigmap campaign replay``), which
can re-fit every recorded model state from the results it names and check that the
planner's recorded predictions come out again."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bigmap.client.errors import BrokerError
from bigmap.client.http import BrokerClient
from bigmap.planner.spec import CampaignSpec, parse_spec


def best_candidates(
    client: BrokerClient, campaign_id: str, top: int = 5
) -> tuple[CampaignSpec, dict[str, Any], list[dict[str, Any]]]:
    """The campaign, and its ``top`` results at the reference fidelity of the first
    objective, best first, each with the provenance of its result."""
    camp = client.campaign(campaign_id)
    spec = parse_spec(camp["spec"], f"of campaign {campaign_id}")
    obj = spec.objectives[0]
    target = max(spec.measurements_of(obj.name), key=lambda m: m.fidelity).capability
    rows = []
    for ev in client.campaign_events(campaign_id, kind="observation"):
        d = ev["data"]
        y = (d.get("y") or {}).get(obj.name)
        if d.get("failed") or y is None or d.get("capability") != target:
            continue
        rows.append(d)
    rows.sort(key=lambda d: -obj.sign * d["y"][obj.name])
    out = []
    tenants: dict[str, str] = {}
    for d in rows[:top]:
        row = {
            "value": d["y"][obj.name],
            "y": d["y"],
            "x": d["x"],
            "capability": d["capability"],
            "request_id": d.get("request_id"),
            "result_id": d.get("result_id"),
        }
        if d.get("result_id"):
            try:
                res = client.result(d["result_id"])
                sw = res.get("software") or {}
                row["software"] = f"{sw.get('name', '')} {sw.get('version', '')}".strip()
                tid = str(res.get("tenant_id") or "")
                if tid and tid not in tenants:
                    try:
                        tenants[tid] = client.tenant(tid)["name"]
                    except BrokerError:
                        tenants[tid] = tid
                row["tenant"] = tenants.get(tid, "")
                prov = res.get("provenance") or {}
                keys = [
                    k
                    for k in ("emulated", "emulator", "instrument", "model", "inputs")
                    if k in prov
                ]
                row["provenance"] = "; ".join(f"{k}: {_short(prov[k])}" for k in keys) or (
                    f"{len(prov)} field(s)" if prov else ""
                )
                row["created_at"] = res.get("created_at")
                row["sha256"] = res.get("sha256")
            except BrokerError as exc:
                row["provenance"] = f"(result unavailable: {exc.message})"
        out.append(row)
    return spec, camp, out


def _short(v: Any, n: int = 60) -> str:
    s = str(v)
    return s if len(s) <= n else s[: n - 3] + "..."


@dataclass
class ReplayStep:
    step: int
    strategy: str
    candidates: list[dict[str, Any]]
    observations_before: int
    best_before: float | None
    models: list[dict[str, Any]] = field(default_factory=list)
    check: dict[str, Any] | None = None


def replay(client: BrokerClient, campaign_id: str, *, refit: bool = False) -> list[ReplayStep]:
    """The campaign's steps in order, rebuilt from its events. With ``refit``, every model
    state is fitted again on the results it names (fetched from the broker) and its
    predictions at the step's candidates are compared with the recorded ones."""
    camp = client.campaign(campaign_id)
    spec = parse_spec(camp["spec"], f"of campaign {campaign_id}")
    obj = spec.objectives[0]
    target = max(spec.measurements_of(obj.name), key=lambda m: m.fidelity).capability
    events = client.campaign_events(campaign_id)
    steps: list[ReplayStep] = []
    n_obs = 0
    best: float | None = None
    obs_by_result: dict[str, dict[str, Any]] = {}
    models: dict[int, list[dict[str, Any]]] = {}
    for ev in events:
        d = ev["data"]
        if ev["kind"] == "observation":
            n_obs += 1
            if d.get("result_id"):
                obs_by_result[d["result_id"]] = d
            y = (d.get("y") or {}).get(obj.name)
            usable = not d.get("failed") and y is not None and d.get("capability") == target
            if usable and (best is None or obj.sign * y > obj.sign * best):
                best = y
        elif ev["kind"] == "model_state":
            models.setdefault(d["step"], []).append(d)
        elif ev["kind"] == "proposal":
            st = ReplayStep(d["step"], d.get("strategy", ""), d["candidates"], n_obs, best)
            st.models = models.get(d["step"], [])
            if refit and st.models:
                st.check = _refit(client, spec, st, obs_by_result)
            steps.append(st)
    return steps


def _refit(
    client: BrokerClient,
    spec: CampaignSpec,
    st: ReplayStep,
    obs_by_result: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    from bigmap.planner.core import Planner
    from bigmap.planner.models import fit_output, predict
    from bigmap.planner.runner import extract_outputs

    planner = Planner(spec)
    obj = spec.objectives[0].name
    state = next((m for m in st.models if m.get("output") == obj), None)
    if state is None:
        return {"ok": False, "reason": "no model of the first objective at this step"}
    wanted = set(state["training_result_ids"]) | set(state.get("outliers") or [])
    ids = [rid for rid in obs_by_result if rid in wanted]  # in the order they were taken in
    if len(ids) != len(wanted):
        return {"ok": False, "reason": "a training result is not among the observations"}
    X, y, keys = [], [], []
    for rid in ids:
        o = obs_by_result.get(rid)
        if o is None:
            return {"ok": False, "reason": f"result {rid} is not among the observations"}
        res = client.result(rid)  # the stored result, not the event's copy
        m = spec.measurement(o["capability"])
        ys, _ = extract_outputs(m, spec, res["data"])
        z = planner.space.encode(o["x"])
        if planner.multi_fidelity:
            z = np.append(z, m.fidelity)
        X.append(z)
        y.append(ys[obj])
        keys.append(rid)
    mf = len(planner.measures[obj]) > 1
    om = fit_output(
        obj,
        np.array(X),
        np.array(y),
        keys,
        fidelity_col=planner.space.d if mf else None,
        d_model=planner.space.d,
        robust=spec.strategy.robust,
        outlier_z=spec.strategy.outlier_z,
        sign=spec.objectives[0].sign,
        seed=planner.seed(st.step),
        kernel=spec.strategy.kernel,
    )
    diffs = []
    for c in st.candidates:
        pred = c.get("predicted")
        if not pred:
            continue
        z = planner._with_fidelity(planner.space.encode(c["x"])[None, :])
        mean, std = predict(om.model, z, om.sign)
        scale = max(abs(pred["std"]), 1e-12)
        diffs.append(abs(float(mean[0]) - pred["mean"]) / scale)
    worst = max(diffs) if diffs else 0.0
    return {
        "ok": bool(not diffs or worst < 0.05),
        "n_train": len(om.train_ids),
        "recorded_n_train": state["n_train"],
        "same_outliers": sorted(om.outliers) == sorted(state.get("outliers") or []),
        "max_prediction_shift_in_std": worst if math.isfinite(worst) else None,
    }
