"""``trek-audit import-trek``: TREK's existing audit_log, brought in the log-file-first way.

The rows are written, in id order, as format-v1 lines into the source ``trek-import``
(``<data>/sources/trek-import/``, its own ``seq``, the original time as ``ts``), which the
indexer then indexes like any other source; the live log (``logs/``) is not touched. Each line
carries its row id (``details["trek_import"]["row_id"]``), and a re-run starts after the last
one found in the source's files, so nothing is imported twice. Reading and converting the
rows is ``trek_rows.py``'s; the files are ``import_source.py``'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import click
import orjson

from trek_audit.layout import TREK_IMPORT_SOURCE
from trek_audit.options import data_dir_option, load_settings
from trek_audit.settings import Settings

from .errors import AuditWriteError
from .import_source import SourceAppender, imported_up_to
from .line import Event, encode
from .trek_rows import IMPORT_KEY, TrekDatabase, TrekDatabaseError, to_event

__all__ = ["ImportReport", "LineTooLong", "fit_line", "import_trek", "import_trek_rows"]


class LineTooLong(ValueError):
    """An event that cannot be cut down to the line limit."""


@dataclass
class ImportReport:
    """What one import did."""

    database: Path
    source_dir: Path
    rows: int = 0  # rows in TREK's audit_log
    skipped: int = 0  # already imported by an earlier run
    written: int = 0
    first_seq: int = 0
    last_seq: int = 0
    actions: int = 0  # action keys mapped to a valid one
    details_text: int = 0  # details that were not a JSON object, kept as {"text": ...}
    truncated: int = 0  # lines cut down to TREK_LOG_MAX_LINE_BYTES
    times: int = 0  # created_at values that were not a readable instant
    user_ids: int = 0  # user ids that were not integers
    rotations: int = 0
    warnings: list[str] = field(default_factory=list)


def import_trek_rows(database: Path, settings: Settings) -> ImportReport:
    """Append the rows of ``database``'s audit_log not imported yet to the source trek-import.

    Raises TrekDatabaseError for a file that is not a readable TREK database, AuditWriteError
    when the source's files cannot be written, LineTooLong for a row that cannot fit the line
    limit even with its details and resource cut.
    """
    logs = settings.data.source(TREK_IMPORT_SOURCE)
    report = ImportReport(database, logs.path)
    with TrekDatabase(database) as trek, SourceAppender(logs, settings.log_max_bytes) as out:
        # Read under the source's lock, so that two imports at once cannot both continue it.
        done = imported_up_to(logs, IMPORT_KEY)
        report.rows = trek.count()
        report.skipped = report.rows - trek.count(after=done.row_id)
        if done.row_id:
            _check_same_database(trek, done.row_id, done.event_id, done.ts, report)
        seq, ts = done.seq, done.ts
        for row in trek.rows(after=done.row_id):
            seq += 1
            event, conversions = to_event(row, seq, ts)
            line, truncated = fit_line(event, settings.max_line_bytes)
            out.append(line)
            ts = event["ts"]
            report.written += 1
            report.first_seq = report.first_seq or seq
            report.last_seq = seq
            report.actions += conversions.action
            report.details_text += conversions.details_text
            report.times += conversions.created_at
            report.user_ids += conversions.user_id
            report.truncated += truncated
        report.rotations = out.rotations
    return report


def _check_same_database(
    trek: TrekDatabase, row_id: int, event_id: str, ts: str, report: ImportReport
) -> None:
    """Warn when the last imported row is not in this database as it was imported: a re-run
    on another TREK database would otherwise quietly import only its rows past that id.

    The ids are derived from the rows (``trek_rows.event_id``), so the same row gives the
    same id again.
    """
    rows = list(trek.rows(after=row_id - 1, upto=row_id))
    if rows and to_event(rows[0], 1, ts)[0]["id"] == event_id:
        return
    report.warnings.append(
        f"row {row_id}, the last one imported into {report.source_dir}, is "
        + ("not in" if not rows else "different in")
        + f" {report.database}: is it the same TREK database? Only rows after {row_id} are "
        "imported; import another TREK's log into a data directory of its own."
    )


def fit_line(event: Event, max_bytes: int) -> tuple[bytes, bool]:
    """The event's line, and whether it had to be cut to ``max_bytes`` (newline included).

    A line too long keeps its provenance and gets the start of its details' JSON as
    ``details["text"]``, with ``details["trek_import"]["truncated"] = {"details_bytes": N}``
    (N the original's length); if even that is too long, the resource is cut too
    (``"resource_chars"``). Nothing is dropped without that marker.
    """
    line = encode(event)
    if len(line) <= max_bytes:
        return line, False
    details = dict(event["details"] or {})
    provenance = dict(details.pop(IMPORT_KEY))
    original = orjson.dumps(details).decode()
    marker: dict[str, int] = {"details_bytes": len(original.encode())}
    provenance["truncated"] = marker
    cut: Event = {**event, "details": {IMPORT_KEY: provenance, "text": original}}
    fitted = _cut_to_fit(cut, max_bytes, "details")
    if fitted is None:
        cut["details"] = {IMPORT_KEY: provenance, "text": ""}
        marker["resource_chars"] = len(event["resource"] or "")
        fitted = _cut_to_fit(cut, max_bytes, "resource")
    if fitted is None:
        raise LineTooLong(
            f"the event of row {provenance['row_id']} does not fit in {max_bytes} bytes even "
            "without its details and resource: raise TREK_LOG_MAX_LINE_BYTES"
        )
    return fitted, True


def _cut_to_fit(event: Event, max_bytes: int, where: str) -> bytes | None:
    """Shorten the text at ``where`` (details["text"] or resource) to the longest start that
    lets the line fit; None if even an empty text is too long.

    Escaping makes a character up to six bytes of the line, but never less than one, so no
    start longer than ``max_bytes`` characters can fit: the search is over that much at most.
    """
    details = event["details"]
    assert details is not None
    text = details["text"] if where == "details" else event["resource"] or ""

    def line_with(length: int) -> bytes:
        if where == "details":
            details["text"] = text[:length]
        else:
            event["resource"] = text[:length]
        return encode(event)

    low, high = 0, min(len(text), max_bytes)
    if len(line_with(low)) > max_bytes:
        return None
    while low < high:  # the longest start that fits lies in [low, high]
        middle = (low + high + 1) // 2
        if len(line_with(middle)) <= max_bytes:
            low = middle
        else:
            high = middle - 1
    return line_with(low)


@click.command("import-trek")
@click.argument("database", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@data_dir_option
def import_trek(database: Path, data_dir: Path | None) -> None:
    """Import the audit_log of a TREK database into the source trek-import, once.

    DATABASE is TREK's SQLite file (travel.db), opened read-only: TREK may keep running. Its
    rows are written, in id order, as log lines into <data>/sources/trek-import/, with their
    own seq and their original time, user, action, resource, IP and details; the indexer
    indexes them as the source "trek-import". Each line carries its row id
    (details.trek_import.row_id), so running it again imports only the rows added since.
    Exits with status 1 if the database cannot be read or the lines cannot be written, and 2
    if DATABASE does not exist.

    \b
    Example:
        trek-audit import-trek /srv/trek/data/travel.db --data-dir /var/lib/trek-audit
    """
    settings = load_settings(data_dir=data_dir)
    try:
        report = import_trek_rows(database, settings)
    except (TrekDatabaseError, AuditWriteError, LineTooLong) as error:
        raise click.ClickException(str(error)) from None
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(_summary(report))


def _summary(report: ImportReport) -> str:
    lines = [
        f"{report.database}: {report.rows} rows in audit_log, {report.skipped} already "
        f"imported (skipped), {report.written} read and written",
    ]
    if report.written:
        lines.append(
            f"written to {report.source_dir} as seq {report.first_seq} to {report.last_seq}"
        )
    conversions = [
        (report.actions, "action keys mapped (original in details.trek_import.action)"),
        (report.details_text, 'details not a JSON object (kept as {"text": ...})'),
        (report.truncated, "lines cut to TREK_LOG_MAX_LINE_BYTES (details.trek_import.truncated)"),
        (report.times, "unreadable times (the row before's; details.trek_import.created_at)"),
        (report.user_ids, "user ids not integers (user null; details.trek_import.user_id)"),
    ]
    converted = [f"{count} {what}" for count, what in conversions if count]
    lines.append("converted: " + (", ".join(converted) if converted else "nothing"))
    return "\n".join(lines)
