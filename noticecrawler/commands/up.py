"""``noticecrawler up``: the whole system on one machine, for development.

Starts (or reuses) the embedded PostgreSQL and Redis under NOTICECRAWLER_HOME unless
DATABASE_URL / CELERY_BROKER_URL point elsewhere, applies the migrations, serves the demo board,
the Prometheus metrics and the HTTP API with its operator page (``/admin/``), and runs one Celery
worker for both queues plus beat. It crawls
every board once right away, then as beat schedules them, adds a post to the demo board now and
then (every other one mentions 장학금, the demo subscriber's keyword), and prints each crawl run
and each push as it happens. Logs (worker, beat, the demo board's access log) go to files under
NOTICECRAWLER_HOME. Ctrl-C stops the worker, beat and the demo board; the embedded servers keep
running for the next command (``noticecrawler down`` stops them).
"""

from __future__ import annotations

import argparse
import itertools
import logging
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

from noticecrawler.clock import when
from noticecrawler.commands import command
from noticecrawler.db import connect, migrate, queries
from noticecrawler.db.settings import database_url, redact
from noticecrawler.errors import ProjectError
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
    _check_broker(broker)
    from noticecrawler.commands.demo import seed_subscriber

    seed_subscriber(db_url)
    demo_log = _log_demo_board_to(home / "demo-board.log")
    demo, demo_url = _demo_server(settings)
    metrics_url = _metrics(settings, db_url)
    env = child_env(
        DATABASE_URL=db_url,
        CELERY_BROKER_URL=broker,
        NOTICECRAWLER_HOME=str(home),
        DEMO_BOARD_URL=demo_url,
    )
    print(f"PostgreSQL  {redact(db_url)}")
    print(f"broker      {redact(broker)}")
    print(f"demo board  {demo_url}/demo/list")
    print(f"metrics     {metrics_url}")
    print(f"logs        {home / 'worker.log'}, {home / 'beat.log'}, {home / 'api.log'}, {demo_log}")
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
        _first_crawls(celery, env, broker)
        print("worker and beat started; crawls appear below (Ctrl-C to stop)")
        from noticecrawler.catalog import catalog_from_settings

        zones = {b.name: b.zone for b in catalog_from_settings(settings)}
        return _watch(args, db_url, zones, demo, procs, api)
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(procs if api is None else [*procs, api.proc])
        if demo is not None:
            demo.stop()


def _watch(
    args: argparse.Namespace,
    db_url: str,
    zones: dict[str, Any],
    demo: Any,
    procs: list[Any],
    api: _Api | None,
) -> int:
    deadline = time.monotonic() + args.duration if args.duration else None
    next_post = time.monotonic() + args.add_every if args.add_every else None
    seen: set[int] = set()
    pushed: set[int] = set()
    shown = 0
    start = time.time()
    numbers = itertools.count(1)
    while deadline is None or time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                print(f"a Celery process exited ({proc.returncode}); see the logs", file=sys.stderr)
                return 1
        if api is not None:
            api.poll()
        if demo is not None and next_post is not None and time.monotonic() >= next_post:
            n = next(numbers)
            post_id = demo.add_post("demo", title=auto_title(n))
            print(f"demo board: added post {post_id}: {auto_title(n)}", flush=True)
            next_post = time.monotonic() + args.add_every
        with connect(db_url) as conn:
            for run in _finished_runs(conn, list(zones), start, seen):
                shown += 1
                print(
                    f"{when(run['finished_at'], zones[run['board']], seconds=True)}  "
                    f"{run['board']:16} {run['finish_reason']:11} "
                    f"pages={run['pages']} requests={run['requests']} "
                    f"304={run['not_modified']} items={run['items']} new={run['new']} "
                    f"errors={run['errors']}",
                    flush=True,
                )
            for push in queries.final_pushes_since(conn, start, pushed):
                pushed.add(push["id"])
                zone = zones.get(push["board"])
                print(
                    f"{when(push['updated_at'], zone, seconds=True) if zone else ''}  "
                    f"push {push['status']:8} [{push['board']}] {push['title']} -> "
                    f"{push['fcm_token'][:12]}…",
                    flush=True,
                )
        if args.crawls and shown >= args.crawls:
            return 0
        time.sleep(0.5)
    return 0


def _check_broker(broker: str) -> None:
    """Refuse to start a worker and beat against a broker that does not answer."""
    from kombu import Connection
    from kombu.exceptions import OperationalError

    with Connection(broker, connect_timeout=5) as conn:
        try:
            conn.ensure_connection(max_retries=1, interval_start=0.2, timeout=10)
        except OperationalError as e:
            where = f"cannot reach the Celery broker at {redact(broker)}"
            raise ProjectError(f"{where}: {redact(str(e))}") from None


