"""Engine behaviour beyond the fixture folders: skipped rows, first-seen dates, detail pages
(body, exact time, attachments, form POST), contracts."""

from __future__ import annotations

from datetime import datetime

import pytest
from scrapy import FormRequest
from scrapy.http import HtmlResponse

from noticecrawler.catalog import CatalogError, parse_catalog
from noticecrawler.items import Post
from noticecrawler.spiders.engines import ENGINES
from noticecrawler.spiders.loader import spider_class
from tests.fixturecases import FIXTURES, board_for, extract, response_for, spider_for

NOW = datetime.fromisoformat("2026-11-21T16:00:00+09:00")


def spider(folder: str):
    return spider_for(board_for(FIXTURES / folder), NOW)


def test_every_engine_has_a_fixture() -> None:
    engines = {board_for(d).engine for d in FIXTURES.iterdir() if (d / "board.toml").exists()}
    assert set(ENGINES) <= engines | {"table"}


def test_rows_without_links_are_skipped_and_counted() -> None:
    s = spider("list_cards")
    posts = s.extract_posts(response_for(FIXTURES / "list_cards"))
    assert len(posts) == 4
    assert s.crawler.stats.get_value("noticecrawler/rows/no_link") == 1
    s = spider("list_divs")
    assert len(s.extract_posts(response_for(FIXTURES / "list_divs"))) == 4
    assert s.crawler.stats.get_value("noticecrawler/rows/no_link") == 1


def test_pinned_post_repeated_as_a_regular_row_is_one_pinned_post() -> None:
    got, _ = extract(FIXTURES / "gnuboard_notice")
    assert [p["post_id"] for p in got].count("127") == 1
    assert next(p for p in got if p["post_id"] == "127")["pinned"] is True


def test_feed_without_dates_takes_the_first_seen_time_marked_so() -> None:
    got, _ = extract(FIXTURES / "rss092_euckr")
    assert {p["published_source"] for p in got} == {"first_seen"}
    got, _ = extract(FIXTURES / "rss_notice")
    assert {p["published_source"] for p in got} == {"list"}


DETAIL = """<html><head><meta charset="utf-8"></head><body><div class="view">
<h3 class="view-title">t</h3><span class="view-date">2026-11-21 09:12:33</span>
<div class="view-content"><p>첫 줄</p><p>둘째 줄</p></div>
<ul class="view-files"><li><a href="/demo/download?no=7&amp;file=1">안내문.pdf</a></li></ul>
</div></body></html>"""

UNDATED = """
[[board]]
name = "undated"
start_url = "https://x.example/list"
row = "ul li"
title = "a"
link = "a"
date = ""
id = "query:no"
follow_details = true
detail_body = "div.view-content"
detail_date = "span.view-date"
detail_attachments = "ul.view-files a"
"""


def test_a_list_without_dates_takes_the_detail_page_date() -> None:
    (board,) = parse_catalog(UNDATED)
    s = spider_for(board, NOW)
    listing = HtmlResponse(
        "https://x.example/list",
        body='<ul><li><a href="view?no=7">공지</a></li></ul>'.encode(),
        encoding="utf-8",
    )
    (post,) = s.extract_posts(listing)
    assert post.published == NOW and post.published_source == "first_seen"
    request = s.detail_request(post)
    assert not request.meta.get("dont_cache")  # cached: edit checks are conditional GETs
    assert request.cb_kwargs["post"] is not post  # the list item stays untouched
    page = HtmlResponse(post.url, body=DETAIL.encode(), encoding="utf-8")
    (filled,) = list(s.parse_detail_page(page, request.cb_kwargs["post"]))
    assert filled.body == "첫 줄 둘째 줄"
    assert filled.published == datetime.fromisoformat("2026-11-21T09:12:33+09:00")
    assert filled.published_source == "detail"
    assert [(a.name, a.url) for a in filled.attachments] == [
        ("안내문.pdf", "https://x.example/demo/download?no=7&file=1")
    ]
    assert filled.list_url is None and filled.status is None and not filled.announced
    assert post.body is None and post.published_source == "first_seen"


