"""Tokens and users."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request

from bigmap.schemas.common import utcnow
from bigmap.schemas.identity import TokenOut, UserCreate, UserOut
from bigmap.server.convert import user_out
from bigmap.server.deps import ActorDep, AdminDep, BrokerDep

router = APIRouter(tags=["identity"])


def login(broker, request: Request, username: str, password: str) -> TokenOut:
    user = broker.authenticate(username, password)
    hours = request.app.state.settings.login_token_hours
    expires = utcnow() + timedelta(hours=hours)
    text, _ = broker.issue_token(user.name, label="login", expires_at=expires)
    return TokenOut(access_token=text, token_type="bearer", expires_at=expires)


@router.post(
    "/auth/token", response_model=TokenOut, summary="Log in with a password, get a bearer token"
)
def token(
    broker: BrokerDep,
    request: Request,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
) -> TokenOut:
    return login(broker, request, username, password)


@router.get("/users/me", response_model=UserOut)
def me(broker: BrokerDep, actor: ActorDep) -> UserOut:
    return user_out(broker.get_user(actor.name))


@router.get("/users", response_model=list[UserOut])
def users(broker: BrokerDep, _: AdminDep) -> list[UserOut]:
    return [user_out(u) for u in broker.list_users()]


@router.post("/users", response_model=UserOut, status_code=201)
def add_user(broker: BrokerDep, _: AdminDep, body: UserCreate) -> UserOut:
    return user_out(broker.create_user(body.name, body.password, body.role, body.groups))
