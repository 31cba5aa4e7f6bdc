"""Making a directory entry durable: a created or renamed file survives power loss only once
its directory is fsynced too."""

from __future__ import annotations

import os

__all__ = ["fsync_directory"]


def fsync_directory(path: str | os.PathLike[str]) -> None:
    """fsync the directory ``path``; raises OSError when it cannot be opened or synced."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
