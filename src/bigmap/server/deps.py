"""FastAPI dependencies: the broker of this app and the authenticated caller."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bigmap.server.notify import Notifier
from bigmap.store.access import Actor
from bigmap.store.broker import Broker
from bigmap.store.errors import Forbidden, NotFound, Unauthorized

_bearer = HTTPBearer(
    auto_error=False, description="a token from `bigmap token create` or /auth/token"
)


def get_broker(request: Request) -> Broker:
    return request.app.state.broker


def get_notifier(request: Request) -> Notifier:
    return request.app.state.notifier


def get_actor(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Actor:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("not authenticated: send 'Authorization: Bearer <token>'")
    return request.app.state.broker.actor_for_token(credentials.credentials)


def require_admin(actor: Annotated[Actor, Depends(get_actor)]) -> Actor:
    if not actor.is_admin:
        raise Forbidden("admins only")
    return actor


def parse_id(value: str, what: str) -> uuid.UUID:
    """A path id; one that is not a UUID is an unknown id (404)."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound(f"no {what} {value!r}") from None


BrokerDep = Annotated[Broker, Depends(get_broker)]
ActorDep = Annotated[Actor, Depends(get_actor)]
AdminDep = Annotated[Actor, Depends(require_admin)]
NotifierDep = Annotated[Notifier, Depends(get_notifier)]
