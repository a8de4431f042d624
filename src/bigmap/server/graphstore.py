"""The RDF store behind SPARQL: one graph of every record, kept up to date as records
arrive, each caller's query running on the part of it that caller may see.

- **One named graph per record** (``urn:bigmap:graph:<kind>:<id>``): a request, a result (with
  its raw files' records), a campaign, a campaign's summary, a campaign step, a tenant, a
  capability; the EMMO labels in a shared graph. Before each query, a light scan of the
  tables (ids, access columns and change markers, no payloads) finds the records that are
  new, changed or gone, and only those are rendered again (``bigmap.ontology.jsonld``).
- **Visibility is decided per query, from the database as it is now** (``can_see`` on the
  rows of that scan): a query sees the union of the graphs of the records its caller may see,
  through a read-only view of the store (``VisibleStore``) that drops every triple whose
  graphs are all hidden. A campaign step, or a campaign's summary, that names a request or
  result the caller may not see is not in the view at all; a visible result whose raw files
  are partly hidden is rendered for that query without them.
- **Bounded**: the view checks a deadline and a cancellation flag (set when the client
  disconnects) as the query engine pulls triples, and raises ``QueryStopped``.

The campaign's RDF is built by ``campaign_graph_documents``; a campaign's summary graph is
left out of the view of a reader who may not see one of the records it is made of
(``Fair.summary_refs``: the ids it names, and the campaign's records its owner may see).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from bigmap.ontology import jsonld as ld
from bigmap.schemas.common import content_hash
from bigmap.store import models as m
from bigmap.store.access import Actor, can_see, event_refs
from bigmap.store.fair import Fair, file_dict, jsonable, row_dict

GRAPH = "urn:bigmap:graph:"
LABELS = GRAPH + "labels"


class QueryStopped(RuntimeError):
    """A query stopped by its time limit or by its client going away."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def gid(kind: str, object_id: Any) -> str:
    return f"{GRAPH}{kind}:{object_id}"


def campaign_graph_documents(
    campaign: dict[str, Any], events: list[dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, Any] | None, list[tuple[dict[str, Any], dict[str, Any]]]]:
    """A campaign in three parts: its node (without its summary), its summary (a document of
    its own, or None), and one document per step (with the step)."""
    node = ld.campaign_jsonld({**campaign, "summary": None}).document
    summary = None
    if campaign.get("summary"):
        summary = {
            "@context": ld.context(),
            "@id": ld.uri(campaign["id"]),
            "bigmap:summary": campaign["summary"],
        }
    steps = []
    for ev in events:
        doc = {"@context": ld.context(), **ld.event_node(ev, campaign)}
        steps.append((ev, doc))
    return node, summary, steps


