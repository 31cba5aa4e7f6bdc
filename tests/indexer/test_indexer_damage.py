"""Partial lines, truncation, copytruncate, inode reuse and files that start badly."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from trek_audit.indexer import Indexer
from trek_audit.store import read_status

from .logfiles import Reader, append, line, rotate


def index_once(data_dir: Path, **options: Any) -> None:
    Indexer(data_dir, **options).run_once()


def test_a_partial_last_line_waits_for_its_newline(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    whole = line(3)
    append(log_dir / "trek.log", range(1, 3))
    append(log_dir / "trek.log", whole[:40])
    index_once(data_dir)
    assert db.seqs() == [1, 2]
    assert read_status(data_dir)["lag_bytes"] == 40
    append(log_dir / "trek.log", whole[40:])
    index_once(data_dir)
    assert db.seqs() == [1, 2, 3]
    assert db.rejected() == []
    assert read_status(data_dir)["lag_bytes"] == 0


def test_a_fragment_at_the_end_of_a_rotated_file_is_rejected_once_settled(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    fragment = line(6)[:30]
    append(log_dir / "trek.log", range(1, 6))
    append(log_dir / "trek.log", fragment)
    size_before_fragment = (log_dir / "trek.log").stat().st_size - len(fragment)
    rotate(log_dir)
    append(log_dir / "trek.log", range(7, 10))
    index_once(data_dir, fragment_grace=60.0)  # just written: its writer may still finish it
    assert db.rejected() == []
    assert db.seqs() == [1, 2, 3, 4, 5, 7, 8, 9]
    index_once(data_dir, fragment_grace=0.0)
    [rejected] = db.rejected()
    assert rejected["reason"] == "incomplete last line of a rotated file"
    assert (rejected["file"], rejected["offset"]) == ("trek.log.1", size_before_fragment)
    assert (rejected["raw"], rejected["length"]) == (fragment, len(fragment))
    index_once(data_dir, fragment_grace=0.0)
    assert len(db.rejected()) == 1
    assert read_status(data_dir)["lag_bytes"] == 0


def test_truncating_trek_log_is_reported_and_indexed_rows_stay(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    append(log_dir / "trek.log", range(1, 21))
    index_once(data_dir)
    os.truncate(log_dir / "trek.log", 0)
    append(log_dir / "trek.log", range(21, 26))
    index_once(data_dir)
    assert db.seqs() == list(range(1, 26))
    [(kind, message)] = db.incidents()
    assert kind == "truncated"
    assert "trek.log" in message
    assert read_status(data_dir)["incidents"] == 1


def test_rewriting_trek_log_shorter_with_the_same_first_line_rereads_without_duplicates(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    lines = [line(seq) for seq in range(1, 21)]
    (log_dir / "trek.log").write_bytes(b"".join(lines))
    index_once(data_dir)
    with open(log_dir / "trek.log", "r+b") as file:  # an editor that drops lines in place
        file.truncate(0)
        file.write(b"".join(lines[:5]) + line(21) + line(22))
    index_once(data_dir)
    assert db.seqs() == list(range(1, 23))
    assert [kind for kind, _ in db.incidents()] == ["truncated"]


def test_copytruncate_indexes_every_event_exactly_once_with_no_incident(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    append(log_dir / "trek.log", range(1, 11))
    index_once(data_dir)
    append(log_dir / "trek.log", range(11, 21))
    shutil.copyfile(log_dir / "trek.log", log_dir / "trek.log.1")
    index_once(data_dir)  # caught between the copy and the truncation
    with open(log_dir / "trek.log", "r+b") as file:
        file.truncate(0)
    append(log_dir / "trek.log", range(21, 31))
    index_once(data_dir)
    assert db.seqs() == list(range(1, 31))
    assert db.gaps() == []
    assert db.incidents() == []  # the copy keeps every line: nothing was lost


def test_copytruncate_while_stopped_resumes_in_the_copy(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    append(log_dir / "trek.log", range(1, 11))
    index_once(data_dir)
    append(log_dir / "trek.log", range(11, 21))
    shutil.copyfile(log_dir / "trek.log", log_dir / "trek.log.1")
    os.truncate(log_dir / "trek.log", 0)
    append(log_dir / "trek.log", range(21, 31))
    index_once(data_dir)
    assert db.seqs() == list(range(1, 31))


def _new_file_on_inode(
    path: Path, inode: int, content: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Create ``path`` with ``content`` on the freed inode number ``inode``.

    Filesystems hand out freed inode numbers again, lowest free first in ext4's case, so
    taking the free numbers one by one gets there. Should the filesystem not oblige, the
    indexer is shown the old number instead: it sees inodes only through os.fstat.
    """
    spare = path.with_name("spare")
    spare.mkdir()
    try:
        for attempt in range(4000):
            path.write_bytes(content)
            if path.stat().st_ino == inode:
                return
            os.rename(path, spare / str(attempt))
    finally:
        shutil.rmtree(spare)
    real_fstat = os.fstat

    def fstat_with_reused_inode(fd: int) -> os.stat_result:
        st = real_fstat(fd)
        if (st.st_dev, st.st_ino) != (new.st_dev, new.st_ino):
            return st
        fields = list(st)
        fields[1] = inode
        return os.stat_result(fields)

    path.write_bytes(content)
    new = path.stat()
    monkeypatch.setattr("trek_audit.indexer.scanner.os.fstat", fstat_with_reused_inode)


