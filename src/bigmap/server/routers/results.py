"""Results: post (validated), read, amend, delete; their raw files."""

from __future__ import annotations

import re
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from bigmap.schemas.common import ResultStatus
from bigmap.schemas.request import FileOut, ResultCreate, ResultOut, StatusChange
from bigmap.server.convert import file_out, result_out
from bigmap.server.deps import ActorDep, BrokerDep, NotifierDep, parse_id
from bigmap.server.paging import PageDep
from bigmap.store.uploads import attach_file, check_name, spool

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
    return Response(
        content=f.content,
        media_type=f.media_type,
        headers={"Content-Disposition": content_disposition(f.name), "X-Content-SHA256": f.sha256},
    )


def content_disposition(name: str) -> str:
    """RFC 6266: an ASCII ``filename`` fallback and the exact name as ``filename*`` (UTF-8,
    percent-encoded), so that any name (not Latin-1, or with a CR/LF stored before names
    were checked) gives a valid header."""
    fallback = re.sub(r'[^\x20-\x7e]|["\\]', "_", name) or "file"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


@router.put(
    "/results/{result_id}/files",
    response_model=FileOut,
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def upload_file(
    request: Request,
    broker: BrokerDep,
    actor: ActorDep,
    result_id: str,
    name: str = Query(min_length=1, max_length=500, description="the file's name"),
    media_type: str = Query(default="application/octet-stream", max_length=200),
) -> FileOut:
    """Attach a raw file to a result: the request body is the file, streamed to storage (up
    to the server's ``max_upload_bytes``; 413 beyond). For the result's poster or an admin;
    the file takes the result's access tier and joins its provenance."""
    rid = parse_id(result_id, "result")
    check_name(name)
    await run_in_threadpool(broker.get_result, actor, rid)  # 404 before reading the body
    content, size, sha = await spool(request.stream())
    try:
        row = await run_in_threadpool(
            attach_file, broker.db, actor, rid, name, media_type, content, size, sha
        )
    finally:
        content.close()
    return file_out(row)
