"""Schema version 5 brings a version-4 audit.db over in place: every row stays, of the source
"local"; positions, gaps, incidents and the chain head become the local source's, so the
indexer carries on where it stopped, reading nothing twice."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import cast

import sqlite_utils

from trek_audit.indexer import Indexer
from trek_audit.indexer.scanner import event_row
from trek_audit.store import SCHEMA_VERSION, open_database, read_status, schema_version
from trek_audit.store.migrations import MIGRATIONS
from trek_audit.writer.line import Event, encode

from .findable import event, unfindable
from .test_migration_v4 import rows_of

V4_COLUMNS = "id, event_id, seq, ts, action, user_id, username, email, resource, ip, details, chain"
_V4_INSERT = (
    "INSERT INTO audit_log (event_id, seq, ts, action, user_id, username, email, resource, ip, "
    "details, chain) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def version_4_database(data_dir: Path, rows: int) -> None:
    """A version-4 audit.db that has read trek.log (events 1 .. ``rows``, seq 5 missing) to
    its end, with one incident, its chain head row keyed "logs", counters and position."""
    log_file = data_dir / "logs" / "trek.log"
    log_file.parent.mkdir()
    events = [cast(Event, event(seq)) for seq in range(1, rows + 1) if seq != 5]
    log_file.write_bytes(b"".join(encode(item) for item in events))
    conn = sqlite3.connect(data_dir / "audit.db")
    try:
        db = sqlite_utils.Database(conn)
        for number, step in enumerate(MIGRATIONS[:4]):
            step(db)
            conn.execute(f"PRAGMA user_version={number + 1}")
        conn.executemany(_V4_INSERT, [event_row(item, b"\x01" * 32) for item in events])
        conn.execute("INSERT INTO audit_log_fts (audit_log_fts) VALUES ('rebuild')")
        conn.executemany(
            "UPDATE indexer_state SET value = ? WHERE name = ?",
            [(len(events), "indexed"), (rows, "last_seq"), (rows + 1, "next_seq")],
        )
        conn.execute("INSERT OR REPLACE INTO indexer_state VALUES ('incidents', 1)")
        conn.execute("INSERT INTO gaps (first_seq, last_seq, detected) VALUES (5, 5, 'then')")
        conn.execute(
            "INSERT INTO incidents (kind, file, message, detected) "
            "VALUES ('truncated', 'trek.log', 'it was', 'then')"
        )
        conn.execute(
            "INSERT INTO chain_heads (log_dir, head, seq) VALUES ('logs', ?, ?)",
            (b"\x01" * 32, rows),
        )
        key, stat = f"id:{events[0]['id']}", log_file.stat()
        conn.execute(
            'INSERT INTO log_files (key, path, inode, "offset", first_seq, last_seq, finished) '
            "VALUES (?, 'trek.log', ?, ?, 1, ?, 0)",
            (key, stat.st_ino, stat.st_size, rows),
        )
        conn.execute(
            "INSERT INTO log_paths (path, key, inode) VALUES ('trek.log', ?, ?)",
            (key, stat.st_ino),
        )
        conn.commit()
    finally:
        conn.close()


def test_migrating_adds_the_source_in_place_and_keeps_every_row_as_local(data_dir: Path) -> None:
    version_4_database(data_dir, 300)
    path = data_dir / "audit.db"
    before = rows_of(path, V4_COLUMNS)
    inode = path.stat().st_ino

    conn = open_database(path)
    try:
        assert schema_version(conn) == SCHEMA_VERSION == 5
        heads = conn.execute("SELECT source, seq FROM chain_heads").fetchall()
        incidents = conn.execute("SELECT source, kind FROM incidents").fetchall()
        gaps = conn.execute("SELECT source, first_seq, last_seq FROM gaps").fetchall()
        files = conn.execute("SELECT source, path FROM log_files").fetchall()
    finally:
        conn.close()

    assert path.stat().st_ino == inode  # in place, not a new file
    assert rows_of(path, V4_COLUMNS) == before
    assert {source for (source,) in rows_of(path, "source")} == {"local"}
    assert heads == [("local", 300)]
    assert (incidents, gaps, files) == (
        [("local", "truncated")],
        [("local", 5, 5)],
        [("local", "trek.log")],
    )
    assert unfindable(path) == []
    status = read_status(data_dir)
    assert (status["schema_version"], status["indexed"], status["missing"]) == (5, 299, 1)
    (local,) = status["sources"]
    assert (local["name"], local["indexed"], local["last_seq"], local["incidents"]) == (
        "local",
        299,
        300,
        1,
    )
    assert (local["gaps"], local["lag_bytes"]) == ([[5, 5]], 0)


def test_the_indexer_carries_on_in_a_migrated_database_reading_nothing_twice(
    data_dir: Path,
) -> None:
    version_4_database(data_dir, 200)
    with open(data_dir / "logs" / "trek.log", "ab") as file:
        file.write(b"".join(encode(cast(Event, event(seq))) for seq in range(201, 211)))
    sources = data_dir / "sources" / "web1"
    sources.mkdir(parents=True)
    (sources / "trek.log").write_bytes(b"".join(encode(cast(Event, event(s))) for s in (1, 2)))

    report = Indexer(data_dir).run_once()

    assert (report.rows, report.sources["local"].rows, report.sources["web1"].rows) == (12, 10, 2)
    status = read_status(data_dir)
    assert (status["indexed"], status["gaps"], status["incidents"]) == (211, [[5, 5]], 1)
    assert status["duplicates_dropped"] == 0
    assert [source["indexed"] for source in status["sources"]] == [209, 2]
