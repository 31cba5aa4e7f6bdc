"""The log directory of an imported source: where the last import stopped, and the appender
that continues it.

An import source (``<data>/sources/trek-import/``) has one writer at a time, under an ``flock``
on the source's lock file (``LogDir.lock_file``), and no state besides its lines: the last
valid line says the last ``seq`` and the last imported row (``details["trek_import"]``).

Nothing imported is ever dropped: a rotation (at ``TREK_LOG_MAX_BYTES``, with
``rotation.shift``) keeps every file, since it is given one more backup than the highest
``trek.log.N`` there is.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Callable
from types import TracebackType
from typing import NamedTuple

from trek_audit.layout import DIR_MODE, LOG_FILE_MODE, LogDir

from .durable import fsync_directory
from .errors import AuditWriteError, describe
from .line import LineError, decode
from .rotation import rotated_numbers, shift

__all__ = ["ImportedUpTo", "SourceAppender", "imported_up_to"]

# Lines go out in writes of about this size: one write per line made a 100,000-row import
# spend most of its time in system calls.
_BATCH_BYTES = 1 << 20


class ImportedUpTo(NamedTuple):
    """Where the lines of an import source end."""

    seq: int  # the last seq written (0: none)
    row_id: int  # the last imported row (0: none)
    ts: str  # the last line's ts ("" if there is none)
    event_id: str  # the id of the line of the last imported row ("" if there is none)


def _rotated_numbers(logs: LogDir) -> list[int]:
    """The N of every trek.log.N of the source, newest (1) first; none before it exists."""
    try:
        return rotated_numbers(logs)
    except FileNotFoundError:
        return []


def imported_up_to(logs: LogDir, key: str) -> ImportedUpTo:
    """The last seq and ts of the source's lines, and the last row id found under
    ``details[key]["row_id"]``, reading the newest file first.

    Lines that are not valid events (a crash's partial line) are passed over.
    """
    seq, ts, row_id = 0, "", 0
    for number in [0, *_rotated_numbers(logs)]:
        try:
            data = logs.rotated(number).read_bytes()
        except FileNotFoundError:
            continue
        except OSError as error:
            raise AuditWriteError(
                f"cannot read {logs.rotated(number)} to find where the import stopped: "
                f"{describe(error)}",
                logs.rotated(number),
                error,
            ) from error
        for line in reversed(data.split(b"\n")):
            try:
                event = decode(line)
            except LineError:
                continue
            if not seq:
                seq, ts = event["seq"], event["ts"]
            provenance = (event["details"] or {}).get(key)
            if isinstance(provenance, dict) and type(provenance.get("row_id")) is int:
                return ImportedUpTo(seq, provenance["row_id"], ts, event["id"])
    return ImportedUpTo(seq, row_id, ts, "")


class SourceAppender:
    """Appends whole lines to a source's trek.log under the source's lock; a context manager.

    Lines are buffered and written in batches; ``flush`` (and leaving the context) writes
    them and fsyncs trek.log. A partial line that a crashed import left at the end of
    trek.log is cut off first, so the next line starts on a line of its own.
    """

    def __init__(self, logs: LogDir, max_bytes: int) -> None:
        self.logs = logs
        self.max_bytes = max_bytes
        self._lock_fd = -1
        self._log_fd = -1
        self._size = 0
        self._buffer = bytearray()
        self.rotations = 0

    def __enter__(self) -> SourceAppender:
        lock_path = self.logs.lock_file
        try:
            self.logs.path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            lock_path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            self._lock_fd = os.open(
                lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, LOG_FILE_MODE
            )
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            self._open_log()
        except OSError as error:
            self._close()
            raise AuditWriteError(
                f"cannot append to {self.logs.log_file}: {describe(error)}",
                self.logs.log_file,
                error,
            ) from error
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                self.flush()
        finally:
            self._close()

    def append(self, line: bytes) -> None:
        """Queue one whole line (its newline included); rotate first if it would not fit."""
        pending = self._size + len(self._buffer)
        if pending > 0 and pending + len(line) > self.max_bytes:
            self.flush()
            self._rotate()
        self._buffer += line
        if len(self._buffer) >= _BATCH_BYTES:
            self._write_buffer()

    def flush(self) -> None:
        """Write what is queued and fsync trek.log."""
        self._write_buffer()
        self._guard(lambda: os.fsync(self._log_fd))

    def _write_buffer(self) -> None:
        data = bytes(self._buffer)
        written = 0
        while written < len(data):
            try:
                n = os.write(self._log_fd, data[written:])
            except OSError as error:
                self._take_back(written)
                raise AuditWriteError(
                    f"cannot append to {self.logs.log_file}: {describe(error)}",
                    self.logs.log_file,
                    error,
                ) from error
            if n == 0:
                self._take_back(written)
                raise AuditWriteError(
                    f"cannot append to {self.logs.log_file}: nothing written",
                    self.logs.log_file,
                    OSError(errno.EIO, "short write"),
                )
            written += n
        self._size += written
        self._buffer.clear()

    def _take_back(self, written: int) -> None:
        """Cut a batch written in part back to its last whole line."""
        kept = bytes(self._buffer[:written]).rfind(b"\n") + 1
        with contextlib.suppress(OSError):
            os.ftruncate(self._log_fd, self._size + kept)
        self._size += kept
        self._buffer.clear()

    def _rotate(self) -> None:
        # One backup more than the files there are: shift never replaces a kept file.
        numbers = _rotated_numbers(self.logs)
        self._guard(lambda: os.fsync(self._log_fd))
        os.close(self._log_fd)
        self._log_fd = -1
        self._guard(lambda: shift(self.logs, (numbers[-1] if numbers else 0) + 1))
        self._guard(self._open_log)
        self.rotations += 1

    def _open_log(self) -> None:
        # Read and write: the end is read back to find a partial line; O_APPEND keeps every
        # write at the end all the same.
        self._log_fd = os.open(
            self.logs.log_file,
            os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
            LOG_FILE_MODE,
        )
        size = os.fstat(self._log_fd).st_size
        if size and os.pread(self._log_fd, 1, size - 1) != b"\n":
            size = self._end_of_last_line(size)
            os.ftruncate(self._log_fd, size)
        self._size = size
        fsync_directory(self.logs.path)

    def _end_of_last_line(self, size: int) -> int:
        """The offset just past the last newline before ``size`` (0 if there is none)."""
        end = size
        while end > 0:
            start = max(0, end - _BATCH_BYTES)
            found = os.pread(self._log_fd, end - start, start).rfind(b"\n")
            if found >= 0:
                return start + found + 1
            end = start
        return 0

    def _guard(self, action: Callable[[], object]) -> None:
        try:
            action()
        except OSError as error:
            raise AuditWriteError(
                f"cannot append to {self.logs.log_file}: {describe(error)}",
                self.logs.log_file,
                error,
            ) from error

    def _close(self) -> None:
        for fd in (self._log_fd, self._lock_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._log_fd = self._lock_fd = -1
