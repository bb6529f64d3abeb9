"""What the fake FCM's HTTP/2 side costs per push: the lean fake's hand-framed side
(tests/fakefcm_h2_lean.py) against the ``h2`` library's (``lean_h2=False``), side by side.

    python bench/bench_fake_h2.py [--delay-ms 40] [--messages 10000] [--in-flight 400] [--rounds 3]

Two lean fakes run in child processes over TLS (ALPN h2, as FCM's front ends), one per side,
answering every push after ``--delay-ms``. The project's transport (FcmSender over HTTP/2, the
``transport-h2`` candidate of bench/bench_clients.py) sends the same ``--messages`` pushes to
each in turn, ``--rounds`` times, alternating. Reported per side (median of the rounds): the
fake's CPU µs per push (its process tree, user + system from /proc), the sender's CPU µs per
push, pushes/s, and the ratio of the fakes' CPU. The CPU figures are totals over all rounds
divided by all pushes (/proc counts in ticks of 10 ms: at ~10 µs per push a round of 10,000
pushes is ~10 ticks). Both share the machine's CPUs: the CPU per push and the ratio are the
figures; the rate moves with the load.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_clients import PROJECT, TOKEN, Bench, stats
from bench.bench_workers import tree_cpu
from tests.fakefcm import FakeFcm, self_signed_certificate, server_tls

SIDES = {"h2-library": False, "hand-framed": True}


def serve(delay: float, hand_framed: bool, folder: str, ready: Any, stop: Any) -> None:
    tls = server_tls(Path(folder) / "cert.pem", Path(folder) / "key.pem")
    fake = FakeFcm(token=TOKEN, project=PROJECT, delay=delay, tls=tls, lean=True)
    fake.lean_h2 = hand_framed
    with fake:
        ready.put(fake.port)
        stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, default=40.0)
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--in-flight", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-fake-h2-") as tmp:
        folder = Path(tmp)
        cert, _ = self_signed_certificate(folder)
        trust = ssl.create_default_context(cafile=str(cert))
        ctx = multiprocessing.get_context("spawn")
        stop = ctx.Event()
        servers, benches = {}, {}
        for side, hand_framed in SIDES.items():
            ready = ctx.Queue()
            process = ctx.Process(
                target=serve, args=(args.delay_ms / 1000, hand_framed, tmp, ready, stop)
            )
            process.start()
            port = ready.get(timeout=30)
            servers[side] = (process, port)
            benches[side] = Bench(port, trust, args.in_flight, folder)
        figures: dict[str, list[tuple[float, float, float]]] = {side: [] for side in SIDES}
        loads = []
        try:
            for r in range(args.rounds):
                for side, bench in benches.items():
                    process, port = servers[side]
                    tokens = [f"{side}-{r}-{i}" for i in range(args.messages)]
                    cpu, wall = time.process_time(), time.perf_counter()
                    fake = tree_cpu([process.pid])
                    sent = bench.transport_h2(tokens)
                    wall = time.perf_counter() - wall
                    fake = tree_cpu([process.pid]) - fake
                    cpu = time.process_time() - cpu
                    if sent != args.messages:
                        raise SystemExit(f"{side}: {sent} of {args.messages} pushes accepted")
                    n = args.messages
                    figures[side].append((n / wall, cpu / n * 1e6, fake / n * 1e6))
                loads.append(os.getloadavg()[0])
            counts = {side: stats(port, trust) for side, (_, port) in servers.items()}
        finally:
            stop.set()
            for process, _ in servers.values():
                process.join(10)
        print(
            f"{args.messages} pushes per round, {args.rounds} rounds (push/s: median), at most "
            f"{args.in_flight} in flight, fake answering after {args.delay_ms:g} ms, TLS + h2"
        )
        print(f"{'fake h2 side':14}{'push/s':>9}{'fake µs/push':>14}{'sender µs/push':>16}"
              f"{'h2 conns':>10}")  # fmt: skip
        medians = {}
        for side, rows in figures.items():
            rate = statistics.median(row[0] for row in rows)
            cpu, fake = (statistics.fmean(column) for column in list(zip(*rows, strict=True))[1:])
            medians[side] = fake
            conns = counts[side]["h2_connections"]
            print(f"{side:14}{rate:9.0f}{fake:14.0f}{cpu:16.0f}{conns:10d}")
        ratio = medians["h2-library"] / max(medians["hand-framed"], 1e-9)
        print(
            f"the hand-framed side costs {ratio:.1f}x less CPU per push "
            f"(load average during the rounds: {min(loads):.1f}-{max(loads):.1f})"
        )


if __name__ == "__main__":
    main()
