"""Shared fixtures: real brokers (``bigmap serve`` in a child process on a free loopback
port) on real SQLite and PostgreSQL databases.

``live`` runs every test that uses it once per backend. PostgreSQL tests need the server
at 127.0.0.1:5432; they skip without it, except in CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pytest

from bigmap.client import BrokerClient
from bigmap.embedded import LocalBroker, postgres_available, temporary_postgres_database
from bigmap.schemas.common import Role
from bigmap.store.access import Actor

# Test data kept in the repository, each folder with its licence and source note:
# FINALES' example requests, results and tenants (MIT), real cycler exports (cellpy's test data, MIT).
DATA = Path(__file__).resolve().parent / "data"
FINALES = DATA / "finales"
CYCLER_FILES = DATA / "cycler_files"
# FINALES' 13 capability files, as they ship inside bigmap
FINALES_CAPABILITIES = Path(str(resources.files("bigmap.schemas") / "finales" / "capabilities"))
REPO = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() == "true"


def data_files(folder: Path, pattern: str, expected: int) -> list[Path]:
    """The files of a test-data folder matching ``pattern`` (recursively), sorted; a loop over
    them must not pass on a folder that lost files, so their number is checked first."""
    files = sorted(folder.rglob(pattern))
    assert len(files) == expected, (
        f"{folder} has {len(files)} {pattern} files, the tests expect {expected}"
    )
    return files


def _require_postgres() -> None:
    if not postgres_available():
        if IN_CI:
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is required in CI")
        pytest.skip("PostgreSQL is not available")


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh database per backend for the session."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'bigmap.db'}"
    else:
        _require_postgres()
        with temporary_postgres_database() as url:
            yield url


@pytest.fixture
def fresh_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database for one test; parametrize indirectly with "sqlite"/"postgresql"."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'bigmap.db'}"
    else:
        _require_postgres()
        with temporary_postgres_database() as url:
            yield url


@dataclass
class Live:
    """A running broker with users: ``admin`` (admin), ``alice`` and ``bob`` (maintainer
    role: tenants that may define capabilities), ``mallory`` (tenant role, no groups),
    ``olga`` (observer); the FINALES capabilities registered."""

    server: LocalBroker
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    def client(self, user: str = "alice", **kwargs) -> BrokerClient:
        return BrokerClient(self.server.url, self.tokens[user], **kwargs)

    def headers(self, user: str = "alice") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}


@pytest.fixture(scope="session")
def live(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A broker per backend (tests using it run on SQLite and on PostgreSQL)."""
    yield from _live(db_url, tmp_path_factory)


@pytest.fixture(scope="session")
def live_one(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """One broker on SQLite, for tests of tenants and planners (not of the store)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite-one') / 'bigmap.db'}"
    yield from _live(url, tmp_path_factory)


def _live(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    from bigmap.schemas.capability import finales_capabilities

    log = tmp_path_factory.mktemp("logs") / "broker.log"
    # every client of the tests is 127.0.0.1: Schemathesis' failed logins on this shared
    # server must not back off the password logins of later tests (the back-off itself is
    # tested on servers of its own, test_identity)
    env = {"BIGMAP_SWEEP_SECONDS": "0.2", "BIGMAP_LOGIN_ADDRESS_FREE_FAILURES": "1000000"}
    server = LocalBroker(db_url, log_path=log, env=env)
    tokens = {
        "admin": server.user("admin", "admin", password="admin-password"),
        "alice": server.user("alice", "maintainer", password="alice-password", groups=["lab-a"]),
        "bob": server.user("bob", "maintainer", password="bob-password", groups=["lab-b"]),
        "mallory": server.user("mallory", "tenant", password="mallory-password"),
        "olga": server.user("olga", "observer", password="olga-password"),
    }
    system = Actor(uuid.UUID(int=0), "setup", Role.admin)
    for spec in finales_capabilities():
        server.broker.add_capability(system, spec)
    server.start()
    try:
        yield Live(server, tokens)
    finally:
        server.close()


@contextlib.contextmanager
def cli_worker(
    live: Live,
    name: str,
    user: str = "bob",
    timeout: float = 90,
    *,
    target: str | None = None,
    cwd: Path = REPO,
) -> Iterator[dict]:
    """``bigmap worker TARGET`` (default: NAME) as a user runs it, in ``cwd`` (a child process
    with the broker's URL and a token in its environment); yields its tenant NAME once
    registered and alive, stops it with SIGTERM and checks that it exits cleanly."""
    env = {**os.environ, "BIGMAP_BROKER_URL": live.url, "BIGMAP_TOKEN": live.tokens[user]}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bigmap.cli", "worker", target or name, "--poll", "1"],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        with live.client(user) as c:
            deadline = time.monotonic() + timeout
            while not (mine := [t for t in c.tenants() if t["name"] == name and t["alive"]]):
                assert proc.poll() is None, proc.communicate()[0]
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} did not register")
                time.sleep(0.2)
        yield mine[0]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out


# ----------------------------------------------------------------------------- test tiers
#
# Every test is in exactly one tier (docs/architecture.md, "Tests"):
#   unit        no broker process, no database server, no browser: `make test-fast`
#   integration a live broker (``live``, ``live_one``), a database (``db_url``,
#               ``fresh_db_url``), or child processes (the CLI, workers, SiLA servers)
#   browser     the dashboard in Chromium (``page``, ``browser``)
# A module or a test may set its tier itself (``pytestmark = pytest.mark.integration``);
# otherwise the fixtures it uses decide. Two flags go on top of the tier: ``postgres`` (runs
# on the PostgreSQL server: a "postgresql" parameter, as ``db_url``/``fresh_db_url`` have) and
# ``slow`` (long-running science, set by hand). `make test-fast` is ``-m "unit and not slow"``.

TIERS = ("unit", "integration", "browser")
BROWSER_FIXTURES = {"page", "browser"}
INTEGRATION_FIXTURES = {"live", "live_one", "db_url", "fresh_db_url"}


def tier_of(item: pytest.Item) -> str:
    """The tier of a collected test: its own marker, else what its fixtures need."""
    own = [t for t in TIERS if item.get_closest_marker(t) is not None]
    if len(own) > 1:
        raise pytest.UsageError(f"{item.nodeid} is marked with several tiers: {own}")
    if own:
        return own[0]
    fixtures = set(getattr(item, "fixturenames", ()))
    if fixtures & BROWSER_FIXTURES:
        return "browser"
    if fixtures & INTEGRATION_FIXTURES:
        return "integration"
    return "unit"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        tier = tier_of(item)
        if item.get_closest_marker(tier) is None:
            item.add_marker(getattr(pytest.mark, tier))
        callspec = getattr(item, "callspec", None)
        params = callspec.params if callspec is not None else {}
        if any(isinstance(v, str) and v == "postgresql" for v in params.values()):
            item.add_marker(pytest.mark.postgres)
        if tier == "unit" and item.get_closest_marker("postgres") is not None:
            raise pytest.UsageError(f"{item.nodeid} needs PostgreSQL: it cannot be a unit test")
