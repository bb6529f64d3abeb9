"""The operator page (/admin/) in a real headless browser: Debian's chromium driven through
chromedriver (selenium). It signs in with the admin token, reads the boards table, presses a
board's "crawl now" and saves a screenshot (admin.png in the test's tmp dir, kept as a CI
artifact). Skipped, saying so, only where chromium or chromedriver is not installed."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis

from noticecrawler.api import tokens
from tests.notify_helpers import Broker
from tests.test_api_helpers import ApiServer, api_config, api_server, test_catalog, user_token

pytestmark = pytest.mark.slow
Conn = psycopg.Connection[Any]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
ERROR = "board `cse`: row selector `table.board-list tbody tr` matched 0 rows on http://x/cse"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("chromium and chromedriver are not installed (apt-get install chromium "
                    "chromium-driver; .ci/run does it)")  # fmt: skip
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--window-size=1280,900",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def seed(db: Conn) -> None:
    """Two boards' runs (one clean, one failing), posts over three days, an outbox, pushes."""
    now = datetime.now(UTC)
    db.execute(
        """
        INSERT INTO crawl_runs (board, started_at, finished_at, pages, requests, items, new,
                                errors, error_detail, finish_reason)
        VALUES ('demo', %(t)s, %(t)s, 1, 1, 12, 2, 0, NULL, 'finished'),
               ('cse', %(t)s, %(t)s, 1, 1, 0, 0, 1, %(e)s, 'empty_list')
        """,
        {"t": now - timedelta(minutes=5), "e": ERROR},
    )
    # demo: 3 posts today, 2 yesterday, 1 two days ago
    for age, n in [(0, 3), (1, 2), (2, 1)]:
        db.execute(
            """
            INSERT INTO posts (board, post_id, title, url, first_seen_at)
            SELECT 'demo', %s || '-' || i, 't', 'http://x/' || i, %s
            FROM generate_series(1, %s) AS i
            """,
            (str(age), now - timedelta(days=age), n),
        )
    ids = [r["id"] for r in db.execute("SELECT id FROM posts ORDER BY id").fetchall()]
    db.execute("INSERT INTO notify_outbox (post_id) VALUES (%s), (%s)", (ids[0], ids[1]))
    user = db.execute("INSERT INTO users DEFAULT VALUES RETURNING id").fetchone()
    assert user is not None
    device = db.execute(
        "INSERT INTO devices (user_id, fcm_token, platform) VALUES (%s, 'p', 'web') RETURNING id",
        (user["id"],),
    ).fetchone()
    assert device is not None
    for post, status in [(ids[2], "sent"), (ids[3], "sent"), (ids[4], "failed")]:
        db.execute(
            "INSERT INTO notifications (post_id, device_id, status) VALUES (%s, %s, %s)",
            (post, device["id"], status),
        )


@pytest.fixture
def page_api(tmp_path: Path, database_url: str, db: Conn) -> Iterator[tuple[ApiServer, Broker]]:
    broker = Broker(tmp_path / "redis").start()
    catalog = test_catalog(tmp_path / "catalog.toml", "demo", "cse")
    cfg = api_config(
        database_url, catalog, "http://127.0.0.1:9", broker_url=broker.url, lock_url=broker.url
    )
    try:
        with api_server(cfg) as server:
            yield server, broker
    finally:
        broker.stop()


def cells(driver: Any) -> dict[str, dict[str, str]]:
    from selenium.webdriver.common.by import By

    table: dict[str, dict[str, str]] = {}
    for row in driver.find_elements(By.CSS_SELECTOR, "table#boards tbody tr"):
        name = row.get_attribute("data-board")
        table[name] = {
            cls: row.find_element(By.CSS_SELECTOR, f"td.{cls}").text
            for cls in ("board", "state", "last-run", "last-error")
        }
        chart = row.find_element(By.CSS_SELECTOR, "td.per-day svg")
        table[name]["chart"] = chart.get_attribute("aria-label") or ""
    return table


