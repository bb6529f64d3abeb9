"""Turn the date text a board shows into an aware datetime in the board's time zone.

``parse_board_date`` understands what Korean boards, English boards and feeds write:

* absolute: ``2026.11.21``, ``2026. 11. 21.``, ``2026-11-21``, ``2026/11/21``, ``26.11.21``,
  ``2026년 11월 21일``, each with an optional weekday (``(토)``) and time (``15:04``,
  ``15:04:33``, ``오후 3:04``, ``3:04 PM``, ``15시 4분``) and an optional zone (``+0900``, ``KST``);
* month and day without a year (``11-21``, ``11.21``, ``11/21``, ``11월 21일``): the most recent
  year that puts the date at most one day after ``now``;
* a time alone (``15:04``): today, or yesterday when today's would be over 10 minutes ahead;
* relative: ``3시간 전``, ``23분전``, ``방금``, ``2일 전``, ``어제``, ``그저께``, ``오늘``,
  ``3 hours ago``, ``a minute ago``, ``yesterday``, ``just now`` (day words may carry a time,
  ``어제 15:04``; without one they mean midnight of that day);
* English and feed dates: ``Nov 21, 2026``, ``21 Nov 2026``, RFC 822 (RSS ``pubDate``) and ISO 8601
  (Atom), converted into the board's zone.

Text without a zone is board-local time. A leading label (``작성일``, ``등록일:``) is ignored.
"""

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.relativedelta import relativedelta

__all__ = ["find_board_date", "parse_board_date", "to_zone"]

_NO_DATE = frozenset({"", "-", "--", "–", "—", "."})
_TIME_ONLY_SLACK = timedelta(minutes=10)
_MONTH_DAY_SLACK = timedelta(days=1)

_LABEL = re.compile(
    r"^(?:(?:(?:최종\s*)?(?:작성|등록|게시|수정)(?:일시|일자|일|시간)?|날짜|일자|일시"
    r"|(?:date|posted(?:\s+on)?|published|updated)(?![a-z]))\s*[:：]?|[^\d:：]{1,20}[:：])\s*",
    re.IGNORECASE,
)
_WRAPPED = re.compile(r"^[\[(（【](.*)[\])）】]$")
_WEEKDAY = (
    r"(?:\s*[(（]?\s*(?:[월화수목금토일](?:요일)?|(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?)"
    r"\s*[)）]?)?"
)
_REST = r"(?:(?:\s+|\s*,\s*|T)(?:at\s+)?(?P<rest>\S.*?))?"

_YMD = re.compile(
    r"(?P<y>\d{4}|\d{2})\s*(?P<sep>[.\-/])\s*(?P<m>\d{1,2})\s*(?P=sep)\s*(?P<d>\d{1,2})\.?"
    + _WEEKDAY
    + _REST,
    re.IGNORECASE,
)
#: US order with a four-digit year: 11/19/2026, Tue, 06/02/2026 - 09:00 (19/11/2026 read day first)
_MDY = re.compile(
    r"(?:(?P<wd>[a-z]{3,9})\.?,?\s+)?(?P<m>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4})"
    r"(?:(?:\s+-\s+|\s+|\s*,\s*)(?P<rest>\S.*?))?",
    re.IGNORECASE,
)
_YMD_KO = re.compile(
    r"(?P<y>\d{4}|\d{2})\s*년\s*(?P<m>\d{1,2})\s*월\s*(?P<d>\d{1,2})\s*일" + _WEEKDAY + _REST,
    re.IGNORECASE,
)
_MD = re.compile(
    r"(?P<m>\d{1,2})\s*(?P<sep>[.\-/])\s*(?P<d>\d{1,2})\.?" + _WEEKDAY + _REST, re.IGNORECASE
)
_MD_KO = re.compile(r"(?P<m>\d{1,2})\s*월\s*(?P<d>\d{1,2})\s*일" + _WEEKDAY + _REST, re.IGNORECASE)
_EN_LEAD = r"(?:(?P<wd>[a-z]{3,9})\.?,?\s+)?"
_EN_MDY = re.compile(
    _EN_LEAD + r"(?P<mon>[a-z]{3,9})\.?\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<y>\d{4})" + _REST,
    re.IGNORECASE,
)
_EN_DMY = re.compile(
    _EN_LEAD + r"(?P<d>\d{1,2})\s+(?P<mon>[a-z]{3,9})\.?,?\s+(?P<y>\d{4}|\d{2})" + _REST,
    re.IGNORECASE,
)
_EN_MD = re.compile(
    _EN_LEAD + r"(?P<mon>[a-z]{3,9})\.?\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?" + _REST, re.IGNORECASE
)
_ISO = re.compile(r"\d{4}-?\d{2}-?\d{2}T\S+", re.IGNORECASE)
#: dates with a year, searched inside loose text (``…</a>, media release, April 24, 2013``)
_LOOSE = (
    re.compile(r"(?<![\d.])\d{4}\s*[.\-/]\s*\d{1,2}\s*[.\-/]\s*\d{1,2}(?!\d)"),
    re.compile(r"(?<!\d)\d{4}\s*년\s*\d{1,2}\s*월\s*\d{1,2}\s*일"),
    re.compile(r"\b[a-z]{3,9}\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4}\b", re.IGNORECASE),
    re.compile(r"\b\d{1,2}\s+[a-z]{3,9}\.?,?\s+\d{4}\b", re.IGNORECASE),
)

