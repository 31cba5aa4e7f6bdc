"""The steps that build audit.db, one per schema version, oldest first.

Each step runs inside one transaction (see ``schema.migrate``). Audit rows are permanent:
no step drops or rewrites them, nor their full-text entries. A step may drop what is derived
from them and no longer read (version 3: the full-text triggers and three indexes), and add
what is derived from them (version 4: each row's chain head, NULL for the rows before it),
and say where they came from (version 5: each row's source, "local" for the rows before it).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import sqlite_utils

from trek_audit.layout import LOCAL_SOURCE

__all__ = ["MIGRATIONS"]


def _v1(db: sqlite_utils.Database) -> None:
    db["audit_log"].create(  # type: ignore[union-attr]
        {
            "id": int,
            "event_id": str,
            "seq": int,
            "ts": str,
            "action": str,
            "user_id": int,
            "username": str,
            "email": str,
            "resource": str,
            "ip": str,
            "details": str,
        },
        pk="id",
        not_null={"event_id", "ts", "action"},
    )
    audit = db["audit_log"]
    audit.create_index(["event_id"], index_name="audit_log_event_id", unique=True)  # type: ignore[union-attr]
    # Every page is newest first by id; each filter gets an index that ends in id so a
    # filtered page is a range scan in id order, not a sort.
    for columns in (
        ["action", "id"],
        ["user_id", "id"],
        ["username", "id"],
        ["email", "id"],
        ["ip", "id"],
        ["ts", "id"],
        ["seq"],
    ):
        audit.create_index(columns, index_name="audit_log_" + "_".join(columns))  # type: ignore[union-attr]
    audit.enable_fts(  # type: ignore[union-attr]
        ["action", "username", "email", "resource", "ip", "details"],
        fts_version="FTS5",
        create_triggers=True,
    )

    # One row per log file the indexer has seen. A file is known by its key (the id of
    # its first line, see log_files.file_key), never by its path or inode alone.
    db["log_files"].create(  # type: ignore[union-attr]
        {
            "key": str,
            "path": str,
            "inode": int,
            "offset": int,
            "first_seq": int,
            "last_seq": int,
            "finished": int,
            "first_seen": str,
            "updated": str,
        },
        pk="key",
        not_null={"offset"},
        defaults={"offset": 0, "finished": 0},
    )
    db["rejected_lines"].create(  # type: ignore[union-attr]
        {
            "id": int,
            "file": str,
            "offset": int,
            "length": int,
            "reason": str,
            "raw": bytes,
            "detected": str,
        },
        pk="id",
        not_null={"file", "offset", "reason"},
    )
    db["gaps"].create(  # type: ignore[union-attr]
        {"first_seq": int, "last_seq": int, "detected": str},
        pk="first_seq",
        not_null={"last_seq"},
    )
    # Problems that are not a single line: truncation, replacement, lost files.
    db["incidents"].create(  # type: ignore[union-attr]
        {"id": int, "kind": str, "file": str, "message": str, "detected": str},
        pk="id",
        not_null={"kind", "message"},
    )
    # Counters kept in the same transaction as the rows they describe, so the panel never
    # counts the whole table: indexed, last_seq, next_seq.
    db["indexer_state"].create({"name": str, "value": int}, pk="name")  # type: ignore[union-attr]
    db["indexer_state"].insert_all(  # type: ignore[union-attr]
        [
            {"name": "indexed", "value": 0},
            {"name": "last_seq", "value": 0},
            {"name": "next_seq", "value": 1},
        ]
    )


def _v2(db: sqlite_utils.Database) -> None:
    # More counters so that status never counts a table: rejected lines, incidents and the
    # time of the last commit that indexed something (Unix milliseconds).
    conn = db.conn
    conn.execute(
        "INSERT OR IGNORE INTO indexer_state (name, value) "
        "SELECT 'rejected', count(*) FROM rejected_lines"
    )
    conn.execute(
        "INSERT OR IGNORE INTO indexer_state (name, value) "
        "SELECT 'incidents', count(*) FROM incidents"
    )
    conn.execute("INSERT OR IGNORE INTO indexer_state (name, value) VALUES ('last_indexed_at', 0)")
    # What was last seen at each log path (key and inode), to tell a rename from a
    # truncation or replacement in place.
    db["log_paths"].create(  # type: ignore[union-attr]
        {"path": str, "key": str, "inode": int, "seen": str},
        pk="path",
    )
    # Which file a rejected line came from, by key: names move on every rotation.
    conn.execute("ALTER TABLE rejected_lines ADD COLUMN file_key TEXT")


def _v3(db: sqlite_utils.Database) -> None:
    # The indexer fills audit_log_fts once per batch (schema.fill_full_text), in the batch's
    # transaction: the per-row triggers cost most of catch-up (16,500 rows/s with them,
    # 51,500 without, measured on 200,000 events). Rows are never updated or deleted, so
    # the update and delete triggers go too. The entries the triggers made stay as they are.
    conn = db.conn
    for trigger in ("audit_log_ai", "audit_log_au", "audit_log_ad"):
        conn.execute(f'DROP TRIGGER IF EXISTS "{trigger}"')
    # Nothing looks rows up by seq (gaps are found from the ledger's counters), and the
    # username and email filters go through the full-text index: see the README's design
    # notes for what each remaining index serves.
    for index in ("audit_log_seq", "audit_log_username_id", "audit_log_email_id"):
        conn.execute(f'DROP INDEX IF EXISTS "{index}"')


def _v4(db: sqlite_utils.Database) -> None:
    # The hash chain of the log (writer/chain.py): each row keeps the head after its line,
    # NULL where the indexer did not know it. ADD COLUMN changes only the table's definition,
    # so a database of millions of rows is migrated in place in a moment.
    conn = db.conn
    conn.execute("ALTER TABLE audit_log ADD COLUMN chain BLOB")
    # The indexer's running head per log directory, and the last seal line it read (its seq,
    # epoch, key and the head after it), committed with the reading positions so that a
    # restart resumes the chain exactly where the committed rows end. The indexer adds the
    # row when it first reads: it alone knows where the chain starts.
    db["chain_heads"].create(  # type: ignore[union-attr]
        {
            "log_dir": str,
            "head": bytes,
            "seq": int,
            "seal_seq": int,
            "seal_epoch": int,
            "seal_key_id": str,
            "seal_head": bytes,
            "seal_sound": int,  # 0 when that seal was a chain break
        },
        pk="log_dir",
        not_null={"seq"},
    )


def _v5(db: sqlite_utils.Database) -> None:
    # Many sources (<data>/logs is "local", each <data>/sources/<name>/ another), each with
    # its own seq: a row says which it came from. ADD COLUMN with a constant default changes
    # only the table's definition: millions of rows are migrated in a moment, all "local".
    conn = db.conn
    local = f"'{LOCAL_SOURCE}'"
    conn.execute(
        f"ALTER TABLE audit_log ADD COLUMN source TEXT NOT NULL DEFAULT {local}"  # noqa: S608
    )
    # The panel's source filter: a range scan in id order, like every other filter.
    conn.execute("CREATE INDEX audit_log_source_id ON audit_log (source, id)")
    # Positions, what was at each path, and gaps are per source, so the source is part of
    # their key: these small bookkeeping tables are rebuilt (never audit rows).
    _rekey(
        conn,
        "log_files",
        '"key" TEXT NOT NULL, path TEXT, inode INTEGER, "offset" INTEGER NOT NULL DEFAULT 0, '
        "first_seq INTEGER, last_seq INTEGER, finished INTEGER DEFAULT 0, first_seen TEXT, "
        'updated TEXT, PRIMARY KEY (source, "key")',
        '"key", path, inode, "offset", first_seq, last_seq, finished, first_seen, updated',
    )
    _rekey(
        conn,
        "log_paths",
        "path TEXT NOT NULL, key TEXT, inode INTEGER, seen TEXT, PRIMARY KEY (source, path)",
        "path, key, inode, seen",
    )
    _rekey(
        conn,
        "gaps",
        "first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL, detected TEXT, "
        "PRIMARY KEY (source, first_seq)",
        "first_seq, last_seq, detected",
    )
    for table in ("incidents", "rejected_lines"):
        conn.execute(
            f"ALTER TABLE {table} ADD COLUMN source TEXT NOT NULL DEFAULT {local}"  # noqa: S608
        )
    # One chain per source; the one log directory's row was keyed "logs".
    conn.execute("ALTER TABLE chain_heads RENAME COLUMN log_dir TO source")
    conn.execute("UPDATE chain_heads SET source = ? WHERE source = 'logs'", (LOCAL_SOURCE,))
    # Each source's counters, kept in the same transaction as its rows like indexer_state's
    # totals (which stay: the sum over the sources, and last_seq/next_seq of "local").
    conn.execute(
        "CREATE TABLE sources (name TEXT PRIMARY KEY, indexed INTEGER NOT NULL DEFAULT 0, "
        "last_seq INTEGER NOT NULL DEFAULT 0, next_seq INTEGER NOT NULL DEFAULT 1, "
        "rejected INTEGER NOT NULL DEFAULT 0, incidents INTEGER NOT NULL DEFAULT 0, "
        "duplicates_dropped INTEGER NOT NULL DEFAULT 0, "
        "last_indexed_at INTEGER NOT NULL DEFAULT 0)"
    )
    counters = dict(conn.execute("SELECT name, value FROM indexer_state").fetchall())
    conn.execute(
        "INSERT INTO sources (name, indexed, last_seq, next_seq, rejected, incidents, "
        "last_indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            LOCAL_SOURCE,
            counters.get("indexed", 0),
            counters.get("last_seq", 0),
            counters.get("next_seq", 1),
            counters.get("rejected", 0),
            counters.get("incidents", 0),
            counters.get("last_indexed_at", 0),
        ),
    )
    # Identical lines read again (a shipper re-reading a renamed file), dropped and counted.
    conn.execute(
        "INSERT OR IGNORE INTO indexer_state (name, value) VALUES ('duplicates_dropped', 0)"
    )


def _rekey(conn: sqlite3.Connection, table: str, columns: str, kept: str) -> None:
    """Rebuild ``table`` with a leading ``source`` column, its rows all of "local"."""
    conn.execute(f'ALTER TABLE "{table}" RENAME TO "{table}_v4"')
    conn.execute(
        f"CREATE TABLE \"{table}\" (source TEXT NOT NULL DEFAULT '{LOCAL_SOURCE}', {columns})"
    )
    conn.execute(
        f'INSERT INTO "{table}" (source, {kept}) '  # noqa: S608 - fixed names
        f'SELECT ?, {kept} FROM "{table}_v4"',
        (LOCAL_SOURCE,),
    )
    conn.execute(f'DROP TABLE "{table}_v4"')


# Step N (0-based) takes a database from version N to N + 1.
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1, _v2, _v3, _v4, _v5]
