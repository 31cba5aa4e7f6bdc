"""Size rotation: trek.log -> trek.log.1 -> ... -> trek.log.N, or a fresh trek.log with no backups.

Runs under the writer's file lock; the writer keeps the shared state and opens the new trek.log.
"""

from __future__ import annotations

import contextlib
import os

from trek_audit.layout import LOG_FILE_MODE, LOG_FILE_NAME, LogDir

__all__ = ["rotated_numbers", "shift"]


def shift(logs: LogDir, backups: int) -> None:
    """Move trek.log out of the way: rename it to trek.log.1 after shifting the older files up.

    The shift starts at the first missing number, so a rotation that crashed half way resumes
    without dropping a kept file; the file at number ``backups`` is replaced. With ``backups``
    0, trek.log is replaced by an empty file instead, made in the writer's state directory
    (``LogDir.fresh_file``) so that ``logs/`` never holds anything but log files. Raises
    OSError (its ``filename`` names the file that could not be moved).
    """
    path = logs.log_file
    if backups == 0:
        fresh = logs.fresh_file
        with contextlib.suppress(FileNotFoundError):
            os.unlink(fresh)
        fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, LOG_FILE_MODE)
        os.close(fd)
        os.rename(fresh, path)
        return
    first_free = backups
    for number in range(1, backups + 1):
        if not os.path.lexists(logs.rotated(number)):
            first_free = number
            break
    for number in range(first_free, 1, -1):
        os.rename(logs.rotated(number - 1), logs.rotated(number))
    os.rename(path, logs.rotated(1))


def rotated_numbers(logs: LogDir) -> list[int]:
    """The N of every trek.log.N in the directory, newest (1) first: one listing, where
    opening each possible name costs a call per number. Raises OSError when the directory
    cannot be listed."""
    prefix = LOG_FILE_NAME + "."
    numbers = []
    for name in os.listdir(logs.path):
        suffix = name[len(prefix) :]
        if name.startswith(prefix) and suffix.isascii() and suffix.isdigit():
            number = int(suffix)
            if number > 0 and name == logs.rotated(number).name:  # no "trek.log.01"
                numbers.append(number)
    return sorted(numbers)
