"""Schema version 3 brings a version-2 audit.db over in place: triggers and unread indexes go,
every row and its full-text entries stay, and the indexer carries on where it was."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, cast

import pytest
import sqlite_utils

from trek_audit.indexer import Indexer
from trek_audit.indexer.scanner import event_row
from trek_audit.store import (
    SCHEMA_VERSION,
    connect,
    migrate,
    open_database,
    read_status,
    schema_version,
)
from trek_audit.store import migrations as migrations_module
from trek_audit.store.migrations import MIGRATIONS
from trek_audit.writer.line import Event

from .findable import append, event, unfindable

# audit.db as version 2 made it, as sqlite_master holds it but for line breaks (a test below
# checks that it still matches the first two migration steps); the full-text index is kept
# by the three triggers.
V2_SCHEMA = """
CREATE TABLE "audit_log" (
   "id" INTEGER PRIMARY KEY,
   "event_id" TEXT NOT NULL,
   "seq" INTEGER,
   "ts" TEXT NOT NULL,
   "action" TEXT NOT NULL,
   "user_id" INTEGER,
   "username" TEXT,
   "email" TEXT,
   "resource" TEXT,
   "ip" TEXT,
   "details" TEXT
);
CREATE UNIQUE INDEX "audit_log_event_id"
    ON "audit_log" ("event_id");
CREATE INDEX "audit_log_action_id"
    ON "audit_log" ("action", "id");
CREATE INDEX "audit_log_user_id_id"
    ON "audit_log" ("user_id", "id");
CREATE INDEX "audit_log_username_id"
    ON "audit_log" ("username", "id");
CREATE INDEX "audit_log_email_id"
    ON "audit_log" ("email", "id");
CREATE INDEX "audit_log_ip_id"
    ON "audit_log" ("ip", "id");
CREATE INDEX "audit_log_ts_id"
    ON "audit_log" ("ts", "id");
CREATE INDEX "audit_log_seq"
    ON "audit_log" ("seq");
CREATE VIRTUAL TABLE "audit_log_fts" USING FTS5 (
    "action", "username", "email", "resource", "ip", "details",
    content="audit_log"
);
CREATE TRIGGER "audit_log_ai" AFTER INSERT ON "audit_log" BEGIN
  INSERT INTO "audit_log_fts" (rowid, "action", "username", "email", "resource", "ip",
    "details") VALUES (new.rowid, new."action", new."username", new."email", new."resource",
    new."ip", new."details");
END;
CREATE TRIGGER "audit_log_ad" AFTER DELETE ON "audit_log" BEGIN
  INSERT INTO "audit_log_fts" ("audit_log_fts", rowid, "action", "username", "email",
    "resource", "ip", "details") VALUES('delete', old.rowid, old."action", old."username",
    old."email", old."resource", old."ip", old."details");
END;
CREATE TRIGGER "audit_log_au" AFTER UPDATE ON "audit_log" BEGIN
  INSERT INTO "audit_log_fts" ("audit_log_fts", rowid, "action", "username", "email",
    "resource", "ip", "details") VALUES('delete', old.rowid, old."action", old."username",
    old."email", old."resource", old."ip", old."details");
  INSERT INTO "audit_log_fts" (rowid, "action", "username", "email", "resource", "ip",
    "details") VALUES (new.rowid, new."action", new."username", new."email", new."resource",
    new."ip", new."details");
END;
CREATE TABLE "log_files" (
   "key" TEXT PRIMARY KEY,
   "path" TEXT,
   "inode" INTEGER,
   "offset" INTEGER NOT NULL DEFAULT 0,
   "first_seq" INTEGER,
   "last_seq" INTEGER,
   "finished" INTEGER DEFAULT 0,
   "first_seen" TEXT,
   "updated" TEXT
);
CREATE TABLE "rejected_lines" (
   "id" INTEGER PRIMARY KEY,
   "file" TEXT NOT NULL,
   "offset" INTEGER NOT NULL,
   "length" INTEGER,
   "reason" TEXT NOT NULL,
   "raw" BLOB,
   "detected" TEXT
, file_key TEXT);
CREATE TABLE "gaps" (
   "first_seq" INTEGER PRIMARY KEY,
   "last_seq" INTEGER NOT NULL,
   "detected" TEXT
);
CREATE TABLE "incidents" (
   "id" INTEGER PRIMARY KEY,
   "kind" TEXT NOT NULL,
   "file" TEXT,
   "message" TEXT NOT NULL,
   "detected" TEXT
);
CREATE TABLE "indexer_state" (
   "name" TEXT PRIMARY KEY,
   "value" INTEGER
);
CREATE TABLE "log_paths" (
   "path" TEXT PRIMARY KEY,
   "key" TEXT,
   "inode" INTEGER,
   "seen" TEXT
);
INSERT INTO indexer_state (name, value) VALUES
    ('indexed', 0), ('last_seq', 0), ('next_seq', 1),
    ('rejected', 0), ('incidents', 0), ('last_indexed_at', 0);
