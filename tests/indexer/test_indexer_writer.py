"""With the real AuditWriter: its rotations, its seq and its lines, indexed exactly once."""

from __future__ import annotations

import threading
from pathlib import Path

from trek_audit.indexer import Indexer
from trek_audit.settings import Settings
from trek_audit.store import read_status
from trek_audit.writer import AuditWriter

from .logfiles import Reader, wait_for


def test_events_recorded_across_the_writers_rotations_are_indexed_once_in_order(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    recorded: list[str] = []
    with Indexer(data_dir, rescan_interval=0.05):
        # Six files of about 25 KB: five backups keep every one on disk, so none can be
        # rotated out (a gap) before the indexer has read it, however fast the writer is.
        with AuditWriter(log_dir, max_bytes=25_000, backups=5) as writer:
            for number in range(600):
                event = writer.record(
                    "trip.update",
                    user={"id": number, "username": "alice", "email": None},
                    resource=f"trip/{number}",
                    details={"changed": ["title"], "n": number},
                )
                recorded.append(event["id"])
        assert len(list(log_dir.glob("trek.log.*"))) == 5
        wait_for(lambda: read_status(data_dir)["indexed"] == 600, what="600 rows")
    rows = list(db.conn.execute("SELECT event_id, seq FROM audit_log ORDER BY id"))
    assert [event_id for event_id, _ in rows] == recorded
    assert [seq for _, seq in rows] == list(range(1, 601))
    assert (db.gaps(), db.rejected(), db.incidents()) == ([], [], [])


def test_threads_recording_at_once_are_all_indexed_without_gaps(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    with Indexer(data_dir, rescan_interval=0.05), AuditWriter(log_dir, max_bytes=40_000) as writer:

        def record_many() -> None:
            for number in range(150):
                writer.record("user.login", ip=f"192.0.2.{number}")

        threads = [threading.Thread(target=record_many) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wait_for(lambda: read_status(data_dir)["indexed"] == 600, what="600 rows")
    assert sorted(db.seqs()) == list(range(1, 601))
    assert db.gaps() == []


def test_an_event_longer_than_the_default_line_limit_is_indexed_under_the_same_settings(
    data_dir: Path, db: Reader
) -> None:
    environ = {"TREK_DATA_DIR": str(data_dir), "TREK_LOG_MAX_LINE_BYTES": "200000"}
    settings = Settings.from_env(environ)
    with AuditWriter.from_settings(settings) as writer:
        event = writer.record("trip.update", details={"notes": "x" * 100_000})
    assert settings.data.logs.log_file.stat().st_size > Settings().max_line_bytes
    report = Indexer.from_settings(settings, watch=False).run_once()
    assert (report.rows, report.rejected) == (1, 0)
    assert [row[0] for row in db.conn.execute("SELECT event_id FROM audit_log")] == [event["id"]]
    assert db.rejected() == []


def test_an_indexer_made_from_settings_reads_their_data_directory_with_their_line_limit(
    data_dir: Path,
) -> None:
    settings = Settings(data_dir=data_dir, max_line_bytes=200_000)
    indexer = Indexer.from_settings(settings, rescan_interval=0.5)
    assert (indexer.log_dir, indexer.db_path) == (data_dir / "logs", data_dir / "audit.db")
    assert (indexer.max_line_bytes, indexer.rescan_interval) == (200_000, 0.5)
    assert Indexer(data_dir).max_line_bytes == Settings().max_line_bytes
