"""Who may see what: the caller (``Actor``) and the access tiers of stored objects.

- public: everyone with a valid token;
- restricted: the owner, admins and members of the object's ``access_groups``; after
  ``embargo_until`` it is public;
- confidential: the owner and admins only.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, literal, or_, select, true
from sqlalchemy.dialects import postgresql

from bigmap.schemas.common import AccessTier, Role, utcnow


@dataclass(frozen=True)
class Actor:
    """The authenticated caller."""

    user_id: uuid.UUID
    name: str
    role: Role
    groups: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.admin

    @property
    def can_write(self) -> bool:
        return self.role in (Role.admin, Role.maintainer, Role.tenant)

    @property
    def can_define_capabilities(self) -> bool:
        return self.role in (Role.admin, Role.maintainer)


def can_see(actor: Actor, obj: Any, now: datetime | None = None) -> bool:
    if actor.is_admin or obj.owner_id == actor.user_id:
        return True
    tier = obj.access or AccessTier.public
    if tier == AccessTier.public:
        return True
    if tier == AccessTier.confidential:
        return False
    now = now or utcnow()
    if obj.embargo_until is not None and obj.embargo_until <= now:
        return True
    return bool(actor.groups & set(obj.access_groups or []))


def visibility_clause(actor: Actor, model: Any, dialect: str | None = None) -> Any:
    """SQL filter that keeps the rows ``actor`` may see.

    With ``dialect`` ("sqlite" or "postgresql") the filter is exact: restricted rows are kept
    when their embargo has ended or one of their JSON ``access_groups`` is the caller's.
    Without it, every restricted row is kept and ``can_see`` must sort them afterwards.
    """
    if actor.is_admin:
        return true()
    restricted = model.access == AccessTier.restricted.value
    conds = [model.access == AccessTier.public.value, model.owner_id == actor.user_id]
    if dialect is None:
        return or_(*conds, restricted)
    conds.append(
        and_(restricted, model.embargo_until.is_not(None), model.embargo_until <= utcnow())
    )
    groups = sorted(actor.groups)
    if groups:
        if dialect == "postgresql":
            overlap = func.jsonb_exists_any(model.access_groups, postgresql.array(groups))
        else:
            each = func.json_each(model.access_groups).table_valued("value")
            overlap = exists(select(literal(1)).select_from(each).where(each.c.value.in_(groups)))
        conds.append(and_(restricted, overlap))
    return or_(*conds)


# A reader with no account: what may go into a public export or archive.
PUBLIC_READER = Actor(uuid.UUID("00000000-0000-0000-0000-00000000f00d"), "(public)", Role.observer)


def can_find(actor: Actor, obj: Any, now: datetime | None = None) -> bool:
    """May ``actor`` learn that ``obj`` exists and read its metadata (not its data)? Yes if
    it may see it, or if it is a restricted item its owner made findable by its metadata.
    A confidential item is never findable by others."""
    if can_see(actor, obj, now):
        return True
    return (obj.access or AccessTier.public) == AccessTier.restricted and bool(
        getattr(obj, "findable", False)
    )


_UUID_TEXT = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


def uuid_refs(doc: Any) -> set[str]:
    """Every id (UUID text) anywhere in a JSON document, lower case."""
    if not doc:
        return set()
    return {u.lower() for u in _UUID_TEXT.findall(json.dumps(doc, default=str))}


def event_refs(data: Any, request_ids: list[str] | None) -> set[str]:
    """The request and result ids a campaign event refers to: its ``request_ids`` and every
    id in its data (per the campaign contract ``request_id``, ``result_id``,
    ``candidates[].request_id``, ``training_result_ids``, ``best.request_id``/``result_id``;
    any other place too, so that a new kind of step cannot name a hidden record unnoticed)."""
    refs = {str(r).lower() for r in request_ids or []}
    if isinstance(data, dict):
        best = data.get("best")
        if isinstance(best, dict):
            refs |= {str(best[k]).lower() for k in ("request_id", "result_id") if best.get(k)}
        for r in data.get("training_result_ids") or []:
            refs.add(str(r).lower())
    return refs | uuid_refs(data)


# What a campaign's summary may show to a reader who may not see some of the results it is
# made of: counts, cost and budget, never a value or an id of a result.
SUMMARY_SHOWN = (
    "step",
    "strategy",
    "objectives",
    "n_requests",
    "n_results",
    "n_failed",
    "n_pending",
    "cost_spent",
    "budget",
)
SUMMARY_EMPTY: dict[str, Any] = {
    "best": None,
    "best_so_far": [],
    "pareto": [],
    "tiers": [],
    "outliers": [],
}


def redact_summary(summary: Any) -> dict[str, Any]:
    """A campaign's summary without its results' values and ids (``best``, ``best_so_far``,
    ``pareto``, ...): what a reader who may not see some of its results gets."""
    if not isinstance(summary, dict) or not summary:
        return {}
    kept = {k: summary[k] for k in SUMMARY_SHOWN if k in summary}
    return {
        **kept,
        **{k: v for k, v in SUMMARY_EMPTY.items() if k in summary},
        "redacted": "values and ids withheld: the summary is made of results you may not see",
    }


def redact_event(event: Any, hidden: set[str]) -> Any:
    """A campaign event as a reader sees it: if it refers to requests or results the reader
    may not see, its data is withheld (its sequence number and kind stay, so that readers
    following the campaign do not stall)."""
    refs = event_refs(event.data, event.request_ids)
    if not refs & hidden:
        return event
    from types import SimpleNamespace

    return SimpleNamespace(
        id=event.id,
        campaign_id=event.campaign_id,
        seq=event.seq,
        kind=event.kind,
        data={"redacted": "refers to requests or results you may not see"},
        request_ids=[r for r in (event.request_ids or []) if str(r) not in hidden],
        idempotency_key=None,
        created_at=event.created_at,
    )
