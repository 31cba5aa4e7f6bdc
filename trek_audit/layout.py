"""The layout of a data directory: every path trek-audit uses in it, and every file mode.

```
<data>/
    logs/               LogDir: trek.log, trek.log.1 .. trek.log.N and nothing else
        .trek-audit/    the writer's state, mode 0750 (02750 with TREK_LOG_GROUP): writer.lock
                        (lock and shared state page), fresh (trek.log's successor, backups=0)
    audit.db            the permanent index (and its -wal, -shm)
    indexer.lock        one indexer per data directory
    serve.json          what `trek-audit serve` knows of its indexer child (running, restarts)
    accounts.db         the panel's accounts and sessions
    secret_key          signs the panel's session cookies
    seal.key            the sealing key (`seal init`), mode 0600: the current epoch's key only
    verify.json         the result of the last `trek-audit verify` of this directory
    ingest.sock         the default socket of `trek-audit ingest`
    sources/<name>/     other sources' log files (other hosts' shipped lines, trek-import):
                        each a LogDir, indexed like logs/ (the source "local")
```

Shippers watch ``logs/trek.log*`` (or ``logs/*``): the writer's state lives in the hidden
subdirectory ``logs/.trek-audit/``, which file globs and shippers' wildcard inputs do not
descend into. With ``TREK_LOG_GROUP`` set, ``logs/`` and its state directory are setgid to
that group (``SETGID_DIR_MODE``), so every log file is created in it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "AUDIT_DB_MODE",
    "DIR_MODE",
    "FRESH_FILE_NAME",
    "LEGACY_WRITER_LOCK_NAME",
    "SETGID_DIR_MODE",
    "WRITER_LOCK_NAME",
    "WRITER_STATE_DIR_NAME",
    "INDEXER_LOCK_MODE",
    "LOG_FILE_MODE",
    "LOG_FILE_NAME",
    "PRIVATE_FILE_MODE",
    "SUPERVISOR_STATE_MODE",
    "SUPERVISOR_STATE_NAME",
    "SEAL_KEY_NAME",
    "LOCAL_SOURCE",
    "TREK_IMPORT_SOURCE",
    "SOURCES_DIR_NAME",
    "SOURCE_NAME_PATTERN",
    "VERIFY_REPORT_NAME",
    "VERIFY_REPORT_MODE",
    "INGEST_SOCKET_NAME",
    "INGEST_SOCKET_MODE",
    "DataDir",
    "LogDir",
]

LOG_FILE_NAME = "trek.log"
# The writer's own files live in this hidden subdirectory of logs/, so that logs/ holds log
# lines only: syslog-ng's wildcard-file(filename-pattern("*")) shipped the binary lock file
# when it sat in logs/, as five lines of garbage.
WRITER_STATE_DIR_NAME = ".trek-audit"
# The writer's lock and shared state page.
WRITER_LOCK_NAME = "writer.lock"
# Used only when backups=0 (trek.log is replaced by a fresh file).
FRESH_FILE_NAME = "fresh"
# Where the lock lived before it moved; the first writer of a new version removes it.
LEGACY_WRITER_LOCK_NAME = ".trek-audit.lock"

# Log files: the writer's user writes, its group (a log shipper) reads.
LOG_FILE_MODE = 0o640
DIR_MODE = 0o750
# logs/ and its state directory with TREK_LOG_GROUP: setgid, so files created in them take
# the directory's group (a shipper's) instead of the writer's primary group.
SETGID_DIR_MODE = 0o2750
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
SOURCES_DIR_NAME = "sources"
# The source name of <data>/logs; other sources are named by their directory in sources/.
LOCAL_SOURCE = "local"
# The source `trek-audit import-trek` writes TREK's own audit_log rows into.
TREK_IMPORT_SOURCE = "trek-import"
# A source's name: a host name or label, as a directory name that needs no quoting anywhere.
SOURCE_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
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
    """A log directory: trek.log, its rotations and the writer's hidden state directory."""

    path: Path

    @property
    def log_file(self) -> Path:
        return self.path / LOG_FILE_NAME

    @property
    def state_dir(self) -> Path:
        return self.path / WRITER_STATE_DIR_NAME

    @property
    def lock_file(self) -> Path:
        return self.state_dir / WRITER_LOCK_NAME

    @property
    def fresh_file(self) -> Path:
        return self.state_dir / FRESH_FILE_NAME

    @property
    def legacy_lock_file(self) -> Path:
        return self.path / LEGACY_WRITER_LOCK_NAME

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

    @property
    def sources_dir(self) -> Path:
        return self.root / SOURCES_DIR_NAME

    def source(self, name: str) -> LogDir:
        """The log directory of source ``name`` (``local`` is <data>/logs).

        ValueError for a name that is not a plain directory name (SOURCE_NAME_PATTERN).
        """
        if name == LOCAL_SOURCE:
            return self.logs
        if not SOURCE_NAME_PATTERN.fullmatch(name):
            raise ValueError(f"not a source name: {name!r} (letters, digits, '.', '_', '-')")
        return LogDir(self.sources_dir / name)
