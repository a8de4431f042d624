"""A capability no worker serves (``fair_probe/manual``), and chains of objects built on it
through the API: a campaign with a request, its result and raw file, a sub-request with its
result and raw file, a pending request, and planner steps naming them. Used by the FAIR
tests (access matrix, provenance, archive)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from bigmap.client import BrokerClient

PROBE = {
    "quantity": "fair_probe",
    "method": "manual",
    "description": "a probe for the FAIR tests: a voltage read by hand",
    "parameter_schema": {
        "type": "object",
        "properties": {
            "x": {"type": "number"},
            "tag": {"type": "string"},
            "temperature": {"type": "number", "unit": "kelvin"},
        },
        "required": ["x"],
        "additionalProperties": False,
    },
    "result_schema": {
        "type": "object",
        "properties": {
            "nominal_voltage": {"type": "number"},
            "temperature": {"type": "number"},
            "tag": {"type": "string"},
        },
        "required": ["nominal_voltage"],
    },
    "units": {"nominal_voltage": "V", "temperature": "kelvin"},
}


def probe_tenant(c: BrokerClient, name: str) -> str:
    """Register the probe capability (if missing) and a tenant of the caller providing it."""
    c.add_capability(PROBE)
    t = c.register_tenant(
        {
            "name": name,
            "kind": "instrument",
            "software": {"name": "probe-driver", "version": "0.3"},
            "limitations": [{"quantity": "fair_probe", "method": "manual", "limitations": {}}],
        }
    )
    return t["id"]


@dataclass
class Chain:
    tier: str
    secret: str
    campaign: str
    request: str
    result: str
    file: str
    child: str
    child_result: str
    child_file: str
    pending: str
    events: list[str] = field(default_factory=list)

    def ids(self) -> list[str]:
        return [
            self.campaign,
            self.request,
            self.result,
            self.file,
            self.child,
            self.child_result,
            self.child_file,
            self.pending,
        ]


def build_chain(
    c: BrokerClient, tenant_id: str, tier: str, access: dict[str, Any], *, x: float = 1.0
) -> Chain:
    """Everything of one access tier: the campaign carries ``access``; its requests, results,
    raw files and sub-requests inherit it. A secret string rides in every payload."""
    secret = f"secret-{tier}-{uuid.uuid4().hex[:10]}"
    camp = c.create_campaign(
        f"probe campaign {tier} {uuid.uuid4().hex[:6]}",
        {"tier": tier, "note": secret},
        tenant_id=tenant_id,
        **access,
    )
    params = {"x": x, "tag": secret, "temperature": 298.15}
    req = c.create_request(
        "fair_probe", "manual", params, tenant_id=tenant_id, campaign_id=camp["id"]
    )
    res = c.post_result(
        req["id"],
        tenant_id,
        {"nominal_voltage": 3.7 + x, "temperature": 298.2, "tag": secret},
        method="manual",
        files=[(f"{tier}.csv", f"t,v\n0,{3.7 + x}\n# {secret}\n".encode(), "text/csv")],
        provenance={"instruments": {"probe": {"serial": "P-1"}}},
    )
    child = c.create_request(
        "fair_probe",
        "manual",
        {"x": x + 1, "tag": secret},
        tenant_id=tenant_id,
        parent_id=req["id"],
        campaign_id=camp["id"],
    )
    child_res = c.post_result(
        child["id"],
        tenant_id,
        {"nominal_voltage": 3.8 + x, "tag": secret},
        method="manual",
        files=[(f"{tier}-raw.txt", f"raw {secret}".encode(), "text/plain")],
    )
    pending = c.create_request(
        "fair_probe",
        "manual",
        {"x": x + 2, "tag": secret},
        tenant_id=tenant_id,
        campaign_id=camp["id"],
    )
    ev1 = c.add_campaign_event(
        camp["id"],
        "proposal",
        {
            "step": 1,
            "strategy": "probe",
            "candidates": [{"x": {"x": x}, "request_id": req["id"]}],
            "note": secret,
        },
        request_ids=[req["id"]],
    )
    ev2 = c.add_campaign_event(
        camp["id"],
        "observation",
        {
            "step": 1,
            "request_id": req["id"],
            "result_id": res["id"],
            "y": {"v": 3.7 + x},
            "note": secret,
        },
    )
    return Chain(
        tier=tier,
        secret=secret,
        campaign=camp["id"],
        request=req["id"],
        result=res["id"],
        file=res["files"][0]["id"],
        child=child["id"],
        child_result=child_res["id"],
        child_file=child_res["files"][0]["id"],
        pending=pending["id"],
        events=[ev1["id"], ev2["id"]],
    )
