"""seq and state recovery: a lost or damaged lock file, a crash that left a partial line."""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import trek_audit.writer.appender as appender
from trek_audit.layout import LogDir
from trek_audit.writer import AuditWriteError, AuditWriter, decode
from trek_audit.writer.line import ACTION_PATTERN, SEQ_MAX, TS_PATTERN
from trek_audit.writer.stamps import ts_ns

from .writer_support import assert_no_gaps, seqs

# The writer's lock file (and state page), relative to its log directory.
LOCK = LogDir(Path()).lock_file


def test_seq_is_recovered_from_the_log_when_the_state_file_is_deleted(log_dir: Path) -> None:
    with AuditWriter(log_dir, max_bytes=400, backups=3) as w:
        for _ in range(5):
            w.record("user.login")
    (log_dir / LOCK).unlink()
    with AuditWriter(log_dir, max_bytes=400, backups=3) as w:
        assert w.record("user.login")["seq"] == 6
    assert_no_gaps(seqs(log_dir), first=seqs(log_dir)[0])


def test_seq_is_recovered_from_rotated_files_when_trek_log_is_empty(log_dir: Path) -> None:
    with AuditWriter(log_dir, max_bytes=300, backups=3) as w:
        for _ in range(3):
            w.record("user.login")
    for n in (2, 1):  # a rotation, then a crash before the next line
        os.rename(log_dir / f"trek.log.{n}", log_dir / f"trek.log.{n + 1}")
    os.rename(log_dir / "trek.log", log_dir / "trek.log.1")
    (log_dir / "trek.log").write_bytes(b"")
    (log_dir / LOCK).unlink()
    with AuditWriter(log_dir, max_bytes=300, backups=3) as w:
        assert w.record("user.login")["seq"] == 4


def test_a_damaged_state_page_is_rebuilt_from_the_log(log_dir: Path) -> None:
    with AuditWriter(log_dir) as w:
        for _ in range(3):
            w.record("user.login")
    (log_dir / LOCK).write_bytes(b"\x00" * 4096)  # e.g. a page lost in a power failure
    with AuditWriter(log_dir) as w:
        assert w.record("user.login")["seq"] == 4


def test_a_state_behind_the_log_does_not_reuse_a_seq(log_dir: Path) -> None:
    with AuditWriter(log_dir) as w:
        w.record("user.login")
        state = (log_dir / LOCK).read_bytes()  # the state after seq 1
        w.record("user.login")
        w.record("user.login")
    (log_dir / LOCK).write_bytes(state)  # the log reached disk, the state page did not
    with AuditWriter(log_dir) as w:
        assert w.record("user.login")["seq"] == 4
    assert seqs(log_dir) == [1, 2, 3, 4]


def test_a_state_ahead_of_the_log_is_kept_so_no_seq_is_reused(log_dir: Path) -> None:
    with AuditWriter(log_dir) as w:
        for _ in range(3):
            w.record("user.login")
    with open(log_dir / "trek.log", "r+b") as log:  # the last line never reached the disk
        data = log.read()
        log.truncate(data.rindex(b"\n", 0, len(data) - 1) + 1)
    with AuditWriter(log_dir) as w:
        assert w.record("user.login")["seq"] == 4
    assert seqs(log_dir) == [1, 2, 4]


def test_a_partial_last_line_from_a_crash_is_not_glued_to_the_next_event(log_dir: Path) -> None:
    with AuditWriter(log_dir) as w:
        w.record("user.login")
    with open(log_dir / "trek.log", "ab") as log:
        log.write(b'{"v":1,"id":"torn')  # a crash in the middle of a write by something else
    with AuditWriter(log_dir) as w:
        event = w.record("user.logout")
    lines = (log_dir / "trek.log").read_bytes().split(b"\n")
    assert lines[1] == b'{"v":1,"id":"torn'
    assert lines[2].startswith(b'{"v":1,') and b'"seq":2' in lines[2]
    assert event["seq"] == 2


def test_a_long_last_line_is_found_beyond_the_first_tail_window(log_dir: Path) -> None:
    with AuditWriter(log_dir) as w:
        w.record("user.login")
        w.record("backup.create", details={"blob": "x" * 40_000})
    (log_dir / LOCK).unlink()
    with AuditWriter(log_dir) as w:
        assert w.record("user.login")["seq"] == 3


def test_deleting_the_lock_file_while_writers_run_moves_them_all_to_the_new_one(
    log_dir: Path,
) -> None:
    with AuditWriter(log_dir) as a:
        a.record("user.login")
        (log_dir / LOCK).unlink()
        with AuditWriter(log_dir) as b:
            assert b.record("user.login")["seq"] == 2  # b created a new lock file
            assert a.record("user.login")["seq"] == 3  # a noticed and moved to it
            assert os.stat(log_dir / LOCK).st_ino == a._lock_ino == b._lock_ino
            assert b.record("user.login")["seq"] == 4
    assert seqs(log_dir) == [1, 2, 3, 4]


