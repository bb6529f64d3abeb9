"""``/v1/subscriptions``: the user's keyword subscriptions, read and replaced as a whole."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from noticecrawler.api import queries
from noticecrawler.api.auth import State, User, user_id
from noticecrawler.api.config import ApiConfig
from noticecrawler.api.models import Subscriptions
from noticecrawler.api.problems import invalid_input

router = APIRouter(prefix="/v1/subscriptions", tags=["subscriptions"])


def _words(field: str, words: list[str], cfg: ApiConfig) -> list[str]:
    out: list[str] = []
    for i, raw in enumerate(words):
        word = " ".join(raw.split())
        if not word:
            raise invalid_input(f"{field}.{i}", "an empty keyword")
        if len(word) > cfg.max_keyword_length:
            raise invalid_input(
                f"{field}.{i}",
                f"{len(word)} characters; a keyword has at most {cfg.max_keyword_length}",
            )
        if word not in out:
            out.append(word)
    return out


def checked(body: Subscriptions, cfg: ApiConfig) -> list[tuple[list[str], list[str], list[str]]]:
    """The subscriptions, cleaned (spaces collapsed, duplicates dropped), or a 422 that names
    the first bad field."""
    if len(body.subscriptions) > cfg.max_subscriptions:
        raise invalid_input(
            "subscriptions",
            f"{len(body.subscriptions)} subscriptions; at most {cfg.max_subscriptions} per user",
        )
    total = sum(len(s.keywords) + len(s.negative_keywords) for s in body.subscriptions)
    if total > cfg.max_keywords:
        raise invalid_input(
            "subscriptions", f"{total} keywords; at most {cfg.max_keywords} per user in all"
        )
    known = {b.name for b in cfg.boards}
    out = []
    for i, sub in enumerate(body.subscriptions):
        where = f"subscriptions.{i}"
        keywords = _words(f"{where}.keywords", sub.keywords, cfg)
        negative = _words(f"{where}.negative_keywords", sub.negative_keywords, cfg)
        for j, board in enumerate(sub.boards):
            if board not in known:
                raise invalid_input(f"{where}.boards.{j}", f"no board `{board}`")
        if not keywords and not sub.boards:
            raise invalid_input(where, "needs keywords, or boards to follow whole")
        out.append((keywords, negative, list(dict.fromkeys(sub.boards))))
    return out


def _shape(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "subscriptions": [
            {
                "keywords": r["keywords"],
                "negative_keywords": r["negative_keywords"],
                "boards": r["boards"] or [],
            }
            for r in rows
        ]
    }


@router.get("", response_model=Subscriptions)
async def get_subscriptions(caller: User, state: State) -> Any:
    async with state.pool.connection() as conn:
        return _shape(await queries.user_subscriptions(conn, user_id(caller)))


@router.put("", response_model=Subscriptions)
async def put_subscriptions(body: Subscriptions, caller: User, state: State) -> Any:
    """Replace all of the user's subscriptions (an empty list removes them). Limits: see
    docs/api.md; a body over a limit is refused whole with 422 and nothing changes."""
    clean = checked(body, state.config)
    async with state.pool.connection() as conn, conn.transaction():
        await queries.replace_subscriptions(conn, user_id(caller), clean)
        return _shape(await queries.user_subscriptions(conn, user_id(caller)))
