"""The indexer: follows trek.log and its rotations into the audit database, exactly once."""

from trek_audit.store.status import read_status

from .follower import Indexer
from .lock import IndexerBusy
from .scanner import ScanReport

__all__ = ["Indexer", "IndexerBusy", "ScanReport", "read_status"]
