"""The key that signs session cookies, when TREK_SECRET_KEY is unset: kept in <data>/secret_key."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from pathlib import Path

from trek_audit.layout import PRIVATE_FILE_MODE
from trek_audit.store.files import NotARegularFile, open_private

__all__ = ["SecretKeyError", "load_or_create_secret_key"]

log = logging.getLogger(__name__)

# Shorter than this is no secret (a key made here has 64 characters).
_MIN_KEY_LENGTH = 32
# Any permission bit beyond the owner's.
_OTHERS_BITS = 0o777 & ~PRIVATE_FILE_MODE


class SecretKeyError(ValueError):
    """The secret key file cannot be used; the message says what to do."""


def _read_secret_key(path: Path) -> str:
    """Read the key, first making the file private: whoever reads it can sign any session."""
    try:
        # Never through a link: its target's mode would be changed and its text taken as a key.
        fd = open_private(path, os.O_RDONLY, PRIVATE_FILE_MODE)
    except NotARegularFile as error:
        raise SecretKeyError(f"{error.strerror}; remove it or set TREK_SECRET_KEY") from None
    with os.fdopen(fd, encoding="ascii") as file:
        mode = os.fstat(file.fileno()).st_mode
        if mode & _OTHERS_BITS:
            try:
                os.fchmod(file.fileno(), PRIVATE_FILE_MODE)
            except OSError as error:
                log.warning("%s can be read by others and cannot be made private: %s", path, error)
            else:
                log.warning(
                    "%s could be read by others; its mode is now %04o", path, PRIVATE_FILE_MODE
                )
        key = file.read().strip()
    if len(key) < _MIN_KEY_LENGTH:
        raise SecretKeyError(
            f"{path} holds no usable key ({len(key)} characters, at least {_MIN_KEY_LENGTH} "
            "needed): delete it to have a new one made, or set TREK_SECRET_KEY"
        )
    return key


def load_or_create_secret_key(path: Path) -> str:
    """Return the key stored at ``path``, creating it (private to its owner) when it does not exist.

    The key is written to a temporary file and hard-linked into place, so concurrent
    workers starting together agree on one key and nobody reads a half-written file.
    An existing file readable by others is made private; one without a usable key
    raises SecretKeyError (an empty key would leave the panel without sessions).
    """
    try:
        return _read_secret_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_urlsafe(48) + "\n")
            out.flush()
            os.fsync(out.fileno())
        # When another process won the race, its key stands.
        with contextlib.suppress(FileExistsError):
            os.link(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return _read_secret_key(path)
