"""Issue 12, items 2, 3 and 5: schemas are data, resources are bounded, bad input is a 4xx.

Each attack of the issue is repeated against a live broker (``bigmap serve``)."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from bigmap.schemas.validation import check_schema_details, validate

# ----------------------------------------------------------------------------- schemas


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the http.server name
        type(self).hits.append(self.path)
        body = b'{"type": "string", "secret": "leaked-by-the-server"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server that records every request it gets."""
    _Recorder.hits = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", _Recorder.hits
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def silent_host() -> Iterator[str]:
    """A port that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/schema.json"
    finally:
        sock.close()


def _capability(quantity: str, parameter_schema: dict) -> dict:
    return {
        "quantity": quantity,
        "method": "attack",
        "parameter_schema": parameter_schema,
        "result_schema": {"type": "object"},
    }


def test_remote_refs_are_refused_at_registration_and_never_fetched(
    live_one, recorder, silent_host, tmp_path
) -> None:
    base, hits = recorder
    secret_file = tmp_path / "secret.json"
    secret_file.write_text('{"type": "string", "secret": "local-file-content"}')
    attacks = {
        "http": {"type": "object", "properties": {"x": {"$ref": f"{base}/schema.json"}}},
        "file": {"type": "object", "properties": {"x": {"$ref": secret_file.as_uri()}}},
        "silent": {"$ref": silent_host},
        "relative": {"properties": {"x": {"$ref": "other.json#/a"}}},
        "dynamic": {"$dynamicRef": f"{base}/dyn.json"},
        "nested-id": {"$id": f"{base}/root.json", "properties": {"x": {"$ref": "x.json"}}},
    }
    with httpx.Client(base_url=live_one.url, headers=live_one.headers("alice"), timeout=30) as c:
        for name, schema in attacks.items():
            t0 = time.monotonic()
            r = c.post("/api/v1/capabilities", json=_capability(f"ref_{name}", schema))
            took = time.monotonic() - t0
            assert r.status_code == 422, (name, r.text)
            assert took < 5, (name, took)
            detail = r.json()["detail"]
            assert detail[0]["path"].startswith("$.parameter_schema"), detail
            assert "local-file-content" not in r.text and "leaked" not in r.text, r.text
        # the path of the offending $ref is named
        r = c.post("/api/v1/capabilities", json=_capability("ref_http", attacks["http"]))
        assert r.json()["detail"][0]["path"] == "$.parameter_schema.properties.x.$ref"
        # a FINALES capability document names its own field
        r = c.post(
            "/api/v1/capabilities",
            json={
                "quantity": "ref_finales",
                "method": "attack",
                "json_schema_specifications": attacks["file"],
                "json_schema_result_output": {},
            },
        )
        assert r.status_code == 422
        assert r.json()["detail"][0]["path"].startswith("$.json_schema_specifications")
        # local references still work, in both validators
        local = {
            "type": "object",
            "$defs": {"t": {"type": "number", "minimum": 0}},
            "properties": {"T": {"$ref": "#/$defs/t"}},
            "required": ["T"],
        }
        r = c.post("/api/v1/capabilities", json=_capability("ref_local", local))
        assert r.status_code == 201, r.text
    assert hits == [], hits
    assert validate(local, {"T": -1}, ["parameters"])[0].path == "$.parameters.T"


def test_remote_refs_are_never_fetched_at_validation(recorder) -> None:
    """A schema stored before the checks (or written into the database) still fetches
    nothing: validation refuses with a reason, in bounded time."""
    base, hits = recorder
    errs = validate({"$ref": f"{base}/x.json"}, "anything", ["parameters"])
    assert errs and errs[0].path == "$.parameters"
    assert "unusable" in errs[0].msg and "leaked" not in errs[0].msg
    assert hits == []


def test_patterns_run_in_linear_time(live_one) -> None:
    evil = {
        "type": "object",
        "properties": {"name": {"type": "string", "pattern": "^(a+)+$"}},
        "patternProperties": {"^(b+)+$": {"type": "integer"}},
    }
    with httpx.Client(base_url=live_one.url, headers=live_one.headers("alice"), timeout=30) as c:
        r = c.post("/api/v1/capabilities", json=_capability("redos", evil))
        assert r.status_code == 201, r.text
    t0 = time.monotonic()
    errs = validate(evil, {"name": "a" * 30 + "!"}, ["parameters"])
    errs += validate(evil, {"b" * 30 + "!": "x", "name": "a"}, ["parameters"])
    errs += validate(evil, {"b" * 30: "not an integer"}, ["parameters"])
    assert time.monotonic() - t0 < 1.0
    assert [e.path for e in errs] == ["$.parameters.name", f"$.parameters.{'b' * 30}"]
    assert "does not match" in errs[0].msg


def test_unsafe_patterns_are_refused_by_path(live_one) -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "string", "pattern": "^(?=x)x$"},  # lookahead: not linear-time
            "b": {"type": "string", "pattern": "^(\\w)\\1$"},  # backreference
        },
    }
    with httpx.Client(base_url=live_one.url, headers=live_one.headers("alice"), timeout=30) as c:
        r = c.post("/api/v1/capabilities", json=_capability("lookaround", schema))
    assert r.status_code == 422, r.text
    paths = {d["path"] for d in r.json()["detail"]}
    assert paths == {
        "$.parameter_schema.properties.a.pattern",
        "$.parameter_schema.properties.b.pattern",
    }


def test_schema_size_and_depth_are_bounded() -> None:
    from bigmap.schemas.validation import SchemaLimits

    limits = SchemaLimits(max_bytes=1000, max_depth=10)
    deep: dict = {"type": "object"}
    for _ in range(20):
        deep = {"type": "object", "properties": {"x": deep}}
    errs = check_schema_details(deep, ["parameter_schema"], limits)
    assert len(errs) == 1 and "deeper" in errs[0].msg and errs[0].path == "$.parameter_schema"
    big = {"type": "object", "description": "x" * 2000}
    errs = check_schema_details(big, ["result_schema"], limits)
    assert len(errs) == 1 and "bytes" in errs[0].msg
    assert check_schema_details({"type": "object"}, ["x"], limits) == []
    # const/enum/default are data: a "$ref" key inside them is not a reference
    assert check_schema_details({"const": {"$ref": "http://x"}}, ["x"], limits) == []