def test_form_post_detail_pages_are_requested_with_the_form() -> None:
    s = spider("egov_notice")
    post = s.extract_posts(response_for(FIXTURES / "egov_notice"))[1]
    request = s.detail_request(post)
    assert isinstance(request, FormRequest) and request.method == "POST"
    assert request.url == "https://www.example.go.kr/cop/bbs/selectBoardArticle.do"
    assert sorted(request.body.decode().split("&")) == [
        "bbsId=BBSMSTR_000000000001",
        "nttId=20533",
    ]


@pytest.mark.parametrize(
    ("follow", "check", "status", "wanted"),
    [
        (False, False, "new", False),
        (True, False, "new", True),
        (True, False, "seen", False),
        (True, True, "seen", True),
        (False, True, "edited", True),
        (True, True, None, False),
    ],
)
def test_which_posts_get_their_detail_page(follow, check, status, wanted) -> None:
    (board,) = parse_catalog(
        UNDATED.replace("follow_details = true", f"follow_details = {str(follow).lower()}")
        + f"check_edits = {str(check).lower()}\n"
    )
    assert spider_for(board, NOW).wants_detail(status) is wanted


def test_a_code_defined_board_missing_a_required_field_is_refused() -> None:
    (board,) = parse_catalog(UNDATED)
    bad = type(board)(**{**board.__dict__, "engine": "jsboard"})
    with pytest.raises(CatalogError, match="board `undated`: field `detail_url`"):
        spider_class(bad)


def test_enabled_boards_carry_a_contract_for_scrapy_check() -> None:
    (board,) = parse_catalog(UNDATED)
    doc = spider_class(board).check_list.__doc__
    assert "@url https://x.example/list" in doc and "@returns items 1" in doc
    disabled = type(board)(**{**board.__dict__, "enabled": False})
    assert not hasattr(spider_class(disabled), "check_list")


def test_posts_are_dataclasses_with_absolute_urls() -> None:
    for folder in sorted(FIXTURES.iterdir()):
        if not (folder / "expected.json").exists():
            continue
        s = spider_for(board_for(folder), NOW)
        for post in s.extract_posts(response_for(folder)):
            assert isinstance(post, Post) and post.url.startswith("http"), folder.name


def test_an_engine_registers_itself_by_being_defined() -> None:
    from noticecrawler import catalog
    from noticecrawler.detect import detect_board
    from noticecrawler.spiders.engines.table import TableBoardSpider

    class SampleSpider(TableBoardSpider):
        engine_name = "sampleboard"
        fingerprints = (r"sampleboard/list\.php",)
        defaults = {**TableBoardSpider.defaults, "row": "table.sb tbody tr", "id": "query:sb"}

    try:
        assert ENGINES["sampleboard"] is SampleSpider
        (board,) = parse_catalog(
            '[[board]]\nname = "sample"\nengine = "sampleboard"\nstart_url = "https://x.example/"\n'
        )
        assert board.row == "table.sb tbody tr" and spider_class(board).__mro__[1] is SampleSpider
        rows = "".join(
            f'<tr><td>{n}</td><td class="title"><a href="view?sb={n}">글 {n}</a></td>'
            f'<td class="date">2026.11.{n:02d}</td></tr>'
            for n in (3, 2)
        )
        body = (
            f'<a href="sampleboard/list.php">x</a><table class="sb"><tbody>{rows}</tbody></table>'
        )
        page = HtmlResponse("https://x.example/", body=body.encode(), encoding="utf-8")
        best = detect_board(page, now=NOW)[0]
        assert best.engine == "sampleboard" and [p.post_id for p in best.posts] == ["3", "2"]
    finally:
        del ENGINES["sampleboard"]
        catalog._ENGINES.pop("sampleboard")
