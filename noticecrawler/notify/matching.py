"""Which keyword subscriptions a post matches.

All keywords and negative keywords of all subscriptions go into ONE Aho–Corasick automaton
(pyahocorasick), so matching a post costs one pass over its normalized text plus a little work
per keyword that occurs in it, whatever the number of subscriptions.

Rules, applied to ``normalize(title) + "\\n" + normalize(body)``:

* A subscription matches when one of its keywords occurs, none of its negative keywords occurs,
  and its board filter (``boards``; None or empty = every board) lets the post's board through.
* A subscription with no keyword but with boards matches every post of those boards (negative
  keywords still apply). One with neither keywords nor boards matches nothing.
* An end of a keyword that is a Latin letter or a digit must sit at a word boundary: the
  neighbouring character must not be a Latin letter or digit. So ``ai`` does not match "email",
  ``covid-19`` matches "covid-19 검사" and ``c++`` matches "c++로" but not "abc++". Ends in Hangul
  (or any other script, or punctuation) match as substrings: ``장학금`` matches "국가장학금", and
  ``ai`` matches "ai를" (Korean particles glue onto English words).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import ahocorasick

_SPACES = re.compile(r"\s+")


def normalize(text: str) -> str:
    """NFKC, casefold, runs of whitespace collapsed to one space, stripped."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


@lru_cache(maxsize=4096)
def _latin_word_slow(char: str) -> bool:
    if char.isdigit():
        return True
    return char.isalpha() and unicodedata.name(char, "").startswith("LATIN")


def is_latin_word_char(char: str) -> bool:
    """True for a Latin letter or a digit: the characters a word boundary separates."""
    if char.isascii():
        return char.isalnum()
    return _latin_word_slow(char)


@dataclass(frozen=True)
class Subscription:
    id: int
    user_id: int
    keywords: list[str]
    negative_keywords: list[str]
    boards: list[str] | None = None


@dataclass(frozen=True, slots=True)
class _Entry:
    """The automaton's value for one normalized keyword."""

    length: int
    check_start: bool
    check_end: bool
    #: ids of the subscriptions with this keyword and no board filter
    anywhere: tuple[int, ...]
    #: board → ids of the subscriptions with this keyword and that board in their filter
    by_board: dict[str, tuple[int, ...]]
    #: ids of the subscriptions for which this keyword is a negative keyword
    negative: tuple[int, ...]


class Matcher:
    """Built once from all subscriptions; ``match()`` is then cheap and thread-safe."""

    def __init__(self, subscriptions: Iterable[Subscription]) -> None:
        anywhere: defaultdict[str, list[int]] = defaultdict(list)
        by_board: defaultdict[str, defaultdict[str, list[int]]] = defaultdict(
            lambda: defaultdict(list)
        )
        negative: defaultdict[str, list[int]] = defaultdict(list)
        board_only: defaultdict[str, list[int]] = defaultdict(list)
        self.size = 0
        for sub in subscriptions:
            self.size += 1
            keywords = {k for k in map(normalize, sub.keywords) if k}
            boards = set(sub.boards or ())
            for keyword in {k for k in map(normalize, sub.negative_keywords) if k}:
                negative[keyword].append(sub.id)
            for keyword in keywords:
                if boards:
                    for board in boards:
                        by_board[keyword][board].append(sub.id)
                else:
                    anywhere[keyword].append(sub.id)
            if not keywords:
                for board in boards:  # no keyword and no board: matches nothing
                    board_only[board].append(sub.id)
        self._board_only = {board: tuple(ids) for board, ids in board_only.items()}
        self._automaton: Any = ahocorasick.Automaton()
        for keyword in anywhere.keys() | by_board.keys() | negative.keys():
            entry = _Entry(
                length=len(keyword),
                check_start=is_latin_word_char(keyword[0]),
                check_end=is_latin_word_char(keyword[-1]),
                anywhere=tuple(anywhere.get(keyword, ())),
                by_board={b: tuple(ids) for b, ids in by_board.get(keyword, {}).items()},
                negative=tuple(negative.get(keyword, ())),
            )
            self._automaton.add_word(keyword, entry)
        self.keyword_count = len(self._automaton)
        if self.keyword_count:
            self._automaton.make_automaton()

    def match(self, title: str, board: str, body: str | None = None) -> set[int]:
        """Ids of the subscriptions the post (title, board, optional body) matches."""
        text = normalize(title)
        if body:
            text = f"{text}\n{normalize(body)}"
        result = set(self._board_only.get(board, ()))
        negated: set[int] = set()
        for entry in self._hits(text) if self.keyword_count else ():
            result.update(entry.anywhere)
            result.update(entry.by_board.get(board, ()))
            negated.update(entry.negative)
        # an id in `negated` had one of its own negative keywords occur: it never matches
        return result - negated if negated else result

    def _hits(self, text: str) -> list[_Entry]:
        """Entries of the keywords occurring in ``text`` at acceptable boundaries, each once."""
        seen: set[int] = set()
        hits: list[_Entry] = []
        last = len(text) - 1
        for end, entry in self._automaton.iter(text):
            key = id(entry)
            if key in seen:
                continue
            start = end - entry.length + 1
            if entry.check_start and start > 0 and is_latin_word_char(text[start - 1]):
                continue
            if entry.check_end and end < last and is_latin_word_char(text[end + 1]):
                continue
            seen.add(key)
            hits.append(entry)
        return hits


Loader = Callable[[], tuple[Hashable, list[Subscription]]]


class MatcherCache:
    """Holds one Matcher and rebuilds it only when the subscriptions' version changes.

    ``version()`` must be cheap (e.g. ``count(*), max(updated_at)`` of the subscriptions);
    ``loader()`` returns ``(version, subscriptions)`` read together, and the Matcher is stored
    under the version the loader returned, so a change between the two calls only causes one
    more rebuild later, never a stale Matcher kept for good.
    """

    def __init__(self, loader: Loader, version: Callable[[], Hashable]) -> None:
        self._loader = loader
        self._version = version
        self._lock = threading.Lock()
        self._token: Hashable = None
        self._matcher: Matcher | None = None
        self.builds = 0

    def get(self) -> Matcher:
        current = self._version()
        with self._lock:
            if self._matcher is None or current != self._token:
                token, subscriptions = self._loader()
                self._matcher = Matcher(subscriptions)
                self._token = token
                self.builds += 1
            return self._matcher

    def invalidate(self) -> None:
        with self._lock:
            self._matcher = None
