"""Demo notice boards served from 127.0.0.1, so the crawler can be shown and tested offline.

``python -m noticecrawler.demo --port 8765`` serves them in the foreground; tests use
:class:`DemoServer` (an ephemeral port, a daemon thread, a context manager).
"""

from noticecrawler.demo.server import DemoServer, run_forever

__all__ = ["DemoServer", "run_forever"]