def test_a_new_file_on_a_reused_inode_is_read_from_its_start(
    data_dir: Path, log_dir: Path, db: Reader, monkeypatch: pytest.MonkeyPatch
) -> None:
    append(log_dir / "trek.log", range(1, 31))
    index_once(data_dir)
    inode = (log_dir / "trek.log").stat().st_ino
    (log_dir / "trek.log").unlink()
    content = b"".join(line(seq) for seq in range(31, 36))
    _new_file_on_inode(log_dir / "trek.log", inode, content, monkeypatch)
    index_once(data_dir)
    assert db.seqs() == list(range(1, 36))
    assert [kind for kind, _ in db.incidents()] == ["truncated"]


def test_a_file_that_starts_with_a_bad_line_is_identified_and_indexed(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    append(log_dir / "trek.log", b"this is not an event\n")
    append(log_dir / "trek.log", range(1, 6))
    index_once(data_dir)
    rotate(log_dir)
    # The same bad first line in the next file: a different file all the same.
    append(log_dir / "trek.log", b"this is not an event\n")
    append(log_dir / "trek.log", range(6, 11))
    index_once(data_dir)
    assert db.seqs() == list(range(1, 11))
    rejected = db.rejected()
    assert [(r["file"], r["offset"], r["raw"]) for r in rejected] == [
        ("trek.log", 0, b"this is not an event"),
        ("trek.log", 0, b"this is not an event"),
    ]
    assert rejected[0]["file_key"] != rejected[1]["file_key"]
    assert read_status(data_dir)["rejected"] == 2


def test_a_file_without_one_complete_line_is_left_for_later(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    append(log_dir / "trek.log", line(1)[:-1])
    report = Indexer(data_dir).run_once()
    assert (report.files, report.rows) == (0, 0)
    append(log_dir / "trek.log", b"\n")
    index_once(data_dir)
    assert db.seqs() == [1]


def test_a_trek_log_replaced_after_being_read_to_its_end_raises_no_alarm(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    append(log_dir / "trek.log", range(1, 11))
    index_once(data_dir)
    # What the writer does with no backups: the next file is renamed over trek.log.
    append(log_dir / "fresh", range(11, 21))
    os.rename(log_dir / "fresh", log_dir / "trek.log")
    index_once(data_dir)
    assert db.seqs() == list(range(1, 21))
    assert db.incidents() == []


def test_a_trek_log_replaced_before_being_read_to_its_end_is_reported(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    append(log_dir / "trek.log", range(1, 11))
    index_once(data_dir)
    append(log_dir / "trek.log", range(11, 16))  # never read
    append(log_dir / "fresh", range(16, 21))
    os.rename(log_dir / "fresh", log_dir / "trek.log")
    index_once(data_dir)
    assert db.gaps() == [(11, 15)]
    assert [kind for kind, _ in db.incidents()] == ["replaced"]
