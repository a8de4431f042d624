"""Campaigns: a planner's closed loop, its status and controls, its summary and its events."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy import func, select

from bigmap.schemas.campaign import CampaignCreate, CampaignEventCreate, CampaignUpdate
from bigmap.schemas.common import utcnow
from bigmap.store import models as m
from bigmap.store import policy
from bigmap.store.access import Actor, can_see, visibility_clause
from bigmap.store.errors import NotFound
from bigmap.store.services.catalogue import Catalogue
from bigmap.store.services.log import log
from bigmap.store.services.uow import UnitOfWork

VisibleEvents = Callable[[Actor, list[m.CampaignEvent]], list]


class Campaigns:
    """Campaigns and their events."""

    def __init__(
        self, uow: UnitOfWork, catalogue: Catalogue, *, visible_events: VisibleEvents
    ) -> None:
        """``visible_events``: an event list as an actor may read it (redacted)."""
        self.uow = uow
        self.catalogue = catalogue
        self.visible_events = visible_events

    def create_campaign(self, actor: Actor, body: CampaignCreate) -> tuple[m.Campaign, bool]:
        policy.require_writer(actor, "start campaigns")
        with self.uow.write() as s:
            tenant = self.catalogue.owned_tenant(s, actor, body.tenant_id)
            if body.idempotency_key:
                existing = s.scalar(
                    select(m.Campaign).where(
                        m.Campaign.owner_id == actor.user_id,
                        m.Campaign.idempotency_key == body.idempotency_key,
                    )
                )
                if existing is not None:
                    return existing, False
            now = utcnow()
            camp = m.Campaign(
                name=body.name,
                spec=body.spec,
                tenant_id=tenant.id,
                status=body.status.value,
                control="run",
                summary={},
                idempotency_key=body.idempotency_key,
                owner_id=actor.user_id,
                access=body.access.value,
                access_groups=body.access_groups,
                embargo_until=body.embargo_until,
                created_at=now,
                updated_at=now,
            )
            s.add(camp)
            s.flush()
            log(s, "campaign", camp.id, None, camp.status, "created", actor, tenant.id)
            return camp, True

    def get_campaign(self, actor: Actor, campaign_id: uuid.UUID) -> m.Campaign:
        with self.uow.read() as s:
            camp = s.get(m.Campaign, campaign_id)
        if camp is None or not can_see(actor, camp):
            raise NotFound(f"no campaign {campaign_id}")
        return camp

    def list_campaigns(
        self, actor: Actor, *, limit: int | None = None, offset: int = 0
    ) -> list[m.Campaign]:
        """The campaigns ``actor`` may see, newest first; one page in SQL with ``limit``."""
        q = (
            select(m.Campaign)
            .where(visibility_clause(actor, m.Campaign, self.uow.dialect))
            .order_by(m.Campaign.created_at.desc(), m.Campaign.id)
        )
        if limit is not None:
            q = q.offset(offset).limit(limit)
        with self.uow.read() as s:
            return [c for c in s.scalars(q) if can_see(actor, c)]

    def count_campaign_events(self, campaign_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
        if not campaign_ids:
            return {}
        with self.uow.read() as s:
            return dict(
                s.execute(
                    select(m.CampaignEvent.campaign_id, func.count())
                    .where(m.CampaignEvent.campaign_id.in_(campaign_ids))
                    .group_by(m.CampaignEvent.campaign_id)
                ).all()
            )

    def update_campaign(
        self, actor: Actor, campaign_id: uuid.UUID, body: CampaignUpdate
    ) -> m.Campaign:
        with self.uow.write() as s:
            q = select(m.Campaign).where(m.Campaign.id == campaign_id)
            if not self.uow.sqlite:
                q = q.with_for_update()
            camp = s.scalar(q)
            if camp is None or not can_see(actor, camp):
                raise NotFound(f"no campaign {campaign_id}")
            policy.change_campaign(actor, camp)
            now = utcnow()
            if body.status is not None and body.status.value != camp.status:
                log(
                    s,
                    "campaign",
                    camp.id,
                    camp.status,
                    body.status.value,
                    body.message or "status changed",
                    actor,
                    None,
                )
                camp.status = body.status.value
            if body.control is not None and body.control != camp.control:
                log(
                    s,
                    "campaign",
                    camp.id,
                    camp.status,
                    camp.status,
                    f"control: {body.control}. {body.message}".strip(),
                    actor,
                    None,
                )
                camp.control = body.control
            if body.summary is not None:
                camp.summary = body.summary
            camp.updated_at = now
            return camp

    def add_campaign_event(
        self, actor: Actor, campaign_id: uuid.UUID, body: CampaignEventCreate
    ) -> tuple[m.CampaignEvent, bool]:
        with self.uow.write() as s:
            q = select(m.Campaign).where(m.Campaign.id == campaign_id)
            if not self.uow.sqlite:
                q = q.with_for_update()
            camp = s.scalar(q)
            if camp is None or not can_see(actor, camp):
                raise NotFound(f"no campaign {campaign_id}")
            policy.change_campaign(actor, camp, "record its steps")
            if body.idempotency_key:
                existing = s.scalar(
                    select(m.CampaignEvent).where(
                        m.CampaignEvent.campaign_id == campaign_id,
                        m.CampaignEvent.idempotency_key == body.idempotency_key,
                    )
                )
                if existing is not None:
                    return existing, False
            seq = (
                s.scalar(
                    select(func.max(m.CampaignEvent.seq)).where(
                        m.CampaignEvent.campaign_id == campaign_id
                    )
                )
                or 0
            ) + 1
            ev = m.CampaignEvent(
                campaign_id=campaign_id,
                seq=seq,
                kind=body.kind,
                data=body.data,
                request_ids=[str(r) for r in body.request_ids],
                idempotency_key=body.idempotency_key,
                created_at=utcnow(),
            )
            s.add(ev)
            camp.updated_at = ev.created_at
            s.flush()
            return ev, True

    def list_campaign_events(
        self,
        actor: Actor,
        campaign_id: uuid.UUID,
        *,
        after: int = 0,
        kind: str | None = None,
        limit: int = 10000,
    ) -> list[m.CampaignEvent]:
        self.get_campaign(actor, campaign_id)
        q = select(m.CampaignEvent).where(
            m.CampaignEvent.campaign_id == campaign_id, m.CampaignEvent.seq > after
        )
        if kind:
            q = q.where(m.CampaignEvent.kind == kind)
        with self.uow.read() as s:
            events = list(s.scalars(q.order_by(m.CampaignEvent.seq).limit(limit)))
        # an event about requests or results the reader may not see keeps only its place
        return self.visible_events(actor, events)
