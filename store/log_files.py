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
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from trek_audit.layout import LOG_FILE_NAME

__all__ = ["RAW_KEEP", "file_key", "list_log_files"]

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
