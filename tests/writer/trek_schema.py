"""TREK's own tables, as TREK creates them, for building the databases `import-trek` reads.

Taken from TREK's source:

* ``USERS`` and ``AUDIT_LOG``: mauriceboe/TREK, server/src/db/schema.ts (``createTables``),
  commit 34c751ff8395b7083c4f5bb054e9bafa495fed35. The same audit_log definition is the
  "Audit log" migration of server/src/db/migrations.ts in the fork jubnl/TREK (commit
  189b2572548f9eff2fde03c4caf9b0e727855cad), which is how databases older than the table get it.
* How rows are written: server/src/services/auditLog.ts (``writeAudit``) in jubnl/TREK (commit
  9c403def096588d9ab09f981f71a1f3611ef7580): ``INSERT INTO audit_log (user_id, action,
  resource, details, ip) VALUES (?, ?, ?, ?, ?)`` with ``details`` ``JSON.stringify`` of a
  non-empty object or NULL, and ``created_at`` from its default, ``CURRENT_TIMESTAMP`` (UTC,
  'YYYY-MM-DD HH:MM:SS'). TREK's log line names the user by a look-up in ``users``.

TREK's audit_log has had these seven columns since the migration that made it.
``AUDIT_LOG_WITHOUT_IP_AND_RESOURCE`` is a narrower table of the same name (as a fork or an
early build may have), to show that a missing column reads as NULL.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

USERS = """
CREATE TABLE IF NOT EXISTS users (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  username TEXT UNIQUE NOT NULL,
  email TEXT UNIQUE NOT NULL,
  password_hash TEXT NOT NULL,
  role TEXT NOT NULL DEFAULT 'user',
  maps_api_key TEXT,
  unsplash_api_key TEXT,
  openweather_api_key TEXT,
  avatar TEXT,
  oidc_sub TEXT,
  oidc_issuer TEXT,
  last_login DATETIME,
  mfa_enabled INTEGER DEFAULT 0,
  mfa_secret TEXT,
  mfa_backup_codes TEXT,
  immich_url TEXT,
  immich_access_token TEXT,
  synology_url TEXT,
  synology_username TEXT,
  synology_password TEXT,
  synology_sid TEXT,
  must_change_password INTEGER DEFAULT 0,
  password_version INTEGER NOT NULL DEFAULT 0,
  created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
  updated_at DATETIME DEFAULT CURRENT_TIMESTAMP
);
"""

AUDIT_LOG = """
CREATE TABLE IF NOT EXISTS audit_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
  user_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
  action TEXT NOT NULL,
  resource TEXT,
  details TEXT,
  ip TEXT
);
CREATE INDEX IF NOT EXISTS idx_audit_log_created ON audit_log(created_at DESC);
"""

AUDIT_LOG_WITHOUT_IP_AND_RESOURCE = """
CREATE TABLE IF NOT EXISTS audit_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
  user_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
  action TEXT NOT NULL,
  details TEXT
);
"""


def create_trek_database(path: Path, audit_log: str = AUDIT_LOG) -> sqlite3.Connection:
    """A new TREK database at ``path`` with its users and audit_log tables (caller closes)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA foreign_keys = ON")
    db.executescript(USERS + audit_log)
    return db


def add_user(db: sqlite3.Connection, username: str, email: str) -> int:
    cursor = db.execute(
        "INSERT INTO users (username, email, password_hash) VALUES (?, ?, 'x')", (username, email)
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def write_audit(
    db: sqlite3.Connection,
    action: str,
    user_id: int | None = None,
    resource: str | None = None,
    details: object = None,
    ip: str | None = None,
    created_at: object = None,
) -> int:
    """Insert a row as TREK's writeAudit does (created_at from its default unless given)."""
    columns = ["user_id", "action", "resource", "details", "ip"]
    values: list[object] = [user_id, action, resource, details, ip]
    if created_at is not None:
        columns.append("created_at")
        values.append(created_at)
    present = {row[1] for row in db.execute("PRAGMA table_info(audit_log)")}
    pairs = [(c, v) for c, v in zip(columns, values, strict=True) if c in present]
    names = ", ".join(c for c, _ in pairs)
    marks = ", ".join("?" for _ in pairs)
    cursor = db.execute(
        f"INSERT INTO audit_log ({names}) VALUES ({marks})",  # noqa: S608
        [v for _, v in pairs],
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid
