"""The unit of work: the one SQLAlchemy session (one transaction) of one API call.

Every service reads and writes through ``UnitOfWork.read()`` / ``UnitOfWork.write()``. The
first of them opened on a thread of control (a context, in ``contextvars`` terms: each HTTP
request's worker thread has its own) opens the transaction; every read or write opened
inside it, by any service, joins it. So an operation that needs several services is one
transaction when its caller opens the unit first::

    with broker.uow.write():
        camp, _ = broker.campaigns.create_campaign(actor, body)
        broker.queue.create_request(actor, RequestCreate(..., campaign_id=camp.id))
    # both rows are committed together, or neither is

A write inside a write is a SAVEPOINT: if the inner step fails, only its own changes are
undone and the exception propagates (the caller may catch it and go on, or let the whole
unit roll back). A read inside a write reads through the write's session and sees its
uncommitted changes. A write cannot be opened inside a read-only unit (a programming
error: open the outer unit with ``write()``).

Caches that services keep across calls (capabilities, providers, tenants, tokens) must
hold committed state only: they refresh through ``committed()``, a read of its own outside
any unit, and whatever they remember of a unit's own reads is dropped again by
``on_rollback`` if the unit is undone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from bigmap.store.db import Database


@dataclass
class _Level:
    """One open transaction or savepoint of a unit."""

    session: Session
    writable: bool
    on_rollback: list[Callable[[], None]] = field(default_factory=list)


class UnitOfWork:
    """Transactions on one database, shared by every service built on it."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.sqlite = db.sqlite
        self.dialect = db.engine.dialect.name
        self._stack: ContextVar[tuple[_Level, ...]] = ContextVar(
            f"bigmap_uow_{id(self)}", default=()
        )

    @property
    def active(self) -> bool:
        """Whether a unit is open in the current context."""
        return bool(self._stack.get())

    @property
    def session(self) -> Session | None:
        """The open unit's session, or None."""
        stack = self._stack.get()
        return stack[-1].session if stack else None

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction (SQLite: the database's write lock, taken at once), or a
        savepoint of the open one. Commits at the end of the outermost, rolls back (to the
        savepoint) on any exception."""
        stack = self._stack.get()
        if stack:
            outer = stack[-1]
            if not outer.writable:
                raise RuntimeError("a write inside a read-only unit of work: open it with write()")
            level = _Level(outer.session, True)
            token = self._stack.set((*stack, level))
            try:
                with outer.session.begin_nested():
                    yield outer.session
            except BaseException:
                self._rolled_back(level)
                raise
            finally:
                self._stack.reset(token)
            outer.on_rollback.extend(level.on_rollback)  # undone if the outer unit is
            return
        with self.db.write() as session:
            level = _Level(session, True)
            token = self._stack.set((level,))
            try:
                yield session
            except BaseException:
                self._rolled_back(level)
                raise
            finally:
                self._stack.reset(token)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """The open unit's session, or a read transaction of its own (no write lock)."""
        stack = self._stack.get()
        if stack:
            yield stack[-1].session
            return
        with self.db.read() as session:
            token = self._stack.set((_Level(session, False),))
            try:
                yield session
            finally:
                self._stack.reset(token)

    @contextmanager
    def committed(self) -> Iterator[Session]:
        """A read of committed state in a session of its own, whether or not a unit is open
        (for caches shared between calls)."""
        with self.db.read() as session:
            yield session

    def on_rollback(self, undo: Callable[[], None]) -> None:
        """Call ``undo`` if the open unit (or the savepoint it was registered in) is rolled
        back; forget it once the outermost unit commits. Without a unit: nothing to undo."""
        stack = self._stack.get()
        if stack:
            stack[-1].on_rollback.append(undo)

    @staticmethod
    def _rolled_back(level: _Level) -> None:
        for undo in level.on_rollback:
            undo()
        level.on_rollback.clear()
