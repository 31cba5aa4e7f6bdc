"""The writer: the audit line format, the action catalog and the appender."""

from .appender import AuditWriter
from .catalog import ACTIONS
from .client_ip import client_ip
from .default import default_writer, record, reset_default_writer
from .errors import AuditWriteError
from .line import Event, LineError, decode, encode

__all__ = [
    "ACTIONS",
    "AuditWriteError",
    "AuditWriter",
    "Event",
    "LineError",
    "client_ip",
    "decode",
    "default_writer",
    "encode",
    "record",
    "reset_default_writer",
]