def test_lines_appended_by_something_else_are_counted_before_rotating(log_dir: Path) -> None:
    with AuditWriter(log_dir, max_bytes=600, backups=3) as w:
        w.record("user.login")
        with open(log_dir / "trek.log", "ab") as log:
            log.write(b"x" * 300 + b"\n")  # an outside append: the state's size is now stale
        w.record("user.login")
    assert (log_dir / "trek.log.1").exists()  # 300 outside bytes pushed the next line over
    for path in (log_dir / "trek.log", log_dir / "trek.log.1"):
        assert path.stat().st_size <= 600


# The C path looks trek.log up by name at most once a second (the next test covers it).
@pytest.mark.python_path_only
def test_a_trek_log_renamed_by_something_else_is_never_written_again(log_dir: Path) -> None:
    with AuditWriter(log_dir) as w:
        w.record("user.login")
        os.rename(log_dir / "trek.log", log_dir / "moved-away.log")
        w.record("user.login")
        os.rename(log_dir / "trek.log", log_dir / "moved-again.log")
        (log_dir / "trek.log").write_bytes(b"")  # and something put a new one in its place
        w.record("user.login")
    assert (log_dir / "moved-away.log").read_bytes().count(b"\n") == 1
    assert (log_dir / "moved-again.log").read_bytes().count(b"\n") == 1
    assert seqs(log_dir) == [3]


def test_a_trek_log_renamed_by_something_else_stops_getting_lines_within_a_second(
    log_dir: Path,
) -> None:
    pace = threading.Event()
    with AuditWriter(log_dir) as w:
        w.record("user.login")
        os.rename(log_dir / "trek.log", log_dir / "moved-away.log")
        renamed_at = time.monotonic()
        while not (log_dir / "trek.log").exists():
            assert time.monotonic() - renamed_at < 5, "still writing into the renamed file"
            w.record("user.login")
            pace.wait(0.01)
        noticed_after = time.monotonic() - renamed_at
        moved_lines = (log_dir / "moved-away.log").read_bytes().count(b"\n")
        for _ in range(3):
            w.record("user.login")
    assert noticed_after < 1.5
    assert (log_dir / "moved-away.log").read_bytes().count(b"\n") == moved_lines
    new_seqs = seqs(log_dir)
    assert new_seqs == list(range(moved_lines + 1, moved_lines + 1 + len(new_seqs)))
    assert len(new_seqs) >= 4


