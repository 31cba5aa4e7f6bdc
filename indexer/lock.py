"""One indexer per data directory: an exclusive flock on ``<data>/indexer.lock``.

The lock file never matches ``trek.log*`` and lives in the data directory, not the log
directory, so neither the writer's rotation nor the indexer's scan ever touches it. The
kernel drops an flock when its holder dies, even by ``kill -9``, so a stale lock file
never blocks a restart. The holder writes its pid into the file for messages only.
Readers probe the lock with ``trek_audit.store.is_locked``.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
import time
from pathlib import Path

from trek_audit.layout import INDEXER_LOCK_MODE, DataDir
from trek_audit.store.files import narrow_mode, open_private
from trek_audit.store.indexer_lock import holder_pid

__all__ = ["IndexerBusy", "IndexerLock"]

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


class IndexerLock:
    """The exclusive lock that makes an indexer the only one on its data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.path = DataDir(self.data_dir).indexer_lock
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, *, wait: bool | float = False, stop: threading.Event | None = None) -> None:
        """Take the lock or raise IndexerBusy; ``wait`` retries (True: forever, or seconds)."""
        if self._fd is not None:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = open_private(self.path, os.O_RDWR | os.O_CREAT, INDEXER_LOCK_MODE)
        narrow_mode(fd, INDEXER_LOCK_MODE)
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
