"""The capability catalogue."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Response

from bigmap.schemas.capability import CapabilitySpec
from bigmap.schemas.identity import CapabilityOut
from bigmap.schemas.templates import template
from bigmap.schemas.validation import check_schema_details
from bigmap.server.convert import capability_out
from bigmap.server.deps import ActorDep, BrokerDep
from bigmap.server.paging import PageDep
from bigmap.store.errors import Invalid

router = APIRouter(prefix="/capabilities", tags=["capabilities"])


@router.get("", response_model=list[CapabilityOut])
def list_capabilities(
    broker: BrokerDep, _: ActorDep, page: PageDep, currently_available: bool = False
) -> list[CapabilityOut]:
    """All capabilities; with ``currently_available`` only those an active tenant provides.
    One page at a time, by quantity and method."""
    rows = broker.list_capabilities(
        currently_available=currently_available, limit=page.fetch, offset=page.offset
    )
    return [capability_out(c, n) for c, n in page.cut(rows)]


@router.post("", response_model=CapabilityOut, status_code=201)
def add_capability(
    broker: BrokerDep,
    actor: ActorDep,
    response: Response,
    document: dict[str, Any] = Body(description="a native capability or a FINALES capability file"),
    replace: bool = False,
) -> CapabilityOut:
    try:
        spec = CapabilitySpec.from_document(document)
    except ValueError as exc:
        raise Invalid(str(exc), []) from None
    finales = "json_schema_specifications" in document
    problems = check_schema_details(
        spec.parameter_schema, ["json_schema_specifications" if finales else "parameter_schema"]
    ) + check_schema_details(
        spec.result_schema, ["json_schema_result_output" if finales else "result_schema"]
    )
    if problems:  # schemas are data: no remote $ref, linear-time patterns, bounded size
        raise Invalid(problems)
    row, created = broker.add_capability(actor, spec, replace=replace)
    if not created:
        response.status_code = 200
    return capability_out(row)


@router.get("/{quantity}/{method}", response_model=CapabilityOut)
def get_capability(broker: BrokerDep, _: ActorDep, quantity: str, method: str) -> CapabilityOut:
    cap = broker.get_capability(quantity, method)
    providers = sum(
        1 for p in broker.active_providers() if (p.quantity, p.method) == (quantity, method)
    )
    return capability_out(cap, providers)


@router.get("/{quantity}/{method}/template")
def get_template(broker: BrokerDep, _: ActorDep, quantity: str, method: str) -> dict[str, Any]:
    """Documents of the right shape to fill in: the parameters of a request, the data of a result."""
    cap = broker.get_capability(quantity, method)
    return {"parameters": template(cap.parameter_schema), "result": template(cap.result_schema)}
