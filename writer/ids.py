"""Event ids: UUIDv7 (RFC 9562), unique without any shared state.

A UUIDv7 is a 48-bit millisecond Unix time followed by 74 random bits (plus version and variant
bits). The writer caches the time half per millisecond and draws the random halves in bulk from
``os.urandom``; a forked child starts with a fresh pool, so it never repeats its parent's.
"""

from __future__ import annotations

import os
import time

__all__ = ["uuid7", "uuid7_random_parts", "uuid7_time_part"]

_SET_VERSION = bytes(0x70 | (b & 0x0F) for b in range(256))  # version 7 in the high nibble
_SET_VARIANT = bytes(0x80 | (b & 0x3F) for b in range(256))  # RFC 9562 variant: 10xx


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
        ms = time.time_ns() // 1_000_000
    return uuid7_time_part(ms) + uuid7_random_parts(1)[0]
