from __future__ import annotations

import pytest

from noticecrawler.extract import canonical_url, js_args

BASE = "https://www.example.ac.kr/bbs/list.php?page=3"


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        ("view.php?no=12&page=3&sca=학사", "https://www.example.ac.kr/bbs/view.php?no=12"),
        ("/bbs/view.do;jsessionid=ABC123?nttId=7&pageIndex=2", "https://www.example.ac.kr/bbs/view.do?nttId=7"),
        ("/news/322/?utm_source=main&utm_medium=mail&fbclid=x", "https://www.example.ac.kr/news/322/"),
        ("view.php?no=12#comments", "https://www.example.ac.kr/bbs/view.php?no=12"),
    ],
)  # fmt: skip
def test_post_urls_lose_paging_search_session_and_tracking_junk(href: str, expected: str) -> None:
    assert canonical_url(BASE, href) == expected


def test_a_kept_parameter_survives_even_when_it_looks_like_junk() -> None:
    assert canonical_url(BASE, "view.php?page=7&x=1", keep=("page",)) == (
        "https://www.example.ac.kr/bbs/view.php?page=7&x=1"
    )


@pytest.mark.parametrize(
    ("code", "args"),
    [
        ("javascript:fn_view('123');", ["123"]),
        ("fn_goDtlView('B1207', 'bbs'); return false;", ["B1207", "bbs"]),
        ('javascript:goView("55",  2)', ["55", "2"]),
        ("javascript:;", []),
    ],
)
def test_js_call_arguments(code: str, args: list[str]) -> None:
    assert js_args(code) == args
