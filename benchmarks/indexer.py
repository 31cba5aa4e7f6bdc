"""Benchmark of the indexer: catch-up speed against a plain executemany, and live latency.

(a) Catch-up: N events (1,000,000 by default) spread over trek.log.4 .. trek.log, indexed
    by ``trek-audit index --once`` in a child process, against a plain sqlite3
    ``executemany`` of the same rows into a fresh database with the same schema, indexes
    and full-text triggers, in one transaction. Only the executemany calls and the commit
    are timed for the plain insert; the indexer is timed from process start to exit, so
    its figure includes start-up, reading and decoding. Target: at least 0.6x the plain
    rows per second, and the indexer's peak RSS under 150 MB.
(b) Live: an AuditWriter records 1,000 events a second for 30 s while ``trek-audit index``
    runs in another process. Latency is the time from ``record()`` returning to the row
    being visible in audit.db (committed), seen by a reader thread polling every
    millisecond, so each figure may be up to 1 ms pessimistic. Target: p50 <= 50 ms,
    p99 <= 250 ms.

Usage: python benchmarks/indexer.py [--quick] [--events N] [--live-seconds S] [--rate R]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, cast

from trek_audit.indexer.scanner import event_row
from trek_audit.layout import DataDir, LogDir
from trek_audit.settings import Settings
from trek_audit.store import connect, open_database, read_status
from trek_audit.writer import AuditWriter
from trek_audit.writer.catalog import ACTIONS
from trek_audit.writer.line import Event, decode, encode

FILES = 5  # trek.log.4 .. trek.log
INSERT = (
    "INSERT INTO audit_log (event_id, seq, ts, action, user_id, username, email, resource, ip, "
    "details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def uuid7(rng: random.Random, when: float) -> str:
    """A UUIDv7 like the writer's: time-ordered by millisecond, random below."""
    ms = int(when * 1000)
    value = (ms << 80) | (0x7 << 76) | (rng.getrandbits(12) << 64)
    value |= (0x2 << 62) | rng.getrandbits(62)
    return str(uuid.UUID(int=value))


def fake_event(rng: random.Random, seq: int, actions: list[str], when: float) -> dict[str, Any]:
    """An event of realistic size and shape: 250 to 600 bytes, most with a user and details."""
    action = rng.choice(actions)
    uid = rng.randrange(1, 2000)
    user = (
        None
        if rng.random() < 0.05
        else {"id": uid, "username": f"user{uid}", "email": f"user{uid}@example.org"}
    )
    details: dict[str, Any] | None = None
    if action.startswith("trip."):
        details = {
            "trip_id": rng.randrange(1, 100_000),
            "title": rng.choice(["Lisbon weekend", "Alps 2027", "Family visit", "Road trip"]),
            "changed": rng.sample(["title", "start", "end", "places", "budget", "notes"], 2),
        }
    elif action == "mcp.tool_call":
        details = {"tool": rng.choice(["search_places", "add_day"]), "ms": rng.randrange(1, 900)}
    elif rng.random() < 0.5:
        details = {"agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0", "ok": True}
    stamp = time.gmtime(when)
    micros = int((when % 1) * 1_000_000)
    return {
        "v": 1,
        "id": uuid7(rng, when),
        "seq": seq,
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", stamp) + f".{micros:06d}Z",
        "action": action,
        "user": user,
        "resource": None if details is None else f"trip/{rng.randrange(1, 100_000)}",
        "ip": f"198.51.{rng.randrange(256)}.{rng.randrange(256)}",
        "details": details,
    }


def _oldest_first(log_dir: Path) -> list[Path]:
    """trek.log.4 .. trek.log.1, trek.log."""
    return [LogDir(log_dir).rotated(n) for n in range(FILES - 1, -1, -1)]


def generate(log_dir: Path, events: int) -> int:
    """Write ``events`` events over trek.log.4 .. trek.log; return the bytes written."""
    rng = random.Random(20261126)
    actions = sorted(ACTIONS)
    log_dir.mkdir(parents=True, exist_ok=True)
    per_file = -(-events // FILES)
    seq = 0
    total = 0
    start = time.time() - events / 100
    for path in _oldest_first(log_dir):
        with open(path, "wb") as file:
            chunk: list[bytes] = []
            for _ in range(min(per_file, events - seq)):
                seq += 1
                chunk.append(encode(cast(Event, fake_event(rng, seq, actions, start + seq / 100))))
                if len(chunk) == 10_000:
                    data = b"".join(chunk)
                    total += len(data)
                    file.write(data)
                    chunk = []
            data = b"".join(chunk)
            total += len(data)
            file.write(data)
    return total


def plain_insert(log_dir: Path, db_path: Path) -> float:
    """Insert the same rows with executemany in one transaction; return the seconds timed."""
    conn = open_database(db_path)
    conn.isolation_level = "DEFERRED"
    timed = 0.0
    for path in _oldest_first(log_dir):
        with open(path, "rb") as file:
            while True:
                lines = file.readlines(16 << 20)
                if not lines:
                    break
                rows = [event_row(decode(raw)) for raw in lines]  # not timed
                begin = time.perf_counter()
                conn.executemany(INSERT, rows)
                timed += time.perf_counter() - begin
    begin = time.perf_counter()
    conn.commit()
    timed += time.perf_counter() - begin
    conn.close()
    return timed


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "trek_audit", *args]


