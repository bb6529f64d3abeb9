from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from noticecrawler.dates import parse_board_date, to_zone

SEOUL = ZoneInfo("Asia/Seoul")
UTC = ZoneInfo("UTC")


@pytest.fixture
def now() -> datetime:
    """The frozen clock: Saturday 2026-11-21 16:00 in Seoul."""
    return datetime(2026, 11, 21, 16, 0, tzinfo=SEOUL)


def seoul(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=SEOUL)


SEOUL_CASES = [
    # absolute, Korean style
    ("2026.11.21", seoul(2026, 11, 21)),
    ("2026. 11. 21.", seoul(2026, 11, 21)),
    ("2026-11-21", seoul(2026, 11, 21)),
    ("2026/11/21", seoul(2026, 11, 21)),
    ("2026년 11월 21일", seoul(2026, 11, 21)),
    ("2026년11월21일", seoul(2026, 11, 21)),
    ("2026.11.21 15:04", seoul(2026, 11, 21, 15, 4)),
    ("2026-11-21 15:04:33", seoul(2026, 11, 21, 15, 4, 33)),
    ("2026-11-21 15:04:33.0", seoul(2026, 11, 21, 15, 4, 33)),
    ("2026.11.21 오후 3:04", seoul(2026, 11, 21, 15, 4)),
    ("2026.11.21 오전 11:20", seoul(2026, 11, 21, 11, 20)),
    ("2026.11.21 오전 12:05", seoul(2026, 11, 21, 0, 5)),
    ("2026.11.21 오후 12:05", seoul(2026, 11, 21, 12, 5)),
    ("2026년 11월 21일 (토) 오후 3:04", seoul(2026, 11, 21, 15, 4)),
    ("2026년 11월 21일 15시 4분", seoul(2026, 11, 21, 15, 4)),
    ("2026.11.21(토) 15:04", seoul(2026, 11, 21, 15, 4)),
    ("26.11.21", seoul(2026, 11, 21)),
    ("26-11-21", seoul(2026, 11, 21)),
    ("26.11.21 09:30", seoul(2026, 11, 21, 9, 30)),
    # labels, wrappers, whitespace
    ("작성일 2026.11.21", seoul(2026, 11, 21)),
    ("등록일: 2026-11-21", seoul(2026, 11, 21)),
    ("작성일2026.11.21", seoul(2026, 11, 21)),
    ("  \n\t2026.11.21\n  ", seoul(2026, 11, 21)),
    ("[2026-11-21]", seoul(2026, 11, 21)),
    ("Date: 2026-11-21 15:04", seoul(2026, 11, 21, 15, 4)),
    ("2026-11-21\xa015:04", seoul(2026, 11, 21, 15, 4)),
    # month and day, no year
    ("11-21", seoul(2026, 11, 21)),
    ("11.21", seoul(2026, 11, 21)),
    ("11/21", seoul(2026, 11, 21)),
    ("11월 21일", seoul(2026, 11, 21)),
    ("11-21 15:04", seoul(2026, 11, 21, 15, 4)),
    ("11-22", seoul(2026, 11, 22)),  # one day ahead: a clock skew, still this year
    ("11-23", seoul(2025, 11, 23)),  # two days ahead: last year's
    ("01-05", seoul(2026, 1, 5)),
    # time only
    ("15:04", seoul(2026, 11, 21, 15, 4)),
    ("16:09", seoul(2026, 11, 21, 16, 9)),  # within ten minutes ahead: today
    ("16:11", seoul(2026, 11, 20, 16, 11)),  # further ahead: yesterday
    ("오후 3:04", seoul(2026, 11, 21, 15, 4)),
    ("23:59:59", seoul(2026, 11, 20, 23, 59, 59)),
    # relative, Korean
    ("3시간 전", seoul(2026, 11, 21, 13, 0)),
    ("23분전", seoul(2026, 11, 21, 15, 37)),
    ("방금", seoul(2026, 11, 21, 16, 0)),
    ("방금 전", seoul(2026, 11, 21, 16, 0)),
    ("30초 전", seoul(2026, 11, 21, 15, 59, 30)),
    ("2일 전", seoul(2026, 11, 19, 16, 0)),
    ("어제", seoul(2026, 11, 20)),
    ("그저께", seoul(2026, 11, 19)),
    ("1주 전", seoul(2026, 11, 14, 16, 0)),
    ("1주일 전", seoul(2026, 11, 14, 16, 0)),
    ("3개월 전", seoul(2026, 8, 21, 16, 0)),
    ("오늘", seoul(2026, 11, 21)),
    ("어제 15:04", seoul(2026, 11, 20, 15, 4)),
    # relative, English
    ("3 hours ago", seoul(2026, 11, 21, 13, 0)),
    ("23 mins ago", seoul(2026, 11, 21, 15, 37)),
    ("a minute ago", seoul(2026, 11, 21, 15, 59)),
    ("an hour ago", seoul(2026, 11, 21, 15, 0)),
    ("yesterday", seoul(2026, 11, 20)),
    ("Yesterday at 3:04 PM", seoul(2026, 11, 20, 15, 4)),
    ("just now", seoul(2026, 11, 21, 16, 0)),
    ("2 days ago", seoul(2026, 11, 19, 16, 0)),
    ("1 week ago", seoul(2026, 11, 14, 16, 0)),
    # English dates
    ("Nov 21, 2026", seoul(2026, 11, 21)),
    ("November 21, 2026", seoul(2026, 11, 21)),
    ("Nov. 21st, 2026 3:04 PM", seoul(2026, 11, 21, 15, 4)),
    ("21 Nov 2026", seoul(2026, 11, 21)),
    ("Saturday, November 21, 2026", seoul(2026, 11, 21)),
    # feeds: RFC 822 and ISO 8601, converted into the board zone
    ("Sat, 21 Nov 2026 15:04:00 +0900", seoul(2026, 11, 21, 15, 4)),
    ("Sat, 21 Nov 2026 06:04:00 GMT", seoul(2026, 11, 21, 15, 4)),
    ("Sat, 21 Nov 2026 15:04:00 KST", seoul(2026, 11, 21, 15, 4)),
    ("Fri, 20 Nov 2026 20:04:00 -0500", seoul(2026, 11, 21, 10, 4)),
    ("21 Nov 26 06:04 UT", seoul(2026, 11, 21, 15, 4)),
    ("2026-11-21T06:04:00Z", seoul(2026, 11, 21, 15, 4)),
    ("2026-11-21T15:04:00+09:00", seoul(2026, 11, 21, 15, 4)),
    ("2026-11-21T06:04:00.123+00:00", seoul(2026, 11, 21, 15, 4, 0, 123000)),
    ("2026-11-21T15:04", seoul(2026, 11, 21, 15, 4)),  # naive ISO: board time
    ("2026-11-21 06:04:00+00:00", seoul(2026, 11, 21, 15, 4)),
]


