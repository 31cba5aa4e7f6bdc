"""The soak's witnesses: the rotated files it saw, what audit.db holds, and the processes'
figures (peak memory, CPU time), for ``soak_verdict.py`` to judge.

``RotationWatch`` looks at trek.log.1..N every 100 ms and remembers each rotated file (its inode
and the first and last seq of its events): a file that is gone at the end was dropped by
rotation, and its seqs are the only ones that may be missing from audit.db (the real gaps).
A rotated file is final (writers append to trek.log only), so each is read once.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from soak_writers import BIG, HOSTILE_TEXT, HTML

from trek_audit.layout import LogDir
from trek_audit.writer import LineError, decode

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class SeenFile(NamedTuple):
    """A rotated log file, by inode and first seq (an inode number is reused after a drop)."""

    ino: int
    first_seq: int
    last_seq: int


def event_seqs(data: bytes) -> list[int]:
    """The seqs of the valid event lines of a file's content, in file order."""
    seqs = []
    for line in data.split(b"\n"):
        try:
            seqs.append(decode(line)["seq"])
        except LineError:
            continue
    return seqs


class RotationWatch:
    """A thread that remembers every rotated file it sees, until ``stop``."""

    def __init__(self, logs: LogDir, backups: int, interval: float = 0.1) -> None:
        self.logs, self.backups, self.interval = logs, backups, interval
        self.seen: dict[tuple[int, int], SeenFile] = {}
        self._known: dict[tuple[int, int, int], tuple[int, int] | None] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.lock = threading.Lock()

    def __enter__(self) -> RotationWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.look()  # the last state: every file still there

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.look()

    @property
    def rotations(self) -> int:
        """Rotated files seen (every rotation makes one)."""
        with self.lock:
            return len(self.seen)

    def present(self) -> set[tuple[int, int]]:
        """The keys of the rotated files on disk now."""
        return {key for number in range(1, self.backups + 1) if (key := self._read(number))}

    def look(self) -> None:
        self.present()

    def _read(self, number: int) -> tuple[int, int] | None:
        try:
            fd = os.open(self.logs.rotated(number), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            stat = os.fstat(fd)
            identity = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
            if identity in self._known:
                return self._known[identity]
            with os.fdopen(os.dup(fd), "rb") as file:
                seqs = event_seqs(file.read())
        finally:
            os.close(fd)
        key = None
        if seqs:
            key = (stat.st_ino, seqs[0])
            with self.lock:
                self.seen[key] = SeenFile(stat.st_ino, seqs[0], seqs[-1])
        self._known[identity] = key
        return key


def seq_ranges(seqs: list[int]) -> list[list[int]]:
    """Sorted seqs as [first, last] ranges of consecutive numbers."""
    ranges: list[list[int]] = []
    for seq in sorted(seqs):
        if ranges and seq == ranges[-1][1] + 1:
            ranges[-1][1] = seq
        else:
            ranges.append([seq, seq])
    return ranges


@dataclass
class Ledger:
    """What audit.db holds of the local source, read once at the end."""

    by_id: dict[str, int]  # event id -> seq
    seqs: set[int]
    rows: int
    duplicate_ids: int
    duplicate_seqs: int
    seals: int
    gaps: list[list[int]]
    rejected_raw: Counter[bytes]
    soak_rows: dict[str, str]  # event id -> the soak writer that recorded it
    altered: list[str]  # event ids of the soak's rows whose hostile content changed on the way
    other_actions: Counter[str]  # rows that are neither the soak's nor seals (the panel's)

    @classmethod
    def read(cls, path: Path) -> Ledger:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = conn.execute(
                "SELECT event_id, seq, action, details, username, resource FROM audit_log "
                "WHERE source = 'local'"
            ).fetchall()
            by_id: dict[str, int] = {}
            seqs: Counter[int] = Counter()
            ids: Counter[str] = Counter()
            other: Counter[str] = Counter()
            soak: dict[str, str] = {}
            seals = 0
            altered = []
            for event_id, seq, action, details, username, resource in rows:
                by_id[event_id] = seq
                ids[event_id] += 1
                seqs[seq] += 1
                marker = orjson.loads(details).get("soak") if details else None
                if action == "audit.seal":
                    seals += 1
                elif isinstance(marker, dict):
                    soak[event_id] = str(marker.get("w"))
                    if not intact(orjson.loads(details), username, resource):
                        altered.append(event_id)
                else:
                    other[action] += 1
            gaps = [
                [first, last]
                for first, last in conn.execute(
                    "SELECT first_seq, last_seq FROM gaps WHERE source = 'local' ORDER BY first_seq"
                )
            ]
            rejected = Counter(
                bytes(raw or b"")
                for (raw,) in conn.execute("SELECT raw FROM rejected_lines WHERE source = 'local'")
            )
        finally:
            conn.close()
        return cls(
            by_id=by_id,
            seqs=set(seqs),
            rows=len(rows),
            duplicate_ids=sum(n - 1 for n in ids.values()),
            duplicate_seqs=sum(n - 1 for n in seqs.values()),
            seals=seals,
            gaps=gaps,
            rejected_raw=rejected,
            soak_rows=soak,
            altered=altered,
            other_actions=other,
        )

    def unacked(self, acked_ids: set[str]) -> Counter[str]:
        """The soak's rows no writer was told about (in flight when a connection broke)."""
        return Counter(w for i, w in self.soak_rows.items() if i not in acked_ids)


def intact(details: dict[str, Any], username: str | None, resource: str | None) -> bool:
    """Whether a soak event's hostile content reached audit.db exactly as it was recorded."""
    text, deep = details.get("text"), details.get("deep")
    while isinstance(deep, dict) and len(deep) == 1 and "leaf" not in deep:
        deep = next(iter(deep.values()))
    return (
        (text is None or (isinstance(text, str) and HOSTILE_TEXT.startswith(text) and text != ""))
        and details.get("html", HTML) == HTML
        and (deep is None or deep == {"leaf": HOSTILE_TEXT})
        and details.get("big", BIG) in (BIG, None)
        and (username is None or username.endswith("\u2028<b>\"'"))
        and (resource is None or resource.endswith('"<x>\u2029'))
    )


# -- processes --------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    return text.rpartition(")")[2].split()  # the name may hold spaces and parentheses


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent has ended)."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid``."""
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat_fields(int(entry))) and fields[0] not in "ZX":
            tree.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], list(tree.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(tree.get(child, []))
    return sorted(found)


def peak_kib(pid: int) -> int | None:
    """VmHWM (peak resident set) of ``pid`` in KiB, None when gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time of ``pids`` so far (gone ones count 0)."""
    ticks = 0
    for pid in pids:
        if (fields := _stat_fields(pid)) is not None:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / CLOCK_TICKS


def command_line(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


class Peaks:
    """The highest VmHWM seen of each kind of process (sampled while they run)."""

    def __init__(self) -> None:
        self.kib: dict[str, int] = {}

    def sample(self, labelled: dict[int, str]) -> None:
        for pid, label in labelled.items():
            value = peak_kib(pid)
            if value is not None and value > self.kib.get(label, 0):
                self.kib[label] = value


def label_serve_tree(serve_pid: int) -> dict[int, str]:
    """serve's processes by role: serve, indexer, ingest server, gunicorn master and workers."""
    labelled = {serve_pid: "serve"}
    for pid in descendants(serve_pid):
        words = command_line(pid)
        fields = _stat_fields(pid)
        parent = int(fields[1]) if fields else 0
        if "index" in words:
            labelled[pid] = "indexer"
        elif "ingest" in words:
            labelled[pid] = "ingest server"
        elif parent == serve_pid:
            labelled[pid] = "gunicorn master"
        else:
            labelled[pid] = "gunicorn worker"
    return labelled
