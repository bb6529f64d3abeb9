"""Pushing one post to many devices: batched send tasks vs one Celery task per user.

    python bench/bench_fanout.py [--devices 10000 100000] [--delay-ms 5 40] [--baseline-max 10000]
        [--protocols h1 h1-tls h2-tls] [--concurrency N] [--record-every N] [--batch-size N]
    python bench/bench_fanout.py --clients [--delay-ms 5 40] [--messages 5000]

Default (``bench_workers.py``), once per ``--delay-ms``: a real PostgreSQL (embedded), Redis
and Celery worker processes push one post to N devices through the fake FCM (another process,
answering after the delay), side by side with the common pattern of one task per user, each
making its own blocking pyfcm call (``--baseline-max 0``: not run). ``--protocols``: how the
workers reach the fake — plain HTTP/1.1 (``h1``, the default), or TLS with ALPN as FCM offers it,
the workers trusting the fake's certificate through FCM_CA_FILE, with FCM_HTTP2=0 (``h1-tls``)
or 1 (``h2-tls``). ``--concurrency`` / ``--record-every`` / ``--batch-size`` set
NOTIFY_SEND_CONCURRENCY / NOTIFY_RECORD_EVERY / NOTIFY_BATCH_SIZE in the workers (default: the
deployed settings). Each run also prints the CPU per push of every process tree (from /proc)
and the notifier's peak RSS. ``--clients`` compares the candidate HTTP clients alone
(bench_clients.py: today's transport over HTTP/1.1 and HTTP/2, aiohttp, httpx with HTTP/2,
firebase-admin's send_each_async), over TLS with ALPN as FCM offers it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", "--client", action="store_true", help="the clients only")
    parser.add_argument("--delay-ms", type=float, nargs="+", default=[5.0, 40.0])
    parser.add_argument("--devices", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--baseline-max", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument(
        "--protocols", nargs="+", default=["h1"], choices=["h1", "h1-tls", "h2-tls"]
    )
    parser.add_argument("--concurrency", type=int, help="NOTIFY_SEND_CONCURRENCY")
    parser.add_argument("--record-every", type=int, help="NOTIFY_RECORD_EVERY")
    parser.add_argument("--batch-size", type=int, help="NOTIFY_BATCH_SIZE")
    # the notifier node of deploy/celery.env: prefork, one process per CPU, each task pushing
    # NOTIFY_SEND_CONCURRENCY at a time
    parser.add_argument("--notify-pool", default="prefork", choices=["prefork", "threads"])
    parser.add_argument("--notify-procs", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    if args.clients:
        from bench import bench_clients

        sys.argv = [sys.argv[0], "--delay-ms", *map(str, args.delay_ms)]
        sys.argv += ["--messages", str(args.messages)]
        bench_clients.main()
        return
    from bench.bench_workers import compare

    overrides = {
        name: value
        for name, value in (
            ("NOTIFY_SEND_CONCURRENCY", args.concurrency),
            ("NOTIFY_RECORD_EVERY", args.record_every),
            ("NOTIFY_BATCH_SIZE", args.batch_size),
        )
        if value is not None
    }
    for delay in args.delay_ms:
        for protocol in args.protocols:
            print(f"=== fake FCM ({protocol}) answering after {delay:g} ms ===", flush=True)
            compare(
                args.devices,
                delay,
                args.baseline_max,
                args.notify_procs,
                args.notify_pool,
                overrides or None,
                protocol,
            )


if __name__ == "__main__":
    main()
