"""The community's own validators, run on bigmap's FAIR outputs, offline:

- **RO-Crate**: roc-validator (the RO-Crate community's validator, CRS4, Apache-2.0), profile
  ``ro-crate-1.3``, at the REQUIRED and RECOMMENDED levels. The validator fetches the RO-Crate
  1.3 JSON-LD context over HTTP through its own HTTP cache; we run it in its offline mode on
  a cache that holds the context the ``rocrate`` package ships (so no network is needed,
  and a check that would need the network is a finding, never a silent pass).
- **InvenioRDM**: the JSON Schema InvenioRDM itself validates records with
  (``bigmap.archive.invenio.validate``, the schema shipped in ``invenio_schema/``).
- **JSON-LD**: the package's ``metadata/campaign.jsonld`` expanded by an independent JSON-LD
  processor (pyld) to the same triples as bigmap's expander (``bigmap.ontology.ldcheck``).

``check_package(zip)`` runs them all and returns one ``Verdict`` per validator; ``bigmap
archive export --check`` prints them before a user publishes.
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RO_CRATE_PROFILE = "ro-crate-1.3"
RO_CRATE_CONTEXT = "https://w3id.org/ro/crate/1.3/context"
LEVELS = ("REQUIRED", "RECOMMENDED")

_lock = threading.Lock()  # roc-validator's HTTP requester is a process-wide singleton


@dataclass
class Verdict:
    """One validator's answer: ``passed`` and its findings (``level``, ``check``,
    ``message``, ``entity``)."""

    validator: str
    passed: bool
    findings: list[dict[str, Any]] = field(default_factory=list)
    summary: str = ""

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.findings:
            out[f.get("level", "ERROR")] = out.get(f.get("level", "ERROR"), 0) + 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "validator": self.validator,
            "passed": self.passed,
            "summary": self.summary,
            "counts": self.counts(),
            "findings": self.findings,
        }


def _rocrate_context_document() -> dict[str, Any]:
    """The RO-Crate 1.3 context document as the ``rocrate`` package ships it."""
    import rocrate

    path = Path(rocrate.__file__).parent / "data" / "ro-crate.jsonld"
    doc = json.loads(path.read_text())
    if doc.get("@id") != RO_CRATE_CONTEXT:
        raise RuntimeError(f"{path} is not the RO-Crate 1.3 context (it is {doc.get('@id')!r})")
    return doc


def offline_cache(directory: Path) -> Path:
    """An HTTP cache (requests-cache, SQLite, as roc-validator uses it) holding the RO-Crate
    1.3 context at its URL, for the validator's offline mode. Returns the cache's name."""
    import io

    import requests
    from requests_cache import CachedSession
    from urllib3 import HTTPResponse

    name = directory / "rocrate-validator-http-cache"
    body = json.dumps(_rocrate_context_document()).encode()
    session = CachedSession(cache_name=str(name), backend="sqlite", expire_after=-1)
    try:
        for accept in (
            "application/ld+json, application/json",
            "application/ld+json, application/json, */*;q=0.1",
            None,
        ):
            req = requests.Request(
                "GET", RO_CRATE_CONTEXT, headers={"Accept": accept} if accept else {}
            )
            prepared = session.prepare_request(req)
            resp = requests.Response()
            resp.status_code = 200
            resp.url = RO_CRATE_CONTEXT
            resp._content = body
            resp.headers["Content-Type"] = "application/ld+json"
            resp.raw = HTTPResponse(
                body=io.BytesIO(body), headers=dict(resp.headers), status=200, preload_content=False
            )
            resp.raw._request_url = RO_CRATE_CONTEXT  # type: ignore[attr-defined]
            resp.request = prepared
            resp.reason = "OK"
            resp.encoding = "utf-8"
            session.cache.save_response(resp)
    finally:
        session.close()
    return name


def _issue(issue: Any) -> dict[str, Any]:
    return {
        "level": issue.severity.name,
        "check": issue.check.name if issue.check else "",
        "requirement": issue.check.requirement.name if issue.check else "",
        "message": issue.message or "",
        "entity": issue.violatingEntity,
    }


def validate_rocrate(path: Path, *, levels: tuple[str, ...] = LEVELS) -> Verdict:
    """roc-validator on a crate (a zip or a folder), offline, profile ro-crate-1.3, at
    ``levels`` (REQUIRED; RECOMMENDED adds the SHOULD checks)."""
    from rocrate_validator import services
    from rocrate_validator.models import Severity, ValidationSettings

    severity = "RECOMMENDED" if "RECOMMENDED" in levels else "REQUIRED"
    logging.getLogger("rocrate_validator").setLevel(logging.ERROR)
    with _lock, tempfile.TemporaryDirectory(prefix="bigmap-roc-") as tmp:
        cache = offline_cache(Path(tmp))
        settings = ValidationSettings(
            rocrate_uri=str(Path(path).resolve()),
            profile_identifier=RO_CRATE_PROFILE,
            requirement_severity=severity,
            offline=True,
            cache_path=cache,
            skip_availability_check=True,
        )
        result = services.validate(settings)
        issues = result.get_issues(min_severity=Severity[severity])
        checks = len(result.executed_checks)
        findings = sorted(
            (_issue(i) for i in issues), key=lambda f: (f["level"], f["check"], f["message"])
        )
    passed = not findings
    by_level = {}
    for f in findings:
        by_level[f["level"]] = by_level.get(f["level"], 0) + 1
    summary = f"profile {RO_CRATE_PROFILE}, levels {'+'.join(levels)}: {checks} checks, " + (
        "no findings"
        if passed
        else ", ".join(f"{n} {lvl} finding(s)" for lvl, n in sorted(by_level.items()))
    )
    return Verdict("roc-validator", passed, findings, summary)


def validate_invenio(record: dict[str, Any]) -> Verdict:
    from bigmap.archive import invenio

    problems = invenio.validate(record)
    return Verdict(
        "InvenioRDM record schema",
        not problems,
        [{"level": "ERROR", "check": "schema", "message": p, "entity": None} for p in problems],
        f"{invenio.SCHEMA_ID}: " + ("valid" if not problems else f"{len(problems)} problem(s)"),
    )


def validate_jsonld(document: dict[str, Any], name: str = "document") -> Verdict:
    from bigmap.ontology.ldcheck import compare

    diff = compare(document)
    findings = [
        {"level": "ERROR", "check": kind, "message": msg, "entity": name}
        for kind, msgs in diff.items()
        for msg in msgs
    ]
    return Verdict(
        "JSON-LD (pyld against bigmap's expander)",
        not findings,
        findings,
        f"{name}: " + ("the same triples" if not findings else f"{len(findings)} difference(s)"),
    )


def check_package(path: Path) -> list[Verdict]:
    """Every validator on an archive package (a zip written by ``export_campaign``)."""
    out = [validate_rocrate(path)]
    with zipfile.ZipFile(path) as z:
        rec = json.loads(z.read("invenio-record.json"))
        doc = json.loads(z.read("metadata/campaign.jsonld"))
    out.append(validate_invenio(rec))
    out.append(validate_jsonld(doc, "metadata/campaign.jsonld"))
    return out