@pytest.mark.parametrize(("text", "expected"), SEOUL_CASES, ids=[c[0] for c in SEOUL_CASES])
def test_seoul_board(text: str, expected: datetime, now: datetime) -> None:
    parsed = parse_board_date(text, "Asia/Seoul", now=now)
    assert parsed == expected
    assert parsed is not None and parsed.tzinfo == SEOUL


@pytest.mark.parametrize("text", ["", "   ", "\n", "-", " - ", "—", "작성일:"])
def test_no_date_is_none(text: str, now: datetime) -> None:
    assert parse_board_date(text, "Asia/Seoul", now=now) is None


@pytest.mark.parametrize(
    "text",
    [
        "조회 12",
        "hello",
        "2026.13.01",
        "2026.02.30",
        "13-45",
        "25:00",
        "2026.11.21 99:99",
        "오후 15:04",
        "3 parsecs ago",
        "Foo 21, 2026",
        "Sat, 21 Nov 2026 15:04:00 XYZ",
    ],
)
def test_unreadable_text_raises_quoting_it(text: str, now: datetime) -> None:
    with pytest.raises(ValueError, match="unreadable date") as caught:
        parse_board_date(text, "Asia/Seoul", now=now)
    assert repr(text) in str(caught.value)


NEW_YEAR_CASES = [
    ("12-31", seoul(2026, 12, 31)),  # seen on Jan 1: last year's
    ("12월 31일", seoul(2026, 12, 31)),
    ("01-01", seoul(2027, 1, 1)),
    ("01-02", seoul(2027, 1, 2)),  # a day ahead: still this year
    ("01-03", seoul(2026, 1, 3)),
    ("23:50", seoul(2026, 12, 31, 23, 50)),  # time only after midnight: yesterday
    ("00:05", seoul(2027, 1, 1, 0, 5)),
    ("어제", seoul(2026, 12, 31)),
    ("1시간 전", seoul(2026, 12, 31, 23, 30)),
]


