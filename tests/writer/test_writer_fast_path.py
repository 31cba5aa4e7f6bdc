"""The C fast path: built and used, byte-identical lines, and a clean hand-back otherwise."""

from __future__ import annotations

import fcntl
import hashlib
import os
import resource
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import trek_audit.writer.appender as appender
from trek_audit.layout import LogDir
from trek_audit.settings import Settings
from trek_audit.writer import AuditWriter, encode
from trek_audit.writer.line import SEQ_MAX, TS_END_NS, Event, check_details, check_user
from trek_audit.writer.stamps import ts_ns
from trek_audit.writer.state import LAYOUT, State, read_state, write_state

from .writer_support import seqs

PROJECT = Path(__file__).parents[2]

needs_c = pytest.mark.skipif(
    not appender.FAST_PATH_BUILT and bool(os.environ.get("TREK_WRITER_PURE_PYTHON")),
    reason="the C fast path is not built and TREK_WRITER_PURE_PYTHON is set",
)


@needs_c
def test_the_c_fast_path_is_built_and_used_for_the_common_case(
    log_dir: Path, writer_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert appender.FAST_PATH_BUILT, "writer/_fastappend.c was not built"
    with AuditWriter(log_dir) as w:
        assert w.fast_path is (writer_path == "c")
        w.record("user.login")  # first use: the general path opens and syncs the state

        def general_path(*args: Any) -> None:
            raise AssertionError("the general path ran")

        if writer_path == "c":
            monkeypatch.setattr(w, "_append", general_path)
            assert w.record("user.logout", details={"a": 1})["seq"] == 2
        else:
            calls: list[object] = []
            real = w._append

            def counted(*args: Any) -> None:
                calls.append(args)
                real(*args)

            monkeypatch.setattr(w, "_append", counted)
            assert w.record("user.logout")["seq"] == 2
            assert len(calls) == 1


# -- which path a writer takes: chosen when it is made, from the settings --------------------

PURE_PYTHON_SETTINGS = [("", True), ("0", True), ("false", True), ("1", False), ("true", False)]


@needs_c
@pytest.mark.parametrize(
    ("setting", "fast"),
    PURE_PYTHON_SETTINGS,
    ids=[f"TREK_WRITER_PURE_PYTHON={value!r}" for value, _ in PURE_PYTHON_SETTINGS],
)
def test_trek_writer_pure_python_turns_the_fast_path_off_for_a_writer_made_from_settings(
    data_dir: Path, setting: str, fast: bool
) -> None:
    environ = {"TREK_DATA_DIR": str(data_dir), "TREK_WRITER_PURE_PYTHON": setting}
    with AuditWriter.from_settings(Settings.from_env(environ)) as w:
        assert w.fast_path is fast
        assert [w.record("user.login")["seq"] for _ in range(2)] == [1, 2]


@needs_c
def test_the_variable_counts_when_the_writer_is_made_not_when_the_writer_is_imported(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The writer's modules were imported long before this variable changes.
    monkeypatch.setenv("TREK_DATA_DIR", str(data_dir))
    for setting, fast in (("1", False), ("0", True), ("1", False)):
        monkeypatch.setenv("TREK_WRITER_PURE_PYTHON", setting)
        with AuditWriter.from_settings(Settings.from_env()) as w:
            assert w.fast_path is fast


IMPORTED_WITH_THE_VARIABLE_SET = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from trek_audit.settings import Settings
    from trek_audit.writer import AuditWriter, default_writer

    data_dir = Path(sys.argv[1])
    plain = AuditWriter(data_dir / "logs")
    from_settings = AuditWriter.from_settings(Settings.from_env())
    print(plain.fast_path, from_settings.fast_path, default_writer().fast_path)
    """
)


@needs_c
def test_only_the_settings_turn_the_fast_path_off_not_the_import(data_dir: Path) -> None:
    # Set before the interpreter starts: an import that read it would turn every writer off.
    env = {**os.environ, "TREK_WRITER_PURE_PYTHON": "1", "TREK_DATA_DIR": str(data_dir)}
    result = subprocess.run(
        [sys.executable, "-c", IMPORTED_WITH_THE_VARIABLE_SET, str(data_dir)],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    plain, from_settings, default = result.stdout.split()
    assert (plain, from_settings, default) == ("True", "False", "False")


# `trek-audit record` in a child interpreter, telling which path its writer took.
RECORD_COMMAND = textwrap.dedent(
    """
    import sys
    from trek_audit.cli import main
    from trek_audit.writer.appender import AuditWriter

    real_record = AuditWriter.record

    def record(self, *args, **kwargs):
        print("fast_path", self.fast_path, file=sys.stderr)
        return real_record(self, *args, **kwargs)

    AuditWriter.record = record
    main(["record", "user.login"])
    """
)


@needs_c
@pytest.mark.parametrize(("setting", "fast"), [("0", True), ("1", False)], ids=["c", "python"])
def test_trek_audit_record_takes_the_path_the_variable_gives(
    data_dir: Path, setting: str, fast: bool
) -> None:
    env = {**os.environ, "TREK_WRITER_PURE_PYTHON": setting, "TREK_DATA_DIR": str(data_dir)}
    result = subprocess.run(
        [sys.executable, "-c", RECORD_COMMAND],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [f"fast_path {fast}"]
    assert seqs(data_dir / "logs") == [1]


awkward_text = st.text(
    alphabet=st.sampled_from(["a", "\u2028", "\u2029", "\x85", "\n", "\r", '"', "\\", "\x1b", "é"])
    | st.characters(codec="utf-8"),  # no lone surrogates: they are not UTF-8
    max_size=40,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=awkward_text,
    resource_name=st.none() | awkward_text,
    details=st.none()
    | st.dictionaries(awkward_text, awkward_text | st.integers(-(2**63), 2**63 - 1), max_size=4),
)
def test_lines_are_byte_identical_to_line_encode(
    log_dir: Path, name: str, resource_name: str | None, details: dict[str, Any] | None
) -> None:
    with AuditWriter(log_dir) as w:
        start = (log_dir / "trek.log").stat().st_size if (log_dir / "trek.log").exists() else 0
        events = [
            w.record(
                "user.login",
                user={"id": 7, "username": name, "email": None},
                resource=resource_name,
                details=details,
            )
            for _ in range(3)
        ]
    written = (log_dir / "trek.log").read_bytes()[start:]
    assert written == b"".join(encode(event) for event in events)


def test_ts_is_clamped_to_the_last_one_in_the_state_when_the_clock_is_behind(
    log_dir: Path,
) -> None:
    with AuditWriter(log_dir) as w:
        w.record("user.login")
        future_ns = 4102444800_123456_000  # 2100-01-01T00:00:00.123456Z
        state = read_state(w._lock_fd)
        write_state(w._lock_fd, state._replace(last_ns=future_ns))
        event = w.record("user.login")
        assert event["ts"] == "2100-01-01T00:00:00.123456Z"
        assert event["id"].startswith(f"{future_ns // 1_000_000:012x}"[:8])
        assert read_state(w._lock_fd).last_ns == future_ns
    assert seqs(log_dir) == [1, 2]


def test_forked_children_never_reuse_the_parents_random_id_bits(
    log_dir: Path, writer_path: str
) -> None:
    with AuditWriter(log_dir) as w:
        w.record("user.login")  # the parent's random pool is now filled
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                ids = [w.record("user.login")["id"] for _ in range(20)]
                os.write(write_end, orjson.dumps(ids))
            finally:
                os._exit(0)
        os.close(write_end)
        parent_ids = [w.record("user.login")["id"] for _ in range(20)]
        with os.fdopen(read_end, "rb") as reader:
            child_ids = orjson.loads(reader.read())
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    random_parts = [event_id[15:] for event_id in parent_ids + child_ids]
    assert len(child_ids) == 20
    assert len(set(random_parts)) == 40


# -- the C function itself: every case it does not handle leaves everything untouched ----------


class Prepared:
    """A writer after one event (descriptors open, state in sync) and the arguments for append."""

    def __init__(self, log_dir: Path) -> None:
        self.writer = AuditWriter(log_dir)
        self.writer.record("user.login")
        self.log = log_dir / "trek.log"
        self.lock = LogDir(log_dir).lock_file
        self.event: dict[str, Any] = {
            "v": 1,
            "id": "",
            "seq": 0,
            "ts": "",
            "action": "trip.update",
            "user": None,
            "resource": "trip/1",
            "ip": None,
            "details": {"pad": "x" * 100},
        }

    def args(self, **changes: Any) -> list[Any]:
        w = self.writer
        values = {
            "lock_fd": w._lock_fd,
            "log_fd": w._fd,
            "log_ino": w._fd_ino,
            "path": w._path_bytes,
            "body": orjson.dumps(self.event, option=orjson.OPT_APPEND_NEWLINE),
            "max_bytes": w.max_bytes,
            "max_line_bytes": w.max_line_bytes,
            "file_size_limit": 1 << 62,
            "seal_interval_ns": 0,
        }
        values.update(changes)
        return list(values.values())

    def state(self) -> State:
        return read_state(self.writer._lock_fd)

    def store(self, **fields: Any) -> None:
        """Overwrite fields of the state page, as a damaged or hostile lock file would."""
        page = bytearray(os.pread(self.writer._lock_fd, LAYOUT.size, 0))
        LAYOUT.pack_into(page, 0, *self.state()._replace(**fields))
        os.pwrite(self.writer._lock_fd, bytes(page), 0)

    def snapshot(self) -> tuple[bytes, bytes]:
        """trek.log and the whole lock file, the time of the last look-up of trek.log included."""
        return self.log.read_bytes(), self.lock.read_bytes()


@needs_c
def test_fast_append_writes_the_line_and_returns_its_id_seq_and_ts(log_dir: Path) -> None:
    prepared = Prepared(log_dir)
    fast_append = appender._fast_append
    assert fast_append is not None
    before, _ = prepared.snapshot()
    event_id, seq, ts = fast_append(*prepared.args())
    assert seq == 2
    after, _ = prepared.snapshot()
    written = cast(Event, {**prepared.event, "id": event_id, "seq": seq, "ts": ts})
    assert after == before + encode(written)
    state = prepared.state()
    assert (state.seq, state.ino, state.size) == (2, prepared.writer._fd_ino, len(after))
    assert prepared.event["id"] == "", "append leaves the caller's event alone"
    prepared.writer.close()


@needs_c
def test_fast_append_moves_the_chain_on_and_marks_the_first_unsealed_line(log_dir: Path) -> None:
    prepared = Prepared(log_dir)
    fast_append = appender._fast_append
    assert fast_append is not None
    # As after a seal at seq 1: nothing unsealed, the next seal due in an hour.
    prepared.store(seal_seq=1, unsealed_ns=0)
    before, _ = prepared.snapshot()
    chain = prepared.state().chain
    _, seq, ts = fast_append(*prepared.args(seal_interval_ns=3600 * 10**9))
    line = prepared.snapshot()[0][len(before) :]
    state = prepared.state()
    assert state.chain == hashlib.sha256(chain + line).digest()
    assert (state.seq, state.unsealed_ns) == (2, state.last_ns)
    assert ts_ns(ts) == state.last_ns // 1000 * 1000
    fast_append(*prepared.args(seal_interval_ns=3600 * 10**9))
    assert prepared.state().unsealed_ns == state.unsealed_ns  # the oldest unsealed line's
    prepared.writer.close()


def _outside_append(prepared: Prepared) -> dict[str, Any]:
    with open(prepared.log, "ab") as log:
        log.write(b"x\n")
    return {}


def _unlinked(prepared: Prepared) -> dict[str, Any]:
    prepared.log.unlink()
    return {}


def _damaged_state(prepared: Prepared) -> dict[str, Any]:
    prepared.store(magic=b"XXXX")
    return {}


def _truncated_lock_file(size: int) -> Callable[[Prepared], dict[str, Any]]:
    def truncate(prepared: Prepared) -> dict[str, Any]:
        os.truncate(prepared.lock, size)
        return {}

    return truncate


def _stored(**fields: Any) -> Callable[[Prepared], dict[str, Any]]:
    def store(prepared: Prepared) -> dict[str, Any]:
        prepared.store(**fields)
        return {}

    return store


def _seal_due(prepared: Prepared) -> dict[str, Any]:
    state = prepared.state()
    prepared.store(seal_seq=1, unsealed_ns=state.last_ns - 2 * 10**9)
    return {"seal_interval_ns": 10**9}


def _read_only_descriptor(prepared: Prepared) -> dict[str, Any]:
    return {"log_fd": os.open(prepared.log, os.O_RDONLY | os.O_CLOEXEC)}  # write fails: EBADF


HAND_BACKS: list[tuple[str, Callable[[Prepared], dict[str, Any]]]] = [
    ("rotation-due", lambda p: {"max_bytes": p.log.stat().st_size + 50}),
    ("line-too-long", lambda p: {"max_line_bytes": 150}),
    ("past-the-file-size-limit", lambda p: {"file_size_limit": p.log.stat().st_size + 50}),
    ("another-process-rotated", lambda p: {"log_ino": p.writer._fd_ino + 1}),
    ("outside-append", _outside_append),
    ("trek-log-unlinked", _unlinked),
    ("damaged-state", _damaged_state),
    ("lock-file-truncated-to-nothing", _truncated_lock_file(0)),
    ("lock-file-cut-in-the-state", _truncated_lock_file(20)),
    ("lock-file-one-byte-short", _truncated_lock_file(LAYOUT.size - 1)),
    ("state-of-version-1", _stored(version=1)),
    ("state-of-another-version", _stored(version=3)),
    ("last-seal-past-the-last-seq", _stored(seal_seq=99)),
    ("oldest-unsealed-after-the-last-line", _stored(unsealed_ns=2**62)),
    ("sealing-and-no-seal-yet", lambda p: {"seal_interval_ns": 10**9}),
    ("sealing-and-a-seal-due", _seal_due),
    ("seq-at-the-largest-the-format-allows", _stored(seq=SEQ_MAX)),
    ("seq-at-the-largest-the-page-holds", _stored(seq=2**64 - 1)),
    ("last-ts-past-the-range", _stored(last_ns=TS_END_NS)),
    ("failed-write", _read_only_descriptor),
    ("no-lock-file-yet", lambda p: {"lock_fd": -1}),
    ("no-trek-log-yet", lambda p: {"log_fd": -1}),
]


@needs_c
@pytest.mark.parametrize("change", [c for _, c in HAND_BACKS], ids=[n for n, _ in HAND_BACKS])
def test_fast_append_hands_back_without_touching_anything(
    log_dir: Path, change: Callable[[Prepared], dict[str, Any]]
) -> None:
    prepared = Prepared(log_dir)
    fast_append = appender._fast_append
    assert fast_append is not None
    # Due for a look-up of trek.log by name, which happens (when it does) before some of the
    # checks that hand back: its time must not be stored either.
    prepared.store(path_checked_ns=0)
    changes = change(prepared)
    before = prepared.snapshot() if prepared.log.exists() else None
    try:
        assert fast_append(*prepared.args(**changes)) is None
        if before is not None:
            assert prepared.snapshot() == before
        # ...and the lock is free again.
        fcntl.flock(prepared.writer._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(prepared.writer._lock_fd, fcntl.LOCK_UN)
    finally:
        if "log_fd" in changes and changes["log_fd"] >= 0:
            os.close(changes["log_fd"])
        prepared.writer.close()


BAD_ARGUMENTS: list[tuple[str, Callable[[Prepared], dict[str, Any]], type[Exception]]] = [
    ("descriptor-as-bool", lambda p: {"log_fd": True}, TypeError),
    ("descriptor-as-float", lambda p: {"lock_fd": float(p.writer._lock_fd)}, TypeError),
    ("descriptor-as-str", lambda p: {"log_fd": str(p.writer._fd)}, TypeError),
    ("descriptor-as-int-subclass", lambda p: {"log_fd": _Index(p.writer._fd)}, TypeError),
    # Cast to a C int, 2**32 + n would be n: the line would go to whatever file n is.
    ("descriptor-past-int", lambda p: {"log_fd": 2**32 + p.writer._fd}, OverflowError),
    (
        "descriptor-far-below-int",
        lambda p: {"lock_fd": -(2**32) + p.writer._lock_fd},
        OverflowError,
    ),
    ("inode-as-float", lambda p: {"log_ino": float(p.writer._fd_ino)}, TypeError),
    ("negative-size-limit", lambda p: {"file_size_limit": -1}, ValueError),
    ("seal-interval-as-float", lambda p: {"seal_interval_ns": 1e9}, TypeError),
    ("negative-seal-interval", lambda p: {"seal_interval_ns": -1}, ValueError),
    ("negative-max-bytes", lambda p: {"max_bytes": -(2**62)}, ValueError),
    ("path-as-str", lambda p: {"path": os.fsdecode(p.writer._path_bytes)}, TypeError),
    ("path-with-a-nul-byte", lambda p: {"path": p.writer._path_bytes + b"\0x"}, ValueError),
    ("body-not-an-event", lambda p: {"body": b'{"v":2}\n'}, ValueError),
]


class _Index(int):
    """An int subclass: what a descriptor must not be taken from."""


@needs_c
@pytest.mark.parametrize(
    ("change", "error"),
    [(change, error) for _, change, error in BAD_ARGUMENTS],
    ids=[name for name, _, _ in BAD_ARGUMENTS],
)
def test_fast_append_refuses_arguments_of_the_wrong_kind_before_touching_anything(
    log_dir: Path, change: Callable[[Prepared], dict[str, Any]], error: type[Exception]
) -> None:
    prepared = Prepared(log_dir)
    fast_append = appender._fast_append
    assert fast_append is not None
    before = prepared.snapshot()
    try:
        with pytest.raises(error):
            fast_append(*prepared.args(**change(prepared)))
        assert prepared.snapshot() == before
    finally:
        prepared.writer.close()


@needs_c
@pytest.mark.timeout(60)
def test_fast_append_truncates_a_short_write_away_and_hands_back(log_dir: Path) -> None:
    fast_append = appender._fast_append
    assert fast_append is not None
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # RLIMIT_FSIZE is per process: lower it in a child only
        try:
            prepared = Prepared(log_dir)  # a forked child reopens everything anyway
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
            # 60 more bytes fit: the kernel writes part of the line and stops there.
            limit = prepared.log.stat().st_size + 60
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
            short = fast_append(*prepared.args())  # told the limit is far away
            size_after = prepared.log.stat().st_size
            resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
            again = fast_append(*prepared.args())
            os.write(write_end, f"{short} {limit - 60 - size_after} {again[1]}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        result = reader.read()
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    # Handed back with trek.log as it was, then fine once the limit was lifted.
    assert result == b"None 0 2"
    assert seqs(log_dir) == [1, 2]  # no piece of the short write is left


# -- the C argument checks agree with the Python ones ------------------------------------------

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=5)
    | st.binary(max_size=3)
    | st.tuples(st.integers())
)
nested = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=3) | st.integers(0, 3), inner, max_size=3)
    ),
    max_leaves=12,
)


@needs_c
@settings(max_examples=300, deadline=None)
@given(details=st.dictionaries(st.text(max_size=3), nested, max_size=4))
def test_c_details_check_accepts_exactly_what_the_python_check_accepts(
    details: dict[str, Any],
) -> None:
    plain_details = appender._plain_details
    assert plain_details is not None
    try:
        check_details(details)
        valid = True
    except (TypeError, ValueError):
        valid = False
    assert plain_details(details) is valid


@needs_c
def test_c_details_check_leaves_very_deep_details_to_python() -> None:
    plain_details = appender._plain_details
    assert plain_details is not None
    deep: dict[str, Any] = {}
    inner = deep
    for _ in range(200):
        inner["x"] = {}
        inner = inner["x"]
    assert plain_details(deep) is False
    assert plain_details({"x": [[[{"y": 1}]]]}) is True


# A user dict whose second key hashes like "username" but is a str subclass: looking "username"
# up compares the two, which runs its __eq__, which drops the only reference to the id looked up
# just before. C that kept using that id read freed memory (and corrupted the heap).
COLLIDING_KEY = """
    import sys
    from trek_audit.writer import AuditWriter

    class Username(str):
        def __hash__(self):
            return hash("username")

        def __eq__(self, other):
            user["id"] = 0
            return str.__eq__(self, other)

    users = set()
    with AuditWriter(sys.argv[1], fast_path=sys.argv[2] == "c") as w:
        for n in range(2000):
            user = {"id": 7 * 10**15 + n, Username("username"): "alice"}  # the id's only holder
            users.add(repr(w.record("user.login", user=user)["user"]))
            reuse = [10**12 + i for i in range(50)]  # new ints, in the memory of freed ones
    print(*users, sep="\\n")
"""


def test_a_user_key_that_runs_code_when_compared_cannot_free_what_the_check_holds(
    log_dir: Path, writer_path: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(COLLIDING_KEY), str(log_dir), writer_path],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"the writer's process died ({result.returncode})"
    assert result.stdout.splitlines() == ["{'id': 0, 'username': 'alice', 'email': None}"]
    assert len(seqs(log_dir)) == 2000


@needs_c
def test_c_user_check_leaves_a_dict_with_keys_that_are_not_plain_str_to_python() -> None:
    canonical_user = appender._canonical_user
    assert canonical_user is not None

    class Key(str):
        pass

    assert canonical_user({Key("id"): 1}) is None
    assert canonical_user({"id": 1, Key("email"): "a@example.com"}) is None
    assert canonical_user({"id": 1, "email": "a@example.com"}) == {
        "id": 1,
        "username": None,
        "email": "a@example.com",
    }


users = st.dictionaries(
    st.sampled_from(["id", "username", "email", "name"]),
    st.none() | st.integers(-(2**64), 2**64) | st.text(max_size=3) | st.booleans(),
    max_size=4,
)


@needs_c
@settings(max_examples=300, deadline=None)
@given(user=users | st.none() | st.lists(st.integers(), max_size=2))
def test_c_user_check_gives_the_canonical_user_or_leaves_it_to_python(user: Any) -> None:
    canonical_user = appender._canonical_user
    assert canonical_user is not None
    try:
        expected = check_user(user)
    except (TypeError, ValueError):
        expected = None
    result = canonical_user(user)
    if result is not None:
        assert result == expected
        assert list(result) == ["id", "username", "email"]
        assert result is not user
    elif type(user) is dict and expected is not None:
        pytest.fail(f"C left a plainly valid user to Python: {user!r}")
