"""The indexer: follows trek.log and its rotations into the audit database."""
