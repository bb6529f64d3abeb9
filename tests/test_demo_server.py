"""The demo board server, over real HTTP on 127.0.0.1 (one server per module, a board per test)."""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime
from email.message import Message
from email.utils import parsedate_to_datetime

import pytest
from parsel import Selector

from noticecrawler.demo import DemoServer
from noticecrawler.demo.content import SEOUL

ROWS = "table.board-list tbody tr"


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoServer]:
    with DemoServer() as server:
        yield server


def fetch(
    url: str, headers: dict[str, str] | None = None, data: object = None
) -> tuple[int, Message, bytes]:
    """``(status, headers, body)``; 3xx/4xx/5xx answers too (urllib raises those)."""
    body = None if data is None else json.dumps(data).encode()
    request = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, error.read()


def page(demo: DemoServer, board: str, number: int = 1) -> Selector:
    status, _, body = fetch(demo.list_url(board, number))
    assert status == 200
    return Selector(text=body.decode("utf-8"))


def ids(sel: Selector) -> list[str]:
    return [
        href.split("no=")[1].split("&")[0] for href in sel.css("td.title > a::attr(href)").getall()
    ]


def test_list_page_has_pinned_rows_then_ten_newest(demo: DemoServer) -> None:
    sel = page(demo, "list")
    assert len(sel.css(ROWS)) == 13
    assert len(sel.css(f"{ROWS}.notice")) == 3
    assert ids(sel) == ["901", "902", "903", *(str(n) for n in range(35, 25, -1))]
    hrefs = sel.css("td.title a::attr(href)").getall()
    assert "/list/view?no=35&page=1" in hrefs
    assert sel.css("tr.notice span.badge::text").get() == "공지"
    assert sel.css("a.next::attr(href)").get() == "?page=2"
    assert sel.css("div.paging a.on::text").get() == "1"
    assert sel.css("title::text").get() == "list 공지사항"
    assert any(sel.css("span.attach a::attr(href)").getall())


def test_pagination_repeats_pinned_rows_and_ends(demo: DemoServer) -> None:
    seen: list[str] = []
    for number in range(1, 5):
        sel = page(demo, "paging", number)
        assert len(sel.css("tr.notice")) == 3
        seen += ids(sel)[3:]
        assert bool(sel.css("a.next")) == (number < 4)
    assert seen == [str(n) for n in range(35, 0, -1)]
    past = page(demo, "paging", 5)
    assert [tr.attrib.get("class") for tr in past.css(ROWS)] == ["empty"]
    assert past.css(f"{ROWS} td::text").get() == "게시물이 없습니다"
    assert not past.css(f"{ROWS} a") and not past.css("a.next")


def test_same_board_name_same_posts() -> None:
    with DemoServer() as one, DemoServer() as two:
        titles = [page(s, "seeded").css("td.title > a::text").getall() for s in (one, two)]
    assert titles[0] == titles[1]
    assert titles[0] != page_titles_of_other_board()


def page_titles_of_other_board() -> list[str]:
    with DemoServer() as server:
        return page(server, "other").css("td.title > a::text").getall()


def test_dates_today_as_time_older_as_date() -> None:
    noon = datetime(2026, 11, 21, 15, 4, 30, tzinfo=SEOUL)
    with DemoServer(clock=lambda: noon) as server:
        sel = page(server, "dates")
        status, _, body = fetch(server.post_url("dates", 35))
    dates = sel.css("td.date::text").getall()
    assert dates[3:7] == ["15:04", "08:04", "01:04", "2026.11.20"]
    assert all(len(d) == 10 for d in dates[:3])
    view = Selector(text=body.decode())
    assert status == 200
    assert view.css("span.view-date::text").get() == "2026-11-21 15:04:00"


def test_view_page_and_unknown_post(demo: DemoServer) -> None:
    list_sel = page(demo, "view")
    title = list_sel.css("td.title > a::text").get()
    status, _, body = fetch(f"{demo.url}/view/view?no=901&page=1")
    sel = Selector(text=body.decode())
    assert status == 200
    assert sel.css("h3.view-title::text").get() == title
    assert sel.css("span.view-author::text").get()
    assert sel.css("div.view-content p::text").get()
    assert sel.css("ul.view-files a::attr(href)").get() == "/view/download?no=901&file=1"
    status, headers, body = fetch(f"{demo.url}/view/download?no=901&file=1")
    assert status == 200 and body and "attachment" in headers["Content-Disposition"]
    assert fetch(f"{demo.url}/view/view?no=999")[0] == 404
    assert fetch(f"{demo.url}/view/download?no=35&file=9")[0] == 404


