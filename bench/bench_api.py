"""The API's posts endpoint on a board of 1M posts: keyset vs OFFSET pagination at a deep page,
and the first page's throughput and latency under concurrent clients.

One run, same machine, same data (one board of ``--posts`` posts in PostgreSQL: DATABASE_URL,
or an embedded one in a temporary directory):

1. Deep page. ``GET /v1/boards/{board}/posts?cursor=…`` for page ``--deep-page`` (the 5,000th
   by default, 20 posts a page) side by side with the same page by ``OFFSET`` (an extra route
   that only this bench adds, same app, same auth and JSON: only the SQL differs), alternating,
   ``--repeat`` times each; the median of each and their ratio. Both must return the same posts.
   The same two queries are also timed without HTTP (the API's query functions on one
   connection): the database's own cost, which the HTTP figures add a constant to; and that
   constant alone: the first page from the page cache over the same connection (no query).
   These requests go one at a time over one keep-alive connection on a blocking socket.
   Then the parts of a keyset GET, back to back and after an idle gap as long as the OFFSET
   page (what the alternating run puts before a request), beside the least any server could
   take here: a GET answered by a bare socket in its own process (no framework, no event loop),
   with no query and with the keyset query on one blocking connection.
2. Throughput. ``--clients`` keep-alive connections asking for the first page as fast as they
   can for ``--seconds``: requests/s. The first page is served from memory for
   ``--page-cache`` seconds (API_PAGE_CACHE_SECONDS, 1 s as shipped; 0: every request queries).
   The API processes' CPU time over the run is read from /proc: CPU-ms per request, which on
   a shared machine tells what the API costs when the requests/s only tell what it was given.
3. Latency. An open-loop load of ``--rate`` requests/s for ``--seconds`` (each request starts at
   its scheduled time, so a slow answer cannot hide the ones queued behind it): p50/p99,
   measured from the scheduled start.

The API runs in its own process(es) (``--workers`` uvicorn processes), the clients in another,
on 127.0.0.1, over minimal HTTP/1.1 keep-alive clients of this file (a blocking socket for the
one-at-a-time deep pages, asyncio streams on uvloop for the concurrent loads): a Python HTTP
library would cost more than the API's own request and be what is measured.

    python bench/bench_api.py [--posts 1000000] [--workers 2] [--clients 64] [--rate 500]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from starlette.routing import Route

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from noticecrawler.api.auth import bearer_token, principal_for  # noqa: E402  (the bench route)
from noticecrawler.api.state import app_state  # noqa: E402
from noticecrawler.db import connect, embedded, migrate  # noqa: E402

GOAL_RATIO = 50.0
GOAL_RPS = 1500.0
GOAL_P99_MS = 50.0
BOARD = "bench"
PAGE = 20


# --- data ---------------------------------------------------------------------------------------


def fill(url: str, posts: int) -> None:
    """``posts`` posts on the bench board, one a minute back from now (skipped when there)."""
    with connect(url, autocommit=True) as conn:
        migrate.upgrade(conn)
        row = conn.execute("SELECT count(*) AS n FROM posts WHERE board = %s", (BOARD,)).fetchone()
        have = int(row["n"]) if row else 0
        if have == posts:
            return
        conn.execute("DELETE FROM posts WHERE board = %s", (BOARD,))
        started = time.monotonic()
        chunk = 200_000
        for low in range(0, posts, chunk):
            conn.execute(
                """
                INSERT INTO posts (board, post_id, title, url, author, published_at, first_seen_at)
                SELECT %(b)s, i::text, '2026학년도 공지사항 안내 제' || i || '호',
                       'https://bench.example/notice/' || i, '학사지원팀',
                       now() - make_interval(mins => i), now() - make_interval(mins => i)
                FROM generate_series(%(lo)s, %(hi)s) AS i
                """,
                {"b": BOARD, "lo": low, "hi": min(posts, low + chunk) - 1},
            )
        conn.execute("VACUUM ANALYZE posts")
        print(f"stored {posts:,} posts in {time.monotonic() - started:.1f} s")


def admin_token(url: str) -> str:
    from noticecrawler.api import tokens

    with connect(url, autocommit=True) as conn:
        user = conn.execute("INSERT INTO users DEFAULT VALUES RETURNING id").fetchone()
        assert user is not None
        return tokens.issue(conn, user["id"], label="bench")


async def sql_pages(url: str, cursor: str, offset: int, repeat: int) -> dict[str, Any]:
    """The same two pages through the API's own queries, without HTTP: the time one takes from
    this client, and PostgreSQL's own execution time (EXPLAIN ANALYZE), medians in seconds."""
    import json

    import psycopg

    from noticecrawler.api import queries
    from noticecrawler.api.app import configure_connection
    from noticecrawler.api.routes.boards import decode_cursor

    after = decode_cursor(cursor)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await configure_connection(conn)  # as the API's own connections
        built = {
            "keyset": queries.keyset_page(BOARD, size=PAGE, after=after),
            "offset": queries.offset_page(BOARD, size=PAGE, offset=offset),
        }
        names = ("keyset", "offset", "keyset_db", "offset_db")
        times: dict[str, list[float]] = {k: [] for k in names}
        pages: dict[str, Any] = {}
        for _ in range(3):  # warm: caches
            for query in built.values():
                await queries.page(conn, query)
        for _ in range(repeat):
            for name, query in built.items():
                t0 = time.perf_counter()
                pages[name] = await queries.page(conn, query)
                times[name].append(time.perf_counter() - t0)
                sql_text, params = query
                cur = await conn.execute(b"EXPLAIN (ANALYZE, FORMAT JSON) " + sql_text, params)
                row = await cur.fetchone()
                assert row is not None
                plan = row[0] if isinstance(row[0], list) else json.loads(row[0])
                times[f"{name}_db"].append(plan[0]["Execution Time"] / 1000)
    assert pages["keyset"]["items"] == pages["offset"]["items"], "the pages differ"
    return {k: statistics.median(v) for k, v in times.items()}


