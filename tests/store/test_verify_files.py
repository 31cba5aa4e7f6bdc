"""verify notices a file cut short, a rotated file dropped, and checks given files on their own."""

from __future__ import annotations

import os
from pathlib import Path

from .verify_support import (
    BACKUPS,
    check,
    check_paths,
    event,
    lines,
    only,
    sealed_dir,
    write_lines,
)


def test_a_tail_cut_below_the_last_indexed_seq_is_cut_short(data_dir: Path) -> None:
    sealed = sealed_dir(data_dir)
    path = sealed.log(0)
    content = lines(path)
    assert len(content) > 3
    write_lines(path, content[:-3])
    problem = only(check(sealed), "cut_short")
    assert (problem["file"], problem["line"]) == (str(path), len(content) - 2)
    assert (problem["first_seq"], problem["last_seq"]) == (
        event(content[-3])["seq"],
        event(content[-1])["seq"],
    )


def test_a_rotated_file_cut_short_is_named(data_dir: Path) -> None:
    sealed = sealed_dir(data_dir)
    path = sealed.log(2)
    content = lines(path)
    write_lines(path, content[:-2])
    problem = only(check(sealed), "cut_short")
    assert (problem["file"], problem["line"]) == (str(path), len(content) - 1)


def test_an_emptied_trek_log_is_cut_short(data_dir: Path) -> None:
    sealed = sealed_dir(data_dir)
    sealed.log(0).write_bytes(b"")
    problem = only(check(sealed), "cut_short")
    assert problem["file"] == str(sealed.log(0))


def test_a_dropped_trek_log_2_is_named_with_the_seqs_it_held(data_dir: Path) -> None:
    sealed = sealed_dir(data_dir)
    assert sealed.log(3).exists()
    held = [event(line)["seq"] for line in lines(sealed.log(2))]
    sealed.log(2).unlink()
    problem = only(check(sealed), "dropped_file")
    assert problem["file"] == str(sealed.log(2))
    assert (problem["first_seq"], problem["last_seq"]) == (held[0], held[-1])


def test_a_dropped_oldest_rotated_file_is_named_from_the_database(data_dir: Path) -> None:
    sealed = sealed_dir(data_dir, events=60)
    oldest = max(n for n in range(1, BACKUPS + 1) if sealed.log(n).exists())
    assert oldest >= 2
    sealed.log(oldest).unlink()
    problem = only(check(sealed), "dropped_file")
    assert problem["file"] == str(sealed.log(oldest))


def test_given_files_are_checked_in_seq_order_whatever_order_they_are_named_in(
    data_dir: Path,
) -> None:
    sealed = sealed_dir(data_dir, index=False)
    paths = [sealed.log(1), sealed.log(3), sealed.log(2)]
    outcome = check_paths(paths, sealed.key)
    assert outcome.problems == []
    assert outcome.summary["files"] == 3
    assert outcome.summary["rows"] == 0


def test_a_gap_between_given_files_is_a_missing_range(data_dir: Path) -> None:
    sealed = sealed_dir(data_dir, index=False)
    skipped = [event(line)["seq"] for line in lines(sealed.log(2))]
    outcome = check_paths([sealed.log(3), sealed.log(1)], sealed.key)
    problem = only(outcome, "missing")
    assert problem["file"] == str(sealed.log(1))
    assert (problem["first_seq"], problem["last_seq"]) == (skipped[0], skipped[-1])


def test_a_rotated_copy_checks_on_its_own(data_dir: Path, tmp_path: Path) -> None:
    sealed = sealed_dir(data_dir, index=False)
    copy = tmp_path / "shipped.log"
    copy.write_bytes(sealed.log(2).read_bytes())
    outcome = check_paths([copy], sealed.key)
    assert outcome.problems == []
    assert outcome.summary["seals"] >= 1


def test_the_database_is_opened_read_only_and_left_as_it_was(data_dir: Path) -> None:
    sealed = sealed_dir(data_dir)
    db = sealed.data.audit_db
    before = (db.read_bytes(), os.stat(db).st_mtime_ns)
    check(sealed)
    assert (db.read_bytes(), os.stat(db).st_mtime_ns) == before
