"""Two events with one id, or one seq for two events: incidents, never dropped silently."""

from __future__ import annotations

from pathlib import Path

from trek_audit.indexer import Indexer

from .logfiles import Reader, append, line


def _index(data_dir: Path) -> None:
    Indexer(data_dir, watch=False).run_once()


def test_a_second_event_with_an_indexed_id_and_another_seq_is_an_incident(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    append(log_dir / "trek.log", line(1, id="same") + line(2) + line(3, id="same"))
    _index(data_dir)
    assert db.seqs() == [1, 2]
    [(kind, message)] = db.incidents()
    assert kind == "duplicate_id"
    assert "event id same (seq 3" in message
    assert "seq 1" in message


def test_an_id_reused_in_a_later_pass_with_other_content_is_an_incident(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    append(log_dir / "trek.log", line(1, id="same") + line(2))
    _index(data_dir)
    append(log_dir / "trek.log", line(3) + line(3, id="same", action="trip.delete"))
    _index(data_dir)
    assert db.seqs() == [1, 2, 3]
    assert [kind for kind, _ in db.incidents()] == ["duplicate_id"]


def test_a_repeated_seq_with_another_id_is_indexed_and_an_incident(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    append(log_dir / "trek.log", [1, 2, 3])
    _index(data_dir)
    append(log_dir / "trek.log", [2, 4])  # a writer that lost its state: seq 2 again
    _index(data_dir)
    assert db.seqs() == [1, 2, 3, 2, 4]
    [(kind, message)] = db.incidents()
    assert kind == "repeated_seq"
    assert "seq 2 repeated" in message


def test_a_repeated_seq_within_one_batch_is_an_incident(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    append(log_dir / "trek.log", [1, 2, 2, 3])
    _index(data_dir)
    assert db.seqs() == [1, 2, 2, 3]
    assert [kind for kind, _ in db.incidents()] == ["repeated_seq"]


def test_the_same_line_twice_is_indexed_once_with_no_incident(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    same = line(2)
    append(log_dir / "trek.log", line(1) + same + same + line(3))
    _index(data_dir)
    append(log_dir / "trek.log", same)
    _index(data_dir)
    assert db.seqs() == [1, 2, 3]
    assert db.incidents() == []
    assert db.rejected() == []
