"""audit.db's rows against the lines they came from, and every flipped byte of a file found."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

from .verify_support import check, flip, lines, only, sealed_dir, sealed_event_line


def _row_of(db: Path, seq: int) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT id FROM audit_log WHERE seq = ?", (seq,)).fetchone()[0])


def test_a_row_edited_in_sqlite_differs_from_its_line(data_dir: Path) -> None:
    sealed = sealed_dir(data_dir)
    path = sealed.log(1)
    number = sealed_event_line(path, after=2)
    seq = int(lines(path)[number - 1].split(b'"seq":')[1].split(b",")[0])
    row = _row_of(sealed.data.audit_db, seq)
    conn = sqlite3.connect(sealed.data.audit_db)
    with conn:
        conn.execute("UPDATE audit_log SET username = 'someone else' WHERE id = ?", (row,))
    conn.close()
    problem = only(check(sealed), "row_differs")
    assert (problem["row"], problem["file"], problem["line"]) == (row, str(path), number)
    assert "user.username" in problem["message"]
    assert "row was changed" in problem["message"]


def test_every_flipped_byte_of_a_sealed_indexed_file_is_reported_at_its_line(
    data_dir: Path,
) -> None:
    sealed = sealed_dir(data_dir)
    path = sealed.log(2)
    original = path.read_bytes()
    starts = [0] + [i + 1 for i, byte in enumerate(original) if byte == ord("\n")]
    picker = random.Random(11)
    offsets = sorted(picker.sample(range(len(original)), 300))
    missed = []
    for offset in offsets:
        flip(path, offset, picker.randrange(1, 256))
        try:
            line = max(n for n, start in enumerate(starts, 1) if start <= offset)
            outcome = check(sealed)
            if not any(p["file"] == str(path) and p["line"] == line for p in outcome.problems):
                missed.append((offset, line, outcome.problems))
        finally:
            path.write_bytes(original)
    assert missed == []
    assert check(sealed).problems == []