_TIME = re.compile(
    r"(?:(?P<pre>오전|오후|[ap]\.?m\.?)\s*)?"
    r"(?:(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,]\d+)?)?"
    r"|(?P<kh>\d{1,2})\s*시(?:\s*(?P<kmi>\d{1,2})\s*분)?(?:\s*(?P<ks>\d{1,2})\s*초)?)"
    r"(?:\s*(?P<post>[ap]\.?m\.?))?"
    r"(?:\s*(?P<zone>z|[+-]\d{2}:?\d{2}|(?:utc|gmt)[+-]\d{1,2}(?::?\d{2})?|[a-z]{1,5}))?",
    re.IGNORECASE,
)
_OFFSET = re.compile(r"(?:utc|gmt)?([+-])(\d{1,2}):?(\d{2})?", re.IGNORECASE)
_NAMED_ZONES = {  # RFC 822 names plus the ones Korean and Japanese feeds write
    "z": 0, "ut": 0, "utc": 0, "gmt": 0, "kst": 9, "jst": 9,
    "est": -5, "edt": -4, "cst": -6, "cdt": -5, "mst": -7, "mdt": -6, "pst": -8, "pdt": -7,
}  # fmt: skip

_KO_AGO = re.compile(r"(?P<n>\d+)\s*(?P<unit>초|분|시간|일|주일?|개월|달|년)\s*전")
_EN_AGO = re.compile(r"(?P<n>\d+|an?|one)\s*(?P<unit>[a-z]+)\s+ago", re.IGNORECASE)
_DAY_WORD = re.compile(
    r"(?P<word>오늘|어제|그저께|그제|엊그제|today|yesterday)" + _REST, re.IGNORECASE
)
_JUST_NOW = re.compile(
    r"방금(?:\s*전)?|조금\s*전|금방|just\s+now|now|moments?\s+ago|a\s+moment\s+ago|"
    r"(?:a\s+)?few\s+seconds\s+ago",
    re.IGNORECASE,
)
_DAYS_BACK = {"오늘": 0, "today": 0, "어제": 1, "yesterday": 1, "그저께": 2, "그제": 2, "엊그제": 2}
_KO_UNITS = {
    "초": "seconds", "분": "minutes", "시간": "hours", "일": "days", "주": "weeks", "주일": "weeks",
    "개월": "months", "달": "months", "년": "years",
}  # fmt: skip
_EN_UNITS = {
    "s": "seconds", "sec": "seconds", "second": "seconds", "m": "minutes", "min": "minutes",
    "minute": "minutes", "h": "hours", "hr": "hours", "hour": "hours", "d": "days", "day": "days",
    "w": "weeks", "wk": "weeks", "week": "weeks", "mo": "months", "month": "months",
    "y": "years", "yr": "years", "year": "years",
}  # fmt: skip
_MONTHS = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def to_zone(tz: str | tzinfo) -> tzinfo:
    """The tzinfo for an IANA name such as ``Asia/Seoul`` (a tzinfo is returned as is)."""
    if isinstance(tz, tzinfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {tz!r}") from exc


def parse_board_date(
    text: str, tz: str | tzinfo, now: datetime | None = None, year: int | None = None
) -> datetime | None:
    """Parse a board's date text; None when it holds no date, ValueError when it is unreadable.

    ``now`` freezes the clock (it defaults to the current time in ``tz``; a naive ``now`` is
    read as board-local time). ``year``: the year the page gives a date without one (an agenda
    under "2026 Meeting Dates"); without it, the most recent year that fits.
    """
    zone = to_zone(tz)
    if now is None:
        now = datetime.now(zone)
    now = now.replace(tzinfo=zone) if now.tzinfo is None else now.astimezone(zone)
    cleaned = _clean(text)
    if cleaned in _NO_DATE:
        return None
    for parse in _PARSERS:
        try:
            found = (
                parse(cleaned, zone, now, year) if parse in _YEARLESS else parse(cleaned, zone, now)
            )
        except ValueError as exc:
            raise ValueError(f"unreadable date {text!r}: {exc}") from exc
        if found is not None:
            return found
    if (loose := _loose(cleaned, zone, now, strict=True)) is not None:
        return loose
    raise ValueError(f"unreadable date {text!r}")


def find_board_date(text: str, tz: str | tzinfo, now: datetime | None = None) -> datetime | None:
    """The first full date (with its year) written anywhere in ``text``, or None; never raises.
    For loose text such as ``…, media release, April 24, 2013``."""
    zone = to_zone(tz)
    now = datetime.now(zone) if now is None else now
    now = now.replace(tzinfo=zone) if now.tzinfo is None else now.astimezone(zone)
    return _loose(" ".join(text.split()), zone, now)


def _loose(text: str, zone: tzinfo, now: datetime, strict: bool = False) -> datetime | None:
    """A date with its year found inside loose text, its time too when one follows. Strict:
    only punctuation around it (``, , April 24, 2013``), no words."""
    for pattern in _LOOSE:
        for match in pattern.finditer(text):
            start = match.start()
            if strict and re.search(r"\w", text[:start] + text[match.end() :]):
                continue
            for candidate in (text[start:].strip(), match.group(0).strip()):
                for parse in (_ymd, _english, _iso):
                    try:
                        found = parse(candidate, zone, now)
                    except ValueError:
                        continue
                    if found is not None:
                        return found
    return None


def _clean(text: str) -> str:
    cleaned = " ".join(text.split()).strip(" ,;|·")
    if wrapped := _WRAPPED.match(cleaned):
        cleaned = wrapped.group(1).strip()
    return _LABEL.sub("", cleaned, count=1).strip()


def _local(day: date, clock: time, zone: tzinfo, given: tzinfo | None) -> datetime:
    if given is None:
        return datetime.combine(day, clock, tzinfo=zone)
    return datetime.combine(day, clock, tzinfo=given).astimezone(zone)


def _time(rest: str | None) -> tuple[time, tzinfo | None]:
    """The clock time (and the zone, when written) in the text after a date."""
    if rest is None:
        return time(0, 0), None
    match = _TIME.fullmatch(rest)
    if match is None:
        raise ValueError(f"unreadable time {rest!r}")
    hour = int(match["h"] or match["kh"])
    minute = int(match["mi"] or match["kmi"] or 0)
    second = int(match["s"] or match["ks"] or 0)
    half = (match["pre"] or match["post"] or "").lower().replace(".", "")
    if half and hour > 12:
        raise ValueError(f"hour {hour} with {half}")
    if half in {"오후", "pm"} and hour < 12:
        hour += 12
    elif half in {"오전", "am"} and hour == 12:
        hour = 0
    return time(hour, minute, second), _zone(match["zone"])


def _zone(text: str | None) -> tzinfo | None:
    if text is None:
        return None
    if text.lower() in _NAMED_ZONES:
        return timezone(timedelta(hours=_NAMED_ZONES[text.lower()]))
    match = _OFFSET.fullmatch(text)
    if match is None:
        raise ValueError(f"unknown zone {text!r}")
    sign = -1 if match[1] == "-" else 1
    return timezone(sign * timedelta(hours=int(match[2]), minutes=int(match[3] or 0)))


def _year(text: str) -> int:
    return 2000 + int(text) if len(text) == 2 else int(text)


def _ymd(text: str, zone: tzinfo, now: datetime) -> datetime | None:
    match = _YMD.fullmatch(text) or _YMD_KO.fullmatch(text)
    if match is None:
        return None
    clock, given = _time(match["rest"])
    return _local(date(_year(match["y"]), int(match["m"]), int(match["d"])), clock, zone, given)


def _mdy(text: str, zone: tzinfo, now: datetime) -> datetime | None:
    match = _MDY.fullmatch(text)
    if match is None:
        return None
    month, day = int(match["m"]), int(match["d"])
    if month > 12 >= day:
        month, day = day, month
    clock, given = _time(match["rest"])
    return _local(date(int(match["y"]), month, day), clock, zone, given)


def _month_day(text: str, zone: tzinfo, now: datetime, year: int | None = None) -> datetime | None:
    match = _MD.fullmatch(text) or _MD_KO.fullmatch(text)
    if match is None:
        return None
    return _in_year(int(match["m"]), int(match["d"]), match["rest"], zone, now, year)


def _english_month_day(
    text: str, zone: tzinfo, now: datetime, year: int | None = None
) -> datetime | None:
    """``January 21st``, ``Dec. 16, 8:30am``: an English month and day without a year."""
    match = _EN_MD.fullmatch(text)
    if match is None or _named(match["mon"], _MONTHS) is None:
        return None
    month = _named(match["mon"], _MONTHS)
    assert month is not None
    return _in_year(month, int(match["d"]), match["rest"], zone, now, year)


def _in_year(
    month: int, day: int, rest: str | None, zone: tzinfo, now: datetime, year: int | None
) -> datetime:
    date(2000, month, day)  # a leap year: refuse 13-01 and 02-30, accept 02-29
    clock, given = _time(rest)
    if year is not None:
        return _local(date(year, month, day), clock, zone, given)
    latest = now.date() + _MONTH_DAY_SLACK
    for candidate in range(now.year + 1, now.year - 8, -1):
        try:
            found = date(candidate, month, day)
        except ValueError:  # 02-29 outside a leap year
            continue
        if found <= latest:
            return _local(found, clock, zone, given)
    raise ValueError(f"no recent year has {month:02d}-{day:02d}")


def _time_only(text: str, zone: tzinfo, now: datetime) -> datetime | None:
    if _TIME.fullmatch(text) is None:
        return None
    clock, given = _time(text)
    found = _local(now.date(), clock, zone, given)
    return found - timedelta(days=1) if found > now + _TIME_ONLY_SLACK else found


def _english(text: str, zone: tzinfo, now: datetime) -> datetime | None:
    match = _EN_MDY.fullmatch(text) or _EN_DMY.fullmatch(text)
    if match is None:
        return None
    if match["wd"] and not _named(match["wd"], _WEEKDAYS):
        raise ValueError(f"unknown weekday {match['wd']!r}")
    month = _named(match["mon"], _MONTHS)
    if month is None:
        raise ValueError(f"unknown month {match['mon']!r}")
    clock, given = _time(match["rest"])
    return _local(date(_year(match["y"]), month, int(match["d"])), clock, zone, given)


def _named(word: str, names: tuple[str, ...]) -> int | None:
    """1-based index of the name ``word`` abbreviates (``nov``, ``Sept``, ``thurs``)."""
    word = word.lower()
    for index, name in enumerate(names, start=1):
        if len(word) >= 3 and name.startswith(word):
            return index
    return None


def _iso(text: str, zone: tzinfo, now: datetime) -> datetime | None:
    if _ISO.fullmatch(text) is None:
        return None
    found = datetime.fromisoformat(text)
    return found.replace(tzinfo=zone) if found.tzinfo is None else found.astimezone(zone)


def _relative(text: str, zone: tzinfo, now: datetime) -> datetime | None:
    now = now.replace(microsecond=0)
    if _JUST_NOW.fullmatch(text):
        return now
    if match := _DAY_WORD.fullmatch(text):
        day = now.date() - timedelta(days=_DAYS_BACK[match["word"].lower()])
        clock, given = _time(match["rest"])
        return _local(day, clock, zone, given)
    if match := _KO_AGO.fullmatch(text):
        return _ago(now, int(match["n"]), _KO_UNITS[match["unit"]])
    if match := _EN_AGO.fullmatch(text):
        unit = match["unit"].lower()
        unit = _EN_UNITS.get(unit) or _EN_UNITS.get(unit.removesuffix("s"))
        if unit is None:
            raise ValueError(f"unknown unit {match['unit']!r}")
        count = match["n"].lower()
        return _ago(now, 1 if count in {"a", "an", "one"} else int(count), unit)
    return None


def _ago(now: datetime, count: int, unit: str) -> datetime:
    if unit in {"seconds", "minutes", "hours"}:  # elapsed time: count it on the UTC line
        utc = now.astimezone(UTC) - timedelta(**{unit: count})
        return utc.astimezone(now.tzinfo)
    # calendar units: the same wall time that day
    return now - relativedelta(
        days=count if unit == "days" else 0,
        weeks=count if unit == "weeks" else 0,
        months=count if unit == "months" else 0,
        years=count if unit == "years" else 0,
    )


_Parser = Callable[..., datetime | None]
_PARSERS: tuple[_Parser, ...] = (
    _relative, _iso, _ymd, _mdy, _month_day, _time_only, _english, _english_month_day,
)  # fmt: skip
#: the parsers of dates without a year, which take the page's year when it gives one
_YEARLESS: tuple[_Parser, ...] = (_month_day, _english_month_day)
