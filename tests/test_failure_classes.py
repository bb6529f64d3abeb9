"""The ten classes of failure seen on real boards (issue 10), each fixed in the engines'
defaults: every test reads a small page of its own with an engine's defaults only (no selector
overrides), clock frozen. The last tests crawl boards whose pinned rows fill whole pages and
check the early stop."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from scrapy.http import HtmlResponse

from noticecrawler.catalog import parse_catalog
from noticecrawler.dates import parse_board_date
from noticecrawler.detect import detect_board
from noticecrawler.items import Post
from tests.conftest import run_crawl
from tests.fixturecases import spider_for

NOW = datetime.fromisoformat("2026-11-21T16:00:00+09:00")
URL = "https://board.example.org/notice/list"


def read(engine: str, body: str, url: str = URL, **fields: str) -> list[Post]:
    extra = "".join(f'{k} = "{v}"\n' for k, v in fields.items())
    row = f'[[board]]\nname = "trial"\nengine = "{engine}"\nstart_url = "{url}"\n{extra}'
    (board,) = parse_catalog(row)
    page = HtmlResponse(url, body=f"<html><body>{body}</body></html>".encode(), encoding="utf-8")
    return spider_for(board, NOW).extract_posts(page)


def table(rows: str, cls: str = "list") -> str:
    return f'<table class="{cls}"><tbody>{rows}</tbody></table>'


# 1 ------------------------------------------------------------------------------------------
def test_pinned_only_when_the_row_is_marked() -> None:
    # an XE skin whose first cell is a category link: no row is pinned
    xe = table(
        "".join(
            f'<tr><td class="cate"><a href="/index.php?mid=n&category=7">학사</a></td>'
            f'<td class="title"><a href="/index.php?mid=n&document_srl={n}">글 {n}</a></td>'
            f'<td class="time">2026.11.{n:02d}</td></tr>'
            for n in (12, 11, 10)
        ),
        "bd_lst",
    )
    assert [p.pinned for p in read("xe", xe)] == [False, False, False]
    # a Joomla table with no number column: no row is pinned
    joomla = table(
        "".join(
            f'<tr><td class="list-title"><a href="/news?view=article&id={n}:alias-{n}">News {n}'
            f'</a></td><td class="list-date">2026-11-{n:02d}</td></tr>'
            for n in (12, 11, 10)
        )
    )
    assert [p.pinned for p in read("table", joomla)] == [False, False, False]
    # a numbered board: the row whose number cell says 공지 is pinned, and so is a row marked
    # by a badge
    numbered = table(
        '<tr><td>공지</td><td class="subject"><a href="view?no=90">규정</a></td></tr>'
        '<tr><td>12</td><td class="subject"><a href="view?no=12">열둘</a></td></tr>'
        '<tr><td>11</td><td class="subject"><span class="badge">Notice</span>'
        '<a href="view?no=11">열하나</a></td></tr>'
        '<tr><td>10</td><td class="subject"><a href="view?no=10">열</a></td></tr>'
    )
    assert [(p.post_id, p.pinned) for p in read("table", numbered)] == [
        ("90", True),
        ("12", False),
        ("11", True),
        ("10", False),
    ]


# 2 ------------------------------------------------------------------------------------------
MODERN_ZB = table(
    "".join(
        f'<tr class="bd-row"><td class="bd-num">{n}</td><td class="bd-subj">'
        f'<a class="bd-link" href="view.php?id=free&page=1&no={n}">글 {n}</a></td>'
        f'<td class="bd-date">2026-11-{n:02d}</td></tr>'
        for n in (20, 19, 18)
    ),
    "bd-table",
).replace("<table", '<a href="zboard.php?id=free">목록</a><table')


def test_the_generic_table_stands_behind_a_specialised_engine() -> None:
    # ZeroBoard's fingerprints, but no list0/list1 rows: its defaults find nothing alone
    posts = read("zeroboard", MODERN_ZB, url="https://zb.example.org/zboard.php?id=free")
    assert [(p.post_id, p.title, p.published.day if p.published else None) for p in posts] == [
        ("20", "글 20", 20),
        ("19", "글 19", 19),
        ("18", "글 18", 18),
    ]
    # every specialised engine: a plain table it does not know is read by the generic guess
    plain = table(
        "".join(
            f'<tr><td>{n}</td><td class="subj"><a href="read.php?num={n}">글 {n}</a></td>'
            f'<td class="when">2026-11-{n:02d}</td></tr>'
            for n in (9, 8, 7)
        )
    )
    for engine in ("gnuboard", "xe", "zeroboard", "wordpress", "list"):
        posts = read(engine, plain)
        assert [(p.post_id, p.url.rsplit("/", 1)[1]) for p in posts] == [
            ("9", "read.php?num=9"),
            ("8", "read.php?num=8"),
            ("7", "read.php?num=7"),
        ], engine
        assert [p.published.day if p.published else 0 for p in posts] == [9, 8, 7], engine
    page = HtmlResponse(URL, body=MODERN_ZB.encode(), encoding="utf-8")
    best = detect_board(page, now=NOW)[0]
    assert best.engine == "zeroboard" and [p.post_id for p in best.posts] == ["20", "19", "18"]


# 3 ------------------------------------------------------------------------------------------
def test_a_card_title_is_its_heading_not_the_whole_card() -> None:
    cards = '<div class="news-list">' + "".join(
        f'<a class="item" href="/news/{n}"><span class="thumb"></span><h4>소식 {n}</h4>'
        f'<span class="views">조회 {n}0</span><span class="cmt">[{n}]</span>'
        f'<span class="date">{n}시간 전</span><span class="author">홍보팀</span></a>'
        for n in (3, 2, 1)
    )
    posts = read("list", cards + "</div>")
    assert [p.title for p in posts] == ["소식 3", "소식 2", "소식 1"]
    assert [p.post_id for p in posts] == ["3", "2", "1"]


# 4 ------------------------------------------------------------------------------------------
AGENDA = (
    '<ul class="agenda">'
    '<li><span class="date">December 2, 2026</span> <span class="title">Board meeting</span></li>'
    '<li><span class="date">November 18, 2026</span> <span class="title">Finance committee'
    '</span> <a href="/minutes/1118.pdf">Minutes</a></li>'
    '<li><span class="date">November 4, 2026</span> <span class="title">Board meeting</span></li>'
    "</ul>"
)


def test_rows_without_a_link_are_posts_keyed_by_their_text() -> None:
    posts = read("list", AGENDA, row="ul.agenda > li")
    assert [p.title for p in posts] == ["Board meeting", "Finance committee", "Board meeting"]
    linkless = [posts[0], posts[2]]
    assert all(p.url == URL for p in linkless)
    assert posts[1].url == "https://board.example.org/minutes/1118.pdf"
    # the same title on another date is another post; the same row read again, the same id
    assert linkless[0].post_id != linkless[1].post_id
    again = read("list", AGENDA, row="ul.agenda > li")
    assert [p.post_id for p in again] == [p.post_id for p in posts]
    assert [p.published.day if p.published else 0 for p in posts] == [2, 18, 4]


# 5 ------------------------------------------------------------------------------------------
def test_featured_blocks_beside_the_rows_are_not_posts() -> None:
    best = table(
        '<tr><td>1</td><td class="subject"><a href="view?no=500">인기글</a></td></tr>'
        '<tr><td>2</td><td class="subject"><a href="view?no=501">인기글 2</a></td></tr>',
        "best",
    )
    rows = table(
        "".join(
            f'<tr><td>{n}</td><td class="subject"><a href="view?no={n}">글 {n}</a></td>'
            f'<td class="date">2026.11.{n:02d}</td></tr>'
            for n in (14, 13, 12)
        )
    )
    posts = read("table", best + rows)
    assert [(p.post_id, p.pinned) for p in posts] == [("14", False), ("13", False), ("12", False)]


# 6 ------------------------------------------------------------------------------------------
def test_query_strings_are_kept_as_written() -> None:
    rows = table(
        '<tr><td>2</td><td class="subject"><a href="view.do?path=/notice/2026&no=2&page=3">'
        "가</a></td></tr>"
        '<tr><td>1</td><td class="subject"><a href="view.do?no=1&key=a%2Fb&sca=x">나</a></td></tr>'
    )
    assert [p.url for p in read("table", rows)] == [
        "https://board.example.org/notice/view.do?path=/notice/2026&no=2",
        "https://board.example.org/notice/view.do?no=1&key=a%2Fb",
    ]


# 7 ------------------------------------------------------------------------------------------
def test_the_full_date_in_an_attribute_beats_the_time_shown() -> None:
    rows = table(
        '<tr><td>2</td><td class="subject"><a href="view?no=2">가</a></td>'
        '<td class="date" title="26.07.28 22:18:06">22:18:06</td></tr>'
        '<tr><td>1</td><td class="subject"><a href="view?no=1">나</a></td>'
        '<td class="date"><span title="2026-07-27 09:01:02">07-27</span></td></tr>'
    )
    assert [p.published for p in read("table", rows)] == [
        datetime.fromisoformat("2026-07-28T22:18:06+09:00"),
        datetime.fromisoformat("2026-07-27T09:01:02+09:00"),
    ]


# 8 ------------------------------------------------------------------------------------------
def test_ids_inside_a_javascript_object_literal() -> None:
    rows = table(
        "".join(
            f'<tr><td>{n}</td><td class="subject"><a href="javascript: view(\'board\', '
            f'{{ no: {n} }})">글</a></td></tr>'
            for n in (12345, 12344)
        )
    )
    detail = "https://board.example.org/view?no={id}"
    assert [p.post_id for p in read("jsboard", rows, detail_url=detail)] == ["12345", "12344"]
    posts = read("jsboard", rows, detail_url=detail, id="js:1")
    assert [p.url for p in posts] == [detail.format(id=12345), detail.format(id=12344)]


# 9 ------------------------------------------------------------------------------------------
def test_ids_carry_no_title_slug() -> None:
    rows = table(
        '<tr><td class="list-title"><a href="/index.php?option=com_content&view=article'
        '&id=314:some-title-alias&catid=9">가</a></td></tr>'
        '<tr><td class="list-title"><a href="/news/313-older-title-alias">나</a></td></tr>'
    )
    posts = read("table", rows)
    assert [p.post_id for p in posts] == ["314", "313"]
    assert posts[0].url.endswith("id=314:some-title-alias&catid=9")  # the URL as written


# 10 -----------------------------------------------------------------------------------------
def test_dates_inside_loose_text() -> None:
    assert parse_board_date(", , April 24, 2013", "Asia/Seoul") == datetime.fromisoformat(
        "2013-04-24T00:00:00+09:00"
    )
    press = '<ul class="press">' + "".join(
        f'<li><a href="/press/{n}.html">Release {n}</a>, <em>media release</em>, '
        f"April {n}, 2013</li>"
        for n in (24, 17, 9)
    )
    posts = read("list", press + "</ul>", row="ul.press > li")
    assert [(p.title, p.published.day if p.published else 0) for p in posts] == [
        ("Release 24", 24),
        ("Release 17", 17),
        ("Release 9", 9),
    ]


# the early stop on boards of pinned rows -----------------------------------------------------
class PinnedBoards(BaseHTTPRequestHandler):
    """``/allpinned?page=N``: every row of every page pinned (distinct posts per page);
    ``/notices?page=N``: notices fill page 1, regular rows from page 2 on."""

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        page = int(parse_qs(parts.query).get("page", ["1"])[0])
        if parts.path == "/allpinned":
            rows = [(f"{page}{i}", "공지") for i in range(5)]
        elif page == 1:
            rows = [(f"90{i}", "공지") for i in range(5)]
        else:
            top = 100 - 10 * (page - 2)
            rows = [(str(n), str(n)) for n in range(top, top - 10, -1)]
        body = table(
            "".join(
                f'<tr><td>{mark}</td><td class="subject"><a href="view?no={no}">글 {no}</a></td>'
                f'<td class="date">2026-11-01</td></tr>'
                for no, mark in rows
            )
        )
        data = f"<html><body>{body}</body></html>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def pinned_boards(crawl_env: dict[str, str], tmp_path: Path) -> Iterator[dict[str, str]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), PinnedBoards)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(
        "".join(
            f'[[board]]\nname = "{name}"\nengine = "table"\nstart_url = "{base}/{name}"\n'
            "max_pages = 8\nfirst_crawl_max_pages = 8\n"
            for name in ("allpinned", "notices")
        )
    )
    yield {**crawl_env, "NOTICECRAWLER_CATALOG": str(catalog)}
    server.shutdown()
    server.server_close()


def test_boards_of_pinned_rows_stop_early_instead_of_paging_to_the_limit(pinned_boards) -> None:
    # every row pinned: once a pinned-only page after the first shows nothing new, stop
    first = run_crawl("allpinned", pinned_boards, "HTTPCACHE_ENABLED=False")
    assert first.run["finish_reason"] == "finished", first.log
    assert first.run["pages"] == 8  # a first crawl: every page is new, up to its limit
    again = run_crawl("allpinned", pinned_boards, "HTTPCACHE_ENABLED=False")
    assert again.run["pages"] == 2 and again.run["new"] == 0, again.log
    # notices fill page 1: page 2 is still read (its regular rows are known), then stop
    first = run_crawl("notices", pinned_boards, "HTTPCACHE_ENABLED=False")
    again = run_crawl("notices", pinned_boards, "HTTPCACHE_ENABLED=False")
    assert first.run["new"] == 5 + 10 * 7, first.log
    assert again.run["pages"] == 2 and again.run["new"] == 0, again.log
