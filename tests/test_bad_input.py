"""Every operation of the OpenAPI document, native and FINALES-compatible, fed malformed
input (unknown and malformed ids, bodies that are not JSON or of the wrong shape, query
parameters of the wrong type), as an admin, as a tenant user and anonymously: each answer is a
clear 4xx (or a 2xx where the input happens to be acceptable), never a 5xx, and every 4xx
names what was wrong."""

from __future__ import annotations

import json
import re
import uuid

import httpx
import pytest

from tests.conftest import _live

pytestmark = pytest.mark.integration  # a broker of its own (module fixture)

BAD_IDS = ["not-a-uuid", str(uuid.uuid4()), "0" * 300]
BAD_BODIES = [
    None,
    "garbage{",
    "[]",
    "null",
    '{"a": 1}',
    json.dumps(
        {
            "quantity": 5,
            "methods": "x",
            "parameters": [],
            "tenant_id": 3,
            "tenant_uuid": [],
            "data": "s",
            "request_id": "x",
            "name": ["a"],
            "access": "nope",
            "embargo_until": "yesterday",
            "limitations": {"a": 1},
        }
    ),
    # a number JSON allows and Python reads as infinity
    '{"quantity": "conductivity", "methods": ["two_electrode"], '
    '"parameters": {"two_electrode": {"temperature": 1e999}}}',
]
BAD_QUERY = {
    "limit": "-5",
    "offset": "x",
    "status": "bogus",
    "quantity": "\x00",
    "method": "'",
    "wait": "abc",
    "timeout": "1e309",
    "new_status": "zzz",
    "request_id": "nope",
    "result_id": "nope",
    "currently_available": "maybe",
}


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    """A broker of its own: what malformed input might create stays out of other tests."""
    url = f"sqlite:///{tmp_path_factory.mktemp('bad-input') / 'bigmap.db'}"
    yield from _live(url, tmp_path_factory)


def _operations(live) -> list[tuple[str, str]]:
    spec = httpx.get(f"{live.url}/openapi.json").json()
    return [
        (method.upper(), path)
        for path, ops in spec["paths"].items()
        for method in ops
        if not path.endswith("/stream")  # server-sent events: an endless answer
    ]


def test_malformed_input_never_answers_5xx(broker):
    ops = _operations(broker)
    assert len(ops) > 60  # the whole API, not an empty document
    answers: dict[int, int] = {}
    failures = []
    with httpx.Client(base_url=broker.url, timeout=60) as http:
        for method, path in ops:
            names = re.findall(r"{(\w+)}", path)
            for ident in BAD_IDS if names else [None]:
                url = path
                for name in names:
                    url = url.replace("{" + name + "}", ident)
                bodies = BAD_BODIES if method in ("POST", "PUT", "PATCH") else [None]
                for body in bodies:
                    for user in ("admin", "alice", None):
                        headers = broker.headers(user) if user else {}
                        if body is not None:
                            headers["content-type"] = "application/json"
                        for query in ({}, BAD_QUERY):
                            r = http.request(
                                method, url, params=query, content=body, headers=headers
                            )
                            answers[r.status_code] = answers.get(r.status_code, 0) + 1
                            if r.status_code >= 500:
                                failures.append(
                                    (method, url, body, user, r.status_code, r.text[:300])
                                )
                            elif 400 <= r.status_code < 500 and r.status_code != 404:
                                # a refusal says why (FINALES' and FastAPI's "detail", ours too)
                                assert r.json().get("detail"), (method, url, r.text)
    assert not failures, failures[:5]
    assert sum(n for code, n in answers.items() if 400 <= code < 500) > 1000
