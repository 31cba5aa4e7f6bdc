"""The log files as the ``log_files`` table knows them: which exist now, and the key of each.

A file is known by its *key*, computed from its first complete line:

* ``id:<event id>`` when the first line is a valid format-v1 event: the id of an event
  is unique, it survives renames, copies and restarts, and a new file at the same path
  (or on a reused inode) starts with a different event;
* ``raw:<sha256 of the first line>:<inode>`` when the first line is not a valid event;
  the inode tells apart two files that happen to start with the same bad bytes. A first
  line longer than ``RAW_KEEP`` bytes is hashed over its first ``RAW_KEEP`` bytes, which
  never change once written.

A file whose first line is not complete yet has no key. The indexer stores positions by
key; whoever reads them back (the status) must compute keys the same way, hence one place.

Which sources there are is audit.db's contract too (``list_sources``): ``<data>/logs`` is the
source "local", each directory ``<data>/sources/<name>/`` another.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path
from typing import NamedTuple

from trek_audit.layout import LOCAL_SOURCE, LOG_FILE_NAME, SOURCE_NAME_PATTERN, DataDir

__all__ = ["RAW_KEEP", "Source", "SourceListing", "file_key", "list_log_files", "list_sources"]

# The most bytes of a bad line kept in rejected_lines.raw (its true length is kept too).
RAW_KEEP = 64 * 1024
_ROTATED = re.compile(re.escape(LOG_FILE_NAME) + r"\.([1-9][0-9]{0,5})")


def list_log_files(log_dir: Path) -> list[Path]:
    """Return trek.log, trek.log.1, trek.log.2, ... that exist now, newest first."""
    try:
        names = os.listdir(log_dir)
    except FileNotFoundError:
        return []
    rotated: list[tuple[int, str]] = []
    current = False
    for name in names:
        if name == LOG_FILE_NAME:
            current = True
            continue
        match = _ROTATED.fullmatch(name)
        if match:
            rotated.append((int(match.group(1)), name))
    rotated.sort()
    paths = [log_dir / LOG_FILE_NAME] if current else []
    paths.extend(log_dir / name for _, name in rotated)
    return paths


class Source(NamedTuple):
    """A source of log lines: its name and its log directory (trek.log, trek.log.N)."""

    name: str
    log_dir: Path


class SourceListing(NamedTuple):
    """The sources found, "local" first then by name, and the entries of sources/ skipped."""

    sources: list[Source]
    skipped: list[str]  # "<path>: why", for a warning


def list_sources(data: DataDir) -> SourceListing:
    """Return "local" and every directory of ``<data>/sources/`` that is a source.

    Skipped, and said why: entries whose name is not a source name (dot-directories
    among them), "local" itself, symbolic links (to a directory or not: never followed)
    and anything that is not a directory. A ``sources`` that is itself a link is skipped
    whole.
    """
    found = [Source(LOCAL_SOURCE, data.log_dir)]
    skipped: list[str] = []
    root = data.sources_dir
    try:
        st = os.lstat(root)
    except FileNotFoundError:
        return SourceListing(found, skipped)
    if not stat.S_ISDIR(st.st_mode):
        what = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a directory"
        return SourceListing(found, [f"{root}: {what}, never followed"])
    others: list[Source] = []
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return SourceListing(found, skipped)
    for entry in entries:
        path = Path(entry.path)
        if entry.is_symlink():
            skipped.append(f"{path}: a symbolic link, never followed")
        elif not entry.is_dir(follow_symlinks=False):
            skipped.append(f"{path}: not a directory")
        elif entry.name == LOCAL_SOURCE:
            skipped.append(f"{path}: the name of {data.log_dir} (the source {LOCAL_SOURCE!r})")
        elif not SOURCE_NAME_PATTERN.fullmatch(entry.name):
            skipped.append(f"{path}: not a source name (letters, digits, '.', '_', '-')")
        else:
            others.append(Source(entry.name, path))
    others.sort()
    return SourceListing(found + others, sorted(skipped))


def file_key(fd: int, inode: int) -> str | None:
    """Return the key of the open file ``fd`` (see the module docstring), or None if none yet."""
    # Imported on first use: importing the writer package loads its appender and C
    # extension, and `import trek_audit.store` stays free of them (tests/store checks it);
    # only keying a file needs the line format.
    from trek_audit.writer.line import LineError, decode

    # Most first lines are short: try a small read before the largest one.
    head = os.pread(fd, 4096, 0)
    newline = head.find(b"\n")
    if newline < 0 and len(head) == 4096:
        head = os.pread(fd, RAW_KEEP + 1, 0)
        newline = head.find(b"\n")
    if newline < 0:
        if len(head) <= RAW_KEEP:
            return None
        return f"raw:{hashlib.sha256(head[:RAW_KEEP]).hexdigest()[:32]}:{inode}"
    first = head[:newline]
    try:
        return "id:" + decode(first)["id"]
    except LineError:
        return f"raw:{hashlib.sha256(first).hexdigest()[:32]}:{inode}"
