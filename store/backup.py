"""A copy of audit.db taken while the indexer writes to it: SQLite's online backup, one snapshot.

Copying the file with ``cp`` while the indexer commits can catch audit.db and its WAL at
different moments, which SQLite may not open or may open without the latest rows. The backup
API copies the database as one read transaction sees it instead, and WAL mode lets the indexer
go on committing meanwhile.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import NamedTuple

from trek_audit.layout import PRIVATE_FILE_MODE

from .schema import connect, schema_version

__all__ = ["Backup", "BackupError", "backup"]


class BackupError(Exception):
    """A backup that could not be made, with what to do about it."""


class Backup(NamedTuple):
    """A finished backup: where it is, what it holds, and its size."""

    path: Path
    rows: int
    schema_version: int
    size: int


def backup(source: Path, destination: Path, *, overwrite: bool = False) -> Backup:
    """Copy the audit database ``source`` to ``destination`` as one consistent snapshot.

    The copy is a single file (rollback journal, not WAL), created private to its owner
    (mode 0600: it holds every audit event), checked with ``PRAGMA quick_check``, and appears
    at ``destination`` only when complete. An existing ``destination`` is replaced only with
    ``overwrite``.
    """
    if not source.is_file():
        raise BackupError(f"no audit database at {source}: run `trek-audit index` first")
    if destination.is_dir():
        raise BackupError(f"{destination} is a directory: name the backup file")
    if destination.exists() and not overwrite:
        raise BackupError(f"{destination} already exists: choose another name or pass --force")
    temporary = destination.with_name(f".{destination.name}.{os.getpid()}.partial")
    try:
        _create_private(temporary)
        result = _copy(source, temporary)
        _fsync(temporary)
        os.replace(temporary, destination)
        _fsync(destination.parent)
    except sqlite3.Error as error:
        raise BackupError(f"cannot back up {source} to {destination}: {error}") from error
    except OSError as error:
        raise BackupError(
            f"cannot write the backup {destination}: {error.strerror or error}"
        ) from error
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    return result._replace(path=destination)


def _copy(source: Path, target: Path) -> Backup:
    reader = connect(source, readonly=True)
    try:
        copy = sqlite3.connect(target)
        try:
            # All pages in one step (pages=-1): one read transaction, so one snapshot. In
            # steps, every commit of the indexer in between would restart the copy, and a
            # busy indexer could keep it from ever finishing.
            reader.backup(copy)
            # A backup is one file to keep or move: no -wal beside it.
            copy.execute("PRAGMA journal_mode=DELETE")
            problems = [row[0] for row in copy.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise BackupError(f"the copy of {source} fails its check: {'; '.join(problems)}")
            rows = _count_rows(copy)
            version = schema_version(copy)
        finally:
            copy.close()
    finally:
        reader.close()
    return Backup(target, rows, version, target.stat().st_size)


def _count_rows(conn: sqlite3.Connection) -> int:
    try:
        return int(conn.execute("SELECT count(*) FROM audit_log").fetchone()[0])
    except sqlite3.OperationalError:  # a database the indexer has not migrated yet
        return 0


def _create_private(path: Path) -> None:
    descriptor = os.open(
        path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE_MODE
    )
    os.close(descriptor)


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
