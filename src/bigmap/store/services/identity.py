"""Identity: users, passwords, logins with back-off, tokens that expire and can be revoked.

Everything that decides who a caller is lives here; the broker hands it its database. No
answer is cached longer than one call: a token revoked or a user disabled (by this process,
another server process or the command line) is refused on the next call.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
import uuid
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Uuid, bindparam, delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from bigmap.schemas.common import Role, utcnow
from bigmap.store import models as m
from bigmap.store.access import Actor
from bigmap.store.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    TooManyRequests,
    Unauthorized,
)
from bigmap.store.passwords import check_password
from bigmap.store.security import (
    decode_token,
    encode_token,
    hash_password,
    new_secret,
    verify_password,
)
from bigmap.store.services.uow import UnitOfWork

log = logging.getLogger("bigmap.store")

_TOKENS = m.Token.__table__
_USERS = m.User.__table__
_CHECK = select(
    _TOKENS.c.revoked,
    _TOKENS.c.revoked_at,
    _TOKENS.c.expires_at,
    _USERS.c.name,
    _USERS.c.role,
    _USERS.c.groups,
    _USERS.c.disabled,
    _USERS.c.imported_from,
).join(_USERS, _USERS.c.id == _TOKENS.c.user_id)
_CHECK = _CHECK.where(
    _TOKENS.c.id == bindparam("token_id", type_=Uuid()),
    _USERS.c.id == bindparam("user_id", type_=Uuid()),
)


@dataclass(frozen=True)
class IdentityConfig:
    """The identity settings (``BIGMAP_*``, see ``bigmap.config.Settings``)."""

    login_token_hours: float = 24.0
    token_days: float = 90.0
    token_max_days: float = 366.0
    password_min_length: int = 12
    login_free_failures: int = 5
    login_address_free_failures: int = 20
    login_backoff_seconds: float = 1.0
    login_backoff_max_seconds: float = 900.0
    login_failure_window_seconds: float = 86400.0

    @classmethod
    def from_settings(cls, settings: Any) -> IdentityConfig:
        return cls(
            **{f.name: getattr(settings, f.name) for f in fields(cls) if hasattr(settings, f.name)}
        )


def token_status(token: m.Token, now: datetime | None = None) -> str:
    """``revoked``, ``expired`` or ``active``."""
    if token.revoked:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= (now or utcnow()):
        return "expired"
    return "active"


def _storable(text: str) -> bool:
    """Whether both databases can store ``text`` (PostgreSQL refuses NUL and lone
    surrogates); a user name that is not cannot exist."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _key(kind: str, value: str) -> str:
    """The back-off counter's key of a user name or a client address (long or unstorable
    ones hashed)."""
    if len(value) > 200 or not _storable(value):
        value = "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{kind}:{value}"


