"""Password hashes (Argon2id) and signed tokens (HS256 JWT with the server's secret)."""

from __future__ import annotations

import secrets
import threading
import uuid
from datetime import datetime
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
ISSUER = "bigmap"
# Argon2 takes ~64 MiB per hash in flight: at most this many at once (the others wait), so
# that 60 concurrent logins cost 2 x 64 MiB, not 60 x. Set by the server (hash_concurrency).
_hash_slots = threading.BoundedSemaphore(2)


def set_hash_concurrency(n: int) -> None:
    global _hash_slots
    _hash_slots = threading.BoundedSemaphore(max(1, n))


def hash_password(password: str) -> str:
    with _hash_slots:
        return _hasher.hash(password)


_dummy_hash: str | None = None


def dummy_hash() -> str:
    """A hash of a random password, made once with the same parameters as real ones: what a
    login for an unknown user (or one that cannot log in) is checked against, so that it
    costs the same work as a login for a known user and its time tells nothing."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash(secrets.token_urlsafe(32))
    return _dummy_hash


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``. A missing or unusable hash (an unknown
    user, an imported identity) is checked against the dummy hash and never matches: the
    hasher runs on every path."""
    usable = password_hash is not None and password_hash.startswith("$argon2")
    try:
        with _hash_slots:
            ok = _hasher.verify(password_hash if usable else dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    return ok and usable


def new_secret() -> str:
    return secrets.token_urlsafe(48)


def encode_token(
    secret: str, *, token_id: uuid.UUID, user_id: uuid.UUID, expires_at: datetime | None
) -> str:
    if not secret:
        raise ValueError("refusing to sign a token with an empty secret")
    claims: dict[str, Any] = {"iss": ISSUER, "sub": str(user_id), "jti": str(token_id)}
    if expires_at is not None:
        claims["exp"] = int(expires_at.timestamp())
    return jwt.encode(claims, secret, algorithm="HS256")


def decode_token(secret: str, token: str, *, verify_exp: bool = True) -> dict[str, Any]:
    """The claims of a validly signed token; raises ``jwt.InvalidTokenError`` otherwise.
    With ``verify_exp=False`` an expired token's claims come back (the caller checks the
    expiry itself, to say so clearly)."""
    return jwt.decode(
        token,
        secret,
        algorithms=["HS256"],
        issuer=ISSUER,
        options={"require": ["sub", "jti"], "verify_exp": verify_exp},
    )
