"""The state page in the lock file: whatever another process does to it, no writer dies, no seq
is used twice and nothing is continued from garbage."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from trek_audit.layout import LogDir
from trek_audit.writer import AuditWriteError, AuditWriter
from trek_audit.writer.line import SEQ_MAX, TS_END_NS
from trek_audit.writer.recovery import FUTURE_SLACK_NS
from trek_audit.writer.stamps import ts_ns
from trek_audit.writer.state import LAYOUT, MAGIC, read_state

from .writer_support import SHORT_MODE, assert_no_gaps, read_events, seqs

# The writer's lock file (and state page), relative to its log directory.
LOCK = LogDir(Path()).lock_file
PROJECT = Path(__file__).parents[2]
# Early 2554, near the end of what an unsigned 64-bit count of ns since 1970 can hold.
IN_2554 = 18_430_000_000_000_000_000


def _store(log_dir: Path, **fields: Any) -> None:
    """Overwrite fields of the state page, as a damaged or hostile lock file would."""
    with open(log_dir / LOCK, "r+b") as lock:
        state = read_state(lock.fileno())
        lock.write(LAYOUT.pack(*state._replace(**fields)))


def _state_of(log_dir: Path) -> tuple[int, int]:
    with open(log_dir / LOCK, "rb") as lock:
        state = read_state(lock.fileno())
    assert state.sound
    return state.seq, state.last_ns


def _in_a_child(body: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``body`` in a new interpreter: a writer that dies must not take the tests with it."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(body), *args],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# -- a truncated lock file ---------------------------------------------------------------------

TRUNCATE_BETWEEN_RECORDS = """
    import os, sys
    from pathlib import Path
    from trek_audit.layout import LogDir
    from trek_audit.writer import AuditWriter

    log_dir, size, fast = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "c"
    with AuditWriter(log_dir, fast_path=fast) as w:
        w.record("user.login")
        os.truncate(LogDir(log_dir).lock_file, size)
        w.record("user.login")
        w.record("user.login")
"""


@pytest.mark.parametrize("size", [0, 3, 20, LAYOUT.size - 1], ids=lambda n: f"to-{n}-bytes")
def test_a_lock_file_truncated_under_a_writer_is_rebuilt_from_the_log(
    log_dir: Path, writer_path: str, size: int
) -> None:
    result = _in_a_child(TRUNCATE_BETWEEN_RECORDS, str(log_dir), str(size), writer_path)
    assert result.returncode == 0, result.stderr
    assert seqs(log_dir) == [1, 2, 3]
    assert _state_of(log_dir)[0] == 3


RECORD_AND_ACKNOWLEDGE = """
    import sys
    from trek_audit.writer import AuditWriter

    log_dir, count, fast = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "c"
    with AuditWriter(log_dir, max_bytes=128 * 1024, backups=100, fast_path=fast) as w:
        for n in range(count):
            event = w.record("trip.update", resource=f"trip/{n}")
            print(event["id"], flush=True)  # acknowledged: record returned it