PRAGMA user_version = 2;
"""

INSERT_ROW = (
    "INSERT INTO audit_log (event_id, seq, ts, action, user_id, username, email, resource, ip, "
    "details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
V2_COLUMNS = "id, event_id, seq, ts, action, user_id, username, email, resource, ip, details"
KEPT_INDEXES = {
    "audit_log_event_id",
    "audit_log_action_id",
    "audit_log_user_id_id",
    "audit_log_ip_id",
    "audit_log_ts_id",
    "audit_log_source_id",
}


def version_2_database(path: Path, rows: int) -> None:
    """A version-2 audit.db holding events 1 .. ``rows``, inserted as that version's indexer
    did (its triggers adding their full-text entries), with its ``indexed`` counter."""
    conn = sqlite3.connect(path)
    try:
        conn.executescript(V2_SCHEMA)
        with conn:
            # A row but its chain, a column since version 4.
            conn.executemany(
                INSERT_ROW, [event_row(cast(Event, event(seq)))[:-1] for seq in range(1, rows + 1)]
            )
            conn.executemany(
                "UPDATE indexer_state SET value = ? WHERE name = ?",
                [(rows, "indexed"), (rows, "last_seq"), (rows + 1, "next_seq")],
            )
    finally:
        conn.close()


def objects(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """What sqlite_master lists, its SQL with every run of white space made one space."""
    listed = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")
    return [(kind, name, table, sql and " ".join(sql.split())) for kind, name, table, sql in listed]


def test_the_version_2_schema_here_is_the_one_the_first_two_steps_make(tmp_path: Path) -> None:
    made = sqlite3.connect(tmp_path / "made.db")
    db = sqlite_utils.Database(made)
    for step in MIGRATIONS[:2]:
        step(db)
    made.commit()
    kept = sqlite3.connect(":memory:")
    kept.executescript(V2_SCHEMA)
    try:
        assert objects(kept) == objects(made)
        assert kept.execute("SELECT * FROM indexer_state ORDER BY name").fetchall() == (
            made.execute("SELECT * FROM indexer_state ORDER BY name").fetchall()
        )
    finally:
        made.close()
        kept.close()


def test_migrating_drops_the_triggers_and_unread_indexes_and_keeps_rows_and_entries(
    data_dir: Path,
) -> None:
    path = data_dir / "audit.db"
    version_2_database(path, 500)
    before = sqlite3.connect(path)
    rows_before = before.execute("SELECT * FROM audit_log ORDER BY id").fetchall()
    before.close()

    conn = open_database(path)
    try:
        assert schema_version(conn) == SCHEMA_VERSION  # and on through the later steps
        kinds = conn.execute(
            "SELECT type, name FROM sqlite_master WHERE tbl_name = 'audit_log' AND sql IS NOT NULL"
        ).fetchall()
        # Every column version 2 had (version 4 adds the chain) holds what it held.
        kept = conn.execute(f"SELECT {V2_COLUMNS} FROM audit_log ORDER BY id").fetchall()  # noqa: S608
        assert kept == rows_before
    finally:
        conn.close()
    assert {name for kind, name in kinds if kind == "trigger"} == set()
    assert {name for kind, name in kinds if kind == "index"} == KEPT_INDEXES
    assert unfindable(path) == []
    assert read_status(data_dir)["indexed"] == 500


def test_the_indexer_carries_on_in_a_migrated_database(data_dir: Path) -> None:
    version_2_database(data_dir / "audit.db", 300)
    logs = data_dir / "logs"
    logs.mkdir()
    append(logs / "trek.log", range(301, 701))
    report = Indexer(data_dir, batch_size=128).run_once()
    assert report.rows == 400
    status = read_status(data_dir)
    assert (status["schema_version"], status["indexed"], status["gaps"]) == (
        SCHEMA_VERSION,
        700,
        [],
    )
    assert unfindable(data_dir / "audit.db") == []


def test_a_failed_migration_leaves_the_version_2_database_as_it_was(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = data_dir / "audit.db"
    version_2_database(path, 50)
    conn = connect(path)
    before = objects(conn)

    def fail_half_way(db: sqlite_utils.Database) -> None:
        MIGRATIONS[2](db)
        raise OSError("disk full")

    monkeypatch.setattr(migrations_module, "MIGRATIONS", [*MIGRATIONS[:2], fail_half_way])
    monkeypatch.setattr("trek_audit.store.schema.MIGRATIONS", migrations_module.MIGRATIONS)
    try:
        with pytest.raises(OSError, match="disk full"):
            migrate(conn)
        assert schema_version(conn) == 2
        assert objects(conn) == before
        monkeypatch.undo()
        migrate(conn)  # the next start migrates it whole, and nothing was lost
    finally:
        conn.close()
    assert unfindable(path) == []
