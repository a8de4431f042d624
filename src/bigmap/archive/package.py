"""Archive packages of a campaign: an RO-Crate (https://w3id.org/ro/crate, the ``rocrate``
package) that holds everything a reader may see of the campaign, and the import of such a
package into another bigmap database with nothing lost.

Layout of the package (a zip)::

    ro-crate-metadata.json        the RO-Crate: root dataset, licences, creators, version,
                                  every file with its media type, size and sha256
    data/campaign.json            the campaign (spec, summary, status, access tier)
    data/events.json              every step of the planner (proposals, model states, ...)
    data/requests.json            requests and sub-requests
    data/results/<id>.json        one file per result: data, parameters, provenance, hash
    data/files.json               the raw files' records (name, media type, size, sha256)
    data/tenants.json, capabilities.json, users.json, status_log.json, recomputations.json
    data/metadata_only.json       restricted items made findable: their metadata alone
    files/<result>/<file>/<name>  the raw files as they were posted
    tables/*.parquet              results, requests and steps as tables; time series of a
                                  result (equal-length columns) as tables/series/<id>-<key>
    metadata/campaign.jsonld      the JSON-LD (EMMO / BattINFO IRIs, PROV-O, DCAT)
    metadata/campaign.ttl         the same graph in Turtle
    metadata/shacl-report.json    its SHACL validation (BattINFO's shapes and bigmap's)
    metadata/mapping-report.json  the terms mapped to IRIs and those without one
    code/recompute.py, LICENSE    a script that asks a broker to recompute every result
    invenio-record.json           the InvenioRDM record (also written beside the zip)
    manifest-sha256.txt           sha256 of every file above (checked on import)

Licences: data CC-BY-4.0, code MIT by default (SPDX ids, configurable). The version is a
semantic version decided by ``bigmap.archive.versioning``.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zlib import error as zlib_error

from bigmap.archive import invenio, versioning
from bigmap.archive.licences import (
    DEFAULT_CODE_LICENCE,
    DEFAULT_DATA_LICENCE,
    MIT_TEXT,
    licence,
    spdx_uri,
)
from bigmap.store.access import Actor
from bigmap.store.fair import Bundle, Fair, jsonable

FORMAT = "bigmap-archive/1"

# bigmap's terms in the crate's extended context (urn:bigmap:vocab: is bigmap's record-layer
# namespace, see bigmap.ontology.vocab)
CRATE_TERMS = {
    "bigmapFormat": "urn:bigmap:vocab:archiveFormat",
    "scope": "urn:bigmap:vocab:archiveScope",
}
PYTHON = {
    "@id": "https://w3id.org/workflowhub/workflow-ro-crate#python",
    "@type": "ComputerLanguage",
    "name": "Python",
    "alternateName": "Python 3",
    "identifier": "https://www.python.org/",
    "url": "https://www.python.org/",
    "version": "3",
}


class ArchiveError(ValueError):
    """A package that cannot be written or read as it is (with the reason)."""


@dataclass
class ExportResult:
    path: Path
    version: str
    new_version: bool
    sha256: str
    invenio_path: Path
    counts: dict[str, int]
    shacl: dict[str, Any]
    changes: dict[str, list[str]] = field(default_factory=dict)


def _safe(name: str) -> str:
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[^A-Za-z0-9._+\-]", "_", name).lstrip(".")
    return name[:200] or "file"


def _dump(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(jsonable(value), indent=1, sort_keys=True, ensure_ascii=False))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ----------------------------------------------------------------------------- tables


def _flat(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, bool) or value is None:
        out[prefix] = None if value is None else str(value).lower()
    elif isinstance(value, int | float):
        out[prefix] = float(value)
    elif isinstance(value, str):
        out[prefix] = value
    else:
        out[prefix] = json.dumps(value, sort_keys=True)


def _table(rows: list[dict[str, Any]], path: Path) -> None:
    import pandas as pd

    df = pd.DataFrame(rows)
    for col in df.columns:
        kinds = {type(x) for x in df[col] if x is not None and x == x}
        if kinds - {float} and kinds:
            df[col] = df[col].map(lambda x: None if x is None or x != x else str(x))
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path, index=False)


def _series(data: Any, prefix: str = "") -> list[tuple[str, dict[str, list[float]]]]:
    """Tables inside a result: objects whose members are numeric lists of one length."""
    out = []
    if isinstance(data, dict):
        cols = {
            k: v
            for k, v in data.items()
            if isinstance(v, list)
            and len(v) >= 2
            and all(isinstance(x, int | float) and not isinstance(x, bool) for x in v)
        }
        lengths = {len(v) for v in cols.values()}
        if len(cols) >= 2 and len(lengths) == 1:
            out.append((prefix or "data", {k: [float(x) for x in v] for k, v in cols.items()}))
        for k, v in data.items():
            if isinstance(v, dict):
                out.extend(_series(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def _write_tables(root: Path, b: Bundle) -> list[str]:
    import pandas as pd

    written = []
    res_rows = []
    for r in b.results:
        row = {
            "id": str(r["id"]),
            "request_id": str(r["request_id"]),
            "quantity": r["quantity"],
            "method": r["method"],
            "status": r["status"],
            "tenant_id": str(r["tenant_id"]) if r["tenant_id"] else None,
            "sha256": r["sha256"],
            "created_at": jsonable(r["created_at"]),
            "access": r["access"],
        }
        _flat("parameters", r["parameters"], row)
        _flat("data", r["data"], row)
        res_rows.append(row)
        for key, cols in _series(r["data"]):
            p = root / "tables" / "series" / f"{r['id']}-{_safe(key)}.parquet"
            p.parent.mkdir(parents=True, exist_ok=True)
            pd.DataFrame(cols).to_parquet(p, index=False)
            written.append(str(p.relative_to(root)))
    if res_rows:
        _table(res_rows, root / "tables" / "results.parquet")
        written.append("tables/results.parquet")
    req_rows = []
    for q in b.requests:
        row = {
            "id": str(q["id"]),
            "quantity": q["quantity"],
            "methods": ",".join(q["methods"]),
            "status": q["status"],
            "parent_id": str(q["parent_id"]) if q["parent_id"] else None,
            "tenant_id": str(q["tenant_id"]) if q["tenant_id"] else None,
            "priority": float(q["priority"]),
            "created_at": jsonable(q["created_at"]),
            "access": q["access"],
        }
        _flat("parameters", q["parameters"], row)
        req_rows.append(row)
    if req_rows:
        _table(req_rows, root / "tables" / "requests.parquet")
        written.append("tables/requests.parquet")
    ev_rows = []
    for e in b.events:
        row = {
            "id": str(e["id"]),
            "seq": float(e["seq"]),
            "kind": e["kind"],
            "created_at": jsonable(e["created_at"]),
            "request_ids": ",".join(str(x) for x in e["request_ids"]),
            "data": json.dumps(jsonable(e["data"]), sort_keys=True),
        }
        ev_rows.append(row)
    if ev_rows:
        _table(ev_rows, root / "tables" / "events.parquet")
        written.append("tables/events.parquet")
    return written


RECOMPUTE_PY = '''"""Ask a bigmap broker to recompute every result of this package with identical parameters.

    python code/recompute.py --broker URL --token TOKEN --tenant TENANT_ID [RESULT_ID ...]

