"""``/v1/notifications``: the user's recent pushes and what became of each."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from noticecrawler.api import queries
from noticecrawler.api.auth import State, User, user_id
from noticecrawler.api.models import Notification

router = APIRouter(prefix="/v1/notifications", tags=["notifications"])


@router.get("", response_model=list[Notification])
async def notifications(
    caller: User, state: State, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> Any:
    """Newest first: one row per (post, device) push, with its status (queued, sending,
    retry, sent, failed, unregistered, invalid), attempts and error."""
    async with state.pool.connection() as conn:
        return await queries.user_notifications(conn, user_id(caller), limit)
