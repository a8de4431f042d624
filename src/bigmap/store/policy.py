"""Who may change what: every "may this actor do this to that object" decision of the write
paths, one small rule each.

Each rule is a pure function of the caller (``access.Actor``) and the rows it acts on (a
request, a result, a tenant, a campaign: ORM objects, table rows or anything with the same
attributes); it returns nothing when the action is allowed and raises ``Forbidden`` (403)
when the caller lacks the right, with the right it lacks and how to get it. A state that
forbids the action for everyone (a request claimed by another tenant whose lease is running,
a request already failed) is a ``Conflict`` (409), decided by the operation, not here. Read
tiers (who may *see* what) are ``bigmap.store.access``; a caller that may not see an object
gets 404 before any rule here runs.

The roles (``docs/security.md``, "Roles and rights"):

- ``observer`` reads; it writes nothing.
- ``tenant`` posts requests, registers tenants that serve capabilities that exist, claims
  with its own tenants and answers what they hold.
- ``maintainer`` is a tenant that may also define new capabilities.
- ``admin`` may do everything a user may, replace a capability's definition, and act on
  others' objects where a rule says so (amend, retract, release, change a campaign).
"""

from __future__ import annotations

import uuid
from typing import Any

from bigmap.schemas.common import RequestStatus, Role
from bigmap.store.access import Actor
from bigmap.store.errors import Forbidden

GRANT_MAINTAINER = "an admin grants it with `bigmap user role NAME maintainer`"


def _held_by_user(req: Any) -> uuid.UUID | None:
    return getattr(req, "claimed_by_user", None)


# ------------------------------------------------------------------ any write


def require_writer(actor: Actor, what: str) -> None:
    """Observers read only."""
    if not actor.can_write:
        raise Forbidden(f"the role {actor.role.value} cannot {what}; it is read-only")


# ------------------------------------------------------------------ catalogue


def define_capability(actor: Actor, quantity: str, method: str) -> None:
    """A new capability (a quantity/method pair the broker does not know yet) is defined by
    an admin or a maintainer; registering a tenant that serves an existing one is not."""
    require_writer(actor, "define capabilities")
    if not actor.can_define_capabilities:
        raise Forbidden(
            f"defining the new capability {quantity}/{method} needs the role maintainer (or "
            f"admin), and {actor.name} has the role {actor.role.value}; {GRANT_MAINTAINER}, "
            "or an admin or maintainer adds the capability (`bigmap capability add FILE`)"
        )


def replace_capability(actor: Actor, quantity: str, method: str) -> None:
    """Changing the schemas of an existing capability changes what every tenant and request
    of it means: admins only."""
    if not actor.is_admin:
        raise Forbidden(
            f"only an admin can replace the definition of capability {quantity}/{method}"
        )


def register_tenant_for(actor: Actor, owner_name: str) -> None:
    """A user registers tenants of its own; an admin may register one for another user."""
    require_writer(actor, "register tenants")
    if owner_name != actor.name and not actor.is_admin:
        raise Forbidden("only an admin can register a tenant for another user")


def act_as_tenant(actor: Actor, tenant: Any, *, allow_admin: bool = False) -> None:
    """A token acts only as its own user's tenants (an admin may switch another user's
    tenant on or off: ``allow_admin``)."""
    if tenant.owner_id != actor.user_id and not (allow_admin and actor.is_admin):
        raise Forbidden(
            f"tenant {tenant.id} belongs to another user; a token acts only as its own tenants"
        )


# ------------------------------------------------------------------ queue and leases


def claim_request(actor: Actor, req: Any, tenant: Any | None) -> None:
    """A claim is made by a tenant the caller owns (native claim, ``claim_next`` and FINALES
    ``update_status?new_status=reserved`` alike); whether that tenant can serve the request
    is the operation's check (409 with the reason)."""
    require_writer(actor, "claim requests")
    if tenant is None:
        raise Forbidden(
            f"request {req.id}: a claim is made by one of your tenants that serves "
            f"{req.quantity}; you have none (register one: POST /api/v1/tenants)"
        )
    act_as_tenant(actor, tenant)


def holds_claim(req: Any, tenant: Any) -> bool:
    return req.status == RequestStatus.claimed.value and req.claimed_by == tenant.id


def post_result_to(actor: Actor, req: Any, tenant: Any) -> None:
    """A result to a pending request that nobody has claimed: only the asker's own tenants
    may answer it directly (e.g. a measurement it entered by hand). Anyone else claims it
    first, or posts an unsolicited result, which is a new record of its own. Results to
    claimed requests are for the claim's holder (a lost lease is a 409, by the operation)."""
    act_as_tenant(actor, tenant)
    if req.status == RequestStatus.pending.value and req.owner_id != actor.user_id:
        raise Forbidden(
            f"request {req.id} is pending and not claimed by tenant {tenant.id}: claim it first "
            f"(POST /api/v1/requests/{req.id}/claim, or FINALES update_status "
            "new_status=reserved), or post an unsolicited result"
        )