class Identity:
    """Users, logins and tokens on one database."""

    def __init__(
        self, uow: UnitOfWork, *, secret: str = "", config: IdentityConfig | None = None
    ) -> None:
        self.uow = uow
        self.config = config or IdentityConfig()
        self._secret = secret or None
        # signature checks of tokens seen before (the token text -> its ids); a token's
        # expiry, revocation and user are read from the database on every call
        self._verified: dict[str, tuple[uuid.UUID, uuid.UUID, int | None]] = {}
        self._lock = threading.Lock()
        self._purged_at = -math.inf
        self._check: tuple | None = None

    # ------------------------------------------------------------------ secret

    @property
    def secret(self) -> str:
        if self._secret is None:
            self._secret = self._load_or_create_secret()
        return self._secret

    def _load_or_create_secret(self) -> str:
        with self.uow.write() as s:
            row = s.get(m.ServerSetting, "token_secret")
            if row is None:
                row = m.ServerSetting(key="token_secret", value=new_secret())
                s.add(row)
            return row.value

    # ------------------------------------------------------------------ users

    def check_password(self, password: str, username: str = "") -> None:
        check_password(password, username=username, min_length=self.config.password_min_length)

    def create_user(
        self, name: str, password: str, role: Role = Role.tenant, groups: list[str] | None = None
    ) -> m.User:
        self.check_password(password, name)
        with self.uow.write() as s:
            if s.scalar(select(m.User).where(m.User.name == name)) is not None:
                raise Conflict(f"user {name!r} exists")
            user = m.User(
                name=name,
                password_hash=hash_password(password),
                role=Role(role).value,
                groups=sorted(set(groups or [])),
            )
            s.add(user)
            s.flush()
            return user

    def set_user(
        self,
        name: str,
        *,
        password: str | None = None,
        role: Role | None = None,
        groups: list[str] | None = None,
        disabled: bool | None = None,
    ) -> m.User:
        if password is not None:
            self.check_password(password, name)
        with self.uow.write() as s:
            user = self.user_by_name(s, name)
            if (password is not None or disabled is False) and user.imported_from:
                raise Forbidden(
                    f"user {name!r} is a foreign identity imported from {user.imported_from}: "
                    "it cannot log in"
                )
            if password is not None:
                user.password_hash = hash_password(password)
            if role is not None:
                user.role = Role(role).value
            if groups is not None:
                user.groups = sorted(set(groups))
            if disabled is not None:
                user.disabled = disabled
            return user

    @staticmethod
    def user_by_name(s: Session, name: str) -> m.User:
        user = s.scalar(select(m.User).where(m.User.name == name))
        if user is None:
            raise NotFound(f"no user {name!r}")
        return user

    def get_user(self, name: str) -> m.User:
        with self.uow.read() as s:
            return self.user_by_name(s, name)

    def list_users(self) -> list[m.User]:
        with self.uow.read() as s:
            return list(s.scalars(select(m.User).order_by(m.User.name)))

    def actor_for_user(self, name: str) -> Actor:
        user = self.get_user(name)
        return Actor(user.id, user.name, Role(user.role), frozenset(user.groups or []))

    # ------------------------------------------------------------------ logins

    def authenticate(self, name: str, password: str, address: str | None = None) -> m.User:
        """The user whose name and password these are. Every attempt is counted before the
        password is checked (so that concurrent guesses are counted too); after too many
        failures for the name or the address, ``TooManyRequests`` without checking. An
        unknown user costs the same hashing work as a known one."""
        keys = self._start_attempt(name, address)
        user = None
        if _storable(name):
            with self.uow.read() as s:
                user = s.scalar(select(m.User).where(m.User.name == name))
        can_log_in = user is not None and not user.imported_from
        ok = verify_password(user.password_hash if can_log_in else None, password)
        if not ok or user is None:
            self._login_failed(keys)
            raise Unauthorized("incorrect username or password")
        if user.disabled:
            self._login_failed(keys)
            raise Unauthorized(
                f"user {name!r} is disabled: an admin can enable it (bigmap user enable {name})"
            )
        self._login_succeeded(keys)
        return user

    def _frees(self) -> dict[str, int]:
        cfg = self.config
        return {
            "user": max(1, cfg.login_free_failures),
            "addr": max(1, cfg.login_address_free_failures),
        }

    def _start_attempt(self, name: str, address: str | None) -> list[str]:
        now = utcnow()
        keys = [_key("user", name)] + ([_key("addr", address)] if address else [])
        frees = self._frees()
        self._purge(now)
        with self.uow.write() as s:
            insert = postgresql.insert if s.bind.dialect.name == "postgresql" else sqlite.insert
            rows = []
            for key in keys:
                s.execute(
                    insert(m.LoginFailure)
                    .values(key=key, failures=0, last_failed_at=now)
                    .on_conflict_do_nothing(index_elements=["key"])
                )
                rows.append(
                    s.execute(
                        select(m.LoginFailure).where(m.LoginFailure.key == key).with_for_update()
                    ).scalar_one()
                )
            waits = [
                (row.locked_until - now).total_seconds()
                for row in rows
                if row.locked_until is not None and row.locked_until > now
            ]
            if waits:
                wait = math.ceil(max(waits))
                raise TooManyRequests(
                    f"too many failed logins for this user name or from this address: "
                    f"try again in {wait} s",
                    wait,
                )
            for row in rows:
                free = frees[row.key.split(":", 1)[0]]
                row.failures += 1
                row.last_failed_at = now
                if row.failures >= free:
                    row.locked_until = now + timedelta(seconds=self._wait(row.failures, free))
        return keys

    def _purge(self, now: datetime) -> None:
        """Forget counts older than the window (at most once a minute per process, in a
        transaction of its own that skips rows others hold, so it never blocks a login)."""
        if time.monotonic() - self._purged_at < 60.0:
            return
        self._purged_at = time.monotonic()
        window = timedelta(seconds=self.config.login_failure_window_seconds)
        try:
            with self.uow.write() as s:
                stale = (
                    select(m.LoginFailure.key)
                    .where(
                        m.LoginFailure.last_failed_at < now - window,
                        or_(
                            m.LoginFailure.locked_until.is_(None),
                            m.LoginFailure.locked_until < now,
                        ),
                    )
                    .limit(1000)
                )
                if s.bind.dialect.name == "postgresql":
                    stale = stale.with_for_update(skip_locked=True)
                s.execute(delete(m.LoginFailure).where(m.LoginFailure.key.in_(stale)))
        except DBAPIError as exc:  # a purge can wait for the next login
            log.warning("could not forget old login failures: %s", exc)

    def _wait(self, failures: int, free: int) -> float:
        doublings = min(failures - free, 40)
        cfg = self.config
        return min(cfg.login_backoff_max_seconds, cfg.login_backoff_seconds * 2**doublings)

    def _login_failed(self, keys: list[str]) -> None:
        """The attempt failed: a lock it started runs from now (the end of its check), not
        from when the attempt began, however long the hashing took."""
        frees = self._frees()
        now = utcnow()
        with self.uow.write() as s:
            for key in keys:
                row = s.execute(
                    select(m.LoginFailure).where(m.LoginFailure.key == key).with_for_update()
                ).scalar_one_or_none()
                free = frees[key.split(":", 1)[0]]
                if row is None or row.failures < free:
                    continue
                until = now + timedelta(seconds=self._wait(row.failures, free))
                if row.locked_until is None or row.locked_until < until:
                    row.locked_until = until

    def _login_succeeded(self, keys: list[str]) -> None:
        """A success resets the user's count and takes this attempt off the address's."""
        frees = self._frees()
        with self.uow.write() as s:
            s.execute(delete(m.LoginFailure).where(m.LoginFailure.key == keys[0]))
            for key in keys[1:]:
                row = s.execute(
                    select(m.LoginFailure).where(m.LoginFailure.key == key).with_for_update()
                ).scalar_one_or_none()
                if row is None:
                    continue
                row.failures -= 1
                if row.failures <= 0:
                    s.delete(row)
                elif row.failures < frees["addr"]:
                    row.locked_until = None

    # ------------------------------------------------------------------ tokens

    def issue_token(
        self,
        user_name: str,
        *,
        label: str = "",
        expires_at: datetime | None = None,
        days: float | None = None,
    ) -> tuple[str, m.Token]:
        """A new signed token; it expires at ``expires_at``, or after ``days``, or after the
        configured ``token_days``: every token expires."""
        if expires_at is None:
            life = days if days is not None else self.config.token_days
            if not life > 0:
                raise Invalid("a token's life must be a positive number of days", ["days"])
            expires_at = utcnow() + timedelta(days=life)
        secret = self.secret  # before the write lock: it may have to be created
        with self.uow.write() as s:
            user = self.user_by_name(s, user_name)
            if user.imported_from:
                raise Forbidden(
                    f"user {user_name!r} is a foreign identity imported from "
                    f"{user.imported_from}: it cannot have tokens"
                )
            token = m.Token(user_id=user.id, label=label, expires_at=expires_at)
            s.add(token)
            s.flush()
            text = encode_token(secret, token_id=token.id, user_id=user.id, expires_at=expires_at)
            return text, token

    def list_tokens(
        self, *, user: str | None = None, include_inactive: bool = False
    ) -> list[tuple[m.Token, str]]:
        """Tokens (newest first) with their user's name: one user's, or everyone's."""
        now = utcnow()
        with self.uow.read() as s:
            q = select(m.Token, m.User.name).join(m.User, m.User.id == m.Token.user_id)
            if user is not None:
                q = q.where(m.User.id == self.user_by_name(s, user).id)
            if not include_inactive:
                q = q.where(
                    m.Token.revoked.is_(False),
                    or_(m.Token.expires_at.is_(None), m.Token.expires_at > now),
                )
            return [(t, n) for t, n in s.execute(q.order_by(m.Token.created_at.desc())).all()]

    def revoke_token(self, token_id: uuid.UUID, actor: Actor | None = None) -> m.Token:
        """Revoke a token: any token for an admin or the operator (``actor`` None), one's own
        for others (someone else's is a 404, as if it did not exist)."""
        with self.uow.write() as s:
            token = s.get(m.Token, token_id)
            if token is None or (
                actor is not None and not actor.is_admin and token.user_id != actor.user_id
            ):
                raise NotFound(f"no token {token_id}")
            if not token.revoked:
                token.revoked = True
                token.revoked_at = utcnow()
            return token

    def _token_check(self, token_id: uuid.UUID, user_id: uuid.UUID) -> Any:
        """The token's and its user's row, read on every call. It runs on every
        authenticated call, so it is one prepared statement on a pooled DBAPI connection
        (an ORM session costs some 15 times more), its values decoded by the columns' own
        SQLAlchemy types, on SQLite as on PostgreSQL."""
        if self._check is None:
            dialect = self.uow.db.engine.dialect
            compiled = _CHECK.compile(dialect=dialect)
            to_db = Uuid().dialect_impl(dialect).bind_processor(dialect) or (lambda v: v)
            from_db = [
                c.type.dialect_impl(dialect).result_processor(dialect, None) or (lambda v: v)
                for c in _CHECK.selected_columns
            ]
            names = [c.name for c in _CHECK.selected_columns]
            self._check = (str(compiled), compiled.positiontup, to_db, from_db, names)
        sql, positions, to_db, from_db, names = self._check
        params = {"token_id": to_db(token_id), "user_id": to_db(user_id)}
        raw = self.uow.db.engine.raw_connection()
        try:
            driver = raw.driver_connection
            # one statement, no transaction around it (SQLite's driver is in autocommit
            # already, see db.py; psycopg's autocommit is a client-side switch, put back)
            autocommit = getattr(driver, "autocommit", None)
            if autocommit is False:
                driver.autocommit = True
            try:
                cursor = raw.cursor()
                cursor.execute(sql, [params[k] for k in positions] if positions else params)
                found = cursor.fetchone()
                cursor.close()
            finally:
                if autocommit is False:
                    driver.autocommit = False
        finally:
            raw.close()  # back to the pool
        if found is None:
            return None
        return SimpleNamespace(**{n: f(v) for n, f, v in zip(names, from_db, found, strict=True)})

    def actor_for_token(self, token: str) -> Actor:
        """The caller a bearer token stands for; ``Unauthorized``, with the reason, if the
        token is malformed, badly signed, unknown, revoked or expired, or its user disabled."""
        hit = self._verified.get(token)
        if hit is None:
            try:
                claims = decode_token(self.secret, token, verify_exp=False)
                hit = (uuid.UUID(claims["jti"]), uuid.UUID(claims["sub"]), claims.get("exp"))
            except Exception as exc:  # any malformed or badly signed token
                raise Unauthorized(f"invalid token: {exc}") from None
            with self._lock:
                if len(self._verified) > 10000:
                    self._verified.clear()
                self._verified[token] = hit
        token_id, user_id, exp = hit
        now = utcnow()
        row = self._token_check(token_id, user_id)
        if row is None:
            raise Unauthorized("unknown token: log in again, or ask for a new token")
        if row.revoked:
            when = f" at {row.revoked_at:%Y-%m-%d %H:%M:%S} UTC" if row.revoked_at else ""
            raise Unauthorized(
                f"token {token_id} was revoked{when}: log in again, or ask for a new token"
            )
        expires = row.expires_at
        if exp is not None and (expires is None or exp < expires.timestamp()):
            expires = datetime.fromtimestamp(exp, tz=now.tzinfo)
        if expires is not None and expires <= now:
            raise Unauthorized(
                f"token {token_id} expired at {expires:%Y-%m-%d %H:%M:%S} UTC: log in again, "
                "or ask for a new token (bigmap token create)"
            )
        if row.disabled:
            raise Unauthorized(
                f"user {row.name!r} is disabled: an admin can enable it "
                f"(bigmap user enable {row.name})"
            )
        if row.imported_from:
            raise Unauthorized(f"user {row.name!r} is a foreign identity: it cannot log in")
        return Actor(user_id, row.name, Role(row.role), frozenset(row.groups or []))

    def user_names(self) -> dict[uuid.UUID, str]:
        with self.uow.read() as s:
            return dict(s.execute(select(m.User.id, m.User.name)).all())
