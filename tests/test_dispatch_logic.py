"""The dispatch logic without Celery: configuration, beat schedule, board lock, and a crawl in a
fresh process from this (reactor-free) test process."""

from __future__ import annotations

import os
import time
import types
from datetime import timedelta
from pathlib import Path

import pytest
from celery import Celery

from dispatch import config
from dispatch.celery_app import NOTIFY_TASKS, celery_config
from dispatch.due import CLAIMED, claim_due
from dispatch.lock import BoardLock
from dispatch.schedule import (
    CHECK_ENTRY,
    batched,
    beat_schedule,
    board_offset,
    board_slots,
    check_schedule,
    spread,
)
from noticecrawler.catalog import parse_catalog
from noticecrawler.demo.catalog import board_entry
from tests.dispatch_helpers import redis_server

CATALOG = board_entry("often", interval="90s") + board_entry("daily", interval="1d", enabled=False)


def settings_module(**values: object) -> types.ModuleType:
    module = types.ModuleType("fake_settings")
    module.NOTICECRAWLER_HOME = "/nonexistent"  # type: ignore[attr-defined]
    module.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # type: ignore[attr-defined]
    for name, value in values.items():
        setattr(module, name, value)
    return module


def test_beat_schedule_has_one_expiring_entry_per_enabled_board() -> None:
    boards = parse_catalog(CATALOG, substitutions={"demo": "http://127.0.0.1:1"})
    schedule = beat_schedule(boards)
    assert schedule == {
        "often": {
            "task": "dispatch.crawl_site",
            "schedule": spread(90.0, board_offset("often", 90)),
            "args": ("often",),
            "options": {"queue": "crawl_tasks", "expires": 90.0},
        }
    }


def test_config_defaults_and_url_resolution() -> None:
    cfg = config.from_settings(settings_module())
    assert cfg.result_backend == cfg.lock_url == "redis://127.0.0.1:1/0"
    assert cfg.soft_time_limit < cfg.time_limit < cfg.lock_expire < cfg.visibility_timeout
    amqp = config.from_settings(
        settings_module(
            CELERY_BROKER_URL="amqp://u:p@127.0.0.1:5672/v",
            CELERY_RESULT_BACKEND="redis://127.0.0.1:2/1",
        )
    )
    assert amqp.lock_url == "redis://127.0.0.1:2/1"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"CRAWL_SOFT_TIME_LIMIT": 300, "CRAWL_TIME_LIMIT": 300}, "below CRAWL_TIME_LIMIT"),
        ({"CRAWL_LOCK_EXPIRE": 100}, "must exceed CRAWL_TIME_LIMIT"),
        ({"CELERY_VISIBILITY_TIMEOUT": 300}, "Redis redelivers a running task"),
    ],
)
def test_config_refuses_limits_that_would_run_a_crawl_twice(values, message) -> None:
    with pytest.raises(config.ConfigError, match=message):
        config.from_settings(settings_module(**values))


def test_celery_config_json_queues_and_routes() -> None:
    conf = celery_config(config.from_settings(settings_module()), [])
    assert conf["accept_content"] == ["json"] and conf["task_serializer"] == "json"
    assert [q.name for q in conf["task_queues"]] == ["celery", "crawl_tasks", "notify_tasks"]
    assert conf["task_routes"]["dispatch.crawl_site"] == {"queue": "crawl_tasks"}
    for name in NOTIFY_TASKS:
        assert conf["task_routes"][name] == {"queue": "notify_tasks"}
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["broker_transport_options"]["visibility_timeout"] == 3600


def test_check_schedule_is_one_entry_due_when_a_slot_passed() -> None:
    boards = parse_catalog(CATALOG, substitutions={"demo": "http://127.0.0.1:1"})
    [(name, entry)] = check_schedule(boards, 5.0).items()
    assert name == CHECK_ENTRY and entry["task"] == "dispatch.check_due"
    assert entry["options"] == {"queue": "crawl_tasks", "expires": 5.0}
    # only the enabled board's slots
    assert entry["schedule"] == batched(5.0, [(90.0, board_offset("often", 90))])
    conf = celery_config(config.from_settings(settings_module()), boards, 5.0)
    assert list(conf["beat_schedule"]) == [CHECK_ENTRY]
    assert conf["task_routes"]["dispatch.check_due"] == {"queue": "crawl_tasks"}
    assert list(
        celery_config(config.from_settings(settings_module()), boards)["beat_schedule"]
    ) == ["often"]


