"""The indexer's side of audit.db: rows, reading positions, counters and gaps, committed together.

Everything one batch changes (its rows and their full-text entries, its rejected lines, the
file's new offset, the chain head, the counters, the gaps, any incident) goes into one
transaction, so a crash at any moment leaves either all of it or none of it: nothing is lost,
nothing indexed twice, no row is visible without being searchable, and the chain resumes
exactly after the last committed line.

The end of each transaction (the full-text entries and the commit, about 60% of its time
during catch-up) runs in a thread of its own while the scanner reads and decodes the next
batch: the sqlite3 module lets go of the GIL while SQLite runs a statement, so the two use
two cores. The next transaction begins only once that commit is done (``settle``).
"""

from __future__ import annotations

import bisect
import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from trek_audit.layout import LOCAL_SOURCE, SOURCE_NAME_PATTERN
from trek_audit.store.schema import fill_full_text, newest_row_id
from trek_audit.writer.chain import GENESIS
from trek_audit.writer.line import SEQ_MAX

from .chain import ChainFollower, ChainState, LastSeal

__all__ = [
    "FileState",
    "Incident",
    "Ledger",
    "LedgerConflict",
    "Occupant",
    "Rejected",
    "Row",
    "SourceBook",
]

log = logging.getLogger(__name__)


class Row(NamedTuple):
    """One event as an audit_log row, in the column order of the insert.

    A tuple, so ``executemany`` takes a batch as it is. Building one costs about 0.3 µs
    more than a plain tuple: measured, under 1% of indexing a line (mostly SQLite's indexes).
    """

    event_id: str
    seq: int
    ts: str
    action: str
    user_id: int | None
    username: str | None
    email: str | None
    resource: str | None
    ip: str | None
    details: str | None  # JSON text
    chain: bytes | None = None  # the chain head after the event's line; None when unknown


class Rejected(NamedTuple):
    """A line that could not be indexed, as a rejected_lines row (``detected`` is added)."""

    file: str  # the file's name when the line was read
    file_key: str | None
    offset: int
    length: int  # newline included
    reason: str
    raw: bytes  # the line without its newline, at most RAW_KEEP bytes of it


class Incident(NamedTuple):
    """A problem beyond a single line (a file truncated or replaced, a chain break)."""

    kind: str
    file: str
    message: str


class Occupant(NamedTuple):
    """Which file (by key and inode) was last seen at a path of the log directory."""

    path: str
    key: str | None
    inode: int


