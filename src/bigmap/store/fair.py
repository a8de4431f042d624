"""FAIR queries on the store, every one filtered by what the reader may see:

- the whole of a campaign (campaign, steps, requests and their sub-requests, results, raw
  files, tenants, capabilities, status history) for JSON-LD / Turtle / RO-Crate exports;
- the provenance of a result (``provenance()``: a PROV graph as plain data);
- metadata search, where a restricted item made *findable* shows its metadata alone;
- access changes (tier, groups, embargo, findable) by the owner or an admin, and group
  membership by admins;
- recomputation of a result with identical parameters, linked to the original;
- minimum-metadata policies per capability, and the checks registered for arriving results;
- the records of archive exports (semantic versions, file hashes).

Rendering (JSON-LD, PROV-O, RO-Crate) is done by ``bigmap.ontology`` / ``bigmap.archive``;
this module only reads and writes rows, so it imports nothing above the store.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, select

from bigmap.schemas.common import AccessTier, Role, utcnow
from bigmap.schemas.request import RequestCreate
from bigmap.store import models as m
from bigmap.store.access import (
    Actor,
    can_find,
    can_see,
    event_refs,
    redact_event,
    redact_summary,
    uuid_refs,
    visibility_clause,
)
from bigmap.store.errors import Forbidden, Invalid, NotFound

if TYPE_CHECKING:
    from bigmap.store.broker import Broker

# the columns ``can_see`` reads
_ACCESS_COLS = ("owner_id", "access", "access_groups", "embargo_until")


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        return Role.observer


KINDS = {
    "requests": m.Request,
    "results": m.Result,
    "campaigns": m.Campaign,
    "files": m.File,
}

# Checks run on every arriving result, before it is stored: ``check(broker, info) ->
# (errors, report)``; errors refuse the result (422), the report is kept in its provenance.
# The server registers the minimum-metadata check here (bigmap.server.routers.fair), so that
# the store needs nothing above it.
ResultCheck = Callable[["Broker", dict[str, Any]], tuple[list[Any], dict[str, Any] | None]]
RESULT_CHECKS: list[ResultCheck] = []


# ----------------------------------------------------------------------------- rows -> dicts


def jsonable(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes):
        raise TypeError("bytes are not JSON")
    return value


def row_dict(row: Any, exclude: Iterable[str] = ()) -> dict[str, Any]:
    """Every column of a row (UUIDs and times as they are)."""
    skip = set(exclude)
    return {c.name: getattr(row, c.name) for c in row.__table__.columns if c.name not in skip}


def file_dict(f: m.File) -> dict[str, Any]:
    return row_dict(f, exclude=("content",))


@dataclass
class Bundle:
    """What a reader may see of a campaign (or of the whole store)."""

    campaign: dict[str, Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    contents: dict[str, bytes] = field(default_factory=dict)
    tenants: list[dict[str, Any]] = field(default_factory=list)
    capabilities: list[dict[str, Any]] = field(default_factory=list)
    users: list[dict[str, Any]] = field(default_factory=list)
    status_log: list[dict[str, Any]] = field(default_factory=list)
    recomputations: list[dict[str, Any]] = field(default_factory=list)
    metadata_only: list[dict[str, Any]] = field(default_factory=list)
    redacted_events: int = 0

    def result_with_files(self) -> list[dict[str, Any]]:
        by_result: dict[str, list[dict[str, Any]]] = {}
        for f in self.files:
            by_result.setdefault(str(f["result_id"]), []).append(f)
        return [{**r, "files": by_result.get(str(r["id"]), [])} for r in self.results]


@dataclass
class ProvBundle:
    """A PROV graph as plain data: nodes ``{id, kind, types, attrs}`` (kind: entity,
    activity, agent) and relations ``(relation, subject, object)`` between node ids
    (``urn:uuid:...``, ``urn:bigmap:...``)."""

    root: str
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    relations: list[tuple[str, str, str]] = field(default_factory=list)

    def node(self, node_id: str, kind: str, types: list[str], **attrs: Any) -> str:
        if node_id not in self.nodes:
            self.nodes[node_id] = {"id": node_id, "kind": kind, "types": types, "attrs": {}}
        self.nodes[node_id]["attrs"].update({k: v for k, v in attrs.items() if v is not None})
        return node_id

    def relate(self, relation: str, subject: str, obj: str) -> None:
        edge = (relation, subject, obj)
        if edge not in self.relations:
            self.relations.append(edge)


def _u(x: Any) -> str:
    return f"urn:uuid:{x}"


def _sw(sw: dict[str, Any]) -> str:
    import re

    name = re.sub(r"[^A-Za-z0-9_.-]", "_", str(sw.get("name", "unknown")))
    version = re.sub(r"[^A-Za-z0-9_.+-]", "_", str(sw.get("version", "unknown")))
    return f"urn:bigmap:software:{name}@{version}"


def _user(name: str) -> str:
    import re

    return f"urn:bigmap:user:{re.sub(r'[^A-Za-z0-9_.@-]', '_', name)}"


class Fair:
    """FAIR operations on one broker's database."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.db = broker.db
        self._policies: dict[tuple[str, str], m.MetadataPolicy] = {}
        self._policies_at = 0.0

    # ------------------------------------------------------------------ reading

    def _visible(self, actor: Actor, model: Any, *conds: Any) -> list[Any]:
        q = select(model).where(visibility_clause(actor, model), *conds)
        with self.db.read() as s:
            return [r for r in s.scalars(q) if can_see(actor, r)]

    def _descendants(self, s: Any, roots: set[uuid.UUID]) -> set[uuid.UUID]:
        """Requests reachable through parent_id from ``roots`` (roots included)."""
        seen = set(roots)
        frontier = set(roots)
        while frontier:
            children = set(
                s.scalars(select(m.Request.id).where(m.Request.parent_id.in_(list(frontier))))
            )
            frontier = children - seen
            seen |= frontier
        return seen

    def _hidden(self, actor: Actor, ids: set[str]) -> set[str]:
        """The ids among ``ids`` of requests or results that exist and ``actor`` may not see."""
        uuids = []
        for x in ids:
            try:
                uuids.append(uuid.UUID(str(x)))
            except ValueError:
                continue
        if not uuids:
            return set()
        hidden = set()
        with self.db.read() as s:
            for model in (m.Request, m.Result):
                cols = (model.id, *(getattr(model, a) for a in _ACCESS_COLS))
                for row in s.execute(select(*cols).where(model.id.in_(uuids))):
                    if not can_see(actor, row):
                        hidden.add(str(row.id))
        return hidden

    def summary_refs(self, camps: Iterable[Any]) -> dict[uuid.UUID, set[str]]:
        """The records each campaign's summary is made of: the ids it names, and the
        campaign's requests and their results that its owner may see (what the planner that
        wrote the summary could read, values without ids included)."""
        camps = [c for c in camps if c.summary]
        out: dict[uuid.UUID, set[str]] = {c.id: uuid_refs(c.summary) for c in camps}
        if not out:
            return out
        ids = list(out)
        with self.db.read() as s:
            users = s.scalars(select(m.User).where(m.User.id.in_({c.owner_id for c in camps})))
            owners = {
                u.id: Actor(u.id, u.name, _role(u.role), frozenset(u.groups or [])) for u in users
            }
            acc = [getattr(m.Request, a) for a in _ACCESS_COLS]
            rows = list(
                s.execute(
                    select(m.Request.id, m.Request.campaign_id, *acc).where(
                        m.Request.campaign_id.in_(ids)
                    )
                )
            )
            acc = [getattr(m.Result, a) for a in _ACCESS_COLS]
            rows += list(
                s.execute(
                    select(m.Result.id, m.Request.campaign_id, *acc)
                    .join(m.Request, m.Request.id == m.Result.request_id)
                    .where(m.Request.campaign_id.in_(ids))
                )
            )
        owner_of = {c.id: owners.get(c.owner_id) for c in camps}
        for row in rows:
            owner = owner_of.get(row.campaign_id)
            if owner is None or can_see(owner, row):
                out[row.campaign_id].add(str(row.id))
        return out

    def visible_summaries(self, actor: Actor, camps: Iterable[Any]) -> dict[uuid.UUID, Any]:
        """Each campaign's summary as ``actor`` may read it: whole, or without its results'
        values and ids (``access.redact_summary``) when it is made of a result or request
        the reader may not see."""
        camps = list(camps)
        out: dict[uuid.UUID, Any] = {c.id: c.summary or {} for c in camps}
        if actor.is_admin:
            return out
        refs = self.summary_refs(camps)
        hidden = self._hidden(actor, set().union(*refs.values())) if refs else set()
        for cid, r in refs.items():
            if r & hidden:
                out[cid] = redact_summary(out[cid])
        return out

    def visible_events(self, actor: Actor, events: list[m.CampaignEvent]) -> list[Any]:
        """Campaign events as ``actor`` may read them (see ``access.redact_event``)."""
        refs: set[str] = set()
        for ev in events:
            refs |= event_refs(ev.data, ev.request_ids)
        hidden = self._hidden(actor, refs)
        return [redact_event(ev, hidden) for ev in events]

    def tenants(self, ids: Iterable[Any]) -> list[dict[str, Any]]:
        ids = [i for i in {x for x in ids if x is not None}]
        if not ids:
            return []
        with self.db.read() as s:
            rows = list(s.scalars(select(m.Tenant).where(m.Tenant.id.in_(ids))))
        details = self.broker.tenant_details(rows)
        out = []
        for t in rows:
            d = row_dict(t)
            d["owner"] = details[t.id]["owner"]
            d["provides"] = details[t.id]["provides"]
            out.append(d)
        return sorted(out, key=lambda d: str(d["id"]))

    def capabilities(self, pairs: Iterable[tuple[str, str]] | None = None) -> list[dict[str, Any]]:
        with self.db.read() as s:
            rows = list(s.scalars(select(m.Capability)))
        want = set(pairs) if pairs is not None else None
        return [
            row_dict(c)
            for c in sorted(rows, key=lambda c: (c.quantity, c.method))
            if want is None or (c.quantity, c.method) in want
        ]

    def campaign_bundle(
        self,
        actor: Actor,
        campaign_id: uuid.UUID,
        *,
        contents: bool = False,
        metadata_only: bool = False,
    ) -> Bundle:
        """Everything of a campaign that ``actor`` may see. ``contents``: the bytes of the
        raw files too; ``metadata_only``: also the metadata of restricted items made
        findable that the reader may not see."""
        camp = self.broker.get_campaign(actor, campaign_id)  # NotFound if not visible
        with self.db.read() as s:
            roots = set(s.scalars(select(m.Request.id).where(m.Request.campaign_id == camp.id)))
            ids = self._descendants(s, roots)
            reqs = list(s.scalars(select(m.Request).where(m.Request.id.in_(list(ids)))))
            res = list(s.scalars(select(m.Result).where(m.Result.request_id.in_(list(ids)))))
            res_ids = [r.id for r in res]
            files = list(s.scalars(select(m.File).where(m.File.result_id.in_(res_ids))))
            events = list(
                s.scalars(
                    select(m.CampaignEvent)
                    .where(m.CampaignEvent.campaign_id == camp.id)
                    .order_by(m.CampaignEvent.seq)
                )
            )
        return self._bundle(actor, camp, reqs, res, files, events, contents, metadata_only)

    def _bundle(
        self,
        actor: Actor,
        camp: m.Campaign | None,
        reqs: list[m.Request],
        res: list[m.Result],
        files: list[m.File],
        events: list[m.CampaignEvent],
        contents: bool,
        metadata_only: bool,
    ) -> Bundle:
        b = Bundle()
        names = self.broker.user_names()
        vis_reqs = [r for r in reqs if can_see(actor, r)]
        vis_res = [r for r in res if can_see(actor, r)]
        vis_files = [f for f in files if can_see(actor, f)]
        if metadata_only:
            for r in reqs:
                if not can_see(actor, r) and can_find(actor, r):
                    b.metadata_only.append(self.metadata_record("requests", r, names))
            for r in res:
                if not can_see(actor, r) and can_find(actor, r):
                    b.metadata_only.append(self.metadata_record("results", r, names))
        if camp is not None:
            b.campaign = {
                **row_dict(camp),
                "summary": self.visible_summaries(actor, [camp])[camp.id],
                "owner": names.get(camp.owner_id, ""),
            }
        hidden = {str(r.id) for r in reqs if not can_see(actor, r)}
        hidden |= {str(r.id) for r in res if not can_see(actor, r)}
        outside = set()
        for ev in events:
            outside |= event_refs(ev.data, ev.request_ids)
        outside -= {str(r.id) for r in reqs} | {str(r.id) for r in res}
        hidden |= self._hidden(actor, outside)
        for ev in events:
            shown = redact_event(ev, hidden)
            b.redacted_events += shown is not ev
            b.events.append(
                {
                    "id": shown.id,
                    "campaign_id": shown.campaign_id,
                    "seq": shown.seq,
                    "kind": shown.kind,
                    "data": shown.data,
                    "request_ids": list(shown.request_ids or []),
                    "idempotency_key": getattr(shown, "idempotency_key", None),
                    "created_at": shown.created_at,
                }
            )
        b.requests = [row_dict(r) for r in sorted(vis_reqs, key=lambda r: (r.created_at, r.id))]
        b.results = [row_dict(r) for r in sorted(vis_res, key=lambda r: (r.created_at, r.id))]
        b.files = [file_dict(f) for f in sorted(vis_files, key=lambda f: (f.created_at, f.id))]
        if contents:
            b.contents = {str(f.id): f.content for f in vis_files}
        tenant_ids: set[Any] = set()
        if camp is not None:
            tenant_ids.add(camp.tenant_id)
        for r in vis_reqs:
            tenant_ids |= {r.tenant_id, r.claimed_by}
        for r in vis_res:
            tenant_ids.add(r.tenant_id)
        b.tenants = self.tenants(tenant_ids)
        pairs = {(r.quantity, meth) for r in vis_reqs for meth in r.methods}
        pairs |= {(r.quantity, r.method) for r in vis_res}
        b.capabilities = self.capabilities(pairs)
        object_ids = [r.id for r in vis_reqs] + [r.id for r in vis_res]
        if camp is not None:
            object_ids.append(camp.id)
        with self.db.read() as s:
            if object_ids:
                b.status_log = [
                    row_dict(x)
                    for x in s.scalars(
                        select(m.StatusLog)
                        .where(m.StatusLog.object_id.in_(object_ids))
                        .order_by(m.StatusLog.id)
                    )
                ]
                b.recomputations = [
                    row_dict(x)
                    for x in s.scalars(
                        select(m.Recomputation).where(
                            m.Recomputation.request_id.in_([r.id for r in vis_reqs])
                        )
                    )
                ]
        user_ids: set[Any] = {x.owner_id for x in [*vis_reqs, *vis_res, *vis_files]}
        user_ids |= {t["owner_id"] for t in b.tenants}
        user_ids |= {x["user_id"] for x in b.status_log if x.get("user_id")}
        if camp is not None:
            user_ids.add(camp.owner_id)
        with self.db.read() as s:
            users = list(s.scalars(select(m.User).where(m.User.id.in_([u for u in user_ids if u]))))
        # never a password hash, never a user's groups in an export
        b.users = [
            {"id": u.id, "name": u.name, "role": u.role, "created_at": u.created_at}
            for u in sorted(users, key=lambda u: u.name)
        ]
        return b

    def everything(self, actor: Actor, *, limit: int = 20000) -> Bundle:
        """All that ``actor`` may see (for SPARQL over the whole store)."""
        with self.db.read() as s:
            reqs = list(
                s.scalars(
                    select(m.Request)
                    .where(visibility_clause(actor, m.Request))
                    .order_by(m.Request.created_at.desc())
                    .limit(limit)
                )
            )
            res = list(
                s.scalars(
                    select(m.Result)
                    .where(visibility_clause(actor, m.Result))
                    .order_by(m.Result.created_at.desc())
                    .limit(limit)
                )
            )
            files = list(
                s.scalars(
                    select(m.File).where(
                        visibility_clause(actor, m.File),
                        m.File.result_id.in_([r.id for r in res]),
                    )
                )
            )
        b = self._bundle(actor, None, reqs, res, files, [], False, False)
        b.capabilities = self.capabilities()
        with self.db.read() as s:
            all_tenants = list(s.scalars(select(m.Tenant.id)))
        b.tenants = self.tenants(all_tenants)
        return b

    def campaign_events(
        self, actor: Actor, campaign_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, list[dict[str, Any]]]:
        """The steps of campaigns ``actor`` may see (steps about hidden rows withheld)."""
        if not campaign_ids:
            return {}
        with self.db.read() as s:
            rows = list(
                s.scalars(
                    select(m.CampaignEvent)
                    .where(m.CampaignEvent.campaign_id.in_(campaign_ids))
                    .order_by(m.CampaignEvent.campaign_id, m.CampaignEvent.seq)
                )
            )
        out: dict[uuid.UUID, list[dict[str, Any]]] = {}
        for ev in self.visible_events(actor, rows):
            out.setdefault(ev.campaign_id, []).append(
                {
                    "id": ev.id,
                    "campaign_id": ev.campaign_id,
                    "seq": ev.seq,
                    "kind": ev.kind,
                    "data": ev.data,
                    "request_ids": list(ev.request_ids or []),
                    "created_at": ev.created_at,
                }
            )
        return out

    def campaigns(self, actor: Actor) -> list[dict[str, Any]]:
        names = self.broker.user_names()
        camps = self.broker.list_campaigns(actor)
        summaries = self.visible_summaries(actor, camps)
        return [
            {**row_dict(c), "summary": summaries[c.id], "owner": names.get(c.owner_id, "")}
            for c in camps
        ]

    # ------------------------------------------------------------------ provenance

    def provenance(self, actor: Actor, result_id: uuid.UUID, *, limit: int = 5000) -> ProvBundle:
        """The PROV graph of a result: the request that generated it, the sub-requests and
        their results it used (recursively), the raw files, the tenants, users and software
        that acted, the planner step and model state that proposed it, the result it
        revises and the result it recomputes. Nodes the reader may not see are left out."""
        res = self.broker.get_result(actor, result_id)
        pb = ProvBundle(_u(res.id))
        names = self.broker.user_names()
        queue: list[m.Result] = [res]
        done_results: set[uuid.UUID] = set()
        done_requests: set[uuid.UUID] = set()
        tenant_ids: set[uuid.UUID] = set()
        with self.db.read() as s:
            while queue and len(pb.nodes) < limit:
                r = queue.pop(0)
                if r.id in done_results:
                    continue
                done_results.add(r.id)
                rid = self._prov_result(pb, r)
                if r.tenant_id:
                    tenant_ids.add(r.tenant_id)
                    pb.relate("wasAttributedTo", rid, _u(r.tenant_id))
                if r.software:
                    sw = _sw(r.software)
                    pb.node(
                        sw,
                        "agent",
                        ["prov:SoftwareAgent", "schema:SoftwareApplication"],
                        name=r.software.get("name"),
                        version=r.software.get("version"),
                    )
                    pb.relate("wasAttributedTo", rid, sw)
                for f in s.scalars(select(m.File).where(m.File.result_id == r.id)):
                    if not can_see(actor, f):
                        continue
                    fid = pb.node(
                        _u(f.id),
                        "entity",
                        ["prov:Entity", "bigmap:RawFile"],
                        name=f.name,
                        media_type=f.media_type,
                        size=f.size,
                        sha256=f.sha256,
                        created_at=f.created_at,
                    )
                    pb.relate("wasDerivedFrom", rid, fid)
                    pb.relate("wasGeneratedBy", fid, _u(r.request_id))
                if r.amends:
                    prev = s.get(m.Result, r.amends)
                    if prev is not None and can_see(actor, prev):
                        pb.relate("wasRevisionOf", rid, _u(prev.id))
                        queue.append(prev)
                req = s.get(m.Request, r.request_id)
                if req is None or not can_see(actor, req):
                    continue
                pb.relate("wasGeneratedBy", rid, _u(req.id))
                if req.id in done_requests:
                    continue
                done_requests.add(req.id)
                self._prov_request(s, actor, pb, req, r, queue, tenant_ids, names)
            for t in s.scalars(select(m.Tenant).where(m.Tenant.id.in_(list(tenant_ids)))):
                tid = pb.node(
                    _u(t.id),
                    "agent",
                    ["prov:Agent", "bigmap:Tenant"]
                    + (["prov:SoftwareAgent"] if t.kind != "instrument" else []),
                    name=t.name,
                    tenant_kind=t.kind,
                )
                owner = names.get(t.owner_id)
                if owner:
                    pb.node(_user(owner), "agent", ["prov:Agent", "prov:Person"], name=owner)
                    pb.relate("actedOnBehalfOf", tid, _user(owner))
        return pb

    def _prov_result(self, pb: ProvBundle, r: m.Result) -> str:
        return pb.node(
            _u(r.id),
            "entity",
            ["prov:Entity", "bigmap:Result"],
            quantity=r.quantity,
            method=r.method,
            status=r.status,
            sha256=r.sha256,
            generated_at=r.created_at,
            parameters=r.parameters,
            data=r.data,
            emulated=(r.provenance or {}).get("emulated"),
            access=r.access,
        )

    def _prov_request(
        self,
        s: Any,
        actor: Actor,
        pb: ProvBundle,
        req: m.Request,
        res: m.Result,
        queue: list[m.Result],
        tenant_ids: set[uuid.UUID],
        names: dict[uuid.UUID, str],
    ) -> None:
        qid = pb.node(
            _u(req.id),
            "activity",
            ["prov:Activity", "bigmap:Request"],
            quantity=req.quantity,
            methods=req.methods,
            method=res.method,
            parameters=req.parameters,
            status=req.status,
            created_at=req.created_at,
            started_at=(res.provenance or {}).get("claimed_at") or req.claimed_at,
            ended_at=res.created_at,
        )
        if res.tenant_id:
            pb.relate("wasAssociatedWith", qid, _u(res.tenant_id))
        if res.software:
            pb.relate("wasAssociatedWith", qid, _sw(res.software))
        if req.tenant_id:
            tenant_ids.add(req.tenant_id)
            pb.relate("requestedBy", qid, _u(req.tenant_id))
        owner = names.get(req.owner_id)
        if owner:
            pb.node(_user(owner), "agent", ["prov:Agent", "prov:Person"], name=owner)
            pb.relate("requestedOnBehalfOf", qid, _user(owner))
        # sub-requests and the results this one used
        inputs = set()
        for x in (res.provenance or {}).get("inputs") or []:
            try:
                inputs.add(uuid.UUID(str(x)))
            except ValueError:
                pass
        children = list(s.scalars(select(m.Request).where(m.Request.parent_id == req.id)))
        if inputs:
            children += list(
                s.scalars(
                    select(m.Request).where(
                        m.Request.id.in_(list(inputs)), m.Request.parent_id.is_(None)
                    )
                )
            )
            # an input may also name a result
            for r in s.scalars(select(m.Result).where(m.Result.id.in_(list(inputs)))):
                if can_see(actor, r):
                    pb.relate("used", qid, _u(r.id))
                    queue.append(r)
        for child in children:
            if not can_see(actor, child):
                continue
            pb.node(
                _u(child.id),
                "activity",
                ["prov:Activity", "bigmap:Request"],
                quantity=child.quantity,
                methods=child.methods,
                status=child.status,
                created_at=child.created_at,
            )
            pb.relate("wasInformedBy", qid, _u(child.id))
            if child.result_id:
                cr = s.get(m.Result, child.result_id)
                if cr is not None and can_see(actor, cr):
                    pb.relate("used", qid, _u(cr.id))
                    queue.append(cr)
        # the planner step and model state that proposed it
        if req.campaign_id:
            camp = s.get(m.Campaign, req.campaign_id)
            if camp is not None and can_see(actor, camp):
                cid = pb.node(
                    _u(camp.id),
                    "activity",
                    ["prov:Activity", "bigmap:Campaign"],
                    name=camp.name,
                    status=camp.status,
                    started_at=camp.created_at,
                )
                pb.relate("isPartOf", qid, cid)
                if camp.tenant_id:
                    tenant_ids.add(camp.tenant_id)
                    pb.relate("wasAssociatedWith", cid, _u(camp.tenant_id))
                self._prov_proposal(s, actor, pb, camp, req, qid)
        # a recomputation of another result
        rec = s.get(m.Recomputation, req.id)
        if rec is not None:
            orig = s.get(m.Result, rec.original_result_id)
            if orig is not None and can_see(actor, orig):
                self._prov_result(pb, orig)
                pb.relate("wasInfluencedBy", qid, _u(orig.id))
                pb.relate("recomputationOf", qid, _u(orig.id))

    def _prov_proposal(
        self, s: Any, actor: Actor, pb: ProvBundle, camp: m.Campaign, req: m.Request, qid: str
    ) -> None:
        events = list(
            s.scalars(
                select(m.CampaignEvent)
                .where(
                    m.CampaignEvent.campaign_id == camp.id,
                    m.CampaignEvent.kind.in_(["proposal", "model_state"]),
                )
                .order_by(m.CampaignEvent.seq)
            )
        )
        proposal = next(
            (
                e
                for e in events
                if e.kind == "proposal"
                and (
                    str(req.id) in {str(x) for x in e.request_ids or []}
                    or str(req.id) in event_refs(e.data, [])
                )
            ),
            None,
        )
        if proposal is None:
            return
        hidden = self._hidden(actor, event_refs(proposal.data, proposal.request_ids))
        if hidden:
            return  # the step also concerns what the reader may not see
        step = (proposal.data or {}).get("step")
        pid = pb.node(
            _u(proposal.id),
            "activity",
            ["prov:Activity", "bigmap:PlannerStep"],
            seq=proposal.seq,
            step=step,
            strategy=(proposal.data or {}).get("strategy"),
            started_at=proposal.created_at,
        )
        pb.relate("wasInformedBy", qid, pid)
        pb.relate("isPartOf", pid, _u(camp.id))
        if camp.tenant_id:
            pb.relate("wasAssociatedWith", pid, _u(camp.tenant_id))
        states = [
            e
            for e in events
            if e.kind == "model_state"
            and e.seq < proposal.seq
            and (step is None or (e.data or {}).get("step") in (step, None))
        ]
        if not states:
            return
        state = states[-1]
        training = [str(x) for x in (state.data or {}).get("training_result_ids") or []]
        if self._hidden(actor, set(training)):
            return
        sid = pb.node(
            _u(state.id),
            "entity",
            ["prov:Entity", "bigmap:ModelState"],
            seq=state.seq,
            step=(state.data or {}).get("step"),
            model=(state.data or {}).get("model"),
            hyperparameters=(state.data or {}).get("hyperparameters"),
            n_train=(state.data or {}).get("n_train"),
            generated_at=state.created_at,
        )
        pb.relate("used", pid, sid)
        if camp.tenant_id:
            pb.relate("wasAttributedTo", sid, _u(camp.tenant_id))
        for t in training:
            try:
                tr = s.get(m.Result, uuid.UUID(t))
            except ValueError:
                continue
            if tr is not None:
                self._prov_result(pb, tr)
                pb.relate("wasDerivedFrom", sid, _u(tr.id))

    # ------------------------------------------------------------------ search

    def metadata_record(
        self, kind: str, row: Any, names: dict[uuid.UUID, str] | None = None
    ) -> dict[str, Any]:
        """What anyone may know of a findable restricted item: what it is, who holds it, who
        may see it and when it opens. Never its parameters or data."""
        names = names if names is not None else self.broker.user_names()
        rec = {
            "kind": kind,
            "id": str(row.id),
            "metadata_only": True,
            "access": row.access,
            "access_groups": list(row.access_groups or []),
            "embargo_until": jsonable(row.embargo_until),
            "owner": names.get(row.owner_id, ""),
            "created_at": jsonable(row.created_at),
        }
        if kind in ("requests", "results"):
            rec["quantity"] = row.quantity
            rec["methods"] = list(row.methods) if kind == "requests" else [row.method]
            rec["status"] = row.status
            rec["tenant_id"] = jsonable(row.tenant_id)
        if kind == "campaigns":
            rec["name"] = row.name
            rec["status"] = row.status
        return rec

    def search(
        self,
        actor: Actor,
        *,
        q: str | None = None,
        kinds: list[str] | None = None,
        quantity: str | None = None,
        method: str | None = None,
        quantities: list[str] | None = None,
        status: str | None = None,
        tenant_id: uuid.UUID | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Find requests, results and campaigns by their metadata. What ``actor`` may see
        comes in full summary; a restricted item made findable comes as its metadata alone
        (and the text query never looks into the data of such an item)."""
        kinds = kinds or ["results", "requests", "campaigns"]
        for k in kinds:
            if k not in ("results", "requests", "campaigns"):
                raise Invalid(f"unknown kind {k!r}: results, requests or campaigns", ["kind"])
        names = self.broker.user_names()
        tenants = {}
        with self.db.read() as s:
            tenants = dict(s.execute(select(m.Tenant.id, m.Tenant.name)).all())
            caps = {(c.quantity, c.method): c.description for c in s.scalars(select(m.Capability))}
        needle = (q or "").strip().lower()
        out: list[dict[str, Any]] = []
        for kind in kinds:
            model = KINDS[kind]
            conds: list[Any] = [
                or_(
                    visibility_clause(actor, model),
                    and_(model.access == AccessTier.restricted.value, model.findable.is_(True)),
                )
            ]
            if kind in ("requests", "results"):
                if quantity:
                    conds.append(model.quantity == quantity)
                if quantities is not None:
                    conds.append(model.quantity.in_(quantities))
                if tenant_id:
                    conds.append(model.tenant_id == tenant_id)
                if method and kind == "results":
                    conds.append(model.method == method)
            elif quantity or method or quantities is not None or tenant_id:
                continue
            if status:
                conds.append(model.status == status)
            if created_after:
                conds.append(model.created_at >= created_after)
            if created_before:
                conds.append(model.created_at <= created_before)
            # streamed in batches (a server-side cursor on PostgreSQL): the search stops
            # reading once it has ``limit`` hits and never holds every row at once
            q = select(model).where(*conds).order_by(model.created_at.desc())
            with self.db.read() as s:
                for row in s.scalars(q.execution_options(yield_per=500)):
                    if kind == "requests" and method and method not in row.methods:
                        continue
                    full = can_see(actor, row)
                    if not full and not can_find(actor, row):
                        continue
                    meta_text = self._meta_text(kind, row, names, tenants, caps)
                    if needle:
                        text = meta_text
                        if full:
                            # a campaign's summary as this reader may see it (redacted when
                            # made of results hidden from them)
                            summary = (
                                self.visible_summaries(actor, [row]).get(row.id)
                                if kind == "campaigns"
                                else None
                            )
                            text += " " + self._data_text(kind, row, summary)
                        if needle not in text:
                            continue
                    rec = self.metadata_record(kind, row, names)
                    rec["metadata_only"] = not full
                    if kind in ("requests", "results"):
                        rec["tenant"] = tenants.get(row.tenant_id, "")
                    if full:
                        rec["findable"] = bool(row.findable)
                        if kind == "results":
                            rec["request_id"] = str(row.request_id)
                            rec["sha256"] = row.sha256
                        if kind == "requests":
                            rec["campaign_id"] = jsonable(row.campaign_id)
                            rec["result_id"] = jsonable(row.result_id)
                    out.append(rec)
                    if len(out) >= limit:
                        return out
        return out

    @staticmethod
    def _meta_text(
        kind: str, row: Any, names: dict[Any, str], tenants: dict[Any, str], caps: dict
    ) -> str:
        parts = [kind, str(row.id), names.get(row.owner_id, ""), row.status or ""]
        if kind in ("requests", "results"):
            methods = row.methods if kind == "requests" else [row.method]
            parts += [row.quantity, *methods, tenants.get(row.tenant_id, "")]
            parts += [caps.get((row.quantity, meth)) or "" for meth in methods]
        else:
            parts.append(row.name)
        return " ".join(parts).lower()

    @staticmethod
    def _data_text(kind: str, row: Any, summary: Any = None) -> str:
        import json

        if kind == "results":
            return json.dumps([row.parameters, row.data], default=str).lower()
        if kind == "requests":
            return json.dumps(row.parameters, default=str).lower()
        # a campaign's summary as the reader may see it (redacted: no hidden values to match)
        return json.dumps([row.spec, summary], default=str).lower()

    # ------------------------------------------------------------------ access changes

    def set_access(
        self,
        actor: Actor,
        kind: str,
        object_id: uuid.UUID,
        *,
        access: AccessTier | None = None,
        access_groups: list[str] | None = None,
        embargo_until: datetime | None = None,
        clear_embargo: bool = False,
        findable: bool | None = None,
        cascade: bool = True,
    ) -> dict[str, Any]:
        """Change who may see an object (owner or admin only); with ``cascade``, also its
        dependents the caller owns: a campaign's requests, a request's sub-requests and
        results, a result's raw files."""
        if kind not in KINDS:
            raise NotFound(f"no kind {kind!r}: requests, results, campaigns or files")
        model = KINDS[kind]
        if embargo_until is not None and embargo_until.tzinfo is None:
            raise Invalid("embargo_until must carry a time zone (UTC)", ["embargo_until"])
        now = utcnow()
        updated: dict[str, int] = {k: 0 for k in KINDS}
        skipped = 0
        with self.db.write() as s:
            row = s.get(model, object_id)
            if row is None or not can_see(actor, row):
                raise NotFound(f"no {kind[:-1]} {object_id}")
            if row.owner_id != actor.user_id and not actor.is_admin:
                raise Forbidden(
                    f"only the owner of this {kind[:-1]} (or an admin) can change who sees it"
                )
            new_access = (access or AccessTier(row.access or "public")).value
            new_findable = row.findable if findable is None else findable
            if new_findable and new_access != AccessTier.restricted.value:
                raise Invalid(
                    "only a restricted item can be findable by its metadata "
                    f"(this one would be {new_access})",
                    ["findable"],
                )
            targets: list[tuple[str, Any]] = [(kind, row)]
            if cascade:
                targets += self._dependents(s, kind, row)
            for k, target in targets:
                if target.owner_id != actor.user_id and not actor.is_admin:
                    skipped += 1
                    continue
                old = target.access
                target.access = new_access
                if access_groups is not None:
                    target.access_groups = sorted(set(access_groups))
                if clear_embargo:
                    target.embargo_until = None
                elif embargo_until is not None:
                    target.embargo_until = embargo_until
                target.findable = bool(new_findable) and new_access == "restricted"
                updated[k] += 1
                if k != "files":
                    s.add(
                        m.StatusLog(
                            object_type=k[:-1],
                            object_id=target.id,
                            old_status=old,
                            new_status=new_access,
                            message=(
                                f"access: {old} -> {new_access}; groups "
                                f"{list(target.access_groups or [])}; embargo "
                                f"{target.embargo_until.isoformat() if target.embargo_until else None}; "
                                f"findable {target.findable}"
                            ),
                            user_id=actor.user_id,
                            at=now,
                        )
                    )
            state = {
                "id": str(row.id),
                "kind": kind,
                "access": row.access,
                "access_groups": list(row.access_groups or []),
                "embargo_until": jsonable(row.embargo_until),
                "findable": bool(row.findable),
            }
        return {**state, "updated": updated, "skipped_not_owned": skipped}

    def _dependents(self, s: Any, kind: str, row: Any) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        req_ids: set[uuid.UUID] = set()
        if kind == "campaigns":
            roots = set(s.scalars(select(m.Request.id).where(m.Request.campaign_id == row.id)))
            req_ids = self._descendants(s, roots)
        elif kind == "requests":
            req_ids = self._descendants(s, {row.id}) - {row.id}
        res_ids: set[uuid.UUID] = set()
        if req_ids:
            for r in s.scalars(select(m.Request).where(m.Request.id.in_(list(req_ids)))):
                out.append(("requests", r))
        ids_for_results = set(req_ids) | ({row.id} if kind == "requests" else set())
        if ids_for_results:
            for r in s.scalars(
                select(m.Result).where(m.Result.request_id.in_(list(ids_for_results)))
            ):
                out.append(("results", r))
                res_ids.add(r.id)
        if kind == "results":
            res_ids.add(row.id)
        if res_ids:
            for f in s.scalars(select(m.File).where(m.File.result_id.in_(list(res_ids)))):
                out.append(("files", f))
        return out

    # ------------------------------------------------------------------ groups

    def groups(self, actor: Actor) -> dict[str, list[str]]:
        """Group -> members: all groups for an admin, the caller's own otherwise."""
        out: dict[str, list[str]] = {}
        for u in self.broker.list_users():
            for g in u.groups or []:
                if actor.is_admin or g in actor.groups:
                    out.setdefault(g, []).append(u.name)
        return {g: sorted(v) for g, v in sorted(out.items())}

    def set_groups(
        self,
        actor: Actor,
        name: str,
        *,
        groups: list[str] | None = None,
        add: list[str] = (),  # type: ignore[assignment]
        remove: list[str] = (),  # type: ignore[assignment]
    ) -> m.User:
        if not actor.is_admin:
            raise Forbidden("only an admin can change a user's groups")
        import re

        user = self.broker.get_user(name)
        current = set(user.groups or []) if groups is None else set(groups)
        current |= set(add)
        current -= set(remove)
        for g in current:
            if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,100}", g):
                raise Invalid(f"group {g!r}: letters, digits, '_', '.', '-' only", ["groups"])
        return self.broker.set_user(name, groups=sorted(current))

    # ------------------------------------------------------------------ recompute

    def recompute(
        self,
        actor: Actor,
        result_id: uuid.UUID,
        tenant_id: uuid.UUID,
        *,
        priority: int | None = None,
        idempotency_key: str | None = None,
        access: dict[str, Any] | None = None,
    ) -> tuple[m.Request, bool]:
        """A new request with the identical quantity, method and parameters of a result,
        linked to the original (``recomputations``; ``wasInfluencedBy`` in its PROV)."""
        res = self.broker.get_result(actor, result_id)
        orig = self.broker.get_request(actor, res.request_id)
        tiers = access or {
            "access": res.access,
            "access_groups": list(res.access_groups or []),
            "embargo_until": res.embargo_until,
        }
        body = RequestCreate(
            quantity=res.quantity,
            methods=[res.method],
            parameters={res.method: res.parameters},
            tenant_id=tenant_id,
            priority=orig.priority if priority is None else priority,
            idempotency_key=idempotency_key or f"recompute:{result_id}:{uuid.uuid4()}",
            **tiers,
        )
        req, created = self.broker.create_request(actor, body)
        if created:
            try:
                with self.db.write() as s:
                    s.add(
                        m.Recomputation(
                            request_id=req.id,
                            original_result_id=res.id,
                            original_request_id=orig.id,
                            user_id=actor.user_id,
                            created_at=utcnow(),
                        )
                    )
            except Exception:
                self.broker.retract(actor, req.id, "recomputation could not be linked")
                raise
        return req, created

    def recomputation_of(self, request_id: uuid.UUID) -> m.Recomputation | None:
        with self.db.read() as s:
            return s.get(m.Recomputation, request_id)

    # ------------------------------------------------------------------ metadata policies

    def policy(self, quantity: str, method: str) -> m.MetadataPolicy | None:
        now = time.monotonic()
        if now - self._policies_at > 2.0:
            with self.db.read() as s:
                self._policies = {
                    (p.quantity, p.method): p for p in s.scalars(select(m.MetadataPolicy))
                }
            self._policies_at = now
        return self._policies.get((quantity, method))

    def capability_info(self, quantity: str, method: str) -> dict[str, Any] | None:
        """A capability's units and schemas (cached for a moment, like the policies)."""
        now = time.monotonic()
        if now - getattr(self, "_caps_at", 0.0) > 2.0:
            with self.db.read() as s:
                self._caps = {
                    (c.quantity, c.method): {
                        "units": c.units or {},
                        "parameter_schema": c.parameter_schema,
                        "result_schema": c.result_schema,
                        "iri": c.iri,
                        "unit_cache": {},  # units found in the result schema, by path
                    }
                    for c in s.scalars(select(m.Capability))
                }
            self._caps_at = now
        return self._caps.get((quantity, method))

    def policies(self) -> list[m.MetadataPolicy]:
        with self.db.read() as s:
            return list(
                s.scalars(
                    select(m.MetadataPolicy).order_by(
                        m.MetadataPolicy.quantity, m.MetadataPolicy.method
                    )
                )
            )

    def set_policy(
        self,
        actor: Actor,
        quantity: str,
        method: str,
        *,
        strictness: str,
        data_types: list[str] | None = None,
        required: list[str] | None = None,
    ) -> m.MetadataPolicy:
        if not actor.is_admin:
            raise Forbidden("only an admin can set how strictly metadata are checked")
        if strictness not in ("off", "report", "strict"):
            raise Invalid(f"strictness {strictness!r}: off, report or strict", ["strictness"])
        self.broker.get_capability(quantity, method)  # NotFound for an unknown capability
        with self.db.write() as s:
            row = s.scalar(
                select(m.MetadataPolicy).where(
                    m.MetadataPolicy.quantity == quantity, m.MetadataPolicy.method == method
                )
            )
            if row is None:
                row = m.MetadataPolicy(quantity=quantity, method=method)
                s.add(row)
            row.strictness = strictness
            row.data_types = list(data_types or [])
            row.required = list(required or [])
            row.updated_by = actor.name
            row.updated_at = utcnow()
            s.flush()
        self._policies_at = 0.0
        return row

    # ------------------------------------------------------------------ archive records

    def archive_records(self, campaign_id: uuid.UUID, scope: str) -> list[m.ArchiveRecord]:
        with self.db.read() as s:
            return list(
                s.scalars(
                    select(m.ArchiveRecord)
                    .where(
                        m.ArchiveRecord.campaign_id == campaign_id,
                        m.ArchiveRecord.scope == scope,
                    )
                    .order_by(m.ArchiveRecord.created_at)
                )
            )

    def add_archive_record(self, **values: Any) -> m.ArchiveRecord:
        with self.db.write() as s:
            row = m.ArchiveRecord(**values)
            s.add(row)
            s.flush()
            return row