def test_batched_is_due_once_a_slot_passed_at_most_every_tick() -> None:
    # an app of its own: the project's (current) app would resolve its configuration, and
    # start the embedded Redis, to tell the time
    app = Celery("schedule-test", set_as_current=False)
    s = batched(2.0, [(10.0, 3.0), (10.0, 8.0)], app=app)
    now = s.now()
    state = s.is_due(now)  # just ran: no slot since
    assert not state.is_due and 0 < state.next <= 10
    assert s.is_due(now - timedelta(seconds=6)).is_due  # a slot (5 s apart) passed since
    # a slot passed, but the last message went out less than a tick ago: wait the tick out
    close = batched(20.0, [(10.0, 3.0)], app=app)
    waiting = close.is_due(now - timedelta(seconds=11))
    assert not waiting.is_due and 0 < waiting.next <= 9
    assert close.is_due(now - timedelta(seconds=21)).is_due


def test_claim_due_once_per_slot(tmp_path: Path) -> None:
    boards = parse_catalog(
        board_entry("aa", interval="60s") + board_entry("bb", interval="60s"),
        substitutions={"demo": "http://127.0.0.1:1"},
    )
    with redis_server(tmp_path / "redis") as redis, redis.client() as conn:
        now = time.time()
        slots = board_slots(boards, now)
        assert claim_due(conn, slots) == []  # first seen: from the next slot on, as beat does
        assert claim_due(conn, board_slots(boards, now + 60)) == ["aa", "bb"]
        assert claim_due(conn, board_slots(boards, now + 60)) == []  # claimed: never twice
        conn.hset(CLAIMED, "bb", 0)
        assert claim_due(conn, board_slots(boards, now + 61)) == ["bb"]


def test_board_lock(tmp_path: Path) -> None:
    with redis_server(tmp_path / "redis") as redis, redis.client() as conn:
        first = BoardLock(conn, "b", "task-1", expire=1)
        other = BoardLock(conn, "b", "task-2", expire=1)
        assert first.acquire() is None
        assert other.acquire() == "task-1"
        assert BoardLock(conn, "b", "task-1", expire=1).acquire() is None  # redelivered
        assert other.release() is False and first.holder() == "task-1"
        assert first.release() is True and first.holder() is None
        assert other.acquire() is None
        time.sleep(1.2)  # a lock whose holder died frees itself
        assert first.acquire() is None


def test_run_crawl_in_a_fresh_process_and_kill_at_timeout(
    database_url, demo_server, tmp_path
) -> None:
    from scrapy.utils.reactor import is_reactor_installed

    from dispatch.crawl import crawl_settings, run_crawl

    settings = crawl_settings(
        {
            "DATABASE_URL": database_url,
            "DEMO_BOARD_URL": demo_server.url,
            "HTTPCACHE_DIR": str(tmp_path / "httpcache"),
            "NOTICECRAWLER_NOTIFY_SENDER": "",
        }
    )
    summary = run_crawl("demo", timeout=60, settings=settings)
    assert summary["finish_reason"] == "finished" and summary["new"] == 33
    assert summary["pid"] != os.getpid() and summary["max_rss_mb"] > 0
    assert not is_reactor_installed()  # the parent stays clean for the next fork

    demo_server.set_stall("demo", 30)
    killed = run_crawl("demo", timeout=1.5, settings=settings)
    assert killed["finish_reason"] == "time_limit" and killed["errors"] == 1
    assert killed["seconds"] < 15  # killed at 1.5 s, not run to the 30 s stall
    from noticecrawler.db import connect

    with connect(database_url) as conn:
        reasons = [r["finish_reason"] for r in conn.execute("SELECT * FROM crawl_runs ORDER BY id")]
    assert reasons == ["finished", "time_limit"]