def deep_cursor(url: str, page: int) -> tuple[str, int]:
    """The cursor that opens page ``page`` (1-based), and that page's OFFSET."""
    from noticecrawler.api.routes.boards import encode_cursor

    offset = (page - 1) * PAGE
    with connect(url) as conn:
        row = conn.execute(
            "SELECT published_at, id FROM posts WHERE board = %s "
            "ORDER BY published_at DESC, id DESC OFFSET %s LIMIT 1",
            (BOARD, offset - 1),
        ).fetchone()
    assert row is not None, "fewer posts than the deep page needs"
    return encode_cursor(row["published_at"], row["id"]), offset


# --- the API, in its own process ----------------------------------------------------------------


def bench_app() -> Any:
    """The API plus one route that pages by OFFSET (this bench's baseline; not in the API)."""
    from noticecrawler.api import queries
    from noticecrawler.api.app import create_app
    from noticecrawler.api.config import ApiConfig
    from noticecrawler.api.routes.boards import page_json
    from noticecrawler.catalog import BoardDef

    cfg = ApiConfig(
        database_url=os.environ["BENCH_DATABASE_URL"],
        broker_url="memory://",
        lock_url="redis://127.0.0.1:9/0",
        boards=(BoardDef(name=BOARD, start_url="https://bench.example/list"),),
        rate_limit=0,
        pool_size=int(os.environ.get("BENCH_POOL", "10")),
        page_cache_seconds=float(os.environ.get("BENCH_PAGE_CACHE", "1.0")),
        telemetry=os.environ.get("BENCH_TELEMETRY") == "1",
    )
    app = create_app(cfg)

    async def offset_page(request: Request) -> Response:
        # what board_posts does (the token, the board, the pool, the JSON), by OFFSET
        state = app_state(request)
        await principal_for(state, bearer_token(request))
        board = request.path_params["board"]
        query = queries.offset_page(board, size=PAGE, offset=int(request.query_params["offset"]))
        body = page_json(await state.read(lambda conn: queries.page(conn, query)))
        return Response(body, media_type="application/json")

    # a plain route in front, as the keyset endpoint's (noticecrawler/api/routes/boards.py)
    app.router.routes.insert(0, Route("/bench/boards/{board}/posts-offset", offset_page))

    return app


