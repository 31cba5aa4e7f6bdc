"""An incident means something was lost or changed: rotations that lose nothing raise none."""

from __future__ import annotations

from pathlib import Path

from trek_audit.indexer import Indexer
from trek_audit.writer import AuditWriter

from .logfiles import Reader, append, rotate, wait_for


def _record(log_dir: Path, count: int) -> None:
    with AuditWriter(log_dir, max_bytes=200, backups=1) as writer:
        for _ in range(count):
            writer.record("trip.create", resource="trip/1")


def test_rotations_while_the_indexer_is_stopped_index_everything_with_no_incident(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    _record(log_dir, 1)
    Indexer(data_dir, watch=False).run_once()
    _record(log_dir, 2)
    Indexer(data_dir, watch=False).run_once()
    assert db.seqs() == [1, 2, 3]
    assert db.gaps() == []
    assert db.incidents() == []


def test_many_rotations_while_stopped_with_every_line_still_kept_raise_no_incident(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    append(log_dir / "trek.log", [1])
    Indexer(data_dir, watch=False).run_once()
    seq = 1
    for _ in range(3):  # trek.log (seq 1) ends up as trek.log.3: read to its end already
        rotate(log_dir, backups=3)
        seq += 1
        append(log_dir / "trek.log", [seq])
    Indexer(data_dir, watch=False).run_once()
    assert db.seqs() == [1, 2, 3, 4]
    assert db.incidents() == []


def test_a_file_rotated_away_with_lines_never_read_is_still_an_incident_with_its_gap(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    append(log_dir / "trek.log", [1])
    Indexer(data_dir, watch=False).run_once()
    append(log_dir / "trek.log", [2])  # never read: rotated out below
    rotate(log_dir, backups=1)
    append(log_dir / "trek.log", [3])
    rotate(log_dir, backups=1)
    append(log_dir / "trek.log", [4])
    Indexer(data_dir, watch=False).run_once()
    assert db.seqs() == [1, 3, 4]
    assert db.gaps() == [(2, 2)]
    # Lines were lost: an incident, whichever inode the new trek.log landed on.
    assert [kind for kind, _ in db.incidents()] in (["replaced"], ["truncated"])


def test_a_rotation_storm_while_following_loses_nothing_and_raises_no_incident(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    with (
        Indexer(data_dir, rescan_interval=0.01, watch=False),
        AuditWriter(log_dir, max_bytes=1_000, backups=200) as writer,
    ):
        for _ in range(1_000):  # about four events per file: a rotation every fourth event
            writer.record("trip.create", resource="trip/1")
        wait_for(lambda: db.counter("indexed") == 1_000, what="every event")
    assert db.seqs() == list(range(1, 1_001))
    assert db.gaps() == []
    assert db.incidents() == []
