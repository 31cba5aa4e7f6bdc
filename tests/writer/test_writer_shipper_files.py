"""A log shipper sees log lines only: logs/ holds trek.log and trek.log.N, and the writer's own
files live in the hidden state directory logs/.trek-audit/, whatever the writer goes through.

(syslog-ng's wildcard-file(filename-pattern("*")) shipped the binary lock file as five lines
of garbage when it sat in logs/.)
"""

from __future__ import annotations

import glob
import os
import re
import stat
from pathlib import Path

import pytest

from trek_audit.layout import LogDir
from trek_audit.writer import AuditWriteError, AuditWriter
from trek_audit.writer.state import read_state

from .seal_support import make_key, seals, walk_chain
from .writer_support import assert_no_gaps, seqs

LOG_NAME = re.compile(r"trek\.log(\.[1-9][0-9]*)?")


def shipped_names(log_dir: Path) -> list[str]:
    """What a shipper globbing ``*`` (or listing every file, hidden ones too) would read."""
    return sorted(
        entry.name
        for entry in os.scandir(log_dir)
        if not entry.is_dir(follow_symlinks=False) or not entry.name.startswith(".")
    )


def assert_log_files_only(log_dir: Path) -> None:
    names = shipped_names(log_dir)
    assert names, "no log file at all"
    assert [name for name in names if not LOG_NAME.fullmatch(name)] == []
    # A shell-style glob, as shippers use (rsyslog imfile, Filebeat): hidden names are skipped.
    assert sorted(os.path.basename(p) for p in glob.glob(os.path.join(log_dir, "*"))) == names
    # The only other entry is the writer's state directory, a real directory.
    others = sorted(set(os.listdir(log_dir)) - set(names))
    assert others == [LogDir(log_dir).state_dir.name]
    assert LogDir(log_dir).state_dir.is_dir() and not LogDir(log_dir).state_dir.is_symlink()


def test_records_and_rotations_leave_nothing_but_trek_log_files_in_logs(log_dir: Path) -> None:
    with AuditWriter(log_dir, max_bytes=400, backups=3) as w:
        for n in range(20):
            w.record("user.login", details={"n": n})
    assert_log_files_only(log_dir)
    assert shipped_names(log_dir) == ["trek.log", "trek.log.1", "trek.log.2", "trek.log.3"]
    state_dir = LogDir(log_dir).state_dir
    assert sorted(os.listdir(state_dir)) == [LogDir(log_dir).lock_file.name]
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o750


def test_the_state_page_lives_in_the_state_directory(log_dir: Path) -> None:
    with AuditWriter(log_dir) as w:
        for _ in range(3):
            w.record("user.login")
    fd = os.open(LogDir(log_dir).lock_file, os.O_RDONLY)
    try:
        state = read_state(fd)
    finally:
        os.close(fd)
    assert state.sound and state.seq == 3
    assert state.ino == (log_dir / "trek.log").stat().st_ino


def test_with_no_backups_the_fresh_file_is_made_outside_logs(log_dir: Path) -> None:
    made: list[str] = []
    real_open = os.open

    def watching_open(path: str | os.PathLike[str], flags: int, *args: int, **kw: int) -> int:
        made.append(os.fspath(path))
        return real_open(path, flags, *args, **kw)

    with pytest.MonkeyPatch.context() as patch, AuditWriter(log_dir, max_bytes=300, backups=0) as w:
        patch.setattr(os, "open", watching_open)
        for _ in range(5):
            w.record("user.login")
    fresh = LogDir(log_dir).fresh_file
    assert str(fresh) in made  # each rotation made it there, then renamed it to trek.log
    assert fresh.parent == LogDir(log_dir).state_dir
    assert not fresh.exists()
    assert_log_files_only(log_dir)
    assert seqs(log_dir) == [5]


def test_seals_leave_nothing_but_trek_log_files_in_logs(log_dir: Path) -> None:
    make_key(log_dir)
    with AuditWriter(log_dir, max_bytes=1500, backups=5) as w:
        for n in range(20):
            w.record("user.login", details={"n": n})
        assert w.seal() is not None
    assert seals(walk_chain(log_dir))
    assert_log_files_only(log_dir)


def test_a_resync_after_the_lock_file_is_deleted_makes_it_again_in_the_state_directory(
    log_dir: Path,
) -> None:
    logs = LogDir(log_dir)
    with AuditWriter(log_dir) as a, AuditWriter(log_dir) as b:
        a.record("user.login")
        b.record("user.login")
        logs.lock_file.unlink()
        with AuditWriter(log_dir) as c:  # makes a new lock file, and moves trek.log on
            c.record("user.login")
        a.record("user.login")  # trek.log changed: each resyncs onto the new lock file
        b.record("user.login")
        assert a._lock_ino == b._lock_ino == logs.lock_file.stat().st_ino
    assert logs.lock_file.is_file()
    assert_log_files_only(log_dir)
    assert_no_gaps(seqs(log_dir))


def test_a_deleted_state_directory_is_made_again_and_no_seq_is_reused(log_dir: Path) -> None:
    logs = LogDir(log_dir)
    with AuditWriter(log_dir, max_bytes=400, backups=3) as w:
        for _ in range(4):
            w.record("user.login")
        for path in logs.state_dir.iterdir():
            path.unlink()
        logs.state_dir.rmdir()
        with AuditWriter(log_dir, max_bytes=400, backups=3) as other:
            other.record("user.login")
        for _ in range(3):
            w.record("user.login")
    assert logs.lock_file.is_file()
    assert_log_files_only(log_dir)
    assert_no_gaps(seqs(log_dir))
    assert seqs(log_dir)[-1] == 8


def test_the_first_writer_removes_the_lock_file_of_the_previous_version(log_dir: Path) -> None:
    with AuditWriter(log_dir) as w:
        for _ in range(3):
            w.record("user.login")
    # What a writer of the previous version leaves: its lock file and state page in logs/.
    legacy = LogDir(log_dir).legacy_lock_file
    legacy.write_bytes(LogDir(log_dir).lock_file.read_bytes())
    LogDir(log_dir).lock_file.unlink()
    with AuditWriter(log_dir) as w:
        assert w.record("user.login")["seq"] == 4
    assert not legacy.exists()
    assert_log_files_only(log_dir)


def test_the_state_directory_as_a_link_is_refused_and_its_target_left_alone(
    log_dir: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    LogDir(log_dir).state_dir.symlink_to(elsewhere)
    with AuditWriter(log_dir) as w, pytest.raises(AuditWriteError) as refused:
        w.record("user.login")
    assert str(LogDir(log_dir).lock_file) in str(refused.value)
    assert "writer.lock: " + str(LogDir(log_dir).state_dir) + " is a symbolic link" in str(
        refused.value
    )
    assert list(elsewhere.iterdir()) == []
    assert not (log_dir / "trek.log").exists() or (log_dir / "trek.log").stat().st_size == 0
