"""settings.py lists every knob the notifier and the Celery layer read, with their defaults."""

from __future__ import annotations

import re
import types
from pathlib import Path

import dispatch.config
import noticecrawler.notify.config
import noticecrawler.settings as settings


def test_every_default_is_written_once_in_settings() -> None:
    """dispatch/config.py and notify/config.py hold no default of their own: every name they
    read exists in settings.py, and a config built from nothing equals one built from it."""
    root = Path(__file__).resolve().parent.parent
    for path in ("dispatch/config.py", "noticecrawler/notify/config.py"):
        source = (root / path).read_text(encoding="utf-8")
        assert "DEFAULTS" not in source, path
        for name in re.findall(r'"((?:NOTIFY|CRAWL|CELERY|FCM)_[A-Z_]+)"', source):
            assert hasattr(settings, name), f"{path} reads {name}, which settings.py lacks"
    assert noticecrawler.notify.config.NotifyConfig() == noticecrawler.notify.config.from_settings()
    bare = types.ModuleType("bare")
    bare.NOTICECRAWLER_HOME = "/nonexistent"  # type: ignore[attr-defined]
    bare.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # type: ignore[attr-defined]
    assert dispatch.config.time_limits(bare) == (
        settings.CRAWL_SOFT_TIME_LIMIT,
        settings.CRAWL_TIME_LIMIT,
    )


def test_default_timezone_setting_reaches_the_catalog() -> None:
    from scrapy.settings import Settings

    from noticecrawler.catalog import catalog_from_settings

    demo = {"DEMO_BOARD_URL": "http://127.0.0.1:1"}
    tz = {"NOTICECRAWLER_DEFAULT_TIMEZONE": "Europe/Berlin"}
    boards = catalog_from_settings(Settings({**demo, **tz}))
    shipped = {b.name: b.timezone for b in catalog_from_settings(Settings(demo))}
    # boards whose entry names no timezone follow the setting; the packaged [defaults] names one
    assert {b.name: b.timezone for b in boards} == shipped
    text = '[[board]]\nname = "plain"\nstart_url = "https://x.invalid/"\n'
    from noticecrawler.catalog import parse_catalog

    assert parse_catalog(text, base={"timezone": "Europe/Berlin"})[0].timezone == "Europe/Berlin"


def test_environment_is_read_only_in_settings() -> None:
    root = Path(__file__).resolve().parent.parent
    readers = [
        str(p.relative_to(root))
        for folder in ("noticecrawler", "dispatch")
        for p in (root / folder).rglob("*.py")
        if "os.environ" in p.read_text(encoding="utf-8") or "getenv(" in p.read_text("utf-8")
    ]
    assert readers == ["noticecrawler/settings.py"]
