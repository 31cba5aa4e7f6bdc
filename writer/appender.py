"""The appender: one JSON line per event into ``<log_dir>/trek.log``, from any thread or process.

How it stays safe:

* Every append happens under a ``threading.Lock`` plus ``flock`` on the lock file,
  ``<log_dir>/.trek-audit/writer.lock``: in a hidden state directory of its own, so that
  ``logs/`` holds nothing but trek.log* for a shipper's glob. The lock file also holds the
  shared state (``state.py``), read with ``pread`` and stored with ``pwrite`` under the lock:
  the last used ``seq``, the inode and expected size of trek.log and the last timestamp, so the
  hot path costs a ``stat`` and a ``write`` besides the lock and the state. It is never mapped:
  a lock file truncated by anything else would kill a process that touched the mapping
  (SIGBUS); a short read just gives a page that is not trusted.
* The state is trusted only while it is sound (magic, version, seq and time in range) and
  trek.log's inode and size match it. Otherwise (first use, a lost, truncated or damaged lock
  file, power loss, an outside change) the position is recovered under the lock from the last
  valid event in the tails of trek.log, trek.log.1..N, checked against the state page
  (``recovery.py``), and the last seq this process used, so a seq is never reused and nothing
  is continued from garbage.
* A seq that would pass ``SEQ_MAX``, or a time past the end of the ts range (``line.py``),
  raises ``AuditWriteError`` before anything is written.
* A line goes out in one ``os.write`` to an ``O_APPEND`` descriptor; a short or failed write is
  truncated away, the ``seq`` is not consumed and ``AuditWriteError`` is raised.
* Rotation (``rotation.py``) renames ``.N-1 -> .N ... trek.log -> .1`` under the lock.
* With a log group (``log_group.py``), ``logs/`` and the state directory are setgid to it, so
  that every file is made in that group, and each log file opened is given it and mode 0640.
  A writer that finds the lock file of an older version (``logs/.trek-audit.lock``) removes
  it: all writers of a directory run the same version.
* After ``fork`` a child reopens the lock file (a ``flock`` belongs to the open file description,
  which a child shares with its parent) and trek.log.
* The event is serialised before any lock is taken, with placeholders for ``id``, ``seq`` and
  ``ts`` (the first three values after ``v``); under the lock only those are spliced in.

* The state also holds the head of the hash chain over every line (``chain.py``), moved on
  under the lock with each line on both paths, and the last seal. Whether and when this writer
  seals, and the seal line, are ``sealing.py``'s; the appender asks it before each line and
  each rotation, under the lock, and appends the seal line for it like any other (whole or not
  at all). A lost state gets the chain back from the last seal in the files (``recovery.py``).

The C fast path (``writer/_fastappend.c``: see ``FAST_PATH_BUILT`` and ``AuditWriter.fast_path``)
does the common case of an append in one call: flock, the state, a ``statx`` of trek.log's
descriptor for its inode, link count and size, the id and ts, the chain's SHA-256, one
``write``, the new state, unlock. Whatever else comes up (a seal due, first use, a state that
is not sound or does not match trek.log, a seq or time at the end of its range, an unlinked
trek.log, a rotation due, a line too long, the file-size limit, a failed or short write, which
it truncates away first) it hands back with the files, the state and the event untouched, and
the Python code below handles it exactly as without the extension. It looks trek.log up by name
(to notice an outside rename) at most once a second for all writers of the directory, because
the look-up costs as much as the write; the Python path does it every time.

A write past ``RLIMIT_FSIZE`` raises ``SIGXFSZ``, whose default action kills the process. CPython
ignores that signal at start-up, so the write fails with ``EFBIG`` instead; an embedding app that
restores the default should know. The writer also checks the limit itself (read when trek.log is
opened, and again after a short write) so that a line that would cross it raises
``AuditWriteError`` (``EFBIG``) without writing, even where the signal is not ignored; only a
limit lowered while trek.log is open and the signal at its default can still kill.

Durability: when ``record`` returns, the line is in the kernel's page cache and survives a crash of
the process. With ``fsync=True`` trek.log (and the directory, after a rotation) is fsynced before
``record`` returns, so the line survives power loss too; this runs on the general path, under the
file lock, so that a line whose fsync fails is taken back out like any other failed write.

Limits: all writers of one directory must use this module (or ``trek-audit record``), run as one
user, on a local file system with working ``flock``. Outside tools must not rotate trek.log (no
logrotate); an outside rename is noticed at the next ``record`` (within a second with the C
fast path, lines until then go into the renamed file), which starts a new trek.log.
Deleting the lock file while writers run is noticed at the next append that finds trek.log
changed; until then two writers could briefly hold different locks.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import resource
import threading
import time
import weakref
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

import orjson

from trek_audit.layout import DIR_MODE, LOG_FILE_MODE, LogDir
from trek_audit.settings import SETTINGS, Settings

from . import rotation
from .catalog import ACTIONS, RESERVED_ACTIONS
from .chain import advance
from .durable import fsync_directory
from .errors import AuditWriteError, describe
from .line import (
    ACTION_PATTERN,
    PLACEHOLDER,
    SEQ_MAX,
    TS_END_NS,
    TS_LAST,
    Event,
    User,
    check_action,
    check_details,
    check_optional_str,
    check_user,
    escape_line_breakers,
)
from .log_group import (
    LogGroup,
    adopt_file,
    adopt_log_files,
    give_directories,
    resolve_log_group,
)
from .recovery import continue_chain, last_event_in_files, recover_chain, resume_position
from .sealing import Appended, Sealer
from .stamps import Stamper
from .state import (
    State,
    close_lock_file,
    open_lock_file,
    read_state,
    restore_page,
    write_state,
)

try:
    from ._fastappend import append as _fast_append
    from ._fastappend import canonical_user as _canonical_user
    from ._fastappend import plain_details as _plain_details
except ImportError:  # not built (no compiler at install time): the pure-Python path does it all
    _fast_append = _canonical_user = _plain_details = None

__all__ = ["FAST_PATH_BUILT", "AuditWriter"]

# Whether writer/_fastappend.c is built in this install. Each writer says whether it uses it
# (AuditWriter.fast_path); TREK_WRITER_PURE_PYTHON reaches a writer through from_settings.
FAST_PATH_BUILT: bool = _fast_append is not None

_DEFAULTS = Settings()  # the declared defaults only: the environment is read by from_env
_LINE_LIMIT_SETTING = next(s.name for s in SETTINGS.values() if s.field == "max_line_bytes")
_NO_LIMIT = 1 << 62  # a size no file reaches
_PLACEHOLDER_LEN = len(PLACEHOLDER)

# Pre-bound for the hot path.
_CATALOG = frozenset(ACTIONS) - RESERVED_ACTIONS  # known well formed and recordable
_dumps = orjson.dumps
_OPT = orjson.OPT_APPEND_NEWLINE
_action_match = ACTION_PATTERN.fullmatch
_flock = fcntl.flock
_LOCK_EX = fcntl.LOCK_EX
_LOCK_UN = fcntl.LOCK_UN
_stat = os.stat
_write = os.write
_time_ns = time.time_ns

_writers: weakref.WeakSet[AuditWriter] = weakref.WeakSet()


class AuditWriter:
    """Append audit events to ``<log_dir>/trek.log``, rotating it by size.

    ``max_bytes``: rotate before a write would take trek.log past this size.
    ``backups``: rotated files kept, trek.log.1 (newest) to trek.log.N; 0 replaces trek.log.
    ``max_line_bytes``: the largest event line accepted (newline included); larger raise ValueError.
    ``fsync``: fsync every line before ``record`` returns.
    ``fast_path``: use the C fast path where it is built (``FAST_PATH_BUILT``).
    ``seal_key_file``: the sealing key (default: ``seal.key`` beside the log directory, which is
    ``<data>/seal.key``); while it exists and this process can open it, the writer seals.
    ``seal_interval``: seconds a line may stay unsealed before the next append seals it.
    ``log_group``: a group (name or gid) whose members may read the log files, e.g. a log
    shipper's (``log_group.py``); None or "" for the writer's own group. A group that does not
    exist, or that the log directory cannot be given, raises AuditWriteError here.

    The defaults are those of ``trek_audit.settings``; ``from_settings`` builds a writer from
    the settings of a process.
    """

    def __init__(
        self,
        log_dir: str | os.PathLike[str],
        *,
        max_bytes: int = _DEFAULTS.log_max_bytes,
        backups: int = _DEFAULTS.log_backups,
        max_line_bytes: int = _DEFAULTS.max_line_bytes,
        fsync: bool = _DEFAULTS.log_fsync,
        fast_path: bool = not _DEFAULTS.writer_pure_python,
        seal_key_file: str | os.PathLike[str] | None = None,
        seal_interval: float = float(_DEFAULTS.seal_interval),
        log_group: str | int | None = None,
    ) -> None:
        if type(seal_interval) not in (int, float) or not 0 < seal_interval < 2**32:
            raise ValueError(
                f"seal_interval must be a number of seconds > 0, got {seal_interval!r}"
            )
        limits = (
            ("max_bytes", max_bytes, 1),
            ("backups", backups, 0),
            ("max_line_bytes", max_line_bytes, 256),
        )
        for name, value, low in limits:
            if type(value) is not int or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        # Absolute, so that a later chdir of the process does not move the log.
        self.log_dir = Path(os.path.abspath(log_dir))
        self._logs = LogDir(self.log_dir)
        self.path = self._logs.log_file
        self.lock_path = self._logs.lock_file
        # No file gets near 2**62 bytes; larger limits are the same as none, and fit the C path.
        self.max_bytes = min(max_bytes, _NO_LIMIT)
        self.backups = backups
        self.max_line_bytes = min(max_line_bytes, _NO_LIMIT)
        self.fsync = bool(fsync)
        self._fast_path = bool(fast_path) and FAST_PATH_BUILT
        self._path_str = str(self.path)
        self._path_bytes = os.fsencode(self.path)
        self._closed = False
        self.log_group: LogGroup | None = resolve_log_group(log_group, self.log_dir)
        # Missing directories are created here; if that fails, record() reports why. Not so
        # with a log group: a directory that cannot be given it is a mistake to fix first.
        with contextlib.suppress(OSError):
            os.makedirs(self.log_dir, mode=DIR_MODE, exist_ok=True)
            os.mkdir(self._logs.state_dir, DIR_MODE)
        if self.log_group is not None:
            give_directories(self._logs, self.log_group)
            adopt_log_files(self._logs, self.log_group)
        self._last_seq = 0  # the last seq this process used: one more floor for recovery
        self.seal_interval = float(seal_interval)
        key_path = self._logs.default_seal_key if seal_key_file is None else seal_key_file
        self.seal_key_file = Path(os.path.abspath(key_path))
        self._sealer = Sealer(self._path_str, self.seal_key_file, self.seal_interval)
        # The open descriptors (log, lock, key), closed by a finalizer if the writer is dropped
        # unclosed.
        self._descriptors = [-1, -1, -1]
        # Not at exit: daemon threads may still record then, and a number closed under them
        # could be reused for another file. The process's end closes them anyway.
        weakref.finalize(self, _close_descriptors, self._descriptors).atexit = False
        self._reset_process_state()
        self._check_key(_time_ns())
        _writers.add(self)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> AuditWriter:
        """A writer for ``<data>/logs`` with the limits and the append path ``settings`` give.

        ``overrides`` are ``Settings`` fields (``log_max_bytes=...``) that win over ``settings``;
        None values are ignored.
        """
        settings = settings.replace(**overrides)
        return cls(
            settings.data.log_dir,
            max_bytes=settings.log_max_bytes,
            backups=settings.log_backups,
            max_line_bytes=settings.max_line_bytes,
            fsync=settings.log_fsync,
            fast_path=not settings.writer_pure_python,
            seal_key_file=settings.seal_key_path,
            seal_interval=settings.seal_interval,
            log_group=settings.log_group or None,
        )

    @property
    def fast_path(self) -> bool:
        """Whether this writer runs the common case of an append in C (``writer/_fastappend.c``)."""
        return self._fast_path

    # -- lifecycle ---------------------------------------------------------------------------

    def _reset_process_state(self) -> None:
        """Forget every descriptor and lock: the state of a new writer or of a forked child."""
        self._lock = threading.Lock()
        self._descriptors[:2] = [-1, -1]
        self._lock_fd = -1
        self._lock_ino = -1
        self._fd = -1
        self._fd_ino = -1
        self._file_size_limit = _file_size_limit()
        self._needs_newline = False
        self._stamper = Stamper()

    def _after_fork_in_child(self) -> None:
        # The parent's descriptors are shared open file descriptions: a flock taken through them
        # would not exclude the parent. Close this process's copies and reopen lazily.
        lock_fd, fd = self._lock_fd, self._fd
        self._reset_process_state()
        for descriptor in (lock_fd, fd):
            if descriptor >= 0:
                with contextlib.suppress(OSError):
                    os.close(descriptor)

    def close(self) -> None:
        """Close the log and lock files. Further ``record`` calls raise ValueError."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._close_log()
            self._close_lock()
            self._sealer.close()
            self._descriptors[2] = -1
        _writers.discard(self)

    def __enter__(self) -> AuditWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"AuditWriter({str(self.log_dir)!r}, max_bytes={self.max_bytes}, "
            f"backups={self.backups}, seal_key_file={str(self.seal_key_file)!r}, "
            f"log_group={None if self.log_group is None else str(self.log_group)!r})"
        )

    # -- the API -----------------------------------------------------------------------------

    def record(
        self,
        action: str,
        *,
        user: User | dict[str, Any] | None = None,
        resource: str | None = None,
        ip: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> Event:
        """Append one event and return it exactly as written (with its ``id``, ``seq`` and ``ts``).

        Raises ValueError or TypeError for a malformed action, user, resource, ip or details, or
        a line longer than ``max_line_bytes``, and AuditWriteError when the line could not be
        appended completely. In all these cases nothing is written and no ``seq`` is used.
        """
        # Everything is checked before any lock is taken. This is the hot path, so the common
        # cases are tested inline; the check_* functions explain what is wrong.
        if type(action) is not str or action not in _CATALOG:
            _check_recordable(action)
        # With the C fast path, C confirms the plainly valid user and details; anything else
        # gets the Python checks, which say what is wrong.
        fast = self._fast_path
        if user is not None:
            user = (fast and _canonical_user(user)) or check_user(user)
        if resource is not None and type(resource) is not str:
            check_optional_str("resource", resource)
        if ip is not None and type(ip) is not str:
            check_optional_str("ip", ip)
        if details is not None and not (fast and _plain_details(details)):
            check_details(details)
        # Serialised before the lock, with placeholders for the three values that need it.
        event: dict[str, Any] = {
            "v": 1,
            "id": "",
            "seq": 0,
            "ts": "",
            "action": action,
            "user": user,
            "resource": resource,
            "ip": ip,
            "details": details,
        }
        body = _dumps(event, option=_OPT)
        with self._lock:
            # With fsync the line is synced under the file lock, where a failed sync can still
            # take it back out; the sync costs far more than the general path anyway.
            if fast and not self._needs_newline and not self.fsync:
                sealer = self._sealer
                if sealer.check_due_ns <= _time_ns():
                    self._check_key(_time_ns())
                stamped = _fast_append(
                    self._lock_fd,
                    self._fd,
                    self._fd_ino,
                    self._path_bytes,
                    body,
                    self.max_bytes,
                    self.max_line_bytes,
                    self._file_size_limit,
                    sealer.interval_ns if sealer.key_fd >= 0 else 0,
                )
                if stamped is not None:  # written: (id, seq, ts)
                    event["id"], event["seq"], event["ts"] = stamped
                    self._last_seq = stamped[1]
                    return event  # type: ignore[return-value]
            self._append(event, body)
        return event  # type: ignore[return-value]

    @property
    def sealing(self) -> bool:
        """Whether this writer seals: its key file exists and this process can open it."""
        with self._lock:
            return self._sealer.sealing if self._closed else self._sealing_now(_time_ns())

    def seal(self) -> Event | None:
        """Write a seal now if any line is unsealed (or the first seal under the key is due).

        Returns the seal event as written; None if there was nothing to seal or this writer
        does not seal. Raises AuditWriteError if the seal could not be written (nothing of it
        is then in the log, and the key has not moved on).
        """
        with self._lock:
            if self._closed:
                raise ValueError("seal() on a closed AuditWriter")
            if not self._sealing_now(_time_ns()):
                return None
            if self._lock_fd < 0:
                self._open_lock()
            self._take_file_lock()
            try:
                state = self._current_state()
                now = self._clock(state)
                if not self._sealer.sealing or not self._sealer.due(state, now, at_once=True):
                    with contextlib.suppress(OSError):  # a resync's findings, for the others
                        write_state(self._lock_fd, state)
                    return None
                return self._seal(state, now)[1]
            finally:
                if self._lock_fd >= 0:
                    _flock(self._lock_fd, _LOCK_UN)

    def seal_due_at(self) -> float | None:
        """The ``time.time()`` at which the oldest unsealed line must be sealed.

        Read from the state page without the file lock, for a background sealer that sleeps
        until then and calls ``seal()``. None when nothing is unsealed or this writer does not
        seal; the present time when the state page is not sound (``seal()`` then rebuilds it).
        """
        with self._lock:
            if self._closed:
                return None
            if not self._sealing_now(_time_ns()):
                return None
            try:
                if self._lock_fd < 0:
                    self._open_lock()
            except AuditWriteError:
                return None  # no log directory: nothing was written to seal
            state = read_state(self._lock_fd)
        return self._sealer.due_at(state)

    def _append(self, event: dict[str, Any], body: bytes) -> None:
        """Append ``event`` (serialised as ``body`` with placeholders) and fill in id, seq, ts.

        The general path: first use, resync, seals, rotation, errors, and everything the C fast
        path hands back. Called with the thread lock held; takes the file lock.
        """
        if self._closed:
            raise ValueError("record() on a closed AuditWriter")
        if self._lock_fd < 0:
            self._open_lock()
        tail = escape_line_breakers(body[_PLACEHOLDER_LEN:])
        self._take_file_lock()
        try:
            # From here to the write, all raises leave the log files untouched (a rotation
            # only renames whole files, a seal is a whole line) and the state as valid as it was.
            state = self._current_state()
            now = self._clock(state)
            if self._sealer.check_due_ns <= now:
                self._check_key(now)
            event_id, ts, line = self._line(state, now, tail)
            rotating = state.size > 0 and state.size + len(line) > self.max_bytes
            if rotating:
                self._check_key(now)
            if self._sealer.sealing and self._sealer.due(state, now, at_once=rotating):
                state = self._seal(state, now)[0]
                event_id, ts, line = self._line(state, now, tail)
                rotating = state.size + len(line) > self.max_bytes
            if rotating:
                state = self._rotate(state)
            seq = state.seq + 1
            chain = advance(state.chain, line)
            size = state.size + self._put(line, state.size)
            self._last_seq = seq
            # The line is in: nothing may raise now. A state that could not be stored no
            # longer matches trek.log, so the next append recovers from the log instead.
            with contextlib.suppress(OSError):
                write_state(
                    self._lock_fd,
                    state._replace(
                        seq=seq,
                        size=size,
                        last_ns=now,
                        chain=chain,
                        unsealed_ns=state.unsealed_ns or now,
                    ),
                )
            event["id"] = event_id
            event["seq"] = seq
            event["ts"] = ts
        finally:
            # _resync may have moved to a new lock file; closing the old one unlocked it.
            if self._lock_fd >= 0:
                _flock(self._lock_fd, _LOCK_UN)

    def _current_state(self) -> State:
        """The state to go on from, with trek.log open: the page if it matches, else a resync.

        Called with the file lock held.
        """
        state = read_state(self._lock_fd)
        try:
            st = _stat(self._path_str)
            if not state.sound or st.st_ino != state.ino or st.st_size != state.size:
                raise FileNotFoundError  # the state is stale: resync below
            # The state matches, so trek.log ends in a whole line (maybe another writer's
            # after a partial one this writer saw earlier, before its own write failed).
            self._needs_newline = False
            if state.ino != self._fd_ino:
                self._open_log()  # another process rotated
        except OSError:
            state = self._resync()
        return state

    def _clock(self, state: State) -> int:
        """The time of the next line: now, never before the last line's, within the format."""
        now = _time_ns()
        if now < state.last_ns:  # ts never goes back in seq order, even if the clock does
            now = state.last_ns
        if now >= TS_END_NS:
            self._cannot_continue(f"the time is past {TS_LAST}, the last the format allows")
        return now

    def _line(self, state: State, now: int, tail: bytes) -> tuple[str, str, bytes]:
        """The id, ts and bytes of the line after ``state`` made of ``tail``, at ``now``."""
        if state.seq >= SEQ_MAX:
            self._cannot_continue(
                f"the last seq, {state.seq}, is the largest the line format allows; remove "
                "a line another program appended with it, or record into a new log directory"
            )
        ts = self._stamper.ts(now)
        event_id = self._stamper.event_id(now)
        line = f'{{"v":1,"id":"{event_id}","seq":{state.seq + 1},"ts":"{ts}",'.encode() + tail
        if len(line) > self.max_line_bytes:
            self._too_long(len(line))
        return event_id, ts, line

    def _sealing_now(self, now: int) -> bool:
        """Whether this writer seals, looking for the key file again if that is due."""
        if self._sealer.check_due_ns <= now:
            self._check_key(now)
        return self._sealer.sealing

    def _check_key(self, now: int) -> None:
        """Look for the sealing key again (see ``Sealer.check_key``). Thread lock held."""
        self._sealer.check_key(now)
        self._descriptors[2] = self._sealer.key_fd

    def _take_file_lock(self) -> None:
        try:
            _flock(self._lock_fd, _LOCK_EX)
        except OSError as error:  # e.g. ENOLCK on a network file system
            raise AuditWriteError(
                f"cannot lock {self.lock_path}: {describe(error)}", self.lock_path, error
            ) from error

    def _cannot_continue(self, reason: str) -> NoReturn:
        """Refuse an append whose seq or ts would leave the line format's range."""
        raise AuditWriteError(f"cannot append to {self._path_str}: {reason}", self._path_str, None)

    def _too_long(self, size: int) -> NoReturn:
        raise ValueError(
            f"event line of {size} bytes exceeds max_line_bytes={self.max_line_bytes} "
            f"({_LINE_LIMIT_SETTING}); shorten details"
        )

    # -- under the lock ------------------------------------------------------------------------

    def _put(self, line: bytes, size: int) -> int:
        """Write one whole line at the end of trek.log (of ``size`` bytes); the bytes written.

        A partial line a crash left is ended first. Whatever part of the line got in is taken
        back out if it could not be written whole (or, with ``fsync``, synced), and
        AuditWriteError raised.
        """
        if self._needs_newline:  # trek.log ends in a partial line (a crash)
            line = b"\n" + line
        length = len(line)
        if size + length > self._file_size_limit:
            # Past RLIMIT_FSIZE the kernel would send SIGXFSZ, which kills by default.
            self._write_failed(OSError(errno.EFBIG, os.strerror(errno.EFBIG)), size)
        try:
            written = _write(self._fd, line)
        except OSError as error:
            self._write_failed(error, size)
        if written != length:
            self._write_rest(line, written, size)
        if self.fsync:
            try:
                os.fsync(self._fd)
            except OSError as error:
                self._write_failed(error, size, "fsync")
        self._needs_newline = False
        return length

    def _seal(self, state: State, now: int) -> tuple[State, Event]:
        """Write a seal after ``state`` (see ``Sealer.seal``); the state after it, and the seal."""
        return self._sealer.seal(state, now, self._append_line, self._lock_fd)

    def _append_line(self, state: State, now: int, tail: bytes) -> Appended:
        """Append the line after ``state`` made of ``tail``, for the sealer; what was written."""
        event_id, ts, line = self._line(state, now, tail)
        chain = advance(state.chain, line)
        size = state.size + self._put(line, state.size)
        self._last_seq = state.seq + 1
        return Appended(event_id, ts, size, chain)

    def _write_rest(self, line: bytes, written: int, size: int) -> None:
        """Finish a short write, or take the part that got in back out and raise."""
        try:
            while written < len(line):
                if size + written >= _file_size_limit():
                    # Retrying at the limit would raise SIGXFSZ; this is why the write was short.
                    raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))
                more = _write(self._fd, line[written:])
                if more <= 0:
                    raise OSError(errno.EIO, "short write")
                written += more
        except OSError as error:
            self._write_failed(error, size)

    def _write_failed(self, error: OSError, size: int, what: str = "append to") -> NoReturn:
        """Remove whatever part of the line got in, so no partial line remains, and raise."""
        fd = self._fd
        with contextlib.suppress(OSError):
            if os.fstat(fd).st_size > size:
                os.ftruncate(fd, size)
        self._close_log()
        raise AuditWriteError(
            f"cannot {what} {self._path_str}: {describe(error)}", self._path_str, error
        ) from error

    def _resync(self) -> State:
        """Bring the state in line with the files after first use, loss, damage or an outside
        change.

        Returns the state to go on from: the last used seq, trek.log's inode and size, the
        last timestamp and the chain, with trek.log open. Called and returns with the lock file
        locked.
        """
        lock_st = self._stat_or_none(self.lock_path)
        if lock_st is None or lock_st.st_ino != self._lock_ino:
            # The lock file was removed or replaced (e.g. with its directory): a lock on the old
            # one excludes nobody, so move to the file the other writers use.
            self._close_lock()
            self._open_lock()
            self._take_file_lock()
        state = read_state(self._lock_fd)
        if not state.sound:
            # Truncated or shortened by something else, maybe: make the page whole again so
            # that the state stored after this append can be read back (or resync each time).
            with contextlib.suppress(OSError):
                restore_page(self._lock_fd)
        self._open_log()
        if self.fsync:  # trek.log may be new: make its directory entry durable too
            self._fsync_dir()
        size = os.fstat(self._fd).st_size
        tails = last_event_in_files(self._logs, self.backups, self.max_line_bytes)
        self._needs_newline = tails.partial_line
        now = _time_ns()
        seq, last_ns = resume_position(state, tails, self._last_seq, now)
        if state.sound and state.ino == self._fd_ino and size > state.size:
            # Only lines appended past the state (by another program, or by a writer that
            # could not store the state after its line): the chain goes on over them.
            chain = continue_chain(state, self._logs, size)
        else:
            chain = recover_chain(self._logs, self.backups)
        chain = chain._replace(unsealed_ns=min(chain.unsealed_ns, last_ns))
        self._check_key(now)
        return State(
            state.magic,
            state.version,
            seq,
            self._fd_ino,
            size,
            last_ns,
            state.path_checked_ns,
            *chain,
        )

    def _rotate(self, state: State) -> State:
        """Start a new trek.log after ``rotation.shift``, keeping the shared state consistent;
        the state after it."""
        if self._needs_newline:  # every kept file ends in a whole line
            state = state._replace(size=state.size + self._put(b"", state.size))
        # Other writers keep appending to the file they have open while the state names its
        # inode and size (the C fast path looks the name up only once a second). Name no file
        # until the new trek.log exists, so that a failure or a crash in between sends them all
        # to resync instead of into trek.log.1.
        try:
            write_state(self._lock_fd, state._replace(ino=0, size=0))
            rotation.shift(self._logs, self.backups)
        except OSError as error:
            target = error.filename or self._path_str
            self._close_log()
            raise AuditWriteError(
                f"cannot rotate {target}: {describe(error)}", target, error
            ) from error
        self._open_log(exclusive=True)
        state = state._replace(ino=self._fd_ino, size=0)
        # Should this fail, the state names no file: the next append resyncs.
        with contextlib.suppress(OSError):
            write_state(self._lock_fd, state)
        if self.fsync:
            self._fsync_dir()
        return state

    def _fsync_dir(self) -> None:
        with contextlib.suppress(OSError):
            fsync_directory(self.log_dir)

    # -- descriptors ---------------------------------------------------------------------------

    def _open_log(self, *, exclusive: bool = False) -> None:
        """Open trek.log for appending, creating it (mode 0640) if needed.

        ``exclusive`` (after a rotation) creates it with O_EXCL; should something else have made
        one in the meantime, that file is used.
        """
        self._close_log()
        # O_NOFOLLOW: a link at trek.log would have the event appended to its target.
        flags = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC | os.O_CREAT | os.O_NOFOLLOW
        try:
            try:
                fd = os.open(self._path_str, flags | (os.O_EXCL if exclusive else 0), LOG_FILE_MODE)
            except FileExistsError:
                fd = os.open(self._path_str, flags, LOG_FILE_MODE)
        except OSError as error:
            raise AuditWriteError(
                f"cannot append to {self._path_str}: {describe(error)}", self._path_str, error
            ) from error
        self._fd = self._descriptors[0] = fd
        st = os.fstat(fd)
        self._fd_ino = st.st_ino
        if self.log_group is not None:
            adopt_file(fd, st, self.log_group)
        self._file_size_limit = _file_size_limit()

    def _close_log(self) -> None:
        fd, self._fd, self._fd_ino = self._fd, -1, -1
        self._descriptors[0] = -1
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _open_lock(self) -> None:
        """Open (creating if needed, with its state directory) the lock file, which holds the
        state page; then remove an older version's lock file from the log directory."""
        if self.log_group is not None:
            give_directories(self._logs, self.log_group)
        else:
            # Only inside an existing log directory: one removed under the writer stays gone.
            state_dir = self._logs.state_dir
            try:
                os.mkdir(state_dir, DIR_MODE)
            except FileExistsError:
                pass
            except OSError as error:
                # A missing log directory is for the open below to report; any other cause
                # (a read-only or full file system, permissions) is the one to name.
                if error.errno != errno.ENOENT:
                    raise AuditWriteError(
                        f"cannot append to {self._path_str}: cannot create {state_dir}: "
                        f"{describe(error)}",
                        state_dir,
                        error,
                    ) from error
        lock_file = open_lock_file(self.lock_path, self._path_str)
        self._lock_fd = self._descriptors[1] = lock_file.fd
        self._lock_ino = lock_file.ino
        if self.log_group is not None:  # made by a writer before the setting, maybe
            with contextlib.suppress(OSError):
                adopt_file(lock_file.fd, os.fstat(lock_file.fd), self.log_group)
        with contextlib.suppress(OSError):
            os.unlink(self._logs.legacy_lock_file)

    def _close_lock(self) -> None:
        fd, self._lock_fd, self._lock_ino = self._lock_fd, -1, -1
        self._descriptors[1] = -1
        close_lock_file(fd)

    @staticmethod
    def _stat_or_none(path: Path) -> os.stat_result | None:
        try:
            return os.stat(path)
        except FileNotFoundError:
            return None


def _check_recordable(action: object) -> None:
    """Raise for an action ``record`` refuses: malformed, or one only the writer writes."""
    if type(action) is not str or _action_match(action) is None:
        check_action(action)
    if action in RESERVED_ACTIONS:
        raise ValueError(f"{action!r} is written by the writer itself (seals); record() refuses it")


def _file_size_limit() -> int:
    """This process's RLIMIT_FSIZE soft limit in bytes (a huge number when unlimited)."""
    soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    return _NO_LIMIT if soft == resource.RLIM_INFINITY or soft < 0 else min(soft, _NO_LIMIT)


def _close_descriptors(descriptors: list[int]) -> None:
    for descriptor in descriptors:
        if descriptor >= 0:
            with contextlib.suppress(OSError):
                os.close(descriptor)


def _reinit_after_fork() -> None:
    for audit_writer in list(_writers):
        audit_writer._after_fork_in_child()


os.register_at_fork(after_in_child=_reinit_after_fork)