def test_rss_has_twenty_newest(demo: DemoServer) -> None:
    status, headers, body = fetch(f"{demo.url}/feed/rss")
    assert status == 200 and headers["Content-Type"].startswith("application/rss+xml")
    items = ET.fromstring(body).findall("channel/item")
    assert len(items) == 20
    assert items[0].findtext("guid") == items[0].findtext("link") == demo.post_url("feed", 35)
    assert parsedate_to_datetime(items[0].findtext("pubDate") or "").utcoffset() is not None
    assert items[0].findtext("category")


def test_etag_then_304_with_if_none_match(demo: DemoServer) -> None:
    url = demo.list_url("etag")
    status, headers, body = fetch(url)
    etag = headers["ETag"]
    assert status == 200 and etag.startswith('"') and headers["Cache-Control"] == "max-age=60"
    status, headers, body = fetch(url, {"If-None-Match": etag})
    assert (status, body, headers["ETag"]) == (304, b"", etag)
    assert fetch(url, {"If-None-Match": '"other"'})[0] == 200
    # If-None-Match wins over If-Modified-Since
    future = "Fri, 01 Jan 2100 00:00:00 GMT"
    assert fetch(url, {"If-None-Match": '"other"', "If-Modified-Since": future})[0] == 200


def test_if_modified_since(demo: DemoServer) -> None:
    url = f"{demo.url}/ims/view?no=3"
    _, headers, _ = fetch(url)
    last_modified = headers["Last-Modified"]
    assert fetch(url, {"If-Modified-Since": last_modified})[0] == 304
    assert fetch(url, {"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})[0] == 200
    assert fetch(url, {"If-Modified-Since": "not a date"})[0] == 200


def test_add_puts_new_post_first_and_changes_validators(demo: DemoServer) -> None:
    _, before, _ = fetch(demo.list_url("add"))
    assert demo.add_post("add", title="2026학년도 국가장학금 3차 신청 안내") == "36"
    status, _, body = fetch(
        f"{demo.url}/add/admin/add", data={"title": "Open house 안내", "category": "행사"}
    )
    assert status == 200 and json.loads(body) == {
        "post_id": "37",
        "url": demo.post_url("add", 37),
    }
    status, after, body = fetch(demo.list_url("add"), {"If-None-Match": before["ETag"]})
    assert status == 200 and after["ETag"] != before["ETag"]
    assert after["Last-Modified"] != before["Last-Modified"]
    sel = Selector(text=body.decode())
    assert ids(sel)[3:6] == ["37", "36", "35"]
    assert sel.css("tbody tr:not(.notice) td.title > a::text").get() == "Open house 안내"
    assert sel.css("tbody tr:not(.notice) td.category::text").get() == "행사"


def test_add_pinned_and_default_title(demo: DemoServer) -> None:
    assert demo.add_post("pin", pinned=True) == "904"
    assert ids(page(demo, "pin", 2))[:4] == ["901", "902", "903", "904"]
    assert page(demo, "pin").css("tr.notice td.title > a::text")[3].get()


def test_edit_changes_title_and_reset_restores(demo: DemoServer) -> None:
    original = page(demo, "edit").css("tbody tr:not(.notice) td.title > a::text")[5].get()
    status, _, _ = fetch(f"{demo.url}/edit/admin/edit", data={"post_id": "30", "title": "새 제목"})
    assert status == 200
    assert page(demo, "edit").css("tbody tr:not(.notice) td.title > a::text")[5].get() == "새 제목"
    demo.edit_post("edit", "30", title="또 바뀐 제목")
    assert "또 바뀐 제목" in fetch(demo.post_url("edit", 30))[2].decode()
    assert fetch(f"{demo.url}/edit/admin/edit", data={"post_id": "99", "title": "x"})[0] == 404
    with pytest.raises(KeyError):
        demo.edit_post("edit", 99, title="x")
    demo.add_post("edit")
    assert fetch(f"{demo.url}/edit/admin/reset", data={})[0] == 200
    sel = page(demo, "edit")
    assert ids(sel)[3] == "35"
    assert sel.css("tbody tr:not(.notice) td.title > a::text")[5].get() == original


def test_admin_rejects_bad_requests(demo: DemoServer) -> None:
    assert fetch(f"{demo.url}/bad/admin/add", data=["not", "an", "object"])[0] == 400
    assert fetch(f"{demo.url}/bad/admin/add", data={"title": 5})[0] == 400
    assert fetch(f"{demo.url}/bad/admin/nope", data={})[0] == 404
    assert fetch(f"{demo.url}/bad/admin/add")[0] == 405
    assert fetch(f"{demo.url}/Bad/list")[0] == 404
    with pytest.raises(ValueError, match="invalid demo board name"):
        demo.add_post("Bad Board")


def test_euckr_board_is_cp949_labelled_euc_kr(demo: DemoServer) -> None:
    status, headers, body = fetch(demo.list_url("uni-euckr"))
    assert status == 200 and headers["Content-Type"] == "text/html; charset=euc-kr"
    with pytest.raises(UnicodeDecodeError):
        body.decode("euc_kr")
    text = body.decode("cp949")
    assert '<meta charset="euc-kr">' in text and "똠방각하" in text
    assert "뷁" in fetch(demo.post_url("uni-euckr", 33))[2].decode("cp949")


def test_nocharset_board_sends_no_charset(demo: DemoServer) -> None:
    _, headers, body = fetch(demo.list_url("uni-nocharset"))
    assert headers["Content-Type"] == "text/html"
    text = body.decode("cp949")
    assert "<meta" not in text and "공지사항" in text
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")


def test_broken_layout_matches_no_rows(demo: DemoServer) -> None:
    _, before, _ = fetch(demo.list_url("broken"))
    status, _, _ = fetch(f"{demo.url}/broken/admin/layout", data={"broken": True})
    assert status == 200
    status, _, body = fetch(demo.list_url("broken"), {"If-None-Match": before["ETag"]})
    sel = Selector(text=body.decode())
    assert status == 200 and sel.css(ROWS) == [] and len(sel.css("div.list-new div.item")) == 13
    demo.set_layout_broken("broken", False)
    assert len(page(demo, "broken").css(ROWS)) == 13


def test_stall_is_cut_short_by_stop() -> None:
    server = DemoServer().start()
    server.set_stall("slow", 30)
    outcome: list[object] = []

    def get() -> None:
        try:
            outcome.append(fetch(server.list_url("slow"))[0])
        except (OSError, http.client.HTTPException) as exc:
            # stop() may close the connection under the stalled request, even in the middle of
            # its 503 (then the body's read raises IncompleteRead)
            outcome.append(exc)

    thread = threading.Thread(target=get)
    thread.start()
    time.sleep(0.2)
    server.stop()
    thread.join(15)  # far below the 30 s stall: only stop() can have ended the request
    assert not thread.is_alive() and outcome
    assert not server.running


def test_stall_off_answers_at_once(demo: DemoServer) -> None:
    fetch(f"{demo.url}/unstall/admin/stall", data={"seconds": 30})
    demo.set_stall("unstall", 0)
    started = time.monotonic()
    assert fetch(demo.list_url("unstall"))[0] == 200
    assert time.monotonic() - started < 15  # not the 30 s stall


def test_requests_log_and_log_lines(demo: DemoServer, caplog: pytest.LogCaptureFixture) -> None:
    url = demo.list_url("logged")
    status, _, _ = fetch(f"{demo.url}/_admin/requests/clear", data={})
    assert status == 200
    with caplog.at_level(logging.INFO, logger="noticecrawler.demo"):
        etag = fetch(url)[1]["ETag"]
        fetch(url, {"If-None-Match": etag})
    entries = json.loads(fetch(f"{demo.url}/_admin/requests")[2])
    assert entries == demo.requests_log()
    assert [(e["method"], e["path"], e["status"]) for e in entries] == [
        ("GET", "/logged/list?page=1", 200),
        ("GET", "/logged/list?page=1", 304),
    ]
    assert entries[0]["bytes"] > 0 and entries[1]["bytes"] == 0
    assert entries[1]["if_none_match"] == etag and entries[1]["if_modified_since"] is None
    lines = [r.getMessage() for r in caplog.records if "/logged/list" in r.getMessage()]
    assert len(lines) == 2 and " 304 " in lines[1]
    demo.clear_log()
    assert demo.requests_log() == []
