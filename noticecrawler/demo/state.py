"""The mutable state of the demo server: its boards, behind one lock."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
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

    def next_no(self, pinned: bool) -> int:
        numbers = [post.no for post in self.posts.values() if post.pinned == pinned]
        return max(numbers, default=PINNED_IDS[0] - 1 if pinned else 0) + 1


class BoardStore:
    """Boards by name, created on first use; every method takes the lock."""

    def __init__(self, clock: Clock = seoul_now) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._boards: dict[str, Board] = {}

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
            no = board.next_no(pinned)
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
