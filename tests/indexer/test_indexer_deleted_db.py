"""audit.db deleted under a running indexer: it notices, and builds a new one from the logs left."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from trek_audit.indexer import Indexer

from .logfiles import Reader, append, rotate, wait_for


def _seqs(path: Path) -> list[int]:
    db = Reader(path)
    try:
        return db.seqs()
    except Exception:  # noqa: BLE001 - not created yet
        return []
    finally:
        db.close()


def test_a_deleted_audit_db_is_noticed_and_rebuilt_from_the_log_files_still_there(
    data_dir: Path, log_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    audit_db = data_dir / "audit.db"
    append(log_dir / "trek.log", range(1, 6))
    with Indexer(data_dir, rescan_interval=0.05, watch=False):
        wait_for(lambda: _seqs(audit_db) == [1, 2, 3, 4, 5], what="the first events")
        rotate(log_dir, backups=1)
        append(log_dir / "trek.log", range(6, 11))
        wait_for(lambda: len(_seqs(audit_db)) == 10, what="the next events")
        rotate(log_dir, backups=1)  # seq 1..5 are gone from the log files now
        append(log_dir / "trek.log", range(11, 16))
        with caplog.at_level(logging.WARNING):
            os.unlink(audit_db)
            wait_for(lambda: _seqs(audit_db) == list(range(6, 16)), what="a new audit.db")
    assert "is no longer the database this indexer has open" in caplog.text
    db = Reader(audit_db)
    try:
        assert db.gaps() == [(1, 5)]
    finally:
        db.close()
