"""The error an append raises when its line could not be written, and how it names the cause."""

from __future__ import annotations

import errno
import os

__all__ = ["AuditWriteError", "describe"]


class AuditWriteError(Exception):
    """An event could not be appended completely; nothing of it was left in the log.

    ``path`` is the file that could not be written, ``cause`` the ``OSError`` behind it.
    """

    def __init__(self, message: str, path: str | os.PathLike[str], cause: OSError | None) -> None:
        super().__init__(message)
        self.path = os.fspath(path)
        self.cause = cause

    @property
    def errno(self) -> int | None:
        return None if self.cause is None else self.cause.errno


def describe(error: OSError) -> str:
    """The system's words for an OSError (``No space left on device``), for a message."""
    return error.strerror or os.strerror(error.errno or errno.EIO)
