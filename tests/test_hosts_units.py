"""The plain functions behind crawling real hosts: Retry-After, robots rules, decompressed
size, the id range of deleted posts, beat offsets, the User-Agent."""

from __future__ import annotations

import gzip
import zlib
from datetime import UTC, datetime, timedelta

import pytest
from celery import Celery

from dispatch.schedule import beat_schedule, board_offset, spread
from noticecrawler.catalog import parse_catalog
from noticecrawler.db.queries import id_range
from noticecrawler.politeness import retry_after_seconds
from noticecrawler.robots import matching_rule
from noticecrawler.sizes import decompressed_size

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


def test_retry_after_takes_seconds_or_an_http_date() -> None:
    assert retry_after_seconds(b"3") == 3.0
    assert retry_after_seconds("Tue, 01 Dec 2026 12:00:30 GMT", NOW) == 30.0
    assert retry_after_seconds("Tue, 01 Dec 2026 11:00:00 GMT", NOW) == 0.0  # past: no wait
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


ROBOTS = """
User-agent: *
Disallow: /private/
Allow: /private/open
Disallow: /*.pdf$

User-agent: noticecrawler
Disallow: /board/secret
"""


def test_robots_rule_named_longest_match_and_own_group() -> None:
    assert matching_rule(ROBOTS, "noticecrawler", "/board/secret/list") == "Disallow: /board/secret"
    assert matching_rule(ROBOTS, "noticecrawler", "/private/x") is None  # own group only
    assert matching_rule(ROBOTS, "otherbot", "/private/x") == "Disallow: /private/"
    assert matching_rule(ROBOTS, "otherbot", "/private/open/1") is None  # longer Allow wins
    assert matching_rule(ROBOTS, "otherbot", "/a/b.pdf") == "Disallow: /*.pdf$"
    assert matching_rule(ROBOTS, "otherbot", "/a/b.pdf?x=1") is None


def test_decompressed_size_counts_a_bomb_only_up_to_the_limit() -> None:
    bomb = gzip.compress(b"\0" * (64 << 20), 9)
    assert len(bomb) < 1 << 20
    counted = decompressed_size(bomb, "gzip", 8 << 20)
    assert counted is not None and (8 << 20) < counted < (9 << 20)
    small = b"<html>" + b"x" * 1000 + b"</html>"
    assert decompressed_size(gzip.compress(small), "gzip", 8 << 20) == len(small)
    assert decompressed_size(zlib.compress(small), "deflate", 8 << 20) == len(small)
    assert decompressed_size(small, "br", 8 << 20) is None  # left to Scrapy's own check


def test_id_range_only_for_numeric_ids() -> None:
    assert id_range(["120", "119", "111"]) == (111, 120)
    assert id_range(["120"]) is None
    assert id_range(["120", "abc"]) is None


def test_beat_offsets_are_stable_spread_and_within_the_interval() -> None:
    rows = "".join(
        f'[[board]]\nname = "b{i:02d}"\nstart_url = "http://h/{i}"\ninterval = "10m"\n'
        for i in range(30)
    )
    schedule = beat_schedule(parse_catalog(rows))
    offsets = sorted(e["schedule"].offset for e in schedule.values())
    assert all(0 <= o < 600 for o in offsets)
    assert offsets[-1] - offsets[0] > 300  # spread over the interval, not at one tick
    assert schedule["b07"]["schedule"] == spread(600.0, board_offset("b07", 600))
    assert board_offset("b07", 600) == board_offset("b07", 600)


def test_spread_is_due_once_per_interval_at_its_offset() -> None:
    # an app of its own: the project's current app would resolve its configuration (and start
    # the embedded Redis, left running) only to tell the time
    s = spread(10.0, 3.0, app=Celery("spread-test", set_as_current=False))
    now = s.now()
    assert not s.is_due(now).is_due
    assert s.is_due(now - timedelta(seconds=10.5)).is_due
    assert 0 < s.is_due(now).next <= 10


@pytest.mark.parametrize("contact", ["", "ops@example.org"])
def test_user_agent_names_the_project_version_and_contact(contact: str) -> None:
    from noticecrawler.settings import _user_agent

    agent = _user_agent(contact)
    assert agent.startswith("noticecrawler/0.") and (contact or "contact unset") in agent
