"""One indexer per data directory: an exclusive flock on ``<data>/indexer.lock``.

The lock file never matches ``trek.log*`` and lives in the data directory, not the log
directory, so neither the writer's rotation nor the indexer's scan ever touches it. The
kernel drops an flock when its holder dies, even by ``kill -9``, so a stale lock file
never blocks a restart. The holder writes its pid into the file for messages only.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
import time
from pathlib import Path

__all__ = ["LOCK_NAME", "IndexerBusy", "IndexerLock", "holder_pid", "is_locked"]

LOCK_NAME = "indexer.lock"
# A status probe holds a shared lock for microseconds; a starting indexer retries this
# long before it calls the directory busy, so a probe never makes a start fail.
_PROBE_GRACE = 0.25


class IndexerBusy(RuntimeError):
    """Another indexer holds the lock on this data directory."""

    def __init__(self, data_dir: Path, pid: int | None) -> None:
        who = f"pid {pid}" if pid is not None else "pid unknown"
        super().__init__(f"another indexer ({who}) is running on {data_dir}")
        self.data_dir = data_dir
        self.pid = pid


def holder_pid(data_dir: Path) -> int | None:
    """Return the pid written by the current or last holder of the lock, if readable."""
    try:
        text = (Path(data_dir) / LOCK_NAME).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def is_locked(data_dir: Path) -> bool:
    """Tell whether an indexer holds the lock now, without creating or taking anything."""
    try:
        fd = os.open(Path(data_dir) / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC)
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


class IndexerLock:
    """The exclusive lock that makes an indexer the only one on its data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, *, wait: bool | float = False, stop: threading.Event | None = None) -> None:
        """Take the lock or raise IndexerBusy; ``wait`` retries (True: forever, or seconds)."""
        if self._fd is not None:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        start = time.monotonic()
        limit = None if wait is True else (0.0 if wait is False else float(wait))
        pause = threading.Event() if stop is None else stop
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as error:
                    if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                        raise
                waited = time.monotonic() - start
                if limit is not None and waited >= max(limit, _PROBE_GRACE):
                    raise IndexerBusy(self.data_dir, holder_pid(self.data_dir))
                if pause.wait(0.02 if waited < _PROBE_GRACE else 0.2):
                    raise IndexerBusy(self.data_dir, holder_pid(self.data_dir))
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        # The pid stays in the file; readers only trust it while the lock is held.
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
