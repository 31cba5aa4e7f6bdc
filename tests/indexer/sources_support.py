"""Sources for the indexer's tests: writers on <data>/sources/<name>/ and questions per source."""

from __future__ import annotations

import threading
from pathlib import Path

from trek_audit.store.log_files import list_log_files
from trek_audit.writer import AuditWriter
from trek_audit.writer.line import decode

from .logfiles import Reader


def source_dir(data_dir: Path, name: str) -> Path:
    """The log directory of source ``name`` ("local" is <data>/logs), made if missing."""
    path = data_dir / "logs" if name == "local" else data_dir / "sources" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def write(
    log_dir: Path, count: int, *, max_bytes: int = 10 * 1024 * 1024, pace: float = 0.0
) -> None:
    """Record ``count`` events into ``log_dir`` with a writer of its own (its own seq).

    ``pace``: a pause of that many seconds after every 100 events.
    """
    pause = threading.Event()
    with AuditWriter(log_dir, max_bytes=max_bytes, backups=50, fast_path=False) as writer:
        for number in range(count):
            if pace and number % 100 == 99:
                pause.wait(pace)
            writer.record(
                "trip.update",
                user={"id": number, "username": "walker", "email": None},
                resource=f"trip/{number}",
                details={"n": number, "pad": "x" * 40},
            )


def ids_on_disk(log_dir: Path) -> set[str]:
    return {
        decode(raw)["id"]
        for path in list_log_files(log_dir)
        for raw in path.read_bytes().splitlines()
    }


def seqs_of(path: Path) -> list[int]:
    return [decode(raw)["seq"] for raw in path.read_bytes().splitlines()]


def ids_by_source(db: Reader) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for source, event_id in db.conn.execute("SELECT source, event_id FROM audit_log ORDER BY id"):
        found.setdefault(source, []).append(event_id)
    return found


def source_gaps(db: Reader, source: str) -> list[tuple[int, int]]:
    query = "SELECT first_seq, last_seq FROM gaps WHERE source = ? ORDER BY first_seq"
    return [(first, last) for first, last in db.conn.execute(query, (source,))]
