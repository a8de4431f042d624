"""A real broker in a child process on a free loopback port, and throw-away databases:
what ``make demo``, the tests and the benchmarks start."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

PG_ADMIN_URL = os.environ.get(
    "BIGMAP_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def temporary_postgres_database(admin_url: str = PG_ADMIN_URL) -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards; yields its SQLAlchemy URL."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"bigmap_tmp_{uuid.uuid4().hex[:12]}"
    admin = make_url(admin_url)
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(drivername="postgresql+psycopg", database=name).render_as_string(
            hide_password=False
        )
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_available(admin_url: str = PG_ADMIN_URL) -> bool:
    try:
        import psycopg
        from sqlalchemy.engine import make_url

        conninfo = (
            make_url(admin_url).set(drivername="postgresql").render_as_string(hide_password=False)
        )
        with psycopg.connect(conninfo, connect_timeout=3):
            return True
    except Exception:
        return False


class LocalBroker:
    """``bigmap serve`` in a child process, with helpers to make users and tokens."""

    def __init__(
        self,
        db_url: str | None = None,
        *,
        port: int | None = None,
        workers: int = 1,
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
    ) -> None:
        self._tmp = None
        if db_url is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="bigmap-")
            db_url = f"sqlite:///{Path(self._tmp.name) / 'bigmap.db'}"
        self.db_url = db_url
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.env = {**os.environ, **(env or {}), "BIGMAP_DATABASE_URL": db_url}
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self._broker = None

    # the in-process broker on the same database, for setting up users and tokens
    @property
    def broker(self):
        if self._broker is None:
            from bigmap.config import Settings
            from bigmap.store.broker import Broker
            from bigmap.store.db import Database, upgrade
            from bigmap.store.services.identity import IdentityConfig

            upgrade(self.db_url)
            settings = Settings(database_url=self.db_url)
            self._broker = Broker(
                Database(self.db_url, sqlite_synchronous=settings.sqlite_synchronous),
                secret=settings.secret,
                identity=IdentityConfig.from_settings(settings),
            )
        return self._broker

    def start(self, timeout: float = 60.0) -> LocalBroker:
        self.broker  # noqa: B018 - migrate before the server starts
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        cmd = [
            sys.executable,
            "-m",
            "bigmap.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--db",
            self.db_url,
            "--workers",
            str(self.workers),
            "--upgrade",
        ]
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the broker exited with code {self.proc.returncode}; see {self.log_path}"
                )
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the broker did not come up on {self.url} within {timeout} s")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: the server dies mid-flight, as in a crash."""
        self.stop(signal.SIGKILL)

    def close(self) -> None:
        self.stop()
        if self._broker is not None:
            self._broker.db.dispose()
            self._broker = None
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def user(
        self,
        name: str,
        role: str = "tenant",
        *,
        password: str | None = None,
        groups: list[str] | None = None,
    ) -> str:
        """Create a user (if missing) and return a new token for it."""
        from bigmap.schemas.common import Role
        from bigmap.store.errors import Conflict

        with contextlib.suppress(Conflict):
            self.broker.create_user(name, password or secrets.token_urlsafe(12), Role(role), groups)
        return self.broker.issue_token(name, label="embedded")[0]

    def client(self, token: str, **kwargs):
        from bigmap.client import BrokerClient

        return BrokerClient(self.url, token, **kwargs)
