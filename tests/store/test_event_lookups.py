"""One event: found by its id, with its neighbours, its seal, and its line in the log file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from trek_audit.layout import DataDir
from trek_audit.store import AuditQuery, Entry, Filter, event_lines
from trek_audit.store.event_lines import LineLocation, locate_line
from trek_audit.writer.chain import SEAL_ACTION
from trek_audit.writer.line import Event, encode

from .findable import event
from .rows_support import Row, database, ids, insert, seal


def entry_of(query: AuditQuery, row_id: int) -> Entry:
    found = query.page(Filter(action=()), row_id + 1, 1)
    if not found or found[0].row_id != row_id:
        found = query.page(Filter(action=(SEAL_ACTION,)), row_id + 1, 1)
    assert found and found[0].row_id == row_id
    return found[0]


# -- look-ups in audit.db ---------------------------------------------------------------------


def test_an_event_is_found_by_its_id() -> None:
    with database([Row(event_id="first"), Row(event_id="second")]) as query:
        found = query.event("second")
        assert found is not None and found.row_id == 2
        assert query.event("third") is None


def test_around_an_event_are_its_neighbours_newest_first_without_seal_lines() -> None:
    rows = [Row() for _ in range(5)] + [seal(5)] + [Row() for _ in range(5)]
    with database(rows) as query:
        before, after = query.around(7, count=3)
        assert ids(before) == [5, 4, 3]
        assert ids(after) == [10, 9, 8]
        before, after = query.around(2, count=3)
        assert ids(before) == [1] and ids(after) == [5, 4, 3]
        before, after = query.around(11)
        assert ids(before) == [10, 9, 8, 7, 5, 4, 3, 2, 1] and after == []


def test_a_page_through_a_row_shows_every_row_down_to_it() -> None:
    with database([Row(source="a" if n % 2 else "b") for n in range(1, 21)]) as query:
        assert ids(query.page(Filter(), None, 100, through=15)) == [20, 19, 18, 17, 16, 15]
        assert ids(query.page(Filter(), 19, 3, through=10)) == [18, 17, 16]
        several = Filter(source=("a", "b"))  # a union of branches
        assert ids(query.page(several, 18, 100, through=14)) == [17, 16, 15, 14]


def test_the_covering_seal_is_the_first_seal_of_the_source_that_reaches_the_seq() -> None:
    rows = [
        Row(seq=1),
        Row(seq=2),
        Row(seq=1, source="web-2"),
        seal(1, seq=3),  # vouches for seq 1 only
        seal(1, source="web-2", seq=2),
        Row(seq=4),
        seal(4, seq=5),
        Row(seq=6),
    ]
    with database(rows) as query:
        first, second, other, late = (entry_of(query, n) for n in (1, 2, 3, 8))
        assert (cover := query.covering_seal(first)) is not None and cover.row_id == 4
        assert (cover := query.covering_seal(second)) is not None and cover.row_id == 7
        assert (cover := query.covering_seal(other)) is not None and cover.row_id == 5
        assert query.covering_seal(late) is None


# -- the line in the log file -----------------------------------------------------------------


class Logs:
    """Log files of a data directory and what the indexer's log_files says of them."""

    def __init__(self, root: Path, query: AuditQuery) -> None:
        self.data = DataDir(root)
        self.query = query
        self.lines: dict[int, bytes] = {}

    def write(self, source: str, name: str, seqs: range, *, known_as: str | None = None) -> None:
        """Write events ``seqs`` to ``name`` of the source and index them (rows, log_files)."""
        log_dir = self.data.source(source).path
        log_dir.mkdir(parents=True, exist_ok=True)
        events = [event(seq) for seq in seqs]
        lines = [encode(cast(Event, one)) for one in events]
        (log_dir / name).write_bytes(b"".join(lines))
        for one, line in zip(events, lines, strict=True):
            self.lines[one["seq"]] = line.rstrip(b"\n")
        insert(
            self.query,
            [Row(event_id=one["id"], seq=one["seq"], source=source) for one in events],
        )
        with self.query.conn:
            self.query.conn.execute(
                'INSERT INTO log_files (source, key, path, inode, "offset", first_seq, last_seq, '
                "finished, first_seen, updated) VALUES (?, ?, ?, 0, 0, ?, ?, 0, '', '')",
                (source, "id:" + events[0]["id"], known_as or name, seqs[0], seqs[-1]),
            )

    def locate(self, seq: int, source: str = "local") -> LineLocation:
        row = self.query.conn.execute(
            "SELECT id FROM audit_log WHERE seq = ? AND source = ?", (seq, source)
        ).fetchone()
        return locate_line(self.query, self.data, entry_of(self.query, row[0]))


