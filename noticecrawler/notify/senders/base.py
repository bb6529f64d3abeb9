"""What a push backend is given and what it answers, whatever it speaks (FCM, the console,
APNs direct or a webhook some day)."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from noticecrawler.notify.fcm_errors import Outcome, SendResult

K = TypeVar("K")

__all__ = ["Outcome", "Push", "SendResult", "Sender"]


@dataclass(frozen=True)
class Push:
    """One push of one post to one device, in the backend's neutral terms."""

    post_id: str
    board: str
    #: the board's display name (the catalog's ``title_text``, else its name): the title
    board_title: str
    #: the post's title: the body
    post_title: str
    url: str
    #: android, ios or web
    platform: str
    token: str
    #: the same for every push of one post: a repeat replaces the first on the phone
    #: (Android tag / collapse key, APNs collapse id, web push tag)
    collapse_id: str

    @classmethod
    def of_post(
        cls, post: dict[str, Any], platform: str, token: str, board_title: str = ""
    ) -> Push:
        """The push of a posts row (``id``, ``board``, ``title``, ``url``) to one device."""
        post_id = str(post["id"])
        board = str(post["board"])
        return cls(
            post_id=post_id,
            board=board,
            board_title=board_title or str(post.get("board_title") or board),
            post_title=str(post["title"]),
            url=str(post.get("url") or ""),
            platform=platform,
            token=token,
            collapse_id=post_id,
        )


class Sender(Protocol):
    """A push backend. Every call returns within the backend's own timeouts and never raises
    for a push that failed: each push gets a SendResult (``retry`` for what may work later)."""

    def send(
        self, pushes: Sequence[tuple[K, Push]], concurrency: int | None = None, window: int = 256
    ) -> Generator[list[tuple[K, SendResult]], None, None]:
        """Send every push, ``concurrency`` at a time, handing results back in chunks of
        ``window // 2`` as they come; at most ``window`` pushes are ever sent and not yet handed
        back (what a worker killed mid-stream may have pushed without recording it). Closing
        the generator early drops the pushes not yet answered."""
        ...

    def send_push(self, push: Push) -> SendResult: ...

    def close(self) -> None: ...
