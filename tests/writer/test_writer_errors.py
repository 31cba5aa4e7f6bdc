"""Every way an append can fail: AuditWriteError naming file and cause, no partial line."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import trek_audit.writer.appender as appender
from trek_audit.layout import LogDir
from trek_audit.writer import AuditWriteError, AuditWriter

from .writer_support import remount, seqs, skip_outside_ci

NOBODY = 65534


def assert_clean(log_dir: Path, expected_seqs: list[int]) -> None:
    """No partial line anywhere, and exactly these events."""
    assert seqs(log_dir) == expected_seqs  # read_events fails on a partial last line


# -- in the test process ---------------------------------------------------------------------


@pytest.mark.python_path_only  # injects faults into the Python path's os.write
def test_short_write_then_error_leaves_no_partial_line_and_uses_no_seq(
    log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with AuditWriter(log_dir) as w:
        w.record("user.login")
        real_write = os.write
        calls = []

        def half_then_disk_full(fd: int, data: bytes) -> int:
            calls.append(len(data))
            if len(calls) == 1:
                return real_write(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(appender, "_write", half_then_disk_full)
        with pytest.raises(AuditWriteError) as caught:
            w.record("user.login", details={"x": "y" * 100})
        assert len(calls) == 2
        assert (
            str(caught.value) == f"cannot append to {log_dir / 'trek.log'}: No space left on device"
        )
        assert caught.value.path == str(log_dir / "trek.log")
        assert caught.value.errno == errno.ENOSPC
        assert isinstance(caught.value.cause, OSError)
        assert_clean(log_dir, [1])
        monkeypatch.setattr(appender, "_write", real_write)
        assert w.record("user.login")["seq"] == 2
    assert_clean(log_dir, [1, 2])


@pytest.mark.python_path_only  # injects faults into the Python path's os.write
def test_short_writes_that_complete_the_line_are_fine(
    log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = os.write
    monkeypatch.setattr(appender, "_write", lambda fd, data: real_write(fd, data[:7]))
    with AuditWriter(log_dir) as w:
        w.record("user.login")
        w.record("user.logout")
    assert_clean(log_dir, [1, 2])


def test_removed_directory_raises_and_recreating_it_fixes_it(log_dir: Path) -> None:
    with AuditWriter(log_dir) as w:
        w.record("user.login")
        w.record("user.login")
        shutil.rmtree(log_dir)
        with pytest.raises(AuditWriteError, match=f"cannot append to {log_dir / 'trek.log'}: "):
            w.record("user.login")
        assert not log_dir.exists()  # no silent write into an unlinked file, nothing recreated
        log_dir.mkdir()
        # seq is not reused even though every file holding it is gone.
        assert w.record("user.login")["seq"] == 3
    assert_clean(log_dir, [3])


def test_log_path_that_cannot_be_opened_raises_and_recovers(log_dir: Path) -> None:
    # A directory where trek.log should be: open() fails even for root.
    (log_dir / "trek.log").mkdir()
    with AuditWriter(log_dir) as w:
        with pytest.raises(AuditWriteError, match="trek.log: Is a directory") as caught:
            w.record("user.login")
        assert caught.value.errno == errno.EISDIR
        (log_dir / "trek.log").rmdir()
        assert w.record("user.login")["seq"] == 1
    assert_clean(log_dir, [1])


def test_fsync_option_syncs_and_reports_a_failed_sync(
    log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def counted_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counted_fsync)
    with AuditWriter(log_dir, fsync=True, max_bytes=300) as w:
        w.record("user.login")
        w.record("user.login")  # rotates: the directory is synced too
        assert len(synced) >= 3

        def failing_fsync(fd: int) -> None:
            raise OSError(errno.EIO, os.strerror(errno.EIO))

        monkeypatch.setattr(os, "fsync", failing_fsync)
        with pytest.raises(AuditWriteError, match="cannot fsync .*trek.log: Input/output error"):
            w.record("user.login")
        # As for any AuditWriteError, the line is not in the log and its seq is not used, so
        # a caller that retries does not duplicate the event.
        assert_clean(log_dir, [1, 2])
        monkeypatch.setattr(os, "fsync", real_fsync)
        assert w.record("user.login")["seq"] == 3
    assert_clean(log_dir, [1, 2, 3])


# -- in forked children: file-size limits and other users --------------------------------------


def in_child(
    work: Callable[[Callable[[], None]], dict[str, Any]],
    between: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Run ``work(pause)`` in a forked child and return what it returned (or fail with its error).

    When the child calls ``pause()``, it waits until the parent has run ``between()``: how a
    test fixes the cause of a failure while the failing process lives on.
    """
    result_read, result_write = os.pipe()
    paused_read, paused_write = os.pipe()
    resume_read, resume_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:

            def pause() -> None:
                os.write(paused_write, b"p")
                os.read(resume_read, 1)

            result: dict[str, Any]
            try:
                result = {"ok": work(pause)}
            except BaseException as error:
                result = {"error": f"{type(error).__name__}: {error}"}
            os.write(result_write, json.dumps(result).encode())
            code = 0
        finally:
            os._exit(code)
    for end in (result_write, paused_write, resume_read):
        os.close(end)
    try:
        if os.read(paused_read, 1) == b"p":  # b"" if the child finished without pausing
            if between is not None:
                between()
            os.write(resume_write, b"r")
        with os.fdopen(result_read, "rb") as reader:
            data = reader.read()
    finally:
        os.close(paused_read)
        os.close(resume_write)
        status = os.waitpid(pid, 0)[1]
    assert os.waitstatus_to_exitcode(status) == 0, f"child died: status {status}"
    result = json.loads(data)
    assert "error" not in result, result["error"]
    ok: dict[str, Any] = result["ok"]
    return ok


