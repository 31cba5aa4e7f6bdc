"""Opening the files of the data directory without following a symbolic link.

A link where a lock, key or database belongs would let whoever can write the data directory
point trek-audit at any file it may write (and have it truncated, overwritten or chmod'ed).
The data directory itself may be a link: only the last part of a path is never followed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

__all__ = [
    "NotARegularFile",
    "check_regular",
    "create_database_file",
    "narrow_mode",
    "open_private",
]


class NotARegularFile(OSError):
    """A path of the data directory holds a symbolic link or something else than a file."""

    def __init__(self, path: Path, what: str) -> None:
        super().__init__(errno.ELOOP, f"{path} is {what}, not a regular file: refusing to use it")
        self.path = path


def open_private(path: str | os.PathLike[str], flags: int, mode: int) -> int:
    """``os.open`` with O_NOFOLLOW, creating with ``mode``; refuse anything but a file.

    Raises NotARegularFile for a symbolic link, a FIFO, a device or a directory.
    """
    path = Path(path)
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise NotARegularFile(path, "a symbolic link") from None
        raise
    try:
        check_regular(path, os.fstat(fd))
        if flags & os.O_NONBLOCK == 0:
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def narrow_mode(fd: int, mode: int) -> None:
    """Take away the permission bits beyond ``mode`` of a file of ours (made by an older version).

    A file of another owner is left as it is: only its owner or root may change it.
    """
    st = os.fstat(fd)
    if st.st_mode & 0o777 & ~mode and st.st_uid == os.geteuid():
        os.fchmod(fd, st.st_mode & 0o777 & mode)


def check_regular(path: Path, st: os.stat_result) -> None:
    """Raise NotARegularFile unless ``st`` (an lstat or fstat) is a regular file's."""
    if stat.S_ISLNK(st.st_mode):
        raise NotARegularFile(path, "a symbolic link")
    if not stat.S_ISREG(st.st_mode):
        raise NotARegularFile(path, "not a regular file")


def create_database_file(path: Path, mode: int) -> os.stat_result:
    """Make sure ``path`` and its -wal and -shm are no links; create it (empty) with ``mode``.

    SQLite follows links and creates its files with the umask's mode, but gives -wal and
    -shm the mode of the database file: creating that first bounds all three. Returns the
    database file's lstat, for the caller to check that it still names the file it opened.
    """
    companions = (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"))
    for companion in companions:
        with contextlib.suppress(FileNotFoundError):
            check_regular(companion, os.lstat(companion))
    fd = open_private(path, os.O_RDWR | os.O_CREAT, mode)
    try:
        narrow_mode(fd, mode)
    finally:
        os.close(fd)
    return os.lstat(path)
