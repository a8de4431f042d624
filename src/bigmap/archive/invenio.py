"""An InvenioRDM record (metadata for an upload to the BIG-MAP Archive, an InvenioRDM
instance), produced offline: no network call.

The layout follows InvenioRDM's record schema ``records/record-v7.0.0.json`` and its
definitions (inveniosoftware/invenio-rdm-records): ``metadata`` (resource_type, creators with
``person_or_org``, title, publication_date as an EDTF date, publisher, version, rights,
description, subjects, dates, related_identifiers), ``access`` (record and files public or
restricted, an embargo with ``active``/``until``/``reason``) and ``files``. ``SCHEMA`` below is
the subset of that schema a bigmap record uses, to check what is produced.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from bigmap.archive.licences import licence

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["metadata", "access", "files"],
    "additionalProperties": False,
    "properties": {
        "access": {
            "type": "object",
            "required": ["record", "files"],
            "additionalProperties": False,
            "properties": {
                "record": {"enum": ["public", "restricted"]},
                "files": {"enum": ["public", "restricted"]},
                "embargo": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["active"],
                    "properties": {
                        "active": {"type": "boolean"},
                        "until": {"type": ["string", "null"], "pattern": r"^\d{4}-\d{2}-\d{2}$"},
                        "reason": {"type": ["string", "null"]},
                    },
                },
            },
        },
        "files": {
            "type": "object",
            "required": ["enabled"],
            "properties": {"enabled": {"type": "boolean"}, "default_preview": {"type": "string"}},
        },
        "metadata": {
            "type": "object",
            "required": ["resource_type", "creators", "title", "publication_date", "publisher"],
            "additionalProperties": False,
            "properties": {
                "resource_type": {
                    "type": "object",
                    "required": ["id"],
                    "properties": {"id": {"type": "string"}},
                },
                "creators": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["person_or_org"],
                        "additionalProperties": False,
                        "properties": {
                            "person_or_org": {
                                "type": "object",
                                "required": ["type"],
                                "additionalProperties": False,
                                "properties": {
                                    "type": {"enum": ["personal", "organizational"]},
                                    "name": {"type": "string"},
                                    "given_name": {"type": "string"},
                                    "family_name": {"type": "string"},
                                    "identifiers": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "required": ["scheme", "identifier"],
                                            "properties": {
                                                "scheme": {"type": "string"},
                                                "identifier": {"type": "string"},
                                            },
                                        },
                                    },
                                },
                            },
                            "role": {"type": "object"},
                            "affiliations": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "name": {"type": "string"},
                                        "id": {"type": "string"},
                                    },
                                },
                            },
                        },
                    },
                },
                "title": {"type": "string", "minLength": 1},
                "publication_date": {"type": "string", "pattern": r"^\d{4}(-\d{2}(-\d{2})?)?$"},
                "publisher": {"type": "string"},
                "version": {"type": "string"},
                "description": {"type": "string"},
                "rights": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "id": {"type": "string"},
                            "title": {"type": "object"},
                            "description": {"type": "object"},
                            "link": {"type": "string"},
                        },
                    },
                },
                "subjects": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"subject": {"type": "string"}, "id": {"type": "string"}},
                    },
                },
                "dates": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["date", "type"],
                        "properties": {
                            "date": {"type": "string"},
                            "type": {"type": "object", "required": ["id"]},
                            "description": {"type": "string"},
                        },
                    },
                },
                "related_identifiers": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["identifier", "scheme", "relation_type"],
                        "properties": {
                            "identifier": {"type": "string"},
                            "scheme": {"type": "string"},
                            "relation_type": {"type": "object", "required": ["id"]},
                            "resource_type": {"type": "object"},
                        },
                    },
                },
                "formats": {"type": "array", "items": {"type": "string"}},
                "sizes": {"type": "array", "items": {"type": "string"}},
            },
        },
    },
}

ORCID = re.compile(r"^\d{4}-\d{4}-\d{4}-\d{3}[\dX]$")


def parse_creator(text: str) -> dict[str, Any]:
    """A creator from ``"Family, Given [ORCID] (Affiliation)"`` or ``"Name"``: an
    InvenioRDM ``person_or_org`` (ORCID checked for its form)."""
    text = text.strip()
    if not text:
        raise ValueError("an empty creator")
    affiliation = None
    m = re.search(r"\(([^)]+)\)\s*$", text)
    if m:
        affiliation = m.group(1).strip()
        text = text[: m.start()].strip()
    orcid = None
    m = re.search(r"\[([^\]]+)\]\s*$", text)
    if m:
        orcid = m.group(1).strip().removeprefix("https://orcid.org/")
        if not ORCID.match(orcid):
            raise ValueError(f"not an ORCID iD: {orcid!r} (0000-0000-0000-0000)")
        text = text[: m.start()].strip()
    person: dict[str, Any] = {"type": "personal", "name": text}
    if "," in text:
        family, given = (p.strip() for p in text.split(",", 1))
        person.update(family_name=family, given_name=given)
    else:
        person["family_name"] = text
    if orcid:
        person["identifiers"] = [{"scheme": "orcid", "identifier": orcid}]
    out: dict[str, Any] = {"person_or_org": person}
    if affiliation:
        out["affiliations"] = [{"name": affiliation}]
    return out


def record(
    *,
    title: str,
    description: str,
    creators: list[dict[str, Any]],
    version: str,
    data_licence: str,
    code_licence: str,
    keywords: list[str],
    created: datetime,
    access: str,
    embargo_until: datetime | None,
    sizes: list[str],
    formats: list[str],
    related: list[dict[str, Any]] = (),  # type: ignore[assignment]
    publisher: str = "BIG-MAP Archive",
) -> dict[str, Any]:
    """The InvenioRDM record of an archive package."""
    now = datetime.now(UTC)
    embargo_active = embargo_until is not None and embargo_until > now
    rights = []
    for spdx in dict.fromkeys([data_licence, code_licence]):
        lic = licence(spdx)
        rights.append(
            {
                "id": lic["id"].lower(),
                "title": {"en": lic["name"]},
                "description": {
                    "en": "data"
                    if spdx == data_licence and spdx != code_licence
                    else "code"
                    if spdx == code_licence and spdx != data_licence
                    else "data and code"
                },
                "link": lic["url"],
            }
        )
    rec: dict[str, Any] = {
        "access": {
            "record": "public" if access != "confidential" else "restricted",
            "files": "public" if access == "public" and not embargo_active else "restricted",
        },
        "files": {"enabled": True, "default_preview": "ro-crate-metadata.json"},
        "metadata": {
            "resource_type": {"id": "dataset"},
            "creators": creators,
            "title": title,
            "publication_date": now.date().isoformat(),
            "publisher": publisher,
            "version": version,
            "description": description,
            "rights": rights,
            "subjects": [{"subject": k} for k in keywords],
            "dates": [
                {
                    "date": created.date().isoformat(),
                    "type": {"id": "created"},
                    "description": "campaign started",
                }
            ],
            "related_identifiers": list(related),
            "formats": formats,
            "sizes": sizes,
        },
    }
    if embargo_until is not None:
        rec["access"]["embargo"] = {
            "active": embargo_active,
            "until": embargo_until.date().isoformat(),
            "reason": "restricted data under embargo (bigmap access tier)",
        }
    return rec


def validate(rec: dict[str, Any]) -> list[str]:
    """Problems of a record against ``SCHEMA`` (empty when it is fine)."""
    from bigmap.schemas.validation import validate as check

    return [f"{e.path}: {e.msg}" for e in check(SCHEMA, rec, [])]
