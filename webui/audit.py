"""The Audit page, its exports and chart; admins only."""

from __future__ import annotations

import csv
import io
import logging
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from flask import (
    Blueprint,
    Response,
    abort,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from werkzeug.wrappers import Response as BaseResponse

from trek_audit.store import AuditQuery, Entry, Filter, Histogram
from trek_audit.store.sql import leaves_out_seals
from trek_audit.writer.catalog import ACTIONS, AREAS
from trek_audit.writer.chain import SEAL_ACTION

from .banner import indexer_warnings
from .chart import render_svg
from .entries import CSV_HEADER, csv_record, ndjson_line, table_row
from .filters import ParameterError, parse_filter, parse_page
from .seals import (
    is_sealed,
    read_last_verify,
    read_row_sealings,
    read_sealing,
    sealing_key_exists,
)
from .security import current_account, require_admin
from .state import current_state, get_db, record_event

__all__ = ["audit"]

log = logging.getLogger(__name__)

PAGE_SIZE = 100
EXPORT_BATCH = 1000

audit = Blueprint("audit", __name__)
audit.before_request(require_admin)


@audit.errorhandler(ParameterError)
def _bad_parameter(error: ParameterError) -> tuple[str, int]:
    page = render_template(
        "error.html",
        code=400,
        name="Bad parameter",
        description=f"{error.parameter}: {error.message}",
    )
    return page, 400


@audit.get("/")
def index() -> BaseResponse:
    return redirect(url_for("audit.audit_page"))


@audit.get("/admin/audit")
def audit_page() -> str:
    flt = parse_filter(request.args)
    before, _ = parse_page(request.args)
    db = get_db()
    rows, total, seen, sources = [], 0, [], []
    next_cursor = None
    sealing = None
    if db is not None:
        sealing = read_sealing(db)
        sources = db.sources_seen()
        sealings = read_row_sealings(db, sources, sealing)
        found = db.page(flt, before, PAGE_SIZE + 1)
        if len(found) > PAGE_SIZE:
            next_cursor = found[PAGE_SIZE - 1].row_id
        rows = [
            table_row(entry, is_sealed(sealings.get(entry.source), entry.seq))
            for entry in found[:PAGE_SIZE]
        ]
        total = db.count(flt, current_state().counts)
        seen = db.actions_seen()
    query = flt.as_dict()
    settings = current_state().settings
    return render_template(
        "audit.html",
        rows=rows,
        total=total,
        filter=query,
        filtered=bool(query),
        before=before,
        next_url=_query_string({**query, "before": str(next_cursor)}) if next_cursor else None,
        next_cursor=next_cursor,
        newest_url=url_for("audit.audit_page") + _query_string(query),
        export_csv=url_for("audit.export", fmt="csv") + _query_string(query),
        export_ndjson=url_for("audit.export", fmt="ndjson") + _query_string(query),
        chart_url=url_for("audit.chart") + _query_string(query),
        api_url=url_for("api.audit_entries") + _query_string(query),
        action_groups=_action_groups(seen, flt.action),
        catalog=ACTIONS,
        # A page of one source stays as it was: the column and the filter appear with a second.
        show_sources=len(sources) > 1,
        source_choices=sorted(set(sources) | set(flt.source)),
        chosen_sources=flt.source,
        warnings=indexer_warnings(settings.data_dir, db, settings.lag_warn_bytes),
        sealing=sealing,
        sealing_key=sealing is None and sealing_key_exists(settings.seal_key_path),
        seals_left_out=leaves_out_seals(flt),
        seal_action=SEAL_ACTION,
        last_verify=read_last_verify(current_state().data),
    )


def _query_string(query: dict[str, str]) -> str:
    return ("?" + urlencode(query)) if query else ""


def _action_groups(seen: list[str], current: str | None) -> list[tuple[str, list[tuple[str, str]]]]:
    """The catalog by area, then the keys seen in the table (or asked for) outside the catalog."""
    groups = [(area, sorted(actions.items())) for area, actions in AREAS.items()]
    others = sorted((set(seen) | ({current} if current else set())) - set(ACTIONS))
    if others:
        groups.append(("Seen in the log", [(key, "") for key in others]))
    return groups


@audit.get("/admin/audit/export.<fmt>")
def export(fmt: str) -> Response:
    """Stream every entry of the filter as CSV or NDJSON, recording ``audit.export`` first."""
    if fmt not in ("csv", "ndjson"):
        abort(404)
    flt = parse_filter(request.args)
    path = current_state().data.audit_db
    # Its own connection: the response outlives the request's. Opened here, so that an
    # unreadable database is a 503 page rather than a download broken off after its headers.
    try:
        query: AuditQuery | None = AuditQuery.open(path)
    except FileNotFoundError:
        query = None
    try:
        if query is not None and request.method != "HEAD":
            _refuse_if_damaged(query, path)
        # A HEAD request (a link checker, a prefetch) exports nothing, so records nothing.
        if request.method != "HEAD" and not record_event(
            "audit.export",
            account=current_account(),
            details={"format": fmt, "filter": flt.as_dict()},
        ):
            abort(
                503,
                description="the audit log cannot record this export right now; "
                "nothing was exported",
            )
    except BaseException:
        if query is not None:
            query.close()
        raise
    if request.method == "HEAD" and query is not None:
        query.close()  # no body will be read
        query = None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    entries = _entries(query, flt, path)
    body = _csv(entries) if fmt == "csv" else _ndjson(entries)
    mimetype = "text/csv" if fmt == "csv" else "application/x-ndjson"
    return Response(
        stream_with_context(body),
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="trek-audit-{stamp}.{fmt}"'},
    )


def _refuse_if_damaged(query: AuditQuery, path: Path) -> None:
    """End the request with 503 (and a log line) when audit.db's event table is damaged.

    A damaged page met halfway through would break the download off after thousands of rows;
    checked first, the export fails before its first byte instead. ``quick_check`` of the one
    table and its indexes walks every page of them without decoding rows: 0.07 s for 200,000
    events, against 1.1 s to export them. The full-text index is not checked: a damaged page
    there breaks the download off (see ``_entries``).
    """
    try:
        findings = [str(row[0]) for row in query.conn.execute("PRAGMA quick_check(audit_log)")]
    except sqlite3.DatabaseError as error:
        findings = [str(error)]
    if findings == ["ok"]:
        return
    log.error("export refused: %s is damaged: %s", path, "; ".join(findings[:3]))
    abort(
        503,
        description=f"The audit database {path} is damaged ({findings[0]}), so nothing was "
        "exported. The log files are untouched: restore audit.db from a backup, or stop "
        "trek-audit and delete it (with its -wal and -shm) to index the kept log files again.",
    )


def _entries(query: AuditQuery | None, flt: Filter, path: Path) -> Iterator[Entry]:
    """Every entry of the filter in keyset batches, each a short read; then close ``query``.

    A read that fails halfway (a page damaged after the check, or in the full-text index)
    is logged and raised again: the server then closes the connection without the chunked
    transfer's last chunk, which browsers, curl and HTTP libraries report as a failed
    download, instead of a file that looks complete.
    """
    if query is None:
        return
    read = 0
    try:
        for entry in query.iter_all(flt, EXPORT_BATCH):
            yield entry
            read += 1
    except sqlite3.DatabaseError as error:
        log.error(
            "export broken off after %d rows: %s cannot be read (%s); the download fails",
            read,
            path,
            error,
        )
        raise
    finally:
        query.close()


def _csv(entries: Iterator[Entry]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    for count, entry in enumerate(entries, 1):
        writer.writerow(csv_record(entry))
        if count % EXPORT_BATCH == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _ndjson(entries: Iterator[Entry]) -> Iterator[bytes]:
    chunk: list[bytes] = []
    for entry in entries:
        chunk.append(ndjson_line(entry))
        if len(chunk) == EXPORT_BATCH:
            yield b"".join(chunk)
            chunk = []
    yield b"".join(chunk)


@audit.get("/admin/audit/chart.svg")
def chart() -> Response:
    """The activity chart of the filter, an SVG image (no script; the page shows it as <img>)."""
    flt = parse_filter(request.args)
    db = get_db()
    histogram = db.histogram(flt, cache=current_state().histograms) if db is not None else None
    title = "Events of this filter" if flt.as_dict() else "All events"
    svg = render_svg(histogram or Histogram("day", []), title)
    # A few seconds of browser caching: paging through the table reloads the same chart.
    return Response(svg, mimetype="image/svg+xml", headers={"Cache-Control": "private, max-age=15"})