_INSERT_ROW = (
    "INSERT OR IGNORE INTO audit_log "
    "(event_id, seq, ts, action, user_id, username, email, resource, ip, details, chain, source) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '{source}')"
)
_SELECT_ROW = (
    "SELECT id, event_id, seq, ts, action, user_id, username, email, resource, ip, details "
    "FROM audit_log WHERE event_id = ?"
)
_SELECT_CHAIN = (
    "SELECT head, seq, seal_seq, seal_epoch, seal_key_id, seal_head, seal_sound "
    "FROM chain_heads WHERE source = ?"
)
_SAVE_CHAIN = (
    "INSERT OR REPLACE INTO chain_heads "
    "(source, head, seq, seal_seq, seal_epoch, seal_key_id, seal_head, seal_sound) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_REJECTED = (
    'INSERT INTO rejected_lines (file, file_key, "offset", length, reason, raw, detected, source) '
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_INCIDENT = (
    "INSERT INTO incidents (kind, file, message, detected, source) VALUES (?, ?, ?, ?, ?)"
)
_UPSERT_FILE = (
    'INSERT INTO log_files (source, key, path, inode, "offset", first_seq, last_seq, finished, '
    "first_seen, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT(source, key) DO UPDATE SET path = excluded.path, inode = excluded.inode, "
    '"offset" = excluded."offset", '
    "first_seq = excluded.first_seq, last_seq = excluded.last_seq, finished = excluded.finished, "
    "updated = excluded.updated"
)
_SAVE_SOURCE = (
    "INSERT OR REPLACE INTO sources (name, indexed, last_seq, next_seq, rejected, incidents, "
    "duplicates_dropped, last_indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_SELECT_SOURCES = (
    "SELECT name, indexed, last_seq, next_seq, rejected, incidents, duplicates_dropped, "
    "last_indexed_at FROM sources"
)


def _after(seq: int) -> int:
    """The seq expected after ``seq``; SEQ_MAX has none, and SQLite holds nothing larger."""
    return seq + 1 if seq < SEQ_MAX else SEQ_MAX


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class LedgerConflict(RuntimeError):
    """Someone else committed to audit.db since this ledger last read or wrote it.

    Only another indexer does that, and only when the lock was bypassed (its file deleted
    under a running indexer). The ledger has reloaded; the pass must start again from
    what the database holds now.
    """


@dataclass
class FileState:
    """A log file's row in log_files: where reading resumes."""

    key: str
    path: str
    inode: int
    offset: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    finished: bool = False
    first_seen: str = ""
    stored: bool = False  # whether the row exists in the database yet


class _Finish(threading.Thread):
    """Add a batch's full-text entries and commit its transaction, keeping any error."""

    def __init__(self, conn: sqlite3.Connection, rows: int, after: int | None) -> None:
        super().__init__(name="trek-commit")
        self.conn = conn
        self.rows = rows
        self.after = after  # the newest row id before the batch, None when it added no row
        self.began = time.perf_counter()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            if self.after is not None:
                fill_full_text(self.conn, self.after)
            self.conn.execute("COMMIT")
        except BaseException as error:  # raised in the scanner's thread by Ledger.settle
            self.error = error
            return
        log.debug(
            "committed %d rows in %.1f ms", self.rows, (time.perf_counter() - self.began) * 1000
        )


@dataclass
class SourceBook:
    """One source's counters, gaps and chain as the ledger keeps them between commits.

    Each source has its own seq: its gaps, repeats and chain are its own; ``note_seq`` is
    called once per row of the source's next batch, in its order.
    """

    name: str
    chain: ChainFollower
    indexed: int = 0
    last_seq: int = 0
    next_seq: int = 1
    rejected: int = 0
    incidents: int = 0
    duplicates_dropped: int = 0
    last_indexed_at: int = 0  # Unix milliseconds of its last commit that indexed a row
    gap_list: list[list[Any]] = field(default_factory=list)  # [first, last, detected]
    gap_starts: list[int] = field(default_factory=list)
    gaps_dirty: bool = False
    # Which of the seqs noted since the last commit (by their place) were seen before.
    noted: int = 0
    seen_before: set[int] = field(default_factory=set)
    insert_row: str = ""  # the insert of audit rows, with this source's name

    def __post_init__(self) -> None:
        # The name goes into the statement as a literal (no per-row tuple to build for it):
        # only a name of SOURCE_NAME_PATTERN, which needs no quoting, ever gets there.
        if self.name != LOCAL_SOURCE and not SOURCE_NAME_PATTERN.fullmatch(self.name):
            raise ValueError(f"not a source name: {self.name!r}")
        self.insert_row = _INSERT_ROW.format(source=self.name)
        self.gap_starts = [gap[0] for gap in self.gap_list]

    @property
    def gaps(self) -> list[tuple[int, int]]:
        return [(first, last) for first, last, _ in self.gap_list]

    def note_seq(self, seq: int) -> None:
        """Account for an event's seq: advance the expected seq, open a gap, or fill one.

        A seq below the expected one that fills no gap was seen before: ``commit`` checks
        whether the event is the same one read again or another event with the same seq.
        A late line (a shipper delivering older lines after newer ones) fills its gap.
        """
        if seq == self.next_seq:
            self.next_seq = _after(seq)
        elif seq > self.next_seq:
            self._add_gap(self.next_seq, seq - 1)
            self.next_seq = _after(seq)
        elif not self._fill(seq):
            self.seen_before.add(self.noted)
        self.noted += 1
        if seq > self.last_seq:
            self.last_seq = seq

    def _add_gap(self, first: int, last: int) -> None:
        self.gap_list.append([first, last, now_iso()])  # always beyond every existing gap
        self.gap_starts.append(first)
        self.gaps_dirty = True

    def _fill(self, seq: int) -> bool:
        """Take ``seq`` out of the gap it is in (shrunk, split or gone); False when in none."""
        index = bisect.bisect_right(self.gap_starts, seq) - 1
        if index < 0:
            return False
        first, last, detected = self.gap_list[index]
        if seq > last:
            return False
        pieces = [[a, b, detected] for a, b in ((first, seq - 1), (seq + 1, last)) if a <= b]
        self.gap_list[index : index + 1] = pieces
        self.gap_starts[index : index + 1] = [piece[0] for piece in pieces]
        self.gaps_dirty = True
        return True


class Ledger:
    """Counters, gaps and file positions, in memory and in audit.db, kept equal by ``commit``.

    The totals over every source (indexer_state) live here, each source's own state in its
    ``SourceBook`` (``book``). The in-memory side moves on as soon as a batch is handed to
    its commit; ``settle`` waits for that commit, and on failure rolls back, reloads and
    raises. Everything that uses the connection settles first.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.indexed = 0
        self.rejected = 0
        self.incidents = 0
        self.duplicates_dropped = 0
        self.commits = 0  # every commit counts one: tells this ledger's view is still current
        self.books: dict[str, SourceBook] = {}
        self._finishing: _Finish | None = None
        self.reload()

    # -- reading -------------------------------------------------------------------------

    def reload(self) -> None:
        """Forget unsaved changes: read counters, gaps and chains back from the database."""
        self.settle()
        counters = dict(self.conn.execute("SELECT name, value FROM indexer_state").fetchall())
        self.indexed = counters.get("indexed", 0)
        self.rejected = counters.get("rejected", 0)
        self.incidents = counters.get("incidents", 0)
        self.duplicates_dropped = counters.get("duplicates_dropped", 0)
        self.commits = counters.get("commits", 0)
        gaps: dict[str, list[list[Any]]] = {}
        for source, *gap in self.conn.execute(
            "SELECT source, first_seq, last_seq, detected FROM gaps ORDER BY source, first_seq"
        ):
            gaps.setdefault(source, []).append(gap)
        self.books = {}
        for name, *figures in self.conn.execute(_SELECT_SOURCES):
            indexed, last_seq, next_seq, rejected, incidents, dropped, stamp = figures
            self.books[name] = SourceBook(
                name,
                self._load_chain(name),
                indexed,
                last_seq,
                next_seq,
                rejected,
                incidents,
                dropped,
                stamp,
                gaps.pop(name, []),
            )
        for name, found in gaps.items():  # gaps of a source without counters: cannot be
            self.books[name] = SourceBook(name, self._load_chain(name), gap_list=found)

    def book(self, source: str) -> SourceBook:
        """The state of ``source``; a source never indexed before starts empty."""
        found = self.books.get(source)
        if found is None:
            found = self.books[source] = SourceBook(source, self._load_chain(source))
        return found

    def _load_chain(self, source: str) -> ChainFollower:
        row = self.conn.execute(_SELECT_CHAIN, (source,)).fetchone()
        if row is None:
            # Nothing read yet, the chain starts with the first line the indexer reads (if its
            # seq is 1). Lines read before schema version 4 leave the head unknown. Saved
            # with the first batch, whatever it holds.
            read = self.conn.execute(
                'SELECT 1 FROM log_files WHERE source = ? AND "offset" > 0 LIMIT 1', (source,)
            )
            return ChainFollower(ChainState(None if read.fetchone() else GENESIS, 0), changed=True)
        head, seq, seal_seq, seal_epoch, seal_key_id, seal_head, seal_sound = row
        seal = None
        if seal_seq is not None:
            seal = LastSeal(seal_seq, seal_epoch, seal_key_id, seal_head, bool(seal_sound))
        return ChainFollower(ChainState(head, seq, seal))

    def file(self, source: str, key: str) -> FileState | None:
        self.settle()
        row = self.conn.execute(
            'SELECT key, path, inode, "offset", first_seq, last_seq, finished, first_seen '
            "FROM log_files WHERE source = ? AND key = ?",
            (source, key),
        ).fetchone()
        if row is None:
            return None
        key, path, inode, offset, first_seq, last_seq, finished, first_seen = row
        return FileState(
            key, path, inode, offset, first_seq, last_seq, bool(finished), first_seen or "", True
        )

    def occupant(self, source: str, path: str) -> Occupant | None:
        """Return what was last seen at ``path`` of ``source``, or None."""
        self.settle()
        row = self.conn.execute(
            "SELECT key, inode FROM log_paths WHERE source = ? AND path = ?", (source, path)
        ).fetchone()
        return None if row is None else Occupant(path, row[0], row[1])

    def last_incident(self, source: str, file: str) -> str | None:
        """The message of the newest incident about ``file``, None when there is none."""
        self.settle()
        row = self.conn.execute(
            "SELECT message FROM incidents WHERE source = ? AND file = ? ORDER BY id DESC LIMIT 1",
            (source, file),
        ).fetchone()
        return None if row is None else str(row[0])

    # -- writing ---------------------------------------------------------------------------

    def commit(
        self,
        source: str,
        *,
        rows: Sequence[Row] = (),
        rejected: Sequence[Rejected] = (),
        file: FileState | None = None,
        incidents: Sequence[Incident] = (),
        occupant: Occupant | None = None,
    ) -> int:
        """Write one batch of ``source`` and all it changes in one transaction; rows inserted.

        The transaction is finished (full-text entries, commit) in the background: call
        ``settle`` to know it committed. On any error the transaction rolls back and the
        in-memory counters are reloaded. LedgerConflict when another writer committed since
        this ledger's view was taken: the counters and gaps kept here would overwrite its
        work with stale values.
        """
        self.settle()
        conn = self.conn
        book = self.book(source)
        stamp = now_iso()
        newest: int | None = None
        dropped = 0
        try:
            conn.execute("BEGIN IMMEDIATE")
            found = conn.execute(
                "SELECT value FROM indexer_state WHERE name = 'commits'"
            ).fetchone()
            if (found[0] if found else 0) != self.commits:
                raise LedgerConflict(
                    "another indexer committed to this audit database: its lock file was "
                    "deleted or bypassed; starting the pass again from what it holds"
                )
            inserted = 0
            if rows:
                newest = newest_row_id(conn)
                inserted = max(conn.executemany(book.insert_row, rows).rowcount, 0)
                if inserted < len(rows) or book.seen_before:
                    where = file.path if file is not None else "?"
                    found_incidents, dropped = self._duplicates(book, rows, newest, inserted, where)
                    incidents = [*incidents, *found_incidents]
            if rejected:
                conn.executemany(_INSERT_REJECTED, [(*item, stamp, source) for item in rejected])
            if incidents:
                conn.executemany(_INSERT_INCIDENT, [(*item, stamp, source) for item in incidents])
            if book.chain.changed:
                conn.execute(_SAVE_CHAIN, self._chain_row(book))
            if book.gaps_dirty:
                # Bookkeeping, not audit rows: rewritten whole.
                conn.execute("DELETE FROM gaps WHERE source = ?", (source,))
                conn.executemany(
                    "INSERT INTO gaps (source, first_seq, last_seq, detected) VALUES (?, ?, ?, ?)",
                    [(source, *gap) for gap in book.gap_list],
                )
            if file is not None:
                conn.execute(
                    _UPSERT_FILE,
                    (
                        source,
                        file.key,
                        file.path,
                        file.inode,
                        file.offset,
                        file.first_seq,
                        file.last_seq,
                        int(file.finished),
                        file.first_seen or stamp,
                        stamp,
                    ),
                )
            if occupant is not None:
                conn.execute(
                    "INSERT OR REPLACE INTO log_paths (source, path, key, inode, seen) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (source, *occupant, stamp),
                )
            now_ms = int(time.time() * 1000)
            last_indexed_at = now_ms if inserted else book.last_indexed_at
            conn.execute(
                _SAVE_SOURCE,
                (
                    source,
                    book.indexed + inserted,
                    book.last_seq,
                    book.next_seq,
                    book.rejected + len(rejected),
                    book.incidents + len(incidents),
                    book.duplicates_dropped + dropped,
                    last_indexed_at,
                ),
            )
            counters = [
                ("indexed", self.indexed + inserted),
                ("rejected", self.rejected + len(rejected)),
                ("incidents", self.incidents + len(incidents)),
                ("duplicates_dropped", self.duplicates_dropped + dropped),
                ("commits", self.commits + 1),
            ]
            if source == LOCAL_SOURCE:
                # The status's last_seq and next_seq have always been the log directory's.
                counters += [("last_seq", book.last_seq), ("next_seq", book.next_seq)]
            if inserted:
                counters.append(("last_indexed_at", now_ms))
            conn.executemany(
                "INSERT OR REPLACE INTO indexer_state (name, value) VALUES (?, ?)", counters
            )
            finishing = _Finish(conn, len(rows), newest if inserted else None)
            finishing.start()
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self.reload()
            raise
        self._finishing = finishing
        book.noted, book.seen_before = 0, set()
        self.commits += 1
        self.indexed += inserted
        self.rejected += len(rejected)
        self.incidents += len(incidents)
        self.duplicates_dropped += dropped
        book.indexed += inserted
        book.rejected += len(rejected)
        book.incidents += len(incidents)
        book.duplicates_dropped += dropped
        book.last_indexed_at = last_indexed_at
        book.gaps_dirty = False
        book.chain.changed = False
        if file is not None:
            file.stored = True
            if not file.first_seen:
                file.first_seen = stamp
        return inserted

    @staticmethod
    def _chain_row(book: SourceBook) -> tuple[object, ...]:
        state = book.chain.state
        seal = (None, None, None, None, None) if state.seal is None else state.seal
        return (book.name, state.head, state.seq, *seal)

    def _duplicates(
        self, book: SourceBook, rows: Sequence[Row], newest: int, inserted: int, where: str
    ) -> tuple[list[Incident], int]:
        """Incidents for the batch's rows the table did not take as new events; and how many
        of them were the same event read again (dropped, counted, no incident).

        A row whose id the table already holds for a different event is not indexed: said
        here, never dropped silently. The same event read again (every field equal, as when
        a file is read again after a truncation, or a shipper re-reads a renamed file) is
        no incident. A new event with a seq already seen is indexed, and said too: two
        events share the seq.
        """
        incidents: list[Incident] = []
        dropped = 0
        first_of_id: set[str] = set()
        for place, row in enumerate(rows):
            seen_before = place in book.seen_before
            if inserted == len(rows) and not seen_before:
                continue  # the common case: a new event with a new seq
            found = self.conn.execute(_SELECT_ROW, (row.event_id,)).fetchone()
            if found is None:  # cannot be: every row's id is in the table now
                continue
            held = Row(*found[1:])
            taken = found[0] > newest and row.event_id not in first_of_id
            first_of_id.add(row.event_id)
            if not taken:
                # The chain is the indexer's reading, not the event: the same line read again
                # where the head was unknown is the same event.
                if held == row._replace(chain=None):
                    dropped += 1
                else:
                    incidents.append(
                        Incident(
                            "duplicate_id",
                            where,
                            f"event id {row.event_id} (seq {row.seq}, {row.ts}) not indexed: "
                            f"the id is already indexed for a different event (seq {held.seq}, "
                            f"{held.ts})",
                        )
                    )
            elif seen_before:
                incidents.append(
                    Incident(
                        "repeated_seq",
                        where,
                        f"seq {row.seq} repeated: event {row.event_id} ({row.ts}) has the seq "
                        "of an event indexed before it; both are indexed",
                    )
                )
        for incident in incidents:
            log.warning("%s (source %s): %s", incident.kind, book.name, incident.message)
        if dropped:
            log.debug("source %s: %d identical line(s) read again, dropped", book.name, dropped)
        return incidents, dropped

    def settle(self) -> None:
        """Wait until the last batch is committed; if it failed, roll back, reload and raise.

        Until then its rows may be invisible to readers, and the connection is in use.
        """
        finishing, self._finishing = self._finishing, None
        if finishing is None:
            return
        finishing.join()
        if finishing.error is not None:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            self.reload()
            raise finishing.error
