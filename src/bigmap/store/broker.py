"""The broker: one facade over the services of the store, for the server's routers (native
and FINALES-compatible), the CLI and the embedded broker.

Each operation is a service's (``bigmap.store.services``): identity (users, logins, tokens),
catalogue (capabilities, tenants, registration), queue (requests, claims, leases, the
sweeper), results (results, amendments, files), campaigns (campaigns, events, summaries)
and the status log. They share one unit of work (``services.uow.UnitOfWork``): the session
and transaction of one call, which an operation that spans several services opens first
(``with broker.uow.write(): ...``) so that all of it is committed, or none. Every "may this
actor do this to that object" is ``bigmap.store.policy``'s, called by the services.

Nothing here knows about HTTP. Errors are ``bigmap.store.errors``; each becomes one HTTP
status. This class only composes the services and keeps the broker's public methods.
"""

from __future__ import annotations

import uuid
from typing import Any

from bigmap.schemas.campaign import CampaignCreate, CampaignEventCreate, CampaignUpdate
from bigmap.schemas.capability import CapabilitySpec
from bigmap.schemas.common import RequestStatus, Role
from bigmap.schemas.request import RequestCreate, ResultCreate
from bigmap.schemas.tenant import TenantSpec
from bigmap.store import models as m
from bigmap.store.access import Actor
from bigmap.store.db import Database
from bigmap.store.fair import Fair
from bigmap.store.services.campaigns import Campaigns
from bigmap.store.services.catalogue import (
    DEFINING_FIELDS,
    DESCRIPTIVE_FIELDS,
    CapabilityInfo,
    Catalogue,
    Provider,
    TenantInfo,
)
from bigmap.store.services.identity import Identity, IdentityConfig
from bigmap.store.services.log import History
from bigmap.store.services.queue import Queue
from bigmap.store.services.results import MAX_FILE_BYTES, Results
from bigmap.store.services.uow import UnitOfWork

__all__ = [
    "DEFINING_FIELDS",
    "DESCRIPTIVE_FIELDS",
    "MAX_FILE_BYTES",
    "Broker",
    "CapabilityInfo",
    "Provider",
    "TenantInfo",
]


