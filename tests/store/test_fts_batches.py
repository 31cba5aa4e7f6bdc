"""The full-text index is filled once per batch, in the batch's transaction, by the indexer.

A row is searchable exactly when it is visible: after catch-up, after a ``kill -9`` in the
middle of a batch, and while following, every row is found by each indexed column.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from trek_audit.indexer import Indexer, ledger
from trek_audit.store import connect, open_database, read_status

from .findable import append, check_full_text_index, unfindable, wait_for

# Indexes with batches of ``sys.argv[2]`` lines and kills itself with SIGKILL in the third
# batch's transaction: before its full-text entries are added, or after, before the commit.
KILLED_IN_A_BATCH = """
import os, signal, sys
from pathlib import Path
from trek_audit.indexer import Indexer, ledger

data_dir, batch, moment = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
fill = ledger.fill_full_text
batches = 0

def fill_then_die(conn, after):
    global batches
    batches += 1
    if batches == 3 and moment == "before the full-text entries":
        os.kill(os.getpid(), signal.SIGKILL)
    fill(conn, after)
    if batches == 3:
        os.kill(os.getpid(), signal.SIGKILL)

ledger.fill_full_text = fill_then_die
Indexer(data_dir, batch_size=batch).run_once()
"""


@pytest.fixture
def log_dir(data_dir: Path) -> Path:
    path = data_dir / "logs"
    path.mkdir()
    return path


def test_a_new_database_has_no_trigger_on_the_audit_table(data_dir: Path) -> None:
    conn = open_database(data_dir / "audit.db")
    try:
        triggers = conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall()
    finally:
        conn.close()
    assert triggers == []


def test_every_row_is_findable_by_each_indexed_column_after_catch_up(
    data_dir: Path, log_dir: Path
) -> None:
    append(log_dir / "trek.log.2", range(1, 401))
    append(log_dir / "trek.log.1", range(401, 801))
    append(log_dir / "trek.log", range(801, 1001))
    report = Indexer(data_dir, batch_size=150).run_once()
    assert report.rows == 1000
    assert unfindable(data_dir / "audit.db") == []


def test_rows_indexed_again_are_neither_inserted_nor_given_entries_twice(
    data_dir: Path, log_dir: Path
) -> None:
    append(log_dir / "trek.log", range(1, 301))
    Indexer(data_dir, batch_size=100).run_once()
    conn = connect(data_dir / "audit.db")
    try:
        with conn:  # forget the positions: the same lines are read again
            conn.execute('UPDATE log_files SET "offset" = 0')
    finally:
        conn.close()
    assert Indexer(data_dir, batch_size=100).run_once().rows == 0
    assert read_status(data_dir)["indexed"] == 300
    assert unfindable(data_dir / "audit.db") == []


@pytest.mark.parametrize(
    "moment",
    ["before the full-text entries", "after the full-text entries"],
    ids=["before-fill", "after-fill"],
)
def test_kill_9_in_the_middle_of_a_batch_leaves_no_row_without_its_entries(
    data_dir: Path, log_dir: Path, moment: str
) -> None:
    append(log_dir / "trek.log.1", range(1, 301))
    append(log_dir / "trek.log", range(301, 601))
    child = subprocess.run(
        [sys.executable, "-c", KILLED_IN_A_BATCH, str(data_dir), "100", moment], check=False
    )
    assert child.returncode == -signal.SIGKILL

    # Two batches committed; the third left nothing, neither rows nor entries.
    conn = connect(data_dir / "audit.db", readonly=True)
    try:
        assert conn.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 200
    finally:
        conn.close()
    check_full_text_index(data_dir / "audit.db")
    assert read_status(data_dir)["indexed"] == 200

    assert Indexer(data_dir, batch_size=100).run_once().rows == 400
    assert read_status(data_dir)["indexed"] == 600
    assert unfindable(data_dir / "audit.db") == []


def test_every_row_is_findable_while_following(data_dir: Path, log_dir: Path) -> None:
    with Indexer(data_dir, watch=False, rescan_interval=0.02, batch_size=50):
        for last in range(60, 301, 60):
            append(log_dir / "trek.log", range(last - 59, last + 1))

            def indexed(last: int = last) -> bool:
                return read_status(data_dir)["indexed"] == last

            wait_for(indexed, what=f"{last} rows")
            assert unfindable(data_dir / "audit.db") == []


def test_a_batch_whose_full_text_entries_fail_is_rolled_back_and_the_pass_raises(
    data_dir: Path, log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    append(log_dir / "trek.log", range(1, 251))
    fill = ledger.fill_full_text
    batches: list[int] = []

    def fail_the_second(conn: sqlite3.Connection, after: int) -> None:
        batches.append(after)
        if len(batches) == 2:
            raise sqlite3.OperationalError("disk I/O error")
        fill(conn, after)

    monkeypatch.setattr(ledger, "fill_full_text", fail_the_second)
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        Indexer(data_dir, batch_size=100).run_once()
    assert read_status(data_dir)["indexed"] == 100  # the first batch only
    check_full_text_index(data_dir / "audit.db")

    monkeypatch.setattr(ledger, "fill_full_text", fill)
    assert Indexer(data_dir, batch_size=100).run_once().rows == 150
    assert unfindable(data_dir / "audit.db") == []
