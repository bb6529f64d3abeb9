"""``noticecrawler up``: the whole system on one machine, for development.

Starts (or reuses) the embedded PostgreSQL and Redis under NOTICECRAWLER_HOME unless
DATABASE_URL / CELERY_BROKER_URL point elsewhere, applies the migrations, serves the demo board,
and runs one Celery worker for both queues plus beat, and the HTTP API with its operator page
(``/admin/``). It crawls every board once right away, then as beat schedules them, adds a post
to the demo board now and then, and prints each crawl run as it finishes. Ctrl-C stops the
worker, beat, the API and the demo board; the embedded servers keep running for the next
command (``noticecrawler down`` stops them).
"""

from __future__ import annotations

import argparse
import itertools
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

from noticecrawler.commands import command
from noticecrawler.db import connect, migrate, queries
from noticecrawler.db.settings import database_url, redact
from noticecrawler.settings import child_env

QUEUES = "crawl_tasks,notify_tasks,celery"


def add_arguments(subparsers: Any) -> None:
    p = command(
        subparsers,
        "up",
        run,
        "development: embedded servers, demo board, a worker for both queues and beat",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--concurrency", type=int, default=2, help="worker processes (default 2)")
    p.add_argument(
        "--add-every", type=float, default=45, metavar="SECONDS",
        help="add a post to the demo board this often (0: never; default 45)",
    )  # fmt: skip
    p.add_argument("--duration", type=float, default=0, help="stop after this many seconds")
    p.add_argument("--crawls", type=int, default=0, help="stop after this many crawl runs")
    p.add_argument("--no-api", action="store_true", help="do not start the HTTP API")


def run(args: argparse.Namespace, settings: Any) -> int:
    home = Path(settings.get("NOTICECRAWLER_HOME")).resolve()
    home.mkdir(parents=True, exist_ok=True)
    db_url = database_url(settings)
    with connect(db_url) as conn:
        migrate.upgrade(conn)
    broker = settings.get("CELERY_BROKER_URL") or ""
    if not broker:
        from noticecrawler.db.embedded import redis_url

        broker = redis_url(home)
    demo, demo_url = _demo_server(settings)
    env = child_env(
        DATABASE_URL=db_url,
        CELERY_BROKER_URL=broker,
        NOTICECRAWLER_HOME=str(home),
        DEMO_BOARD_URL=demo_url,
    )
    print(f"PostgreSQL  {redact(db_url)}")
    print(f"broker      {redact(broker)}")
    print(f"demo board  {demo_url}/demo/list")
    print(f"logs        {home / 'worker.log'}, {home / 'beat.log'}, {home / 'api.log'}")
    celery = [sys.executable, "-m", "celery", "-A", "dispatch.celery_app"]
    procs = [
        subprocess.Popen(
            [*celery, "worker", "-Q", QUEUES, "-c", str(args.concurrency), "-E", "-l", "INFO",
             "-n", "dev@%h", "--without-mingle", "--without-gossip",
             f"--logfile={home / 'worker.log'}"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [*celery, "beat", "-l", "INFO", f"--schedule={home / 'celerybeat-schedule'}",
             f"--logfile={home / 'beat.log'}", f"--pidfile={home / 'beat.pid'}"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ),
    ]  # fmt: skip
    api = None if args.no_api else _api(settings, env, home)
    try:
        # crawl everything once now (beat's first run is one interval away)
        subprocess.run([*celery, "call", "dispatch.crawl_sites"], env=env, check=True,
                       stdout=subprocess.DEVNULL, timeout=60)  # fmt: skip
        print("worker and beat started; crawls appear below (Ctrl-C to stop)")
        from noticecrawler.catalog import catalog_from_settings

        boards = [b.name for b in catalog_from_settings(settings)]
        return _watch(args, db_url, boards, demo, procs)
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(procs if api is None else [*procs, api])
        if demo is not None:
            demo.stop()


def _watch(
    args: argparse.Namespace, db_url: str, boards: list[str], demo: Any, procs: list[Any]
) -> int:
    deadline = time.monotonic() + args.duration if args.duration else None
    next_post = time.monotonic() + args.add_every if args.add_every else None
    seen: set[int] = set()
    shown = 0
    start = time.time()
    numbers = itertools.count(1)
    while deadline is None or time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                print(f"a Celery process exited ({proc.returncode}); see the logs", file=sys.stderr)
                return 1
        if demo is not None and next_post is not None and time.monotonic() >= next_post:
            post_id = demo.add_post("demo", title=f"개발 서버 새 공지 {next(numbers)}")
            print(f"demo board: added post {post_id}")
            next_post = time.monotonic() + args.add_every
        for run in _finished_runs(db_url, boards, start, seen):
            shown += 1
            print(
                f"{run['finished_at']:%H:%M:%S}  {run['board']:16} {run['finish_reason']:11} "
                f"pages={run['pages']} requests={run['requests']} 304={run['not_modified']} "
                f"items={run['items']} new={run['new']} errors={run['errors']}",
                flush=True,
            )
        if args.crawls and shown >= args.crawls:
            return 0
        time.sleep(0.5)
    return 0


def _finished_runs(
    db_url: str, boards: list[str], since: float, seen: set[int]
) -> list[dict[str, Any]]:
    fresh = []
    with connect(db_url) as conn:
        for board in boards:
            for run in queries.last_runs(conn, board, 5):
                if run["id"] in seen or run["finished_at"] is None:
                    continue
                if run["finished_at"].timestamp() >= since:
                    seen.add(run["id"])
                    fresh.append(run)
    return sorted(fresh, key=lambda r: r["finished_at"])


def _demo_server(settings: Any) -> tuple[Any, str]:
    """The demo board server on DEMO_BOARD_PORT, or the one already serving there."""
    from noticecrawler.demo.server import DemoServer

    port = settings.getint("DEMO_BOARD_PORT")
    try:
        server = DemoServer(port=port).start()
    except OSError:
        url = settings.get("DEMO_BOARD_URL")
        print(f"port {port} is taken: using the demo board already serving at {url}")
        return None, url
    return server, server.url


def _api(settings: Any, env: dict[str, str], home: Path) -> subprocess.Popen[bytes] | None:
    """The HTTP API (noticecrawler api) on API_HOST:API_PORT, unless the port is taken; its
    URLs are printed. Its exit does not stop the rest (see api.log)."""
    import socket

    host, port = settings.get("API_HOST", "127.0.0.1"), settings.getint("API_PORT", 8780)
    with socket.socket() as probe:
        if probe.connect_ex((host, port)) == 0:
            print(f"port {port} is taken: the API is not started (NOTICECRAWLER_API_PORT)")
            return None
    url = f"http://{host}:{port}"
    print(f"API         {url}/v1  (docs {url}/docs)")
    print(f"admin page  {url}/admin/  (token: noticecrawler users token --admin)")
    with open(home / "api.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "noticecrawler.cli", "api", "--host", host, "--port", str(port)],
            env=env, stdout=log, stderr=log,
        )  # fmt: skip


def _stop(procs: list[Any]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    for proc in procs:
        with suppress(subprocess.TimeoutExpired):
            proc.wait(max(0.1, deadline - time.monotonic()))
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
