"""Many threads and processes, and forked children, writing to one log directory at once."""

from __future__ import annotations

import contextlib
import fcntl
import multiprocessing
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import trek_audit.writer as writer
from trek_audit.layout import LogDir
from trek_audit.writer import AuditWriter

from .writer_support import SHORT_MODE, assert_no_gaps, log_files, read_events

PROJECT = Path(__file__).parents[2]

# The child interpreters make their writers from the settings, as an app does, so that
# TREK_WRITER_PURE_PYTHON (set by the writer_path fixture) picks the path under test.
WORKER = textwrap.dedent(
    """
    import os, sys, threading
    from pathlib import Path
    from trek_audit.settings import Settings
    from trek_audit.writer import AuditWriter

    data_dir = Path(sys.argv[1])
    threads, count, max_bytes = (int(arg) for arg in sys.argv[2:5])
    settings = Settings.from_env(data_dir=data_dir, log_max_bytes=max_bytes, log_backups=10_000)
    w = AuditWriter.from_settings(settings)
    print("ready", "c" if w.fast_path else "python", flush=True)
    sys.stdin.readline()
    failures = []

    def work(worker):
        try:
            for n in range(count):
                w.record("trip.update", resource=f"{worker}/{n}", details={"pad": "x" * (n % 60)})
        except BaseException as error:
            failures.append(error)

    pool = [threading.Thread(target=work, args=(f"p{os.getpid()}t{t}",)) for t in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    w.close()
    sys.exit(1 if failures else 0)
    """
)


def check_log(log_dir: Path, expected: int, max_bytes: int) -> None:
    """Every seq 1..expected exactly once, in file order; every line valid; files within limit."""
    events = read_events(log_dir)
    assert_no_gaps([e["seq"] for e in events])
    assert len(events) == expected
    assert len({e["id"] for e in events}) == expected
    stamps = [e["ts"] for e in events]
    assert stamps == sorted(stamps)
    for path in log_files(log_dir)[:-1]:
        assert path.stat().st_size <= max_bytes


def kill_if_running(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()


def run_in_threads(count: int, target: Callable[[], None]) -> None:
    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            target()
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=guarded) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_many_processes_and_threads_with_rotation_lose_and_repeat_no_seq(
    log_dir: Path, writer_path: str
) -> None:
    processes, threads = 4, 4
    count, max_bytes = (60, 8192) if SHORT_MODE else (1000, 65536)
    with contextlib.ExitStack() as stack:
        workers = [
            stack.enter_context(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        WORKER,
                        str(log_dir.parent),
                        str(threads),
                        str(count),
                        str(max_bytes),
                    ],
                    cwd=PROJECT,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
            for _ in range(processes)
        ]
        for worker in workers:
            stack.callback(kill_if_running, worker)
        for worker in workers:
            assert (
                worker.stdout is not None and worker.stdout.readline() == f"ready {writer_path}\n"
            )
        for worker in workers:  # start them together
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        codes = [worker.wait(timeout=200) for worker in workers]
    assert codes == [0] * processes
    check_log(log_dir, processes * threads * count, max_bytes)
    assert len(log_files(log_dir)) > 10  # it really rotated, many times


def test_threads_of_one_writer_share_the_seq(log_dir: Path) -> None:
    count = 100 if SHORT_MODE else 500
    with AuditWriter(log_dir, max_bytes=4096, backups=10_000) as w:

        def work() -> None:
            for _ in range(count):
                w.record("user.login")

        run_in_threads(8, work)
    check_log(log_dir, 8 * count, 4096)


def _fork_and_wait(children: list[Callable[[], None]], parent_work: Callable[[], None]) -> None:
    pids = []
    for child in children:
        pid = os.fork()
        if pid == 0:  # the child never returns into pytest
            code = 1
            try:
                child()
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    try:
        parent_work()
    finally:
        codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
    assert codes == [0] * len(children)


def test_forked_children_of_a_parent_that_used_the_writer_keep_seq_exact(log_dir: Path) -> None:
    count = 100 if SHORT_MODE else 400
    w = AuditWriter(log_dir, max_bytes=4096, backups=10_000)
    for _ in range(5):
        w.record("user.login")  # the parent holds the lock file, its mapping and trek.log open

    def record(action: str) -> None:
        for _ in range(count):
            w.record(action)

    def child() -> None:
        run_in_threads(2, lambda: record("trip.create"))
        w.close()

    _fork_and_wait([child, child, child], lambda: record("trip.delete"))
    w.close()
    check_log(log_dir, 5 + 3 * 2 * count + count, 4096)


def _record_with_default_writer(count: int) -> None:
    for _ in range(count):
        writer.record("mcp.tool_call", resource="child")


