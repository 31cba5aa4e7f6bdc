"""The exact line an event was indexed from, found again in its log file.

``log_files`` says which file held each seq of a source, by the file's key (the id of its
first line, see ``log_files``): the file may have been renamed by rotations since, so every
log file of the source's directory is a candidate, and the one whose key is the same is it.
Files are opened without following a symbolic link, and never read past ``MAX_SEARCH_BYTES``:
whatever is in the way (a link, a file rotated away, replaced or too big) gives no line but a
sentence saying so, never an exception.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from trek_audit.layout import DataDir

from .files import NotARegularFile, open_private
from .log_files import file_key, list_log_files
from .query import AuditQuery
from .values import Entry

__all__ = ["MAX_SEARCH_BYTES", "LineLocation", "locate_line"]

# The largest log file searched for a line: above the largest log_max_bytes anyone sets, and a
# bound on what one request of the panel reads.
MAX_SEARCH_BYTES = 64 * 1024 * 1024
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class LineLocation:
    """Where an event's line is: its file (relative to the data directory) and its bytes."""

    file: str | None  # "logs/trek.log.2", "sources/web-2/trek.log"; None when unknown
    kept: bool  # whether the file is still on disk (False: rotated away or trimmed)
    raw: bytes | None  # the exact line without its LF; None when not found
    note: str | None  # why raw is None, a sentence for the page


class _Candidate(NamedTuple):
    key: str
    name: str  # the file's name when the indexer last read it


def locate_line(query: AuditQuery, data: DataDir, entry: Entry) -> LineLocation:
    """Find the line of ``entry`` in the log files of its source (see the module)."""
    if entry.seq is None:
        return LineLocation(None, False, None, "This event has no seq: its file is not known.")
    try:
        log_dir = data.source(entry.source).path
    except ValueError:
        return LineLocation(None, False, None, f"{entry.source!r} is not a source name.")
    candidates = [
        _Candidate(str(key), str(name))
        for key, name in query.conn.execute(
            "SELECT key, path FROM log_files WHERE source = ? AND first_seq <= ? "
            "AND last_seq >= ? ORDER BY first_seen DESC",
            (entry.source, entry.seq, entry.seq),
        )
    ]
    if not candidates:
        return LineLocation(
            None, False, None, "No log file known to the indexer held this event's seq."
        )
    where = _relative(log_dir, data)
    on_disk = _keys_on_disk(log_dir)
    for candidate in candidates:
        path = on_disk.get(candidate.key)
        if path is not None:
            return _search(path, where / path.name, entry)
    # Not on disk under any name: say what is at the name it was last read under.
    last_seen = log_dir / candidates[0].name
    shown = str(where / last_seen.name)
    if last_seen.is_symlink():
        note = f"{shown} is a symbolic link: not followed."
    elif last_seen.exists():
        note = (
            f"{shown} now holds other lines: the file of this event was rotated away or replaced."
        )
    else:
        note = f"{shown} is no longer on disk: the file of this event was rotated away or removed."
    return LineLocation(shown, False, None, note)


def _relative(log_dir: Path, data: DataDir) -> Path:
    try:
        return log_dir.relative_to(data.root)
    except ValueError:
        return log_dir


def _keys_on_disk(log_dir: Path) -> dict[str, Path]:
    """The log files of ``log_dir`` by key; symbolic links and unreadable files left out."""
    found: dict[str, Path] = {}
    for path in list_log_files(log_dir):
        try:
            fd = open_private(path, os.O_RDONLY, 0)
        except OSError:  # a link (NotARegularFile), gone meanwhile, not ours to read
            continue
        try:
            key = file_key(fd, os.fstat(fd).st_ino)
        except OSError:
            continue
        finally:
            os.close(fd)
        if key is not None:
            found.setdefault(key, path)
    return found


def _search(path: Path, shown: Path, entry: Entry) -> LineLocation:
    """The line of ``entry`` in the file at ``path`` (found by its key already)."""
    try:
        fd = open_private(path, os.O_RDONLY, 0)
    except NotARegularFile:
        return LineLocation(str(shown), True, None, f"{shown} is a symbolic link: not followed.")
    except OSError as error:
        return LineLocation(str(shown), False, None, f"{shown} cannot be read: {error.strerror}.")
    try:
        size = os.fstat(fd).st_size
        if size > MAX_SEARCH_BYTES:
            note = (
                f"{shown} is {size / 2**20:.0f} MiB, more than the "
                f"{MAX_SEARCH_BYTES // 2**20} MiB searched for a line."
            )
            return LineLocation(str(shown), True, None, note)
        raw = _find_line(fd, size, entry)
    except OSError as error:
        return LineLocation(str(shown), True, None, f"{shown} cannot be read: {error.strerror}.")
    finally:
        os.close(fd)
    if raw is None:
        note = f"No line of {shown} is this event any more: the file changed after it was indexed."
        return LineLocation(str(shown), True, None, note)
    return LineLocation(str(shown), True, raw, None)


def _find_line(fd: int, size: int, entry: Entry) -> bytes | None:
    """The complete line among the first ``size`` bytes of ``fd`` that is ``entry``'s event."""
    # Imported on first use, like file_key's: the line format is the writer's.
    import orjson

    from trek_audit.writer.line import LineError, decode, escape_line_breakers

    # The id as the line spells it (a JSON string); each line it is in is decoded to be sure.
    needle = escape_line_breakers(orjson.dumps(entry.event_id))
    pending, offset = b"", 0
    while offset < size:
        chunk = os.pread(fd, min(_CHUNK, size - offset), offset)
        if not chunk:
            break
        offset += len(chunk)
        buffer = pending + chunk
        done = buffer.rfind(b"\n") + 1  # the complete lines end here
        start = 0
        while (hit := buffer.find(needle, start, done)) >= 0:
            first = buffer.rfind(b"\n", 0, hit) + 1
            end = buffer.find(b"\n", hit, done)
            line = buffer[first:end]
            try:
                event = decode(line)
            except LineError:
                event = None
            if event is not None and event["id"] == entry.event_id:
                return line
            start = end + 1
        pending = buffer[done:]
    return None
