"""One board's crawl in a fresh process forked from a pre-imported parent.

The parent (a Celery pool process, or any script) imports Scrapy and the project once, at import
of this module, without installing a Twisted reactor. Each crawl forks a ``billiard`` process that
installs the reactor, runs the board's spider with :class:`~scrapy.crawler.AsyncCrawlerProcess`
and sends back a JSON summary; the next crawl forks again from the same clean parent, so the
reactor always starts fresh and no interpreter or Scrapy start-up is paid twice.

The crawl process dies with its parent (``PR_SET_PDEATHSIG``) and is killed by the parent when it
runs past ``timeout``; the run is then recorded as ``time_limit``. Nothing here knows Celery.
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import logging
import os
import resource
import signal
import time
from datetime import UTC, datetime
from typing import Any

import billiard
import psycopg
import scrapy  # pre-imported here once, not in every crawl
import scrapy.crawler
import twisted.internet.asyncioreactor  # noqa: F401  (imported, not installed)
from scrapy import signals
from scrapy.settings import BaseSettings, Settings
from scrapy.utils.reactor import is_reactor_installed

import noticecrawler.extensions
from dispatch import runrow
from dispatch.forkready import CrawlSettings, spider_loader_class, warm_up
from dispatch.interrupts import held_back, let_through
from noticecrawler.db.settings import database_url
from noticecrawler.extensions import OpenedRun

logger = logging.getLogger(__name__)

SETTINGS_MODULE = "noticecrawler.settings"
#: seconds between SIGTERM and SIGKILL when a crawl is stopped
KILL_GRACE = 2.0
_PR_SET_PDEATHSIG = 1
#: project modules every crawl uses (imported by name: they are not this layer's API)
PROJECT_MODULES = (
    "noticecrawler.spiders.loader",
    "noticecrawler.spiders.engines",
    "noticecrawler.pipelines",
    "noticecrawler.notify.port",
)
#: settings whose values name classes that every crawl loads
_OBJECT_SETTINGS = (
    "DOWNLOADER_MIDDLEWARES_BASE",
    "DOWNLOADER_MIDDLEWARES",
    "SPIDER_MIDDLEWARES_BASE",
    "SPIDER_MIDDLEWARES",
    "EXTENSIONS_BASE",
    "EXTENSIONS",
    "ITEM_PIPELINES",
    "DOWNLOAD_HANDLERS_BASE",
    "SCHEDULER",
    "STATS_CLASS",
    "DUPEFILTER_CLASS",
    "SCHEDULER_PRIORITY_QUEUE",
    "SCHEDULER_DISK_QUEUE",
    "SCHEDULER_MEMORY_QUEUE",
    "SCHEDULER_START_DISK_QUEUE",
    "SCHEDULER_START_MEMORY_QUEUE",
    "DOWNLOADER",
    "SPIDER_LOADER_CLASS",
    "HTTPCACHE_POLICY",
    "HTTPCACHE_STORAGE",
    "REQUEST_FINGERPRINTER_CLASS",
    "LOG_FORMATTER",
    "TWISTED_DNS_RESOLVER",
    "DOWNLOADER_CLIENTCONTEXTFACTORY",
)


class CrawlError(RuntimeError):
    """The crawl process could not run or report its result."""


def crawl_settings(overrides: dict[str, Any] | None = None) -> Settings:
    """The project's Scrapy settings as a worker crawls with them: no telnet console, no remote
    control, and no second root log handler when the process already logs (a Celery worker)."""
    settings = CrawlSettings()
    settings.setmodule(SETTINGS_MODULE, priority="project")
    settings.setdict(
        {
            "TELNETCONSOLE_ENABLED": False,
            "REMOTE_CONTROL_ENABLED": False,
            "LOG_INSTALL_ROOT_HANDLER": not logging.getLogger().handlers,
            # the run's summary has the process's peak RSS; nobody reads Scrapy's per-minute
            # log line or its memory probe in a crawl of a few seconds
            "MEMUSAGE_ENABLED": False,
            "LOGSTATS_INTERVAL": 0,
        },
        priority="cmdline",
    )
    if overrides:
        settings.setdict(overrides, priority="cmdline")
    return settings


def preload(settings: BaseSettings | None = None) -> int:
    """Import the project and every class the settings name, so forked crawls find them
    imported; returns the number of objects loaded. Refuses to leave a reactor installed."""
    settings = settings or crawl_settings()
    for module in PROJECT_MODULES:
        importlib.import_module(module)
    paths: set[str] = set()
    for name in _OBJECT_SETTINGS:
        value = settings.get(name)
        if isinstance(value, str):
            paths.add(value)
        elif value:
            items = dict(value.items() if hasattr(value, "items") else {})
            paths.update(v for kv in items.items() for v in kv if isinstance(v, str))
    loaded = 0
    for path in sorted(p for p in paths if "." in p):
        module, _, attr = path.rpartition(".")
        try:
            getattr(importlib.import_module(module), attr)
            loaded += 1
        except (ImportError, AttributeError):
            logger.debug("preload: %s not importable here", path)
    warm_up(settings)
    if is_reactor_installed():
        raise CrawlError("a Twisted reactor got installed in the parent of the crawl processes")
    return loaded


def run_crawl(
    board: str,
    *,
    timeout: float,
    settings: Settings | None = None,
    interrupts: tuple[type[BaseException], ...] = (),
    interrupt_signals: tuple[int, ...] = (),
) -> dict[str, Any]:
    """Crawl ``board`` in a fresh process and return its summary (never raises for a failed
    crawl: the summary's ``finish_reason`` and ``errors`` say what happened).

    The crawl is killed after ``timeout`` seconds, or when one of ``interrupts`` (e.g. Celery's
    soft time limit) is raised while waiting for it; either way the run is recorded as
    ``time_limit``. ``interrupt_signals`` (the signals that raise ``interrupts``) are held back
    outside that wait: stopping the crawl process and recording the run cannot be cut short,
    and a signal that comes after the crawl has ended is dropped. Any other exception kills the
    crawl and propagates.

    The summary: pages, requests, not_modified (304s), items, new, edited, errors, error_detail,
    finish_reason, seconds, pid, max_rss_mb, private_mb.
    """
    if is_reactor_installed():
        raise CrawlError("crawls fork from a parent without a reactor; one is installed here")
    settings = settings or crawl_settings()
    database_url(settings)  # resolved (the embedded server found) once, here, not per crawl
    loader_class = spider_loader_class(settings)
    started = time.monotonic()
    started_at = datetime.now(UTC)
    ctx = billiard.get_context("fork")
    with held_back(interrupt_signals):
        opened = runrow.open_before_fork(board, settings)
        receiver, sender = ctx.Pipe(duplex=False)
        process = ctx.Process(
            target=_crawl_process,
            args=(board, settings, sender, os.getpid(), loader_class, opened),
            name=f"crawl:{board}",
            daemon=False,
        )
        # the parent's objects stay out of the crawl process's garbage collections: a full
        # collection would write to every inherited object and copy its page (copy-on-write).
        # Not when this process froze objects itself (unfreezing would undo that).
        ours = gc.get_freeze_count() == 0
        if ours:
            gc.freeze()
        try:
            process.start()
        finally:
            if ours:
                gc.unfreeze()
        sender.close()
        got: list[dict[str, Any] | None] = []
        try:
            with let_through(interrupt_signals):
                got.append(_wait(board, receiver, process, started + timeout))
        except interrupts:
            pass  # the soft limit cut the wait short: no summary, recorded as time_limit below
        finally:
            summary = got[0] if got else None
            # a crawl that sent its summary is exiting: give it time before stopping it
            _stop(process, grace=KILL_GRACE if summary is not None else 0.0)
            receiver.close()
        if summary is None:
            summary = _failed(
                board,
                "time_limit",
                f"killed after {time.monotonic() - started:.1f}s (time limit {timeout:g}s)",
            )
        if opened is not None:
            runrow.finish(board, settings, opened, summary)
        elif summary["finish_reason"] in ("time_limit", "crashed", "database_unreachable"):
            runrow.record_killed(board, settings, started_at, summary)
    summary["seconds"] = round(time.monotonic() - started, 3)
    return summary


def _wait(board: str, receiver: Any, process: Any, deadline: float) -> dict[str, Any] | None:
    """The crawl's summary; None when the deadline passes first."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        if receiver.poll(min(remaining, 0.5)):
            try:
                result: dict[str, Any] = receiver.recv()
                return result
            except EOFError:
                break
        if not process.is_alive() and not receiver.poll(0):
            break
    process.join(KILL_GRACE)
    return _failed(board, "crashed", f"process ended with {process.exitcode} and no summary")


def _stop(process: Any, grace: float) -> None:
    process.join(grace)
    if process.is_alive():
        process.terminate()
        process.join(KILL_GRACE)
    if process.is_alive() and process.pid:
        os.kill(process.pid, signal.SIGKILL)
        process.join(KILL_GRACE)


def _failed(board: str, reason: str, detail: str) -> dict[str, Any]:
    detail = f"board `{board}`: crawl {detail}"
    logger.warning("%s", detail)
    return {**noticecrawler.extensions.run_summary({}, reason), "errors": 1, "error_detail": detail}


# --- in the crawl process -----------------------------------------------------------------------


def _die_with_parent(parent_pid: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:  # the parent died before prctl: nobody would kill us
        os._exit(1)


def _crawl_process(
    board: str,
    settings: Settings,
    sender: Any,
    parent_pid: int,
    loader_class: type | None = None,
    opened: OpenedRun | None = None,
) -> None:
    _die_with_parent(parent_pid)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGQUIT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)  # not the pool's handlers
    signal.pthread_sigmask(signal.SIG_SETMASK, set())  # nor signals the parent held back
    try:
        if loader_class is not None:
            settings.set("SPIDER_LOADER_CLASS", loader_class, priority="cmdline")
        if opened is not None:
            settings.set("NOTICECRAWLER_OPENED_RUN", opened, priority="cmdline")
        summary = crawl_here(board, settings)
    except psycopg.OperationalError as exc:  # the database went away after the start check
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        summary = _failed(board, "database_unreachable", f"lost PostgreSQL: {reason}")
    except Exception as exc:
        logger.exception("board `%s`: crawl failed", board)
        summary = _failed(board, "crashed", f"failed: {type(exc).__name__}: {exc}")
    summary["pid"] = os.getpid()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    summary["max_rss_mb"] = round(usage.ru_maxrss / 1024, 1)
    summary["cpu_s"] = round(usage.ru_utime + usage.ru_stime, 3)
    summary["private_mb"] = _private_mb()
    sender.send(summary)
    sender.close()


def crawl_here(board: str, settings: Settings) -> dict[str, Any]:
    """Run the board's spider in this process (which must not have run a reactor before)."""
    level = settings.get("LOG_LEVEL", "INFO")
    if not isinstance(level, int):
        level = logging.getLevelName(str(level).upper())
    if isinstance(level, int) and level > logging.INFO:
        # Scrapy's "Versions:" line is INFO: not logged here, so not computed either (reading
        # ten packages' metadata cost ~7 ms per crawl)
        settings.set("LOG_VERSIONS", [], priority="cmdline")
    process = scrapy.crawler.AsyncCrawlerProcess(settings)
    logging.getLogger("scrapy").setLevel(settings.get("LOG_LEVEL", "INFO"))
    crawler = process.create_crawler(board)
    closed: dict[str, Any] = {}

    def spider_closed(spider: Any, reason: str) -> None:
        assert crawler.stats is not None
        closed["stats"] = dict(crawler.stats.get_stats())
        closed["reason"] = reason

    crawler.signals.connect(spider_closed, signal=signals.spider_closed)
    process.crawl(crawler)
    process.start(install_signal_handlers=False)
    if not closed:
        raise CrawlError(f"board `{board}`: the spider never closed")
    return noticecrawler.extensions.run_summary(closed["stats"], closed["reason"])


def _private_mb() -> float | None:
    """Memory this process does not share with its parent (Private_Clean + Private_Dirty)."""
    try:
        with open("/proc/self/smaps_rollup") as f:
            kb = sum(int(line.split()[1]) for line in f if line.startswith("Private_"))
    except OSError:
        return None
    return round(kb / 1024, 1)


preload()
