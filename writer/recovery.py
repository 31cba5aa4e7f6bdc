"""seq recovery: the last seq written, found in the tails of trek.log and its rotations.

When the writer's shared state is missing or does not match trek.log (first use, a lost or
damaged lock file, power loss, an outside change), it takes the largest seq found here in
trek.log and its rotations, so a seq is never used twice.
"""

from __future__ import annotations

import os
from typing import BinaryIO, NamedTuple

import orjson

from trek_audit.layout import LogDir

from .errors import AuditWriteError, describe

__all__ = ["TAIL_BYTES", "Recovered", "last_seq_in_files"]

TAIL_BYTES = 8192


def _last_seq_in_tail(file: BinaryIO, end: int, max_line_bytes: int) -> tuple[int, bytes]:
    """Return the largest seq among the complete lines near the end of a file, and its last byte.

    Reads the last few KB, more only while no line with a seq was found and the window is still
    shorter than the longest possible line.
    """
    window = TAIL_BYTES
    while True:
        start = max(0, end - window)
        file.seek(start)
        chunk = file.read(end - start)
        pieces = chunk.split(b"\n")
        if start > 0:
            del pieces[0]  # maybe the end of a line that starts before the window
        best = 0
        for piece in pieces:
            if not piece:
                continue
            try:
                obj = orjson.loads(piece)
            except orjson.JSONDecodeError:
                continue
            seq = obj.get("seq") if type(obj) is dict else None
            if type(seq) is int and seq > best:
                best = seq
        if best or start == 0 or window > max_line_bytes + TAIL_BYTES:
            return best, chunk[-1:]
        window *= 4


class Recovered(NamedTuple):
    """What the tails of the log files say: the largest seq, and how trek.log ends."""

    seq: int
    partial_line: bool  # trek.log ends in a line without its newline (a crash mid-write)


def last_seq_in_files(logs: LogDir, backups: int, max_line_bytes: int) -> Recovered:
    """The largest seq in the tails of trek.log and its kept rotations (0 if none).

    Missing files are skipped; a file that cannot be read raises AuditWriteError, since a seq
    it holds could otherwise be used again.
    """
    best = 0
    partial_line = False
    for number in range(backups + 1):
        path = logs.rotated(number)
        try:
            with open(path, "rb") as file:
                end = file.seek(0, os.SEEK_END)
                found, last_byte = _last_seq_in_tail(file, end, max_line_bytes)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            continue
        except OSError as error:
            raise AuditWriteError(
                f"cannot read {path} to recover seq: {describe(error)}", path, error
            ) from error
        best = max(best, found)
        if number == 0:
            partial_line = end > 0 and last_byte != b"\n"
    return Recovered(best, partial_line)
