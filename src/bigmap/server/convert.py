"""Stored rows to the API's models (native and FINALES shapes)."""

from __future__ import annotations

from typing import Any

from bigmap.schemas.campaign import CampaignEventOut, CampaignOut
from bigmap.schemas.common import TO_FINALES_STATUS, RequestStatus
from bigmap.schemas.identity import CapabilityOut, ProvidesOut, TenantOut, UserOut
from bigmap.schemas.request import (
    FileOut,
    FinalesRequest,
    FinalesRequestInfo,
    FinalesResult,
    FinalesResultInfo,
    RequestOut,
    ResultOut,
)
from bigmap.store import models as m
from bigmap.store.access import Actor
from bigmap.store.broker import Broker


def _access(row: Any) -> dict[str, Any]:
    return {
        "access": row.access,
        "access_groups": row.access_groups or [],
        "embargo_until": row.embargo_until,
    }


def request_out(r: m.Request) -> RequestOut:
    return RequestOut(
        id=r.id,
        quantity=r.quantity,
        methods=r.methods,
        parameters=r.parameters,
        tenant_id=r.tenant_id,
        status=r.status,
        status_info=r.status_info or {},
        parent_id=r.parent_id,
        campaign_id=r.campaign_id,
        priority=r.priority,
        claimed_by=r.claimed_by,
        claimed_method=r.claimed_method,
        lease_expires_at=r.lease_expires_at,
        attempts=r.attempts,
        result_id=r.result_id,
        created_at=r.created_at,
        updated_at=r.updated_at,
        **_access(r),
    )


def file_out(f: m.File) -> FileOut:
    return FileOut(
        id=f.id,
        name=f.name,
        media_type=f.media_type,
        size=f.size,
        sha256=f.sha256,
        result_id=f.result_id,
        created_at=f.created_at,
    )


def result_out(r: m.Result, files: list[m.File] | None = None) -> ResultOut:
    return ResultOut(
        id=r.id,
        request_id=r.request_id,
        quantity=r.quantity,
        method=r.method,
        parameters=r.parameters,
        data=r.data,
        tenant_id=r.tenant_id,
        status=r.status,
        sha256=r.sha256,
        software=r.software,
        amends=r.amends,
        provenance=r.provenance or {},
        files=[file_out(f) for f in files or []],
        created_at=r.created_at,
        **_access(r),
    )


def finales_request_info(r: m.Request) -> FinalesRequestInfo:
    return FinalesRequestInfo(
        uuid=str(r.id),
        ctime=r.created_at,
        status=TO_FINALES_STATUS[RequestStatus(r.status)].value,
        request=FinalesRequest(
            quantity=r.quantity,
            methods=r.methods,
            parameters=r.parameters,
            tenant_uuid=str(r.tenant_id) if r.tenant_id else "",
        ),
    )


def finales_result_info(r: m.Result) -> FinalesResultInfo:
    return FinalesResultInfo(
        uuid=str(r.id),
        ctime=r.created_at,
        status=r.status,
        result=FinalesResult(
            data=r.data,
            quantity=r.quantity,
            method=[r.method],
            parameters={r.method: r.parameters},
            tenant_uuid=str(r.tenant_id) if r.tenant_id else "",
            request_uuid=str(r.request_id),
        ),
    )


def capability_out(c: m.Capability, providers: int = 0) -> CapabilityOut:
    return CapabilityOut(
        id=c.id,
        quantity=c.quantity,
        method=c.method,
        parameter_schema=c.parameter_schema,
        result_schema=c.result_schema,
        description=c.description,
        units=c.units or {},
        iri=c.iri,
        cost=c.cost,
        fidelity=c.fidelity,
        is_active=c.is_active,
        created_at=c.created_at,
        providers=providers,
    )


def tenant_outs(
    broker: Broker, actor: Actor, tenants: list[m.Tenant], warnings: list[str] | None = None
) -> list[TenantOut]:
    """Tenants as ``actor`` may see them (claims only on requests it may see)."""
    details = broker.tenant_details(tenants, actor)
    return [
        TenantOut(
            id=t.id,
            name=t.name,
            kind=t.kind,
            description=t.description,
            contact_person=t.contact_person,
            owner=details[t.id]["owner"],
            software=t.software,
            is_active=t.is_active,
            alive=broker.is_alive(t),
            last_seen_at=t.last_seen_at,
            created_at=t.created_at,
            provides=[ProvidesOut(**p) for p in details[t.id]["provides"]],
            warnings=warnings or [],
            claims=details[t.id]["claims"],
        )
        for t in tenants
    ]


def user_out(u: m.User) -> UserOut:
    return UserOut(
        id=u.id,
        name=u.name,
        role=u.role,
        groups=u.groups or [],
        created_at=u.created_at,
        disabled=bool(u.disabled),
    )


def campaign_out(
    c: m.Campaign, owner: str, n_events: int = 0, summary: dict[str, Any] | None = None
) -> CampaignOut:
    """``summary``: the summary as the reader may see it (``Fair.visible_summaries``)."""
    return CampaignOut(
        id=c.id,
        name=c.name,
        spec=c.spec,
        tenant_id=c.tenant_id,
        owner=owner,
        status=c.status,
        control=c.control,
        summary=(c.summary if summary is None else summary) or {},
        n_events=n_events,
        created_at=c.created_at,
        updated_at=c.updated_at,
        **_access(c),
    )


def event_out(e: m.CampaignEvent) -> CampaignEventOut:
    return CampaignEventOut(
        id=e.id,
        campaign_id=e.campaign_id,
        seq=e.seq,
        kind=e.kind,
        data=e.data,
        request_ids=e.request_ids or [],
        created_at=e.created_at,
    )
