"""Seed content of a demo board: realistic Korean notices, the same for the same board name.

Only the wording is seeded (from the board name, with :class:`random.Random`, whose string seeds
do not depend on ``PYTHONHASHSEED``); the dates are relative to when the board was created.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

SEOUL = ZoneInfo("Asia/Seoul")

#: regular posts in a fresh board, ids 1..REGULAR_COUNT, post k published (35-k)*7 hours ago
REGULAR_COUNT = 35
HOURS_BETWEEN_POSTS = 7
#: pinned notices in a fresh board; posts pinned later get 904, 905, …
PINNED_IDS = (901, 902, 903)
#: a regular post whose title needs CP949 (똠, 뷁, 햏 are not in EUC-KR / KS X 1001)
CP949_ONLY_ID = 33
CP949_ONLY_TITLE = "[동아리] 똠방각하 연극동아리 신입회원 모집 (뷁·햏 환영)"

# (category, author, title template); {y} is the academic year, {n} a small ordinal
_TEMPLATES: tuple[tuple[str, str, str], ...] = (
    ("장학", "장학팀", "{y}학년도 국가장학금 {n}차 신청 안내"),
    ("장학", "장학팀", "{y}학년도 2학기 교내 근로장학생 모집"),
    ("장학", "장학팀", "[장학] 외부장학금(재단법인 미래인재) 추천 대상자 선발 공고"),
    ("학사", "학사지원팀", "Spring semester course registration (수강신청) 일정"),
    ("학사", "학사지원팀", "[학사] 졸업논문 제출 안내"),
    ("학사", "학사지원팀", "{y}학년도 하계 계절학기 수강신청 안내"),
    ("학사", "학사지원팀", "[학사] 복학 및 휴학 신청 기간 안내 ({n}차)"),
    ("학사", "교무처", "중간고사 기간 강의실 변경 및 Online exam 유의사항"),
    ("학사", "교무처", "[학사] 성적 이의신청 기간 안내"),
    ("학사", "학사지원팀", "전과(Change of major) 신청 안내"),
    ("취업", "경력개발센터", "{y} 하반기 삼성전자 DS부문 채용설명회 개최"),
    ("취업", "경력개발센터", "[취업] AI·SW 분야 현장실습(Internship) 참여자 모집"),
    ("취업", "경력개발센터", "Resume & Interview 클리닉 {n}기 신청 안내"),
    ("취업", "경력개발센터", "[채용] 네이버 Cloud 신입 개발자 공개채용 안내"),
    ("행사", "학생지원팀", "{y} 대동제(축제) 부스 운영 신청 안내"),
    ("행사", "학생지원팀", "[행사] Global Day 국제교류 박람회 개최"),
    ("행사", "총학생회", "제{n}회 총장배 e-Sports 대회 참가팀 모집"),
    ("행사", "도서관", "[도서관] 독서 마라톤 Reading Challenge 참가 안내"),
    ("일반", "총무팀", "[시설] 공학관 엘리베이터 정기 점검 안내"),
    ("일반", "정보화본부", "통합 LMS 시스템 점검에 따른 서비스 중단 안내"),
    ("일반", "정보화본부", "[보안] 피싱 메일(Phishing mail) 주의 안내"),
    ("일반", "총무팀", "교내 주차장 이용 및 주차권 발급 안내"),
    ("일반", "보건센터", "[보건] 학생 건강검진 실시 안내 ({n}차)"),
    ("국제", "국제교류팀", "{y}학년도 2학기 교환학생(Exchange Student) 파견 모집"),
    ("국제", "국제교류팀", "[국제] TOEIC Speaking 응시료 지원 안내"),
)

_PINNED: tuple[tuple[str, str, str], ...] = (
    ("학사", "학사지원팀", "[필독] {y}학년도 학사일정 안내"),
    ("일반", "총무팀", "[공지] 공지사항 게시판 이용 안내 (Notice board guide)"),
    ("장학", "장학팀", "[필독] 장학금 부정수급 방지 안내"),
)

_FILES = ("안내문.pdf", "신청서.hwp", "붙임1_일정표.xlsx", "poster.png", "서식_신청서.docx")

_BODY_LINES = (
    "신청 기간: {start} ~ {end}",
    "신청 방법: 포털(Portal) 로그인 후 [학생서비스] 메뉴에서 온라인 신청",
    "대상: 재학생 및 휴학생 전원",
    "제출 서류: 신청서 1부, 재학증명서 1부",
    "기타 자세한 사항은 첨부파일을 참고하시기 바랍니다.",
    "※ 기한 내 미신청 시 불이익이 있을 수 있으니 유의하시기 바랍니다.",
)


@dataclass(frozen=True)
class DemoPost:
    no: int
    title: str
    category: str
    author: str
    published: datetime
    body: str
    hits: int
    pinned: bool = False
    files: tuple[str, ...] = field(default=())


def minute(moment: datetime) -> datetime:
    """``moment`` in Asia/Seoul, truncated to the minute (what list and detail pages show)."""
    return moment.astimezone(SEOUL).replace(second=0, microsecond=0)


def make_body(rng: random.Random, title: str, published: datetime) -> str:
    start = published.date() + timedelta(days=rng.randint(1, 5))
    end = start + timedelta(days=rng.randint(3, 14))
    lines = [f"{title} 관련하여 아래와 같이 안내드리오니 참고하시기 바랍니다."]
    for line in rng.sample(_BODY_LINES, 3):
        lines.append(line.format(start=start.strftime("%Y.%m.%d"), end=end.strftime("%Y.%m.%d")))
    lines.append(f"문의: 02-1234-5678 (내선 {rng.randint(1000, 9999)})")
    return "\n".join(lines)


def make_seed(board: str, created: datetime) -> list[DemoPost]:
    """The posts of a fresh board named ``board`` created at ``created``."""
    rng = random.Random(f"noticecrawler-demo:{board}")
    created = minute(created)
    year = created.year
    posts: list[DemoPost] = []
    for k in range(1, REGULAR_COUNT + 1):
        published = created - timedelta(hours=(REGULAR_COUNT - k) * HOURS_BETWEEN_POSTS)
        category, author, template = rng.choice(_TEMPLATES)
        title = template.format(y=year, n=rng.randint(1, 5))
        if k == CP949_ONLY_ID:
            category, author, title = "행사", "학생지원팀", CP949_ONLY_TITLE
        files = tuple(rng.sample(_FILES, rng.randint(1, 2))) if rng.random() < 0.4 else ()
        hits = rng.randint(1, 15) + (REGULAR_COUNT - k) * rng.randint(5, 25)
        body = make_body(rng, title, published)
        posts.append(DemoPost(k, title, category, author, published, body, hits, files=files))
    for i, (no, (category, author, template)) in enumerate(zip(PINNED_IDS, _PINNED, strict=True)):
        published = created - timedelta(days=12 + 15 * i, hours=rng.randint(0, 8))
        title = template.format(y=year)
        body = make_body(rng, title, published)
        hits = rng.randint(800, 3000)
        files = (_FILES[0],) if i == 0 else ()
        posts.append(DemoPost(no, title, category, author, published, body, hits, True, files))
    return posts


def generated_title(rng: random.Random, year: int) -> str:
    """A title for a post added without one."""
    _category, _author, template = rng.choice(_TEMPLATES)
    return template.format(y=year, n=rng.randint(1, 9))
