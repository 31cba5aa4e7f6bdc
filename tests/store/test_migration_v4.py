"""Schema version 4 brings a version-3 audit.db over in place: every row stays as it was, with
no chain (the head of those lines is unknown), and the indexer carries on, its chain known
again from the next seal line."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, cast

import sqlite_utils

from trek_audit.indexer import Indexer
from trek_audit.indexer.scanner import event_row
from trek_audit.store import SCHEMA_VERSION, open_database, read_status, schema_version
from trek_audit.store.migrations import MIGRATIONS
from trek_audit.writer.chain import GENESIS, SEAL_ACTION, advance
from trek_audit.writer.line import Event, encode

from .findable import event, unfindable

V3_COLUMNS = "id, event_id, seq, ts, action, user_id, username, email, resource, ip, details"
_V3_INSERT = (
    "INSERT INTO audit_log (event_id, seq, ts, action, user_id, username, email, resource, ip, "
    "details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def version_3_database(data_dir: Path, rows: int) -> None:
    """A version-3 audit.db that has read trek.log (events 1 .. ``rows``) to its end, with the
    rows, full-text entries, counters and position that version's indexer kept."""
    log_file = data_dir / "logs" / "trek.log"
    log_file.parent.mkdir()
    events = [cast(Event, event(seq)) for seq in range(1, rows + 1)]
    log_file.write_bytes(b"".join(encode(item) for item in events))
    conn = sqlite3.connect(data_dir / "audit.db")
    try:
        db = sqlite_utils.Database(conn)
        for number, step in enumerate(MIGRATIONS[:3]):
            step(db)
            conn.execute(f"PRAGMA user_version={number + 1}")
        conn.executemany(_V3_INSERT, [event_row(item)[:-1] for item in events])
        conn.execute("INSERT INTO audit_log_fts (audit_log_fts) VALUES ('rebuild')")
        conn.executemany(
            "UPDATE indexer_state SET value = ? WHERE name = ?",
            [(rows, "indexed"), (rows, "last_seq"), (rows + 1, "next_seq")],
        )
        first_id = events[0]["id"]
        # The file as that indexer knew it: by the id of its first line, read to its end.
        stat = log_file.stat()
        conn.execute(
            'INSERT INTO log_files (key, path, inode, "offset", first_seq, last_seq, finished) '
            "VALUES (?, 'trek.log', ?, ?, 1, ?, 0)",
            (f"id:{first_id}", stat.st_ino, stat.st_size, rows),
        )
        conn.execute(
            "INSERT INTO log_paths (path, key, inode) VALUES ('trek.log', ?, ?)",
            (f"id:{first_id}", stat.st_ino),
        )
        conn.commit()
    finally:
        conn.close()


def rows_of(path: Path, columns: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT {columns} FROM audit_log ORDER BY id").fetchall()  # noqa: S608
    finally:
        conn.close()


def test_migrating_adds_the_chain_in_place_and_keeps_every_row_and_entry(data_dir: Path) -> None:
    version_3_database(data_dir, 400)
    path = data_dir / "audit.db"
    before = rows_of(path, V3_COLUMNS)
    inode = path.stat().st_ino

    conn = open_database(path)
    try:
        assert schema_version(conn) == SCHEMA_VERSION
    finally:
        conn.close()

    assert path.stat().st_ino == inode  # in place, not a new file
    assert rows_of(path, V3_COLUMNS) == before
    assert {chain for (chain,) in rows_of(path, "chain")} == {None}
    assert unfindable(path) == []
    status = read_status(data_dir)
    assert (status["schema_version"], status["indexed"], status["incidents"]) == (
        SCHEMA_VERSION,
        400,
        0,
    )


def test_the_indexer_carries_on_in_a_migrated_database_with_the_chain_from_the_next_seal(
    data_dir: Path,
) -> None:
    version_3_database(data_dir, 300)
    log_file = data_dir / "logs" / "trek.log"
    # The writer's head after seq 300, which this database never knew.
    head = GENESIS
    for raw in log_file.read_bytes().splitlines(keepends=True):
        head = advance(head, raw)
    seal = encode(
        cast(
            Event,
            {
                **event(301),
                "action": SEAL_ACTION,
                "user": None,
                "resource": None,
                "ip": None,
                "details": {
                    "epoch": 0,
                    "first_seq": 301,
                    "last_seq": 300,
                    "prev": head.hex(),
                    "chain": head.hex(),
                    "key_id": "0123456789abcdef",
                    "mac": "00" * 32,
                },
            },
        )
    )
    more = [encode(cast(Event, event(seq))) for seq in range(302, 306)]
    with open(log_file, "ab") as file:
        file.write(seal + b"".join(more))
    heads: dict[int, bytes] = {}
    head = advance(head, seal)
    heads[301] = head
    for seq, raw in zip(range(302, 306), more, strict=True):
        head = advance(head, raw)
        heads[seq] = head

    report = Indexer(data_dir).run_once()

    assert report.rows == 5
    chains = dict(rows_of(data_dir / "audit.db", "seq, chain"))
    assert [seq for seq, chain in chains.items() if chain is None] == list(range(1, 301))
    assert {seq: chains[seq] for seq in heads} == heads
    status = read_status(data_dir)
    assert (status["indexed"], status["gaps"], status["incidents"]) == (305, [], 0)
    assert unfindable(data_dir / "audit.db") == []
