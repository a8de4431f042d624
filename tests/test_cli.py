"""The ``bigmap`` command: users, tokens, capabilities, tenants, migrations."""

from __future__ import annotations

import subprocess
import sys
import uuid

import httpx
import pytest

from bigmap.embedded import LocalBroker
from bigmap.store.db import head_revision
from tests.conftest import FINALES, FINALES_CAPABILITIES, REPO


def bigmap(
    *args: str, db: str, check: bool = True, input: str | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bigmap.cli", *args, "--db", db],
        capture_output=True,
        text=True,
        check=check,
        input=input,
    )


@pytest.mark.parametrize("fresh_db_url", ["sqlite", "postgresql"], indirect=True)
def test_operator_workflow(fresh_db_url, tmp_path):
    db = fresh_db_url
    assert "head" in bigmap("db", "upgrade", db=db).stdout
    assert bigmap("db", "current", db=db).stdout.strip() == head_revision()
    bigmap("user", "add", "alice", "--password", "alice-password", db=db)
    bigmap("user", "add", "root", "--password", "root-password", "--role", "admin", db=db)
    dup = bigmap("user", "add", "alice", "--password", "another-password", db=db, check=False)
    assert dup.returncode == 2 and "exists" in dup.stderr
    short = bigmap("user", "add", "carl", "--password", "short", db=db, check=False)
    assert short.returncode == 2 and "12 characters" in short.stderr
    role = bigmap(
        "user", "add", "dora", "--password", "dora-password", "--role", "king", db=db, check=False
    )
    assert role.returncode == 2
    assert "13" not in bigmap("capability", "list", db=db).stdout
    added = bigmap("capability", "add", str(FINALES_CAPABILITIES), db=db).stdout
    assert added.count("added") == 13
    assert (
        bigmap("capability", "add", str(FINALES_CAPABILITIES), db=db).stdout.count("present") == 13
    )
    tid = bigmap(
        "tenant",
        "add",
        str(FINALES / "examples/tenants/conductivity/ASAB.json"),
        "--owner",
        "alice",
        db=db,
    ).stdout.strip()
    assert uuid.UUID(tid)
    bad = bigmap(
        "tenant",
        "add",
        str(FINALES / "examples/tenants/conductivity/ASAB.json"),
        "--owner",
        "nobody",
        db=db,
        check=False,
    )
    assert bad.returncode == 2 and "no user" in bad.stderr
    bigmap("user", "add", "bob", "--password", "bob-password", db=db)
    # roles: maintainer is the right to define capabilities (docs/security.md)
    assert bigmap("user", "role", "bob", db=db).stdout.strip() == "bob: tenant"
    assert bigmap("user", "role", "bob", "maintainer", db=db).stdout.strip() == "bob: maintainer"
    assert "bob: maintainer" in bigmap("user", "role", "bob", db=db).stdout
    wrong = bigmap("user", "role", "bob", "king", db=db, check=False)
    assert wrong.returncode == 2 and "maintainer" in wrong.stderr
    assert bigmap("user", "role", "nobody", "tenant", db=db, check=False).returncode == 2
    # a folder of tenant files: a line each; a broken file stops the lot before any is added
    broken = tmp_path / "broken.json"
    broken.write_text('{"name": 3}')
    refused = bigmap(
        "tenant",
        "add",
        str(FINALES / "examples/tenants"),
        str(broken),
        "--owner",
        "bob",
        db=db,
        check=False,
    )
    assert refused.returncode == 2 and "broken.json" in refused.stderr
    assert "bob" not in bigmap("tenant", "list", db=db).stdout
    lines = bigmap(
        "tenant", "add", str(FINALES / "examples/tenants"), "--owner", "bob", db=db
    ).stdout.splitlines()
    assert len(lines) == 6 and all(uuid.UUID(line.split()[0]) for line in lines)
    assert tid not in {line.split()[0] for line in lines}  # bob's own, not alice's
    token = bigmap("token", "create", "alice", db=db).stdout.strip()
    with LocalBroker(db) as server:
        r = httpx.get(
            f"{server.url}/api/v1/tenants/{tid}", headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 200 and r.json()["owner"] == "alice"


@pytest.mark.integration  # child processes / a server of its own
def test_serve_refuses_an_unmigrated_postgres_and_missing_files(tmp_path):
    missing = bigmap(
        "capability",
        "add",
        str(tmp_path / "nope.json"),
        db=f"sqlite:///{tmp_path / 'b.db'}",
        check=False,
    )
    assert missing.returncode == 2 and "nope.json" in missing.stderr
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{ not json")
    out = bigmap(
        "capability", "add", str(bad_json), db=f"sqlite:///{tmp_path / 'b.db'}", check=False
    )
    assert out.returncode == 2


@pytest.mark.integration  # child processes / a server of its own
def test_worker_refuses_unknown_tenant_and_missing_token(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "bigmap.cli", "worker", "no.such.module", "--token", "x"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and "no tenant" in out.stderr
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "bigmap.cli", "worker", "tests.sample_tenant"],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(REPO),
    )
    assert out.returncode == 2 and "no token" in out.stderr
