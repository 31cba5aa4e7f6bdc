"""Benchmark of the request protocol: ``record --stdin`` and ``ingest`` next to in-process record.

Runs, side by side, on the same events:

1. ``AuditWriter.record`` in this process: events per second (the reference);
2. ``trek-audit record --stdin`` as a co-process: pipelined (a thread writes N requests while
   this one reads N answers) in events per second, and one request at a time (write one,
   wait for its answer) as round-trip p50 and p99;
3. ``trek-audit ingest`` on a Unix socket: the same two.

Then the ratios against the targets: pipelined at least 1/3 of in-process; p50 under 100 us.
Each server runs on the path the settings give (the C fast path when built).

Usage: python benchmarks/ingest.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import orjson

from trek_audit.writer import AuditWriter

P50_TARGET_US = 100.0
PIPELINE_TARGET = 1 / 3


class Transport(NamedTuple):
    """How the client talks to a server: send bytes, receive what is there, end the input."""

    send: Callable[[bytes], None]
    receive: Callable[[], bytes]
    close: Callable[[], None]


class Result(NamedTuple):
    events_per_second: float
    p50_us: float
    p99_us: float


def request_line(n: int) -> bytes:
    return (
        orjson.dumps(
            {
                "action": "trip.update",
                "user": {"id": 7, "username": "alice", "email": "alice@example.com"},
                "resource": f"trip/{n}",
                "ip": "203.0.113.5",
                "details": {"field": "title", "n": n},
            }
        )
        + b"\n"
    )


def in_process(log_dir: Path, count: int) -> float:
    with AuditWriter(log_dir) as writer:
        start = time.perf_counter()
        for n in range(count):
            writer.record(
                "trip.update",
                user={"id": 7, "username": "alice", "email": "alice@example.com"},
                resource=f"trip/{n}",
                ip="203.0.113.5",
                details={"field": "title", "n": n},
            )
        return count / (time.perf_counter() - start)


def pipelined(transport: Transport, count: int) -> float:
    requests = b"".join(request_line(n) for n in range(count))
    start = time.perf_counter()
    sender = threading.Thread(target=transport.send, args=(requests,))
    sender.start()
    answers = 0
    while answers < count:
        chunk = transport.receive()
        if not chunk:
            raise RuntimeError("the server ended before answering every request")
        answers += chunk.count(b"\n")
    elapsed = time.perf_counter() - start
    sender.join()
    return count / elapsed


def round_trips(transport: Transport, count: int) -> tuple[float, float]:
    times = []
    for n in range(count):
        line = request_line(n)
        start = time.perf_counter_ns()
        transport.send(line)
        answer = transport.receive()
        while not answer.endswith(b"\n"):
            answer += transport.receive()
        times.append(time.perf_counter_ns() - start)
    cuts = statistics.quantiles(times, n=100)
    return cuts[49] / 1000, cuts[98] / 1000


def measure(transport: Transport, count: int, trips: int) -> Result:
    round_trips(transport, 200)  # warm up
    events_per_second = pipelined(transport, count)
    p50, p99 = round_trips(transport, trips)
    transport.close()
    return Result(events_per_second, p50, p99)


def stdin_transport(data_dir: Path) -> tuple[Transport, subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "trek_audit", "record", "--stdin", "--data-dir", str(data_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        bufsize=0,
    )
    assert process.stdin is not None and process.stdout is not None
    write_fd, read_fd = process.stdin.fileno(), process.stdout.fileno()

    def send(data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(write_fd, view) :]

    def close() -> None:
        assert process.stdin is not None
        process.stdin.close()
        process.wait()

    return Transport(send, lambda: os.read(read_fd, 1 << 16), close), process


def socket_transport(data_dir: Path) -> tuple[Transport, subprocess.Popen[bytes]]:
    path = data_dir / "ingest.sock"
    process = subprocess.Popen(
        [sys.executable, "-m", "trek_audit", "ingest", "--data-dir", str(data_dir), "--quiet"],
    )
    deadline = time.monotonic() + 30
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    while True:
        try:
            client.connect(str(path))
            break
        except (FileNotFoundError, ConnectionRefusedError):
            if time.monotonic() > deadline:
                raise
            threading.Event().wait(0.05)

    def close() -> None:
        client.close()
        process.send_signal(signal.SIGTERM)
        process.wait()

    return Transport(client.sendall, lambda: client.recv(1 << 16), close), process


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer events (a smoke run)")
    arguments = parser.parse_args()
    count, trips = (20_000, 2_000) if arguments.quick else (200_000, 20_000)

    with tempfile.TemporaryDirectory(prefix="trek-ingest-bench-") as scratch:
        root = Path(scratch)
        reference = in_process(root / "in-process" / "logs", count)
        results: dict[str, Result] = {}
        for name, start in (
            ("record --stdin", stdin_transport),
            ("ingest socket", socket_transport),
        ):
            transport, process = start(root / name.split()[0])
            try:
                results[name] = measure(transport, count, trips)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()

    print(f"{count} events pipelined, {trips} one-at-a-time round trips, C fast path as built")
    print(f"{'in-process AuditWriter.record':<32}{reference:>12,.0f} events/s")
    failed = False
    for name, result in results.items():
        ratio = result.events_per_second / reference
        print(
            f"{name + ' pipelined':<32}{result.events_per_second:>12,.0f} events/s  "
            f"{ratio:5.2f} x in-process (target >= {PIPELINE_TARGET:.2f})"
            f"{'' if ratio >= PIPELINE_TARGET else '  MISSED'}"
        )
        print(
            f"{name + ' round trip':<32}{'p50':>8} {result.p50_us:7.1f} us  p99 "
            f"{result.p99_us:7.1f} us  (target p50 < {P50_TARGET_US:.0f} us)"
            f"{'' if result.p50_us < P50_TARGET_US else '  MISSED'}"
        )
        failed |= ratio < PIPELINE_TARGET or result.p50_us >= P50_TARGET_US
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
