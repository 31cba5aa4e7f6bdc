"""Size rotation: numbering, limits, oversize events, crash resumption, file names and modes."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

import trek_audit.writer.appender as appender
from trek_audit.layout import LogDir
from trek_audit.writer import AuditWriteError, AuditWriter, decode

from .writer_support import assert_no_gaps, log_files, read_events, seqs


def names(log_dir: Path) -> list[str]:
    return sorted(p.name for p in log_dir.iterdir())


def test_rotation_never_splits_a_line_and_keeps_files_under_max_bytes(log_dir: Path) -> None:
    with AuditWriter(log_dir, max_bytes=1000, backups=200) as w:
        for n in range(300):
            w.record("trip.update", resource=f"trip/{n}", details={"pad": "x" * (n % 97)})
    files = log_files(log_dir)
    assert len(files) > 20
    for path in files:
        data = path.read_bytes()
        assert 0 < len(data) <= 1000
        assert data.endswith(b"\n")
        for line in data.split(b"\n")[:-1]:
            decode(line)
    assert_no_gaps(seqs(log_dir))
    assert len(seqs(log_dir)) == 300


def test_rotation_fills_a_file_as_far_as_the_limit_allows(log_dir: Path) -> None:
    with AuditWriter(log_dir, max_bytes=1000, backups=10) as w:
        line_sizes = []
        for _ in range(20):
            w.record("user.login")
            line_sizes.append(len((log_dir / "trek.log").read_bytes().split(b"\n")[-2]) + 1)
    # Each rotated file was rotated only because the next line would not fit.
    size = max(line_sizes)
    for path in log_files(log_dir)[:-1]:
        assert len(path.read_bytes()) + size > 1000


def test_rotation_numbering_newest_is_1_and_the_oldest_beyond_backups_is_dropped(
    log_dir: Path,
) -> None:
    with AuditWriter(log_dir, max_bytes=300, backups=4) as w:
        per_file = []
        for _ in range(7):  # one event per file: each is ~200 bytes
            per_file.append(w.record("user.login")["seq"])
    assert names(log_dir) == [
        ".trek-audit",
        "trek.log",
        "trek.log.1",
        "trek.log.2",
        "trek.log.3",
        "trek.log.4",
    ]
    assert [decode((log_dir / "trek.log").read_bytes())["seq"]] == [7]
    for n in range(1, 5):
        assert decode((log_dir / f"trek.log.{n}").read_bytes())["seq"] == 7 - n
    # Events 1 and 2 were in the files dropped beyond trek.log.4.
    assert seqs(log_dir) == [3, 4, 5, 6, 7]


def test_backups_zero_replaces_trek_log(log_dir: Path) -> None:
    with AuditWriter(log_dir, max_bytes=300, backups=0) as w:
        for _ in range(3):
            w.record("user.login")
    assert names(log_dir) == [".trek-audit", "trek.log"]
    assert seqs(log_dir) == [3]


def test_event_larger_than_max_bytes_goes_alone_into_a_file_of_its_own(log_dir: Path) -> None:
    with AuditWriter(log_dir, max_bytes=500, backups=5) as w:
        w.record("user.login")
        big = w.record("backup.create", details={"blob": "x" * 2000})
        after = w.record("user.login")
    assert [
        decode(line)["seq"] for line in (log_dir / "trek.log.1").read_bytes().split(b"\n")[:-1]
    ] == [big["seq"]]
    assert seqs(log_dir) == [1, 2, 3]
    assert after["seq"] == 3
    assert decode((log_dir / "trek.log").read_bytes())["seq"] == 3


def test_oversize_event_into_an_empty_file_is_written_without_rotating(log_dir: Path) -> None:
    with AuditWriter(log_dir, max_bytes=100, backups=2) as w:
        w.record("user.login", details={"blob": "x" * 500})
    assert names(log_dir) == [".trek-audit", "trek.log"]


def test_a_rotation_that_crashed_half_way_resumes_without_dropping_a_file(log_dir: Path) -> None:
    # A crash after trek.log.3 -> .4 and before .2 -> .3 leaves a hole at .3.
    with AuditWriter(log_dir, max_bytes=300, backups=4) as w:
        for _ in range(4):
            w.record("user.login")
    assert seqs(log_dir) == [1, 2, 3, 4]
    os.rename(log_dir / "trek.log.3", log_dir / "trek.log.4")
    with AuditWriter(log_dir, max_bytes=300, backups=4) as w:
        w.record("user.login")
    # Nothing was dropped: the hole was filled by shifting only the files below it.
    assert seqs(log_dir) == [1, 2, 3, 4, 5]
    assert names(log_dir) == [
        ".trek-audit",
        "trek.log",
        "trek.log.1",
        "trek.log.2",
        "trek.log.3",
        "trek.log.4",
    ]


def test_a_crash_between_renaming_trek_log_and_creating_the_new_one_is_resumed(
    log_dir: Path,
) -> None:
    with AuditWriter(log_dir, max_bytes=300, backups=4) as w:
        for _ in range(2):
            w.record("user.login")
    os.rename(log_dir / "trek.log", log_dir / "trek.log.2")  # after .1 -> .2
    os.rename(log_dir / "trek.log.1", log_dir / "trek.log.3")
    os.rename(log_dir / "trek.log.2", log_dir / "trek.log.1")  # and trek.log -> .1
    with AuditWriter(log_dir, max_bytes=300, backups=4) as w:
        assert w.record("user.login")["seq"] == 3
    assert seqs(log_dir) == [1, 2, 3]


def test_a_failed_rename_raises_and_the_next_record_completes_the_rotation(
    log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with AuditWriter(log_dir, max_bytes=300, backups=4) as w:
        for _ in range(3):
            w.record("user.login")
        real_rename = os.rename
        calls: list[Any] = []

        def rename_then_crash(src: Any, dst: Any) -> None:
            calls.append((src, dst))
            if len(calls) == 2:
                raise OSError(5, "Input/output error", src)
            real_rename(src, dst)

        monkeypatch.setattr(os, "rename", rename_then_crash)
        with pytest.raises(AuditWriteError, match="cannot rotate .*trek.log.1: Input/output error"):
            w.record("user.login")
        monkeypatch.setattr(os, "rename", real_rename)
        assert w.record("user.login")["seq"] == 4
    assert seqs(log_dir) == [1, 2, 3, 4]


def test_no_file_other_than_trek_log_and_its_rotations_matches_the_shipper_pattern(
    log_dir: Path,
) -> None:
    for backups in (0, 3):
        with AuditWriter(log_dir, max_bytes=250, backups=backups) as w:
            for _ in range(10):
                w.record("user.login")
    matching = sorted(p.name for p in log_dir.glob("trek.log*"))
    assert matching == ["trek.log", "trek.log.1", "trek.log.2", "trek.log.3"]
    assert not LogDir(log_dir).fresh_file.exists()


def test_new_files_are_created_with_mode_0640_or_tighter(log_dir: Path) -> None:
    old_umask = os.umask(0)
    try:
        with AuditWriter(log_dir, max_bytes=250, backups=2) as w:
            for _ in range(4):
                w.record("user.login")
    finally:
        os.umask(old_umask)
    state_dir = LogDir(log_dir).state_dir
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o750
    files = [path for path in log_dir.iterdir() if path != state_dir]
    for path in [*files, *state_dir.iterdir()]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & ~0o640 == 0, f"{path.name} has mode {oct(mode)}"


def test_writer_creates_a_missing_log_directory(tmp_path: Path) -> None:
    with AuditWriter(tmp_path / "data" / "logs") as w:
        w.record("user.login")
    assert (tmp_path / "data" / "logs" / "trek.log").exists()


def test_rotation_by_another_writer_is_followed(log_dir: Path) -> None:
    with (
        AuditWriter(log_dir, max_bytes=450, backups=10) as a,
        AuditWriter(log_dir, max_bytes=450, backups=10) as b,
    ):
        for n in range(20):
            (a if n % 3 else b).record("user.login")
    events = read_events(log_dir)
    assert [e["seq"] for e in events] == list(range(1, 21))
    for path in log_files(log_dir):
        assert len(path.read_bytes()) <= 450


def test_a_write_that_fails_right_after_a_rotation_sends_no_other_writer_into_the_renamed_file(
    log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Writer b has trek.log open and the state matches it. Writer a rotates trek.log to .1 and
    # then fails to write its line (as if the disk filled up, or a crash right after the
    # rename). b must notice at once that its open file is now trek.log.1.
    with AuditWriter(log_dir) as a, AuditWriter(log_dir) as b:
        a.record("user.login")
        b.record("user.login")
        real_write = os.write

        def disk_full(fd: int, data: bytes) -> int:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(appender, "_write", disk_full)
        a.max_bytes = 1  # a rotates before its next line
        with pytest.raises(AuditWriteError, match="No space left on device"):
            a.record("user.login")
        monkeypatch.setattr(appender, "_write", real_write)
        assert (log_dir / "trek.log.1").exists()
        assert b.record("user.logout")["seq"] == 3
    assert seqs(log_dir) == [1, 2, 3]
    assert [decode(line)["seq"] for line in (log_dir / "trek.log").read_bytes().splitlines()] == [3]