@pytest.mark.parametrize(("text", "expected"), NEW_YEAR_CASES, ids=[c[0] for c in NEW_YEAR_CASES])
def test_year_roll_over(text: str, expected: datetime) -> None:
    jan_first = datetime(2027, 1, 1, 0, 30, tzinfo=SEOUL)
    assert parse_board_date(text, "Asia/Seoul", now=jan_first) == expected


def test_new_year_eve_sees_next_january_first() -> None:
    eve = datetime(2026, 12, 31, 12, 0, tzinfo=SEOUL)
    assert parse_board_date("01-01", "Asia/Seoul", now=eve) == seoul(2027, 1, 1)


def test_feb_29_picks_the_last_leap_year() -> None:
    now = datetime(2027, 3, 1, tzinfo=UTC)
    assert parse_board_date("02-29", "UTC", now=now) == datetime(2024, 2, 29, tzinfo=UTC)


UTC_CASES = [
    ("2026-11-21 15:04", datetime(2026, 11, 21, 15, 4, tzinfo=UTC)),  # naive: board time
    ("Sat, 21 Nov 2026 15:04:00 +0900", datetime(2026, 11, 21, 6, 4, tzinfo=UTC)),
    ("2026-11-21T15:04:00+09:00", datetime(2026, 11, 21, 6, 4, tzinfo=UTC)),
    ("3시간 전", datetime(2026, 11, 21, 4, 0, tzinfo=UTC)),
    ("어제", datetime(2026, 11, 20, tzinfo=UTC)),
    ("06:59", datetime(2026, 11, 21, 6, 59, tzinfo=UTC)),
    ("07:30", datetime(2026, 11, 20, 7, 30, tzinfo=UTC)),
]


@pytest.mark.parametrize(("text", "expected"), UTC_CASES, ids=[c[0] for c in UTC_CASES])
def test_utc_board(text: str, expected: datetime, now: datetime) -> None:
    parsed = parse_board_date(text, "UTC", now=now)  # the Seoul clock, read in UTC: 07:00
    assert parsed == expected
    assert parsed is not None and parsed.utcoffset() == timedelta(0)


def test_elapsed_time_counts_real_hours_across_dst() -> None:
    new_york = ZoneInfo("America/New_York")
    now = datetime(2026, 3, 8, 4, 0, tzinfo=new_york)  # clocks jumped 02:00 -> 03:00
    parsed = parse_board_date("3 hours ago", new_york, now=now)
    assert parsed == datetime(2026, 3, 8, 0, 0, tzinfo=new_york)


def test_accepts_a_tzinfo_and_drops_microseconds_from_relative(now: datetime) -> None:
    parsed = parse_board_date("방금", SEOUL, now=now.replace(microsecond=123))
    assert parsed == now and parsed is not None and parsed.microsecond == 0


def test_default_now_is_the_board_clock() -> None:
    parsed = parse_board_date("방금", "Asia/Seoul")
    assert parsed is not None and parsed.tzinfo == SEOUL
    assert abs(parsed - datetime.now(SEOUL)) < timedelta(seconds=5)


def test_to_zone() -> None:
    assert to_zone("Asia/Seoul") == SEOUL
    fixed = timezone(timedelta(hours=9))
    assert to_zone(fixed) is fixed


@pytest.mark.parametrize("name", ["Asia/Nowhere", "", "../etc/passwd"])
def test_to_zone_unknown(name: str) -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        to_zone(name)
    with pytest.raises(ValueError, match="unknown time zone"):
        parse_board_date("2026-11-21", name)
