"""Which boards are due: each board's latest slot (dispatch/schedule.py) against the slot it was
last claimed for, kept in one Redis hash. Claiming is atomic, so two ``check_due`` tasks (two
ticks, two workers) never check one board for the same slot. The claimed boards' crawl locks
(:mod:`noticecrawler.boardlock`'s keys and rules) are taken in the same script and released
together in another: two round trips per batch, whatever its size. (The scripts name the lock
keys they build: one Redis, not a cluster, as for every lock of the project.)"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from noticecrawler.boardlock import PREFIX as LOCK_PREFIX

#: board -> the slot (ms since the epoch) it was last claimed for
CLAIMED = "noticecrawler:check-due:claimed"

# ARGV: board, slot, board, slot, ... Returns the boards whose slot is newer than their claim,
# claimed for it. A board seen for the first time is claimed for its current slot without being
# due (as beat treats a new entry: its first check is at its next slot).
_CLAIM = """
local due = {}
for i = 1, #ARGV, 2 do
    local prev = redis.call('HGET', KEYS[1], ARGV[i])
    if not prev then
        redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    elseif tonumber(prev) < tonumber(ARGV[i + 1]) then
        redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
        due[#due + 1] = ARGV[i]
    end
end
return due
"""

# ARGV: lock prefix, token, expiry (ms), boards... Each board's lock is taken when it is free or
# already this token's (boardlock._ACQUIRE); returns the boards now held.
_LOCK = """
local held = {}
for i = 4, #ARGV do
    local key = ARGV[1] .. ARGV[i]
    local holder = redis.call('GET', key)
    if (not holder) or holder == ARGV[2] then
        redis.call('SET', key, ARGV[2], 'PX', ARGV[3])
        held[#held + 1] = ARGV[i]
    end
end
return held
"""

# ARGV: lock prefix, token, boards... (boardlock._RELEASE for each)
_UNLOCK = """
for i = 3, #ARGV do
    local key = ARGV[1] .. ARGV[i]
    if redis.call('GET', key) == ARGV[2] then redis.call('DEL', key) end
end
return 0
"""


def claim_due(client: Any, slots: Mapping[str, float]) -> list[str]:
    """Claim every board of ``slots`` (board -> its latest slot, seconds) whose slot it was not
    claimed for yet; returns those boards (the caller checks them now)."""
    if not slots:
        return []
    args: list[Any] = []
    for board, slot in slots.items():
        args += [board, int(slot * 1000)]
    return _names(client.eval(_CLAIM, 1, CLAIMED, *args))


def _names(values: Any) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values or []]


def lock_boards(client: Any, boards: list[str], token: str, expire: float) -> list[str]:
    """Take the crawl locks of ``boards`` for ``token``; returns the boards it holds (the others
    are being crawled)."""
    if not boards:
        return []
    return _names(client.eval(_LOCK, 0, LOCK_PREFIX, token, int(expire * 1000), *boards))


def unlock_boards(client: Any, boards: list[str], token: str) -> None:
    if boards:
        client.eval(_UNLOCK, 0, LOCK_PREFIX, token, *boards)