def serve(port: int, workers: int) -> None:
    import uvicorn

    uvicorn.run(
        "bench.bench_api:bench_app",
        factory=True,
        host="127.0.0.1",
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


# --- a minimal HTTP/1.1 keep-alive client --------------------------------------------------------


class Connection:
    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.auth = f"Authorization: Bearer {token}\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{self.auth}\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class BlockingConnection:
    """One keep-alive HTTP/1.1 connection on a plain blocking socket, for requests one at a
    time: a send and a read or two per request, so a deep page's time is the API's, not an event
    loop's in the client (~0.02 ms of client CPU a request, against ~0.1 ms on asyncio)."""

    def __init__(self, port: int, token: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.auth = f"Authorization: Bearer {token}\r\n"
        self.buffer = b""

    def get(self, path: str) -> tuple[int, bytes]:
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{self.auth}\r\n".encode())
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            self.buffer += self._recv()
        head, rest = self.buffer[:end], self.buffer[end + 4 :]
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        while len(rest) < length:
            rest += self._recv()
        self.buffer = rest[length:]
        return int(head[9:12]), rest[:length]

    def _recv(self) -> bytes:
        data = self.sock.recv(262144)
        if not data:
            raise ConnectionError("the API closed the connection")
        return data

    def close(self) -> None:
        self.sock.close()


def _timed(conn: BlockingConnection, path: str, repeat: int) -> tuple[list[float], bytes]:
    times, body = [], b""
    for _ in range(repeat):
        t0 = time.perf_counter()
        status, body = conn.get(path)
        times.append(time.perf_counter() - t0)
        assert status == 200, body[:300]
    return times, body


def deep_pages(port: int, token: str, cursor: str, offset: int, repeat: int) -> dict:
    import json

    conn = BlockingConnection(port, token)
    keyset = f"/v1/boards/{BOARD}/posts?limit={PAGE}&cursor={cursor}"
    by_offset = f"/bench/boards/{BOARD}/posts-offset?offset={offset}"
    _timed(conn, keyset, 10)  # warm: each pooled connection prepares its statements
    _timed(conn, by_offset, 5)
    first = f"/v1/boards/{BOARD}/posts?limit={PAGE}"  # from the page cache: no query at all
    k_times: list[float] = []
    o_times: list[float] = []
    f_times: list[float] = []
    for _ in range(repeat):
        t, k_body = _timed(conn, keyset, 1)
        k_times += t
        t, o_body = _timed(conn, by_offset, 1)
        o_times += t
        f_times += _timed(conn, first, 1)[0]
    conn.close()
    k_ids = [p["id"] for p in json.loads(k_body)["items"]]
    o_ids = [p["id"] for p in json.loads(o_body)["items"]]
    assert k_ids == o_ids and len(k_ids) == PAGE, "keyset and OFFSET pages differ"
    return {
        "keyset": statistics.median(k_times),
        "offset": statistics.median(o_times),
        "no_query": statistics.median(f_times),
    }


def _gapped(get: Any, gap: float, repeat: int) -> list[float]:
    """``get()`` timed ``repeat`` times, each after ``gap`` seconds of sleep (no gap: back to
    back). A gap as long as an OFFSET page leaves every process idle as the alternating deep
    pages do, and each then pays the wake-up of an idle CPU."""
    times = []
    for _ in range(repeat):
        if gap:
            time.sleep(gap)
        t0 = time.perf_counter()
        get()
        times.append(time.perf_counter() - t0)
    return times


def bare_server(sock: socket.socket, url: str, cursor: str) -> None:
    """The least a server can do here, in a process of its own on a blocking socket, one
    keep-alive connection: no framework, no event loop, no pool. ``GET /bare`` answers a keyset
    page's bytes with no query; any other GET runs the keyset page's query (prepared, the API's
    plan settings) on its one blocking connection and answers the page as the API writes it.
    Serves one client, until it closes."""
    from noticecrawler.api import queries
    from noticecrawler.api.routes.boards import decode_cursor, page_json

    sql_text, params = queries.keyset_page(BOARD, size=PAGE, after=decode_cursor(cursor))
    with connect(url, autocommit=True) as db:
        db.execute("SET plan_cache_mode = force_generic_plan")
        cur = db.cursor()

        def answer(body: bytes) -> bytes:
            head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
            return f"{head}{len(body)}\r\n\r\n".encode() + body

        def page() -> bytes:
            row = cur.execute(sql_text, params, prepare=True).fetchone()
            assert row is not None
            return page_json(row)

        fixed = answer(page())
        conn, _ = sock.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = b""
        while True:
            while (end := buffer.find(b"\r\n\r\n")) < 0:
                data = conn.recv(65536)
                if not data:
                    return
                buffer += data
            request, buffer = buffer[:end], buffer[end + 4 :]
            conn.sendall(fixed if request.startswith(b"GET /bare ") else answer(page()))


def http_floor(
    port: int, bare_port: int, token: str, cursor: str, gap: float, repeat: int, pid: int
) -> dict:
    """The keyset GET and the cached first page, back to back and after an idle gap, with the
    API's CPU per request (/proc) over the back-to-back ones; and the same GETs answered by
    ``bare_server`` (the floor of any server here: no framework, no event loop)."""
    conn = BlockingConnection(port, token)
    paths = {
        "first": f"/v1/boards/{BOARD}/posts?limit={PAGE}",
        "keyset": f"/v1/boards/{BOARD}/posts?limit={PAGE}&cursor={cursor}",
    }
    out: dict[str, float] = {}
    bare_conn = BlockingConnection(bare_port, token)
    same = bare_conn.get(paths["keyset"])[1] == conn.get(paths["keyset"])[1]
    assert same, "the bare server's keyset page differs from the API's"
    targets = [(name, conn, path) for name, path in paths.items()]
    targets += [("bare", bare_conn, "/bare"), ("bare_query", bare_conn, paths["keyset"])]
    for name, client, path in targets:
        _timed(client, path, 50)

        def get(client: BlockingConnection = client, path: str = path) -> None:
            assert client.get(path)[0] == 200

        cpu0 = cpu_seconds(pid)
        out[f"{name}_warm"] = statistics.median(_gapped(get, 0, repeat * 10))
        if client is conn:  # the API's CPU: only its own requests
            out[f"{name}_cpu"] = (cpu_seconds(pid) - cpu0) / (repeat * 10)
        out[f"{name}_idle"] = statistics.median(_gapped(get, gap, repeat))
    conn.close()
    bare_conn.close()
    return out


def db_floor(url: str, cursor: str, gap: float, repeat: int) -> dict:
    """A PostgreSQL round trip (``SELECT 1``) and the keyset page's query from a plain blocking
    client, back to back and after an idle gap (the API's connection settings, prepared)."""
    from noticecrawler.api import queries
    from noticecrawler.api.routes.boards import decode_cursor

    sql_text, params = queries.keyset_page(BOARD, size=PAGE, after=decode_cursor(cursor))
    out: dict[str, float] = {}
    with connect(url, autocommit=True) as conn:
        conn.execute("SET plan_cache_mode = force_generic_plan")
        cur = conn.cursor()

        def select1() -> None:
            cur.execute("SELECT 1", prepare=True)
            cur.fetchone()

        def page() -> None:
            cur.execute(sql_text, params, prepare=True)
            cur.fetchone()

        for name, fn in (("select1", select1), ("keyset", page)):
            _gapped(fn, 0, 50)
            out[f"{name}_warm"] = statistics.median(_gapped(fn, 0, repeat * 10))
            out[f"{name}_idle"] = statistics.median(_gapped(fn, gap, repeat))
    return out


def print_floor(db: dict, http: dict, gap: float, goal_ms: float) -> None:
    ms = lambda v: f"{v * 1000:.3f}"  # noqa: E731
    print(
        f"where a keyset GET's time goes, medians, back to back / after {gap * 1000:.0f} ms "
        "idle (the OFFSET page's time, as in the alternating run above):"
    )
    rows = (
        ("GET answered by a bare socket (no framework, no query)", "bare", http),
        ("the same bare socket running the keyset query per GET", "bare_query", http),
        ("PostgreSQL round trip, SELECT 1, blocking client", "select1", db),
        ("the keyset query, blocking client (no pool, no HTTP)", "keyset", db),
        ("GET of the cached first page (HTTP + app, no query)", "first", http),
        ("GET of the keyset page (all of it)", "keyset", http),
    )
    for label, key, figures in rows:
        print(f"  {label:56} {ms(figures[key + '_warm'])} / {ms(figures[key + '_idle'])} ms")
    least = {w: http[f"bare_query_{w}"] for w in ("warm", "idle")}
    for when, label in (("warm", "back to back"), ("idle", "after the idle gap")):
        over = least[when] * 1000 / goal_ms
        verdict = (
            "within reach: the bare server takes it"
            if over <= 1
            else f"out of reach of any server: the bare one takes {over:.1f}x the budget"
        )
        print(f"  50x {label}: {verdict}")
    print(
        f"  API CPU per request, back to back: cached first page {ms(http['first_cpu'])} ms, "
        f"keyset page {ms(http['keyset_cpu'])} ms; 50x needs the keyset GET <= {goal_ms:.3f} ms"
    )


async def saturate(port: int, token: str, clients: int, seconds: float) -> dict:
    path = f"/v1/boards/{BOARD}/posts?limit={PAGE}"
    deadline = time.perf_counter() + seconds
    done = 0
    errors = 0

    async def client() -> None:
        nonlocal done, errors
        conn = Connection(port, token)
        while time.perf_counter() < deadline:
            status, _ = await conn.get(path)
            done += 1
            errors += status != 200
        conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return {"rps": done / (time.perf_counter() - started), "errors": errors, "requests": done}


async def open_loop(port: int, token: str, rate: float, seconds: float, conns: int) -> dict:
    path = f"/v1/boards/{BOARD}/posts?limit={PAGE}"
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(conns):
        idle.put_nowait(Connection(port, token))
    latencies: list[float] = []
    errors = 0

    async def one(scheduled: float) -> None:
        nonlocal errors
        conn = await idle.get()
        try:
            status, _ = await conn.get(path)
            errors += status != 200
        finally:
            idle.put_nowait(conn)
        latencies.append(time.perf_counter() - scheduled)

    total = int(rate * seconds)
    start = time.perf_counter() + 0.05
    tasks = []
    for i in range(total):
        at = start + i / rate
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(at)))
    await asyncio.gather(*tasks)
    while not idle.empty():
        idle.get_nowait().close()
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
    return {"p50": pick(0.50), "p99": pick(0.99), "max": latencies[-1], "errors": errors}


