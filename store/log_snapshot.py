"""The log files as verify reads them: each whole, and a directory's all from one moment.

A rotation renames trek.log.N-1 to trek.log.N, ..., trek.log to trek.log.1, one file at a time,
while verify may be reading the files oldest first: the lines that moved past it meanwhile
would never be read, and would look deleted, or like a file cut short. So after the read the
names and inodes are listed again, and the read starts over until nothing rotated in between.

trek.log itself may end in a line being appended right now: the writer appends each line in
one write(), but a read racing that write can see part of it. Its end is read again after a
moment, so that a line in flight is not mistaken for a damaged one.

The writer's line format is imported when a file is read, not with this module: importing the
store stays free of the writer's appender (tests/store checks it).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import BinaryIO, NamedTuple

from trek_audit.layout import LOG_FILE_NAME

from .log_files import list_log_files
from .verify_outcome import VerifyError

__all__ = ["LogFile", "first_ids", "read_log", "read_log_dir", "rotation_number"]

# A rotation comes once per TREK_LOG_MAX_BYTES written, and a read of every file takes a small
# part of that time (about 0.1 s for 50 MB): a few attempts only fail when writes never pause.
_ATTEMPTS = 5
# A line's write() finishes within microseconds unless the writer is descheduled in it; five
# looks 10 ms apart tell a line in flight from a partial line a crash left.
_SETTLE_LOOKS = 5
_SETTLE_PAUSE = 0.01
_pause = time.sleep  # the wait between those looks (tests finish the line meanwhile)
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


class LogFile(NamedTuple):
    """A log file's content as read, and where its events start."""

    path: Path
    data: bytes
    first_seq: int | None  # of its first event line (None: no event near its top)
    first_id: str | None
    inode: int


def read_log(path: Path) -> LogFile:
    """The whole file at ``path`` (one given by name: a copy, say); VerifyError if unreadable."""
    try:
        return _read(path, live=False)
    except OSError as error:
        raise VerifyError(f"cannot read {path}: {error.strerror}") from None


def read_log_dir(log_dir: Path) -> list[LogFile]:
    """trek.log.N .. trek.log, oldest first, all as they were at one moment (see above)."""
    for _ in range(_ATTEMPTS):
        logs: list[LogFile] = []
        for path in _oldest_first(log_dir):
            try:
                logs.append(_read(path, live=rotation_number(path) == 0))
            except FileNotFoundError:
                break  # renamed or replaced by a rotation since the listing
            except OSError as error:
                raise VerifyError(f"cannot read {path}: {error.strerror}") from None
        else:
            if _names_and_inodes(log_dir) == [(log.path, log.inode) for log in logs]:
                return logs
    raise VerifyError(
        f"the log files in {log_dir} rotated during each of {_ATTEMPTS} reads: run verify "
        "again when fewer events are being written"
    )


def first_ids(log_dir: Path) -> list[str]:
    """The ids of the first events of the oldest file, to find where its rows start."""
    from trek_audit.writer.line import LineError, decode

    for _ in range(_ATTEMPTS):
        paths = _oldest_first(log_dir)
        if not paths:
            return []
        try:
            with open(paths[0], "rb") as file:  # noqa: PTH123 - a bounded read of the head
                head = file.read(64 * 1024)
        except FileNotFoundError:
            continue  # rotated away since the listing: the next oldest is the oldest now
        ids: list[str] = []
        for line in head.split(b"\n")[:-1][:20]:
            try:
                ids.append(decode(line)["id"])
            except LineError:
                continue
        return ids
    return []


def rotation_number(path: Path) -> int:
    """0 for trek.log, N for trek.log.N."""
    return 0 if path.name == LOG_FILE_NAME else int(path.name.rsplit(".", 1)[1])


def _oldest_first(log_dir: Path) -> list[Path]:
    return list(reversed(list_log_files(log_dir)))


def _names_and_inodes(log_dir: Path) -> list[tuple[Path, int]] | None:
    """Each log file's path and inode now, oldest first; None if one vanished meanwhile."""
    found: list[tuple[Path, int]] = []
    for path in _oldest_first(log_dir):
        try:
            found.append((path, os.lstat(path).st_ino))
        except FileNotFoundError:
            return None
    return found


def _read(path: Path, *, live: bool) -> LogFile:
    """The file's whole content; raises OSError (FileNotFoundError when it is gone)."""
    fd = os.open(path, _OPEN_FLAGS)
    with os.fdopen(fd, "rb") as file:
        inode = os.fstat(fd).st_ino
        data = file.read()
        if live:
            data += _rest_of_a_line_in_flight(file, data[-1:])
    first_seq, first_id = _first_event(data) or (None, None)
    return LogFile(path, data, first_seq, first_id, inode)


def _rest_of_a_line_in_flight(file: BinaryIO, last_byte: bytes) -> bytes:
    """What was appended while trek.log ended mid-line, up to the end of a line (or nothing)."""
    more = b""
    for _ in range(_SETTLE_LOOKS):
        if (more[-1:] or last_byte) in (b"", b"\n"):
            break
        _pause(_SETTLE_PAUSE)
        more += file.read()
    return more


def _first_event(data: bytes) -> tuple[int, str] | None:
    from trek_audit.writer.line import LineError, decode

    start = 0
    for _ in range(100):  # a few damaged lines at the top do not hide where a file starts
        end = data.find(b"\n", start)
        if end < 0:
            return None
        try:
            event = decode(data[start:end])
        except LineError:
            start = end + 1
            continue
        return event["seq"], event["id"]
    return None