def test_a_partial_last_line_that_another_writer_ended_gets_no_blank_line_after_it(
    log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with AuditWriter(log_dir) as w:
        w.record("user.login")
    with open(log_dir / "trek.log", "ab") as log:
        log.write(b'{"v":1,"id":"torn')
    with AuditWriter(log_dir) as a, AuditWriter(log_dir) as b:
        real_write = appender._write

        def disk_full(fd: int, data: bytes) -> int:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(appender, "_write", disk_full)
        with pytest.raises(AuditWriteError):
            a.record("user.login")  # a saw the partial line but wrote nothing
        monkeypatch.setattr(appender, "_write", real_write)
        assert b.record("user.login")["seq"] == 2  # b ends the partial line
        assert a.record("user.logout")["seq"] == 3  # so a must not start one more line
    lines = (log_dir / "trek.log").read_bytes().split(b"\n")
    assert lines[1] == b'{"v":1,"id":"torn'
    assert [b'"seq":2' in lines[2], b'"seq":3' in lines[3], lines[4:]] == [True, True, [b""]]


# -- only valid events count: nothing is continued from a line the writer could not have written


def _foreign_line(seq: int, ts: str = "2026-11-26T14:37:47.672481Z") -> bytes:
    """A line another program appended, with the writer's keys and the given seq and ts."""
    return (
        b'{"v":1,"id":"0000-foreign","seq":%d,"ts":"%s","action":"user.login","user":null,'
        b'"resource":null,"ip":null,"details":null}\n' % (seq, ts.encode())
    )


INVALID_FOREIGN_LINES = [
    ("seq-past-the-range", _foreign_line(2**63)),
    ("seq-at-the-top-of-64-bits", _foreign_line(2**64 - 1)),
    ("no-such-day", _foreign_line(10, "2026-02-30T12:00:00.000000Z")),
    ("year-0000", _foreign_line(10, "0000-01-01T00:00:00.000000Z")),
]


@pytest.mark.parametrize(
    "line", [line for _, line in INVALID_FOREIGN_LINES], ids=[n for n, _ in INVALID_FOREIGN_LINES]
)
def test_a_line_that_is_no_valid_event_is_passed_over_when_seq_is_recovered(
    log_dir: Path, line: bytes
) -> None:
    with AuditWriter(log_dir) as w:
        w.record("user.login")
        w.record("user.login")
        with open(log_dir / "trek.log", "ab") as log:
            log.write(line)
        assert w.record("user.login")["seq"] == 3
        assert w.record("user.login")["seq"] == 4
    lines = (log_dir / "trek.log").read_bytes().splitlines(keepends=True)
    assert lines[2] == line
    assert [decode(raw)["seq"] for raw in lines[:2] + lines[3:]] == [1, 2, 3, 4]


def test_a_valid_line_with_the_largest_seq_stops_the_writer_before_it_writes(log_dir: Path) -> None:
    with AuditWriter(log_dir) as w:
        w.record("user.login")
        with open(log_dir / "trek.log", "ab") as log:
            log.write(_foreign_line(2**63 - 1))
        before = (log_dir / "trek.log").read_bytes()
        for _ in range(2):  # a retry writes nothing either
            with pytest.raises(AuditWriteError, match="largest the line format allows") as raised:
                w.record("user.login")
            assert raised.value.path == str(log_dir / "trek.log")
            assert (log_dir / "trek.log").read_bytes() == before


def test_a_line_from_far_in_the_future_does_not_hold_every_later_ts_still(log_dir: Path) -> None:
    with AuditWriter(log_dir) as w:
        w.record("user.login")
        with open(log_dir / "trek.log", "ab") as log:
            log.write(_foreign_line(2, "2200-01-01T00:00:00.000000Z"))
        before = time.time_ns()
        event = w.record("user.login")
    assert event["seq"] == 3  # its seq is used: never twice
    assert event["ts"] < "2200" and ts_ns(event["ts"]) >= before // 1000 * 1000


def _event_line(**changes: Any) -> bytes:
    event: dict[str, Any] = {
        "v": 1,
        "id": "0000-another-program",
        "seq": 1,
        "ts": "2026-11-26T14:37:47.672481Z",
        "action": "user.login",
        "user": None,
        "resource": None,
        "ip": None,
        "details": None,
    }
    event.update(changes)
    kept = {key: value for key, value in event.items() if value is not _DROP}
    return json.dumps(kept, separators=(",", ":")).encode()  # ints past 64 bits too


_DROP = object()  # a key left out
_BAD_TS = st.sampled_from(
    [
        "2026-02-30T12:00:00.000000Z",
        "0000-01-01T00:00:00.000000Z",
        "1969-12-31T23:59:59.999999Z",
        "2262-01-01T00:00:00.000000Z",
        "2026-11-26T14:37:47Z",
        "2026-11-26 14:37:47.672481",
        "",
    ]
) | st.text(max_size=30).filter(lambda ts: TS_PATTERN.fullmatch(ts) is None)
_NOT_STR = st.one_of(
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
_DROPPED = st.just(_DROP)
# For each key, values that make an otherwise valid event invalid.
_WRONG_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "v": st.one_of(st.integers().filter(lambda v: v != 1), st.just(True), st.none(), _DROPPED),
    "id": st.one_of(st.just(""), st.text(min_size=129), st.none(), _NOT_STR, _DROPPED),
    "action": st.one_of(
        st.text(max_size=12).filter(lambda a: ACTION_PATTERN.fullmatch(a) is None),
        st.none(),
        _NOT_STR,
        _DROPPED,
    ),
    "user": st.one_of(
        st.text(max_size=4), st.integers(), st.just({"id": 1}), st.just({"id": "1"}), _DROPPED
    ),
    "resource": _NOT_STR | _DROPPED,
    "ip": _NOT_STR | _DROPPED,
    "details": st.one_of(st.text(max_size=4), st.integers(), st.lists(st.none()), _DROPPED),
}
_LARGE_SEQ = st.integers(min_value=1, max_value=SEQ_MAX)
_INVALID_LINES = st.one_of(
    st.builds(lambda seq: _event_line(seq=seq), st.integers(max_value=0)),
    st.builds(
        lambda seq: _event_line(seq=seq), st.integers(min_value=SEQ_MAX + 1, max_value=2**64)
    ),
    st.builds(
        lambda seq: _event_line(seq=seq),
        st.one_of(st.none(), _DROPPED, st.booleans(), st.floats(), st.text(max_size=4)),
    ),
    st.builds(lambda seq, ts: _event_line(seq=seq, ts=ts), _LARGE_SEQ, _BAD_TS | _NOT_STR),
    st.sampled_from(sorted(_WRONG_VALUES)).flatmap(
        lambda key: st.builds(
            lambda seq, value: _event_line(seq=seq, **{key: value}), _LARGE_SEQ, _WRONG_VALUES[key]
        )
    ),
    st.builds(lambda seq: _event_line(seq=seq, extra=1), _LARGE_SEQ),
    st.builds(lambda seq: _event_line(seq=seq)[:-1], _LARGE_SEQ),  # cut short
    st.binary(max_size=40).map(lambda data: data.replace(b"\n", b"")),
)


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(
        st.one_of(
            st.integers(min_value=1, max_value=10**6).map(lambda seq: (_event_line(seq=seq), seq)),
            _INVALID_LINES.map(lambda line: (line, 0)),
        ),
        max_size=12,
    )
)
def test_seq_is_recovered_from_the_valid_events_among_hostile_lines_only(
    lines: list[tuple[bytes, int]],
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        log_dir = Path(scratch)
        (log_dir / "trek.log").write_bytes(b"".join(line + b"\n" for line, _ in lines))
        with AuditWriter(log_dir) as w:
            event = w.record("user.login")
        assert event["seq"] == max((seq for _, seq in lines), default=0) + 1
