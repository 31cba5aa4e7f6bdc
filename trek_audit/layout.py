"""The layout of a data directory: every path trek-audit uses in it, and every file mode.

```
<data>/
    logs/               LogDir: trek.log, trek.log.1 .. trek.log.N, .trek-audit.lock (writer state)
    audit.db            the permanent index (and its -wal, -shm)
    indexer.lock        one indexer per data directory
    serve.json          what `trek-audit serve` knows of its indexer child (running, restarts)
    accounts.db         the panel's accounts and sessions
    secret_key          signs the panel's session cookies
    seal.key            the sealing key (`seal init`), mode 0600: the current epoch's key only
    verify.json         the result of the last `trek-audit verify` of this directory
    ingest.sock         the default socket of `trek-audit ingest`
```

Shippers watch ``logs/trek.log*``: nothing else the writer makes in ``logs/`` matches that
pattern.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "AUDIT_DB_MODE",
    "DIR_MODE",
    "INDEXER_LOCK_MODE",
    "LOG_FILE_MODE",
    "LOG_FILE_NAME",
    "PRIVATE_FILE_MODE",
    "SUPERVISOR_STATE_MODE",
    "SUPERVISOR_STATE_NAME",
    "SEAL_KEY_NAME",
    "VERIFY_REPORT_NAME",
    "VERIFY_REPORT_MODE",
    "INGEST_SOCKET_NAME",
    "INGEST_SOCKET_MODE",
    "DataDir",
    "LogDir",
]

LOG_FILE_NAME = "trek.log"
# The writer's lock and shared state; never matches trek.log*.
WRITER_LOCK_NAME = ".trek-audit.lock"
# Used only when backups=0 (trek.log is replaced by a fresh file): also outside trek.log*.
FRESH_FILE_NAME = ".trek-audit.fresh"

# Log files: the writer's user writes, its group (a log shipper) reads.
LOG_FILE_MODE = 0o640
DIR_MODE = 0o750
# Password hashes and the cookie key: the owner alone.
PRIVATE_FILE_MODE = 0o600
# The indexer's lock file holds only its pid; `status` and the panel probe it, as the owner
# or as members of its group, like the database.
INDEXER_LOCK_MODE = 0o640
# audit.db holds what the logs hold, so no wider than them; SQLite gives its -wal and -shm
# the mode of the database file.
AUDIT_DB_MODE = 0o640
SUPERVISOR_STATE_NAME = "serve.json"
SEAL_KEY_NAME = "seal.key"
VERIFY_REPORT_NAME = "verify.json"
# The last verify result: read by the panel and by probes, like the database; no secret in it.
VERIFY_REPORT_MODE = 0o640
INGEST_SOCKET_NAME = "ingest.sock"
# The ingest socket: the writer's user and its group (an app in another container) may
# connect; never everyone, since whoever connects can record events.
INGEST_SOCKET_MODE = 0o660
# Read by `status`, the panel and probes, which may run as other users; it holds no secret.
SUPERVISOR_STATE_MODE = 0o644


@dataclass(frozen=True)
class LogDir:
    """A log directory: trek.log, its rotations and the writer's lock file."""

    path: Path

    @property
    def log_file(self) -> Path:
        return self.path / LOG_FILE_NAME

    @property
    def lock_file(self) -> Path:
        return self.path / WRITER_LOCK_NAME

    @property
    def fresh_file(self) -> Path:
        return self.path / FRESH_FILE_NAME

    @property
    def default_seal_key(self) -> Path:
        """Where a writer of this directory looks for the sealing key unless told: beside it."""
        return self.path.parent / SEAL_KEY_NAME

    def rotated(self, number: int) -> Path:
        """trek.log.N (``number`` 0 is trek.log itself)."""
        return self.log_file if number == 0 else self.path / f"{LOG_FILE_NAME}.{number}"


@dataclass(frozen=True)
class DataDir:
    """A data directory, as ``TREK_DATA_DIR`` names it."""

    root: Path

    @property
    def logs(self) -> LogDir:
        return LogDir(self.root / "logs")

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"

    @property
    def audit_db(self) -> Path:
        return self.root / "audit.db"

    @property
    def indexer_lock(self) -> Path:
        return self.root / "indexer.lock"

    @property
    def supervisor_state(self) -> Path:
        return self.root / SUPERVISOR_STATE_NAME

    @property
    def accounts_db(self) -> Path:
        return self.root / "accounts.db"

    @property
    def secret_key(self) -> Path:
        return self.root / "secret_key"

    @property
    def seal_key(self) -> Path:
        return self.root / SEAL_KEY_NAME

    @property
    def verify_report(self) -> Path:
        return self.root / VERIFY_REPORT_NAME

    @property
    def ingest_socket(self) -> Path:
        return self.root / INGEST_SOCKET_NAME
