"""While `trek-audit index` follows (alone or as serve's child), no line stays unsealed longer
than the interval plus a second; without a key it does nothing, and its errors stop nothing."""

from __future__ import annotations

import errno
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
from click.testing import CliRunner

from trek_audit.cli import main
from trek_audit.indexer.sealing import Sealer
from trek_audit.store import read_status
from trek_audit.webui.children import IndexerChild
from trek_audit.writer import AuditWriteError, AuditWriter
from trek_audit.writer.chain import SEAL_ACTION
from trek_audit.writer.seal_key import create_key_file

# As for an idle indexer without a key: under 1% of one core.
from .logfiles import IDLE_CPU_SHARE, IDLE_SECONDS, Reader, cpu_seconds, wait_for


def seal_seqs(log_dir: Path) -> list[int]:
    """The seqs of the seal lines in trek.log."""
    path = log_dir / "trek.log"
    if not path.exists():
        return []
    lines = [orjson.loads(raw) for raw in path.read_bytes().splitlines()]
    return [line["seq"] for line in lines if line["action"] == SEAL_ACTION]


@pytest.fixture
def sealing(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A sealing key in its default place, and a one-second interval for every process."""
    create_key_file(data_dir / "seal.key")
    monkeypatch.setenv("TREK_SEAL_INTERVAL", "1")
    return data_dir / "seal.key"


@pytest.fixture
def following(data_dir: Path, log_dir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`trek-audit index` following the data directory, holding its lock."""
    process = subprocess.Popen(
        [sys.executable, "-m", "trek_audit", "index", "--data-dir", str(data_dir), "--quiet"]
    )
    try:
        wait_for(lambda: read_status(data_dir)["pid"] == process.pid, what="the indexer's lock")
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0


def record_one(log_dir: Path) -> tuple[int, float]:
    """Record one event, as an app that then writes nothing more; its seq and when."""
    with AuditWriter(log_dir, seal_interval=1) as writer:
        event = writer.record("trip.update", resource="trip/1")
        return event["seq"], time.time()


def test_trek_audit_index_seals_the_last_line_within_the_interval_plus_a_second(
    sealing: Path, data_dir: Path, log_dir: Path, following: subprocess.Popen[bytes], db: Reader
) -> None:
    pause = threading.Event()
    pause.wait(1.3)  # the sealer has looked once and found nothing: it sleeps an interval
    seq, written = record_one(log_dir)
    wait_for(lambda: any(s > seq for s in seal_seqs(log_dir)), timeout=5, what="a seal")
    took = time.time() - written
    assert took <= 1.0 + 1.0, f"sealed {took:.2f} s after the line"
    sealed = seq + 1
    wait_for(lambda: db.path.exists() and sealed in db.seqs(), what="the seal's row")
    assert db.incidents() == []


def test_serves_indexer_child_seals_too(
    sealing: Path, data_dir: Path, log_dir: Path, db: Reader
) -> None:
    child = IndexerChild(data_dir)
    try:
        wait_for(child.holds_the_directory, what="the child's lock")
        seq, _ = record_one(log_dir)
        wait_for(lambda: any(s > seq for s in seal_seqs(log_dir)), timeout=5, what="a seal")
    finally:
        assert child.stop() == 0


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_an_idle_indexer_with_a_sealing_key_uses_under_one_percent_of_a_core(
    sealing: Path, data_dir: Path, log_dir: Path, following: subprocess.Popen[bytes]
) -> None:
    seq, _ = record_one(log_dir)
    wait_for(lambda: any(s > seq for s in seal_seqs(log_dir)), timeout=5, what="a seal")
    threading.Event().wait(1.0)  # the seal indexed: nothing is left to do
    seals = seal_seqs(log_dir)
    before = cpu_seconds(following.pid)
    threading.Event().wait(IDLE_SECONDS)
    used = cpu_seconds(following.pid) - before
    assert following.poll() is None
    assert used < IDLE_CPU_SHARE * IDLE_SECONDS, f"{used:.2f} s of CPU in {IDLE_SECONDS} s idle"
    assert seal_seqs(log_dir) == seals  # a seal is never sealed again


def test_index_once_seals_lines_that_are_due_before_indexing(
    sealing: Path, data_dir: Path, log_dir: Path, db: Reader
) -> None:
    seq, _ = record_one(log_dir)
    runner = CliRunner()
    result = runner.invoke(main, ["index", "--once", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    assert seal_seqs(log_dir) == [seq - 1]  # the opening seal only: the line is not due yet

    threading.Event().wait(1.1)
    result = runner.invoke(main, ["index", "--once", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    assert seal_seqs(log_dir) == [seq - 1, seq + 1]
    assert db.seqs() == [seq - 1, seq, seq + 1]  # and indexed in the same run
    assert db.incidents() == []


def test_without_a_key_the_sealer_makes_no_writer_and_no_file(
    data_dir: Path, log_dir: Path
) -> None:
    made: list[AuditWriter] = []

    def open_writer() -> AuditWriter:
        made.append(AuditWriter(log_dir))
        return made[-1]

    with Sealer(open_writer, data_dir / "seal.key", interval=0.02) as sealer:
        threading.Event().wait(0.3)  # a dozen turns
        assert sealer.seals == 0
    assert made == []
    assert sorted(os.listdir(log_dir)) == []


class FailingWriter:
    """A writer whose line is always due and whose seals fail with ``errors``, then work."""

    def __init__(self, errors: list[Exception]) -> None:
        self.errors = errors
        self.attempts: list[float] = []
        self.closed = 0

    def seal_due_at(self) -> float | None:
        return time.time() - 1 if self.errors else None

    def seal(self) -> dict[str, Any] | None:
        self.attempts.append(time.monotonic())
        if self.errors:
            raise self.errors.pop(0)
        return None

    def close(self) -> None:
        self.closed += 1


def test_sealing_errors_are_logged_once_per_kind_and_retried_with_growing_pauses(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = data_dir / "seal.key"
    key.write_text("a key")
    full = OSError(errno.ENOSPC, "No space left on device")
    errors: list[Exception] = [AuditWriteError("cannot seal: disk full", "trek.log", full)] * 4
    errors.append(PermissionError(errno.EACCES, "Permission denied"))
    writer = FailingWriter(errors)
    caplog.set_level(logging.WARNING, logger="trek_audit.indexer.sealing")
    with Sealer(lambda: cast(AuditWriter, writer), key, interval=60) as sealer:
        wait_for(lambda: not writer.errors, timeout=20, what="every error")
        began = time.monotonic()
    assert time.monotonic() - began < 1.0  # stop wakes it from its sleep at once
    assert sealer.stop_event.is_set()
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 2, warnings
    assert "No space left on device" in warnings[0] or "disk full" in warnings[0]
    assert "PermissionError" in warnings[1]
    pauses = [b - a for a, b in zip(writer.attempts, writer.attempts[1:], strict=False)]
    assert pauses == sorted(pauses)  # 0.5, 1, 2, 4 s
    assert pauses[0] >= 0.4
    assert writer.closed >= len(errors)  # a new writer after each failure
