"""The write policy (``bigmap.store.policy``) rule by rule: each allowed and each denied.

Pure functions of the caller and the rows it acts on, so the rows here are plain objects
with the same attributes; ``test_policy_live.py`` tries the same rules as an attacker
against a running broker.
"""

from __future__ import annotations

import uuid
from types import SimpleNamespace as NS

import pytest

from bigmap.schemas.common import Role
from bigmap.store import policy
from bigmap.store.access import Actor
from bigmap.store.errors import Forbidden


def actor(role: Role = Role.tenant, groups: tuple[str, ...] = ()) -> Actor:
    uid = uuid.uuid4()
    return Actor(uid, f"user-{role.value}-{uid.hex[:6]}", role, frozenset(groups))


ADMIN = actor(Role.admin)
MAINTAINER = actor(Role.maintainer)
TENANT = actor(Role.tenant)
OTHER = actor(Role.tenant)
OBSERVER = actor(Role.observer)


def tenant_of(a: Actor) -> NS:
    return NS(id=uuid.uuid4(), owner_id=a.user_id)


def request(owner: Actor, status: str = "pending", holder: NS | None = None, **kw) -> NS:
    return NS(
        id=uuid.uuid4(),
        quantity="conductivity",
        owner_id=owner.user_id,
        status=status,
        claimed_by=holder.id if holder else None,
        claimed_by_user=holder.owner_id if holder else None,
        campaign_id=kw.get("campaign_id"),
    )


def test_require_writer():
    for a in (ADMIN, MAINTAINER, TENANT):
        policy.require_writer(a, "post requests")
    with pytest.raises(Forbidden, match="observer cannot post requests"):
        policy.require_writer(OBSERVER, "post requests")


def test_define_capability_is_a_role_right():
    policy.define_capability(ADMIN, "q", "m")
    policy.define_capability(MAINTAINER, "q", "m")
    with pytest.raises(Forbidden) as exc:
        policy.define_capability(TENANT, "q", "m")
    # says which right is missing and how an admin grants it
    assert "maintainer" in exc.value.message and "bigmap user role" in exc.value.message
    with pytest.raises(Forbidden):
        policy.define_capability(OBSERVER, "q", "m")


def test_replace_capability_admin_only():
    policy.replace_capability(ADMIN, "q", "m")
    for a in (MAINTAINER, TENANT):
        with pytest.raises(Forbidden, match="only an admin"):
            policy.replace_capability(a, "q", "m")


def test_register_tenant_for():
    policy.register_tenant_for(TENANT, TENANT.name)
    policy.register_tenant_for(ADMIN, "someone-else")
    with pytest.raises(Forbidden, match="another user"):
        policy.register_tenant_for(TENANT, OTHER.name)
    with pytest.raises(Forbidden):
        policy.register_tenant_for(OBSERVER, OBSERVER.name)


def test_act_as_tenant():
    mine, theirs = tenant_of(TENANT), tenant_of(OTHER)
    policy.act_as_tenant(TENANT, mine)
    with pytest.raises(Forbidden, match="belongs to another user"):
        policy.act_as_tenant(TENANT, theirs)
    with pytest.raises(Forbidden):
        policy.act_as_tenant(ADMIN, theirs)  # an admin acts as its own tenants too
    policy.act_as_tenant(ADMIN, theirs, allow_admin=True)


def test_claim_request_needs_own_tenant():
    req = request(OTHER)
    policy.claim_request(TENANT, req, tenant_of(TENANT))
    with pytest.raises(Forbidden, match="you have none"):
        policy.claim_request(TENANT, req, None)  # FINALES reserve without a serving tenant
    with pytest.raises(Forbidden, match="you have none"):
        policy.claim_request(ADMIN, req, None)
    with pytest.raises(Forbidden, match="belongs to another user"):
        policy.claim_request(TENANT, req, tenant_of(OTHER))
    with pytest.raises(Forbidden):
        policy.claim_request(OBSERVER, req, tenant_of(OBSERVER))


def test_post_result_to_unclaimed_request():
    mine = tenant_of(TENANT)
    # the asker's own tenant may answer its own pending request
    policy.post_result_to(TENANT, request(TENANT), mine)
    # someone else's pending request: claim first, or post an unsolicited result
    with pytest.raises(Forbidden, match="claim it first"):
        policy.post_result_to(TENANT, request(OTHER), mine)
    # a claimed request held by this tenant
    policy.post_result_to(TENANT, request(OTHER, "claimed", mine), mine)
    with pytest.raises(Forbidden, match="belongs to another user"):
        policy.post_result_to(TENANT, request(TENANT), tenant_of(OTHER))


