"""Schemathesis over the whole API of a live broker (issue 12, item 5): every operation,
as an admin, a tenant user and an observer, with a bounded number of generated examples.
Asserts that no answer is a 5xx and that every status code is one the OpenAPI declares.

Runs on SQLite; on PostgreSQL too in CI (``CI=true``), as the bad inputs that break a
database are not the same on both."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import status_code_conformance

from bigmap.embedded import LocalBroker, temporary_postgres_database
from tests.conftest import IN_CI

pytestmark = pytest.mark.integration  # brokers of its own on SQLite and PostgreSQL

BACKENDS = ["sqlite", "postgresql"] if IN_CI else ["sqlite"]
USERS = {"admin": "admin", "alice": "tenant", "olga": "observer"}
EXAMPLES = 3  # per operation and user: ~130 operations x 3 users stay within minutes


@pytest.fixture(scope="module", params=BACKENDS)
def fuzzed(request, tmp_path_factory) -> Iterator[tuple[str, dict[str, str]]]:
    from bigmap.schemas.capability import finales_capabilities
    from bigmap.schemas.common import Role
    from bigmap.store.access import Actor

    with contextlib_db(request.param, tmp_path_factory) as url:
        server = LocalBroker(
            url,
            log_path=tmp_path_factory.mktemp("logs") / "broker.log",
            env={"BIGMAP_SPARQL_TIMEOUT_SECONDS": "5"},
        )
        tokens = {u: server.user(u, role, password=f"{u}-password-1") for u, role in USERS.items()}
        system = Actor(uuid.UUID(int=0), "setup", Role.admin)
        for spec in finales_capabilities():
            server.broker.add_capability(system, spec)
        server.start()
        try:
            yield server.url, tokens
        finally:
            server.close()


class contextlib_db:  # noqa: N801 - used as a context manager
    def __init__(self, backend: str, tmp_path_factory) -> None:
        self.backend, self.tmp = backend, tmp_path_factory
        self._pg = None

    def __enter__(self) -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{self.tmp.mktemp('fuzz') / 'bigmap.db'}"
        from tests.conftest import _require_postgres

        _require_postgres()
        self._pg = temporary_postgres_database()
        return self._pg.__enter__()

    def __exit__(self, *exc) -> None:
        if self._pg is not None:
            self._pg.__exit__(*exc)


def _bounded(case) -> None:
    """Long polls and streams end at once: the fuzzer tests inputs, not waiting."""
    query = case.query or {}
    for key in ("wait", "timeout"):
        if key in query:
            query[key] = 0
    if "max_seconds" in query:
        query["max_seconds"] = 1


def test_no_5xx_and_declared_status_codes(fuzzed) -> None:
    url, tokens = fuzzed
    doc = httpx.get(f"{url}/openapi.json", timeout=120).json()
    schema = schemathesis.openapi.from_dict(doc)
    failures: list[str] = []
    operations = 0
    statuses: Counter[int] = Counter()

    def run(case) -> None:
        _bounded(case)
        for user in USERS:
            try:
                response = case.call(
                    base_url=url, headers={"Authorization": f"Bearer {tokens[user]}"}, timeout=30
                )
                statuses[response.status_code] += 1
                case.validate_response(
                    response, checks=[not_a_server_error, status_code_conformance]
                )
            except AssertionError as exc:  # schemathesis' failures (a FailureGroup)
                failures.append(f"{user}: {case.method} {case.formatted_path}: {exc}"[:2000])
                return

    for result in schema.get_all_operations():
        op = result.ok()
        operations += 1
        test = settings(
            max_examples=EXAMPLES,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )(given(case=op.as_strategy())(run))
        test()
    assert operations > 80
    # the fuzzer got through: successes, refusals by role, and refused inputs
    assert statuses[200] > 50 and statuses[403] > 10 and statuses[422] > 50, statuses
    assert not failures, "\n\n".join(failures[:15])
