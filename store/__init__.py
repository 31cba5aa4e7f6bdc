"""audit.db's contract: its schema and migrations, and the reads the panel and the status make.

The indexer writes audit.db through ``schema`` (and the table layout ``migrations`` makes);
everything else only reads it, through this package. Importing it loads neither the
indexer, nor watchdog, nor the writer's appender: a panel worker imports the read side alone.
"""

from .caches import (
    CachedCount,
    CachedHistogram,
    CountCache,
    FacetCache,
    FilterCache,
    HistogramCache,
)
from .facets import FACET_FIELDS, Facet, FacetValue
from .indexer_lock import holder_pid, is_locked
from .ip_patterns import IpPattern, parse_ip_pattern
from .query import AuditQuery
from .schema import SCHEMA_VERSION, connect, migrate, open_database, schema_version
from .search import fts_query
from .status import Status, read_status
from .values import FILTER_FIELDS, Entry, Filter, Histogram

__all__ = [
    "FACET_FIELDS",
    "FILTER_FIELDS",
    "SCHEMA_VERSION",
    "AuditQuery",
    "CachedCount",
    "CachedHistogram",
    "CountCache",
    "Entry",
    "Facet",
    "FacetCache",
    "FacetValue",
    "Filter",
    "FilterCache",
    "Histogram",
    "HistogramCache",
    "IpPattern",
    "Status",
    "connect",
    "fts_query",
    "holder_pid",
    "is_locked",
    "migrate",
    "open_database",
    "parse_ip_pattern",
    "read_status",
    "schema_version",
]
