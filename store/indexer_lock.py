"""The indexer's lock seen from outside: whether an indexer runs on a data directory, and its pid.

The indexer holds an exclusive flock on ``<data>/indexer.lock`` while it runs and writes
its pid into the file (see ``trek_audit.indexer.lock``, which takes it). Readers only
probe: they never create the file or keep a lock.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from trek_audit.layout import DataDir

__all__ = ["holder_pid", "is_locked"]


def holder_pid(data_dir: Path) -> int | None:
    """Return the pid written by the current or last holder of the lock, if readable."""
    try:
        text = DataDir(Path(data_dir)).indexer_lock.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def is_locked(data_dir: Path) -> bool:
    """Tell whether an indexer holds the lock now, without creating or taking anything."""
    try:
        fd = os.open(DataDir(Path(data_dir)).indexer_lock, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        # A shared probe conflicts only with the indexer's exclusive lock.
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return True
        raise
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
