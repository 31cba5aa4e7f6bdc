"""The shared state page: the start of the writer's lock file, read and written under its lock.

The lock file is ``logs/.trek-audit/writer.lock`` (``LogDir.lock_file``): in a hidden
directory of its own, so that nothing in ``logs/`` but log lines meets a shipper's glob.

Every writer of a log directory keeps its position there, so what one writes under the file
lock the next one reads with one system call. The page, little-endian::

    offset  field            meaning
    0       magic            b"TRKA" once written (a new or damaged page is not trusted)
    4       version          2
    8       seq              the last seq used
    16      ino              trek.log's inode
    24      size             the size trek.log has after the last append
    32      last_ns          the time of the last event, in ns since the epoch
    40      path_checked_ns  when the C fast path last looked trek.log up by name
    48      chain            the chain head after the last line (32 bytes, ``chain.py``)
    80      seal_seq         the seq of the last seal line (0: none known)
    88      seal_epoch       that seal's epoch
    96      unsealed_ns      the time of the oldest line after the last seal (0: none)
    104     seal_head        the chain head after the last seal line: the next seal's ``prev``
    136     seal_key_id      the key_id of the last seal (8 bytes; its 16 hex digits)

The page is read and written with ``pread``/``pwrite``, never through a mapping: anyone who can
write the lock file can truncate it, and touching a mapped page past the end of the file kills
the process with SIGBUS. A short read (a truncated or shortened file) gives a page that is not
``sound``, which the writer rebuilds from the log files as if the lock file were new.

The C fast path reads the same layout from ``writer/_fastappend.h``; a test holds the two to
each other. Both store the whole page; the Python code writes path_checked_ns back as it read
it under the lock (the C path alone moves it on). The C path moves chain and unsealed_ns on
with every line; only the Python path writes seals, so only it changes the seal fields.
A version-1 page (before the chain) is simply not sound: the writer resyncs from the files.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import struct
from pathlib import Path
from typing import NamedTuple

from trek_audit.layout import LOG_FILE_MODE

from .errors import AuditWriteError, describe
from .line import SEQ_MAX, TS_END_NS

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
    "restore_page",
    "write_state",
]

MAGIC = b"TRKA"
VERSION = 2
# Written out in full when the lock file is made, so that the page has its disk block and
# storing a state never needs a new one (which a full disk could refuse).
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
    "chain": "32s",
    "seal_seq": "Q",
    "seal_epoch": "Q",
    "unsealed_ns": "Q",
    "seal_head": "32s",
    "seal_key_id": "8s",
}
LAYOUT = struct.Struct("<" + "".join(_CODES.values()))
OFFSETS = {
    name: struct.calcsize("<" + "".join(list(_CODES.values())[:index]))
    for index, name in enumerate(_CODES)
}


class State(NamedTuple):
    """The fields of the state page, as ``read_state`` found them."""

    magic: bytes
    version: int
    seq: int
    ino: int
    size: int
    last_ns: int
    path_checked_ns: int
    chain: bytes
    seal_seq: int
    seal_epoch: int
    unsealed_ns: int
    seal_head: bytes
    seal_key_id: bytes

    @property
    def sound(self) -> bool:
        """Whether this is a page a writer stored: its magic and version, seq, times and the
        last seal in range.

        False for a new, truncated or damaged page, whose fields mean nothing. A sound page
        still says nothing about trek.log until its inode and size are seen to match.
        """
        return (
            self.magic == MAGIC
            and self.version == VERSION
            and self.seq <= SEQ_MAX
            and self.last_ns < TS_END_NS
            and self.seal_seq <= self.seq
            and self.unsealed_ns <= self.last_ns
        )

    def key_id_hex(self) -> str:
        """The key_id of the last seal as it appears in seal lines (16 hex digits)."""
        return self.seal_key_id.hex()


_BLANK = State(b"\0" * 4, 0, 0, 0, 0, 0, 0, bytes(32), 0, 0, 0, bytes(32), bytes(8))


def read_state(fd: int) -> State:
    """The state page of the open lock file ``fd``.

    A blank (unsound) page if the file is too short or cannot be read: the writer then goes on
    from the log files, and the lock itself still works.
    """
    try:
        data = os.pread(fd, LAYOUT.size, 0)
    except OSError:
        return _BLANK
    if len(data) < LAYOUT.size:
        return _BLANK
    return State._make(LAYOUT.unpack(data))


def write_state(fd: int, state: State) -> None:
    """Store the whole page (after an append, a seal or a rotation), marked as this version.

    Raises OSError if it could not be stored whole.
    """
    data = LAYOUT.pack(MAGIC, VERSION, *state[2:])
    if os.pwrite(fd, data, 0) != len(data):
        raise OSError(errno.EIO, "short write of the writer state")


class LockFile(NamedTuple):
    """An open lock file: its descriptor and its inode."""

    fd: int
    ino: int


def open_lock_file(path: Path, log_path: str) -> LockFile:
    """Open (creating if needed, mode 0640) the lock file of ``log_path``, with its page written.

    Neither the lock file nor its directory (the writer's state directory) may be a symbolic
    link. Raises AuditWriteError naming the lock file (and the log it serves) when that fails.
    """
    try:
        # O_NOFOLLOW on both: a link at either would have its target's file locked and
        # overwritten.
        try:
            dir_fd = os.open(
                path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
            )
        except NotADirectoryError as error:
            if os.path.islink(path.parent):
                error.strerror = f"{path.parent} is a symbolic link"
            raise
        try:
            fd = os.open(
                path.name,
                os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
                LOG_FILE_MODE,
                dir_fd=dir_fd,
            )
        finally:
            os.close(dir_fd)
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
            if not stat.S_ISREG(st.st_mode):  # e.g. a FIFO put in its place
                raise OSError(errno.EINVAL, "not a regular file")
            restore_page(fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    except OSError as error:
        os.close(fd)
        raise AuditWriteError(
            f"cannot prepare lock file {path}: {describe(error)}", path, error
        ) from error
    return LockFile(fd, st.st_ino)


def restore_page(fd: int) -> None:
    """Give a new, truncated or shortened lock file its whole page again: zeros past its end,
    and in place of a state cut short.

    Called with the lock held. Raises OSError if the page cannot be written.
    """
    size = os.fstat(fd).st_size
    if size >= PAGE_BYTES:
        return
    # Real bytes rather than ftruncate: see PAGE_BYTES. A state cut short is dropped whole:
    # zeros in place of its end could pass for a state (a chain of zeros, no seal) and be
    # continued from; the writer rebuilds it from the log files instead.
    data = os.pread(fd, PAGE_BYTES, 0) if size >= LAYOUT.size else b""
    data += bytes(PAGE_BYTES - len(data))
    if os.pwrite(fd, data, 0) != PAGE_BYTES:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def close_lock_file(fd: int) -> None:
    """Close the lock file's descriptor (-1 stands for nothing to close)."""
    if fd >= 0:
        with contextlib.suppress(OSError):
            os.close(fd)