def error_of(call: Callable[[], Any]) -> dict[str, Any]:
    try:
        call()
    except AuditWriteError as error:
        return {"message": str(error), "errno": error.errno, "path": error.path}
    return {"message": None}


def set_file_size_limit(limit: int) -> None:
    import resource

    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("room", [0, 60], ids=["at-the-limit", "line-crosses-the-limit"])
def test_file_size_limit_lowered_while_open_gives_efbig_not_a_partial_line(
    log_dir: Path, room: int
) -> None:
    import resource

    def work(pause: Callable[[], None]) -> dict[str, Any]:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills us at the limit
        w = AuditWriter(log_dir)
        w.record("user.login")
        size = (log_dir / "trek.log").stat().st_size
        set_file_size_limit(size + room)
        failure = error_of(lambda: w.record("user.login", details={"pad": "x" * 200}))
        size_after = (log_dir / "trek.log").stat().st_size
        set_file_size_limit(resource.RLIM_INFINITY)
        return {
            "failure": failure,
            "grew": size_after - size,
            "next": w.record("user.login")["seq"],
        }

    result = in_child(work)
    assert result["failure"]["message"] == (
        f"cannot append to {log_dir / 'trek.log'}: File too large"
    )
    assert result["failure"]["errno"] == errno.EFBIG
    assert result["grew"] == 0
    assert result["next"] == 2
    assert_clean(log_dir, [1, 2])


@pytest.mark.timeout(60)
def test_file_size_limit_set_before_the_writer_opens_raises_without_a_signal(
    log_dir: Path,
) -> None:
    with AuditWriter(log_dir) as w:
        w.record("user.login")
    size = (log_dir / "trek.log").stat().st_size

    def work(pause: Callable[[], None]) -> dict[str, Any]:
        # Python ignores SIGXFSZ at start-up; an embedding app may not. With the default action
        # (terminate), the writer must not trigger it.
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
        set_file_size_limit(size)  # not one more byte fits
        w = AuditWriter(log_dir)
        return {"failure": error_of(lambda: w.record("user.login"))}

    result = in_child(work)
    assert result["failure"]["errno"] == errno.EFBIG
    assert_clean(log_dir, [1])


def become_nobody() -> None:
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


