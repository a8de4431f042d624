"""An InvenioRDM record (metadata for an upload to the BIG-MAP Archive, an InvenioRDM
instance), produced offline: no network call.

The layout follows InvenioRDM's record schema ``records/record-v6.0.0.json`` and its
definitions (inveniosoftware/invenio-rdm-records, shipped in ``invenio_schema/`` with its
licence and source): ``metadata`` (resource_type, creators with
``person_or_org``, title, publication_date as an EDTF date, publisher, version, rights,
description, subjects, dates, related_identifiers), ``access`` (record and files public or
restricted, an embargo with ``active``/``until``/``reason``) and ``files``. ``validate`` checks a record against that schema itself.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from typing import Any

from bigmap.archive.licences import licence

SCHEMA_ID = "local://records/record-v6.0.0.json"


@lru_cache(maxsize=1)
def _validator() -> Any:
    """A Draft 7 validator of InvenioRDM's record schema, every ``local://`` reference
    resolved to the schemas shipped in ``invenio_schema/`` (nothing is fetched)."""
    import jsonschema
    from referencing import Registry
    from referencing.exceptions import NoSuchResource
    from referencing.jsonschema import DRAFT7

    root = resources.files("bigmap.archive") / "invenio_schema"
    shipped = {
        "local://records/record-v6.0.0.json": "records/record-v6.0.0.json",
        "local://records/definitions-v2.0.0.json": "records/definitions-v2.0.0.json",
        "local://definitions-v1.0.0.json": "definitions-v1.0.0.json",
        "local://definitions-v2.0.0.json": "definitions-v2.0.0.json",
        "local://requests/request-v1.0.0.json": "requests/request-v1.0.0.json",
        "local://requests/definitions-v1.0.0.json": "requests/definitions-v1.0.0.json",
    }

    def retrieve(uri: str) -> Any:
        raise NoSuchResource(ref=uri)  # a reference outside the shipped schemas

    registry = Registry(retrieve=retrieve).with_resources(
        (
            uri,
            # DRAFT7 by name: definitions-v1.0.0.json has a property called "$schema"
            DRAFT7.create_resource(json.loads((root / rel).read_text())),
        )
        for uri, rel in shipped.items()
    )
    schema = registry.contents(SCHEMA_ID)
    return jsonschema.Draft7Validator(
        schema, registry=registry, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )


ORCID = re.compile(r"^\d{4}-\d{4}-\d{4}-\d{3}[\dX]$")
# ROR ids: 0, six characters of Crockford base32 (no i, l, o, u), a two-digit checksum
# (https://ror.readme.io/docs/identifier)
ROR = re.compile(r"^0[a-hj-km-np-tv-z0-9]{6}[0-9]{2}$")
EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


def _tail(text: str, open_: str, close: str) -> tuple[str, str | None]:
    """``text`` without a trailing ``open_ ... close`` group, and the group's content."""
    m = re.search(
        re.escape(open_) + r"([^" + re.escape(open_ + close) + r"]+)" + re.escape(close) + r"\s*$",
        text,
    )
    if not m:
        return text, None
    return text[: m.start()].strip(), m.group(1).strip()


def _ror(value: str) -> str:
    ror = value.removeprefix("https://ror.org/")
    if not ROR.match(ror):
        raise ValueError(f"not a ROR id: {value!r} (like 02s376052, see https://ror.org)")
    return ror


def _contact(value: str) -> str:
    if value.startswith(("https://", "http://")) or EMAIL.match(value):
        return value
    raise ValueError(f"not an e-mail address or a URL: {value!r}")


def parse_organisation(text: str) -> dict[str, Any]:
    """An organisation from ``"Name [ROR id] <e-mail or URL>"`` (ROR and contact optional):
    ``{name, id?, contact?}``."""
    text, contact = _tail(text.strip(), "<", ">")
    text, ror = _tail(text, "[", "]")
    if not text:
        raise ValueError("an organisation without a name")
    out: dict[str, Any] = {"name": text}
    if ror:
        out["id"] = _ror(ror)
    if contact:
        out["contact"] = _contact(contact)
    return out


def parse_creator(text: str) -> dict[str, Any]:
    """A creator from ``"Family, Given [ORCID] <e-mail> (Affiliation [ROR id])"`` (all but the
    name optional) or ``"Name"``: an InvenioRDM ``person_or_org`` with ``affiliations``
    (``id``: the ROR id, as InvenioRDM's affiliation vocabulary names them), ORCID and ROR
    checked for their form. The e-mail, which InvenioRDM's creators do not carry, is kept
    under ``contact`` for the RO-Crate (``record`` leaves it out)."""
    text = text.strip()
    if not text:
        raise ValueError("an empty creator")
    text, affiliation = _tail(text, "(", ")")
    text, contact = _tail(text, "<", ">")
    text, orcid = _tail(text, "[", "]")
    if orcid is not None:
        orcid = orcid.removeprefix("https://orcid.org/")
        if not ORCID.match(orcid):
            raise ValueError(f"not an ORCID iD: {orcid!r} (0000-0000-0000-0000)")
    if not text:
        raise ValueError("a creator without a name")
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
        org = parse_organisation(affiliation)
        out["affiliations"] = [{k: v for k, v in org.items() if k in ("name", "id")}]
    if contact:
        out["contact"] = _contact(contact)
    return out


def invenio_creators(creators: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Creators as InvenioRDM takes them (what it does not know left out)."""
    return [
        {k: v for k, v in c.items() if k in ("person_or_org", "affiliations", "role")}
        for c in creators
    ]


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
            "creators": invenio_creators(creators),
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
    """Problems of a record against InvenioRDM's record schema (``SCHEMA_ID``), each as
    ``path: message`` (empty when it is fine)."""
    out = []
    for e in sorted(_validator().iter_errors(rec), key=lambda e: list(map(str, e.path))):
        where = ".".join(str(p) for p in e.absolute_path) or "(record)"
        out.append(f"{where}: {e.message}")
    return out
