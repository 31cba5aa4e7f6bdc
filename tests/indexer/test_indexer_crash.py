"""``kill -9`` at random moments while writers write: after restarts, every event exactly once."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from trek_audit.indexer import Indexer
from trek_audit.store import read_status
from trek_audit.writer.line import decode

from .logfiles import Reader, append, wait_for

SHORT = bool(__import__("os").environ.get("TREK_TEST_SHORT"))

WRITER = """
import random, sys, threading
from trek_audit.writer import AuditWriter

log_dir, max_bytes, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
pause = threading.Event()
with AuditWriter(log_dir, max_bytes=max_bytes, backups=4) as writer:
    for i in range(count):
        writer.record(
            "trip.update",
            user={"id": i, "username": "walker", "email": None},
            resource=f"trip/{i}",
            details={"i": i, "pad": "x" * random.randint(0, 300)},
        )
        if i % 100 == 99:
            pause.wait(0.2)  # about 500 events a second: writing spans several restarts
"""


def _ids_on_disk(log_dir: Path) -> list[str]:
    ids = []
    for path in sorted(log_dir.glob("trek.log*")):
        for raw in path.read_bytes().splitlines():
            ids.append(decode(raw)["id"])
    return ids


@pytest.mark.slow
def test_kill_9_in_a_loop_while_writers_write_loses_and_repeats_nothing(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    per_writer = 2_000 if SHORT else 10_000
    kills = 6 if SHORT else 30
    # Large enough that nothing rotates out of the kept files: every event stays on disk.
    max_bytes = per_writer * 2 * 400 // 3
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(log_dir), str(max_bytes), str(per_writer)]
        )
        for _ in range(2)
    ]
    rng = random.Random()
    pause = threading.Event()
    killed = 0
    kills_while_writing = 0
    try:
        while killed < kills or any(w.poll() is None for w in writers):
            indexer = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "trek_audit",
                    "index",
                    "-q",
                    "--wait",
                    "--data-dir",
                    str(data_dir),
                    "--rescan-interval",
                    "0.02",
                ]
            )
            # Once it holds the lock (started, perhaps mid-pass), at a random moment.
            wait_for(lambda: read_status(data_dir)["running"], timeout=30, what="start-up")
            pause.wait(rng.uniform(0.0, 0.4))
            writing = any(w.poll() is None for w in writers)
            indexer.send_signal(signal.SIGKILL)
            indexer.wait()
            killed += 1
            kills_while_writing += writing
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
            writer.wait()
    assert [w.returncode for w in writers] == [0, 0]
    assert len(list(log_dir.glob("trek.log.*"))) >= 2  # rotations happened meanwhile
    assert kills_while_writing >= 2

    Indexer(data_dir).run_once()
    on_disk = _ids_on_disk(log_dir)
    assert len(on_disk) == 2 * per_writer
    indexed = [row[0] for row in db.conn.execute("SELECT event_id FROM audit_log")]
    assert sorted(indexed) == sorted(on_disk)
    assert db.seqs() and sorted(db.seqs()) == list(range(1, 2 * per_writer + 1))
    status = read_status(data_dir)
    assert (status["indexed"], status["gaps"], status["rejected"]) == (2 * per_writer, [], 0)
    assert status["incidents"] == 0


@pytest.mark.slow
def test_kill_9_in_the_middle_of_a_long_catch_up_loses_and_repeats_nothing(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    per_file = 6_000 if SHORT else 20_000
    for number, name in enumerate(["trek.log.2", "trek.log.1", "trek.log"]):
        append(log_dir / name, range(number * per_file + 1, (number + 1) * per_file + 1))
    total = 3 * per_file
    rng = random.Random()
    pause = threading.Event()
    progress: list[int] = []
    for round_ in range(4 if SHORT else 10):
        indexer = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "trek_audit",
                "index",
                "--once",
                "-q",
                "--wait",
                "--data-dir",
                str(data_dir),
            ]
        )
        wait_for(
            lambda p=indexer: read_status(data_dir)["running"] or p.poll() is not None,
            timeout=30,
            what="start-up",
        )
        if round_ % 2 == 0:
            # Right after a batch committed: in the middle of the next one.
            before = progress[-1] if progress else 0
            wait_for(
                lambda p=indexer, n=before: (
                    read_status(data_dir)["indexed"] > n or p.poll() is not None
                ),
                timeout=60,
                what="a batch",
            )
        else:
            pause.wait(rng.uniform(0.0, 1.0))
        indexer.send_signal(signal.SIGKILL)
        indexer.wait()
        progress.append(read_status(data_dir)["indexed"])
    Indexer(data_dir).run_once()
    assert db.seqs() == list(range(1, total + 1)), progress
    status = read_status(data_dir)
    assert (status["indexed"], status["gaps"], status["rejected"]) == (total, [], 0)
    assert any(0 < done < total for done in progress), progress  # kills struck mid-way