Each result is re-requested through POST /api/v1/results/{id}/recompute, which links the new
request to the original in its provenance. Needs only the Python standard library.
"""

import argparse
import json
import pathlib
import urllib.request


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--broker", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--tenant", required=True, help="your tenant that asks")
    ap.add_argument("results", nargs="*", help="result ids (default: all in the package)")
    args = ap.parse_args()
    here = pathlib.Path(__file__).resolve().parents[1]
    ids = args.results or [p.stem for p in sorted((here / "data" / "results").glob("*.json"))]
    for rid in ids:
        req = urllib.request.Request(
            f"{args.broker.rstrip('/')}/api/v1/results/{rid}/recompute",
            data=json.dumps({"tenant_id": args.tenant}).encode(),
            headers={"Authorization": f"Bearer {args.token}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req) as resp:
            print(rid, "->", json.load(resp)["id"])


if __name__ == "__main__":
    main()
'''


# ----------------------------------------------------------------------------- export


def _contact_entity(crate: Any, contact: str, of: str) -> Any:
    """A ContactPoint: an e-mail address (``mailto:``) or a web page."""
    is_url = contact.startswith(("https://", "http://"))
    cid = (
        "#contact-" + re.sub(r"[^A-Za-z0-9]+", "-", contact.split("://", 1)[1]).strip("-")
        if is_url
        else f"mailto:{contact}"
    )
    if crate.get(cid) is not None:
        return crate.get(cid)
    entity: dict[str, Any] = {
        "@id": cid,
        "@type": "ContactPoint",
        "name": f"contact of {of}",
        "contactType": "general enquiries",
    }
    entity["url" if is_url else "email"] = contact
    return crate.add_jsonld(entity)


def _organisation_entity(crate: Any, org: dict[str, Any], fallback_id: str) -> Any:
    """An Organization: its ROR URL as ``@id`` when given (its ROR record then serves as
    its URL and contact page), else a local id."""
    ror = f"https://ror.org/{org['id']}" if org.get("id") else None
    oid = ror or fallback_id
    if crate.get(oid) is not None:
        return crate.get(oid)
    entity: dict[str, Any] = {"@id": oid, "@type": "Organization", "name": org["name"]}
    contact = org.get("contact") or ror
    if contact:
        entity["url"] = contact if contact.startswith("http") else ror
        if entity["url"] is None:
            del entity["url"]
        entity["contactPoint"] = _contact_entity(crate, contact, org["name"])
    return crate.add_jsonld(entity)


def _creator_entity(crate: Any, creator: dict[str, Any], index: int) -> Any:
    """A creator (InvenioRDM ``person_or_org`` form) as an RO-Crate contextual entity: a
    Person (its ORCID iD as ``@id`` when given) or an Organization, its affiliations as
    Organization entities, its e-mail as a ContactPoint."""
    p = creator["person_or_org"]
    orcid = next(
        (x["identifier"] for x in p.get("identifiers", []) if x["scheme"] == "orcid"), None
    )
    if p.get("type") == "organizational":
        return _organisation_entity(
            crate, {"name": p.get("name"), **creator}, f"#organization-{index + 1}"
        )
    pid = f"https://orcid.org/{orcid}" if orcid else f"#creator-{index + 1}"
    if crate.get(pid) is not None:
        return crate.get(pid)
    entity: dict[str, Any] = {"@id": pid, "@type": "Person", "name": p.get("name")}
    if p.get("given_name"):
        entity["givenName"] = p["given_name"]
    if p.get("family_name"):
        entity["familyName"] = p["family_name"]
    orgs = [
        _organisation_entity(
            crate,
            aff,
            "#organization-" + re.sub(r"[^A-Za-z0-9]+", "-", aff["name"]).strip("-").lower(),
        )
        for aff in creator.get("affiliations") or []
    ]
    if orgs:
        entity["affiliation"] = orgs[0] if len(orgs) == 1 else orgs
    if creator.get("contact"):
        entity["contactPoint"] = _contact_entity(crate, creator["contact"], p.get("name", ""))
    return crate.add_jsonld(entity)


def manifest_of(b: Bundle, metadata: dict[str, Any]) -> dict[str, str]:
    """The object manifest that decides the version (see ``versioning``)."""
    out = {"metadata": versioning.content_hash(metadata)}
    if b.campaign:
        out[f"campaign:{b.campaign['id']}"] = versioning.object_hash(
            "campaign", jsonable(b.campaign)
        )
    for kind, rows in (("request", b.requests), ("result", b.results), ("file", b.files)):
        for r in rows:
            out[f"{kind}:{r['id']}"] = versioning.object_hash(kind, jsonable(r))
    for e in b.events:
        out[f"event:{e['id']}"] = versioning.object_hash("event", jsonable(e))
    return out


def export_campaign(
    fair: Fair,
    campaign_id: uuid.UUID,
    out: Path,
    *,
    actor: Actor,
    scope: str,
    data_licence: str = DEFAULT_DATA_LICENCE,
    code_licence: str = DEFAULT_CODE_LICENCE,
    creators: list[str] | None = None,
    publisher: str | None = None,
    version: str | None = None,
    title: str | None = None,
    description: str | None = None,
    record: bool = True,
    created_by: str = "",
) -> ExportResult:
    """Write the RO-Crate of a campaign as ``actor`` may see it; ``scope`` names that view
    (``all``, ``public``, ``user:NAME``) for the version history."""
    from rocrate.rocrate import ROCrate

    from bigmap.ontology import campaign_jsonld, to_graph
    from bigmap.ontology.shacl import validate as shacl_validate

    data_lic, code_lic = licence(data_licence), licence(code_licence)
    if version is not None and not re.fullmatch(r"\d+\.\d+\.\d+", version):
        raise ArchiveError(f"version {version!r} is not a semantic version (MAJOR.MINOR.PATCH)")
    parsed_creators = [invenio.parse_creator(c) for c in creators or []]
    parsed_publisher = invenio.parse_organisation(publisher) if publisher else None
    b = fair.campaign_bundle(actor, campaign_id, contents=True, metadata_only=True)
    camp = b.campaign or {}
    if not parsed_creators:
        parsed_creators = [
            {
                "person_or_org": {
                    "type": "personal",
                    "name": camp.get("owner") or "unknown",
                    "family_name": camp.get("owner") or "unknown",
                }
            }
        ]
    title = title or f"bigmap campaign {camp.get('name')}"
    description = description or (
        f"Requests, results, raw files and planner steps of the bigmap campaign "
        f"'{camp.get('name')}' ({len(b.requests)} requests, {len(b.results)} results, "
        f"{len(b.files)} raw files, {len(b.events)} steps), with their provenance and "
        f"EMMO/BattINFO semantics."
    )
    quantities = sorted({r["quantity"] for r in b.requests})
    keywords = ["battery", "BIG-MAP", "bigmap", "materials acceleration platform", *quantities]
    descriptive = {
        "title": title,
        "description": description,
        "data_licence": data_lic["id"],
        "code_licence": code_lic["id"],
        "creators": parsed_creators,
        "keywords": keywords,
        **({"publisher": parsed_publisher} if parsed_publisher else {}),
    }
    manifest = manifest_of(b, descriptive)
    history = fair.archive_records(campaign_id, scope) if record else []
    last = history[-1] if history else None
    changes = versioning.diff(last.manifest if last else None, manifest)
    if version is None:
        bumped = versioning.bump(
            last.version if last else None, last.manifest if last else None, manifest
        )
        version = bumped or (last.version if last else "1.0.0")
        new_version = bumped is not None
    else:
        if any(h.version == version for h in history) and last and last.version != version:
            raise ArchiveError(f"version {version} of this package exists already")
        new_version = last is None or last.version != version

    tmp = Path(tempfile.mkdtemp(prefix="bigmap-archive-"))
    try:
        root = tmp / "crate"
        root.mkdir()
        file_paths: dict[str, str] = {}
        for f in b.files:
            rel = f"files/{f['result_id']}/{f['id']}/{_safe(f['name'])}"
            p = root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b.contents[str(f["id"])])
            if hashlib.sha256(p.read_bytes()).hexdigest() != f["sha256"]:
                raise ArchiveError(f"raw file {f['id']} does not match its stored sha256")
            file_paths[str(f["id"])] = rel
        data_paths = {}
        for r in b.results:
            rel = f"data/results/{r['id']}.json"
            _dump(root / rel, r)
            data_paths[str(r["id"])] = rel
        _dump(root / "data" / "campaign.json", {"format": FORMAT, **camp})
        _dump(root / "data" / "events.json", b.events)
        _dump(root / "data" / "requests.json", b.requests)
        _dump(root / "data" / "files.json", b.files)
        _dump(root / "data" / "tenants.json", b.tenants)
        _dump(root / "data" / "capabilities.json", b.capabilities)
        _dump(root / "data" / "users.json", b.users)
        _dump(root / "data" / "status_log.json", b.status_log)
        _dump(root / "data" / "recomputations.json", b.recomputations)
        _dump(root / "data" / "metadata_only.json", b.metadata_only)
        tables = _write_tables(root, b)

        # semantics: the campaign graph, its SHACL report and its mapping report
        ld = campaign_jsonld(
            jsonable(camp),
            events=jsonable(b.events),
            requests=jsonable(b.requests),
            results=jsonable(b.result_with_files()),
            tenants=jsonable(b.tenants),
            capabilities=jsonable(b.capabilities),
            license=spdx_uri(data_lic["id"]),
            creators=[
                {"@type": "schema:Person", "schema:name": c["person_or_org"].get("name")}
                for c in parsed_creators
            ],
            data_paths=data_paths,
            file_paths=file_paths,
        )
        graph = to_graph(ld.document)
        report = shacl_validate(graph)
        _dump(root / "metadata" / "campaign.jsonld", ld.document)
        (root / "metadata" / "campaign.ttl").write_text(graph.serialize(format="turtle"))
        _dump(root / "metadata" / "shacl-report.json", report.as_dict())
        (root / "metadata" / "shacl-report.txt").write_text(report.text(limit=400) + "\n")
        _dump(root / "metadata" / "mapping-report.json", ld.report.as_dict())

        # code
        (root / "code").mkdir()
        (root / "code" / "recompute.py").write_text(RECOMPUTE_PY)
        holders = ", ".join(c["person_or_org"].get("name", "") for c in parsed_creators)
        if code_lic["id"] == "MIT":
            (root / "code" / "LICENSE").write_text(
                MIT_TEXT.format(year=datetime.now(UTC).year, holders=holders)
            )
        else:
            (root / "code" / "LICENSE").write_text(
                f"{code_lic['name']} ({code_lic['id']}): {code_lic['url']}\n"
            )

        # the InvenioRDM record
        sizes = [f"{len(b.results)} results", f"{len(b.files)} raw files"]
        rec = invenio.record(
            title=title,
            description=description,
            creators=parsed_creators,
            version=version,
            data_licence=data_lic["id"],
            code_licence=code_lic["id"],
            keywords=keywords,
            created=datetime.fromisoformat(jsonable(camp["created_at"])),
            access=camp.get("access", "public"),
            embargo_until=camp.get("embargo_until"),
            sizes=sizes,
            formats=["application/zip", "application/ld+json", "application/vnd.apache.parquet"],
            publisher=parsed_publisher["name"] if parsed_publisher else "BIG-MAP Archive",
            related=[
                {
                    "identifier": f"urn:uuid:{camp['id']}",
                    "scheme": "urn",
                    "relation_type": {"id": "isderivedfrom"},
                    "resource_type": {"id": "dataset"},
                }
            ],
        )
        problems = invenio.validate(rec)
        if problems:
            raise ArchiveError("the InvenioRDM record is malformed: " + "; ".join(problems))
        _dump(root / "invenio-record.json", rec)

        # every file's hash, then the RO-Crate describing it all
        payload = sorted(p for p in root.rglob("*") if p.is_file())
        hashes = {str(p.relative_to(root)): _sha256(p) for p in payload}
        (root / "manifest-sha256.txt").write_text(
            "".join(f"{h}  {rel}\n" for rel, h in sorted(hashes.items()))
        )
        hashes["manifest-sha256.txt"] = _sha256(root / "manifest-sha256.txt")

        crate = ROCrate()
        # bigmap's own terms: defined in an extended context (RO-Crate 1.3, "Extending
        # RO-Crate"), so the descriptor stays valid compacted JSON-LD
        crate.metadata.extra_terms.update(CRATE_TERMS)
        crate.name = title
        crate.description = description
        crate.root_dataset["version"] = version
        crate.keywords = keywords
        crate.datePublished = datetime.now(UTC).date().isoformat()
        crate.root_dataset["identifier"] = crate.add_jsonld(
            {
                "@id": f"#identifier-{camp['id']}",
                "@type": "PropertyValue",
                "name": "bigmap campaign id",
                "propertyID": "https://www.rfc-editor.org/rfc/rfc9562",
                "value": f"urn:uuid:{camp['id']}",
            }
        )
        crate.root_dataset["conditionsOfAccess"] = (
            f"bigmap access tier of the campaign: {camp.get('access')}; this package holds what "
            f"the view '{scope}' may see"
        )
        lic_entities = {}
        for lic in (data_lic, code_lic):
            if lic["id"] not in lic_entities:
                lic_entities[lic["id"]] = crate.add_jsonld(
                    {
                        "@id": spdx_uri(lic["id"]),
                        "@type": "CreativeWork",
                        "name": lic["name"],
                        "description": (
                            f"{lic['name']} (SPDX {lic['id']}): the licence of this package's "
                            + (
                                "data and code"
                                if data_lic["id"] == code_lic["id"]
                                else "data"
                                if lic is data_lic
                                else "code"
                            )
                        ),
                        "identifier": lic["id"],
                        "url": lic["url"],
                    }
                )
        crate.license = lic_entities[data_lic["id"]]
        people = [_creator_entity(crate, c, i) for i, c in enumerate(parsed_creators)]
        crate.root_dataset["creator"] = people[0] if len(people) == 1 else people
        # the publisher named, else the creators publish the package themselves
        crate.root_dataset["publisher"] = (
            _organisation_entity(crate, parsed_publisher, "#publisher")
            if parsed_publisher
            else people[0]
        )
        crate.root_dataset["bigmapFormat"] = FORMAT
        crate.root_dataset["scope"] = scope
        python = crate.add_jsonld(dict(PYTHON))
        described = {
            "data/campaign.json": "the campaign: spec, summary, status, access tier",
            "data/events.json": "every step of the planner, in order",
            "data/requests.json": "the requests and sub-requests",
            "data/files.json": "records of the raw files",
            "data/tenants.json": "the tenants that acted",
            "data/capabilities.json": "the capabilities used, with their JSON Schemas",
            "data/users.json": "user names and roles of the owners (no credentials)",
            "data/status_log.json": "every status change, who and when",
            "data/recomputations.json": "requests that recompute a result, and the original",
            "data/metadata_only.json": "restricted items findable by their metadata alone",
            "metadata/campaign.jsonld": "JSON-LD with EMMO/BattINFO IRIs, PROV-O and DCAT",
            "metadata/campaign.ttl": "the same graph in Turtle",
            "metadata/shacl-report.json": "SHACL validation of the graph (pyshacl)",
            "metadata/shacl-report.txt": "the SHACL report, readable",
            "metadata/mapping-report.json": "terms mapped to IRIs, and those without one",
            "invenio-record.json": "InvenioRDM record for the BIG-MAP Archive",
            "manifest-sha256.txt": "sha256 of every file",
            "code/recompute.py": "re-request every result with identical parameters",
            "code/LICENSE": "the licence of the code",
        }
        media = {
            ".json": "application/json",
            ".jsonld": "application/ld+json",
            ".ttl": "text/turtle",
            ".txt": "text/plain",
            ".parquet": "application/vnd.apache.parquet",
            ".py": "text/x-python",
        }
        file_media = {
            v: f["media_type"] for f in b.files for k, v in file_paths.items() if k == str(f["id"])
        }
        for rel, digest in sorted(hashes.items()):
            p = root / rel
            props: dict[str, Any] = {
                "name": p.name,
                "contentSize": str(p.stat().st_size),  # schema.org Text (RO-Crate 1.3)
                "sha256": digest,
                "encodingFormat": file_media.get(rel)
                or media.get(p.suffix, "application/octet-stream"),
            }
            if rel in described:
                props["description"] = described[rel]
            if rel.startswith("code/"):
                props["license"] = {"@id": spdx_uri(code_lic["id"])}
                if rel.endswith(".py"):
                    props["@type"] = ["File", "SoftwareSourceCode"]
                    props["programmingLanguage"] = python
            if rel.startswith("data/results/"):
                props["about"] = {"@id": f"urn:uuid:{p.stem}"}
                props["description"] = "a result: data, parameters, provenance, sha256"
            if rel.startswith("files/"):
                props["description"] = "raw data file as posted with its result"
                props["about"] = {"@id": f"urn:uuid:{rel.split('/')[1]}"}
            if rel in tables:
                props["description"] = "a table (Apache Parquet)"
            crate.add_file(root / rel, dest_path=rel, properties=props)
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        crate.write_zip(str(out))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    zip_sha = _sha256(out)
    invenio_path = out.with_name(out.name.removesuffix(".zip") + ".invenio.json")
    invenio_path.write_text(json.dumps(rec, indent=1, ensure_ascii=False))
    if record and new_version:
        fair.add_archive_record(
            campaign_id=campaign_id,
            scope=scope,
            version=version,
            sha256=zip_sha,
            manifest=manifest,
            record=rec,
            created_by=created_by,
            created_at=datetime.now(UTC),
        )
    return ExportResult(
        path=out,
        version=version,
        new_version=new_version,
        sha256=zip_sha,
        invenio_path=invenio_path,
        counts={
            "requests": len(b.requests),
            "results": len(b.results),
            "files": len(b.files),
            "events": len(b.events),
            "redacted_events": b.redacted_events,
            "metadata_only": len(b.metadata_only),
        },
        shacl={
            "conforms": report.conforms,
            "violations": report.count("Violation"),
            "warnings": report.count("Warning"),
        },
        changes=changes,
    )


# ----------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Limits:
    """What an import accepts (``BIGMAP_IMPORT_*``): bytes once unpacked, the compression
    ratio of any member above 1 MiB, the number of members."""

    max_bytes: int = 512 * 1024 * 1024
    max_ratio: float = 100.0
    max_members: int = 100000

    @classmethod
    def from_settings(cls) -> Limits:
        from bigmap.config import get_settings

        st = get_settings()
        return cls(st.import_max_bytes, st.import_max_ratio, st.import_max_members)


def _check_sizes(path: Path, z: zipfile.ZipFile, limits: Limits) -> None:
    infos = z.infolist()
    if len(infos) > limits.max_members:
        raise ArchiveError(f"{path}: {len(infos)} files, more than {limits.max_members}")
    total = 0
    for info in infos:
        total += info.file_size
        if total > limits.max_bytes:
            raise ArchiveError(
                f"{path}: more than {limits.max_bytes} bytes once unpacked "
                "(BIGMAP_IMPORT_MAX_BYTES)"
            )
        if info.file_size > (1 << 20) and info.file_size > limits.max_ratio * max(
            info.compress_size, 1
        ):
            raise ArchiveError(
                f"{path}: {info.filename} unpacks {info.file_size / max(info.compress_size, 1):.0f}"
                f" times its packed size, more than {limits.max_ratio:g} "
                "(BIGMAP_IMPORT_MAX_RATIO): refused as a zip bomb"
            )


def _read(z: zipfile.ZipFile, name: str) -> bytes:
    """A member, reading no more than the size it declares."""
    info = z.getinfo(name)
    with z.open(info) as f:
        data = f.read(info.file_size + 1)
    if len(data) != info.file_size:
        raise ArchiveError(f"{name}: its size does not match the zip's directory")
    return data


def read_package(path: Path, limits: Limits | None = None) -> dict[str, Any]:
    """The package's documents, after checking its sizes (``limits``), every file against the
    manifest (and the RO-Crate's sha256 of each file) and every record against its schema
    (``RECORD_SCHEMAS``). ``ArchiveError`` for anything that does not match, naming it."""
    limits = limits or Limits()
    try:
        z = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ArchiveError(f"{path}: not a zip file ({exc})") from None
    try:
        with z:
            return _read_package(path, z, limits)
    except (zipfile.BadZipFile, zlib_error, EOFError) as exc:
        raise ArchiveError(f"{path}: a damaged zip ({exc})") from None


def _load_json(z: zipfile.ZipFile, rel: str) -> Any:
    try:
        return json.loads(_read(z, rel))
    except ValueError as exc:
        raise ArchiveError(f"{rel}: not valid JSON ({exc})") from None
    except RecursionError:
        raise ArchiveError(f"{rel}: not valid JSON (nested too deep)") from None


def _read_package(path: Path, z: zipfile.ZipFile, limits: Limits) -> dict[str, Any]:
    _check_sizes(path, z, limits)
    names = set(z.namelist())
    for required in ("ro-crate-metadata.json", "manifest-sha256.txt", "data/campaign.json"):
        if required not in names:
            raise ArchiveError(f"{path}: not a bigmap archive package (no {required})")
    manifest = {}
    for line in _read(z, "manifest-sha256.txt").decode("utf-8", "replace").splitlines():
        if line.strip():
            digest, sep, rel = line.partition("  ")
            if not sep or not re.fullmatch(r"[0-9a-f]{64}", digest):
                raise ArchiveError(f"manifest-sha256.txt: a malformed line {line[:80]!r}")
            manifest[rel] = digest
    for rel, digest in manifest.items():
        if rel not in names:
            raise ArchiveError(f"{path}: {rel} is listed in the manifest but missing")
        if hashlib.sha256(_read(z, rel)).hexdigest() != digest:
            raise ArchiveError(f"{path}: {rel} does not match its sha256 in the manifest")
    unlisted = {
        n for n in names - set(manifest) - {"manifest-sha256.txt", "ro-crate-metadata.json"}
    }
    unlisted = {n for n in unlisted if not n.endswith("/")}
    if unlisted:
        raise ArchiveError(f"{path}: {sorted(unlisted)[0]} is not listed in the manifest")
    crate = _load_json(z, "ro-crate-metadata.json")
    if not isinstance(crate, dict) or not isinstance(crate.get("@graph"), list):
        raise ArchiveError("ro-crate-metadata.json: no @graph")
    for entity in crate["@graph"]:
        rel = entity.get("@id") if isinstance(entity, dict) else None
        if (
            isinstance(rel, str)
            and "sha256" in entity
            and rel in names
            and hashlib.sha256(_read(z, rel)).hexdigest() != entity["sha256"]
        ):
            raise ArchiveError(f"{path}: {rel} does not match its sha256 in the RO-Crate")

    def load(rel: str, kind: str, many: bool) -> Any:
        if rel not in names:
            raise ArchiveError(f"{path}: not a bigmap archive package (no {rel})")
        value = _load_json(z, rel)
        check_records(kind, value if many else [value], rel, many)
        return value

    campaign = load("data/campaign.json", "campaign", False)
    if campaign.get("format") != FORMAT:
        raise ArchiveError(f"{path}: package format {campaign.get('format')!r}, not {FORMAT}")
    results = [
        load(n, "result", False)
        for n in sorted(names)
        if n.startswith("data/results/") and n.endswith(".json")
    ]
    files = load("data/files.json", "file", True)
    contents = {}
    for f in files:
        rel = f"files/{f['result_id']}/{f['id']}/{_safe(f['name'])}"
        if rel not in names:
            raise ArchiveError(f"{path}: the raw file {rel} is missing")
        contents[f["id"]] = _read(z, rel)
    return {
        "crate": crate,
        "campaign": campaign,
        "events": load("data/events.json", "event", True),
        "requests": load("data/requests.json", "request", True),
        "results": results,
        "files": files,
        "contents": contents,
        "tenants": load("data/tenants.json", "tenant", True),
        "capabilities": load("data/capabilities.json", "capability", True),
        "users": load("data/users.json", "user", True),
        "status_log": load("data/status_log.json", "status_log", True),
        "recomputations": load("data/recomputations.json", "recomputation", True),
        "metadata_only": _load_json(z, "data/metadata_only.json")
        if "data/metadata_only.json" in names
        else [],
        "invenio": _load_json(z, "invenio-record.json") if "invenio-record.json" in names else None,
    }


# ----------------------------------------------------------------------------- record schemas

_UUID = {
    "type": "string",
    "pattern": "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
}
_UUID_OR_NULL = {"anyOf": [_UUID, {"type": "null"}]}
_TIME = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}"}
_TIME_OR_NULL = {"anyOf": [_TIME, {"type": "null"}]}
_NAME = {"type": "string", "minLength": 1, "maxLength": 200}
_ACCESS = {
    "access": {"enum": ["public", "restricted", "confidential"]},
    "access_groups": {"type": ["array", "null"], "items": {"type": "string", "maxLength": 200}},
    "embargo_until": _TIME_OR_NULL,
    "findable": {"type": ["boolean", "null"]},
}


def _record(required: list[str], props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": props}


RECORD_SCHEMAS: dict[str, dict[str, Any]] = {
    "campaign": _record(
        ["id", "name", "spec", "owner_id", "created_at", "access"],
        {
            "id": _UUID,
            "name": _NAME,
            "spec": {"type": "object"},
            "owner_id": _UUID,
            "tenant_id": _UUID_OR_NULL,
            "created_at": _TIME,
            "updated_at": _TIME_OR_NULL,
            "status": {"type": ["string", "null"], "maxLength": 20},
            **_ACCESS,
        },
    ),
    "event": _record(
        ["id", "campaign_id", "seq", "kind", "created_at"],
        {
            "id": _UUID,
            "campaign_id": _UUID,
            "seq": {"type": "integer", "minimum": 0},
            "kind": {"type": "string", "minLength": 1, "maxLength": 50},
            "request_ids": {"type": ["array", "null"], "items": _UUID},
            "created_at": _TIME,
        },
    ),
    "request": _record(
        ["id", "quantity", "methods", "parameters", "status", "owner_id", "created_at", "access"],
        {
            "id": _UUID,
            "quantity": _NAME,
            "methods": {"type": "array", "minItems": 1, "items": _NAME},
            "parameters": {"type": "object"},
            "status": {"type": "string", "maxLength": 20},
            "owner_id": _UUID,
            "tenant_id": _UUID_OR_NULL,
            "claimed_by": _UUID_OR_NULL,
            "claimed_by_user": _UUID_OR_NULL,
            "parent_id": _UUID_OR_NULL,
            "campaign_id": _UUID_OR_NULL,
            "result_id": _UUID_OR_NULL,
            "created_at": _TIME,
            **_ACCESS,
        },
    ),
    "result": _record(
        ["id", "request_id", "quantity", "method", "data", "owner_id", "created_at", "sha256"],
        {
            "id": _UUID,
            "request_id": _UUID,
            "quantity": _NAME,
            "method": _NAME,
            "data": {"type": "object"},
            "parameters": {"type": ["object", "null"]},
            "owner_id": _UUID,
            "tenant_id": _UUID_OR_NULL,
            "amends": _UUID_OR_NULL,
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "created_at": _TIME,
            **_ACCESS,
        },
    ),
    "file": _record(
        ["id", "result_id", "name", "media_type", "size", "sha256", "owner_id", "created_at"],
        {
            "id": _UUID,
            "result_id": _UUID,
            "name": {"type": "string", "minLength": 1, "maxLength": 500},
            "media_type": {"type": "string", "maxLength": 200},
            "size": {"type": "integer", "minimum": 0},
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "owner_id": _UUID,
            "created_at": _TIME,
            **_ACCESS,
        },
    ),
    "tenant": _record(
        ["id", "name", "owner_id", "kind"],
        {
            "id": _UUID,
            "name": _NAME,
            "owner_id": _UUID,
            "kind": {"type": "string", "maxLength": 20},
            "provides": {
                "type": "array",
                "items": _record(
                    ["quantity", "method"],
                    {"quantity": _NAME, "method": _NAME, "limitations": {}},
                ),
            },
        },
    ),
    "capability": _record(
        ["id", "quantity", "method", "parameter_schema", "result_schema"],
        {
            "id": _UUID,
            "quantity": _NAME,
            "method": _NAME,
            "parameter_schema": {"type": "object"},
            "result_schema": {"type": "object"},
        },
    ),
    "user": _record(
        ["id", "name", "created_at"],
        {
            "id": _UUID,
            "name": {"type": "string", "minLength": 1, "maxLength": 80},
            "created_at": _TIME,
        },
    ),
    "status_log": _record(
        ["object_type", "object_id", "new_status", "at"],
        {
            "object_type": {"type": "string", "maxLength": 20},
            "object_id": _UUID,
            "new_status": {"type": "string", "maxLength": 20},
            "old_status": {"type": ["string", "null"], "maxLength": 20},
            "user_id": _UUID_OR_NULL,
            "tenant_id": _UUID_OR_NULL,
            "at": _TIME,
        },
    ),
    "recomputation": _record(
        ["request_id", "original_result_id", "original_request_id"],
        {
            "request_id": _UUID,
            "original_result_id": _UUID,
            "original_request_id": _UUID,
            "user_id": _UUID_OR_NULL,
            "created_at": _TIME_OR_NULL,
        },
    ),
}


def check_records(kind: str, records: Any, rel: str, many: bool = True) -> None:
    """Every record of a package file against its schema: ``ArchiveError`` naming the file,
    the record (its index and id) and the field."""
    import jsonschema

    if not isinstance(records, list):
        raise ArchiveError(f"{rel}: expected a list of {kind} records")
    validator = jsonschema.Draft202012Validator(RECORD_SCHEMAS[kind])
    for i, rec in enumerate(records):
        errors = sorted(validator.iter_errors(rec), key=lambda e: list(map(str, e.path)))
        if errors:
            e = errors[0]
            where = ".".join(str(p) for p in e.absolute_path) or "(record)"
            ident = rec.get("id") if isinstance(rec, dict) else None
            which = f"[{i}]" if many else ""
            raise ArchiveError(
                f"{rel}{which}: {kind} record{f' {ident}' if ident else ''}: {where}: "
                f"{e.message[:300]}"
            )


def crate_graph(crate: dict[str, Any]) -> Any:
    """The RO-Crate metadata as an rdflib graph, with the RO-Crate context the ``rocrate``
    package ships (no network)."""
    import os

    import rdflib
    import rocrate

    ctx = json.loads(
        Path(os.path.dirname(rocrate.__file__), "data", "ro-crate.jsonld").read_text()
    )["@context"]
    doc = {**crate, "@context": ctx}
    return rdflib.Graph().parse(data=json.dumps(doc), format="json-ld")


# ----------------------------------------------------------------------------- import


_TIME_FIELDS = {
    "created_at",
    "updated_at",
    "claimed_at",
    "lease_expires_at",
    "embargo_until",
    "last_seen_at",
    "at",
}
_UUID_FIELDS = {
    "id",
    "owner_id",
    "tenant_id",
    "parent_id",
    "campaign_id",
    "claimed_by",
    "claimed_by_user",
    "result_id",
    "request_id",
    "amends",
    "object_id",
    "user_id",
    "original_result_id",
    "original_request_id",
    "capability_id",
}


def _typed(model: Any, row: dict[str, Any]) -> dict[str, Any]:
    cols = {c.name for c in model.__table__.columns}
    out = {}
    for k, v in row.items():
        if k not in cols:
            continue
        if v is not None and k in _TIME_FIELDS and isinstance(v, str):
            v = datetime.fromisoformat(v)
        elif v is not None and k in _UUID_FIELDS and isinstance(v, str):
            v = uuid.UUID(v)
        out[k] = v
    return out


def _foreign_name(name: str, source: str) -> str:
    return f"{name}@{source}"[:100]


def import_package(
    fair: Fair,
    path: Path,
    *,
    source: str | None = None,
    user_map: dict[str, str] | None = None,
    limits: Limits | None = None,
) -> dict[str, Any]:
    try:
        return _import_package(fair, path, source, user_map, limits)
    except ArchiveError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # the schemas catch what a package may get wrong; this is the net under them
        raise ArchiveError(f"{path}: a malformed package ({type(exc).__name__}: {exc})") from None


def _import_package(
    fair: Fair, path: Path, source: str | None, user_map: dict | None, limits: Limits | None
) -> dict[str, Any]:
    """Restore a package into this database, treating it as untrusted input.

    - Owners stay foreign: each user of the package becomes ``name@source`` (``source``:
      where the package comes from, by default ``archive-<campaign id prefix>``), a user that
      cannot log in (disabled, no password, role observer, ``imported_from`` = source), unless
      the operator maps it to a local user (``user_map``: package name -> local name).
    - Nothing attaches to what exists here: a record whose id exists already, or that refers to
      a request, result or campaign that exists here but is not in the package, is refused.
    - Sizes are bounded (``limits``), every record is checked against its schema, every
      result's sha256 against its data, every raw file's against its bytes.

    Importing the same package again changes nothing; a campaign id that exists with other
    content is refused. ``ArchiveError`` names what is wrong; nothing is written then."""
    from sqlalchemy import select

    from bigmap.schemas.common import content_hash
    from bigmap.store import models as m

    pkg = read_package(path, limits)
    counts = {
        k: 0
        for k in (
            "users",
            "capabilities",
            "tenants",
            "campaigns",
            "events",
            "requests",
            "results",
            "files",
            "status_log",
            "recomputations",
        )
    }
    warnings: list[str] = []
    camp = pkg["campaign"]
    source = source or f"archive-{camp['id'][:8]}"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,60}", source):
        raise ArchiveError(f"source {source!r}: letters, digits, '.', '_', ':' and '-' only")
    user_map = dict(user_map or {})
    known_users = {u["name"] for u in pkg["users"]}
    for name in user_map:
        if name not in known_users:
            raise ArchiveError(
                f"--map-user {name}=...: the package has no user {name!r} "
                f"(it has {', '.join(sorted(known_users)) or 'none'})"
            )
    for r in pkg["results"]:
        if content_hash(r["data"]) != r["sha256"]:
            raise ArchiveError(f"data/results/{r['id']}.json: its data do not match its sha256")
    ids = {
        "request": {r["id"] for r in pkg["requests"]},
        "result": {r["id"] for r in pkg["results"]},
        "file": {f["id"] for f in pkg["files"]},
        "event": {e["id"] for e in pkg["events"]},
    }
    with fair.db.write() as s:
        existing = s.get(m.Campaign, uuid.UUID(camp["id"]))
        if existing is not None:
            if existing.name == camp["name"] and existing.spec == camp["spec"]:
                return {
                    "campaign_id": camp["id"],
                    "imported": counts,
                    "already_present": True,
                    "warnings": ["this campaign is already in the database: nothing imported"],
                    "source": source,
                }
            raise ArchiveError(f"campaign {camp['id']} exists here with other content")
        # nothing of the package may exist here already (it would be taken over or attached to)
        for kind, model in (
            ("request", m.Request),
            ("result", m.Result),
            ("file", m.File),
            ("event", m.CampaignEvent),
        ):
            wanted = [uuid.UUID(x) for x in ids[kind]]
            for i in range(0, len(wanted), 500):
                clash = s.scalar(select(model.id).where(model.id.in_(wanted[i : i + 500])))
                if clash is not None:
                    raise ArchiveError(
                        f"{kind} {clash} of the package exists here already: an import never "
                        "replaces or joins records it did not create"
                    )

        def outside(model: Any, ref: Any, what: str) -> bool:
            """True if ``ref`` is not in the package and not here (a dangling link, dropped);
            ``ArchiveError`` if it exists here (an import never attaches to it)."""
            if s.get(model, uuid.UUID(str(ref))) is not None:
                raise ArchiveError(
                    f"{what} refers to {model.__tablename__[:-1]} {ref}, which exists here and is "
                    "not in the package: an import never attaches records to existing objects"
                )
            return True

        # users: foreign identities, or the operator's explicit mapping
        user_ids: dict[str, uuid.UUID] = {}
        for u in pkg["users"]:
            if u["name"] in user_map:
                local = s.scalar(select(m.User).where(m.User.name == user_map[u["name"]]))
                if local is None:
                    raise ArchiveError(
                        f"--map-user {u['name']}={user_map[u['name']]}: no local user "
                        f"{user_map[u['name']]!r}"
                    )
                user_ids[u["id"]] = local.id
                continue
            fname = _foreign_name(u["name"], source)
            row = s.scalar(select(m.User).where(m.User.name == fname))
            if row is not None and row.imported_from != source:
                raise ArchiveError(
                    f"user {fname!r} exists here and was not imported from {source!r}: "
                    "choose another --source or map the user with --map-user"
                )
            if row is None:
                row = m.User(
                    id=uuid.uuid4(),
                    name=fname,
                    password_hash="!imported: cannot log in",
                    role="observer",
                    groups=[],
                    disabled=True,
                    created_at=datetime.fromisoformat(u["created_at"]),
                    imported_from=source,
                )
                s.add(row)
                counts["users"] += 1
            user_ids[u["id"]] = row.id

        def uid(x: Any, what: str, required: bool = False) -> Any:
            if not x:
                return None
            if str(x) not in user_ids:
                if required:
                    raise ArchiveError(f"{what}: its owner {x} is not in data/users.json")
                return None
            return user_ids[str(x)]

        s.flush()
        for c in pkg["capabilities"]:
            row = s.scalar(
                select(m.Capability).where(
                    m.Capability.quantity == c["quantity"], m.Capability.method == c["method"]
                )
            )
            if row is None:
                values = _typed(m.Capability, c)
                values["id"] = uuid.uuid4() if s.get(m.Capability, values["id"]) else values["id"]
                s.add(m.Capability(**values))
                counts["capabilities"] += 1
            elif (
                row.parameter_schema != c["parameter_schema"]
                or row.result_schema != c["result_schema"]
            ):
                warnings.append(
                    f"capability {c['quantity']}/{c['method']} is defined differently here; "
                    "the package's definition is in data/capabilities.json"
                )
        s.flush()
        tenant_map: dict[str, uuid.UUID] = {}
        for t in pkg["tenants"]:
            owner = uid(t["owner_id"], f"tenant {t['id']}", required=True)
            row = s.scalar(
                select(m.Tenant).where(m.Tenant.owner_id == owner, m.Tenant.name == t["name"])
            )
            if row is None:
                values = _typed(m.Tenant, t)
                values["owner_id"] = owner
                if s.get(m.Tenant, values["id"]) is not None:
                    values["id"] = uuid.uuid4()
                row = m.Tenant(**values)
                s.add(row)
                s.flush()
                for p in t.get("provides") or []:
                    cap = s.scalar(
                        select(m.Capability).where(
                            m.Capability.quantity == p["quantity"],
                            m.Capability.method == p["method"],
                        )
                    )
                    if cap is not None:
                        s.add(
                            m.TenantCapability(
                                tenant_id=row.id,
                                capability_id=cap.id,
                                limitations=p.get("limitations") or {},
                            )
                        )
                counts["tenants"] += 1
            tenant_map[t["id"]] = row.id
        s.flush()

        def tid(x: Any) -> Any:
            # a tenant of the package, else none: never one of this broker's tenants
            return tenant_map.get(str(x)) if x else None

        cvals = _typed(m.Campaign, camp)
        cvals["owner_id"] = uid(camp["owner_id"], f"campaign {camp['id']}", required=True)
        cvals["tenant_id"] = tid(camp.get("tenant_id"))
        s.add(m.Campaign(**cvals))
        counts["campaigns"] += 1
        s.flush()
        # parents before children
        pending = list(pkg["requests"])
        placed: set[str] = set()
        while pending:
            progress = False
            for r in list(pending):
                parent = r.get("parent_id")
                if parent and parent in ids["request"] and parent not in placed:
                    continue
                what = f"data/requests.json: request {r['id']}"
                values = _typed(m.Request, r)
                values["owner_id"] = uid(r["owner_id"], what, required=True)
                values["tenant_id"] = tid(r.get("tenant_id"))
                values["claimed_by"] = tid(r.get("claimed_by"))
                values["claimed_by_user"] = uid(r.get("claimed_by_user"), what)
                if parent and parent not in ids["request"] and outside(m.Request, parent, what):
                    warnings.append(f"request {r['id']}: its parent {parent} is not in the package")
                    values["parent_id"] = None
                if (
                    r.get("campaign_id")
                    and r["campaign_id"] != camp["id"]
                    and outside(m.Campaign, r["campaign_id"], what)
                ):
                    values["campaign_id"] = None
                if (
                    r.get("result_id")
                    and r["result_id"] not in ids["result"]
                    and outside(m.Result, r["result_id"], what)
                ):
                    values["result_id"] = None
                s.add(m.Request(**values))
                placed.add(r["id"])
                pending.remove(r)
                counts["requests"] += 1
                progress = True
            if not progress:
                raise ArchiveError("the requests of the package form a cycle")
            s.flush()
        res_ids = set(ids["result"])
        for r in sorted(pkg["results"], key=lambda r: r["created_at"]):
            what = f"data/results/{r['id']}.json"
            if r["request_id"] not in ids["request"]:
                outside(m.Request, r["request_id"], what)
                warnings.append(f"result {r['id']}: its request is not in the package; left out")
                res_ids.discard(r["id"])
                continue
            values = _typed(m.Result, r)
            values["owner_id"] = uid(r["owner_id"], what, required=True)
            values["tenant_id"] = tid(r.get("tenant_id"))
            if r.get("amends") and r["amends"] not in res_ids:
                outside(m.Result, r["amends"], what)
                values["amends"] = None
            s.add(m.Result(**values))
            counts["results"] += 1
            s.flush()
        for f in pkg["files"]:
            what = f"data/files.json: file {f['id']}"
            if f["result_id"] not in res_ids:
                outside(m.Result, f["result_id"], what)
                continue
            values = _typed(m.File, f)
            values["owner_id"] = uid(f["owner_id"], what, required=True)
            content = pkg["contents"][f["id"]]
            if hashlib.sha256(content).hexdigest() != f["sha256"] or len(content) != f["size"]:
                raise ArchiveError(f"raw file {f['id']} does not match its sha256 and size")
            values["content"] = content
            s.add(m.File(**values))
            counts["files"] += 1
        for e in pkg["events"]:
            if e["campaign_id"] != camp["id"]:
                raise ArchiveError(
                    f"data/events.json: step {e['id']} belongs to campaign {e['campaign_id']}, "
                    "not to the package's"
                )
            s.add(m.CampaignEvent(**_typed(m.CampaignEvent, e)))
            counts["events"] += 1
        s.flush()
        placed_ids = {*ids["request"], *res_ids, camp["id"]}
        for x in pkg["status_log"]:
            if x["object_id"] not in placed_ids:
                continue  # the history of records this import did not create
            values = _typed(m.StatusLog, x)
            values.pop("id", None)
            values["user_id"] = uid(x.get("user_id"), "data/status_log.json")
            values["tenant_id"] = tid(x.get("tenant_id"))
            s.add(m.StatusLog(**values))
            counts["status_log"] += 1
        for x in pkg["recomputations"]:
            if (
                x["original_result_id"] in res_ids
                and x["request_id"] in ids["request"]
                and x["original_request_id"] in ids["request"]
            ):
                values = _typed(m.Recomputation, x)
                values["user_id"] = uid(x.get("user_id"), "data/recomputations.json")
                s.add(m.Recomputation(**values))
                counts["recomputations"] += 1
    return {
        "campaign_id": camp["id"],
        "imported": counts,
        "already_present": False,
        "warnings": warnings,
        "source": source,
        "version": next(
            (e.get("version") for e in pkg["crate"]["@graph"] if e.get("@id") == "./"), None
        ),
    }