def catch_up(work: Path, events: int) -> None:
    data_dir = work / "catch-up"
    begin = time.perf_counter()
    size = generate(DataDir(data_dir).log_dir, events)
    print(
        f"catch-up: {events:,} events in {FILES} files, {size / 1e6:.1f} MB "
        f"(generated in {time.perf_counter() - begin:.1f} s)"
    )

    begin = time.perf_counter()
    done = subprocess.run(
        cli("index", "--once", "--data-dir", str(data_dir)),
        capture_output=True,
        text=True,
        check=True,
    )
    indexer_seconds = time.perf_counter() - begin
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    indexed = read_status(data_dir)["indexed"]
    assert indexed == events, (indexed, done.stdout, done.stderr)

    plain_seconds = plain_insert(DataDir(data_dir).log_dir, work / "plain.db")
    plain_conn = connect(work / "plain.db", readonly=True)
    plain_rows = plain_conn.execute("SELECT max(id) FROM audit_log").fetchone()[0]
    plain_conn.close()
    assert plain_rows == events

    plain_rate = events / plain_seconds
    indexer_rate = events / indexer_seconds
    ratio = indexer_rate / plain_rate
    peak_mb = peak_kib / 1024
    print(f"  plain executemany           {plain_seconds:7.2f} s  {plain_rate:10,.0f} rows/s")
    print(f"  trek-audit index --once     {indexer_seconds:7.2f} s  {indexer_rate:10,.0f} rows/s")
    print(
        f"  ratio                       {ratio:.2f}x   (target >= 0.6x)  "
        f"{'PASS' if ratio >= 0.6 else 'MISS'}"
    )
    print(
        f"  indexer peak RSS            {peak_mb:.1f} MB (target < 150 MB)  "
        f"{'PASS' if peak_mb < 150 else 'MISS'}"
    )


class Poller(threading.Thread):
    """Stamp the moment each new row becomes visible in audit.db."""

    def __init__(self, db_path: Path, interval: float) -> None:
        super().__init__(name="poller", daemon=True)
        self.db_path = db_path
        self.interval = interval
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.db_path.exists():
            self.stop.wait(self.interval)
        conn = connect(self.db_path, readonly=True)
        last = 0
        while not self.stop.is_set():
            try:
                rows = conn.execute(
                    "SELECT id, event_id FROM audit_log WHERE id > ? ORDER BY id", (last,)
                ).fetchall()
            except sqlite3.OperationalError:
                rows = []  # the schema is being created
            now = time.time()
            for row_id, event_id in rows:
                self.seen[event_id] = now
                last = row_id
            self.stop.wait(self.interval)
        conn.close()


def live(work: Path, seconds: float, rate: int) -> None:
    data_dir = work / "live"
    data = DataDir(data_dir)
    indexer = subprocess.Popen(cli("index", "-q", "--data-dir", str(data_dir)))
    poller = Poller(data.audit_db, 0.001)
    try:
        deadline = time.monotonic() + 30
        while not read_status(data_dir)["running"] or not data.audit_db.exists():
            if time.monotonic() > deadline:
                raise SystemExit("the indexer did not start")
            time.sleep(0.05)
        poller.start()
        returned: dict[str, float] = {}
        count = int(seconds * rate)
        pause = threading.Event()
        with AuditWriter.from_settings(Settings(data_dir=data_dir)) as writer:
            rng = random.Random(7)
            actions = sorted(ACTIONS)
            start = time.monotonic()
            for k in range(count):
                due = start + k / rate
                ahead = due - time.monotonic()
                if ahead > 0:
                    pause.wait(ahead)
                shape = fake_event(rng, k + 1, actions, time.time())
                event = writer.record(
                    shape["action"],
                    user=shape["user"],
                    resource=shape["resource"],
                    ip=shape["ip"],
                    details=shape["details"],
                )
                returned[event["id"]] = time.time()
            elapsed = time.monotonic() - start
        deadline = time.monotonic() + 30
        while len(poller.seen) < count and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        poller.stop.set()
        if poller.is_alive():
            poller.join()
        indexer.send_signal(signal.SIGTERM)
        indexer.wait(30)
    latencies = sorted(
        (poller.seen[event_id] - at) * 1000
        for event_id, at in returned.items()
        if event_id in poller.seen
    )
    missing = count - len(latencies)
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(
        f"live: {count:,} events at {count / elapsed:,.0f} events/s for {elapsed:.1f} s, "
        f"{missing} not indexed within 30 s after the last"
    )
    print(f"  latency p50  {p50:7.1f} ms  (target <= 50 ms)   {'PASS' if p50 <= 50 else 'MISS'}")
    print(f"  latency p99  {p99:7.1f} ms  (target <= 250 ms)  {'PASS' if p99 <= 250 else 'MISS'}")
    print(f"  latency max  {latencies[-1]:7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 events, 5 s live")
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--live-seconds", type=float, default=None)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    parser.add_argument("--live-only", action="store_true", help="skip the catch-up part")
    args = parser.parse_args()
    events = args.events or (100_000 if args.quick else 1_000_000)
    seconds = args.live_seconds or (5.0 if args.quick else 30.0)
    work = Path(tempfile.mkdtemp(prefix="trek-indexer-bench-"))
    try:
        if not args.live_only:
            catch_up(work, events)
            # Measure live latency on a quiet disk, not behind the write-back of the
            # catch-up's gigabyte of dirty pages.
            shutil.rmtree(work / "catch-up")
            for leftover in work.glob("plain.db*"):
                leftover.unlink()
            os.sync()
        live(work, seconds, args.rate)
    finally:
        if args.keep:
            print(f"data kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
