"""Raw files streamed to storage after their result was posted (``PUT .../files``).

A result's files may come inside the posted JSON (base64, for small files), or afterwards,
one by one, as the raw body of a streamed upload: the body is read in chunks into a
spooled temporary file (memory up to ``SPOOL_BYTES``, then disk) while its SHA-256 is
computed, so a large cycler export never sits in the server's memory as JSON and base64.
Only the poster of the result (its owner) or an admin may attach a file; the file takes the
result's access tier and is listed in the result's provenance.
"""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import select, update

from bigmap.schemas.common import utcnow
from bigmap.store import models as m
from bigmap.store.access import Actor, can_see
from bigmap.store.errors import Forbidden, Invalid, NotFound

SPOOL_BYTES = 8 * 1024 * 1024


async def spool(chunks: AsyncIterator[bytes]) -> tuple[Any, int, str]:
    """The streamed body in a spooled temporary file: (file at position 0, size, sha256)."""
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - returned
    digest, size = hashlib.sha256(), 0
    async for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
        out.write(chunk)
    out.seek(0)
    return out, size, digest.hexdigest()


def check_name(name: str) -> str:
    """A file name as stored: no control characters (a CR/LF would split a header)."""
    if not name or len(name) > 500:
        raise Invalid("a file name has 1 to 500 characters", ["name"])
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise Invalid("a file name may not contain control characters (CR, LF, NUL...)", ["name"])
    return name


def attach_file(
    db: Any,
    actor: Actor,
    result_id: uuid.UUID,
    name: str,
    media_type: str,
    content: Any,
    size: int,
    sha256: str,
) -> m.File:
    """Store a spooled file as a file of a result (its poster or an admin only)."""
    check_name(name)
    with db.write() as s:
        res = s.scalar(select(m.Result).where(m.Result.id == result_id).with_for_update())
        if res is None or not can_see(actor, res):
            raise NotFound(f"no result {result_id}")
        if not (actor.is_admin or res.owner_id == actor.user_id):
            raise Forbidden("only the poster of a result (or an admin) attaches files to it")
        row = m.File(
            id=uuid.uuid4(),
            result_id=res.id,
            name=name,
            media_type=media_type[:200] or "application/octet-stream",
            size=size,
            sha256=sha256,
            content=content.read(),
            owner_id=actor.user_id,
            created_at=utcnow(),
            access=res.access,
            access_groups=res.access_groups,
            embargo_until=res.embargo_until,
        )
        s.add(row)
        prov = dict(res.provenance or {})
        prov["files"] = [
            *prov.get("files", []),
            {"id": str(row.id), "name": name, "sha256": sha256, "size": size},
        ]
        s.execute(update(m.Result).where(m.Result.id == res.id).values(provenance=prov))
        s.flush()
        s.expunge(row)
    return row
