"""The log group: the group whose members (a log shipper's user) may read the log files.

With a log group (``TREK_LOG_GROUP``), the writer gives ``logs/`` and its state directory that
group and the setgid bit, so that every file created in them (trek.log, each rotation, the
state) is in that group whatever the writer's primary group is, mode 0640: its members read,
nobody else does. Each log file the writer opens that is in another group or mode (older than
the setting, or created under a umask that took the group's read bit) is given the group and
0640 when the writer may; a directory it cannot give the group is an error that says how to
fix it. Measured: a shipper running as another user read nothing of a 0750 ``logs/`` with
0640 files of the writer's group, and 22,000 of 22,000 events once ``logs/`` was setgid to a
group it was in.
"""

from __future__ import annotations

import contextlib
import grp
import os
import stat
from pathlib import Path
from typing import NamedTuple

from trek_audit.layout import DIR_MODE, LOG_FILE_MODE, LOG_FILE_NAME, SETGID_DIR_MODE, LogDir
from trek_audit.settings import SETTINGS

from .errors import AuditWriteError, describe

__all__ = ["LogGroup", "adopt_file", "adopt_log_files", "give_directories", "resolve_log_group"]

_SETTING = next(s.name for s in SETTINGS.values() if s.field == "log_group")
# What a directory needs for its files to be made in its group and its members to list it.
_DIR_BITS = SETGID_DIR_MODE & ~0o700


class LogGroup(NamedTuple):
    """A log group: its gid, and its name (None for a number with no name on this host)."""

    gid: int
    name: str | None

    def __str__(self) -> str:
        return f"gid {self.gid}" if self.name is None else f"{self.name} (gid {self.gid})"


def resolve_log_group(group: str | int | None, log_dir: Path) -> LogGroup | None:
    """The log group ``group`` names (a group name or a gid), None for None or "".

    A name is looked up first and an all-digit one that is no group's name is a gid, as
    chown(1) does. Raises AuditWriteError (naming ``log_dir``) for a name that is no group
    here, and ValueError for something that is neither a name nor a gid.
    """
    if group is None or group == "":
        return None
    if type(group) is int:
        if group < 0:
            raise ValueError(f"log_group must be a group name or a gid >= 0, got {group!r}")
        return LogGroup(group, _name_of(group))
    if type(group) is not str:
        raise ValueError(f"log_group must be a group name or a gid >= 0, got {group!r}")
    with contextlib.suppress(KeyError):
        return LogGroup(grp.getgrnam(group).gr_gid, group)
    if group.isascii() and group.isdigit():
        return LogGroup(int(group), _name_of(int(group)))
    raise AuditWriteError(
        f"cannot give {log_dir} the log group {group!r}: there is no such group on this host; "
        f"create it (groupadd {group}) or set {_SETTING} to an existing group's name or number",
        log_dir,
        None,
    )


def give_directories(logs: LogDir, group: LogGroup) -> None:
    """Give ``logs/`` and its state directory (made if missing) the group and the setgid bit.

    Raises AuditWriteError naming the directory and the fix when one is missing or cannot be
    given the group (the writer's user is not a member of it, and the directory is not in it
    yet).
    """
    _give_directory(logs.path, group, make=False)
    _give_directory(logs.state_dir, group, make=True)


def adopt_log_files(logs: LogDir, group: LogGroup) -> None:
    """Give trek.log and its rotations the group and mode 0640 where permitted."""
    for path in _log_files(logs):
        with contextlib.suppress(OSError):
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            try:
                adopt_file(fd, os.fstat(fd), group)
            finally:
                os.close(fd)


def adopt_file(fd: int, st: os.stat_result, group: LogGroup) -> None:
    """Give the open file ``fd`` (whose ``fstat`` is ``st``) the group and mode 0640,
    where this process may: an owner who is not a member of the group leaves it as it is.
    """
    if not stat.S_ISREG(st.st_mode):
        return
    if st.st_gid != group.gid:
        with contextlib.suppress(OSError):
            os.fchown(fd, -1, group.gid)
    if stat.S_IMODE(st.st_mode) != LOG_FILE_MODE:
        with contextlib.suppress(OSError):
            os.fchmod(fd, LOG_FILE_MODE)


def _give_directory(path: Path, group: LogGroup, *, make: bool) -> None:
    try:
        if make:
            with contextlib.suppress(FileExistsError):
                os.mkdir(path, DIR_MODE)
        # O_NOFOLLOW: a link in the directory's place would have its target given the group.
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as error:
        raise AuditWriteError(
            f"cannot give {path} the log group {group}: {describe(error)}", path, error
        ) from error
    try:
        _give_group(fd, path, group)
        _set_setgid(fd, path, group)
    finally:
        os.close(fd)


def _give_group(fd: int, path: Path, group: LogGroup) -> None:
    name = group.name or str(group.gid)
    try:
        if os.fstat(fd).st_gid != group.gid:
            os.fchown(fd, -1, group.gid)
    except OSError as error:
        raise AuditWriteError(
            f"cannot give {path} the log group {group}: {describe(error)}; the writer's user "
            f"must be a member of the group (usermod -aG {name} USER, then start the writer "
            f"again), or root gives the directory the group first (chgrp {name} {path} && "
            f"chmod g+s {path})",
            path,
            error,
        ) from error


def _set_setgid(fd: int, path: Path, group: LogGroup) -> None:
    """Add the bits the directory lacks of SETGID_DIR_MODE's group part: 02750 for one the
    writer made (DIR_MODE), whatever the umask took."""
    name = group.name or str(group.gid)
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)  # after a change of group, which may clear it
        if mode | _DIR_BITS != mode:
            os.fchmod(fd, mode | _DIR_BITS)
    except OSError as error:
        # EPERM is also what systemd's RestrictSUIDSGID=yes gives: it forbids setting the bit.
        raise AuditWriteError(
            f"cannot make {path} setgid to the log group {group}: {describe(error)}; root can "
            f"(chgrp {name} {path} && chmod g+s {path}), or the writer if it owns the "
            "directory and may set the bit (under systemd: RestrictSUIDSGID=no)",
            path,
            error,
        ) from error


def _log_files(logs: LogDir) -> list[Path]:
    """trek.log and every trek.log.N in ``logs``."""
    try:
        names = os.listdir(logs.path)
    except OSError:
        return []
    prefix = LOG_FILE_NAME + "."
    return [
        logs.path / name
        for name in names
        if name == LOG_FILE_NAME or (name.startswith(prefix) and name[len(prefix) :].isdigit())
    ]


def _name_of(gid: int) -> str | None:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return None
