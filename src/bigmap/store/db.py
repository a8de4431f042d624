"""Database engines and migrations: SQLite (WAL, foreign keys) by default, PostgreSQL for
shared use (``postgresql+psycopg://...``)."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger("bigmap.store")


class DatabaseError(RuntimeError):
    """The database cannot be used as it is (wrong URL, not migrated, ...)."""


def normalize_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` as psycopg 3 URLs, and a plain file path
    (``bigmap.db``, ``~/data/b.sqlite``) as the SQLite database in that file."""
    if "://" not in url and url.strip():
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def is_sqlite(url: str) -> bool:
    return make_url(normalize_url(url)).get_backend_name() == "sqlite"


def private_sqlite_file(path: Path) -> None:
    """Make the SQLite database file readable by its owner only (0600): it holds the token
    signing secret and the password hashes. Directories created for it are 0700; an
    existing file of ours that others could read is tightened (with its -wal and -shm
    files, which SQLite creates with the database file's mode)."""
    path = path.expanduser()
    missing = []
    parent = path.parent
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            directory.mkdir(mode=0o700)
        os.chmod(directory, 0o700)  # the umask may have taken bits we asked for
    if os.name != "posix":
        return
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            st = file.stat()
        except FileNotFoundError:
            continue
        if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) & 0o077:
            log.warning("%s was readable by others: made it owner-only (0600)", file)
            os.chmod(file, 0o600)


def make_engine(url: str, *, sqlite_synchronous: str = "FULL", pool_size: int = 20) -> Engine:
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if db and db != ":memory:" and not db.startswith("file:"):
            private_sqlite_file(Path(db))
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 60},
            pool_size=pool_size,
            max_overflow=40,
        )
        sync = sqlite_synchronous.upper()
        if sync not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise DatabaseError(f"BIGMAP_SQLITE_SYNCHRONOUS must be NORMAL or FULL, not {sync!r}")

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _rec: Any) -> None:
            # Let SQLAlchemy, not the driver, decide when transactions begin.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA synchronous={sync}")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            # Writers take the lock up front (no deadlock on lock upgrade); readers don't.
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, pool_size=pool_size, max_overflow=40, pool_pre_ping=True)
    raise DatabaseError(
        f"unsupported database {parsed.get_backend_name()!r}: use SQLite or PostgreSQL"
    )


class Database:
    """An engine and its sessions. ``write()`` opens a transaction that takes the write lock
    at once on SQLite; ``read()`` one that does not."""

    def __init__(self, url: str, *, sqlite_synchronous: str = "FULL") -> None:
        self.url = normalize_url(url)
        self.engine = make_engine(self.url, sqlite_synchronous=sqlite_synchronous)
        self.sqlite = self.engine.dialect.name == "sqlite"
        self._sessions = sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self._write_lock = threading.Lock()

    @contextmanager
    def write(self) -> Iterator[Session]:
        if not self.sqlite:
            with self._sessions() as session:
                try:
                    yield session
                    session.commit()
                except BaseException:
                    session.rollback()
                    raise
            return
        # SQLite has one writer at a time. Queue this process's writers on a lock (woken at
        # once) rather than on SQLite's busy handler (which sleeps with back-off); other
        # processes still wait on the busy handler.
        with self._write_lock, self._sessions() as session:
            session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def read(self) -> Iterator[Session]:
        # closing (not rolling back) ends the transaction and keeps the loaded objects usable
        with self._sessions() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


# ----------------------------------------------------------------------------- migrations


def _alembic_config(url: str) -> Any:
    from alembic.config import Config

    script_location = str(resources.files("bigmap.store") / "migrations")
    cfg = Config()
    cfg.set_main_option("script_location", script_location)
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (creating it if it is a new SQLite file)."""
    from alembic import command

    make_engine(url).dispose()  # creates the SQLite directory
    command.upgrade(_alembic_config(url), revision)


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config("sqlite://")).get_current_head()


def current_revision(engine: Engine) -> str | None:
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def ensure_current(db: Database) -> None:
    """Raise ``DatabaseError`` unless the database is migrated to the head revision."""
    current = current_revision(db.engine)
    head = head_revision()
    if current != head:
        tables = inspect(db.engine).get_table_names()
        hint = "a new database" if not tables else f"revision {current}"
        raise DatabaseError(
            f"the database at {db.engine.url.render_as_string(hide_password=True)} is {hint}, "
            f"not {head}: run `bigmap db upgrade --db URL`"
        )
