"""Identity: users, their passwords and roles, login, and the bearer tokens that stand for
them (``Actor``)."""

from __future__ import annotations

import time
import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bigmap.schemas.common import Role
from bigmap.store import models as m
from bigmap.store.access import Actor
from bigmap.store.errors import Conflict, Invalid, NotFound, Unauthorized
from bigmap.store.security import (
    decode_token,
    encode_token,
    hash_password,
    new_secret,
    verify_password,
)
from bigmap.store.services.uow import UnitOfWork


class Identity:
    """Users, logins and tokens."""

    def __init__(self, uow: UnitOfWork, *, secret: str = "") -> None:
        self.uow = uow
        self._secret = secret or None
        self._actors: dict[str, tuple[float, Actor]] = {}

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

    def create_user(
        self, name: str, password: str, role: Role = Role.tenant, groups: list[str] | None = None
    ) -> m.User:
        if len(password) < 8:
            raise Invalid("a password needs at least 8 characters", ["password"])
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
        with self.uow.write() as s:
            user = self.user_by_name(s, name)
            if password is not None:
                user.password_hash = hash_password(password)
            if role is not None:
                user.role = Role(role).value
            if groups is not None:
                user.groups = sorted(set(groups))
            if disabled is not None:
                user.disabled = disabled
            self._actors.clear()
            return user

    def user_by_name(self, s: Session, name: str) -> m.User:
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

    def authenticate(self, name: str, password: str) -> m.User:
        with self.uow.read() as s:
            user = s.scalar(select(m.User).where(m.User.name == name))
        if user is None or user.disabled or not verify_password(user.password_hash, password):
            raise Unauthorized("incorrect username or password")
        return user

    def issue_token(
        self, user_name: str, *, label: str = "", expires_at: datetime | None = None
    ) -> tuple[str, m.Token]:
        secret = self.secret  # before the write lock: it may have to be created
        with self.uow.write() as s:
            user = self.user_by_name(s, user_name)
            token = m.Token(user_id=user.id, label=label, expires_at=expires_at)
            s.add(token)
            s.flush()
            text = encode_token(secret, token_id=token.id, user_id=user.id, expires_at=expires_at)
            return text, token

    def revoke_token(self, token_id: uuid.UUID) -> None:
        with self.uow.write() as s:
            token = s.get(m.Token, token_id)
            if token is None:
                raise NotFound(f"no token {token_id}")
            token.revoked = True
        self._actors.clear()

    def actor_for_token(self, token: str) -> Actor:
        """The caller a bearer token stands for; ``Unauthorized`` if it is not valid."""
        now = time.monotonic()
        hit = self._actors.get(token)
        if hit is not None and now - hit[0] < 30.0:
            return hit[1]
        try:
            claims = decode_token(self.secret, token)
            token_id = uuid.UUID(claims["jti"])
            user_id = uuid.UUID(claims["sub"])
        except Exception as exc:  # any malformed or badly signed token
            raise Unauthorized(f"invalid token: {exc}") from None
        with self.uow.read() as s:
            row = s.get(m.Token, token_id)
            user = s.get(m.User, user_id)
            if (
                row is None
                or row.revoked
                or user is None
                or user.disabled
                or row.user_id != user.id
            ):
                raise Unauthorized("token revoked or user disabled")
            actor = Actor(user.id, user.name, Role(user.role), frozenset(user.groups or []))
        if len(self._actors) > 10000:
            self._actors.clear()
        self._actors[token] = (now, actor)
        return actor

    def actor_for_user(self, name: str) -> Actor:
        user = self.get_user(name)
        return Actor(user.id, user.name, Role(user.role), frozenset(user.groups or []))

    def user_names(self) -> dict[uuid.UUID, str]:
        with self.uow.read() as s:
            return dict(s.execute(select(m.User.id, m.User.name)).all())
