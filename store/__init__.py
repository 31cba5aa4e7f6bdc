"""audit.db's contract: its schema and migrations, and the reads the panel and the status make.

The indexer writes audit.db through ``schema`` (and the table layout ``migrations`` makes);
everything else only reads it, through this package. Importing it loads neither the
indexer, nor watchdog, nor the writer's appender: a panel worker imports the read side alone.
"""

from .caches import CachedCount, CachedHistogram, CountCache, FilterCache, HistogramCache
from .indexer_lock import holder_pid, is_locked
from .query import AuditQuery
from .schema import SCHEMA_VERSION, connect, migrate, open_database, schema_version
from .search import fts_query
from .status import Status, read_status
from .values import Entry, Filter, Histogram

__all__ = [
    "SCHEMA_VERSION",
    "AuditQuery",
    "CachedCount",
    "CachedHistogram",
    "CountCache",
    "Entry",
    "Filter",
    "FilterCache",
    "Histogram",
    "HistogramCache",
    "Status",
    "connect",
    "fts_query",
    "holder_pid",
    "is_locked",
    "migrate",
    "open_database",
    "read_status",
    "schema_version",
]
