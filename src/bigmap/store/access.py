"""Who may see what: the caller (``Actor``) and the access tiers of stored objects.

- public: everyone with a valid token;
- restricted: the owner, admins and members of the object's ``access_groups``; after
  ``embargo_until`` it is public;
- confidential: the owner and admins only.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import or_, true

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
        return self.role in (Role.admin, Role.tenant)


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


def visibility_clause(actor: Actor, model: Any) -> Any:
    """SQL filter that keeps the rows ``actor`` may see. Restricted rows are all kept: their
    group lists are JSON, so ``can_see`` sorts them after the query."""
    if actor.is_admin:
        return true()
    return or_(
        model.access == AccessTier.public.value,
        model.owner_id == actor.user_id,
        model.access == AccessTier.restricted.value,
    )
