"""``trek-audit backup``: a consistent copy of audit.db taken while the indexer writes to it."""

from __future__ import annotations

import sqlite3
import stat
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from trek_audit.cli import main
from trek_audit.indexer import Indexer
from trek_audit.store import SCHEMA_VERSION, open_database
from trek_audit.store.backup import Backup, BackupError, backup
from trek_audit.writer import AuditWriter

EVENTS = 20_000


def write_events(data_dir: Path, count: int, first: int = 1) -> None:
    with AuditWriter(data_dir / "logs") as writer:
        for n in range(first, first + count):
            writer.record("trip.update", resource=f"trip/{n}", details={"n": n})


def rows_of(path: Path) -> list[tuple[int, str, int]]:
    """(id, event_id, seq) of every audit row, in indexing order."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT id, event_id, seq FROM audit_log ORDER BY id").fetchall()
    finally:
        conn.close()


def test_backups_taken_during_indexing_open_and_hold_what_was_committed(
    data_dir: Path, tmp_path: Path
) -> None:
    write_events(data_dir, EVENTS)
    open_database(data_dir / "audit.db").close()
    copies: list[Backup] = []
    pause = threading.Event()  # never set: a wait between copies
    # Small batches: many commits while the copies are taken, each a snapshot between two.
    with Indexer(data_dir, batch_size=200, rescan_interval=0.05, watch=False):
        for number in range(1000):
            copies.append(backup(data_dir / "audit.db", tmp_path / f"copy-{number}.db"))
            if copies[-1].rows == EVENTS:
                break
            pause.wait(0.01)
    final = rows_of(data_dir / "audit.db")
    assert len(final) == EVENTS
    during = [copy for copy in copies if 0 < copy.rows < EVENTS]
    assert during, f"no copy was taken while indexing: {[copy.rows for copy in copies]}"
    for copy in copies:
        assert copy.schema_version == SCHEMA_VERSION
        assert rows_of(copy.path) == final[: copy.rows]  # exactly the rows committed, in order
        assert not Path(f"{copy.path}-wal").exists()  # one self-contained file
        assert stat.S_IMODE(copy.path.stat().st_mode) == 0o600


def test_a_restored_backup_catches_up_from_the_log_files_exactly_once(
    data_dir: Path, tmp_path: Path
) -> None:
    write_events(data_dir, 500)
    Indexer(data_dir).run_once()
    copy = backup(data_dir / "audit.db", tmp_path / "audit-backup.db")
    write_events(data_dir, 300, first=501)
    Indexer(data_dir).run_once()
    expected = [(event_id, seq) for _, event_id, seq in rows_of(data_dir / "audit.db")]

    # The README's restore: trek-audit stopped, the copy in place of audit.db, started again.
    for suffix in ("", "-wal", "-shm"):
        Path(f"{data_dir / 'audit.db'}{suffix}").unlink(missing_ok=True)
    copy.path.rename(data_dir / "audit.db")
    assert len(rows_of(data_dir / "audit.db")) == 500
    Indexer(data_dir).run_once()
    restored = [(event_id, seq) for _, event_id, seq in rows_of(data_dir / "audit.db")]
    assert restored == expected
    assert len(expected) == 800


def test_backup_refuses_to_replace_a_file_unless_told(data_dir: Path, tmp_path: Path) -> None:
    open_database(data_dir / "audit.db").close()
    destination = tmp_path / "keep.db"
    destination.write_bytes(b"an earlier backup")
    with pytest.raises(BackupError, match="already exists: choose another name or pass --force"):
        backup(data_dir / "audit.db", destination)
    assert destination.read_bytes() == b"an earlier backup"
    assert backup(data_dir / "audit.db", destination, overwrite=True).rows == 0
    assert rows_of(destination) == []


def test_backup_without_an_audit_database_says_to_index_first(
    data_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(BackupError, match="no audit database at .*run `trek-audit index` first"):
        backup(data_dir / "audit.db", tmp_path / "copy.db")
    assert list(tmp_path.glob("*copy.db*")) == []


def test_backup_command_reports_the_copy_and_exits_1_on_refusal(
    data_dir: Path, tmp_path: Path
) -> None:
    write_events(data_dir, 7)
    Indexer(data_dir).run_once()
    destination = tmp_path / "copy.db"
    runner = CliRunner()
    args = ["backup", "--data-dir", str(data_dir), str(destination)]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"backed up 7 audit rows (schema version {SCHEMA_VERSION}, ")
    assert len(rows_of(destination)) == 7

    result = runner.invoke(main, args)
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert runner.invoke(main, [*args[:-1], "--force", str(destination)]).exit_code == 0
