"""The log files as the indexer sees them: which exist, what each one is, and its lines.

A file is known by its *key*, computed from its first complete line:

* ``id:<event id>`` when the first line is a valid format-v1 event: the id of an event
  is unique, it survives renames, copies and restarts, and a new file at the same path
  (or on a reused inode) starts with a different event;
* ``raw:<sha256 of the first line>:<inode>`` when the first line is not a valid event;
  the inode tells apart two files that happen to start with the same bad bytes. A first
  line longer than ``RAW_KEEP`` bytes is hashed over its first ``RAW_KEEP`` bytes, which
  never change once written.

A file whose first line is not complete yet has no key and is skipped until it does.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from trek_audit.writer.line import LineError, decode

__all__ = [
    "LOG_NAME",
    "RAW_KEEP",
    "Fragment",
    "Line",
    "LineReader",
    "file_key",
    "highest_slot",
    "list_log_files",
    "log_path",
]

LOG_NAME = "trek.log"
# The most bytes of a bad line kept in rejected_lines.raw (its true length is kept too).
RAW_KEEP = 64 * 1024
_ROTATED = re.compile(re.escape(LOG_NAME) + r"\.([1-9][0-9]{0,5})")


def list_log_files(log_dir: Path) -> list[Path]:
    """Return trek.log, trek.log.1, trek.log.2, ... that exist now, newest first."""
    try:
        names = os.listdir(log_dir)
    except FileNotFoundError:
        return []
    rotated: list[tuple[int, str]] = []
    current = False
    for name in names:
        if name == LOG_NAME:
            current = True
            continue
        match = _ROTATED.fullmatch(name)
        if match:
            rotated.append((int(match.group(1)), name))
    rotated.sort()
    paths = [log_dir / LOG_NAME] if current else []
    paths.extend(log_dir / name for _, name in rotated)
    return paths


def log_path(log_dir: Path, slot: int) -> Path:
    """Return trek.log for slot 0, trek.log.N for slot N."""
    return log_dir / (LOG_NAME if slot == 0 else f"{LOG_NAME}.{slot}")


def highest_slot(log_dir: Path) -> int:
    """Return the highest N of the trek.log.N present (0 if none; -1 if no log file at all)."""
    paths = list_log_files(log_dir)
    if not paths:
        return -1
    last = paths[-1].name
    return 0 if last == LOG_NAME else int(last.rsplit(".", 1)[1])


def file_key(fd: int, inode: int) -> str | None:
    """Return the key of the open file ``fd`` (see the module docstring), or None if none yet."""
    # Most first lines are short: try a small read before the largest one.
    head = os.pread(fd, 4096, 0)
    newline = head.find(b"\n")
    if newline < 0 and len(head) == 4096:
        head = os.pread(fd, RAW_KEEP + 1, 0)
        newline = head.find(b"\n")
    if newline < 0:
        if len(head) <= RAW_KEEP:
            return None
        return f"raw:{hashlib.sha256(head[:RAW_KEEP]).hexdigest()[:32]}:{inode}"
    first = head[:newline]
    try:
        return "id:" + decode(first)["id"]
    except LineError:
        return f"raw:{hashlib.sha256(first).hexdigest()[:32]}:{inode}"


@dataclass(frozen=True, slots=True)
class Line:
    """One complete line: where it starts, its bytes (without the newline) and its length with it.

    For a line longer than the reader's limit, ``data`` holds only its first RAW_KEEP
    bytes and ``too_long`` is set.
    """

    offset: int
    data: bytes
    length: int
    too_long: bool = False

    @property
    def end(self) -> int:
        return self.offset + self.length


@dataclass(frozen=True, slots=True)
class Fragment:
    """Bytes after the last newline: a line still being written, or one that never ended."""

    offset: int
    data: bytes  # the first RAW_KEEP bytes at most
    length: int


class LineReader:
    """Yield the complete lines of a file from ``start``, reading in bounded chunks.

    Memory stays bounded by ``chunk + max_line`` whatever the file holds: a line longer
    than ``max_line`` (newline included) is streamed through, keeping only its first
    RAW_KEEP bytes. After iteration, ``fragment`` describes the bytes after the last
    newline, if any; they are never yielded.
    """

    def __init__(self, file: BinaryIO, start: int, *, max_line: int, chunk: int = 1 << 20) -> None:
        self.file = file
        self.start = start
        self.max_line = max_line
        self.chunk = chunk
        self.fragment: Fragment | None = None

    def __iter__(self) -> Iterator[Line]:
        file, max_line = self.file, self.max_line
        file.seek(self.start)
        buf = b""
        buf_start = self.start
        long_start = -1  # start of an over-long line being streamed through, or -1
        long_head = b""
        long_length = 0
        self.fragment = None
        while True:
            data = file.read(self.chunk)
            if not data:
                break
            if long_start >= 0:
                newline = data.find(b"\n")
                if newline < 0:
                    if len(long_head) < RAW_KEEP:
                        long_head += data[: RAW_KEEP - len(long_head)]
                    long_length += len(data)
                    continue
                if len(long_head) < RAW_KEEP:
                    long_head += data[: min(newline, RAW_KEEP - len(long_head))]
                long_length += newline + 1
                yield Line(long_start, long_head, long_length, True)
                buf_start = long_start + long_length
                long_start, long_head, long_length = -1, b"", 0
                data = data[newline + 1 :]
            buf = buf + data if buf else data
            last = buf.rfind(b"\n")
            if last >= 0:
                position = buf_start
                for line in buf[:last].split(b"\n"):
                    length = len(line) + 1
                    if length > max_line:
                        yield Line(position, line[:RAW_KEEP], length, True)
                    else:
                        yield Line(position, line, length)
                    position += length
                buf = buf[last + 1 :]
                buf_start = position
            if len(buf) >= max_line:
                # Already too long and no newline yet: stream the rest instead of holding it.
                long_start, long_head, long_length = buf_start, buf[:RAW_KEEP], len(buf)
                buf = b""
        if long_start >= 0:
            self.fragment = Fragment(long_start, long_head, long_length)
        elif buf:
            self.fragment = Fragment(buf_start, buf[:RAW_KEEP], len(buf))
