"""deploy/prometheus/noticecrawler-rules.yml: valid for promtool (where it is installed), and
every metric it uses is one the exporter serves."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from noticecrawler import metrics
from tests.conftest import ROOT

RULES = ROOT / "deploy" / "prometheus" / "noticecrawler-rules.yml"


def test_promtool_accepts_the_rules() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (.ci/run installs the prometheus package)")
    done = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 5 rules found" in done.stdout


def test_rules_use_only_metrics_the_exporter_serves() -> None:
    served = set(re.findall(r"(noticecrawler_[a-z_]+)", metrics.__doc__ or ""))
    used = set(re.findall(r"(noticecrawler_[a-z_]+)", RULES.read_text()))
    assert used, "no metric in the rules"
    assert used <= served, used - served
    alerts = re.findall(r"alert: (\w+)", RULES.read_text())
    assert {"NoticecrawlerBoardStale", "NoticecrawlerOutboxBacklog"} <= set(alerts)
    assert "NoticecrawlerPushFailureRate" in alerts
