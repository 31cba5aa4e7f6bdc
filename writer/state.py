"""The shared state page: the start of the writer's lock file, mapped by every writer.

Every writer of a log directory maps the lock file (``MAP_SHARED``), so what one writes under
the file lock the next one reads without a system call. The page, little-endian::

    offset  field            meaning
    0       magic            b"TRKA" once written (a new or damaged page is not trusted)
    4       version          1
    8       seq              the last seq used
    16      ino              trek.log's inode
    24      size             the size trek.log has after the last append
    32      last_ns          the time of the last event, in ns since the epoch
    40      path_checked_ns  when the C fast path last looked trek.log up by name

The C fast path reads the same layout from ``writer/_fastappend.h``; a test holds the two to
each other. The Python code writes every field but the last, which is the C path's alone.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import mmap
import os
import struct
from pathlib import Path
from typing import NamedTuple

from trek_audit.layout import LOG_FILE_MODE

from .errors import AuditWriteError, describe

__all__ = [
    "LAYOUT",
    "MAGIC",
    "OFFSETS",
    "PAGE_BYTES",
    "VERSION",
    "LockFile",
    "State",
    "close_lock_file",
    "open_lock_file",
    "read_state",
    "write_state",
]

MAGIC = b"TRKA"
VERSION = 1
# One page, written out in full when the lock file is made: the page gets its blocks then, so
# writing through the mapping can never hit a full disk (which would be SIGBUS).
PAGE_BYTES = 4096

# Each field's struct code, in page order.
_CODES = {
    "magic": "4s",
    "version": "I",
    "seq": "Q",
    "ino": "Q",
    "size": "Q",
    "last_ns": "Q",
    "path_checked_ns": "Q",
}
LAYOUT = struct.Struct("<" + "".join(_CODES.values()))
OFFSETS = {
    name: struct.calcsize("<" + "".join(list(_CODES.values())[:index]))
    for index, name in enumerate(_CODES)
}
_WRITTEN = struct.Struct("<" + "".join(list(_CODES.values())[:-1]))  # all but path_checked_ns


class State(NamedTuple):
    """The fields of the state page, as ``read_state`` found them."""

    magic: bytes
    version: int
    seq: int
    ino: int
    size: int
    last_ns: int
    path_checked_ns: int

    @property
    def written(self) -> bool:
        """False for a new or damaged page, whose other fields mean nothing."""
        return self.magic == MAGIC


def read_state(page: mmap.mmap) -> State:
    return State._make(LAYOUT.unpack_from(page))


def write_state(page: mmap.mmap, seq: int, ino: int, size: int, last_ns: int) -> None:
    """Store the state after an append (or a rotation); path_checked_ns is left as it is."""
    _WRITTEN.pack_into(page, 0, MAGIC, VERSION, seq, ino, size, last_ns)


class LockFile(NamedTuple):
    """An open lock file: its descriptor, its inode and its state page, mapped."""

    fd: int
    ino: int
    page: mmap.mmap


def open_lock_file(path: Path, log_path: str) -> LockFile:
    """Open (creating if needed, mode 0640) the lock file of ``log_path`` and map its page.

    Raises AuditWriteError naming the lock file (and the log it serves) when that fails.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, LOG_FILE_MODE)
    except OSError as error:
        raise AuditWriteError(
            f"cannot append to {log_path}: cannot open lock file {path}: {describe(error)}",
            path,
            error,
        ) from error
    try:
        # Locked while the page is made, so that two new writers do not both fill it.
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            st = os.fstat(fd)
            if st.st_size < PAGE_BYTES:
                # Real bytes rather than ftruncate: see PAGE_BYTES.
                data = os.pread(fd, PAGE_BYTES, 0)
                data += bytes(PAGE_BYTES - len(data))
                if os.pwrite(fd, data, 0) != PAGE_BYTES:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            page = mmap.mmap(fd, PAGE_BYTES, mmap.MAP_SHARED)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    except OSError as error:
        os.close(fd)
        raise AuditWriteError(
            f"cannot prepare lock file {path}: {describe(error)}", path, error
        ) from error
    return LockFile(fd, st.st_ino, page)


def close_lock_file(fd: int, page: mmap.mmap | None) -> None:
    """Unmap the page and close the descriptor (-1 and None stand for nothing to close)."""
    if page is not None:
        page.close()
    if fd >= 0:
        with contextlib.suppress(OSError):
            os.close(fd)
