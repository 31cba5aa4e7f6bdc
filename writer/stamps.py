"""An event's id and ts: a UUIDv7 and a UTC RFC 3339 time, both from the time of its append.

A UUIDv7 (RFC 9562) is a 48-bit millisecond Unix time followed by 74 random bits (plus version
and variant bits), so ids are unique without any shared state. A ``Stamper`` caches the time
half of the id per millisecond and the date and time of the ts per second, and draws the random
halves in bulk from ``os.urandom``; a forked child makes a new ``Stamper``, so it never repeats
its parent's random bits.
"""

from __future__ import annotations

import calendar
import os
import time

__all__ = ["Stamper", "ts_ns", "uuid7", "uuid7_random_parts", "uuid7_time_part"]

_SET_VERSION = bytes(0x70 | (b & 0x0F) for b in range(256))  # version 7 in the high nibble
_SET_VARIANT = bytes(0x80 | (b & 0x3F) for b in range(256))  # RFC 9562 variant: 10xx
_NS_PER_S = 1_000_000_000
_NS_PER_MS = 1_000_000


def uuid7_time_part(ms: int) -> str:
    """The first half of a UUIDv7 string for a Unix time in milliseconds: 'xxxxxxxx-xxxx'."""
    h = f"{ms & 0xFFFF_FFFF_FFFF:012x}"
    return f"{h[:8]}-{h[8:]}"


def uuid7_random_parts(count: int = 400) -> list[str]:
    """Random halves of UUIDv7s ('-7xxx-yxxx-xxxxxxxxxxxx'), made in bulk because that is cheaper.

    Each holds 74 random bits from os.urandom; translate sets the version and variant bits.
    """
    pool = bytearray(os.urandom(10 * count))
    pool[0::10] = pool[0::10].translate(_SET_VERSION)
    pool[2::10] = pool[2::10].translate(_SET_VARIANT)
    h = pool.hex()
    return [
        f"-{h[i : i + 4]}-{h[i + 4 : i + 8]}-{h[i + 8 : i + 20]}" for i in range(0, 20 * count, 20)
    ]


def uuid7(ms: int | None = None) -> str:
    """A new UUIDv7 string for the given (default: current) Unix time in milliseconds."""
    if ms is None:
        ms = time.time_ns() // _NS_PER_MS
    return uuid7_time_part(ms) + uuid7_random_parts(1)[0]


class Stamper:
    """Makes the id and ts of each event of one writer in one process.

    Not thread-safe: the writer calls it under its lock.
    """

    def __init__(self) -> None:
        self._random_parts: list[str] = []
        self._id_ms = -1
        self._id_prefix = ""
        self._ts_second = -1
        self._ts_prefix = ""

    def event_id(self, now_ns: int) -> str:
        """A new UUIDv7 for a time in ns since the epoch."""
        ms = now_ns // _NS_PER_MS
        if ms != self._id_ms:
            self._id_ms = ms
            self._id_prefix = uuid7_time_part(ms)
        parts = self._random_parts
        if not parts:
            parts = self._random_parts = uuid7_random_parts()
        return self._id_prefix + parts.pop()

    def ts(self, now_ns: int) -> str:
        """The time in ns since the epoch in UTC, RFC 3339 with microseconds and a Z."""
        second, ns = divmod(now_ns, _NS_PER_S)
        if second != self._ts_second:
            self._ts_second = second
            self._ts_prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._ts_prefix}.{ns // 1000:06d}Z"


def ts_ns(ts: str) -> int:
    """The time in ns since the epoch of a ts as ``Stamper.ts`` writes it (a valid one)."""
    second = calendar.timegm(
        (int(ts[0:4]), int(ts[5:7]), int(ts[8:10]), int(ts[11:13]), int(ts[14:16]), int(ts[17:19]))
    )
    return second * _NS_PER_S + int(ts[20:26]) * 1000
