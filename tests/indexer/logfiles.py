"""Log files and audit-database questions for the indexer's tests."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

from trek_audit.store import connect, read_status
from trek_audit.writer.line import Event, encode


class Reader:
    """Questions tests ask the audit database."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = connect(self.path, readonly=True)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()

    def seqs(self) -> list[int]:
        """Every indexed seq, in the order the rows were indexed."""
        return [row[0] for row in self.conn.execute("SELECT seq FROM audit_log ORDER BY id")]

    def gaps(self) -> list[tuple[int, int]]:
        return [tuple(row) for row in self.conn.execute("SELECT first_seq, last_seq FROM gaps")]

    def rejected(self) -> list[dict[str, Any]]:
        self.conn.row_factory = sqlite3.Row
        try:
            rows = self.conn.execute("SELECT * FROM rejected_lines ORDER BY id").fetchall()
            return [dict(row) for row in rows]
        finally:
            self.conn.row_factory = None

    def incidents(self) -> list[tuple[str, str]]:
        return list(self.conn.execute("SELECT kind, message FROM incidents ORDER BY id"))

    def counter(self, name: str) -> int:
        query = "SELECT value FROM indexer_state WHERE name = ?"
        return int(self.conn.execute(query, (name,)).fetchone()[0])


def event(seq: int, **fields: Any) -> dict[str, Any]:
    """A valid format-v1 event with ``seq``; ``fields`` override any key."""
    base: dict[str, Any] = {
        "v": 1,
        "id": str(uuid.uuid4()),
        "seq": seq,
        "ts": "2026-11-26T13:22:49.123456Z",
        "action": "user.login",
        "user": {"id": 7, "username": "alice", "email": "alice@example.com"},
        "resource": f"trip/{seq}",
        "ip": "203.0.113.7",
        "details": {"n": seq},
    }
    base.update(fields)
    return base


def line(seq: int, **fields: Any) -> bytes:
    return encode(cast(Event, event(seq, **fields)))


def append(path: Path, seqs: Iterable[int] | bytes) -> None:
    """Append events with these seqs (or raw bytes) to a log file, creating it if needed."""
    data = seqs if isinstance(seqs, bytes) else b"".join(line(seq) for seq in seqs)
    with open(path, "ab") as file:
        file.write(data)


def rotate(log_dir: Path, backups: int = 4) -> None:
    """Rotate like the writer: trek.log.{N-1} -> .N ... trek.log -> .1, dropping the oldest."""
    oldest = log_dir / f"trek.log.{backups}"
    if oldest.exists():
        oldest.unlink()
    for number in range(backups - 1, 0, -1):
        source = log_dir / f"trek.log.{number}"
        if source.exists():
            os.rename(source, log_dir / f"trek.log.{number + 1}")
    os.rename(log_dir / "trek.log", log_dir / "trek.log.1")


def wait_for(condition: Any, timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``condition`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        pause.wait(0.02)


def cpu_seconds(pid: int) -> float:
    """User plus system time of ``pid`` (all its threads), from /proc/<pid>/stat."""
    text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    fields = text.rpartition(")")[2].split()  # after the command name, state first
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# An idle indexer may use at most this share of a core, measured over IDLE_SECONDS.
IDLE_SECONDS = 10.0
IDLE_CPU_SHARE = 0.01


def idle_cpu_of_trek_audit_index(data_dir: Path) -> float:
    """CPU seconds a `trek-audit index` following ``data_dir`` uses in IDLE_SECONDS once it
    has caught up (nothing is written meanwhile); it must still run, and stop cleanly."""
    process = subprocess.Popen(
        [sys.executable, "-m", "trek_audit", "index", "--data-dir", str(data_dir), "--quiet"]
    )
    try:
        wait_for(lambda: read_status(data_dir)["pid"] == process.pid, what="the indexer's lock")
        wait_for(lambda: read_status(data_dir)["running"], what="the indexer")
        threading.Event().wait(1.0)  # its first pass: nothing is left to catch up
        before = cpu_seconds(process.pid)
        threading.Event().wait(IDLE_SECONDS)
        used = cpu_seconds(process.pid) - before
        assert process.poll() is None
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    return used
