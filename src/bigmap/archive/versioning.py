"""Semantic versions of archive packages, decided from what changed since the last export.

Each export keeps a manifest ``{object key: sha256}`` of the objects it holds (a request, a
result, a raw file, a step, the campaign, and the descriptive metadata). Against the
previous export of the same campaign and scope:

- nothing changed: the same version (no new record);
- an object removed, or an object's content changed (a result amended or deleted, a file
  replaced): the next MAJOR version (what a user of the last version relied on changed);
- only objects added (new requests, results, files, steps): the next MINOR version;
- only the descriptive metadata changed (title, description, licences, creators): the next
  PATCH version.

Fields that change by the life of a request without changing what was asked or measured
(its status, lease, attempts, timestamps of updates, result pointer) are left out of its
hash, as are a campaign's status, control, summary and update time.
"""

from __future__ import annotations

import re
from typing import Any

from bigmap.schemas.common import content_hash

VOLATILE = {
    "request": {
        "status",
        "status_info",
        "claimed_by",
        "claimed_by_user",
        "claimed_method",
        "claimed_at",
        "lease_expires_at",
        "attempts",
        "result_id",
        "updated_at",
    },
    "campaign": {"status", "control", "summary", "updated_at"},
}


def object_hash(kind: str, row: dict[str, Any]) -> str:
    skip = VOLATILE.get(kind, set())
    return content_hash({k: v for k, v in row.items() if k not in skip})


def bump(previous: str | None, old: dict[str, str] | None, new: dict[str, str]) -> str | None:
    """The version of a package with manifest ``new`` after ``previous`` (manifest ``old``);
    None if nothing changed (keep ``previous``)."""
    if previous is None or old is None:
        return "1.0.0"
    m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", previous)
    if not m:
        raise ValueError(f"not a semantic version: {previous!r}")
    major, minor, patch = (int(x) for x in m.groups())
    removed = set(old) - set(new)
    changed = {k for k in set(old) & set(new) if old[k] != new[k] and k != "metadata"}
    added = set(new) - set(old)
    if removed or changed:
        return f"{major + 1}.0.0"
    if added:
        return f"{major}.{minor + 1}.0"
    if old.get("metadata") != new.get("metadata"):
        return f"{major}.{minor}.{patch + 1}"
    return None


def diff(old: dict[str, str] | None, new: dict[str, str]) -> dict[str, list[str]]:
    old = old or {}
    return {
        "added": sorted(set(new) - set(old)),
        "removed": sorted(set(old) - set(new)),
        "changed": sorted(k for k in set(old) & set(new) if old[k] != new[k]),
    }
