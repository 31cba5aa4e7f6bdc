"""verify on a live directory: a rotation while it reads, one stopped half way, and a line
being appended as it reads trek.log are no tampering."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from trek_audit.layout import DataDir
from trek_audit.store import log_snapshot
from trek_audit.store.verification import VerifyError

from .verify_support import check, kinds, lines, record_events, sealed_dir, writer


def _rotate(root: Path) -> None:
    """Append events with the real writer until it rotates trek.log (sealing it first)."""
    log = DataDir(root).logs.log_file
    before = os.stat(log).st_ino
    with writer(root) as audit:
        for number in range(1000, 1500):
            record_events(audit, 1, start=number)
            if os.stat(log).st_ino != before:
                return
    raise AssertionError("the writer did not rotate")


def test_a_rotation_between_two_files_read_is_no_missing_line(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sealed = sealed_dir(data_dir)
    read = log_snapshot._read
    calls: list[Path] = []

    def read_then_rotate(path: Path, *, live: bool) -> log_snapshot.LogFile:
        done = read(path, live=live)
        calls.append(path)
        if len(calls) == 1:  # the oldest file is read: the others move up a name now
            _rotate(data_dir)
        return done

    monkeypatch.setattr(log_snapshot, "_read", read_then_rotate)
    outcome = check(sealed)
    assert outcome.problems == []
    assert len(calls) > len(set(calls))  # the files were read again after the rotation


def test_files_that_rotate_at_every_read_are_an_error_to_run_again_not_a_verdict(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sealed = sealed_dir(data_dir, events=40)
    read = log_snapshot._read

    def read_then_rotate(path: Path, *, live: bool) -> log_snapshot.LogFile:
        done = read(path, live=live)
        if live:
            _rotate(data_dir)
        return done

    monkeypatch.setattr(log_snapshot, "_read", read_then_rotate)
    with pytest.raises(VerifyError, match="rotated during each of 5 reads: run verify again"):
        check(sealed)


def test_a_rotation_stopped_half_way_leaves_a_hole_in_the_names_but_no_dropped_file(
    data_dir: Path,
) -> None:
    sealed = sealed_dir(data_dir, events=40)
    assert not sealed.log(3).exists()
    # As rotation.shift does, until a writer killed in it stops before trek.log -> trek.log.1.
    sealed.log(2).rename(sealed.log(3))
    sealed.log(1).rename(sealed.log(2))
    outcome = check(sealed)
    assert outcome.problems == []
    assert outcome.summary["rows"] == outcome.summary["lines"]


def test_a_dropped_file_is_still_named_where_the_seqs_jump_across_the_hole(
    data_dir: Path,
) -> None:
    sealed = sealed_dir(data_dir, events=60)
    sealed.log(1).unlink()
    assert kinds(check(sealed)) == ["dropped_file"]


def _one_more_line_without_its_newline(root: Path) -> None:
    """Append an event with the real writer, then take its newline away: a read racing the
    writer's write() can see the line so."""
    with writer(root) as audit:
        record_events(audit, 1, start=500)
    log = DataDir(root).logs.log_file
    assert lines(log)[-1].endswith(b"}\n")
    os.truncate(log, log.stat().st_size - 1)


def test_the_last_line_of_trek_log_being_written_is_waited_for_not_reported(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sealed = sealed_dir(data_dir)
    _one_more_line_without_its_newline(data_dir)
    waits: list[float] = []

    def writer_finishes_meanwhile(seconds: float) -> None:
        waits.append(seconds)
        with open(sealed.log(0), "ab") as file:  # noqa: PTH123 - as the writer's O_APPEND
            file.write(b"\n")

    monkeypatch.setattr(log_snapshot, "_pause", writer_finishes_meanwhile)
    outcome = check(sealed)
    assert outcome.problems == []
    assert len(waits) == 1
    assert outcome.summary["unsealed"] == 1


def test_a_whole_event_left_without_its_newline_is_still_reported_after_a_short_wait(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sealed = sealed_dir(data_dir)
    _one_more_line_without_its_newline(data_dir)
    waits: list[float] = []
    monkeypatch.setattr(log_snapshot, "_pause", waits.append)
    outcome = check(sealed)
    assert kinds(outcome) == ["not_an_event"]
    assert "without its newline" in outcome.problems[0]["message"]
    assert sum(waits) <= 0.1
