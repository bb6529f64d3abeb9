"""Moved to noticecrawler.notify.senders.console (kept for existing imports)."""

from noticecrawler.notify.senders.console import ConsoleSender

__all__ = ["ConsoleSender"]