def run_clients(kind: str, args: tuple[Any, ...]) -> dict:
    """One load in a client process of its own (uvloop)."""
    import uvloop

    if kind == "deep":
        return deep_pages(*args)
    if kind == "floor":
        return http_floor(*args)
    fn = {"saturate": saturate, "open": open_loop}[kind]
    return uvloop.run(fn(*args))  # type: ignore[no-any-return]


def in_client_process(kind: str, *args: Any) -> dict:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(run_clients, (kind, args))  # type: ignore[no-any-return]


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and all its descendants so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(c) for c in f.read().split()]
        except OSError:
            continue
    return total


def wait_up(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the API did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--deep-page", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=31)
    parser.add_argument("--workers", type=int, default=2, help="API processes (as deployed)")
    parser.add_argument("--pool", type=int, default=10, help="database pool per API process")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument(
        "--page-cache", type=float, default=1.0, help="API_PAGE_CACHE_SECONDS (0: off)"
    )
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-api-"))
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            url = embedded.postgres_url(tmp)
    fill(url, args.posts)
    token = admin_token(url)
    cursor, offset = deep_cursor(url, args.deep_page)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ["BENCH_DATABASE_URL"] = url
    os.environ["BENCH_POOL"] = str(args.pool)
    os.environ["BENCH_PAGE_CACHE"] = str(args.page_cache)
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    server = subprocess.Popen(
        [sys.executable, "-c", f"from bench.bench_api import serve; serve({port}, {args.workers})"],
        cwd=ROOT,
    )
    try:
        wait_up(port)
        print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        db = asyncio.run(sql_pages(url, cursor, offset, args.repeat))
        deep = in_client_process("deep", port, token, cursor, offset, args.repeat)
        in_db = {"keyset": db["keyset_db"], "offset": db["offset_db"]}
        for label, figures in (
            ("in PostgreSQL (EXPLAIN ANALYZE)", in_db),
            ("query from a client, no HTTP", db),
            ("GET over HTTP", deep),
        ):
            ratio = figures["offset"] / figures["keyset"]
            print(
                f"page {args.deep_page:,} of {args.posts:,} posts ({PAGE}/page), {label}, median "
                f"of {args.repeat}: keyset {figures['keyset'] * 1000:.2f} ms, OFFSET "
                f"{figures['offset'] * 1000:.1f} ms -> keyset {ratio:.0f}x faster "
                f"(goal >= {GOAL_RATIO:.0f}x) {'OK' if ratio >= GOAL_RATIO else 'MISSED'}"
            )
        print(
            f"the same GET's constant, a first page from the page cache (no query): median "
            f"{deep['no_query'] * 1000:.2f} ms"
            + (" (page cache off: not measured)" if args.page_cache <= 0 else "")
        )
        if args.page_cache > 0:
            gap = deep["offset"]
            floor_db = db_floor(url, cursor, gap, args.repeat)
            listener = socket.create_server(("127.0.0.1", 0))
            bare = multiprocessing.get_context("fork").Process(
                target=bare_server, args=(listener, url, cursor), daemon=True
            )
            bare.start()
            bare_port = listener.getsockname()[1]
            listener.close()
            floor_http = in_client_process(
                "floor", port, bare_port, token, cursor, gap, args.repeat, server.pid
            )
            bare.join(5)
            print_floor(floor_db, floor_http, gap, deep["offset"] / GOAL_RATIO * 1000)
        cpu_before = cpu_seconds(server.pid)
        sat = in_client_process("saturate", port, token, args.clients, args.seconds)
        per_cpu = sat["requests"] / max(1e-9, cpu_seconds(server.pid) - cpu_before)
        print(
            f"first page, {args.clients} clients, {args.workers} API process(es), page cache "
            f"{args.page_cache:g} s: "
            f"{sat['rps']:,.0f} requests/s ({sat['requests']:,} in {args.seconds:g} s, "
            f"{sat['errors']} errors) (goal >= {GOAL_RPS:,.0f}) "
            f"{'OK' if sat['rps'] >= GOAL_RPS and not sat['errors'] else 'MISSED'}; "
            f"the API spent {1000 / per_cpu:.2f} ms of CPU per request ({per_cpu:,.0f} "
            "requests per CPU-second)"
        )
        lat = in_client_process("open", port, token, args.rate, args.seconds, args.clients)
        print(
            f"first page at {args.rate:g} requests/s for {args.seconds:g} s: p50 "
            f"{lat['p50'] * 1000:.1f} ms, p99 {lat['p99'] * 1000:.1f} ms, max "
            f"{lat['max'] * 1000:.1f} ms, {lat['errors']} errors (goal p99 <= {GOAL_P99_MS:g} ms) "
            f"{'OK' if lat['p99'] * 1000 <= GOAL_P99_MS and not lat['errors'] else 'MISSED'}"
        )
        print(f"load average after: {os.getloadavg()[0]:.1f}")
    finally:
        server.terminate()
        server.wait(20)
        if not os.environ.get("DATABASE_URL"):
            embedded.stop_postgres(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
