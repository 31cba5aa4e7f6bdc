"""The indexer: follows trek.log and its rotations into the audit database, exactly once."""

from trek_audit.indexer.follower import Indexer
from trek_audit.indexer.lock import IndexerBusy
from trek_audit.indexer.scanner import ScanReport
from trek_audit.indexer.status import read_status

__all__ = ["Indexer", "IndexerBusy", "ScanReport", "read_status"]
