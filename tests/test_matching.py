from __future__ import annotations

import pytest

from noticecrawler.notify.matching import Matcher, MatcherCache, Subscription, normalize


def sub(
    sub_id: int,
    keywords: list[str],
    negative: list[str] | None = None,
    boards: list[str] | None = None,
) -> Subscription:
    return Subscription(sub_id, sub_id * 10, keywords, negative or [], boards)


def test_normalize_nfkc_casefold_spaces() -> None:
    assert normalize("  ＡＩ\t\u3000Ｓｅｍｉｎａｒ \n 안내 ") == "ai seminar 안내"


@pytest.mark.parametrize(
    ("keyword", "title", "expected"),
    [
        ("장학금", "2025학년도 국가장학금 신청 안내", True),  # Hangul: substring
        ("장학", "장학생 선발", True),
        ("AI", "email 서비스 점검", False),  # Latin: word boundary
        ("AI", "AI 특강 안내", True),
        ("ai", "ＡＩ 특강", True),  # NFKC full-width
        ("AI", "생성형 AI를 활용한 수업", True),  # a Korean particle is a boundary
        ("AI", "[AI] 공모전", True),
        ("AI", "OpenAI 세미나", False),
        ("c++", "C++ 프로그래밍 특강", True),
        ("c++", "abc++ 라이브러리", False),
        ("covid-19", "COVID-19 검사 안내", True),
        ("covid-19", "covid-199 안내", False),
        ("2024", "2024년 졸업식", True),
        ("2024", "12024번 공지", False),
        ("machine learning", "Machine   Learning 세미나", True),  # runs of spaces
        ("machine  learning", "machine learning 세미나", True),
        ("캡스톤 디자인", "캡스톤\n디자인 발표회", True),
    ],
)
def test_keyword_rules(keyword: str, title: str, expected: bool) -> None:
    matcher = Matcher([sub(1, [keyword])])
    assert (matcher.match(title, "any") == {1}) is expected


def test_keyword_in_body() -> None:
    matcher = Matcher([sub(1, ["등록금"])])
    assert matcher.match("학사 공지", "cse", body="2학기 등록금 납부 기간") == {1}
    assert matcher.match("학사 공지", "cse", body="수강신청 기간") == set()


def test_keyword_does_not_span_title_and_body() -> None:
    matcher = Matcher([sub(1, ["수강 신청"])])
    assert matcher.match("2학기 수강", "cse", body="신청 기간") == set()


def test_negative_keywords() -> None:
    matcher = Matcher([sub(1, ["장학금"], negative=["국가"]), sub(2, ["장학금"])])
    assert matcher.match("국가장학금 신청", "cse") == {2}
    assert matcher.match("교내장학금 신청", "cse") == {1, 2}
    assert matcher.match("장학금 안내", "cse", body="국가 지원 사업") == {2}


def test_negative_latin_keyword_respects_boundaries() -> None:
    matcher = Matcher([sub(1, ["seminar"], negative=["ai"])])
    assert matcher.match("Seminar on email", "cse") == {1}
    assert matcher.match("AI seminar", "cse") == set()


def test_board_filter() -> None:
    matcher = Matcher([sub(1, ["채용"], boards=["cse", "ee"]), sub(2, ["채용"], boards=[])])
    assert matcher.match("채용 공고", "cse") == {1, 2}
    assert matcher.match("채용 공고", "bio") == {2}


def test_board_only_subscriptions() -> None:
    matcher = Matcher(
        [
            sub(1, [], boards=["cse"]),
            sub(2, [], negative=["휴강"], boards=["cse"]),
            sub(3, []),  # neither keywords nor boards: matches nothing
            sub(4, ["  "], boards=["ee"]),  # blank keywords count as none
        ]
    )
    assert matcher.match("아무 공지", "cse") == {1, 2}
    assert matcher.match("휴강 안내", "cse") == {1}
    assert matcher.match("아무 공지", "ee") == {4}
    assert matcher.match("아무 공지", "bio") == set()


def test_same_keyword_shared_by_many_subscriptions() -> None:
    subs = [sub(i, ["졸업", "Graduation"]) for i in range(1, 1001)]
    matcher = Matcher(subs)
    assert matcher.keyword_count == 2
    assert matcher.match("GRADUATION 졸업 졸업", "x") == set(range(1, 1001))


def test_empty_matcher() -> None:
    assert Matcher([]).match("anything", "cse") == set()


class FakeSubscriptionTable:
    def __init__(self) -> None:
        self.version = 1
        self.rows = [sub(1, ["장학금"])]
        self.loads: list[int] = []

    def load(self) -> tuple[int, list[Subscription]]:
        self.loads.append(self.version)
        return self.version, list(self.rows)


def test_cache_rebuilds_only_on_version_change() -> None:
    table = FakeSubscriptionTable()
    cache = MatcherCache(table.load, lambda: table.version)
    first = cache.get()
    assert cache.get() is first
    assert first.match("장학금", "cse") == {1}
    assert table.loads == [1]

    table.rows = [sub(1, ["장학금"]), sub(2, ["등록금"])]
    assert cache.get() is first  # version unchanged: no reload
    table.version = 2
    second = cache.get()
    assert second is not first
    assert second.match("등록금 납부", "cse") == {2}
    assert cache.get() is second
    assert table.loads == [1, 2]
    assert cache.builds == 2