"""


@pytest.mark.timeout(180)
def test_a_lock_file_truncated_while_writers_in_other_processes_write_kills_none_of_them(
    log_dir: Path, writer_path: str
) -> None:
    count = 400 if SHORT_MODE else 2000
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(RECORD_AND_ACKNOWLEDGE)]
            + [str(log_dir), str(count), writer_path],
            cwd=PROJECT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    stop = threading.Event()
    truncations = 0
    sizes = [0, 3, 20, 0, LAYOUT.size - 1, 8]

    def truncate_again_and_again() -> None:
        nonlocal truncations
        while not stop.wait(0.0005):
            try:
                os.truncate(log_dir / LOCK, sizes[truncations % len(sizes)])
            except FileNotFoundError:
                continue  # not made yet
            truncations += 1

    truncator = threading.Thread(target=truncate_again_and_again)
    truncator.start()
    try:
        outputs = [writer.communicate(timeout=150) for writer in writers]
    finally:
        stop.set()
        truncator.join()
    for writer, (_, stderr) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, f"a writer died ({writer.returncode}): {stderr}"
    acknowledged = [line for stdout, _ in outputs for line in stdout.split()]
    assert len(acknowledged) == 3 * count
    events = read_events(log_dir)
    ids = [event["id"] for event in events]
    assert sorted(ids) == sorted(acknowledged), "every acknowledged event exactly once"
    assert_no_gaps([event["seq"] for event in events])
    assert truncations > 50


# -- a state page with the right magic and garbage in it ------------------------------------


def _random_page(seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    fields = LAYOUT.unpack(MAGIC + rng.randbytes(LAYOUT.size - len(MAGIC)))
    return dict(zip(("version", "seq", "ino", "size", "last_ns"), fields[1:6], strict=True))


# Pages whose own fields give them away, whatever file they name.
OUT_OF_RANGE_PAGES: list[tuple[str, dict[str, Any]]] = [
    ("all-random", _random_page(2026)),
    # The page of the report: seq past the range, a time in 2554.
    ("seq-past-the-range", {"seq": 10075002457056522212, "last_ns": IN_2554}),
    ("seq-in-range-time-in-2554", {"seq": 1234567890123456789, "last_ns": IN_2554}),
]
# Pages in range that the log's tail gives away once they no longer name trek.log.
UNFITTING_PAGES: list[tuple[str, dict[str, Any]]] = [
    # Ahead of the log and far ahead of the clock: believed, it would hold every ts still.
    ("seq-ahead-time-in-2200", {"seq": 1234567890123456789, "last_ns": 7_258_118_400 * 10**9}),
    # Ahead of the log with a time before the log's last event: ts never goes back.
    ("seq-ahead-time-before-the-log", {"seq": 1000, "last_ns": 1_000_000_000}),
]
GARBAGE_PAGES = [(name, fields, False) for name, fields in OUT_OF_RANGE_PAGES + UNFITTING_PAGES]
GARBAGE_PAGES += [(f"{name}-naming-trek-log", fields, True) for name, fields in OUT_OF_RANGE_PAGES]


@pytest.mark.parametrize(
    ("fields", "naming_trek_log"),
    [(fields, naming) for _, fields, naming in GARBAGE_PAGES],
    ids=[name for name, _, _ in GARBAGE_PAGES],
)
def test_a_state_page_with_the_right_magic_and_garbage_is_checked_against_the_log(
    log_dir: Path, fields: dict[str, Any], naming_trek_log: bool
) -> None:
    with AuditWriter(log_dir) as w:
        for _ in range(3):
            w.record("user.login")
        st = os.stat(log_dir / "trek.log")
        if naming_trek_log:  # trek.log's own inode and size: only the ranges give it away
            fields = {**fields, "ino": st.st_ino, "size": st.st_size}
        else:
            fields = {"ino": st.st_ino + 1, "size": 4321, **fields}
        _store(log_dir, **fields)
        before = time.time_ns()
        event = w.record("user.login")
        after = time.time_ns()
    assert event["seq"] == 4
    assert before // 1000 * 1000 <= ts_ns(event["ts"]) <= after
    assert seqs(log_dir) == [1, 2, 3, 4]
    seq, last_ns = _state_of(log_dir)
    assert seq == 4 and before <= last_ns <= after


def test_a_state_page_ahead_of_the_log_with_a_fitting_time_is_believed(log_dir: Path) -> None:
    # What a power failure that lost trek.log's last lines (or a trek.log renamed away) leaves.
    with AuditWriter(log_dir) as w:
        w.record("user.login")
        _store(log_dir, seq=41, ino=0, size=0)
        assert w.record("user.login")["seq"] == 42


def test_a_state_page_less_than_the_slack_ahead_of_the_clock_is_believed(log_dir: Path) -> None:
    # A clock stepped back by an hour: the page's time is ahead of it, and the ts stays put.
    an_hour_ahead = time.time_ns() + 3600 * 10**9
    assert FUTURE_SLACK_NS > 3600 * 10**9
    with AuditWriter(log_dir) as w:
        w.record("user.login")
        _store(log_dir, seq=41, ino=0, size=0, last_ns=an_hour_ahead)
        event = w.record("user.login")
    assert event["seq"] == 42
    assert ts_ns(event["ts"]) == an_hour_ahead // 1000 * 1000


# -- the top of the seq range: refused before anything is written -----------------------------


def test_a_state_page_at_the_top_of_what_it_holds_is_not_wrapped_but_rebuilt(
    log_dir: Path,
) -> None:
    # 2**64-1 naming trek.log exactly: the C path once wrapped it to 0 and the Python path
    # wrote 2**64 and then failed on storing it.
    with AuditWriter(log_dir) as w:
        w.record("user.login")
        st = os.stat(log_dir / "trek.log")
        _store(log_dir, seq=2**64 - 1, ino=st.st_ino, size=st.st_size)
        assert w.record("user.login")["seq"] == 2
    assert seqs(log_dir) == [1, 2]


def test_the_largest_seq_is_written_once_and_then_every_append_is_refused_unwritten(
    log_dir: Path,
) -> None:
    with AuditWriter(log_dir) as w:
        w.record("user.login")
        st = os.stat(log_dir / "trek.log")
        _store(log_dir, seq=SEQ_MAX - 1, ino=st.st_ino, size=st.st_size)
        assert w.record("user.login")["seq"] == SEQ_MAX
        log_before = (log_dir / "trek.log").read_bytes()
        state_before = (log_dir / LOCK).read_bytes()
        for _ in range(3):  # a retry writes nothing either
            with pytest.raises(AuditWriteError, match="largest the line format allows"):
                w.record("user.login")
            assert (log_dir / "trek.log").read_bytes() == log_before
            assert (log_dir / LOCK).read_bytes() == state_before
    assert seqs(log_dir) == [1, SEQ_MAX]


@pytest.mark.python_path_only
def test_a_clock_past_the_last_ts_the_format_allows_is_refused_unwritten(
    log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import trek_audit.writer.appender as appender

    with AuditWriter(log_dir) as w:
        w.record("user.login")
        log_before = (log_dir / "trek.log").read_bytes()
        monkeypatch.setattr(appender, "_time_ns", lambda: TS_END_NS)
        with pytest.raises(AuditWriteError, match="2261-12-31T23:59:59.999999Z"):
            w.record("user.login")
        assert (log_dir / "trek.log").read_bytes() == log_before
        monkeypatch.setattr(appender, "_time_ns", lambda: TS_END_NS - 1)
        assert w.record("user.login")["ts"] == "2261-12-31T23:59:59.999999Z"
    assert seqs(log_dir) == [1, 2]


def test_a_version_1_page_from_before_the_chain_is_rebuilt_with_the_chain_from_the_log(
    log_dir: Path,
) -> None:
    import hashlib
    import struct

    with AuditWriter(log_dir) as w:
        w.record("user.login")
    st = os.stat(log_dir / "trek.log")
    seq, last_ns = _state_of(log_dir)
    version_1 = struct.pack("<4sIQQQQQ", MAGIC, 1, seq, st.st_ino, st.st_size, last_ns, 0)
    with open(log_dir / LOCK, "r+b") as lock:
        lock.write(version_1 + bytes(LAYOUT.size - len(version_1)))
    with AuditWriter(log_dir) as w:
        assert w.record("user.login")["seq"] == 2
    head = bytes(32)
    for line in (log_dir / "trek.log").read_bytes().splitlines(keepends=True):
        head = hashlib.sha256(head + line).digest()
    with open(log_dir / LOCK, "rb") as lock:
        assert read_state(lock.fileno()).chain == head
