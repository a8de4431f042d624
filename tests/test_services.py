"""The store's services (``bigmap.store.services``), each built on its own on one unit of work,
on SQLite and PostgreSQL: they work without the ``Broker`` facade, an operation across
services opened as one unit is committed whole or not at all, a failing inner step undoes
only itself (a savepoint), and no cache keeps what a rolled-back unit wrote."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from bigmap.schemas.campaign import CampaignCreate
from bigmap.schemas.capability import CapabilitySpec
from bigmap.schemas.common import Role
from bigmap.schemas.request import RequestCreate, ResultCreate
from bigmap.schemas.tenant import TenantSpec
from bigmap.store import models as m
from bigmap.store.broker import Broker
from bigmap.store.db import Database, upgrade
from bigmap.store.errors import Invalid
from bigmap.store.services.campaigns import Campaigns
from bigmap.store.services.catalogue import Catalogue
from bigmap.store.services.identity import Identity
from bigmap.store.services.log import History
from bigmap.store.services.queue import Queue
from bigmap.store.services.results import Results
from bigmap.store.services.uow import UnitOfWork

BACKENDS = pytest.mark.parametrize("fresh_db_url", ["sqlite", "postgresql"], indirect=True)

CAP = CapabilitySpec(
    quantity="conductivity",
    method="probe",
    parameter_schema={
        "type": "object",
        "properties": {"x": {"type": "number"}},
        "required": ["x"],
        "additionalProperties": False,
    },
    result_schema={
        "type": "object",
        "properties": {"y": {"type": "number"}},
        "required": ["y"],
    },
)
PROVIDES = [{"quantity": "conductivity", "method": "probe", "limitations": {}}]


@dataclass
class Services:
    db: Database
    uow: UnitOfWork
    identity: Identity
    catalogue: Catalogue
    queue: Queue
    results: Results
    campaigns: Campaigns
    history: History

    def count(self, model: type) -> int:
        """Rows committed (a session of its own, outside any unit)."""
        with self.db.read() as s:
            return s.scalar(select(func.count()).select_from(model))


@pytest.fixture
def svc(fresh_db_url: str) -> Iterator[Services]:
    upgrade(fresh_db_url)
    db = Database(fresh_db_url)
    uow = UnitOfWork(db)
    identity = Identity(uow)
    catalogue = Catalogue(uow, identity)
    queue = Queue(uow, catalogue, lease_seconds=30)
    results = Results(uow, catalogue, queue)
    campaigns = Campaigns(uow, catalogue, visible_events=lambda actor, events: events)
    yield Services(db, uow, identity, catalogue, queue, results, campaigns, History(uow))
    db.dispose()


def _maintainer(svc: Services, name: str = "mara") -> tuple:
    svc.identity.create_user(name, f"{name}-long-password", Role.maintainer)
    return svc.identity.actor_for_user(name)


@BACKENDS
def test_each_service_works_on_its_own(svc: Services) -> None:
    actor = _maintainer(svc)
    _, created = svc.catalogue.add_capability(actor, CAP)
    assert created
    tenant, _, _ = svc.catalogue.register_tenant(
        actor, TenantSpec(name="rig", limitations=PROVIDES)
    )
    camp, _ = svc.campaigns.create_campaign(
        actor, CampaignCreate(name="c", spec={}, tenant_id=tenant.id)
    )
    req, _ = svc.queue.create_request(
        actor,
        RequestCreate(
            quantity="conductivity",
            methods=["probe"],
            parameters={"probe": {"x": 1.0}},
            tenant_id=tenant.id,
            campaign_id=camp.id,
        ),
    )
    claimed = svc.queue.claim(actor, req.id, tenant.id)
    assert claimed.status == "claimed" and claimed.claimed_by == tenant.id
    res, _ = svc.results.post_result(
        actor, ResultCreate(request_id=req.id, tenant_id=tenant.id, data={"y": 2.0})
    )
    assert svc.queue.get_request(actor, req.id).status == "resolved"
    assert svc.results.result_for_request(actor, req.id).id == res.id
    assert [r.id for r in svc.results.list_results(actor, campaign_id=camp.id)] == [res.id]
    assert [s["new_status"] for s in svc.history.status_log(actor, req.id)] == [
        "pending",
        "claimed",
        "resolved",
    ]


@BACKENDS
def test_a_unit_across_services_commits_whole_or_not_at_all(svc: Services) -> None:
    svc.identity.create_user("root", "root-long-password", Role.admin)
    with pytest.raises(RuntimeError, match="stop here"), svc.uow.write():
        actor = _maintainer(svc, "alice")
        svc.catalogue.add_capability(actor, CAP)
        tenant, _, _ = svc.catalogue.register_tenant(
            actor, TenantSpec(name="rig", limitations=PROVIDES)
        )
        # later steps of the unit see its earlier, uncommitted ones
        assert svc.catalogue.capability("conductivity", "probe") is not None
        camp, _ = svc.campaigns.create_campaign(
            actor, CampaignCreate(name="c", spec={}, tenant_id=tenant.id)
        )
        req, _ = svc.queue.create_request(
            actor,
            RequestCreate(
                quantity="conductivity",
                methods=["probe"],
                parameters={"probe": {"x": 1.0}},
                tenant_id=tenant.id,
                campaign_id=camp.id,
            ),
        )
        svc.queue.claim(actor, req.id, tenant.id)
        svc.results.post_result(
            actor, ResultCreate(request_id=req.id, tenant_id=tenant.id, data={"y": 2.0})
        )
        raise RuntimeError("stop here")
    for model in (
        m.Capability,
        m.Tenant,
        m.TenantCapability,
        m.Campaign,
        m.Request,
        m.Result,
        m.StatusLog,
    ):
        assert svc.count(model) == 0, model.__name__
    assert [u.name for u in svc.identity.list_users()] == ["root"]
    # and nothing of it lingers in a cache: the tenant and the capability are gone
    assert svc.catalogue.capability("conductivity", "probe") is None
    assert svc.catalogue.providers_index(force=True) == []
    bob = _maintainer(svc, "bob")
    svc.catalogue.add_capability(bob, CAP)
    with pytest.raises(Invalid) as exc:
        svc.queue.create_request(
            bob,
            RequestCreate(
                quantity="conductivity",
                methods=["probe"],
                parameters={"probe": {"x": 1.0}},
                tenant_id=tenant.id,
            ),
        )
    assert exc.value.details[0].loc == ["tenant_id"]
    assert "does not exist" in str(exc.value)


@BACKENDS
def test_a_refused_step_undoes_the_steps_before_it_in_the_unit(svc: Services) -> None:
    actor = _maintainer(svc)
    svc.catalogue.add_capability(actor, CAP)
    tenant, _, _ = svc.catalogue.register_tenant(
        actor, TenantSpec(name="rig", limitations=PROVIDES)
    )
    with pytest.raises(Invalid) as exc, svc.uow.write():
        svc.campaigns.create_campaign(actor, CampaignCreate(name="c", spec={}, tenant_id=tenant.id))
        svc.queue.create_request(
            actor,
            RequestCreate(
                quantity="conductivity",
                methods=["probe"],
                parameters={"probe": {"x": "not a number"}},
                tenant_id=tenant.id,
            ),
        )
    assert exc.value.details[0].loc == ["parameters", "probe", "x"]
    assert svc.count(m.Campaign) == 0
    assert svc.count(m.Request) == 0


@BACKENDS
def test_a_failed_inner_step_is_a_savepoint(svc: Services) -> None:
    actor = _maintainer(svc)
    with svc.uow.write():
        svc.catalogue.add_capability(actor, CAP)
        with pytest.raises(ValueError), svc.uow.write():
            svc.identity.create_user("ghost", "ghost-long-password")
            svc.catalogue.register_tenant(actor, TenantSpec(name="rig", limitations=PROVIDES))
            raise ValueError("undo this step only")
        svc.identity.create_user("kept", "kept-long-password")
    assert svc.count(m.Capability) == 1
    assert svc.count(m.Tenant) == 0
    assert sorted(u.name for u in svc.identity.list_users()) == ["kept", "mara"]


@BACKENDS
def test_units_of_other_threads_are_their_own(svc: Services) -> None:
    seen: list[list[str]] = []
    with svc.uow.write():
        svc.identity.create_user("pending", "pending-long-password")
        assert "pending" in [u.name for u in svc.identity.list_users()]
        # another thread opens a read of its own: the uncommitted user is not there
        t = threading.Thread(
            target=lambda: seen.append([u.name for u in svc.identity.list_users()])
        )
        t.start()
        t.join(30)
    assert seen == [[]]
    assert [u.name for u in svc.identity.list_users()] == ["pending"]


def test_no_write_inside_a_read_unit(fresh_db_url: str) -> None:
    upgrade(fresh_db_url)
    db = Database(fresh_db_url)
    uow = UnitOfWork(db)
    identity = Identity(uow)
    with pytest.raises(RuntimeError, match="read-only unit"), uow.read():
        identity.create_user("x", "x-long-password")
    assert identity.list_users() == []
    assert not uow.active
    db.dispose()


def test_the_broker_composes_services_on_one_unit(fresh_db_url: str) -> None:
    upgrade(fresh_db_url)
    broker = Broker(Database(fresh_db_url), lease_seconds=12, heartbeat_seconds=34)
    units = {
        id(s.uow)
        for s in (
            broker.identity,
            broker.catalogue,
            broker.queue,
            broker.results,
            broker.campaigns,
            broker.history,
        )
    }
    assert units == {id(broker.uow)}
    assert (broker.lease_seconds, broker.heartbeat_seconds) == (12, 34)
    # the facade's operations join a unit its caller opened
    with pytest.raises(RuntimeError), broker.uow.write():
        broker.create_user("u1", "u1-long-password")
        raise RuntimeError
    with pytest.raises(Exception):  # noqa: B017 - any error: the user does not exist
        broker.get_user("u1")
    assert uuid.UUID(str(broker.create_user("u1", "u1-long-password").id))
    broker.db.dispose()
