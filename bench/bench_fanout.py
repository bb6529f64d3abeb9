"""Pushing one post to many devices: batched send tasks vs one Celery task per user.

    python bench/bench_fanout.py [--devices 10000 100000] [--delay-ms 5] [--baseline-max 10000]
    python bench/bench_fanout.py --client [--messages 1000] [--delay-ms 3] [--rounds 3]

Default (``bench_workers.py``): a real PostgreSQL (embedded), Redis and Celery worker processes
push one post to N devices through the fake FCM (another process, answering after
``--delay-ms``), side by side with the common pattern of one task per user, each making its own
blocking pyfcm call. ``--client`` compares the sending clients alone, in this process:

The fake FCM (tests/fakefcm.py) runs in a child process, answering each request after
``--delay-ms`` to stand in for FCM's latency; both clients send the same messages to it:

* ``sender/N``: ``FcmSender.send_batch(items, concurrency=N)`` — N in flight on the sender's
  transport (keep-alive connections on its own event loop, answers parsed by httptools);
  before it, an aiohttp session, and before that a thread pool over pyfcm's thread-local
  requests sessions sharing one keep-alive connection pool.
* ``pyfcm-async``: ``FCMNotification.async_notify_multiple_devices`` — aiohttp, every message
  at once, a new session (connection) per message.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
import urllib.request
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from google.oauth2.credentials import Credentials

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from noticecrawler.notify.fcm import FcmSender, build_message
from tests.fakefcm import FakeFcm

TOKEN = "bench-token"
POST = {"id": 1, "board": "cse", "title": "2학기 국가장학금 신청 안내", "url": "https://x.test/1"}


def serve(delay: float, ready: Any, stop: Any) -> None:
    with FakeFcm(token=TOKEN, project="bench", delay=delay) as fake:
        ready.put(fake.port)
        stop.wait()


def stats(port: int) -> dict[str, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_fake/stats", timeout=10) as answer:
        return dict(json.load(answer))


def credentials() -> Credentials:
    def refresh(request: Any, scopes: Any = None) -> tuple[str, datetime]:
        return TOKEN, datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1)

    return Credentials(token=None, refresh_handler=refresh)


def run_threads(sender: FcmSender, tokens: list[str], concurrency: int) -> int:
    kwargs = build_message(POST, "android", "notices")
    results = sender.send_batch([(t, t, kwargs) for t in tokens], concurrency=concurrency)
    return sum(1 for _, r in results if r.message_name)


def run_async(sender: FcmSender, tokens: list[str]) -> int:
    kwargs = build_message(POST, "android", "notices")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyfcm never closes the event loop it creates
        answers = sender.fcm.async_notify_multiple_devices(
            params_list=[{"fcm_token": t, **kwargs} for t in tokens], timeout=30
        )
    return sum(1 for a in answers if isinstance(a, dict) and "name" in a)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", action="store_true", help="compare the clients only")
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--delay-ms", type=float, default=None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--devices", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--baseline-max", type=int, default=10_000)
    # the notifier node of deploy/celery.env: prefork, one process per CPU, each task pushing
    # NOTIFY_SEND_CONCURRENCY at a time over keep-alive connections
    parser.add_argument("--notify-pool", default="prefork", choices=["prefork", "threads"])
    parser.add_argument("--notify-procs", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    if not args.client:
        from bench.bench_workers import compare

        compare(
            args.devices,
            args.delay_ms or 5.0,
            args.baseline_max,
            args.notify_procs,
            args.notify_pool,
        )
        return
    args.delay_ms = 3.0 if args.delay_ms is None else args.delay_ms

    ctx = multiprocessing.get_context("spawn")
    ready, stop = ctx.Queue(), ctx.Event()
    server = ctx.Process(target=serve, args=(args.delay_ms / 1000, ready, stop))
    server.start()
    port = ready.get(timeout=30)
    sender = FcmSender(
        project_id="bench",
        credentials=credentials(),
        endpoint=f"http://127.0.0.1:{port}/v1/projects",
        max_concurrency=64,
    )
    runners = {
        "sender/8": lambda tokens: run_threads(sender, tokens, 8),
        "sender/32": lambda tokens: run_threads(sender, tokens, 32),
        "sender/64": lambda tokens: run_threads(sender, tokens, 64),
        "pyfcm-async": lambda tokens: run_async(sender, tokens),
    }
    try:
        run_threads(sender, ["warm-up"] * 64, 64)
        print(f"{args.messages} messages, fake FCM answering after {args.delay_ms} ms")
        print(f"{'':14}{'median s':>10}{'msg/s':>10}{'sent':>8}{'connections/round':>19}")
        for name, run in runners.items():
            times, sent = [], 0
            before = stats(port)["connections"]
            for r in range(args.rounds):
                tokens = [f"{name}-{r}-{i}" for i in range(args.messages)]
                started = time.perf_counter()
                sent = run(tokens)
                times.append(time.perf_counter() - started)
            median = statistics.median(times)
            opened = (stats(port)["connections"] - before) / args.rounds
            print(f"{name:14}{median:10.3f}{args.messages / median:10.0f}{sent:8}{opened:19.0f}")
    finally:
        sender.close()
        stop.set()
        server.join(timeout=10)


if __name__ == "__main__":
    main()
