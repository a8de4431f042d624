"""Issue 12, items 2, 3 and 5: schemas are data, resources are bounded, bad input is a 4xx.

Each attack of the issue is repeated against a live broker (``bigmap serve``)."""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

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


# ----------------------------------------------------------------------------- live limits

SMALL = {
    "BIGMAP_SWEEP_SECONDS": "0.2",
    "BIGMAP_MAX_BODY_BYTES": "200000",
    "BIGMAP_MAX_UPLOAD_BYTES": "3000000",
    "BIGMAP_PAGE_SIZE": "3",
    "BIGMAP_PAGE_SIZE_MAX": "5",
    "BIGMAP_FINALES_MAX_ITEMS": "4",
    "BIGMAP_SSE_PER_USER": "2",
    "BIGMAP_SSE_TOTAL": "3",
    "BIGMAP_HEADER_TIMEOUT_SECONDS": "3",
    "BIGMAP_HASH_CONCURRENCY": "2",
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def small(request, tmp_path_factory):
    """A broker with small limits, on SQLite and on PostgreSQL."""
    from bigmap.embedded import LocalBroker, temporary_postgres_database
    from bigmap.schemas.capability import finales_capability
    from bigmap.schemas.common import Role
    from bigmap.store.access import Actor
    from tests.conftest import Live, _require_postgres

    def run(url):
        log = tmp_path_factory.mktemp("logs") / "broker.log"
        server = LocalBroker(url, log_path=log, env=SMALL)
        tokens = {
            "admin": server.user("admin", "admin", password="admin-password"),
            "alice": server.user("alice", "tenant", password="alice-password"),
            "bob": server.user("bob", "tenant", password="bob-password"),
            "olga": server.user("olga", "observer", password="olga-password"),
        }
        system = Actor(__import__("uuid").UUID(int=0), "setup", Role.admin)
        server.broker.add_capability(system, finales_capability("conductivity", "two_electrode"))
        server.start()
        return server, Live(server, tokens)

    if request.param == "sqlite":
        server, live = run(f"sqlite:///{tmp_path_factory.mktemp('small') / 'bigmap.db'}")
        try:
            yield live
        finally:
            server.close()
    else:
        _require_postgres()
        with temporary_postgres_database() as url:
            server, live = run(url)
            try:
                yield live
            finally:
                server.close()


def _planner(c) -> dict:
    return c.register_tenant({"name": f"planner-{time.monotonic_ns()}", "kind": "planner"})


def _params() -> dict:
    from tests.test_broker_api import cond_params

    return cond_params()


@pytest.mark.integration  # child processes / a server of its own
def test_lists_are_pages_in_sql(small) -> None:
    with small.client("alice") as c:
        planner = _planner(c)
        made = [
            c.create_request(
                "conductivity", "two_electrode", _params(), tenant_id=planner["id"], queue=True
            )["id"]
            for _ in range(7)
        ]
        # the SDK follows the pages
        assert [r["id"] for r in c.requests(tenant_id=planner["id"])] == made
        assert len(c.requests(tenant_id=planner["id"], limit=2)) == 2
    with httpx.Client(base_url=small.url, headers=small.headers("alice")) as h:
        r = h.get("/api/v1/requests", params={"tenant_id": planner["id"]})
        assert [x["id"] for x in r.json()] == made[:3]  # page_size
        nxt = r.links["next"]["url"]
        r2 = h.get(nxt)
        assert [x["id"] for x in r2.json()] == made[3:6]
        r3 = h.get(r2.links["next"]["url"])
        assert [x["id"] for x in r3.json()] == made[6:] and "next" not in r3.links
        # a limit above page_size_max is cut to it, and the Link leads on
        r = h.get("/api/v1/requests", params={"tenant_id": planner["id"], "limit": 100})
        assert len(r.json()) == 5 and "next" in r.links
        # newest first, and the method filter runs in SQL on both databases
        r = h.get(
            "/api/v1/requests",
            params={"tenant_id": planner["id"], "newest_first": True, "method": "two_electrode"},
        )
        assert [x["id"] for x in r.json()] == made[::-1][:3]
        r = h.get("/api/v1/requests", params={"tenant_id": planner["id"], "method": "two"})
        assert r.json() == []
        # FINALES lists keep their shape (a list), capped, with the same Link
        r = h.get("/all_requests/", params={"quantity": "conductivity"})
        assert isinstance(r.json(), list) and len(r.json()) == 4 and "next" in r.links
        everything = r.json()
        while "next" in r.links:
            r = h.get(r.links["next"]["url"])
            everything += r.json()
        assert {x["uuid"] for x in everything} >= set(made)
        assert len(everything) == len({x["uuid"] for x in everything})
        r = h.get("/pending_requests/", params={"quantity": "conductivity", "offset": 4})
        assert r.status_code == 200 and isinstance(r.json(), list)
        for path in ("/api/v1/tenants", "/api/v1/capabilities", "/api/v1/campaigns"):
            r = h.get(path, params={"limit": 1})
            assert r.status_code == 200 and len(r.json()) <= 1, path


@pytest.mark.integration  # child processes / a server of its own
def test_body_size_is_bounded(small) -> None:
    big = {"quantity": "conductivity", "methods": ["two_electrode"], "pad": "x" * 300_000}
    with httpx.Client(base_url=small.url, headers=small.headers("alice"), timeout=30) as h:
        r = h.post("/api/v1/requests", json=big)
        assert r.status_code == 413 and "max_body_bytes" in r.json()["detail"]
        assert "200000" in r.json()["detail"]

        def chunks():  # no Content-Length: counted while it streams in
            for _ in range(40):
                yield b" " * 10_000

        r = h.post(
            "/api/v1/requests", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 413
        assert h.get("/api/v1/health").status_code == 200


@pytest.mark.integration  # child processes / a server of its own
def test_large_files_stream_to_storage(small) -> None:
    from tests.test_broker_api import cond_result

    with small.client("alice") as c:
        planner = _planner(c)
        res = c.call(
            "POST",
            "/api/v1/results",
            json={
                "tenant_id": planner["id"],
                "quantity": "conductivity",
                "method": "two_electrode",
                "parameters": _params(),
                "data": cond_result(),
            },
        )
    payload = bytes(range(256)) * 4000  # 1 MB: above max_body_bytes, below max_upload_bytes
    name = "Zyklus-Ü-数据.csv"
    with httpx.Client(base_url=small.url, timeout=60) as h:
        url = f"/api/v1/results/{res['id']}/files"
        r = h.put(url, params={"name": name}, content=payload, headers=small.headers("alice"))
        assert r.status_code == 201, r.text
        f = r.json()
        assert f["size"] == len(payload)
        got = h.get(f"/api/v1/files/{f['id']}", headers=small.headers("alice"))
        assert got.content == payload
        disp = got.headers["content-disposition"]
        assert "filename*=UTF-8''" in disp and "%E6%95%B0" in disp
        # another tenant user cannot attach files to alice's result
        r = h.put(url, params={"name": "x.csv"}, content=b"x", headers=small.headers("bob"))
        assert r.status_code == 403
        # a name with CR/LF is refused, streamed or inside the JSON
        r = h.put(url, params={"name": "a\r\nb.csv"}, content=b"x", headers=small.headers("alice"))
        assert r.status_code == 422
        # above max_upload_bytes: 413
        r = h.put(
            url,
            params={"name": "huge.bin"},
            content=b"\0" * 3_100_000,
            headers=small.headers("alice"),
        )
        assert r.status_code == 413 and "max_upload_bytes" in r.text
        body = {
            "tenant_id": planner["id"],
            "quantity": "conductivity",
            "method": "two_electrode",
            "parameters": _params(),
            "data": cond_result(0.5),
            "files": [{"name": "a\rb.txt", "content_base64": "eA=="}],
        }
        r = h.post("/api/v1/results", json=body, headers=small.headers("alice"))
        assert r.status_code == 422 and "files" in r.text


@pytest.mark.integration  # child processes / a server of its own
def test_bad_values_are_422_with_the_path(small) -> None:
    from tests.test_broker_api import cond_result

    with small.client("alice") as c:
        planner = _planner(c)
    base = {
        "tenant_id": planner["id"],
        "quantity": "conductivity",
        "method": "two_electrode",
        "parameters": _params(),
    }
    data = json.dumps(cond_result())
    hdr = {**small.headers("alice"), "Content-Type": "application/json"}
    with httpx.Client(base_url=small.url, timeout=30) as h:
        for token in ("NaN", "Infinity", "-Infinity"):
            body = json.dumps({**base, "data": "@@"}).replace('"@@"', data)
            body = body.replace('"values": [0.9]', f'"values": [{token}]')
            assert token in body
            r = h.post("/api/v1/results", content=body, headers=hdr)
            assert r.status_code == 422, r.text
            assert r.json()["detail"][0]["path"] == "$.data.conductivity.values[0]"
        # NUL and lone surrogates, in values and keys
        for bad in ('"\\u0000"', '"x\\ud800y"', '"\\udc00"'):
            body = json.dumps({**base, "data": "@@"}).replace('"@@"', data)
            body = body.replace('"two_electrode"', bad, 1)  # the method
            r = h.post("/api/v1/results", content=body, headers=hdr)
            assert r.status_code == 422, (bad, r.text)
            assert r.json()["detail"][0]["path"] == "$.method"
        r = h.post("/api/v1/requests", content='{"quantity": "c", "\\u0000": 1}', headers=hdr)
        assert r.status_code == 422
        # NUL in the query
        r = h.get("/api/v1/requests", params={"quantity": "a\x00b"}, headers=hdr)
        assert r.status_code == 422
        # deep nesting, moderately and absurdly
        for depth in (200, 100_000):
            body = "[" * depth + "]" * depth
            r = h.post("/api/v1/requests", content=body, headers=hdr)
            assert r.status_code == 422 and "nested" in r.text, depth
            r = h.post("/api/v1/sparql", content=body, headers=hdr)
            assert r.status_code == 422, depth
        # FINALES POST /requests/ with no methods, or a bad quantity
        req = {
            "quantity": "conductivity",
            "methods": [],
            "parameters": {},
            "tenant_uuid": planner["id"],
        }
        r = h.post("/requests/", json=req, headers=hdr)
        assert r.status_code == 422 and "methods" in r.text
        r = h.post(
            "/requests/",
            json={**req, "methods": ["two_electrode"], "quantity": "no such!"},
            headers=hdr,
        )
        assert r.status_code == 422 and "quantity" in r.text
        assert h.get("/api/v1/health").status_code == 200


@pytest.mark.integration  # child processes / a server of its own
def test_half_a_header_is_cut_off(small) -> None:
    host, port = small.url.removeprefix("http://").split(":")
    socks = []
    for _ in range(20):
        s = socket.create_connection((host, int(port)))
        s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        socks.append(s)
    t0 = time.monotonic()
    for s in socks:
        s.settimeout(10)
        assert s.recv(1024) == b""  # closed by the server
        s.close()
    assert time.monotonic() - t0 < 9
    # a silent connection (no byte at all) is cut off too
    s = socket.create_connection((host, int(port)))
    s.settimeout(10)
    assert s.recv(1024) == b""
    s.close()
    # normal keep-alive requests are unaffected
    with httpx.Client(base_url=small.url) as h:
        for _ in range(3):
            assert h.get("/api/v1/health").status_code == 200
            time.sleep(0.5)


@pytest.mark.integration  # child processes / a server of its own
def test_event_streams_are_capped(small) -> None:
    with contextlib.ExitStack() as stack:
        clients = {
            u: stack.enter_context(httpx.Client(base_url=small.url, timeout=30))
            for u in small.tokens
        }

        def open_stream(user):
            cm = clients[user].stream(
                "GET",
                "/api/v1/events/stream",
                params={"max_seconds": 30},
                headers=small.headers(user),
            )
            resp = cm.__enter__()
            if resp.status_code == 200:
                stack.callback(cm.__exit__, None, None, None)
                return resp
            resp.read()
            cm.__exit__(None, None, None)
            return resp

        a1, a2 = open_stream("alice"), open_stream("alice")
        assert a1.status_code == a2.status_code == 200
        a3 = open_stream("alice")
        assert a3.status_code == 429 and a3.headers["retry-after"]
        assert "per user" in a3.json()["detail"] or "this user" in a3.json()["detail"]
        assert open_stream("bob").status_code == 200
        o = open_stream("olga")
        assert o.status_code == 429 and "server" in o.json()["detail"]
        # both of alice's streams see a change made through the API
        for resp in (a1, a2):
            lines = resp.iter_lines()
            assert next(lines).startswith("retry")
    # closed streams give their slots back
    deadline = time.monotonic() + 15
    with httpx.Client(base_url=small.url, timeout=30) as h:
        while True:
            with h.stream(
                "GET",
                "/api/v1/events/stream",
                params={"max_seconds": 1},
                headers=small.headers("olga"),
            ) as r:
                if r.status_code == 200:
                    break
            assert time.monotonic() < deadline, "slots were not given back"
            time.sleep(0.5)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@pytest.mark.integration  # child processes / a server of its own
def test_concurrent_failed_logins_do_not_take_gigabytes(small) -> None:
    """60 concurrent failed logins: Argon2's 64 MiB per hash is taken at most
    ``hash_concurrency`` times at once."""
    import concurrent.futures

    pid = small.server.proc.pid
    before = _rss_mb(pid)

    def attempt(i: int) -> int:
        with httpx.Client(base_url=small.url, timeout=120) as h:
            return h.post(
                "/api/v1/auth/token", data={"username": "alice", "password": f"wrong-{i}"}
            ).status_code

    peak = before
    with concurrent.futures.ThreadPoolExecutor(60) as pool:
        futures = [pool.submit(attempt, i) for i in range(60)]
        while not all(f.done() for f in futures):
            peak = max(peak, _rss_mb(pid))
            time.sleep(0.05)
        codes = [f.result() for f in futures]
    assert all(c in (401, 429) for c in codes), codes
    assert peak - before < 400, (before, peak)
