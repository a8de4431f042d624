"""Logins, tokens and users."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request

from bigmap.schemas.common import utcnow
from bigmap.schemas.identity import TokenCreate, TokenInfo, TokenOut, UserCreate, UserOut
from bigmap.server.convert import user_out
from bigmap.server.deps import ActorDep, AdminDep, BrokerDep, parse_id
from bigmap.store.errors import Forbidden, Invalid
from bigmap.store.services.identity import token_status

router = APIRouter(tags=["identity"])

LOGIN_RESPONSES: dict[int | str, dict] = {
    401: {"description": "incorrect username or password, or the user is disabled"},
    429: {
        "description": "too many failed logins for the user name or from the client "
        "address: wait the seconds of the Retry-After header"
    },
}


def login(broker, request: Request, username: str, password: str) -> TokenOut:
    address = request.client.host if request.client else None
    user = broker.authenticate(username, password, address)
    hours = request.app.state.settings.login_token_hours
    expires = utcnow() + timedelta(hours=hours)
    text, token = broker.issue_token(user.name, label="login", expires_at=expires)
    return TokenOut(access_token=text, token_type="bearer", expires_at=expires, id=token.id)


@router.post(
    "/auth/token",
    response_model=TokenOut,
    summary="Log in with a password, get a bearer token",
    responses=LOGIN_RESPONSES,
)
def token(
    broker: BrokerDep,
    request: Request,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
) -> TokenOut:
    return login(broker, request, username, password)


def token_info(token, user: str) -> TokenInfo:
    return TokenInfo(
        id=token.id,
        user=user,
        label=token.label,
        created_at=token.created_at,
        expires_at=token.expires_at,
        revoked_at=token.revoked_at,
        status=token_status(token),
    )


@router.get("/tokens", response_model=list[TokenInfo], summary="List tokens (never their text)")
def tokens(
    broker: BrokerDep,
    actor: ActorDep,
    user: Annotated[str | None, Query(description="whose tokens (admins only)")] = None,
    all_users: Annotated[bool, Query(description="everyone's tokens (admins only)")] = False,
    include_inactive: Annotated[
        bool, Query(description="also the expired and revoked ones")
    ] = False,
) -> list[TokenInfo]:
    if (all_users or (user is not None and user != actor.name)) and not actor.is_admin:
        raise Forbidden("only an admin can list another user's tokens")
    who = None if all_users else (user or actor.name)
    return [
        token_info(t, name)
        for t, name in broker.identity.list_tokens(user=who, include_inactive=include_inactive)
    ]


@router.post(
    "/tokens", response_model=TokenOut, status_code=201, summary="Make a new token for oneself"
)
def create_token(
    broker: BrokerDep, request: Request, actor: ActorDep, body: TokenCreate
) -> TokenOut:
    if body.user is not None and body.user != actor.name and not actor.is_admin:
        raise Forbidden("only an admin can make a token for another user")
    max_days = request.app.state.settings.token_max_days
    if body.days is not None and body.days > max_days:
        raise Invalid(f"a token may live at most {max_days:g} days", ["days"])
    text, tok = broker.issue_token(
        body.user or actor.name, label=body.label or "api", days=body.days
    )
    return TokenOut(access_token=text, expires_at=tok.expires_at, id=tok.id)


@router.delete(
    "/tokens/{token_id}",
    response_model=TokenInfo,
    summary="Revoke a token (one's own; any, for an admin)",
)
def revoke_token(broker: BrokerDep, actor: ActorDep, token_id: str) -> TokenInfo:
    tok = broker.revoke_token(parse_id(token_id, "token"), actor)
    owner = actor.name if tok.user_id == actor.user_id else broker.user_names().get(tok.user_id, "")
    return token_info(tok, owner)


@router.get("/users/me", response_model=UserOut)
def me(broker: BrokerDep, actor: ActorDep) -> UserOut:
    return user_out(broker.get_user(actor.name))


@router.get("/users", response_model=list[UserOut])
def users(broker: BrokerDep, _: AdminDep) -> list[UserOut]:
    return [user_out(u) for u in broker.list_users()]


@router.post("/users", response_model=UserOut, status_code=201)
def add_user(broker: BrokerDep, _: AdminDep, body: UserCreate) -> UserOut:
    return user_out(broker.create_user(body.name, body.password, body.role, body.groups))


@router.post(
    "/users/{name}/disable",
    response_model=UserOut,
    summary="Disable a user: its tokens are refused from the next call on",
)
def disable_user(broker: BrokerDep, admin: AdminDep, name: str) -> UserOut:
    if name == admin.name:
        raise Invalid("an admin cannot disable itself", ["name"])
    return user_out(broker.set_user(name, disabled=True))


@router.post("/users/{name}/enable", response_model=UserOut, summary="Enable a disabled user")
def enable_user(broker: BrokerDep, _: AdminDep, name: str) -> UserOut:
    return user_out(broker.set_user(name, disabled=False))
