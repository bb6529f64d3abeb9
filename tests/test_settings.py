"""settings.py lists every knob the notifier and the Celery layer read, with their defaults."""

from __future__ import annotations

import dispatch.config
import noticecrawler.notify.config
import noticecrawler.settings as settings


def test_settings_define_every_dispatch_and_notify_knob_with_its_documented_default() -> None:
    for module in (dispatch.config, noticecrawler.notify.config):
        for name, default in module.DEFAULTS.items():
            assert hasattr(settings, name), f"settings.py does not define {name}"
            assert getattr(settings, name) == default, name


def test_environment_is_read_only_in_settings() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    readers = [
        str(p.relative_to(root))
        for folder in ("noticecrawler", "dispatch")
        for p in (root / folder).rglob("*.py")
        if "os.environ" in p.read_text(encoding="utf-8") or "getenv(" in p.read_text("utf-8")
    ]
    assert readers == ["noticecrawler/settings.py"]
