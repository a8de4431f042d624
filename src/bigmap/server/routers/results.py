"""Results: post (validated), read, amend, delete; their raw files."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel

from bigmap.schemas.common import ResultStatus
from bigmap.schemas.request import FileOut, ResultCreate, ResultOut, StatusChange
from bigmap.server.convert import file_out, result_out
from bigmap.server.deps import ActorDep, BrokerDep, NotifierDep, parse_id
from bigmap.server.paging import PageDep

router = APIRouter(tags=["results"])


@router.post("/results", response_model=ResultOut, status_code=201)
def post_result(
    broker: BrokerDep,
    actor: ActorDep,
    notifier: NotifierDep,
    body: ResultCreate,
    response: Response,
) -> ResultOut:
    """Answer a request. The data is validated against the capability's result schema (422
    with JSON paths). The same idempotency key, or the same data again, returns the first
    result (200); a different result for a resolved request needs ``amend``."""
    res, created = broker.post_result(actor, body)
    if created:
        notifier.notify()
    else:
        response.status_code = 200
    return result_out(res, broker.result_files(actor, res.id) if body.files or not created else [])


@router.get("/results", response_model=list[ResultOut])
def list_results(
    broker: BrokerDep,
    actor: ActorDep,
    page: PageDep,
    quantity: str | None = None,
    method: str | None = None,
    request_id: str | None = None,
    tenant_id: str | None = None,
    campaign_id: str | None = None,
    include_deleted: bool = False,
    newest_first: bool = False,
) -> list[ResultOut]:
    """Results the caller may see, oldest first (or newest), one page at a time."""
    rows = broker.list_results(
        actor,
        quantity=quantity,
        method=method,
        request_id=parse_id(request_id, "request") if request_id else None,
        tenant_id=parse_id(tenant_id, "tenant") if tenant_id else None,
        campaign_id=parse_id(campaign_id, "campaign") if campaign_id else None,
        include_deleted=include_deleted,
        limit=page.fetch,
        offset=page.offset,
        newest_first=newest_first,
    )
    return [result_out(r) for r in page.cut(rows)]


@router.get("/results/{result_id}", response_model=ResultOut)
def get_result(broker: BrokerDep, actor: ActorDep, result_id: str) -> ResultOut:
    res = broker.get_result(actor, parse_id(result_id, "result"))
    return result_out(res, broker.result_files(actor, res.id))


class ResultStatusIn(BaseModel):
    status: ResultStatus
    message: str = ""


@router.post("/results/{result_id}/status")
def set_status(
    broker: BrokerDep, actor: ActorDep, result_id: str, body: ResultStatusIn
) -> dict[str, str]:
    return {
        "detail": broker.set_result_status(
            actor, parse_id(result_id, "result"), body.status.value, body.message
        )
    }


@router.get("/results/{result_id}/log", response_model=list[StatusChange])
def result_log(broker: BrokerDep, actor: ActorDep, result_id: str) -> list[StatusChange]:
    rid = parse_id(result_id, "result")
    broker.get_result(actor, rid)
    return [StatusChange(**row) for row in broker.status_log(actor, rid)]


@router.get("/results/{result_id}/files", response_model=list[FileOut])
def files(broker: BrokerDep, actor: ActorDep, result_id: str) -> list[FileOut]:
    return [file_out(f) for f in broker.result_files(actor, parse_id(result_id, "result"))]


@router.get(
    "/files/{file_id}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def download(broker: BrokerDep, actor: ActorDep, file_id: str) -> Response:
    f = broker.get_file(actor, parse_id(file_id, "file"))
    safe = f.name.replace('"', "").replace("\n", " ")
    return Response(
        content=f.content,
        media_type=f.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{safe}"',
            "X-Content-SHA256": f.sha256,
        },
    )
