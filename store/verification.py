"""``trek-audit verify``: the hash chain, the seals and audit.db's rows, checked against the logs.

One pass over the log files, oldest first, as one stream of lines (``chain_walk``):

* every line must be a format-v1 event (``not_an_event`` otherwise);
* the seqs must run on by one (``seq_order``): a line out of that run is ``duplicated``,
  ``inserted`` or ``reordered``; a hole is ``deleted`` or ``missing``; a line that sits in a
  hole of its own size was ``edited``;
* at every seal: its range follows the previous seal, its ``prev`` is the head after the
  previous seal line, the chain over its lines from ``prev`` is its ``chain`` (``chain_walk``),
  its epoch is the previous one's plus one under one ``key_id``, and, with the verification
  key, its MAC is right for exactly that epoch's key (``seal_checks``);
* with audit.db (a data directory): every line is compared with its row, fields and chain
  (``indexed_rows``); rows past the end of a file (``log_files`` remembers how far each was
  read) mean the file was ``cut_short``; a hole in trek.log.1..N is a ``dropped_file``.

A mismatch of the chain alone (no key needed) is reported only where no other problem
explains it (``findings``). The files of a data directory are read as they were at one moment,
even while a writer rotates them (``log_snapshot``).

The writer's modules (line format, chain) are imported when a check runs, not with this
module: importing the store stays free of the writer's appender (tests/store checks it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from trek_audit.layout import DataDir

from .chain_walk import ChainWalk
from .indexed_rows import IndexedRows
from .log_snapshot import first_ids, read_log, read_log_dir, rotation_number
from .verify_outcome import STORED_PROBLEMS, KeyFileError, Outcome, VerifyError

__all__ = [
    "STORED_PROBLEMS",
    "KeyFileError",
    "Outcome",
    "VerifyError",
    "read_verification_key",
    "verify_data_dir",
    "verify_paths",
]

_NO_KEY = (
    "no verification key given: MACs were not checked. The chain and the seals' continuity "
    "catch corruption and careless edits, not a forger who recomputes the hashes "
    "(give --key-file or TREK_VERIFY_KEY_FILE)"
)


def read_verification_key(path: Path) -> bytes:
    """The key in ``path``: alone on a line, or as ``seal init`` prints it (``verification
    key: <hex>``). Raises KeyFileError with what to do otherwise."""
    from trek_audit.writer.chain import parse_key

    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not ASCII text"
        raise KeyFileError(f"cannot read the verification key file {path}: {reason}") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines and lines[0] == "trek-audit seal key v1":
        raise KeyFileError(
            f"{path} is a sealing key file (the current epoch's key), not the verification "
            "key: give the key `trek-audit seal init` printed as `verification key: <hex>`"
        )
    printed = [line for line in lines if line.startswith("verification key:")]
    if len(printed) == 1:
        lines = printed
    if len(lines) != 1:
        raise KeyFileError(
            f"{path} should hold the verification key alone on one line (64 hex digits), "
            f"found {len(lines)} lines"
        )
    try:
        return parse_key(lines[0])
    except ValueError as error:
        raise KeyFileError(f"{path} holds no verification key: {error}") from None


def verify_paths(paths: Sequence[Path], key: bytes | None) -> Outcome:
    """Check the given log files (a copy a shipper delivered, say), ordered by their first seq."""
    logs = [read_log(path) for path in paths]
    logs.sort(key=lambda log: (log.first_seq is None, log.first_seq or 0))
    walk = ChainWalk(key, None)
    for log in logs:
        walk.add_file(log, live=False)
    notes = [] if key is not None else [_NO_KEY]
    return walk.finish(notes)


def verify_data_dir(data: DataDir, *, backups: int, key: bytes | None) -> Outcome:
    """Check trek.log.N .. trek.log of ``data`` and audit.db's rows against them."""
    notes: list[str] = [] if key is not None else [_NO_KEY]
    # audit.db is read first, in one read transaction, and the files after it: they only
    # grow meanwhile, so a row past a file's end means the file was cut, not written since.
    database = IndexedRows.open(data.audit_db, first_ids(data.log_dir))
    if database is None:
        notes.append("no database: rows not checked")
    try:
        logs = read_log_dir(data.log_dir)
        numbers = [rotation_number(log.path) for log in logs]
        beyond = [
            log.path.name for log, number in zip(logs, numbers, strict=True) if number > backups
        ]
        if beyond:
            notes.append(
                f"{', '.join(beyond)}: beyond the {backups} rotated files kept "
                "(TREK_LOG_BACKUPS), checked too"
            )
        walk = ChainWalk(key, database)
        present = set(numbers)
        for log, number in zip(logs, numbers, strict=True):
            # A number missing between the files is a file dropped, unless the seqs run on
            # across it: a rotation renames the files one at a time, and one that stopped half
            # way (a writer killed in it) leaves such a hole with every line still there.
            hole = number + 1 not in present and number + 1 < max(present, default=0)
            if hole and not walk.follows_on(log):
                walk.dropped_file(data.logs.rotated(number + 1), log)
            walk.add_file(log, live=number == 0)
        if database is not None:
            oldest = max(numbers, default=0)
            if 0 < oldest < backups and database.rows_before_start and logs:
                walk.dropped_file(data.logs.rotated(oldest + 1), logs[0], at_start=True)
            if not logs and database.newest_seq:
                walk.lost_everything(data.logs.log_file, database.newest_seq)
        return walk.finish(notes)
    finally:
        if database is not None:
            database.close()
