"""Prometheus metrics of noticecrawler, read from PostgreSQL at every scrape.

Nothing is counted in memory: the crawl-runs record, the notification rows and the outbox
already hold every number, so any number of exporters (or a restarted one) show the same
values. Served by ``noticecrawler exporter`` (and by ``noticecrawler up``).

    noticecrawler_board_last_success_timestamp_seconds{board}   end of the last clean run
    noticecrawler_board_runs_total{board,finish_reason}         runs by finish reason
    noticecrawler_board_new_posts_total{board}                  posts found new
    noticecrawler_board_not_modified_total{board}               list pages answered 304
    noticecrawler_board_errors_total{board}                     errors counted by runs
    noticecrawler_pushes_total{outcome}                         notification rows by status
    noticecrawler_notify_retries_total                          push tries beyond the first
    noticecrawler_outbox_depth                                  new posts not planned yet
    noticecrawler_outbox_oldest_age_seconds                     age of the oldest of them
    noticecrawler_database_up                                   1 when the scrape read the DB
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

logger = logging.getLogger(__name__)

PREFIX = "noticecrawler"


class NoticeCrawlerCollector(Collector):
    def __init__(self, url: str):
        self.url = url

    def collect(self) -> Iterator[Metric]:
        from noticecrawler.db import connect, queries
        from noticecrawler.errors import one_line

        up = GaugeMetricFamily(f"{PREFIX}_database_up", "1 when this scrape read PostgreSQL")
        try:
            with connect(self.url) as conn:
                rows = queries.metrics_rows(conn)
        except Exception as exc:  # a scrape reports the database down instead of failing
            logger.warning("metrics: %s", one_line(exc) or repr(exc))
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from board_metrics(rows["boards"])
        yield from push_metrics(rows["pushes"], rows["outbox"])


def board_metrics(rows: list[dict[str, Any]]) -> Iterator[Metric]:
    last_ok = GaugeMetricFamily(
        f"{PREFIX}_board_last_success_timestamp_seconds",
        "Unix time of the end of the board's last clean run",
        labels=["board"],
    )
    runs = CounterMetricFamily(
        f"{PREFIX}_board_runs", "Crawl runs by finish reason", labels=["board", "finish_reason"]
    )
    new = CounterMetricFamily(f"{PREFIX}_board_new_posts", "Posts found new", labels=["board"])
    not_modified = CounterMetricFamily(
        f"{PREFIX}_board_not_modified", "List pages answered 304 Not Modified", labels=["board"]
    )
    errors = CounterMetricFamily(f"{PREFIX}_board_errors", "Errors of runs", labels=["board"])
    per_board: dict[str, dict[str, float]] = {}
    for r in rows:
        runs.add_metric([r["board"], r["finish_reason"]], r["runs"])
        sums = per_board.setdefault(r["board"], {"new": 0, "304": 0, "errors": 0, "ok": 0})
        sums["new"] += r["new"] or 0
        sums["304"] += r["not_modified"] or 0
        sums["errors"] += r["errors"] or 0
        if r["last_ok_at"] is not None:
            sums["ok"] = max(sums["ok"], r["last_ok_at"].timestamp())
    for board, sums in sorted(per_board.items()):
        new.add_metric([board], sums["new"])
        not_modified.add_metric([board], sums["304"])
        errors.add_metric([board], sums["errors"])
        if sums["ok"]:
            last_ok.add_metric([board], sums["ok"])
    yield from (last_ok, runs, new, not_modified, errors)


def push_metrics(rows: list[dict[str, Any]], outbox: dict[str, Any]) -> Iterator[Metric]:
    pushes = CounterMetricFamily(
        f"{PREFIX}_pushes", "Notification rows (post x device) by status", labels=["outcome"]
    )
    retries = CounterMetricFamily(f"{PREFIX}_notify_retries", "Push tries beyond the first")
    for r in rows:
        pushes.add_metric([r["status"]], r["n"])
    retries.add_metric([], sum(int(r["retries"] or 0) for r in rows))
    depth = GaugeMetricFamily(f"{PREFIX}_outbox_depth", "New posts whose pushes are not planned")
    depth.add_metric([], outbox.get("depth") or 0)
    oldest = GaugeMetricFamily(
        f"{PREFIX}_outbox_oldest_age_seconds", "Age of the oldest unplanned post (0: none)"
    )
    oldest.add_metric([], float(outbox.get("oldest") or 0))
    yield from (pushes, retries, depth, oldest)


def registry(url: str) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(NoticeCrawlerCollector(url))
    return reg


def serve(url: str, host: str, port: int) -> Any:
    """Serve /metrics on host:port in a daemon thread; returns the server (stop it with
    ``shutdown()`` then ``server_close()``)."""
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr=host, registry=registry(url))
    return server