@pytest.fixture
def default_writer_in(log_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("TREK_DATA_DIR", str(log_dir.parent))
    monkeypatch.setenv("TREK_LOG_MAX_BYTES", "4096")
    monkeypatch.setenv("TREK_LOG_BACKUPS", "10000")
    writer.reset_default_writer()
    yield log_dir
    writer.reset_default_writer()


def test_multiprocessing_fork_children_share_the_default_writer_safely(
    default_writer_in: Path,
) -> None:
    count = 100 if SHORT_MODE else 400
    first = writer.record("user.login")  # the parent's default writer is open before the fork
    assert first["seq"] == 1
    context = multiprocessing.get_context("fork")
    children = [
        context.Process(target=_record_with_default_writer, args=(count,)) for _ in range(3)
    ]
    for child in children:
        child.start()
    _record_with_default_writer(count)
    for child in children:
        child.join(timeout=120)
    assert [child.exitcode for child in children] == [0, 0, 0]
    check_log(default_writer_in, 1 + 4 * count, 4096)


def test_child_forked_while_a_parent_thread_is_inside_record_can_record(log_dir: Path) -> None:
    w = AuditWriter(log_dir)
    w.record("user.login")
    # Hold the writer's thread lock in the parent at the moment of the fork, as a thread in the
    # middle of record() would. The child must not inherit it as held.
    with w._lock:

        def child() -> None:
            w.record("user.logout")

        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                child()
                code = 0
            finally:
                os._exit(code)
    status = os.waitpid(pid, 0)[1]
    assert os.waitstatus_to_exitcode(status) == 0
    assert w.record("user.login")["seq"] == 3
    w.close()
    check_log(log_dir, 3, 10 * 1024 * 1024)


KILLED_WORKER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from trek_audit.settings import Settings
    from trek_audit.writer import AuditWriter

    data_dir = Path(sys.argv[1])
    settings = Settings.from_env(data_dir=data_dir, log_max_bytes=16384, log_backups=100_000)
    w = AuditWriter.from_settings(settings)
    print("ready", "c" if w.fast_path else "python", flush=True)
    n = 0
    while True:
        w.record("trip.update", details={"pad": "x" * (n % 300)})
        n += 1
    """
)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_writers_killed_at_random_moments_leave_no_gap_and_no_repeat(
    log_dir: Path, writer_path: str
) -> None:
    import random
    import signal

    from trek_audit.writer import decode

    rounds = 4 if SHORT_MODE else 20
    rng = random.Random(4)
    for _ in range(rounds):
        with contextlib.ExitStack() as stack:
            workers = [
                stack.enter_context(
                    subprocess.Popen(
                        [sys.executable, "-c", KILLED_WORKER, str(log_dir.parent)],
                        cwd=PROJECT,
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                )
                for _ in range(2)
            ]
            for worker in workers:
                assert (
                    worker.stdout is not None
                    and worker.stdout.readline() == f"ready {writer_path}\n"
                )
            # Let them write a random amount; where each one is when SIGKILL lands is up to chance.
            target = written_bytes(log_dir) + rng.randint(2_000, 80_000)
            deadline = time.monotonic() + 60
            while written_bytes(log_dir) < target and time.monotonic() < deadline:
                threading.Event().wait(0.002)
            for worker in workers:
                worker.send_signal(signal.SIGKILL)
                worker.wait(timeout=30)
    with AuditWriter(log_dir, max_bytes=16384, backups=100_000) as w:
        last = w.record("user.login")["seq"]
    seen: list[int] = []
    torn = 0
    for path in log_files(log_dir):
        for line in path.read_bytes().split(b"\n")[:-1]:
            try:
                seen.append(decode(line)["seq"])
            except ValueError:
                torn += 1  # a line cut short by SIGKILL in the middle of its write
    assert seen == list(range(1, last + 1))  # in order, no gap, no repeat
    assert torn <= 2 * rounds
    assert last > 100 * rounds  # the writers really wrote between the kills


def written_bytes(log_dir: Path) -> int:
    total = 0
    for path in log_dir.glob("trek.log*"):
        with contextlib.suppress(FileNotFoundError):  # renamed by a rotation meanwhile
            total += path.stat().st_size
    return total


def _descriptors_on(path: Path) -> int:
    inode = path.stat().st_ino
    count = 0
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.stat(f"/proc/self/fd/{name}").st_ino == inode:
                count += 1
    return count


def _wait_for_a_blocked_flock(path: Path, deadline_s: float = 10) -> None:
    """Poll /proc/locks until this process waits for a flock on ``path`` (a "->" line)."""
    pace = threading.Event()
    deadline = time.monotonic() + deadline_s
    ino, pid = path.stat().st_ino, os.getpid()

    def waiting() -> bool:
        for line in Path("/proc/locks").read_text().splitlines():
            fields = line.split()
            if "->" in fields and "FLOCK" in fields:
                lock = fields[fields.index("FLOCK") :]
                if lock[3] == str(pid) and lock[4].endswith(f":{ino}"):
                    return True
        return False

    while not waiting():
        assert time.monotonic() < deadline, "the recording thread never waited for the lock"
        pace.wait(0.005)


def test_a_child_forked_while_a_parent_thread_waits_for_the_lock_keeps_no_copy_of_it(
    log_dir: Path,
) -> None:
    # A child that kept a descriptor of the parent's lock file description would keep the
    # parent's flock alive if the parent died holding it: every writer would then hang.
    w = AuditWriter(log_dir)
    w.record("user.login")
    lock_path = LogDir(log_dir).lock_file
    blocker = os.open(lock_path, os.O_RDWR | os.O_CLOEXEC)
    fcntl.flock(blocker, fcntl.LOCK_EX)
    waiting = threading.Thread(target=lambda: w.record("user.login"))
    waiting.start()
    try:
        _wait_for_a_blocked_flock(lock_path)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(blocker)
                code = 0 if _descriptors_on(lock_path) == 0 else 3
            finally:
                os._exit(code)
        status = os.waitpid(pid, 0)[1]
    finally:
        fcntl.flock(blocker, fcntl.LOCK_UN)
        os.close(blocker)
        waiting.join(timeout=30)
    w.close()
    assert os.waitstatus_to_exitcode(status) == 0, "the child still holds the parent's lock file"
    check_log(log_dir, 2, 10 * 1024 * 1024)


AT_EXIT = textwrap.dedent(
    """
    import atexit, os, sys, weakref
    from pathlib import Path
    assert not weakref.finalize._registered_with_atexit, "a finalizer exists already"
    data_dir, other = Path(sys.argv[1]), sys.argv[2]

    def late_record():
        # Runs after the finalizers (atexit is last in, first out), like a daemon thread that
        # records while the interpreter shuts down; files opened meanwhile reuse free numbers.
        for n in range(4):
            os.open(f"{other}.{n}", os.O_WRONLY | os.O_CREAT, 0o600)
        w.record("user.logout")

    atexit.register(late_record)
    from trek_audit.settings import Settings
    from trek_audit.writer import AuditWriter
    w = AuditWriter.from_settings(Settings.from_env(data_dir=data_dir))
    w.record("user.login")
    """
)


def test_a_record_during_interpreter_shutdown_never_goes_into_another_file(
    log_dir: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    result = subprocess.run(
        [sys.executable, "-c", AT_EXIT, str(log_dir.parent), str(other)],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert [(other.with_name(f"other.{n}")).stat().st_size for n in range(4)] == [0, 0, 0, 0]
    assert [e["action"] for e in read_events(log_dir)] == ["user.login", "user.logout"]


def test_writer_objects_of_one_process_on_one_directory_exclude_each_other(log_dir: Path) -> None:
    # Each has its own open lock file description, so their flocks exclude each other even
    # though their thread locks are separate.
    count = 150 if SHORT_MODE else 600
    writers = [AuditWriter(log_dir, max_bytes=4096, backups=10_000) for _ in range(3)]
    try:
        turn = iter(writers * 2)
        lock = threading.Lock()

        def work() -> None:
            with lock:
                w = next(turn)
            for _ in range(count):
                w.record("user.login")

        run_in_threads(6, work)
    finally:
        for w in writers:
            w.close()
    check_log(log_dir, 6 * count, 4096)


@pytest.mark.parametrize("handler_raises", [False, True], ids=["handler-returns", "handler-raises"])
def test_a_signal_while_waiting_for_the_lock_neither_loses_nor_doubles_the_event(
    log_dir: Path, handler_raises: bool
) -> None:
    import signal

    class Interrupted(Exception):
        pass

    w = AuditWriter(log_dir)
    w.record("user.login")
    blocker = os.open(LogDir(log_dir).lock_file, os.O_RDWR | os.O_CLOEXEC)
    fcntl.flock(blocker, fcntl.LOCK_EX)
    hits: list[int] = []

    def on_alarm(signum: int, frame: object) -> None:
        hits.append(signum)  # flock is interrupted (EINTR) each time
        if handler_raises and len(hits) == 1:
            raise Interrupted
        if len(hits) == 3:
            fcntl.flock(blocker, fcntl.LOCK_UN)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, 0.05, 0.05)
    try:
        if handler_raises:
            with pytest.raises(Interrupted):
                w.record("user.logout")
            assert len(hits) == 1
            fcntl.flock(blocker, fcntl.LOCK_UN)
        else:
            assert w.record("user.logout")["seq"] == 2
            assert len(hits) == 3
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        os.close(blocker)
    assert w.record("user.login")["seq"] == (2 if handler_raises else 3)
    w.close()
    expected = (
        ["user.login", "user.login"]
        if handler_raises
        else ["user.login", "user.logout", "user.login"]
    )
    assert [e["action"] for e in read_events(log_dir)] == expected
