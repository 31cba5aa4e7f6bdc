"""trek-audit: the audit log of TREK, log file first.

The public Python API, importable from here::

    from trek_audit import AuditWriter, AuditWriteError, record, Settings

Names are imported on first use (PEP 562), so ``import trek_audit`` costs nothing and a
command-line call loads only the component it runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .indexer import Indexer, IndexerBusy, read_status
    from .layout import DataDir, LogDir
    from .settings import Settings
    from .webui import create_app
    from .writer import (
        ACTIONS,
        AuditWriteError,
        AuditWriter,
        Event,
        LineError,
        client_ip,
        decode,
        default_writer,
        encode,
        record,
        reset_default_writer,
    )

_EXPORTS = {
    "ACTIONS": "trek_audit.writer",
    "AuditWriteError": "trek_audit.writer",
    "AuditWriter": "trek_audit.writer",
    "Event": "trek_audit.writer",
    "LineError": "trek_audit.writer",
    "client_ip": "trek_audit.writer",
    "decode": "trek_audit.writer",
    "default_writer": "trek_audit.writer",
    "encode": "trek_audit.writer",
    "record": "trek_audit.writer",
    "reset_default_writer": "trek_audit.writer",
    "DataDir": "trek_audit.layout",
    "LogDir": "trek_audit.layout",
    "Settings": "trek_audit.settings",
    "Indexer": "trek_audit.indexer",
    "IndexerBusy": "trek_audit.indexer",
    "read_status": "trek_audit.indexer",
    "create_app": "trek_audit.webui",
}

__all__ = [
    "ACTIONS",
    "AuditWriteError",
    "AuditWriter",
    "DataDir",
    "Event",
    "Indexer",
    "IndexerBusy",
    "LineError",
    "LogDir",
    "Settings",
    "client_ip",
    "create_app",
    "decode",
    "default_writer",
    "encode",
    "read_status",
    "record",
    "reset_default_writer",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'trek_audit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
