"""``/v1/devices``: a user's phones (FCM registration tokens)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from noticecrawler.api import queries
from noticecrawler.api.auth import State, User, user_id
from noticecrawler.api.models import Device, DeviceIn
from noticecrawler.api.problems import Problem

router = APIRouter(prefix="/v1/devices", tags=["devices"])


@router.post("", status_code=201, response_model=Device)
async def register(body: DeviceIn, caller: User, state: State, response: Response) -> Any:
    """Register a token, or refresh it. A token registered by another user before moves to
    this one: a token is one row, whoever registered it last owns it."""
    async with state.pool.connection() as conn:
        row = await queries.register_device(conn, user_id(caller), body.token, body.platform)
    if not row.pop("created"):
        response.status_code = 200
    return row


@router.get("", response_model=list[Device])
async def list_devices(caller: User, state: State) -> Any:
    async with state.pool.connection() as conn:
        return await queries.user_devices(conn, user_id(caller))


@router.delete("/{token}", status_code=204)
async def delete(token: str, caller: User, state: State) -> Response:
    async with state.pool.connection() as conn, conn.transaction():
        owner = await queries.device_owner(conn, token)
        if owner is None:
            raise Problem(404, "no device with this token", kind="unknown-device")
        if owner != caller.user_id:
            raise Problem(403, "this device belongs to another user", kind="not-yours")
        await queries.delete_device(conn, owner, token)
    return Response(status_code=204)
