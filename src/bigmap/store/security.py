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


def verify_password(password_hash: str, password: str) -> bool:
    try:
        with _hash_slots:
            return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


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


def decode_token(secret: str, token: str) -> dict[str, Any]:
    """The claims of a valid token; raises ``jwt.InvalidTokenError`` otherwise."""
    return jwt.decode(
        token, secret, algorithms=["HS256"], issuer=ISSUER, options={"require": ["sub", "jti"]}
    )