class Broker:
    """All operations of the broker on one database: the services, composed."""

    def __init__(
        self,
        db: Database,
        *,
        secret: str = "",
        lease_seconds: float = 60.0,
        heartbeat_seconds: float = 120.0,
        identity: IdentityConfig | None = None,
    ) -> None:
        self.db = db
        self.uow = UnitOfWork(db)
        self.identity = Identity(self.uow, secret=secret, config=identity)
        self.catalogue = Catalogue(self.uow, self.identity, heartbeat_seconds=heartbeat_seconds)
        self.queue = Queue(self.uow, self.catalogue, lease_seconds=lease_seconds)
        self.results = Results(self.uow, self.catalogue, self.queue, checks_on=self)
        self.campaigns = Campaigns(
            self.uow,
            self.catalogue,
            visible_events=lambda actor, events: Fair(self).visible_events(actor, events),
        )
        self.history = History(self.uow)

    @property
    def lease_seconds(self) -> float:
        return self.queue.lease_seconds

    @property
    def heartbeat_seconds(self) -> float:
        return self.catalogue.heartbeat_seconds

    # ------------------------------------------------------------------ users, logins and tokens

    @property
    def secret(self) -> str:
        return self.identity.secret

    def create_user(
        self, name: str, password: str, role: Role = Role.tenant, groups: list[str] | None = None
    ) -> m.User:
        return self.identity.create_user(name, password, role, groups)

    def set_user(self, name: str, **changes: Any) -> m.User:
        return self.identity.set_user(name, **changes)

    def get_user(self, name: str) -> m.User:
        return self.identity.get_user(name)

    def list_users(self) -> list[m.User]:
        return self.identity.list_users()

    def authenticate(self, name: str, password: str, address: str | None = None) -> m.User:
        return self.identity.authenticate(name, password, address)

    def issue_token(self, user_name: str, **kwargs: Any) -> tuple[str, m.Token]:
        return self.identity.issue_token(user_name, **kwargs)

    def revoke_token(self, token_id: uuid.UUID, actor: Actor | None = None) -> m.Token:
        return self.identity.revoke_token(token_id, actor)

    def actor_for_token(self, token: str) -> Actor:
        return self.identity.actor_for_token(token)

    def actor_for_user(self, name: str) -> Actor:
        return self.identity.actor_for_user(name)

    def user_names(self) -> dict[uuid.UUID, str]:
        return self.identity.user_names()

    # ------------------------------------------------------------------ capabilities and tenants

    def capability(self, quantity: str, method: str) -> CapabilityInfo | None:
        return self.catalogue.capability(quantity, method)

    def add_capability(
        self, actor: Actor, spec: CapabilitySpec, *, replace: bool = False
    ) -> tuple[m.Capability, bool]:
        return self.catalogue.add_capability(actor, spec, replace=replace)

    def list_capabilities(
        self, *, currently_available: bool = False, limit: int | None = None, offset: int = 0
    ) -> list[tuple[m.Capability, int]]:
        return self.catalogue.list_capabilities(
            currently_available=currently_available, limit=limit, offset=offset
        )

    def get_capability(self, quantity: str, method: str) -> m.Capability:
        return self.catalogue.get_capability(quantity, method)

    def register_tenant(
        self, actor: Actor, spec: TenantSpec, *, owner: str | None = None
    ) -> tuple[m.Tenant, list[str], bool]:
        return self.catalogue.register_tenant(actor, spec, owner=owner)

    def set_tenant_active(self, actor: Actor, tenant_id: uuid.UUID, active: bool) -> m.Tenant:
        return self.catalogue.set_tenant_active(actor, tenant_id, active)

    def get_tenant(self, tenant_id: uuid.UUID) -> m.Tenant:
        return self.catalogue.get_tenant(tenant_id)

    def find_tenant(self, owner: str, name: str) -> m.Tenant | None:
        return self.catalogue.find_tenant(owner, name)

    def list_tenants(self, *, limit: int | None = None, offset: int = 0) -> list[m.Tenant]:
        return self.catalogue.list_tenants(limit=limit, offset=offset)

    def tenant_details(
        self, tenants: list[m.Tenant], actor: Actor | None = None
    ) -> dict[uuid.UUID, dict[str, Any]]:
        return self.catalogue.tenant_details(tenants, actor)

    def is_alive(self, tenant: m.Tenant) -> bool:
        return self.catalogue.is_alive(tenant)

    def heartbeat(
        self, actor: Actor, tenant_id: uuid.UUID, software: dict[str, Any] | None = None
    ) -> m.Tenant:
        return self.catalogue.heartbeat(actor, tenant_id, software)

    def validate_request_parameters(
        self, quantity: str, methods: list[str], parameters: dict[str, Any], loc: list[str | int]
    ) -> None:
        self.catalogue.validate_request_parameters(quantity, methods, parameters, loc)

    def active_providers(self) -> list[Provider]:
        return self.catalogue.active_providers()

    def providers_of(self, tenant_id: uuid.UUID) -> list[Provider]:
        return self.catalogue.providers_of(tenant_id)

    def user_tenant_ids(self, actor: Actor) -> list[uuid.UUID]:
        return self.catalogue.user_tenant_ids(actor)

    # ------------------------------------------------------------------ requests, claims and leases

    def create_request(
        self,
        actor: Actor,
        body: RequestCreate,
        *,
        status: RequestStatus = RequestStatus.pending,
        queue: bool = True,
    ) -> tuple[m.Request, bool]:
        return self.queue.create_request(actor, body, status=status, queue=queue)

    def get_request(self, actor: Actor, request_id: uuid.UUID) -> m.Request:
        return self.queue.get_request(actor, request_id)

    def list_requests(
        self,
        actor: Actor,
        *,
        status: list[str] | None = None,
        quantity: str | None = None,
        method: str | None = None,
        tenant_id: uuid.UUID | None = None,
        campaign_id: uuid.UUID | None = None,
        parent_id: uuid.UUID | None = None,
        servable_by: list[uuid.UUID] | None = None,
        limit: int | None = 1000,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[m.Request]:
        return self.queue.list_requests(
            actor,
            status=status,
            quantity=quantity,
            method=method,
            tenant_id=tenant_id,
            campaign_id=campaign_id,
            parent_id=parent_id,
            servable_by=servable_by,
            limit=limit,
            offset=offset,
            newest_first=newest_first,
        )

    def claim(
        self,
        actor: Actor,
        request_id: uuid.UUID,
        tenant_id: uuid.UUID | None,
        *,
        method: str | None = None,
        lease_seconds: float | None = None,
        message: str = "",
    ) -> m.Request:
        return self.queue.claim(
            actor,
            request_id,
            tenant_id,
            method=method,
            lease_seconds=lease_seconds,
            message=message,
        )

    def claim_next(
        self,
        actor: Actor,
        tenant_id: uuid.UUID,
        *,
        capabilities: list[tuple[str, str]] | None = None,
        lease_seconds: float | None = None,
    ) -> m.Request | None:
        return self.queue.claim_next(
            actor, tenant_id, capabilities=capabilities, lease_seconds=lease_seconds
        )

    def renew_lease(
        self,
        actor: Actor,
        request_id: uuid.UUID,
        tenant_id: uuid.UUID,
        lease_seconds: float | None = None,
        progress: dict[str, Any] | None = None,
    ) -> m.Request:
        return self.queue.renew_lease(actor, request_id, tenant_id, lease_seconds, progress)

    def release(
        self,
        actor: Actor,
        request_id: uuid.UUID,
        tenant_id: uuid.UUID | None,
        message: str = "released",
    ) -> m.Request:
        return self.queue.release(actor, request_id, tenant_id, message)

    def fail(
        self,
        actor: Actor,
        request_id: uuid.UUID,
        tenant_id: uuid.UUID,
        message: str,
        *,
        kind: str = "calculation_failed",
        retry: bool = False,
    ) -> m.Request:
        return self.queue.fail(actor, request_id, tenant_id, message, kind=kind, retry=retry)

    def retract(self, actor: Actor, request_id: uuid.UUID, message: str = "") -> m.Request:
        return self.queue.retract(actor, request_id, message)

    def expire_leases(self) -> int:
        return self.queue.expire_leases()

    def set_request_status_finales(
        self, actor: Actor, request_id: uuid.UUID, new_status: str, message: str | None
    ) -> str:
        return self.queue.set_request_status_finales(actor, request_id, new_status, message)

    # ------------------------------------------------------------------ results and files

    def post_result(self, actor: Actor, body: ResultCreate) -> tuple[m.Result, bool]:
        return self.results.post_result(actor, body)

    def get_result(self, actor: Actor, result_id: uuid.UUID) -> m.Result:
        return self.results.get_result(actor, result_id)

    def result_for_request(self, actor: Actor, request_id: uuid.UUID) -> m.Result | None:
        return self.results.result_for_request(actor, request_id)

    def list_results(
        self,
        actor: Actor,
        *,
        quantity: str | None = None,
        method: str | None = None,
        request_id: uuid.UUID | None = None,
        tenant_id: uuid.UUID | None = None,
        campaign_id: uuid.UUID | None = None,
        include_deleted: bool = False,
        limit: int | None = 1000,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[m.Result]:
        return self.results.list_results(
            actor,
            quantity=quantity,
            method=method,
            request_id=request_id,
            tenant_id=tenant_id,
            campaign_id=campaign_id,
            include_deleted=include_deleted,
            limit=limit,
            offset=offset,
            newest_first=newest_first,
        )

    def set_result_status(
        self, actor: Actor, result_id: uuid.UUID, new_status: str, message: str | None = None
    ) -> str:
        return self.results.set_result_status(actor, result_id, new_status, message)

    def result_files(self, actor: Actor, result_id: uuid.UUID) -> list[m.File]:
        return self.results.result_files(actor, result_id)

    def get_file(self, actor: Actor, file_id: uuid.UUID) -> m.File:
        return self.results.get_file(actor, file_id)

    # ------------------------------------------------------------------ campaigns

    def create_campaign(self, actor: Actor, body: CampaignCreate) -> tuple[m.Campaign, bool]:
        return self.campaigns.create_campaign(actor, body)

    def get_campaign(self, actor: Actor, campaign_id: uuid.UUID) -> m.Campaign:
        return self.campaigns.get_campaign(actor, campaign_id)

    def list_campaigns(
        self, actor: Actor, *, limit: int | None = None, offset: int = 0
    ) -> list[m.Campaign]:
        return self.campaigns.list_campaigns(actor, limit=limit, offset=offset)

    def count_campaign_events(self, campaign_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
        return self.campaigns.count_campaign_events(campaign_ids)

    def update_campaign(
        self, actor: Actor, campaign_id: uuid.UUID, body: CampaignUpdate
    ) -> m.Campaign:
        return self.campaigns.update_campaign(actor, campaign_id, body)

    def add_campaign_event(
        self, actor: Actor, campaign_id: uuid.UUID, body: CampaignEventCreate
    ) -> tuple[m.CampaignEvent, bool]:
        return self.campaigns.add_campaign_event(actor, campaign_id, body)

    def list_campaign_events(
        self,
        actor: Actor,
        campaign_id: uuid.UUID,
        *,
        after: int = 0,
        kind: str | None = None,
        limit: int = 10000,
    ) -> list[m.CampaignEvent]:
        return self.campaigns.list_campaign_events(
            actor, campaign_id, after=after, kind=kind, limit=limit
        )

    # ------------------------------------------------------------------ status log

    def status_log(self, actor: Actor, object_id: uuid.UUID) -> list[dict[str, Any]]:
        return self.history.status_log(actor, object_id)