def test_amend_result():
    previous = NS(id=uuid.uuid4())
    policy.amend_result(TENANT, previous, TENANT.user_id)
    policy.amend_result(ADMIN, previous, OTHER.user_id)
    with pytest.raises(Forbidden, match="only that user"):
        policy.amend_result(TENANT, previous, OTHER.user_id)
    with pytest.raises(Forbidden):
        policy.amend_result(TENANT, previous, None)


def test_amend_without_result():
    req = request(TENANT, "resolved")
    policy.amend_without_result(ADMIN, req)
    for a in (TENANT, MAINTAINER, OBSERVER):
        with pytest.raises(Forbidden, match="no result that you could amend"):
            policy.amend_without_result(a, req)


def test_fail_request():
    mine, theirs = tenant_of(TENANT), tenant_of(OTHER)
    policy.fail_request(TENANT, request(OTHER, "claimed", mine), mine)
    policy.fail_request(TENANT, request(TENANT), mine)  # the asker's own pending request
    with pytest.raises(Forbidden, match="only the holder"):
        policy.fail_request(TENANT, request(OTHER, "claimed", theirs), mine)
    with pytest.raises(Forbidden, match="only the holder"):
        policy.fail_request(TENANT, request(OTHER), mine)
    with pytest.raises(Forbidden, match="belongs to another user"):
        policy.fail_request(TENANT, request(OTHER, "claimed", theirs), theirs)


def test_release_claim():
    mine, theirs = tenant_of(TENANT), tenant_of(OTHER)
    held = request(OTHER, "claimed", mine)
    assert policy.release_claim(TENANT, held, mine, TENANT.user_id)
    assert not policy.release_claim(TENANT, request(OTHER, "claimed", theirs), mine, None)
    assert not policy.release_claim(TENANT, request(OTHER), mine, None)
    # FINALES "pending" (no tenant): the owner of the holding tenant, or an admin
    assert policy.release_claim(TENANT, held, None, TENANT.user_id)
    assert policy.release_claim(ADMIN, held, None, TENANT.user_id)
    assert not policy.release_claim(OTHER, held, None, TENANT.user_id)
    assert not policy.release_claim(TENANT, request(TENANT), None, TENANT.user_id)
    with pytest.raises(Forbidden):
        policy.release_claim(TENANT, held, theirs, OTHER.user_id)


def test_retract_request():
    policy.retract_request(TENANT, request(TENANT))
    policy.retract_request(ADMIN, request(TENANT))
    with pytest.raises(Forbidden, match="only the user who asked"):
        policy.retract_request(OTHER, request(TENANT))


def test_change_result_status():
    res = NS(id=uuid.uuid4(), owner_id=TENANT.user_id)
    policy.change_result_status(TENANT, res)
    policy.change_result_status(ADMIN, res)
    with pytest.raises(Forbidden, match="only the user who posted"):
        policy.change_result_status(OTHER, res)


def test_join_campaign():
    camp = NS(id=uuid.uuid4(), owner_id=TENANT.user_id, access_groups=["lab-a"])
    policy.join_campaign(TENANT, camp)
    policy.join_campaign(ADMIN, camp)
    policy.join_campaign(actor(Role.tenant, ("lab-a",)), camp)  # a member of its group
    with pytest.raises(Forbidden, match="belongs to another user"):
        policy.join_campaign(OTHER, camp)
    with pytest.raises(Forbidden):
        policy.join_campaign(actor(Role.tenant, ("lab-b",)), camp)
    # a sub-request of a campaign request whose claim the poster's tenant holds
    held = request(TENANT, "claimed", tenant_of(OTHER), campaign_id=camp.id)
    policy.join_campaign(OTHER, camp, held)
    pending = request(TENANT, campaign_id=camp.id)
    with pytest.raises(Forbidden):
        policy.join_campaign(OTHER, camp, pending)
    elsewhere = request(TENANT, "claimed", tenant_of(OTHER), campaign_id=uuid.uuid4())
    with pytest.raises(Forbidden):
        policy.join_campaign(OTHER, camp, elsewhere)


def test_change_campaign():
    camp = NS(id=uuid.uuid4(), owner_id=TENANT.user_id, access_groups=[])
    policy.change_campaign(TENANT, camp)
    policy.change_campaign(ADMIN, camp)
    with pytest.raises(Forbidden, match="only the campaign's owner"):
        policy.change_campaign(OTHER, camp, "record its steps")


def test_set_role():
    policy.set_role(ADMIN, Role.maintainer)
    with pytest.raises(Forbidden):
        policy.set_role(MAINTAINER, Role.maintainer)
