"""What every push transport shares: the caps of an answer, header checks, errors, replies."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping
from typing import Any, NamedTuple

USER_AGENT = "noticecrawler-push/1"
#: connects in progress at once per origin: a batch opens its connections a few at a time
#: (each step as fast as the server accepts) instead of 100 SYNs at once, which overflow a
#: small listen backlog — requests written on connections the server has not accepted yet
#: wait unseen, time out and are retried, and the server answers both (issue 9, item 7)
CONNECT_RAMP = 4
#: an FCM answer is a few hundred bytes: a body past this is no answer of FCM (the connection
#: is dropped, the push retried later), and so is a head past the header caps
MAX_BODY = 64 * 1024
MAX_HEAD = 16 * 1024
MAX_HEADERS = 100
#: bytes no header value may hold (CR/LF split the request, NUL and the other controls are
#: refused by servers or rewritten by proxies)
_CONTROL = frozenset(chr(c) for c in (*range(0x20), 0x7F)) - {"\t"}


class HeaderError(ValueError):
    """A header name or value that cannot go into a request (control characters, a colon in a
    name): raised when the request is built, before anything is sent."""


@functools.lru_cache(maxsize=256)
def check_header(name: str, value: str) -> None:
    """Raise HeaderError when ``name: value`` cannot be sent as one well-formed header.
    (Cached: every push of a process carries the same few headers, the bearer token's value
    among them — hundreds of characters scanned once, not once per push.)"""
    if not name or ":" in name or " " in name or _CONTROL.intersection(name):
        raise HeaderError(f"header name {name!r} would break the request")
    bad = _CONTROL.intersection(value)
    if bad:
        shown = ", ".join(sorted(repr(c) for c in bad))
        raise HeaderError(f"header {name!r} holds a control character ({shown})")


class TransportError(ConnectionError):
    """The connection broke before a whole answer came back, or the answer is not HTTP."""

    def __init__(self, message: str, *, answered: bool = False, unprocessed: bool = False) -> None:
        super().__init__(message)
        #: some bytes of an answer had arrived (the request surely reached the server)
        self.answered = answered
        #: the server said it did not process the request (an HTTP/2 GOAWAY naming an earlier
        #: stream, or REFUSED_STREAM): sending it again elsewhere cannot make a duplicate
        self.unprocessed = unprocessed


#: what a push can fail with before an HTTP answer: retried later, never here
#: (TimeoutError, ssl.SSLError and TransportError are all OSErrors)
NETWORK_ERRORS = (OSError, asyncio.TimeoutError)


class Headers(dict[str, str]):
    """An answer's headers, looked up whatever the case of the name."""

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return super().__contains__(name.lower() if isinstance(name, str) else name)

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


class Reply(NamedTuple):
    status: int
    headers: Mapping[str, str]
    body: bytes


class Origin(NamedTuple):
    scheme: str
    host: str
    port: int
