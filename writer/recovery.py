"""seq recovery: the last seq written, found in the tail of a log file.

When the writer's shared state is missing or does not match trek.log (first use, a lost or
damaged lock file, power loss, an outside change), it takes the largest seq found here in
trek.log and its rotations, so a seq is never used twice.
"""

from __future__ import annotations

from typing import BinaryIO

import orjson

__all__ = ["TAIL_BYTES", "last_seq_in_tail"]

TAIL_BYTES = 8192


def last_seq_in_tail(file: BinaryIO, end: int, max_line_bytes: int) -> tuple[int, bytes]:
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
