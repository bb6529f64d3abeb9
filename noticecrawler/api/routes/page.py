"""``/admin/``: the operator page. Signed in with the admin token (a form that sets an HttpOnly,
SameSite=Strict cookie), or with ``Authorization: Bearer``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from noticecrawler.api import health, page, queries
from noticecrawler.api.auth import (
    COOKIE,
    State,
    admin_principal,
    authenticate,
    bearer,
    verify,
)
from noticecrawler.api.problems import Problem
from noticecrawler.api.routes.admin import queue_crawl
from noticecrawler.api.state import Principal

router = APIRouter(prefix="/admin", include_in_schema=False)
DAYS = 14


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body())[:10_000].decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(body).items()}


def _same_origin(request: Request) -> None:
    """A form post must come from this page (the cookie is SameSite=Strict too). Hosts are
    compared, not schemes: behind a proxy that terminates TLS the page is https, the API http."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        raise Problem(403, "cross-origin form post refused")


async def _page_admin(request: Request) -> Principal | None:
    """The admin signed in (cookie or bearer), or None: the page then asks to sign in."""
    try:
        return await admin_principal(await authenticate(request, await bearer(request)))
    except Problem as e:
        if e.status in (401, 403):
            return None
        raise


PageAdmin = Annotated[Principal | None, Depends(_page_admin)]


@router.get("/login", response_class=HTMLResponse)
async def login_form() -> HTMLResponse:
    return HTMLResponse(page.login())


@router.post("/login")
async def login(request: Request, state: State) -> Response:
    _same_origin(request)
    token = (await _form(request)).get("token", "").strip()
    principal = await verify(state, token) if token else None
    if principal is None or not principal.admin:
        return HTMLResponse(page.login("not an admin token"), status_code=401)
    response = RedirectResponse("/admin/", status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        path="/admin",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
async def logout() -> Response:
    response = RedirectResponse("/admin/login", status_code=303)
    response.delete_cookie(COOKIE, path="/admin")
    return response


@router.get("/", response_class=HTMLResponse)
async def dashboard(
    request: Request, admin: PageAdmin, state: State, msg: str = "", fail: bool = False
) -> Response:
    if admin is None:
        return RedirectResponse("/admin/login", status_code=303)
    report, last_runs = await health.board_health(state.config)
    labels = page.days(datetime.now(UTC).date(), DAYS)
    index = {d: i for i, d in enumerate(labels)}
    per_day: dict[str, list[int]] = {}
    async with state.pool.connection() as conn:
        for row in await queries.posts_per_day(conn, DAYS):
            if row["day"] in index:
                per_day.setdefault(row["board"], [0] * DAYS)[index[row["day"]]] = row["posts"]
        outbox = await queries.outbox_depth(conn)
        outcomes = await queries.push_outcomes(conn, 24)
    html = page.dashboard(report, last_runs, per_day, labels, outbox, outcomes, msg, fail)
    return HTMLResponse(html)


@router.post("/boards/{board}/crawl")
async def crawl(board: str, request: Request, admin: PageAdmin, state: State) -> Response:
    if admin is None:
        return RedirectResponse("/admin/login", status_code=303)
    _same_origin(request)
    try:
        task_id = await queue_crawl(state, board)
        message, fail = f"crawl of {board} queued (task {task_id})", ""
    except Problem as e:
        message, fail = e.detail, "&fail=1"
    return RedirectResponse(f"/admin/?msg={quote(message)}{fail}", status_code=303)
