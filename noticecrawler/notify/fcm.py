"""Moved to noticecrawler.notify.senders.fcm (kept for existing imports)."""

from noticecrawler.notify.senders import make_sender
from noticecrawler.notify.senders.fcm import FcmSender, build_message

__all__ = ["FcmSender", "build_message", "make_sender"]
