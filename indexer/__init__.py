"""The indexer: follows trek.log and its rotations into the audit database, exactly once."""

from indexer.follower import Indexer
from indexer.lock import IndexerBusy
from indexer.scanner import ScanReport
from indexer.status import read_status

__all__ = ["Indexer", "IndexerBusy", "ScanReport", "read_status"]
