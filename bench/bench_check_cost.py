"""The cost of watching unchanged boards: CPU and disk writes per check, noticecrawler's worker
and beat (cheap check vs the old fork-every-time path) side by side with changedetection.io.

One run, the same machine, each tool alone while it is measured: ``--boards`` demo boards with
ETag/Last-Modified (table 1) and as many boards without validators whose view counters and a
clock change on every request (table 2; the same pages through
:class:`tests.check_cost_support.CounterProxy`), every one checked every ``--interval`` seconds.
After the first crawl of every board, ``--window`` seconds are measured:

* CPU from ``/proc/<pid>/stat`` (utime+stime+cutime+cstime) summed over the whole process trees:
  the Celery worker (pool and crawl processes), beat, PostgreSQL (postmaster and backends) and
  Redis; for changedetection.io its own process tree.
* disk writes from ``/proc/<pid>/io`` ``write_bytes`` over the same trees (a reaped child's count
  goes to its parent).
* checks: the list-page requests the boards received in the window; false alarms: posts stored
  or edited (noticecrawler), changes recorded (changedetection.io).

changedetection.io (``--cdio-version``) is installed by this script into its own virtual
environment (``--cdio-venv``) with pip, and run with its plain HTTP fetcher. When it cannot be
installed or run, its columns say so and the noticecrawler figures are still printed.

    python bench/bench_check_cost.py [--boards 50] [--interval 30] [--window 120]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from noticecrawler.db import connect, embedded, migrate  # noqa: E402
from noticecrawler.demo.catalog import board_entry  # noqa: E402
from noticecrawler.demo.server import DemoServer  # noqa: E402
from tests.check_cost_support import CounterProxy  # noqa: E402
from tests.dispatch_helpers import (  # noqa: E402
    Dispatch,
    children,
    descendants,
    free_port,
    make_dispatch,
)

TICK = os.sysconf("SC_CLK_TCK")
GOAL_DISK_KB = 16.0
#: the ways noticecrawler can watch: the batched check per beat tick (the default), one cheap
#: check per crawl_site task (beat entry per board), a forked crawl every time
MODES: dict[str, dict[str, Any]] = {
    "noticecrawler": {"NOTICECRAWLER_CHEAP_CHECK": True},
    "one task per check": {"NOTICECRAWLER_CHEAP_CHECK": True, "CRAWL_CHECK_TICK": 0},
    "fork every time": {"NOTICECRAWLER_CHEAP_CHECK": False, "CRAWL_CHECK_TICK": 0},
}


# --- measuring --------------------------------------------------------------------------------


def tree(pid: int) -> set[int]:
    return {pid} | descendants(pid)


def _stat(pid: int) -> list[int]:
    """utime, stime, cutime, cstime of ``pid`` in clock ticks (zeros when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return [0, 0, 0, 0]
    return [int(x) for x in fields[11:15]]


def cpu_seconds(pids: set[int]) -> float:
    return sum(sum(_stat(pid)) for pid in pids) / TICK


def worker_parts(pid: int) -> dict[str, float]:
    """A prefork worker's CPU in three parts: the main process, its pool processes (tasks, the
    cheap check) and the crawl processes they fork (reaped ones counted by their pool process)."""
    main = _stat(pid)
    pools = children(pid)
    own = sum(sum(_stat(p)[:2]) for p in pools)
    crawls = sum(sum(_stat(p)[2:]) for p in pools)
    crawls += sum(sum(_stat(c)) for p in pools for c in descendants(p))
    return {
        "worker main": (main[0] + main[1] + main[2] + main[3]) / TICK,
        "worker pool": own / TICK,
        "crawl processes": crawls / TICK,
    }


def written_bytes(pids: set[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/io") as f:
                io = dict(line.split(": ") for line in f.read().splitlines())
        except OSError:
            continue
        total += int(io["write_bytes"]) - int(io.get("cancelled_write_bytes", 0))
    return total


class Meter:
    """CPU and disk writes of named process trees between :meth:`start` and :meth:`stop`."""

    def __init__(self, roots: dict[str, int]):
        self.roots = roots

    def snapshot(self) -> dict[str, tuple[float, int]]:
        out = {}
        for name, pid in self.roots.items():
            pids = tree(pid)
            if name == "worker":
                parts = worker_parts(pid)
                for part, seconds in parts.items():
                    out[part] = (seconds, written_bytes(pids) if part == "worker main" else 0)
                continue
            out[name] = (cpu_seconds(pids), written_bytes(pids))
        return out

    def start(self) -> None:
        self.before = self.snapshot()

    def stop(self) -> dict[str, tuple[float, int]]:
        after = self.snapshot()
        return {
            n: (after[n][0] - self.before[n][0], after[n][1] - self.before[n][1]) for n in after
        }


def pg_written(db: Any) -> dict[str, int]:
    """Bytes PostgreSQL wrote (``pg_stat_io``, PostgreSQL 18: WAL included): its WAL writes
    (each commit rewrites the WAL page it ends on) and data pages (checkpointer, bgwriter,
    backends). ``pg_stat_wal``'s ``wal_bytes`` is the WAL generated, not written: not added."""
    rows = db.execute(
        "SELECT object = 'wal' AS wal, coalesce(sum(write_bytes), 0) AS b FROM pg_stat_io "
        "GROUP BY 1"
    ).fetchall()
    out = {"postgres WAL": 0, "postgres data pages": 0}
    for r in rows:
        out["postgres WAL" if r["wal"] else "postgres data pages"] += int(r["b"])
    return out


def wal_stats(db: Any) -> dict[str, int]:
    """WAL generated (records, full-page images, bytes) and WAL writes (flushes)."""
    row = db.execute("SELECT wal_records, wal_fpi, wal_bytes FROM pg_stat_wal").fetchone()
    writes = db.execute(
        "SELECT coalesce(sum(writes), 0) AS w FROM pg_stat_io WHERE object = 'wal'"
    ).fetchone()["w"]
    return {**{k: int(v) for k, v in row.items()}, "wal_writes": int(writes)}


def files_written(db: Any, redis_url: str) -> dict[str, int]:
    return {**pg_written(db), "redis AOF": redis_aof(redis_url)}


def redis_aof(url: str) -> int:
    import redis

    with redis.Redis.from_url(url) as r:
        info = r.info("persistence")
    return int(info.get("aof_current_size", 0))


def du(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def postmaster_pid(home: Path) -> int:
    return int((home / "pgdata" / "postmaster.pid").read_text().split()[0])


def redis_pid(home: Path) -> int:
    return int((home / "redis" / "redis.pid").read_text())


# --- noticecrawler ----------------------------------------------------------------------------


def list_hits(demo: DemoServer, proxy: CounterProxy, boards: list[str]) -> int:
    names = set(boards)
    hits = sum(
        1
        for e in demo.requests_log()
        if e["path"].split("/")[1] in names and "/list" in e["path"] and "page=" not in e["path"]
    )
    if any(b.startswith("c") for b in boards):
        hits = len(proxy.lists)
    return hits


def run_noticecrawler(
    tmp: Path,
    home: Path,
    urls: dict[str, str],
    boards: list[str],
    interval: int,
    window: float,
    mode: dict[str, Any],
    demo: DemoServer,
    proxy: CounterProxy,
) -> dict[str, Any]:
    tmp.mkdir(parents=True, exist_ok=True)
    d: Dispatch = make_dispatch(
        tmp,
        broker_url=urls["redis"],
        result_url=urls["redis"],
        database_url=urls["db"],
        demo_url=demo.url,
        boards={},
        overrides={**mode, "HOST_DELAY": 0.02},
    )
    catalog = "".join(
        board_entry(b, interval=f"{interval}s")
        if b.startswith("b")
        else board_entry(b, start_url=f"{proxy.url}/{b}/list", interval=f"{interval}s")
        for b in boards
    )
    Path(d.env["NOTICECRAWLER_CATALOG"]).write_text(catalog, encoding="utf-8")
    d.env["NOTICECRAWLER_HOME"] = str(home)  # the HTTP cache of earlier phases
    db = connect(urls["db"], autocommit=True)
    try:
        worker = d.worker("bench", "crawl_tasks", 2)
        beat = d.beat()
        # warm: every board crawled (or checked) once after this worker started
        mark = db.execute("SELECT coalesce(max(id), 0) AS m FROM crawl_runs").fetchone()["m"]
        deadline = time.monotonic() + max(120.0, 4 * interval)
        while time.monotonic() < deadline:
            done = db.execute(
                "SELECT count(DISTINCT board) AS n FROM crawl_runs WHERE id > %s AND "
                "finished_at IS NOT NULL",
                (mark,),
            ).fetchone()["n"]
            if done >= len(boards):
                break
            time.sleep(0.5)
        # the steady state: the first crawls' 1,650 new posts vacuumed now rather than by an
        # autovacuum in the window, and a checkpoint at its start (every page the window's
        # checks touch then writes its full image to the WAL once, as after any checkpoint)
        db.execute("VACUUM (ANALYZE)")
        db.execute("CHECKPOINT")
        meter = Meter(
            {
                "worker": worker.proc.pid,
                "beat": beat.pid,
                "postgres": postmaster_pid(home),
                "redis": redis_pid(home),
            }
        )
        first = db.execute("SELECT coalesce(max(id), 0) AS m FROM crawl_runs").fetchone()["m"]
        hits0 = list_hits(demo, proxy, boards)
        log0 = worker.logfile.stat().st_size
        files0 = files_written(db, urls["redis"])
        wal0 = wal_stats(db)
        meter.start()
        time.sleep(window)
        used = meter.stop()
        hits = list_hits(demo, proxy, boards) - hits0
        log_bytes = worker.logfile.stat().st_size - log0
        files1 = files_written(db, urls["redis"])
        wal1 = wal_stats(db)
        files = {k: files1[k] - files0[k] for k in files0} | {"worker log": log_bytes}
        row = db.execute(
            "SELECT count(*) AS runs, coalesce(sum(new), 0) AS new, "
            "coalesce(sum(errors), 0) AS errors, coalesce(sum(not_modified), 0) AS nm, "
            "count(*) FILTER (WHERE finish_reason <> 'finished') AS failed "
            "FROM crawl_runs WHERE id > %s AND finished_at IS NOT NULL",
            (first,),
        ).fetchone()
        edited = db.execute(
            "SELECT count(*) AS n FROM post_revisions r JOIN posts p ON p.id = r.post_id "
            "WHERE r.replaced_at > now() - make_interval(secs => %s)",
            (window,),
        ).fetchone()["n"]
    finally:
        d.stop_all()
        db.close()
    checks = max(1, int(row["runs"]))
    return {
        "checks": int(row["runs"]),
        "requests": hits,
        "cpu_ms": {n: 1000 * c / checks for n, (c, _) in used.items()},
        "disk_kb": {n: w / 1024 / checks for n, (_, w) in used.items()},
        "log_kb": log_bytes / 1024 / checks,
        "file_kb": sum(files.values()) / 1024 / checks,
        "files_kb": {k: v / 1024 / checks for k, v in files.items()},
        "wal": {k: (wal1[k] - wal0[k]) / checks for k in wal0},
        "alarms": int(row["new"]) + int(edited),
        "failed": int(row["failed"]),
        "not_modified": int(row["nm"]),
    }


# --- changedetection.io -----------------------------------------------------------------------


def cdio_install(venv: Path, version: str) -> Path | None:
    exe = venv / "bin" / "changedetection.io"
    if exe.exists():
        return exe
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", f"changedetection.io=={version}"],
            check=True,
            timeout=1800,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"changedetection.io could not be installed: {exc}", file=sys.stderr)
        return None
    return exe if exe.exists() else None


def history_entries(datastore: Path) -> int:
    """Snapshots changedetection.io recorded, over every watch (one per watch is its first)."""
    total = 0
    for path in datastore.glob("*/history.txt"):
        total += sum(1 for line in path.read_text().splitlines() if line.strip())
    return total


def run_cdio(
    exe: Path,
    tmp: Path,
    urls: list[str],
    interval: int,
    window: float,
    hits_of: Any,
) -> dict[str, Any]:
    """changedetection.io with its plain HTTP fetcher (``html_requests``), every URL a watch
    checked every ``interval`` seconds, added on its command line."""
    datastore = tmp / "cdio"
    shutil.rmtree(datastore, ignore_errors=True)
    datastore.mkdir(parents=True)
    options = json.dumps(
        {
            "fetch_backend": "html_requests",
            "time_between_check": {"seconds": interval},
            "time_between_check_use_default": False,
        }
    )
    cmd = [str(exe), "-d", str(datastore), "-p", str(free_port()), "-h", "127.0.0.1", "-l", "INFO"]
    for i, url in enumerate(urls):
        cmd += ["-u", url, f"-u{i}", options]
    log = open(tmp / "cdio.log", "wb")  # noqa: SIM115
    hits_start = hits_of()
    proc = subprocess.Popen(
        cmd,
        stdout=log,
        stderr=subprocess.STDOUT,
        # the boards are on 127.0.0.1, which it refuses to fetch by default
        env={**os.environ, "ALLOW_IANA_RESTRICTED_ADDRESSES": "true"},
    )
    try:
        deadline = time.monotonic() + max(180.0, 4 * interval)
        while hits_of() - hits_start < len(urls) and time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"it exited {proc.returncode} (log: {tmp / 'cdio.log'})")
            time.sleep(1)
        if hits_of() - hits_start < len(urls):
            raise RuntimeError("it did not check every page within the warm-up")
        time.sleep(interval / 2)
        meter = Meter({"changedetection.io": proc.pid})
        hits0, files0, changes0 = hits_of(), du(datastore), history_entries(datastore)
        meter.start()
        time.sleep(window)
        used = meter.stop()
        hits = hits_of() - hits0
        files, changes = du(datastore) - files0, history_entries(datastore) - changes0
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)
        log.close()
    checks = max(1, hits)
    return {
        "checks": hits,
        "requests": hits,
        "cpu_ms": {n: 1000 * c / checks for n, (c, _) in used.items()},
        "disk_kb": {n: w / 1024 / checks for n, (_, w) in used.items()},
        "log_kb": 0.0,
        "file_kb": files / 1024 / checks,
        "files_kb": {"datastore": files / 1024 / checks},
        "alarms": changes,
        "failed": 0,
        "not_modified": 0,
    }


# --- report -----------------------------------------------------------------------------------


def table(title: str, results: dict[str, dict[str, Any] | str]) -> None:
    print(f"\n{title}")
    names = list(results)
    print(f"{'':34}" + "".join(f"{n:>22}" for n in names))

    def line(label: str, value: Any) -> None:
        cells = []
        for n in names:
            r = results[n]
            cells.append(f"{'-' if isinstance(r, str) else value(r):>22}")
        print(f"{label:34}" + "".join(cells))

    line("checks in the window", lambda r: r["checks"])
    line("list requests answered", lambda r: r["requests"])
    line("CPU per check (ms)", lambda r: f"{sum(r['cpu_ms'].values()):.1f}")
    parts = sorted({k for r in results.values() if not isinstance(r, str) for k in r["cpu_ms"]})
    for part in parts:
        line(
            f"  {part}",
            lambda r, p=part: f"{r['cpu_ms'].get(p, 0):.1f}" if p in r["cpu_ms"] else "",
        )
    line("disk writes per check (KB)", lambda r: f"{sum(r['disk_kb'].values()):.1f}")
    for part in parts:
        line(
            f"  {part}",
            lambda r, p=part: f"{r['disk_kb'].get(p, 0):.1f}" if p in r["disk_kb"] else "",
        )
    line("  of which the worker log (KB)", lambda r: f"{r['log_kb']:.1f}")
    line("bytes written to files (KB) *", lambda r: f"{r['file_kb']:.1f}")
    files = sorted({k for r in results.values() if not isinstance(r, str) for k in r["files_kb"]})
    for part in files:
        line(f"  {part}", lambda r, p=part: f"{r['files_kb'].get(p, 0):.1f}")
    line(
        "  WAL records / FPI / writes",
        lambda r: (
            "{wal_records:.1f} / {wal_fpi:.2f} / {wal_writes:.2f}".format(**r["wal"])
            if "wal" in r
            else ""
        ),
    )
    line("false alarms", lambda r: r["alarms"])
    line("runs not finished", lambda r: r["failed"])
    for n, r in results.items():
        if isinstance(r, str):
            print(f"{n}: {r}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", type=int, default=50)
    ap.add_argument("--interval", type=int, default=30)
    ap.add_argument("--window", type=float, default=120)
    ap.add_argument("--cdio-version", default="0.60.10")
    ap.add_argument("--cdio-venv", default=str(ROOT / ".venv-cdio"))
    ap.add_argument("--skip-cdio", action="store_true")
    ap.add_argument(
        "--modes",
        default=",".join(MODES),
        help="noticecrawler's columns, comma-separated: " + ", ".join(MODES),
    )
    ap.add_argument("--tick", type=float, default=5.0, help="CRAWL_CHECK_TICK of the batch")
    ap.add_argument(
        "--kinds", default="validators,counters", help="tables: validators, counters or both"
    )
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-check-cost-"))
    home = tmp / "home"
    demo = DemoServer().start()
    proxy = CounterProxy(demo.url, host="127.0.0.2").__enter__()
    validated = [f"b{i:02d}" for i in range(args.boards)]
    counted = [f"c{i:02d}" for i in range(args.boards)]
    results: dict[str, dict[str, dict[str, Any] | str]] = {"validators": {}, "counters": {}}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            urls = {"db": embedded.postgres_url(home), "redis": embedded.redis_url(home)}
        with connect(urls["db"]) as conn:
            migrate.upgrade(conn)
        exe = None
        if not args.skip_cdio:
            exe = cdio_install(Path(args.cdio_venv), args.cdio_version)
        kinds = [(k, b) for k, b in (("validators", validated), ("counters", counted))
                 if k in args.kinds.split(",")]  # fmt: skip
        for kind, boards in kinds:
            for label in args.modes.split(","):
                results[kind][label] = run_noticecrawler(
                    tmp / f"{kind}-{label}", home, urls, boards, args.interval, args.window,
                    {**MODES[label], "CRAWL_CHECK_TICK": MODES[label].get("CRAWL_CHECK_TICK",
                                                                           args.tick)},
                    demo, proxy,
                )  # fmt: skip
            if args.skip_cdio:
                results[kind]["changedetection.io"] = "skipped (--skip-cdio)"
            elif exe is None:
                results[kind]["changedetection.io"] = "could not be installed here"
            else:
                if kind == "validators":
                    page_urls = [f"{demo.url}/{b}/list" for b in boards]
                else:
                    page_urls = [f"{proxy.url}/{b}/list" for b in boards]
                try:
                    results[kind]["changedetection.io"] = run_cdio(
                        exe, tmp, page_urls, args.interval, args.window,
                        lambda b=boards: list_hits(demo, proxy, b),
                    )  # fmt: skip
                except Exception as exc:
                    results[kind]["changedetection.io"] = f"could not be run: {exc}"
    finally:
        proxy.__exit__()
        demo.stop()
        embedded.stop_redis(home)
        embedded.stop_postgres(home)
        shutil.rmtree(tmp, ignore_errors=True)

    print(
        f"{args.boards} unchanged boards each, checked every {args.interval}s, "
        f"{args.window:g}s measured per tool, {os.cpu_count()} CPUs"
    )
    if results["validators"]:
        table("1. boards with ETag/Last-Modified", results["validators"])
    if results["counters"]:
        table("2. boards without validators (view counters and a clock change every request)",
              results["counters"])  # fmt: skip
    goals = []
    for kind, label in (("validators", "with validators"), ("counters", "without validators")):
        ours = results[kind].get("noticecrawler")
        if not isinstance(ours, dict):
            continue
        theirs = results[kind].get("changedetection.io")
        cpu, files = sum(ours["cpu_ms"].values()), ours["file_kb"]
        goals.append(f"{label}: bytes written {files:.1f} KB/check <= {GOAL_DISK_KB:g}: "
                     f"{files <= GOAL_DISK_KB}")  # fmt: skip
        if isinstance(theirs, dict):
            their_cpu = sum(theirs["cpu_ms"].values())
            goals.append(f"{label}: CPU {cpu:.1f} ms/check <= changedetection.io's "
                         f"{their_cpu:.1f}: {cpu <= their_cpu}")  # fmt: skip
        goals.append(f"{label}: no false alarm: {ours['alarms'] == 0}")
    print(
        "\n* disk writes: the kernel's write_bytes (a page-cache folio dirtied counts whole: on a "
        "kernel with large folios one 8 KB WAL write of a commit may count 1 MB); bytes written "
        "to files: PostgreSQL's WAL and page writes (pg_stat_io), the Redis AOF's "
        "growth and the worker log (changedetection.io: its datastore's growth)"
    )
    print("\ngoals:\n  " + "\n  ".join(goals))
    return 0


if __name__ == "__main__":
    sys.exit(main())