def amend_result(actor: Actor, previous: Any, poster_owner_id: uuid.UUID | None) -> None:
    """A resolved request's result is replaced (``amend``) only by the owner of the tenant
    that posted it, or an admin; the original stays, marked ``amended``."""
    if actor.is_admin or (poster_owner_id is not None and poster_owner_id == actor.user_id):
        return
    raise Forbidden(
        f"result {previous.id} was posted by another user's tenant; only that user (or an "
        "admin) can amend it"
    )


def amend_without_result(actor: Actor, req: Any) -> None:
    """A resolved request that has no result left to compare with (its result was never
    stored or is gone): only an admin gives it a new one."""
    if not actor.is_admin:
        raise Forbidden(f"request {req.id} has no result that you could amend")


def fail_request(actor: Actor, req: Any, tenant: Any) -> None:
    """A request fails (or goes back to the queue, ``retry``) by the tenant that holds its
    claim; a pending request only by the asker's own tenant (it could also retract it)."""
    act_as_tenant(actor, tenant)
    if holds_claim(req, tenant):
        return
    if req.status == RequestStatus.pending.value and req.owner_id == actor.user_id:
        return
    if req.status == RequestStatus.claimed.value:
        raise Forbidden(
            f"request {req.id} is claimed by tenant {req.claimed_by}, not {tenant.id}: only "
            "the holder of its claim can fail it"
        )
    if req.status == RequestStatus.pending.value:
        raise Forbidden(
            f"request {req.id} is pending and not claimed by tenant {tenant.id}: only the "
            "holder of its claim can fail it"
        )


def release_claim(
    actor: Actor, req: Any, tenant: Any | None, holder_owner_id: uuid.UUID | None
) -> bool:
    """Returns whether the caller may give a claim back: the tenant that holds it (native,
    ``tenant``), or (FINALES ``pending``, no tenant) the owner of the holding tenant or an
    admin. False (not an error): the operation answers 409, since a claim lost to an expired
    lease looks the same to a legitimate holder."""
    if tenant is not None:
        act_as_tenant(actor, tenant)
        return holds_claim(req, tenant)
    if req.status != RequestStatus.claimed.value:
        return False
    return (
        actor.is_admin
        or (holder_owner_id is not None and holder_owner_id == actor.user_id)
        or (req.claimed_by is None and _held_by_user(req) == actor.user_id)
    )


def retract_request(actor: Actor, req: Any) -> None:
    """Withdrawn by the user who asked, or an admin."""
    if req.owner_id != actor.user_id and not actor.is_admin:
        raise Forbidden("only the user who asked (or an admin) can retract a request")


def change_result_status(actor: Actor, res: Any) -> None:
    """Marking a result amended or deleted: the user who posted it, or an admin."""
    if res.owner_id != actor.user_id and not actor.is_admin:
        raise Forbidden("only the user who posted a result (or an admin) can change its status")


# ------------------------------------------------------------------ campaigns


def in_campaign_group(actor: Actor, campaign: Any) -> bool:
    return bool(actor.groups & set(getattr(campaign, "access_groups", None) or []))


def join_campaign(actor: Actor, campaign: Any, parent: Any | None = None) -> None:
    """A request joins a campaign when its poster is the campaign's owner, a member of one
    of the campaign's groups, or an admin; or when it is a sub-request of a request of that
    campaign whose claim the poster's tenant holds (a tenant that needs a sub-result to
    answer the campaign's request)."""
    if actor.is_admin or campaign.owner_id == actor.user_id or in_campaign_group(actor, campaign):
        return
    if (
        parent is not None
        and parent.campaign_id == campaign.id
        and parent.status == RequestStatus.claimed.value
        and _held_by_user(parent) == actor.user_id
    ):
        return
    raise Forbidden(
        f"campaign {campaign.id} belongs to another user: requests join it only by its owner, "
        "members of its groups, an admin, or a tenant that holds the claim of one of its "
        "requests (as a sub-request)"
    )


def change_campaign(actor: Actor, campaign: Any, what: str = "change it") -> None:
    """A campaign's status, controls, summary and steps: its owner, or an admin."""
    if campaign.owner_id != actor.user_id and not actor.is_admin:
        raise Forbidden(f"only the campaign's owner (or an admin) can {what}")


# ------------------------------------------------------------------ users


def set_role(actor: Actor, role: Role) -> None:
    """Roles are given by admins (the command line acts as one)."""
    if not actor.is_admin:
        raise Forbidden(f"only an admin can give a user the role {role.value}")
