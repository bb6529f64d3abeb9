"""Every systemd unit under deploy/systemd is hardened: the directives the issue names are set,
and `systemd-analyze security --offline=true` rates each at exposure 4.0 or below."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

UNITS = sorted((ROOT / "deploy" / "systemd").glob("*.service"))
REQUIRED = (
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    "ReadWritePaths=/var/lib/noticecrawler",
    "PrivateTmp=yes",
    "PrivateDevices=yes",
    "ProtectHome=yes",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    "UMask=0027",
)
MAX_EXPOSURE = 4.0


def test_the_units_are_the_expected_ones() -> None:
    names = {u.name for u in UNITS}
    assert names == {
        "noticecrawler-worker@.service",
        "noticecrawler-beat.service",
        "noticecrawler-flower.service",
        "noticecrawler-exporter.service",
        "noticecrawler-api.service",
    }


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_unit_sets_every_hardening_directive(unit: Path) -> None:
    lines = {line.strip() for line in unit.read_text().splitlines()}
    missing = [d for d in REQUIRED if not any(line.startswith(d) for line in lines)]
    assert not missing, f"{unit.name} lacks {missing}"


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_systemd_analyze_security_rates_the_unit_safe(unit: Path, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (.ci/run installs the systemd package)")
    # a template is analysed as one of its instances
    name = unit.name.replace("@.service", "@crawler.service")
    copy = tmp_path / name
    copy.write_text(unit.read_text())
    done = subprocess.run(
        [analyze, "security", "--offline=true", "--no-pager", str(copy)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert found, done.stdout + done.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE, done.stdout


def test_flower_unit_requires_basic_auth_and_listens_locally() -> None:
    unit = (ROOT / "deploy" / "systemd" / "noticecrawler-flower.service").read_text()
    assert "--basic-auth=${FLOWER_BASIC_AUTH}" in unit
    assert "FLOWER_BASIC_AUTH is not set" in unit and "--address=127.0.0.1" in unit
    assert "EnvironmentFile=/etc/noticecrawler/flower.env" in unit
