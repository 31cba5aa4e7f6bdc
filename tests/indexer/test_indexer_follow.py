"""Following in the background: one indexer per directory, wake-ups, rescans, clean stops."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from trek_audit.indexer import Indexer, IndexerBusy
from trek_audit.indexer.follower import _WakeOnLogChange
from trek_audit.store import read_status

from .logfiles import Reader, append, rotate, wait_for


def test_a_second_indexer_on_the_same_directory_is_refused_with_the_holders_pid(
    data_dir: Path, log_dir: Path
) -> None:
    with Indexer(data_dir, watch=False), pytest.raises(IndexerBusy) as refused:
        Indexer(data_dir).run_once()
    assert refused.value.pid == os.getpid()
    assert str(refused.value) == f"another indexer (pid {os.getpid()}) is running on {data_dir}"


def test_a_second_indexer_asked_to_wait_runs_once_the_first_stops(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    append(log_dir / "trek.log", range(1, 6))
    first = Indexer(data_dir, watch=False).start()
    waiting_started = threading.Event()
    outcome: list[object] = []

    def second() -> None:
        waiting_started.set()
        try:
            outcome.append(Indexer(data_dir, wait=10.0).run_once().rows)
        except Exception as error:  # reported by the assertion below
            outcome.append(error)

    thread = threading.Thread(target=second)
    thread.start()
    waiting_started.wait(5)
    wait_for(lambda: db.path.exists() and len(db.seqs()) == 5, what="first indexer's rows")
    assert outcome == []  # still waiting for the lock
    first.stop()
    thread.join(15)
    assert outcome == [0]  # it ran, and found nothing left to insert
    assert db.seqs() == [1, 2, 3, 4, 5]


def test_the_rescan_alone_finds_everything_when_no_file_event_arrives(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    with Indexer(data_dir, watch=False, rescan_interval=0.05) as indexer:
        append(log_dir / "trek.log", range(1, 21))
        rotate(log_dir)
        append(log_dir / "trek.log", range(21, 31))
        wait_for(lambda: db.path.exists() and len(db.seqs()) == 30, what="30 rows")
        assert indexer._observer is None
    assert db.seqs() == list(range(1, 31))


def test_file_events_wake_the_indexer_long_before_the_rescan(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    with Indexer(data_dir, rescan_interval=600) as indexer:
        wait_for(lambda: indexer.scans >= 1 and db.path.exists(), what="the first pass")
        append(log_dir / "trek.log", range(1, 4))
        wait_for(lambda: len(db.seqs()) == 3, timeout=10, what="rows after a file event")


def test_a_dead_file_watcher_is_replaced(data_dir: Path, log_dir: Path, db: Reader) -> None:
    with Indexer(data_dir, rescan_interval=0.05) as indexer:
        wait_for(lambda: indexer._observer is not None, what="a watcher")
        dead = indexer._observer
        assert dead is not None
        dead.stop()
        dead.join(5)
        wait_for(lambda: indexer.observer_restarts >= 1, what="a new watcher")
        new = indexer._observer
        assert new is not None and new is not dead and new.is_alive()
        append(log_dir / "trek.log", range(1, 4))
        wait_for(lambda: db.path.exists() and len(db.seqs()) == 3, what="rows")


def test_an_error_inside_the_event_handler_neither_kills_the_watcher_nor_stops_indexing(
    data_dir: Path, log_dir: Path, db: Reader, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(event: object) -> bool:
        raise RuntimeError("handler bug")

    monkeypatch.setattr(_WakeOnLogChange, "concerns_log", staticmethod(broken))
    with Indexer(data_dir, rescan_interval=600) as indexer:
        wait_for(lambda: indexer.scans >= 1, what="the first pass")
        append(log_dir / "trek.log", range(1, 4))
        wait_for(lambda: db.path.exists() and len(db.seqs()) == 3, what="rows")
        assert indexer._observer is not None and indexer._observer.is_alive()
        assert indexer.observer_restarts == 0


def test_stopping_commits_and_releases_the_directory(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    append(log_dir / "trek.log", range(1, 1001))
    append(log_dir / "trek.log.1", range(1001, 50_001))  # a rotated file with a lot in it
    os.rename(log_dir / "trek.log", log_dir / "trek.log.2")
    indexer = Indexer(data_dir, watch=False, batch_size=100).start()
    assert read_status(data_dir)["running"] is True
    wait_for(lambda: read_status(data_dir)["indexed"] > 0, what="the first batch")
    indexer.stop()  # most likely in the middle of the pass
    status = read_status(data_dir)
    assert status["running"] is False
    assert status["indexed"] == len(db.seqs()) > 0
    Indexer(data_dir).run_once()  # the lock is free again, and it resumes where it stopped
    assert db.seqs() == list(range(1, 50_001))


def test_a_failing_pass_is_retried_without_stopping_the_indexer(
    data_dir: Path, log_dir: Path, db: Reader, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trek_audit.indexer.scanner import Scanner

    real_scan = Scanner.scan
    failures = [RuntimeError("disk hiccup")]

    def scan_once_failing(self: Scanner) -> object:
        if failures:
            raise failures.pop()
        return real_scan(self)

    monkeypatch.setattr(Scanner, "scan", scan_once_failing)
    append(log_dir / "trek.log", range(1, 4))
    with Indexer(data_dir, watch=False, rescan_interval=0.01):
        wait_for(lambda: db.path.exists() and len(db.seqs()) == 3, what="rows after a retry")
    assert failures == []


def test_two_indexers_past_a_deleted_lock_file_keep_counters_and_gaps_right(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    """The lock file deleted under a running indexer lets a second one in; the database
    must still end up exact: no duplicate, no false gap, counters equal to the rows."""
    first = Indexer(data_dir, watch=False)
    first.open()
    second = Indexer(data_dir, watch=False)
    try:
        (data_dir / "indexer.lock").unlink()
        second.open()
        append(log_dir / "trek.log", range(1, 11))
        assert first.run_once().rows == 10
        append(log_dir / "trek.log", range(11, 21))
        assert second.run_once().rows == 10
        append(log_dir / "trek.log", range(21, 31))
        assert first.run_once().rows == 10
    finally:
        second.close()
        first.close()
    assert db.seqs() == list(range(1, 31))
    assert db.gaps() == []
    assert (db.counter("indexed"), db.counter("last_seq"), db.counter("next_seq")) == (30, 30, 31)
