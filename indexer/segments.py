"""The log files as the indexer reads them: the highest rotation present, and their lines.

Which files exist and what each one is (its key) is audit.db's contract too, so it lives
in ``trek_audit.store.log_files``; reading a file's lines, in bounded memory, is the
indexer's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from trek_audit.layout import LOG_FILE_NAME
from trek_audit.store.log_files import RAW_KEEP, list_log_files

__all__ = ["Fragment", "Line", "LineReader", "highest_slot"]


def highest_slot(log_dir: Path) -> int:
    """Return the highest N of the trek.log.N present (0 if none; -1 if no log file at all)."""
    paths = list_log_files(log_dir)
    if not paths:
        return -1
    last = paths[-1].name
    return 0 if last == LOG_FILE_NAME else int(last.rsplit(".", 1)[1])


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
