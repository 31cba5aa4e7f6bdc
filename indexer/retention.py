"""A shipped source's files stay bounded: the indexer rotates and trims them once indexed.

A receiving rsyslog writes each host's lines to ``sources/<host>/trek.log`` and never
rotates it. Its rows are permanent in audit.db and the app host keeps the sealed originals,
so the copy here need only last until it is indexed. So the indexer rotates it as the writer
rotates ``logs/`` (trek.log -> trek.log.1 -> ..., keeping ``backups`` of them) once it is
larger than ``max_bytes`` and indexed to its end; and removes a rotated file beyond
``backups`` only once it is indexed to its end and untouched for ``grace`` seconds: rsyslog
keeps appending to a renamed file until it reopens it by name (omfile's closeTimeout, 10
minutes by default), and the indexer reads those late lines by the file's key. Never the
source "local", nor any source a trek-audit writer keeps (its state directory is there):
the writer rotates those, and trek-import keeps every file.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import time
from collections.abc import Callable
from typing import NamedTuple

from trek_audit.layout import LOG_FILE_NAME, LogDir
from trek_audit.store.log_files import file_key, list_log_files

__all__ = ["DEFAULT_GRACE", "Retention", "Trimmed", "keep_bounded"]

log = logging.getLogger(__name__)

# omfile's default closeTimeout for a dynamic file is 10 minutes: until then rsyslog may
# still append to a file the indexer renamed.
DEFAULT_GRACE = 600.0


class Retention(NamedTuple):
    """How large a source's trek.log grows, how many rotated files stay, how long they rest."""

    max_bytes: int
    backups: int
    grace: float = DEFAULT_GRACE


class Trimmed(NamedTuple):
    """What one call did."""

    rotated: bool
    removed: list[str]  # names of the files removed


class _Opened(NamedTuple):
    inode: int
    size: int
    mtime: float
    key: str | None


def keep_bounded(
    logs: LogDir,
    indexed_to: Callable[[str], int | None],
    retention: Retention,
    *,
    now: float | None = None,
) -> Trimmed:
    """Remove rotated files beyond ``backups`` that are done with; rotate a full trek.log.

    ``indexed_to(key)`` is how far the indexer has read the file of that key (None: never).
    """
    if os.path.lexists(logs.state_dir):
        # A trek-audit writer keeps these files (trek-import, an app's writer on a source):
        # it rotates them itself, and no file of its may go.
        return Trimmed(False, [])
    now = time.time() if now is None else now
    removed = _trim(logs, indexed_to, retention, now)
    return Trimmed(_rotate(logs, indexed_to, retention), removed)


def _look(path: os.PathLike[str]) -> _Opened | None:
    """The file at ``path`` (never through a link, and only a regular file), else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno == errno.ELOOP:
            return None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        return _Opened(st.st_ino, st.st_size, st.st_mtime, file_key(fd, st.st_ino))
    finally:
        os.close(fd)


def _done(found: _Opened | None, indexed_to: Callable[[str], int | None]) -> bool:
    if found is None or found.key is None:
        return False
    offset = indexed_to(found.key)
    return offset is not None and offset >= found.size


def _still(path: os.PathLike[str], found: _Opened) -> bool:
    try:
        return os.lstat(path).st_ino == found.inode
    except FileNotFoundError:
        return False


def _number(name: str) -> int:
    return 0 if name == LOG_FILE_NAME else int(name.rsplit(".", 1)[1])


def _trim(
    logs: LogDir, indexed_to: Callable[[str], int | None], retention: Retention, now: float
) -> list[str]:
    removed: list[str] = []
    beyond = [path for path in list_log_files(logs.path) if _number(path.name) > retention.backups]
    for path in reversed(beyond):  # the oldest first
        found = _look(path)
        if found is None or now - found.mtime < retention.grace:
            continue
        if _done(found, indexed_to) and _still(path, found):
            os.unlink(path)
            removed.append(path.name)
            log.info("removed %s: indexed to its end and untouched since", path)
    return removed


def _rotate(logs: LogDir, indexed_to: Callable[[str], int | None], retention: Retention) -> bool:
    current = logs.log_file
    found = _look(current)
    if found is None or found.size <= retention.max_bytes or not _done(found, indexed_to):
        return False
    numbers = sorted(
        (_number(path.name) for path in list_log_files(logs.path) if path != current),
        reverse=True,
    )
    for number in numbers:  # the highest first, so no file is renamed onto another
        os.rename(logs.rotated(number), logs.rotated(number + 1))
    if not _still(current, found):
        return False  # replaced meanwhile: the new file is not known to be indexed
    os.rename(current, logs.rotated(1))
    log.info("rotated %s (%d bytes, indexed to its end)", current, found.size)
    return True