@pytest.fixture
def logs(tmp_path: Path) -> Iterator[Logs]:
    with database() as query:
        found = Logs(tmp_path / "data", query)
        found.write("local", "trek.log.1", range(1, 6))
        found.write("local", "trek.log", range(6, 9))
        yield found


def test_a_line_is_found_in_its_file_under_the_name_it_has_now(logs: Logs) -> None:
    assert logs.locate(3) == LineLocation("logs/trek.log.1", True, logs.lines[3], None)
    assert logs.locate(8) == LineLocation("logs/trek.log", True, logs.lines[8], None)
    logs_dir = logs.data.log_dir
    (logs_dir / "trek.log.1").rename(logs_dir / "trek.log.2")  # a rotation since
    assert logs.locate(3) == LineLocation("logs/trek.log.2", True, logs.lines[3], None)


def test_a_file_rotated_away_is_said_so(logs: Logs) -> None:
    (logs.data.log_dir / "trek.log.1").unlink()
    found = logs.locate(3)
    assert (found.file, found.kept, found.raw) == ("logs/trek.log.1", False, None)
    assert found.note is not None and "rotated away" in found.note


def test_a_symbolic_link_is_never_followed(logs: Logs, tmp_path: Path) -> None:
    path = logs.data.log_dir / "trek.log.1"
    elsewhere = tmp_path / "elsewhere.log"
    path.rename(elsewhere)
    path.symlink_to(elsewhere)
    found = logs.locate(3)
    assert found.raw is None and found.note == "logs/trek.log.1 is a symbolic link: not followed."


def test_a_replaced_file_is_not_read_as_the_one_indexed(logs: Logs) -> None:
    path = logs.data.log_dir / "trek.log.1"
    path.write_bytes(b"".join(encode(cast(Event, event(seq))) for seq in range(1, 6)))
    found = logs.locate(3)
    assert (found.kept, found.raw) == (False, None)
    assert found.note is not None and "now holds other lines" in found.note


def test_a_file_changed_after_indexing_keeps_its_name_but_not_the_line(logs: Logs) -> None:
    path = logs.data.log_dir / "trek.log.1"
    kept = [line for seq, line in sorted(logs.lines.items()) if seq in (1, 2, 4, 5)]
    path.write_bytes(b"\n".join(kept) + b"\n")
    found = logs.locate(3)
    assert (found.file, found.kept, found.raw) == ("logs/trek.log.1", True, None)
    assert logs.locate(4).raw == logs.lines[4]


def test_a_file_too_big_to_search_is_said_so(logs: Logs, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_lines, "MAX_SEARCH_BYTES", 100)
    found = logs.locate(3)
    assert (found.kept, found.raw) == (True, None)
    assert found.note is not None and "searched for a line" in found.note


def test_a_line_of_another_source_is_in_its_directory_of_sources(logs: Logs) -> None:
    logs.write("web-2", "trek.log", range(1, 4))
    assert logs.locate(2, "web-2") == LineLocation(
        "sources/web-2/trek.log", True, logs.lines[2], None
    )
    assert logs.locate(2).raw != logs.locate(2, "web-2").raw


def test_a_line_is_found_across_the_reads_of_a_large_file(
    logs: Logs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(event_lines, "_CHUNK", 7)  # lines cut across every read
    for seq in range(1, 9):
        assert logs.locate(seq).raw == logs.lines[seq]


def test_an_event_without_a_known_file_has_no_line(logs: Logs) -> None:
    insert(logs.query, [Row(seq=99), Row(seq=None)])
    logs.query.conn.execute("UPDATE audit_log SET seq = NULL WHERE id = 10")
    unknown = locate_line(logs.query, logs.data, entry_of(logs.query, 9))
    assert (unknown.file, unknown.raw) == (None, None) and unknown.note
    no_seq = locate_line(logs.query, logs.data, entry_of(logs.query, 10))
    assert (no_seq.file, no_seq.raw) == (None, None) and no_seq.note
