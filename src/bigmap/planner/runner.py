"""The planner as a tenant: a campaign run through a broker, recorded step by step.

Every step is a campaign event (``docs/campaigns.md``), written with an idempotency key, so
that a runner killed at any instant resumes where it stopped and never posts twice:

1. ``intent`` ``{step, candidates, sobol_used, grid_next}``: what step ``k`` will ask for,
   written *before* posting;
2. the requests, each with the idempotency key ``campaign:{id}:step:{k}:{i}`` (posting again
   returns the first request);
3. ``proposal`` with the request ids; ``model_state`` for each fitted model;
4. ``observation`` for every result or failure taken in (key ``obs:{request id}``), and
   the funnel's ``decision`` about it (key ``decision:{request id}``).

On resume the events are read back into a ``History``; an ``intent`` without its
``proposal`` is posted again with the same keys (the broker returns the requests that were
already made), and requests that finished while no runner was watching are taken in.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bigmap.client.errors import (
    BrokerError,
    BrokerUnavailable,
    ConflictError,
    NotFoundError,
    ValidationFailed,
)
from bigmap.client.http import BrokerClient
from bigmap.planner.core import Candidate, History, Observation, Pending, Planner
from bigmap.planner.rules import Rules, Verdict
from bigmap.planner.spec import CampaignSpec, Measurement, parse_spec

log = logging.getLogger("bigmap.planner")

PLANNER_NAME = "bigmap-planner"
TERMINAL = {"resolved", "failed", "retracted"}


def _software() -> dict[str, Any]:
    import bigmap

    out = {"name": "bigmap-planner", "version": getattr(bigmap, "__version__", "0")}
    try:
        import botorch

        out["botorch"] = botorch.__version__
    except Exception:  # botorch is optional for the baselines
        pass
    return out


# ----------------------------------------------------------------------------- parameters


_FULL = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_\-]*)\}$")
_PART = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_\-]*)\}|\{([A-Za-z_][A-Za-z0-9_\-]*)\}")


def _fill(obj: Any, values: dict[str, Any]) -> Any:
    if isinstance(obj, dict):
        return {k: _fill(v, values) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_fill(v, values) for v in obj]
    if isinstance(obj, str):
        m = _FULL.match(obj)
        if m:
            return values[m.group(1)]
        return _PART.sub(lambda mm: str(values[mm.group(1) or mm.group(2)]), obj)
    return obj


def build_parameters(
    m: Measurement,
    x: dict[str, Any],
    context: dict[str, Any],
    convert: dict[str, Callable[[float], float]] | None = None,
) -> dict[str, Any]:
    """The request parameters of candidate ``x`` for measurement ``m``; ``convert`` maps a
    variable to the function that converts its value to the unit of the template parameter
    it fills (``bigmap.planner.check.template_units``)."""
    if m.builder:
        import importlib

        mod, _, fn = m.builder.partition(":")
        return getattr(importlib.import_module(mod), fn)(dict(x), dict(context))
    values = {**context, **x}
    if m.parameters is None:
        return values
    if convert:
        values = {k: convert[k](v) if k in convert else v for k, v in values.items()}
    return _fill(m.parameters, values)


def get_path(data: Any, path: str) -> Any:
    """``values.0.conductivity`` in a result's data; a last part ``mean``, ``min`` or ``max``
    reduces a list of numbers (``values.mean``)."""
    cur = data
    for part in path.split("."):
        if isinstance(cur, list) and part in ("mean", "min", "max"):
            nums = [v for v in cur if isinstance(v, int | float) and not isinstance(v, bool)]
            if not nums or len(nums) != len(cur):
                raise KeyError(path)
            cur = {"mean": sum(nums) / len(nums), "min": min(nums), "max": max(nums)}[part]
        elif isinstance(cur, list):
            try:
                cur = cur[int(part)]
            except (ValueError, IndexError):
                raise KeyError(path) from None
        elif isinstance(cur, dict):
            if part not in cur:
                raise KeyError(path)
            cur = cur[part]
        else:
            raise KeyError(path)
    return cur


def extract_outputs(
    m: Measurement,
    spec: CampaignSpec,
    data: dict[str, Any],
    units: dict[str, tuple[str, str]] | None = None,
) -> tuple[dict[str, float], dict[str, float]]:
    """(outputs, their uncertainties) from a result's data, converted from the capability's
    unit to the campaign's (``units``: output -> (given, wanted)); ``ValueError`` naming the
    path when a value is missing or not a finite number."""
    ys: dict[str, float] = {}
    for name, path in m.output_map(spec).items():
        try:
            v = get_path(data, path)
        except KeyError:
            raise ValueError(f"the result has no value at {path!r} (for {name})") from None
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ValueError(f"the result's {path!r} is {v!r}, not a finite number (for {name})")
        ys[name] = float(v)
    stds: dict[str, float] = {}
    for name, path in m.uncertainty.items():
        with contextlib.suppress(KeyError, TypeError, ValueError):
            stds[name] = float(get_path(data, path))
    for name, (given, wanted) in (units or {}).items():
        if given == wanted:
            continue
        from bigmap.schemas.units import converter, scale

        if name in ys:
            ys[name] = converter(given, wanted)(ys[name])
        if name in stds:
            stds[name] = abs(scale(given, wanted)) * stds[name]
    return ys, stds


# ----------------------------------------------------------------------------- the runner


class CampaignRunner:
    """Runs (or resumes) one campaign against a broker."""

    def __init__(
        self,
        client: BrokerClient,
        campaign: dict[str, Any],
        spec: CampaignSpec,
        tenant_id: str,
        *,
        poll: float = 0.5,
        on_update: Callable[[CampaignRunner], None] | None = None,
        base_dir: Any = None,
    ) -> None:
        self.client = client
        self.campaign = campaign
        self.cid = str(campaign["id"])
        self.spec = spec
        self.tenant_id = tenant_id
        self.planner = Planner(spec, base=base_dir)
        self.rules = Rules(self.planner)
        self.h = History()
        self.step = 0
        self.decisions: dict[str, Verdict] = {}
        self.poll = poll
        self.on_update = on_update
        self.status = campaign.get("status", "created")
        self.reason = ""
        self.events_seen = 0
        self._pending_since: dict[str, float] = {}
        self._unposted: list[dict[str, Any]] = []
        self._advanced: set[str] = set()
        self._last_control_check = 0.0
        self.model_states: list[dict[str, Any]] = []
        self.notes: list[str] = []
        # output -> (unit the capability gives, unit of the campaign), by capability; and
        # variable -> converter to the unit of the template parameter it fills
        self.units: dict[str, dict[str, tuple[str, str]]] = {}
        self.param_convert: dict[str, dict[str, Callable[[float], float]]] = {}
        self._last_heartbeat = 0.0

    # ------------------------------------------------------------------ construction

    @staticmethod
    def planner_tenant(client: BrokerClient, name: str = PLANNER_NAME) -> str:
        """Register (or find) the planner tenant of this user; returns its id."""
        info = client.register_tenant(
            {
                "name": name,
                "kind": "planner",
                "description": "bigmap campaign planner (random, Sobol, grid, BoTorch)",
                "software": _software(),
                "limitations": [],
            }
        )
        return str(info["id"])

    @classmethod
    def create(
        cls,
        client: BrokerClient,
        spec: CampaignSpec,
        *,
        name: str | None = None,
        idempotency_key: str | None = None,
        tenant_name: str = PLANNER_NAME,
        **kwargs: Any,
    ) -> CampaignRunner:
        tid = cls.planner_tenant(client, tenant_name)
        camp = client.create_campaign(
            name or spec.name,
            spec.model_dump(mode="json", exclude_none=True),
            tenant_id=tid,
            idempotency_key=idempotency_key,
        )
        runner = cls(client, camp, spec, tid, **kwargs)
        runner.load()
        return runner

    @classmethod
    def attach(cls, client: BrokerClient, campaign_id: str, **kwargs: Any) -> CampaignRunner:
        """The runner of an existing campaign, its history read back from the events."""
        camp = client.campaign(campaign_id)
        spec = parse_spec(camp["spec"], f"of campaign {campaign_id}")
        tid = str(camp["tenant_id"])
        runner = cls(client, camp, spec, tid, **kwargs)
        runner.load()
        return runner

    # ------------------------------------------------------------------ events

    def _event(
        self, kind: str, data: dict[str, Any], key: str, request_ids: list[str] | None = None
    ) -> dict[str, Any]:
        return self.client.add_campaign_event(
            self.cid,
            kind,
            data,
            request_ids=[r for r in request_ids or [] if r],
            idempotency_key=f"{self.cid}:{key}",
        )

    def events(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        after = 0
        while True:
            page = self.client.campaign_events(self.cid, after=after)
            if not page:
                return out
            out.extend(page)
            after = page[-1]["seq"]
            if len(page) < 10000:
                return out

    def load_units(self) -> None:
        """The unit conversions of the campaign, from the broker's catalogue: outputs into the
        objectives' units, variables into the units of the template parameters they fill."""
        from bigmap.planner.check import output_units, template_units

        caps: dict[str, dict[str, Any]] = {}
        for m in self.spec.measurements:
            with contextlib.suppress(NotFoundError):
                caps[m.capability] = self.client.capability(m.quantity, m.method)
        self.units = output_units(self.spec, caps)
        self.param_convert = {}
        for m in self.spec.measurements:
            for name, _, vu, pu in template_units(self.spec, m, caps.get(m.capability)):
                if vu != pu:
                    from bigmap.schemas.units import converter

                    self.param_convert.setdefault(m.capability, {})[name] = converter(vu, pu)

    def heartbeat(self, every: float = 30.0) -> None:
        """Tell the broker that the planner tenant is alive (at most every ``every`` s)."""
        now = time.monotonic()
        if now - self._last_heartbeat < every:
            return
        self._last_heartbeat = now
        with contextlib.suppress(BrokerError, BrokerUnavailable):
            self.client.heartbeat(self.tenant_id, _software())

    def load(self) -> None:
        """Rebuild the history from the campaign's events (a new campaign has none)."""
        self.load_units()
        h = History()
        intents: dict[int, dict[str, Any]] = {}
        proposals: dict[int, dict[str, Any]] = {}
        observed: dict[str, Observation] = {}
        self.decisions = {}
        evs = self.events()
        self.events_seen = len(evs)
        for ev in evs:
            d = ev["data"]
            kind = ev["kind"]
            if kind == "intent":
                intents[d["step"]] = d
                self.step = max(self.step, d["step"])
            elif kind == "proposal":
                proposals[d["step"]] = d
                self.step = max(self.step, d["step"])
            elif kind == "observation":
                o = Observation(
                    x=d["x"],
                    capability=d["capability"],
                    y=d.get("y") or {},
                    failed=bool(d.get("failed")),
                    message=d.get("message") or "",
                    request_id=d.get("request_id"),
                    result_id=d.get("result_id"),
                    tier=d.get("tier"),
                    step=d.get("step", 0),
                    cost=d.get("cost", 0.0),
                    fidelity=d.get("fidelity", 1.0),
                    std=d.get("std") or {},
                    pool_index=d.get("pool_index"),
                )
                h.observations.append(o)
                observed[o.request_id or f"step:{o.step}:{len(h.observations)}"] = o
            elif kind == "model_state":
                h.outliers |= set(d.get("outliers") or [])
            elif kind == "decision" and d.get("kind") in ("advance", "reject"):
                self.decisions[d["observation"]] = Verdict(
                    d["kind"], d.get("reason", ""), d.get("threshold"), d.get("next_tier")
                )
        for step in sorted(intents):
            d = intents[step]
            h.sobol_used = max(h.sobol_used, d.get("sobol_used", 0))
            h.grid_next = max(h.grid_next, d.get("grid_next", 0))
            cands = [self._cand(c) for c in d["candidates"]]
            self.planner.note_proposed(h, cands)
        for step in sorted(proposals):
            for c in proposals[step]["candidates"]:
                rid = c.get("request_id")
                if rid and rid not in observed:
                    h.pending.append(
                        Pending(
                            c["x"],
                            c["capability"],
                            rid,
                            step,
                            c.get("tier"),
                            pool_index=c.get("pool_index"),
                        )
                    )
        self.h = h
        self._unposted = [intents[s] for s in sorted(intents) if s not in proposals]
        self._advanced = {
            c.get("origin") for d in intents.values() for c in d["candidates"] if c.get("origin")
        }

    @staticmethod
    def _cand(c: dict[str, Any]) -> Candidate:
        return Candidate(
            c["x"],
            c["capability"],
            c.get("source", "model"),
            acquisition=c.get("acquisition"),
            predicted=c.get("predicted"),
            tier=c.get("tier"),
            pool_index=c.get("pool_index"),
            origin=c.get("origin"),
        )

    # ------------------------------------------------------------------ posting

    def _post_step(self, step: int, cands: list[Candidate], intent: dict[str, Any]) -> None:
        """Post the requests of one step (idempotently) and record the proposal."""
        out_cands = []
        rids: list[str] = []
        for i, c in enumerate(cands):
            m = self.spec.measurement(c.capability)
            rid = None
            try:
                params = build_parameters(
                    m, c.x, self.spec.context, self.param_convert.get(c.capability)
                )
                req = self.client.create_request(
                    m.quantity,
                    m.method,
                    params,
                    tenant_id=self.tenant_id,
                    campaign_id=self.cid,
                    priority=m.priority,
                    idempotency_key=f"campaign:{self.cid}:step:{step}:{i}",
                    # a tenant that is restarting must not fail the campaign's requests: the
                    # runner retracts what stays unservable (unservable_timeout_seconds)
                    queue=True,
                )
                rid = str(req["id"])
                rids.append(rid)
                self.h.pending.append(
                    Pending(c.x, c.capability, rid, step, c.tier, pool_index=c.pool_index)
                )
                if req.get("status") in TERMINAL:
                    pass  # taken in by the next poll
            except (ValidationFailed, NotFoundError, KeyError, TypeError, ValueError) as exc:
                msg = (
                    exc.message if isinstance(exc, BrokerError) else f"{type(exc).__name__}: {exc}"
                )
                log.warning("could not post %s for %s: %s", c.capability, c.x, msg)
                self._observe(
                    Observation(
                        x=c.x,
                        capability=c.capability,
                        failed=True,
                        message=f"the request was refused: {msg}",
                        tier=c.tier,
                        step=step,
                        cost=m.cost,
                        fidelity=m.fidelity,
                        pool_index=c.pool_index,
                    ),
                    key=f"obs:step:{step}:{i}",
                )
            out_cands.append(c.event(rid))
        self._event(
            "proposal",
            {
                "step": step,
                "strategy": intent.get("strategy", self.spec.strategy.name),
                "candidates": out_cands,
                "sobol_used": intent.get("sobol_used", 0),
                "grid_next": intent.get("grid_next", 0),
                "notes": intent.get("notes", []),
            },
            f"proposal:{step}",
            rids,
        )

    def _intent(
        self, step: int, cands: list[Candidate], strategy: str, notes: list[str]
    ) -> dict[str, Any]:
        data = {
            "step": step,
            "strategy": strategy,
            "candidates": [c.event() for c in cands],
            "sobol_used": self.h.sobol_used,
            "grid_next": self.h.grid_next,
            "notes": notes,
        }
        self._event("intent", data, f"intent:{step}")
        return data

    def _propose(self, n: int) -> bool:
        """One planning step: fit, propose, record, post. False when nothing was posted."""
        step = self.step + 1
        sobol0, grid0 = self.h.sobol_used, self.h.grid_next
        prop = self.planner.propose(self.h, n, step)
        cands = self.rules.affordable(prop.candidates, self.h)
        if not cands:
            self.h.sobol_used, self.h.grid_next = sobol0, grid0
            if prop.notes:
                self.notes = prop.notes
            return False
        self.step = step
        for name, m in prop.models.items():
            state = {"step": step, **m.state()}
            if name == self.spec.objectives[0].name and prop.grid is not None:
                state["grid"] = prop.grid
            self.model_states.append(state)
            self._event("model_state", state, f"model:{step}:{name}")
        self.planner.note_proposed(self.h, cands)
        intent = self._intent(step, cands, prop.strategy, prop.notes)
        self._post_step(step, cands, intent)
        return True

    def _advance(self, o: Observation, v: Verdict) -> None:
        cands = self.rules.affordable([self.rules.advance(o, v)], self.h)
        if not cands:
            why = "passed, but the budget cannot pay the next tier"
            self.decisions[o.key] = Verdict("reject", why, v.threshold)
            self._decision(
                {"kind": "reject", "reason": why, "observation": o.key, "request_id": o.request_id},
                f"decision:budget:{o.key}",
            )
            return
        self.step += 1
        intent = self._intent(self.step, cands, "funnel", [v.reason])
        self._post_step(self.step, cands, intent)

    # ------------------------------------------------------------------ taking in results

    def _observe(self, o: Observation, key: str) -> None:
        self.h.observations.append(o)
        self._event(
            "observation",
            {
                "step": o.step,
                "request_id": o.request_id,
                "result_id": o.result_id,
                "capability": o.capability,
                "x": o.x,
                "y": o.y,
                "std": o.std,
                "cost": o.cost,
                "fidelity": o.fidelity,
                "tier": o.tier,
                "failed": o.failed,
                "message": o.message,
                "pool_index": o.pool_index,
            },
            key,
            [o.request_id] if o.request_id else [],
        )
        self._judge(o)

    def _judge(self, o: Observation) -> None:
        if o.key in self.decisions:
            return
        v = self.rules.judge(o, self.h)
        if v is None:
            return
        if v.kind == "advance" and not self.rules.affordable([self.rules.advance(o, v)], self.h):
            # one decision per observation: a pass the budget cannot follow up is a reject
            v = Verdict("reject", "passed, but the budget cannot pay the next tier", v.threshold)
        self.decisions[o.key] = v
        self._decision(
            {
                "kind": v.kind,
                "reason": v.reason,
                "observation": o.key,
                "request_id": o.request_id,
                "x": o.x,
                "tier": o.tier,
                "threshold": v.threshold,
                "next_tier": v.next_tier,
            },
            f"decision:{o.key}",
            [o.request_id] if o.request_id else [],
        )
        if v.kind == "advance":
            self._advance(o, v)

    def _decision(self, data: dict[str, Any], key: str, rids: list[str] | None = None) -> None:
        self._event("decision", {"step": self.step, **data}, key, rids)

    def collect(self) -> int:
        """Take in every finished request; retract the ones past their timeout."""
        if not self.h.pending:
            return 0
        reqs = {
            str(r["id"]): r for r in self.client.pages(f"/api/v1/campaigns/{self.cid}/requests")
        }
        now = time.time()
        n = 0
        for p in list(self.h.pending):
            r = reqs.get(p.request_id)
            if r is None:  # beyond the listing's first page: ask for it alone
                try:
                    r = self.client.request(p.request_id)
                except NotFoundError:
                    r = {
                        "status": "retracted",
                        "status_info": {"last_error": {"message": "the request disappeared"}},
                    }
            m = self.spec.measurement(p.capability)
            status = r["status"]
            if status not in TERMINAL:
                since = self._pending_since.setdefault(p.request_id, now)
                info = r.get("status_info") or {}
                why = None
                if m.timeout_seconds and now - since > m.timeout_seconds and status == "pending":
                    why = f"no result within {m.timeout_seconds:g} s"
                elif (
                    status == "pending"
                    and info.get("servable") is False
                    and now - since > self.spec.unservable_timeout_seconds
                ):
                    why = f"no tenant can serve it: {info.get('unservable_reason', '')}"
                if why:
                    with contextlib.suppress(ConflictError):
                        self.client.retract(p.request_id, f"retracted by the planner: {why}")
                        status = "retracted"
                        r = {**r, "status_info": {"last_error": {"message": why}}}
                if status not in TERMINAL:
                    continue
            o = Observation(
                x=p.x,
                capability=p.capability,
                request_id=p.request_id,
                tier=p.tier,
                step=p.step,
                cost=m.cost,
                fidelity=m.fidelity,
                pool_index=p.pool_index,
            )
            if status == "resolved":
                try:
                    res = self.client.result(r["result_id"])
                    o.result_id = str(res["id"])
                    o.y, o.std = extract_outputs(
                        m, self.spec, res["data"], self.units.get(p.capability)
                    )
                except (ValueError, BrokerError) as exc:
                    o.failed = True
                    o.message = str(exc.message if isinstance(exc, BrokerError) else exc)
            else:
                err = (r.get("status_info") or {}).get("last_error") or {}
                o.failed = True
                o.message = err.get("message") or f"the request was {status}"
            self.h.pending.remove(p)
            self._pending_since.pop(p.request_id, None)
            self._observe(o, f"obs:{p.request_id}")
            n += 1
        return n

    # ------------------------------------------------------------------ control, summary

    def _set(self, **changes: Any) -> None:
        with contextlib.suppress(BrokerError, BrokerUnavailable):
            self.campaign = self.client.update_campaign(self.cid, **changes)
            self.status = self.campaign.get("status", self.status)

    def update_summary(self) -> None:
        summary = self.rules.summary(
            self.h,
            self.step,
            decisions=self.decisions,
            extra={"notes": self.notes[-5:], "reason": self.reason}
            if self.reason or self.notes
            else None,
        )
        self._set(summary=summary)
        if self.on_update is not None:
            self.on_update(self)

    def control(self) -> str:
        try:
            self.campaign = self.client.campaign(self.cid)
        except (BrokerError, BrokerUnavailable) as exc:
            log.warning("could not read the campaign's control: %s", exc)
        return self.campaign.get("control", "run")

    def _retract_unclaimed(self, why: str) -> None:
        for p in list(self.h.pending):
            try:
                r = self.client.request(p.request_id)
                if r["status"] == "pending":
                    self.client.retract(p.request_id, why)
            except (ConflictError, NotFoundError):
                pass
        self.collect()

    def _elapsed(self) -> float:
        created = self.campaign.get("created_at")
        if not created:
            return 0.0
        t = datetime.fromisoformat(str(created).replace("Z", "+00:00"))
        if t.tzinfo is None:
            t = t.replace(tzinfo=UTC)
        return (datetime.now(UTC) - t).total_seconds()

    def pause(self, reason: str) -> None:
        """The runner stops here and the campaign waits, ``paused``, for a resume (its
        pending requests stay with the tenants; their results are taken in on resume)."""
        self.reason = reason
        self.update_summary()
        self._set(status="paused", message=f"{reason}; resume: bigmap campaign resume {self.cid}")

    def _finish(self, status: str, reason: str) -> None:
        self.reason = reason
        self._event("stop", {"reason": reason, "status": status}, f"stop:{status}")
        self.update_summary()
        self._set(status=status, message=reason)
        self.status = status

    # ------------------------------------------------------------------ the loop

    def run(
        self, *, max_steps: int | None = None, should_stop: Callable[[], bool] | None = None
    ) -> dict[str, Any]:
        """Run until the budget or a stopping rule ends the campaign, a user stops it, or
        ``max_steps`` planning steps were made (then it is ``paused``: resume later)."""
        if self.status in ("completed", "failed"):
            return self.campaign.get("summary", {})
        resumed = bool(self.h.observations or self.h.pending or self._unposted)
        if self.campaign.get("control") == "stop" or self.status == "stopped":
            self._set(control="run", message="resumed")
        self._set(status="running", message="resumed" if resumed else "started")
        if resumed:
            self._decision(
                {
                    "kind": "resume",
                    "reason": f"resumed with {len(self.h.observations)} results, "
                    f"{len(self.h.pending)} pending",
                },
                f"decision:resume:{self.events_seen}",
            )
        for intent in self._unposted:  # killed between the intent and the posting
            cands = [self._cand(c) for c in intent["candidates"]]
            self._post_step(intent["step"], cands, intent)
        self._unposted = []
        # funnel decisions never written, or advancements never posted
        for o in list(self.h.observations):
            v = self.decisions.get(o.key)
            if v is None:
                self._judge(o)
            elif v.kind == "advance" and o.key not in self._advanced:
                self._advance(o, v)
        steps = 0
        paused = False
        wall = self.spec.budget.wall_seconds
        while True:
            self.heartbeat()
            if should_stop is not None and should_stop():
                self.update_summary()
                return self.campaign.get("summary", {})
            ctl = self.control()
            if ctl == "stop":
                self._decision(
                    {"kind": "stop", "reason": "stopped by a user"}, f"decision:stop:{self.step}"
                )
                self._retract_unclaimed("the campaign was stopped")
                self._finish("stopped", "stopped by a user")
                break
            if ctl == "pause":
                if not paused:
                    paused = True
                    self._decision(
                        {"kind": "pause", "reason": "paused by a user"},
                        f"decision:pause:{self.events_seen}:{self.step}",
                    )
                    self._set(status="paused", message="paused by a user")
                if self.collect():
                    self.update_summary()
                time.sleep(self.poll)
                continue
            if paused:
                paused = False
                self._decision(
                    {"kind": "resume", "reason": "resumed by a user"},
                    f"decision:unpause:{self.events_seen}:{self.step}",
                )
                self._set(status="running", message="resumed by a user")
            changed = self.collect()
            if wall is not None and self._elapsed() > wall:
                self._retract_unclaimed("the campaign's wall-time budget is spent")
                self._finish("completed", f"the wall-time budget ({wall:g} s) is spent")
                break
            stop = self.rules.should_stop(self.h)
            if stop:
                self._retract_unclaimed(f"the campaign stopped: {stop[1]}")
                self._decision({"kind": "stop", "reason": stop[1]}, f"decision:rule:{stop[0]}")
                self._finish(*stop)
                break
            done = self.rules.exhausted(self.h)
            if done and not self.h.pending:
                self._finish("completed", done)
                break
            posted = False
            if not done and (max_steps is None or steps < max_steps):
                free = self.spec.in_flight - len(self.h.pending)
                sync_ok = self.spec.asynchronous or not self.h.pending
                if free > 0 and sync_ok:
                    req_left, _ = self.rules.left(self.h)
                    n = int(min(free, self.spec.batch_size, req_left))
                    if n > 0:
                        posted = self._propose(n)
                        if posted:
                            steps += 1
            if posted or changed:
                self.update_summary()
            limited = max_steps is not None and steps >= max_steps
            if not posted and limited:  # resume later
                self.pause(f"stopped after {max_steps} planning step(s) (--max-steps)")
                return self.campaign.get("summary", {})
            if not posted and not self.h.pending and not done:
                self._finish(
                    "completed", "; ".join(self.notes) or "the strategy has nothing more to propose"
                )
                break
            if not posted:
                time.sleep(self.poll)
        return self.campaign.get("summary", {})