def test_operator_page_in_chromium(
    page_api: tuple[ApiServer, Broker], db: Conn, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    api, broker = page_api
    seed(db)
    admin = tokens.issue(db, None, admin=True, label="operator")
    _, user = user_token(db, "alice")

    browser.get(f"{api.url}/admin/")
    assert browser.current_url.endswith("/admin/login")  # not signed in: the form
    browser.find_element(By.ID, "token").send_keys(user)
    browser.find_element(By.ID, "signin").click()
    assert "not an admin token" in browser.page_source
    browser.find_element(By.ID, "token").send_keys(admin)
    browser.find_element(By.ID, "signin").click()
    assert browser.current_url.endswith("/admin/"), browser.current_url

    table = cells(browser)
    assert set(table) == {"demo", "cse"}
    assert table["demo"]["state"] == "ok" and table["cse"]["state"] == "failing"
    assert "finished" in table["demo"]["last-run"] and "new 2" in table["demo"]["last-run"]
    assert "empty_list" in table["cse"]["last-run"]
    assert table["cse"]["last-error"] == ERROR and table["demo"]["last-error"] == ""
    # 14 bars, oldest first: 1 post two days ago, 2 yesterday, 3 today
    assert table["demo"]["chart"].endswith(": " + " ".join(["0"] * 11 + ["1", "2", "3"]))
    assert table["cse"]["chart"].endswith(": " + " ".join(["0"] * 14))
    assert "2 waiting" in browser.find_element(By.ID, "outbox").text
    pushes = {
        e.get_attribute("data-status"): e.text
        for e in browser.find_elements(By.CSS_SELECTOR, "#pushes .outcome")
    }
    assert pushes == {"failed": "failed 1", "sent": "sent 2"}
    shot = tmp_path / "admin.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 5_000
    print(f"screenshot: {shot}")

    # "crawl now" sends crawl_site through the broker to the crawl queue
    row = browser.find_element(By.CSS_SELECTOR, "tr[data-board='demo']")
    row.find_element(By.CSS_SELECTOR, "button").click()
    assert "crawl of demo queued" in browser.find_element(By.CSS_SELECTOR, ".note").text
    with redis.Redis.from_url(broker.url) as r:
        import json

        [message] = [json.loads(m) for m in r.lrange("crawl_tasks", 0, -1)]
    assert message["headers"]["task"] == "dispatch.crawl_site"
    assert message["headers"]["argsrepr"] == "['demo']"


def test_operator_page_refuses_without_an_admin_token(
    page_api: tuple[ApiServer, Broker], db: Conn
) -> None:
    api, _ = page_api
    _, user = user_token(db, "alice")
    admin = tokens.issue(db, None, admin=True)
    with httpx.Client(base_url=api.url, timeout=30) as c:
        assert c.get("/admin/").headers["location"] == "/admin/login"
        as_user = c.get("/admin/", headers={"Authorization": f"Bearer {user}"})
        assert as_user.status_code == 303
        assert c.post("/admin/login", data={"token": user}).status_code == 401
        assert c.post("/admin/boards/demo/crawl").headers["location"] == "/admin/login"
        bearer = c.get("/admin/", headers={"Authorization": f"Bearer {admin}"})
        assert bearer.status_code == 200 and "table id=boards" in bearer.text
        signed = c.post("/admin/login", data={"token": admin})
        assert signed.status_code == 303
        cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/admin" in cookie
        foreign = c.post("/admin/boards/demo/crawl", headers={"Origin": "https://evil.example"})
        assert foreign.status_code == 403


def test_form_posts_behind_a_tls_proxy_are_same_origin(
    page_api: tuple[ApiServer, Broker], db: Conn
) -> None:
    api, _ = page_api
    admin = tokens.issue(db, None, admin=True)
    host = f"127.0.0.1:{api.port}"
    with httpx.Client(base_url=api.url, timeout=30) as c:
        proxied = c.post(
            "/admin/login", data={"token": admin}, headers={"Origin": f"https://{host}"}
        )
        assert proxied.status_code == 303
        other = c.post(
            "/admin/login", data={"token": admin}, headers={"Origin": "https://127.0.0.2:1"}
        )
        assert other.status_code == 403