class _RWLock:
    """Many readers (queries) or one writer (an update of the store)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._readers:
                self._cond.wait()
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


@dataclass
class Scan:
    """The light rows of one scan: what exists, who may see it, what changed."""

    requests: dict[uuid.UUID, Any] = field(default_factory=dict)
    results: dict[uuid.UUID, Any] = field(default_factory=dict)
    files: dict[uuid.UUID, Any] = field(default_factory=dict)
    campaigns: dict[uuid.UUID, Any] = field(default_factory=dict)
    events: dict[uuid.UUID, Any] = field(default_factory=dict)
    files_of: dict[uuid.UUID, list[uuid.UUID]] = field(default_factory=dict)


def _access(row: Any) -> tuple[Any, ...]:
    return (
        row.owner_id,
        row.access,
        tuple(row.access_groups or ()),
        row.embargo_until,
        row.findable,
    )


class GraphStore:
    """The shared, incrementally maintained RDF of one broker's database."""

    def __init__(self, fair: Fair) -> None:
        import rdflib

        self.rdflib = rdflib
        self.fair = fair
        self.db = fair.db
        # one set of triples; which records' graphs hold each triple is kept here (rdflib's
        # context-aware stores are slower at exactly this, on every triple a query pulls)
        from rdflib.plugins.stores.memory import SimpleMemory

        self.triples = SimpleMemory()
        self.where: dict[Any, set[str]] = {}
        self.members: dict[str, list[Any]] = {}
        self.lock = _RWLock()
        self.sync_lock = threading.Lock()
        self.marks: dict[str, Any] = {}  # graph id -> fingerprint of what it was rendered from
        self.refs: dict[str, set[str]] = {}  # graph id -> ids it names (steps, summaries)
        self.label_count: dict[Any, int] = {}
        self.last_sync = 0.0
        self.rendered = 0  # graphs rendered since start (for tests and benchmarks)

    # ------------------------------------------------------------------ writing

    def _add(self, graph_id: str, triples: Any) -> None:
        held = self.members.setdefault(graph_id, [])
        for t in triples:
            graphs = self.where.get(t)
            if graphs is None:
                self.where[t] = {graph_id}
                self.triples.add(t, None)
                held.append(t)
            elif graph_id not in graphs:
                graphs.add(graph_id)
                held.append(t)

    def _put(self, graph_id: str, docs: list[dict[str, Any]], mark: Any) -> None:
        # rendered into a list first, then added to the store in one go
        tmp = _Collect()
        for doc in docs:
            ld.graph_into(tmp, doc)
        if graph_id in self.members:
            self._drop(graph_id)
        self._add(graph_id, tmp.items)
        self._add(LABELS, ld.label_triples(tmp.items))
        self.marks[graph_id] = mark
        self.rendered += 1

    def _drop(self, graph_id: str) -> None:
        for t in self.members.pop(graph_id, []):
            graphs = self.where.get(t)
            if graphs is not None:
                graphs.discard(graph_id)
                if not graphs:
                    del self.where[t]
                    self.triples.remove(t, None)
        self.marks.pop(graph_id, None)
        self.refs.pop(graph_id, None)

    # ------------------------------------------------------------------ scanning

    def scan(self) -> Scan:
        sc = Scan()
        acc = (
            "owner_id",
            "access",
            "access_groups",
            "embargo_until",
            "findable",
        )
        with self.db.read() as s:
            for row in s.execute(
                select(
                    m.Request.id,
                    m.Request.updated_at,
                    m.Request.status,
                    *(getattr(m.Request, a) for a in acc),
                )
            ):
                sc.requests[row.id] = row
            for row in s.execute(
                select(m.Result.id, m.Result.status, *(getattr(m.Result, a) for a in acc))
            ):
                sc.results[row.id] = row
            for row in s.execute(
                select(m.File.id, m.File.result_id, *(getattr(m.File, a) for a in acc))
            ):
                sc.files[row.id] = row
                sc.files_of.setdefault(row.result_id, []).append(row.id)
            for row in s.execute(
                select(
                    m.Campaign.id,
                    m.Campaign.updated_at,
                    m.Campaign.status,
                    m.Campaign.control,
                    *(getattr(m.Campaign, a) for a in acc),
                )
            ):
                sc.campaigns[row.id] = row
            for row in s.execute(select(m.CampaignEvent.id, m.CampaignEvent.campaign_id)):
                sc.events[row.id] = row
        return sc

    def sync(self) -> Scan:
        """Bring the store up to date with the database; returns the scan it used."""
        with self.sync_lock:
            sc = self.scan()
            wanted: dict[str, Any] = {}
            for rid, r in sc.requests.items():
                wanted[gid("request", rid)] = (r.updated_at, r.status, _access(r))
            for rid, r in sc.results.items():
                files = tuple((f, _access(sc.files[f])) for f in sorted(sc.files_of.get(rid, [])))
                wanted[gid("result", rid)] = (r.status, _access(r), files)
            for cid, c in sc.campaigns.items():
                mark = (c.updated_at, c.status, c.control, _access(c))
                wanted[gid("campaign", cid)] = mark
                wanted[gid("summary", cid)] = mark
            for eid in sc.events:
                wanted[gid("event", eid)] = "event"
            caps = self.fair.capabilities()
            for c in caps:
                wanted[gid("capability", c["id"])] = content_hash(jsonable(c))
            with self.db.read() as s:
                tenant_ids = list(s.scalars(select(m.Tenant.id)))
            tenants = self.fair.tenants(tenant_ids)
            for t in tenants:
                fp = {k: v for k, v in t.items() if k not in ("last_seen_at",)}
                wanted[gid("tenant", t["id"])] = content_hash(jsonable(fp))
            stale = {g for g, mark in wanted.items() if self.marks.get(g) != mark}
            gone = set(self.marks) - set(wanted)
            if stale or gone:
                docs = self._render(stale, sc, caps, tenants)
                with self.lock.write():
                    for g in gone:
                        self._drop(g)
                    for g, (items, refs) in docs.items():
                        if items is None:
                            self._drop(g)
                            continue
                        self._put(g, items, wanted[g])
                        if refs is not None:
                            self.refs[g] = refs
            self.last_sync = time.monotonic()
            return sc

    def _render(
        self,
        stale: set[str],
        sc: Scan,
        caps: list[dict[str, Any]],
        tenants: list[dict[str, Any]],
    ) -> dict[str, tuple[list[dict[str, Any]] | None, set[str] | None]]:
        """The documents of the stale graphs (None: the record is gone or empty)."""
        by_kind: dict[str, set[uuid.UUID]] = {}
        for g in stale:
            kind, oid = g[len(GRAPH) :].split(":", 1)
            by_kind.setdefault(kind, set()).add(oid if kind == "capability" else uuid.UUID(oid))
        caps_j = [jsonable(c) for c in caps]
        cap_map = {(c["quantity"], c["method"]): c for c in caps_j}
        kinds = {str(t["id"]): t["kind"] for t in tenants}
        out: dict[str, tuple[list[dict[str, Any]] | None, set[str] | None]] = {}
        for c in caps_j:
            if c["id"] in {str(x) for x in by_kind.get("capability", ())}:
                out[gid("capability", c["id"])] = ([ld.capability_jsonld(c).document], None)
        for t in tenants:
            if t["id"] in by_kind.get("tenant", ()):
                out[gid("tenant", t["id"])] = ([ld.tenant_jsonld(jsonable(t)).document], None)
        names = self.fair.broker.user_names()
        with self.db.read() as s:
            ids = list(by_kind.get("request", ()))
            for r in _chunks(s, m.Request, ids):
                d = jsonable(row_dict(r))
                doc = ld.request_jsonld(
                    d, capabilities=cap_map, tenant_kind=kinds.get(str(r.claimed_by))
                ).document
                out[gid("request", r.id)] = ([doc], None)
            ids = list(by_kind.get("result", ()))
            for r in _chunks(s, m.Result, ids):
                files = [
                    jsonable(file_dict(f))
                    for f in s.scalars(select(m.File).where(m.File.result_id == r.id))
                ]
                out[gid("result", r.id)] = ([self.result_doc(r, files, cap_map, kinds)], None)
            ids = list(by_kind.get("campaign", set()) | by_kind.get("summary", set()))
            camp_rows = list(_chunks(s, m.Campaign, ids))
            refs = self.fair.summary_refs(camp_rows)
            for c in camp_rows:
                camp = jsonable({**row_dict(c), "owner": names.get(c.owner_id, "")})
                node, summary, _ = campaign_graph_documents(camp, [])
                out[gid("campaign", c.id)] = ([node], None)
                out[gid("summary", c.id)] = (
                    ([summary], refs.get(c.id, set())) if summary else (None, None)
                )
            ids = list(by_kind.get("event", ()))
            camps: dict[uuid.UUID, dict[str, Any]] = {}
            for e in _chunks(s, m.CampaignEvent, ids):
                if e.campaign_id not in camps:
                    c = s.get(m.Campaign, e.campaign_id)
                    camps[e.campaign_id] = jsonable(row_dict(c)) if c else {"id": e.campaign_id}
                ev = jsonable(
                    {
                        "id": e.id,
                        "campaign_id": e.campaign_id,
                        "seq": e.seq,
                        "kind": e.kind,
                        "data": e.data,
                        "request_ids": list(e.request_ids or []),
                        "created_at": e.created_at,
                    }
                )
                _, _, steps = campaign_graph_documents(camps[e.campaign_id], [ev])
                out[gid("event", e.id)] = ([steps[0][1]], event_refs(e.data, e.request_ids))
        for g in stale:
            out.setdefault(g, (None, None))
        return out

    @staticmethod
    def result_doc(
        r: Any, files: list[dict[str, Any]], cap_map: dict[Any, Any], kinds: dict[str, str]
    ) -> dict[str, Any]:
        return ld.result_jsonld(
            {**jsonable(row_dict(r)), "files": files},
            capability=cap_map.get((r.quantity, r.method)),
            tenant={"kind": kinds.get(str(r.tenant_id))},
        ).document

    # ------------------------------------------------------------------ reading

    def visible(self, actor: Actor, sc: Scan) -> tuple[set[str], list[uuid.UUID]]:
        """The graphs ``actor`` may see, and the visible results whose raw files are only
        partly visible (rendered apart, for this query)."""
        seen_ids: set[str] = set()
        hidden_ids: set[str] = set()
        graphs = {LABELS}
        for rid, r in sc.requests.items():
            if can_see(actor, r):
                graphs.add(gid("request", rid))
                seen_ids.add(str(rid))
            else:
                hidden_ids.add(str(rid))
        partial = []
        for rid, r in sc.results.items():
            if not can_see(actor, r):
                hidden_ids.add(str(rid))
                continue
            seen_ids.add(str(rid))
            if all(can_see(actor, sc.files[f]) for f in sc.files_of.get(rid, [])):
                graphs.add(gid("result", rid))
            else:
                partial.append(rid)
        visible_camps = {cid for cid, c in sc.campaigns.items() if can_see(actor, c)}
        for cid in visible_camps:
            graphs.add(gid("campaign", cid))
            g = gid("summary", cid)
            if not (self.refs.get(g, set()) & hidden_ids):
                graphs.add(g)
        for eid, e in sc.events.items():
            g = gid("event", eid)
            if e.campaign_id in visible_camps and not (self.refs.get(g, set()) & hidden_ids):
                graphs.add(g)
        for g in self.marks:
            if g.startswith((GRAPH + "capability:", GRAPH + "tenant:")):
                graphs.add(g)
        return graphs, partial

    def extra(self, actor: Actor, partial: list[uuid.UUID]) -> Any:
        """The results of ``partial`` as ``actor`` sees them (their visible files only)."""
        g = self.rdflib.Graph()
        if not partial:
            return g
        caps = {(c["quantity"], c["method"]): c for c in jsonable(self.fair.capabilities())}
        with self.db.read() as s:
            for r in s.scalars(select(m.Result).where(m.Result.id.in_(partial))):
                files = [
                    jsonable(file_dict(f))
                    for f in s.scalars(select(m.File).where(m.File.result_id == r.id))
                    if can_see(actor, f)
                ]
                kinds = {str(t["id"]): t["kind"] for t in self.fair.tenants([r.tenant_id])}
                ld.graph_into(g, self.result_doc(r, files, caps, kinds))
        return g

    @contextmanager
    def view(
        self,
        actor: Actor,
        *,
        deadline: float | None = None,
        cancelled: threading.Event | None = None,
    ) -> Iterator[Any]:
        """A read-only rdflib graph of what ``actor`` may see, up to date, for the time of
        the ``with`` block."""
        sc = self.sync()
        graphs, partial = self.visible(actor, sc)
        extra = self.extra(actor, partial)
        with self.lock.read():
            store = VisibleStore(self.triples, self.where, graphs, extra, deadline, cancelled)
            g = self.rdflib.Graph(store=store, bind_namespaces="none")
            for prefix, ns in ld.PREFIXES.items():
                g.bind(prefix, ns, override=True)
            yield g


