"""Which boards are due: each board's latest slot (dispatch/schedule.py) against the slot it was
last claimed for, kept in one Redis hash. Claiming is atomic, so two ``check_due`` tasks (two
ticks, two workers) never check one board for the same slot."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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


def claim_due(client: Any, slots: Mapping[str, float]) -> list[str]:
    """Claim every board of ``slots`` (board -> its latest slot, seconds) whose slot it was not
    claimed for yet; returns those boards (the caller checks them now)."""
    if not slots:
        return []
    args: list[Any] = []
    for board, slot in slots.items():
        args += [board, int(slot * 1000)]
    due = client.eval(_CLAIM, 1, CLAIMED, *args)
    return [d.decode() if isinstance(d, bytes) else str(d) for d in due or []]
