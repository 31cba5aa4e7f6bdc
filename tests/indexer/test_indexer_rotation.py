"""Rotation, restarts inside a rotation, and gaps when files were lost."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from trek_audit.indexer import Indexer, scanner

from .logfiles import Reader, append, rotate, wait_for


def index_once(data_dir: Path) -> None:
    Indexer(data_dir).run_once()


def test_every_line_is_indexed_once_and_a_second_pass_adds_nothing(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    append(log_dir / "trek.log", range(1, 201))
    first = Indexer(data_dir).run_once()
    second = Indexer(data_dir).run_once()
    assert (first.rows, second.rows) == (200, 0)
    assert db.seqs() == list(range(1, 201))
    assert db.counter("indexed") == 200
    assert db.counter("next_seq") == 201


def test_rename_rotation_while_stopped_reads_the_renamed_file_to_its_end_first(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    append(log_dir / "trek.log", range(1, 11))
    index_once(data_dir)
    append(log_dir / "trek.log", range(11, 21))
    rotate(log_dir)
    append(log_dir / "trek.log", range(21, 31))
    index_once(data_dir)
    assert db.seqs() == list(range(1, 31))
    assert db.gaps() == []
    assert db.incidents() == []


def test_rename_rotation_while_running_loses_and_repeats_nothing(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    seq = 0
    with Indexer(data_dir, rescan_interval=0.05):
        for _ in range(8):
            append(log_dir / "trek.log", range(seq + 1, seq + 51))
            seq += 50
            rotate(log_dir)
            # Never more than two files behind: four backups keep them all on disk.
            behind = seq - 100
            wait_for(lambda n=behind: db.path.exists() and len(db.seqs()) >= n, what="catch-up")
        append(log_dir / "trek.log", range(seq + 1, seq + 11))
        seq += 10
        wait_for(lambda: db.path.exists() and len(db.seqs()) >= seq, what="all rows")
    assert db.seqs() == list(range(1, seq + 1))
    assert db.gaps() == []
    assert db.incidents() == []  # trek.log on a freed inode after a rotation is no truncation


def test_files_created_during_a_pass_never_overtake_older_ones(
    data_dir: Path, log_dir: Path, db: Reader, monkeypatch: pytest.MonkeyPatch
) -> None:
    append(log_dir / "trek.log", range(1, 11))
    rotate(log_dir)
    append(log_dir / "trek.log", range(11, 21))
    real_file_key = scanner.file_key
    pending = [31, 21]

    def file_key_while_rotating(fd: int, inode: int) -> str | None:
        while pending:  # two rotations while the pass opens trek.log
            rotate(log_dir)
            first = pending.pop()
            append(log_dir / "trek.log", range(first, first + 10))
        return real_file_key(fd, inode)

    monkeypatch.setattr(scanner, "file_key", file_key_while_rotating)
    index_once(data_dir)
    index_once(data_dir)
    assert db.seqs() == list(range(1, 41))
    assert db.gaps() == []


def test_more_rotations_than_backups_while_stopped_records_the_exact_missing_range(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    append(log_dir / "trek.log", range(1, 11))
    index_once(data_dir)
    # Seven files of ten events while stopped; four backups keep only the last four
    # rotated files and trek.log, so seq 11..30 (two files) are gone.
    for first in range(11, 71, 10):
        append(log_dir / "trek.log", range(first, first + 10))
        rotate(log_dir, backups=4)
    append(log_dir / "trek.log", range(71, 81))
    index_once(data_dir)
    assert db.gaps() == [(11, 30)]
    assert db.seqs() == list(range(1, 11)) + list(range(31, 81))
    # Its first file was rotated out unread; trek.log may even sit on its freed inode.
    assert [kind for kind, _ in db.incidents()] in (["replaced"], ["truncated"])


def test_restart_after_trek_log_was_renamed_but_not_yet_recreated(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    append(log_dir / "trek.log", range(1, 21))
    index_once(data_dir)
    append(log_dir / "trek.log", range(21, 31))
    os.rename(log_dir / "trek.log", log_dir / "trek.log.1")  # the writer stopped here
    index_once(data_dir)
    assert db.seqs() == list(range(1, 31))
    append(log_dir / "trek.log", range(31, 41))  # the writer finishes the rotation
    index_once(data_dir)
    assert db.seqs() == list(range(1, 41))
    assert db.gaps() == []
    assert db.incidents() == []


def test_restart_after_a_rotation_stopped_half_way_through_the_renames(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    append(log_dir / "trek.log", range(1, 11))
    rotate(log_dir)
    append(log_dir / "trek.log", range(11, 21))
    rotate(log_dir)
    append(log_dir / "trek.log", range(21, 31))
    index_once(data_dir)
    append(log_dir / "trek.log", range(31, 41))
    # The next rotation moved .2 -> .3 and .1 -> .2, then stopped: .1 is missing.
    os.rename(log_dir / "trek.log.2", log_dir / "trek.log.3")
    os.rename(log_dir / "trek.log.1", log_dir / "trek.log.2")
    index_once(data_dir)
    assert db.seqs() == list(range(1, 41))
    # It resumes by filling the first missing slot.
    os.rename(log_dir / "trek.log", log_dir / "trek.log.1")
    append(log_dir / "trek.log", range(41, 51))
    index_once(data_dir)
    assert db.seqs() == list(range(1, 51))
    assert db.gaps() == []
    assert db.incidents() == []


def test_a_row_arriving_late_shrinks_and_splits_its_gap(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    append(log_dir / "trek.log", [1, 2, 10])
    index_once(data_dir)
    assert db.gaps() == [(3, 9)]
    append(log_dir / "trek.log", [3, 6, 9])
    index_once(data_dir)
    assert sorted(db.gaps()) == [(4, 5), (7, 8)]
    assert db.counter("next_seq") == 11


def test_an_older_seq_outside_any_gap_is_indexed_without_opening_a_gap(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    append(log_dir / "trek.log", [1, 2, 3, 2, 1])  # another program's events, same format
    index_once(data_dir)
    assert db.seqs() == [1, 2, 3, 2, 1]
    assert db.gaps() == []
    assert db.counter("last_seq") == 3


def test_the_first_file_seen_starting_late_records_the_earlier_seqs_as_missing(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    append(log_dir / "trek.log", range(500, 510))
    index_once(data_dir)
    assert db.gaps() == [(1, 499)]
