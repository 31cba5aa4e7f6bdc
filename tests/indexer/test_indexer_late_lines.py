"""A shipped source: lines read again by the shipper are dropped and counted, never an alarm;
lines delivered late fill their gap exactly; a different line reusing an id is still an
incident."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from trek_audit.cli import main
from trek_audit.indexer import Indexer
from trek_audit.store import read_status
from trek_audit.writer.line import decode

from .logfiles import Reader, append, line
from .seal_support import SealedLog
from .sources_support import ids_by_source, source_dir, source_gaps


def chunks(lines: list[bytes], size: int) -> list[bytes]:
    """The lines as the writer's files would hold them, ``size`` lines a file, oldest first."""
    return [b"".join(lines[start : start + size]) for start in range(0, len(lines), size)]


def sealed_lines(count: int, seal_every: int) -> list[bytes]:
    """``count`` lines of one writer with a seal after every ``seal_every`` events."""
    log = SealedLog()
    lines = [log.seal()]
    while len(lines) < count:
        lines.extend(log.event() for _ in range(seal_every))
        lines.append(log.seal())
    return lines


def source(data_dir: Path, name: str) -> dict[str, object]:
    found = read_status(data_dir)["sources"]
    return dict(next(item for item in found if item["name"] == name))


def test_a_shipped_copy_with_repeats_and_late_files_ends_exact_with_no_incident(
    data_dir: Path, db: Reader
) -> None:
    files = chunks(sealed_lines(300, 9), 30)  # ten files of 30 lines, seals among them
    never_shipped = files[6]
    # A shipper restarted across rotations: newer files first, older ones late, some read
    # twice (a renamed file read again under its new name), one lost before it was read.
    deliveries = [files[2], files[3], files[0], files[3], files[1], files[5], files[4]]
    deliveries += [files[0][: len(files[0]) // 2].rsplit(b"\n", 1)[0] + b"\n"]  # half, again
    deliveries += [files[8], files[7], files[9], files[8]]
    shipped = source_dir(data_dir, "web1") / "trek.log"
    repeated = 0
    seen: set[bytes] = set()
    for delivery in deliveries:
        append(shipped, delivery)
        lines = delivery.splitlines()
        repeated += sum(raw in seen for raw in lines)
        seen.update(lines)
        Indexer(data_dir).run_once()  # a pass between deliveries: gaps open, then fill

    lost = [decode(raw)["seq"] for raw in never_shipped.splitlines()]
    assert source_gaps(db, "web1") == [(lost[0], lost[-1])]
    assert db.incidents() == []
    web1 = source(data_dir, "web1")
    assert (web1["indexed"], web1["duplicates_dropped"], web1["missing"]) == (270, repeated, 30)
    assert repeated > 60
    status = read_status(data_dir)
    assert (status["duplicates_dropped"], status["incidents"]) == (repeated, 0)
    assert len(ids_by_source(db)["web1"]) == len(set(ids_by_source(db)["web1"])) == 270


def test_a_late_line_splits_its_gap_and_a_gap_filled_whole_disappears(
    data_dir: Path, db: Reader
) -> None:
    shipped = source_dir(data_dir, "web1") / "trek.log"
    append(shipped, [1, 2, 10])
    Indexer(data_dir).run_once()
    assert source_gaps(db, "web1") == [(3, 9)]
    append(shipped, [5])
    Indexer(data_dir).run_once()
    assert source_gaps(db, "web1") == [(3, 4), (6, 9)]
    append(shipped, [3, 4, 9, 8])
    Indexer(data_dir).run_once()
    assert source_gaps(db, "web1") == [(6, 7)]
    append(shipped, [7, 6])
    Indexer(data_dir).run_once()
    assert source_gaps(db, "web1") == []
    assert db.incidents() == []
    assert source(data_dir, "web1")["next_seq"] == 11


def test_a_different_line_reusing_an_id_is_an_incident_not_a_duplicate(
    data_dir: Path, db: Reader
) -> None:
    shipped = source_dir(data_dir, "web1") / "trek.log"
    first = line(1, id="0b5f4c1e-8a8e-4f43-9d7c-3f1b2b7a9e01")
    append(shipped, first + line(2))
    Indexer(data_dir).run_once()
    append(shipped, line(3, id="0b5f4c1e-8a8e-4f43-9d7c-3f1b2b7a9e01", action="trip.delete"))
    append(shipped, first)  # this one the same line again

    Indexer(data_dir).run_once()

    kinds = [kind for kind, _ in db.incidents()]
    assert kinds == ["duplicate_id"]
    web1 = source(data_dir, "web1")
    assert (web1["indexed"], web1["duplicates_dropped"], web1["incidents"]) == (2, 1, 1)


def test_a_line_of_one_source_repeated_in_another_is_dropped_there(
    data_dir: Path, db: Reader
) -> None:
    same = line(1) + line(2)
    append(source_dir(data_dir, "local") / "trek.log", same)
    append(source_dir(data_dir, "web1") / "trek.log", same)
    Indexer(data_dir).run_once()
    assert db.incidents() == []
    assert set(ids_by_source(db)) == {"local"}
    assert source(data_dir, "web1")["duplicates_dropped"] == 2


def test_status_shows_each_source_and_its_dropped_duplicates(data_dir: Path) -> None:
    append(source_dir(data_dir, "local") / "trek.log", [1, 2])
    append(source_dir(data_dir, "web1") / "trek.log", line(1) + line(3))
    shipped = (source_dir(data_dir, "web1") / "trek.log").read_bytes()
    append(source_dir(data_dir, "web1") / "trek.log", shipped)  # all read again
    Indexer(data_dir).run_once()

    result = CliRunner().invoke(main, ["status", "--no-follower", "--data-dir", str(data_dir)])
    as_json = CliRunner().invoke(
        main, ["status", "--json", "--no-follower", "--data-dir", str(data_dir)]
    )

    assert "duplicates:      2 identical line(s) dropped" in result.output
    assert "  local: 2 rows, last seq 2," in result.output
    assert "  web1: 2 rows, last seq 3," in result.output
    assert "2 duplicate(s) dropped" in result.output
    assert "1 event(s) missing:\n    seq 2\n" in result.output
    body = json.loads(as_json.output)
    assert (body["duplicates_dropped"], body["missing"], body["gaps"]) == (2, 1, [[2, 2]])
    assert [source["name"] for source in body["sources"]] == ["local", "web1"]