@pytest.fixture
def needs_root() -> None:
    if os.geteuid() != 0:
        skip_outside_ci("needs root to switch users")


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("needs_root")
def test_permission_denied_on_trek_log_raises_and_recovers_when_fixed(shared_dir: Path) -> None:
    log_dir = shared_dir / "logs"
    with AuditWriter(log_dir) as w:
        w.record("user.login")  # trek.log is root's, mode 0640
    log_dir.chmod(0o755)
    for path in (LogDir(log_dir).state_dir, LogDir(log_dir).lock_file):
        os.chown(path, NOBODY, NOBODY)

    def work(pause: Callable[[], None]) -> dict[str, Any]:
        become_nobody()
        w = AuditWriter(log_dir)
        failure = error_of(lambda: w.record("user.login"))
        pause()  # the parent hands trek.log over to us
        return {"failure": failure, "next": w.record("user.login")["seq"]}

    result = in_child(work, lambda: os.chown(log_dir / "trek.log", NOBODY, NOBODY))
    failure = result["failure"]
    assert failure["message"] == f"cannot append to {log_dir / 'trek.log'}: Permission denied"
    assert failure["errno"] == errno.EACCES
    assert result["next"] == 2
    assert_clean(log_dir, [1, 2])


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("needs_root")
def test_read_only_directory_fails_the_rotation_cleanly_and_recovers(shared_dir: Path) -> None:
    log_dir = shared_dir / "logs"
    with AuditWriter(log_dir, max_bytes=500) as w:
        w.record("user.login")
    logs = LogDir(log_dir)
    for path in (logs.log_file, logs.state_dir, logs.lock_file):
        os.chown(path, NOBODY, NOBODY)
    log_dir.chmod(0o755)  # root's: nobody may write the files but not add or rename entries

    def work(pause: Callable[[], None]) -> dict[str, Any]:
        become_nobody()
        w = AuditWriter(log_dir, max_bytes=500)
        seqs_written = [w.record("user.login")["seq"]]  # still fits into trek.log
        failure = error_of(lambda: [w.record("user.login") for _ in range(5)])
        pause()  # the parent makes the directory writable
        seqs_written.append(w.record("user.login")["seq"])
        return {"failure": failure, "seqs": seqs_written}

    result = in_child(work, lambda: log_dir.chmod(0o777))
    failure = result["failure"]
    assert failure["message"] == f"cannot rotate {log_dir / 'trek.log'}: Permission denied"
    assert failure["errno"] == errno.EACCES
    assert result["seqs"] == [2, 3]
    assert_clean(log_dir, [1, 2, 3])
    assert (log_dir / "trek.log.1").exists()


# -- on a real small file system -----------------------------------------------------------


@pytest.mark.timeout(60)
def test_full_disk_raises_enospc_leaves_no_partial_line_and_recovers(small_tmpfs: Path) -> None:
    log_dir = small_tmpfs / "logs"
    with AuditWriter(log_dir) as w:
        written = []
        with pytest.raises(AuditWriteError) as caught:
            for _ in range(10_000):
                written.append(w.record("trip.update", details={"pad": "x" * 150})["seq"])
        assert caught.value.errno == errno.ENOSPC
        assert str(caught.value) == (
            f"cannot append to {log_dir / 'trek.log'}: No space left on device"
        )
        assert len(written) > 100
        assert_clean(log_dir, written)
        remount(small_tmpfs, "size=1m")
        assert w.record("user.login")["seq"] == written[-1] + 1
    assert_clean(log_dir, [*written, written[-1] + 1])


@pytest.mark.timeout(60)
def test_read_only_file_system_raises_erofs_and_recovers(small_tmpfs: Path) -> None:
    log_dir = small_tmpfs / "logs"
    with AuditWriter(log_dir) as w:
        w.record("user.login")
    remount(small_tmpfs, "ro")  # only possible while nothing is open for writing
    w = AuditWriter(log_dir)
    try:
        with pytest.raises(AuditWriteError) as caught:
            w.record("user.login")
        assert caught.value.errno == errno.EROFS
        assert str(caught.value).startswith(f"cannot append to {log_dir / 'trek.log'}: ")
        assert str(caught.value).endswith(": Read-only file system")
        remount(small_tmpfs, "rw")
        assert w.record("user.login")["seq"] == 2
    finally:
        w.close()
    assert_clean(log_dir, [1, 2])


def test_a_lock_failure_after_the_lock_file_was_replaced_raises_audit_write_error(
    log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with AuditWriter(log_dir) as w:
        w.record("user.login")
        LogDir(log_dir).lock_file.unlink()
        with open(log_dir / "trek.log", "ab") as log:
            log.write(b"\n")  # an outside change, so the writer resyncs and finds the new lock
        real_flock = appender._flock
        calls: list[int] = []

        def no_locks_left(fd: int, operation: int) -> None:
            calls.append(operation)
            if len(calls) == 2:  # the lock on the new lock file
                raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))
            real_flock(fd, operation)

        monkeypatch.setattr(appender, "_flock", no_locks_left)
        with pytest.raises(AuditWriteError, match="cannot lock .*/writer.lock: No locks"):
            w.record("user.login")
        monkeypatch.setattr(appender, "_flock", real_flock)
        assert w.record("user.login")["seq"] == 2
