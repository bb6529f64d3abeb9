"""The mutable state of the demo server: its boards, behind one lock."""

from __future__ import annotations

import json
import os
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from noticecrawler.demo.content import PINNED_IDS, SEOUL, DemoPost, generated_title, make_seed

T = TypeVar("T")

Clock = Callable[[], datetime]


def seoul_now() -> datetime:
    return datetime.now(SEOUL)


@dataclass
class Board:
    name: str
    created: datetime
    #: HTTP ``Last-Modified`` (UTC, whole seconds); moves forward on every change
    last_modified: datetime
    posts: dict[int, DemoPost] = field(default_factory=dict)
    #: seconds a list page waits before answering (0: off)
    stall: float = 0.0
    #: list pages use a layout the ``table.board-list`` selectors do not match
    broken: bool = False
    added: int = 0

    def seed(self) -> None:
        self.posts = {post.no: post for post in make_seed(self.name, self.created)}
        self.stall, self.broken, self.added = 0.0, False, 0

    def regular(self) -> list[DemoPost]:
        """Regular posts, newest first."""
        posts = (post for post in self.posts.values() if not post.pinned)
        return sorted(posts, key=lambda post: (post.published, post.no), reverse=True)

    def pinned(self) -> list[DemoPost]:
        return sorted((post for post in self.posts.values() if post.pinned), key=lambda p: p.no)

    def next_no(self, pinned: bool, floor: int = 0) -> int:
        """The number of the next post: above every post of its kind, and above ``floor`` (the
        highest number this board ever gave out, remembered across restarts)."""
        numbers = [post.no for post in self.posts.values() if post.pinned == pinned]
        return max(*numbers, floor, PINNED_IDS[0] - 1 if pinned else 0) + 1


class BoardStore:
    """Boards by name, created on first use; every method takes the lock.

    With a ``state_file``, the highest post number each board gave out is kept there, so a
    restarted server never numbers an added post like one added before (a crawler that stored
    that number would take the new post for an edit of the old one)."""

    def __init__(self, clock: Clock = seoul_now, state_file: Path | None = None) -> None:
        self.clock = clock
        self.state_file = state_file
        self._lock = threading.Lock()
        self._boards: dict[str, Board] = {}
        self._high: dict[str, int] = self._load_high()

    def _load_high(self) -> dict[str, int]:
        if self.state_file is None or not self.state_file.exists():
            return {}
        try:
            return {str(k): int(v) for k, v in json.loads(self.state_file.read_text()).items()}
        except (ValueError, AttributeError):
            return {}

    def _save_high(self) -> None:
        if self.state_file is None:
            return
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._high, sort_keys=True))
        os.replace(tmp, self.state_file)

    def _board(self, name: str) -> Board:
        board = self._boards.get(name)
        if board is None:
            now = self.clock()
            board = Board(name, now, _whole_second(now))
            board.seed()
            self._boards[name] = board
        return board

    def _touch(self, board: Board) -> None:
        # strictly later than before, so If-Modified-Since never hides a change made in the
        # same second as the previous one
        now = _whole_second(self.clock())
        board.last_modified = max(now, board.last_modified + timedelta(seconds=1))

    def read(self, name: str, reader: Callable[[Board], T]) -> T:
        """``reader(board)`` with the lock held (keep it short: no sleeping, no I/O)."""
        with self._lock:
            return reader(self._board(name))

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._boards)

    def add(
        self,
        name: str,
        title: str | None = None,
        category: str | None = None,
        pinned: bool = False,
        body: str | None = None,
        author: str | None = None,
    ) -> int:
        with self._lock:
            board = self._board(name)
            now = self.clock().astimezone(SEOUL).replace(microsecond=0)
            key = f"{name}:pinned" if pinned else name
            no = board.next_no(pinned, self._high.get(key, 0))
            self._high[key] = no
            self._save_high()
            if title is None:
                rng = random.Random(f"noticecrawler-demo:{name}:added:{board.added}")
                title = generated_title(rng, now.year)
            board.added += 1
            post = DemoPost(
                no=no,
                title=title,
                category=category or "일반",
                author=author or "관리자",
                published=now,
                body=body
                if body is not None
                else f"{title}\n자세한 내용은 담당 부서로 문의 바랍니다.",
                hits=0,
                pinned=pinned,
            )
            board.posts[no] = post
            self._touch(board)
            return no

    def edit(
        self, name: str, no: int, title: str | None = None, body: str | None = None
    ) -> DemoPost:
        """Change a post's title and/or body; ``KeyError`` if the board has no post ``no``."""
        with self._lock:
            board = self._board(name)
            post = board.posts[no]
            post = replace(
                post,
                title=post.title if title is None else title,
                body=post.body if body is None else body,
            )
            board.posts[no] = post
            self._touch(board)
            return post

    def set_stall(self, name: str, seconds: float) -> None:
        with self._lock:
            self._board(name).stall = max(0.0, seconds)

    def set_broken(self, name: str, broken: bool) -> None:
        with self._lock:
            board = self._board(name)
            board.broken = broken
            self._touch(board)

    def reset(self, name: str) -> None:
        """Back to the seed content (dated from the board's creation), no stall, normal layout."""
        with self._lock:
            board = self._board(name)
            board.seed()
            self._touch(board)


def _whole_second(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


class RequestLog:
    """Every request served (but those to ``/_admin/``), for tests to count and inspect."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict[str, object]] = []

    def append(self, entry: dict[str, object]) -> None:
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[dict[str, object]]:
        with self._lock:
            return [dict(entry) for entry in self._entries]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def state_file(home: str | Path) -> Path:
    """Where a demo server started by a command keeps its post numbers (NOTICECRAWLER_HOME)."""
    return Path(home) / "demo-boards.json"