def _first_crawls(celery: list[str], env: dict[str, str], broker: str) -> None:
    """Send crawl_sites once; a broker that cannot take it is the project's one-line error."""
    where = f"cannot reach the Celery broker at {redact(broker)}"
    try:
        sent = subprocess.run(
            [*celery, "call", "dispatch.crawl_sites"], env=env, timeout=60,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise ProjectError(f"{where}: no answer in 60 s") from None
    if sent.returncode:
        last = (sent.stderr.strip().splitlines() or ["?"])[-1]
        raise ProjectError(f"{where}: {redact(last)}")


def auto_title(n: int) -> str:
    """Titles of the posts `up` adds: every other one has the demo subscriber's keyword."""
    if n % 2:
        return f"2026학년도 장학금 신청 안내 (개발 서버 공지 {n})"
    return f"개발 서버 새 공지 {n}"


def _finished_runs(
    conn: Any, boards: list[str], since: float, seen: set[int]
) -> list[dict[str, Any]]:
    fresh = []
    for board in boards:
        for run in queries.last_runs(conn, board, 5):
            if run["id"] in seen or run["finished_at"] is None:
                continue
            if run["finished_at"].timestamp() >= since:
                seen.add(run["id"])
                fresh.append(run)
    return sorted(fresh, key=lambda r: r["finished_at"])


def _log_demo_board_to(path: Path) -> Path:
    """The demo board's access log goes to its own file, not into the crawl table."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    demo_logger = logging.getLogger("noticecrawler.demo")
    demo_logger.addHandler(handler)
    demo_logger.setLevel(logging.INFO)
    demo_logger.propagate = False
    return path


def _metrics(settings: Any, db_url: str) -> str:
    """Serve the Prometheus metrics on NOTICECRAWLER_EXPORTER_PORT (when the port is free)."""
    from noticecrawler import metrics

    port = settings.getint("NOTICECRAWLER_EXPORTER_PORT")
    try:
        metrics.serve(db_url, "127.0.0.1", port)
    except OSError as e:
        return f"not served: port {port} ({e.strerror})"
    return f"http://127.0.0.1:{port}/metrics"


def _demo_server(settings: Any) -> tuple[Any, str]:
    """The demo board server on DEMO_BOARD_PORT, or the one already serving there."""
    from noticecrawler.demo.server import DemoServer
    from noticecrawler.demo.state import state_file

    port = settings.getint("DEMO_BOARD_PORT")
    try:
        server = DemoServer(port=port, state_file=state_file(settings.get("NOTICECRAWLER_HOME")))
        server.start()
    except OSError:
        url = settings.get("DEMO_BOARD_URL")
        print(f"port {port} is taken: using the demo board already serving at {url}")
        return None, url
    return server, server.url


class _Api:
    """The HTTP API (noticecrawler api) that ``up`` started, and whether its URLs were told:
    they are printed once ``/healthz`` answers (a URL printed before would be refused for the
    few seconds the API takes to start), or the API's exit is, pointing at its log."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.proc, self.url, self.log = proc, url, log
        self.told = False

    def poll(self) -> None:
        if self.told:
            return
        if self.proc.poll() is not None:
            self.told = True
            print(f"the API exited ({self.proc.returncode}) before it answered; see {self.log}",
                  file=sys.stderr, flush=True)  # fmt: skip
        elif self._answers():
            self.told = True
            print(f"API         {self.url}/v1  (docs {self.url}/docs)")
            print(f"admin page  {self.url}/admin/  (token: noticecrawler users token --admin)",
                  flush=True)  # fmt: skip

    def _answers(self) -> bool:
        from urllib.error import URLError
        from urllib.request import urlopen

        try:
            with urlopen(f"{self.url}/healthz", timeout=1) as answer:
                return bool(answer.status == 200)
        except (URLError, OSError):
            return False


def _api(settings: Any, env: dict[str, str], home: Path) -> _Api | None:
    """The HTTP API on API_HOST:API_PORT, unless the port is taken. Its exit does not stop the
    rest (see api.log)."""
    import socket

    host, port = settings.get("API_HOST", "127.0.0.1"), settings.getint("API_PORT", 8780)
    with socket.socket() as probe:
        if probe.connect_ex((host, port)) == 0:
            print(f"port {port} is taken: the API is not started (NOTICECRAWLER_API_PORT)")
            return None
    print(f"API         starting on http://{host}:{port} (its URLs follow once it answers)")
    log = home / "api.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "noticecrawler.cli", "api", "--host", host, "--port", str(port)],
            env=env, stdout=out, stderr=out,
        )  # fmt: skip
    return _Api(proc, f"http://{host}:{port}", log)


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
