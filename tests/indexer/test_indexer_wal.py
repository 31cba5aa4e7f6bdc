"""The WAL stays bounded: checkpoints complete while the panel reads; it is emptied when idle."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

from tests.conftest import SHORT
from trek_audit.indexer import Indexer
from trek_audit.store import connect
from trek_audit.store.schema import WAL_SIZE_LIMIT

from .logfiles import Reader, line, wait_for

EVENTS = 20_000 if SHORT else 200_000
# While catching up the WAL may pass WAL_SIZE_LIMIT by what commits add during one checkpoint;
# once the indexer is idle it is emptied.
BOUND_WHILE_BUSY = 2 * WAL_SIZE_LIMIT
BOUND_WHEN_IDLE = 1 << 20


def _wal_size(data_dir: Path) -> int:
    try:
        return os.stat(data_dir / "audit.db-wal").st_size
    except FileNotFoundError:
        return 0


def _indexed(db: Reader) -> int:
    if not db.path.exists():
        return 0
    try:
        return db.counter("indexed")
    except sqlite3.OperationalError:  # not created yet
        return 0


def _panel_reads(data_dir: Path, stop: threading.Event) -> None:
    """Read like the panel: a page and a count, one statement after the other, all along."""
    while not (data_dir / "audit.db").exists() and not stop.is_set():
        stop.wait(0.01)
    conn = connect(data_dir / "audit.db", readonly=True)
    try:
        while not stop.is_set():
            try:
                conn.execute(
                    "SELECT id, action FROM audit_log ORDER BY id DESC LIMIT 100"
                ).fetchall()
                conn.execute("SELECT value FROM indexer_state WHERE name = 'indexed'").fetchone()
            except Exception:  # noqa: BLE001, S110 - the tables may not exist yet
                stop.wait(0.01)
    finally:
        conn.close()


def test_catch_up_with_the_panel_reading_keeps_the_wal_bounded_and_empties_it_when_idle(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    with open(log_dir / "trek.log", "wb") as file:
        for first in range(1, EVENTS + 1, 10_000):
            file.write(b"".join(line(seq) for seq in range(first, min(first + 10_000, EVENTS + 1))))
    stop = threading.Event()
    reader = threading.Thread(target=_panel_reads, args=(data_dir, stop), name="panel-reads")
    reader.start()
    largest = 0
    try:
        with Indexer(data_dir, rescan_interval=0.2, watch=False):
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and _indexed(db) < EVENTS:
                largest = max(largest, _wal_size(data_dir))
                time.sleep(0.05)
            assert db.counter("indexed") == EVENTS
            wait_for(
                lambda: _wal_size(data_dir) < BOUND_WHEN_IDLE,
                timeout=15,
                what="the WAL to be emptied while idle",
            )
    finally:
        stop.set()
        reader.join()
    assert largest < BOUND_WHILE_BUSY, f"the WAL reached {largest} bytes"
