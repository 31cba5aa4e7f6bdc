"""The process-wide default writer behind ``writer.record``, configured from the settings."""

from __future__ import annotations

import os
import threading
from typing import Any

from trek_audit.settings import Settings

from .appender import AuditWriter
from .line import Event, User

__all__ = ["default_writer", "record", "reset_default_writer"]

_default_writer: AuditWriter | None = None
_default_writer_lock = threading.Lock()


def default_writer() -> AuditWriter:
    """Return the process's default writer, made from ``Settings.from_env()`` on first use."""
    global _default_writer
    current = _default_writer
    if current is not None:
        return current
    with _default_writer_lock:
        if _default_writer is None:
            _default_writer = AuditWriter.from_settings(Settings.from_env())
        return _default_writer


def reset_default_writer() -> None:
    """Close the default writer; the next ``record`` creates a new one from the settings."""
    global _default_writer
    with _default_writer_lock:
        current, _default_writer = _default_writer, None
    if current is not None:
        current.close()


def record(
    action: str,
    *,
    user: User | dict[str, Any] | None = None,
    resource: str | None = None,
    ip: str | None = None,
    details: dict[str, Any] | None = None,
) -> Event:
    """Append one event with the process's default writer; see ``AuditWriter.record``."""
    return default_writer().record(action, user=user, resource=resource, ip=ip, details=details)


def _after_fork_in_child() -> None:
    # The writer object reopens its own files after fork; only the creation lock, which another
    # thread of the parent may have held at the moment of the fork, has to be new.
    global _default_writer_lock
    _default_writer_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
