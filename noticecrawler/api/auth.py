"""Bearer-token authentication and the per-token rate limit, as FastAPI dependencies.

``Authorization: Bearer <token>`` on every endpoint but ``/healthz``; the operator page also
accepts the admin token from its login cookie. A token is looked up by its SHA-256 only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from noticecrawler.api import queries, tokens
from noticecrawler.api.problems import Problem
from noticecrawler.api.ratelimit import retry_after
from noticecrawler.api.state import AppState, Principal, app_state, state_dependency

#: the operator page's login cookie (holds the admin token; HttpOnly, SameSite=Strict)
COOKIE = "nc_admin"

bearer = HTTPBearer(auto_error=False, description="a token from `noticecrawler users token`")
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="noticecrawler"'}


async def verify(state: AppState, token: str) -> Principal | None:
    digest = tokens.digest(token)
    known, principal = state.cached(digest)
    if known:
        return principal
    row = await state.read(lambda conn: queries.token_principal(conn, digest))
    principal = None if row is None else Principal(row["id"], row["user_id"], row["admin"])
    state.remember(digest, principal)
    return principal


def bearer_token(request: Request) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (the scheme in any case), or None: what
    ``HTTPBearer(auto_error=False)`` reads, without a dependency to solve."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    token = credentials.credentials if credentials else None
    if token is None and request.url.path.startswith("/admin"):
        token = request.cookies.get(COOKIE)
    return await principal_for(app_state(request), token)


async def principal_for(state: AppState, token: str | None) -> Principal:
    """Who ``token`` belongs to, within the token's rate limit; else the 401 or 429 Problem.
    The hot read endpoints call it directly (a plain call costs less than FastAPI's dependency
    solving: docs/api.md, "Where a request's time goes")."""
    if not token:
        raise Problem(401, "no bearer token (Authorization: Bearer …)", headers=_CHALLENGE)
    principal = await verify(state, token)
    if principal is None:
        raise Problem(401, "unknown or revoked token", headers=_CHALLENGE)
    wait = state.limiter.take(principal.token_id)
    if wait:
        raise Problem(
            429,
            f"rate limit of this token: {state.config.rate_limit:g} requests/s "
            f"(burst {state.config.rate_burst})",
            kind="rate-limited",
            headers={"Retry-After": retry_after(wait)},
        )
    return principal


async def user_principal(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
    if principal.user_id is None:
        raise Problem(403, "this admin token belongs to no user; use a user's token")
    return principal


async def admin_principal(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
    if not principal.admin:
        raise Problem(403, "admin endpoints need an admin token")
    return principal


Caller = Annotated[Principal, Depends(authenticate)]
User = Annotated[Principal, Depends(user_principal)]
Admin = Annotated[Principal, Depends(admin_principal)]
State = Annotated[AppState, Depends(state_dependency)]


def user_id(principal: Principal) -> int:
    assert principal.user_id is not None
    return principal.user_id
