"""The sealing key file: the current epoch's key, overwritten in place after every seal.

``trek-audit seal init`` creates it (mode 0600, never over an existing file) and prints the
verification key (the epoch-0 key) once. Its content is one fixed-size ASCII record::

    trek-audit seal key v1
    key_id 0123456789abcdef
    epoch 00000000000000000003
    key <64 hex digits>

so that storing the next epoch's key rewrites the same bytes of the same block (``pwrite`` at
offset 0, then ``fdatasync``): the old key does not survive in a new block or a renamed file.
It is read and stored by writers under the writer's lock, so two writers never seal one epoch.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path
from typing import NamedTuple

from trek_audit.layout import DIR_MODE, PRIVATE_FILE_MODE

from .chain import HEAD_BYTES, key_id
from .durable import fsync_directory

__all__ = ["SealKey", "SealKeyError", "SealKeyFile", "SealKeyWatch", "create_key_file"]

_MAGIC = "trek-audit seal key v1"
_EPOCH_DIGITS = 20


class SealKeyError(Exception):
    """The sealing key file is missing, unreadable, or not one ``seal init`` made."""


class SealKey(NamedTuple):
    """The key of one epoch, and the name of the verification key it descends from."""

    epoch: int
    key: bytes
    key_id: str


def _render(key: SealKey) -> bytes:
    return (
        f"{_MAGIC}\nkey_id {key.key_id}\nepoch {key.epoch:0{_EPOCH_DIGITS}d}\nkey {key.key.hex()}\n"
    ).encode("ascii")


def _parse(data: bytes, path: Path) -> SealKey:
    try:
        lines = data.decode("ascii").split("\n")
        if lines[0] != _MAGIC:
            raise ValueError("not a trek-audit sealing key file")
        fields = dict(line.split(" ", 1) for line in lines[1:4])
        key = bytes.fromhex(fields["key"])
        epoch = int(fields["epoch"])
        if len(key) != HEAD_BYTES or epoch < 0 or len(fields["key_id"]) != 16:
            raise ValueError("damaged")
        return SealKey(epoch, key, fields["key_id"])
    except (UnicodeDecodeError, ValueError, KeyError, IndexError) as error:
        raise SealKeyError(f"{path} is not a usable sealing key file ({error})") from None


def create_key_file(path: Path) -> bytes:
    """Create the key file at ``path`` (mode 0600) for epoch 0; return the verification key.

    Raises FileExistsError if anything is at ``path`` (a link included): a key is never
    overwritten, since seals already made with it could no longer be checked.
    """
    verification_key = secrets.token_bytes(HEAD_BYTES)
    record = _render(SealKey(0, verification_key, key_id(verification_key)))
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, PRIVATE_FILE_MODE)
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)  # whatever the umask
        if os.write(fd, record) != len(record):
            raise OSError(errno.EIO, "short write of the sealing key")
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    os.close(fd)
    with contextlib.suppress(OSError):
        fsync_directory(path.parent)
    return verification_key


class SealKeyFile:
    """An open sealing key file (read and written in place, never through a symlink)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as error:
            raise SealKeyError(f"cannot open sealing key {path}: {error.strerror}") from error

    def read(self) -> SealKey:
        try:
            data = os.pread(self._fd, 4096, 0)
        except OSError as error:
            raise SealKeyError(f"cannot read sealing key {self.path}: {error.strerror}") from error
        return _parse(data, self.path)

    def store(self, key: SealKey) -> None:
        """Overwrite the file with ``key`` and flush it to disk; raises OSError on failure."""
        record = _render(key)
        if os.pwrite(self._fd, record, 0) != len(record):
            raise OSError(errno.EIO, "short write of the sealing key")
        os.fdatasync(self._fd)

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> SealKeyFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class SealKeyWatch:
    """Whether a writer has its sealing key: the key file at ``path``, open while it exists.

    ``check`` looks at the path again (a key made by ``seal init`` after the writer started, a
    key removed or replaced); the writer calls it at construction, at each resync and rotation,
    and at most once per ``interval_ns`` otherwise, since a look-up costs a system call.
    A key file that cannot be opened (missing, a symlink, not readable by this user) means no
    sealing: the writers that can read it seal for all.
    """

    def __init__(self, path: Path, interval_ns: int) -> None:
        self.path = path
        self.interval_ns = interval_ns
        self.file: SealKeyFile | None = None
        self.check_due_ns = 0
        self._identity = (-1, -1)

    def check(self, now_ns: int) -> SealKeyFile | None:
        """Look at the key file again; the open key file, or None when there is none."""
        self.check_due_ns = now_ns + self.interval_ns
        try:
            st = os.lstat(self.path)
        except OSError:
            self.close()
            return None
        if self.file is not None and (st.st_dev, st.st_ino) == self._identity:
            return self.file
        self.close()
        try:
            key_file = SealKeyFile(self.path)
        except SealKeyError:
            return None
        opened = os.fstat(key_file.fileno())
        self.file, self._identity = key_file, (opened.st_dev, opened.st_ino)
        return key_file

    def close(self) -> None:
        key_file, self.file, self._identity = self.file, None, (-1, -1)
        if key_file is not None:
            key_file.close()