class _Collect:
    """Triples as the expander adds them, in a list (no graph needed)."""

    def __init__(self) -> None:
        self.items: list[Any] = []

    def add(self, triple: Any) -> None:
        self.items.append(triple)


def _chunks(s: Any, model: Any, ids: list[Any], size: int = 500) -> Iterator[Any]:
    for i in range(0, len(ids), size):
        yield from s.scalars(select(model).where(model.id.in_(ids[i : i + size])))


def _make_visible_store() -> type:
    from rdflib.store import Store

    class _VisibleStore(Store):
        """Read-only: the triples of ``base`` in at least one of ``graphs``, and those of
        ``extra``; stops (``QueryStopped``) past ``deadline`` or once ``cancelled``."""

        context_aware = False
        formula_aware = False
        graph_aware = False

        def __init__(self, base, where, graphs, extra, deadline, cancelled) -> None:  # type: ignore[no-untyped-def]
            super().__init__()
            self.base = base
            self.where = where
            self.names = {str(g) for g in graphs}
            self.extra = extra
            self.deadline = deadline
            self.cancelled = cancelled
            self.pulled = 0

        def _check(self) -> None:
            if self.cancelled is not None and self.cancelled.is_set():
                raise QueryStopped("the client went away")
            if self.deadline is not None and time.monotonic() > self.deadline:
                raise QueryStopped("the query ran past its time limit")

        def triples(self, triple_pattern, context=None):  # type: ignore[no-untyped-def,override]
            self._check()
            graphs, where = self.names, self.where
            for triple, _ in self.base.triples(triple_pattern, None):
                self.pulled += 1
                if not self.pulled & 1023:
                    self._check()
                if not graphs.isdisjoint(where.get(triple, ())):
                    yield triple, iter(())
            for triple in self.extra.triples(triple_pattern):
                yield triple, iter(())

        def __len__(self, context=None) -> int:  # type: ignore[no-untyped-def,override]
            return sum(1 for _ in self.triples((None, None, None)))

        def contexts(self, triple=None):  # type: ignore[no-untyped-def,override]
            return iter(())

        def bind(self, prefix, namespace, override=True) -> None:  # type: ignore[no-untyped-def,override]
            self.base.bind(prefix, namespace, override=override)

        def prefix(self, namespace):  # type: ignore[no-untyped-def,override]
            return self.base.prefix(namespace)

        def namespace(self, prefix):  # type: ignore[no-untyped-def,override]
            return self.base.namespace(prefix)

        def namespaces(self):  # type: ignore[no-untyped-def,override]
            return self.base.namespaces()

        def add(self, triple, context, quoted=False):  # type: ignore[no-untyped-def,override]
            raise PermissionError("the SPARQL view is read-only")

        def remove(self, triple, context=None):  # type: ignore[no-untyped-def,override]
            raise PermissionError("the SPARQL view is read-only")

    return _VisibleStore


_VISIBLE: list[type] = []


def VisibleStore(  # noqa: N802
    base: Any,
    where: dict[Any, set[str]],
    graphs: set[str],
    extra: Any,
    deadline: Any,
    cancelled: Any,
) -> Any:
    if not _VISIBLE:
        _VISIBLE.append(_make_visible_store())
    return _VISIBLE[0](base, where, graphs, extra, deadline, cancelled)


def store_of(fair: Fair) -> GraphStore:
    """One ``GraphStore`` per broker."""
    st = getattr(fair.broker, "_graph_store", None)
    if st is None:
        st = GraphStore(fair)
        fair.broker._graph_store = st  # type: ignore[attr-defined]
    return st
