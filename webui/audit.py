"""The Audit page, its exports and chart; for every signed-in account (exports also by token)."""

from __future__ import annotations

import csv
import io
import logging
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

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

from trek_audit.store import FACET_FIELDS, AuditQuery, Entry, Filter, Histogram
from trek_audit.store.sql import leaves_out_seals
from trek_audit.writer.catalog import ACTIONS, AREAS
from trek_audit.writer.chain import SEAL_ACTION

from .banner import indexer_warnings
from .chart import draw, render_inline, render_svg
from .entries import CSV_HEADER, csv_record, ndjson_line, table_row
from .events import event_url
from .filters import (
    EXCLUDED,
    MAX_THROUGH_ROWS,
    MULTI_VALUE_KEYS,
    ZONE_COOKIE,
    ParameterError,
    Query,
    parse_filter,
    parse_page,
    read_query,
)
from .seals import (
    Sealing,
    is_sealed,
    read_last_verify,
    read_row_sealings,
    read_sealing,
    sealing_key_exists,
)
from .security import actor_details, current_account, require_reader_or_token
from .state import current_state, get_db, record_event
from .timerange import QUICK_RANGES, display_time, zone_label, zone_names

__all__ = ["audit"]

log = logging.getLogger(__name__)

PAGE_SIZE = 100
EXPORT_BATCH = 1000
# The words a chip uses for each URL key.
FIELD_NAMES = {
    "action": "action",
    "user": "user",
    "ip": "IP",
    "resource": "resource",
    "source": "source",
    "q": "search",
    "since": "since",
    "until": "until",
}
# The heading of each facet the page lists (the API counts them).
FACET_TITLES = {"user": "User", "ip": "IP", "action": "Action", "resource": "Resource"}

audit = Blueprint("audit", __name__)
audit.before_request(require_reader_or_token)


@audit.errorhandler(ParameterError)
def _bad_parameter(error: ParameterError) -> tuple[str, int]:
    """The cursor and page size (before, through, limit): no box of the form holds them."""
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
def audit_page() -> tuple[str, int]:
    """The table of the filter with its chart and facets; 400 with the problems by the boxes."""
    query = read_query(request.args, zone_cookie=request.cookies.get(ZONE_COOKIE))
    cursor = parse_page(request.args)
    db = get_db()
    settings = current_state().settings
    sealing = read_sealing(db) if db is not None else None
    sources = db.sources_seen() if db is not None else []
    flt = query.filter
    context: dict[str, Any] = {
        "query": query,
        "errors": query.errors,
        "rows": [],
        "total": 0,
        "chart": None,
        "next_cursor": None,
        "filtered": bool(query.params),
        "before": cursor.before or cursor.through,
        "action_groups": _action_groups(db.actions_seen() if db is not None else [], flt),
        "catalog": ACTIONS,
        # A page of one source stays as it was: the column and the filter appear with a second.
        "show_sources": len(sources) > 1,
        "source_choices": sorted(set(sources) | set(query.values("source"))),
        "warnings": indexer_warnings(settings.data_dir, db, settings.lag_warn_bytes),
        "sealing": sealing,
        "sealing_key": sealing is None and sealing_key_exists(settings.seal_key_path),
        "seals_left_out": leaves_out_seals(flt),
        "seal_action": SEAL_ACTION,
        "last_verify": read_last_verify(current_state().data),
        "zone_name": query.zone_name,
        "zone_label": zone_label(query.zone_name),
        "zone_names": zone_names(),
        "quick_ranges": QUICK_RANGES,
        "chips": _chips(query),
        "boxes": _boxes(query),
        "facets": [(field, FACET_TITLES.get(field, field)) for field in FACET_FIELDS],
        "link": _link(query),
        "show_time": lambda ts: _shown(ts, query),
        "event_url": event_url,
    }
    if db is not None and not query.errors:
        context.update(_table(db, query, cursor.before, cursor.through, sealing, sources))
    page = render_template("audit.html", **context)
    return page, 400 if query.errors else 200


def _table(
    db: AuditQuery,
    query: Query,
    before: int | None,
    through: int | None,
    sealing: Sealing | None,
    sources: list[str],
) -> dict[str, Any]:
    """The rows, the total, the chart and the cursor of Load more, for a good filter."""
    flt = query.filter
    sealings = read_row_sealings(db, sources, sealing)
    limit = MAX_THROUGH_ROWS if through is not None else PAGE_SIZE
    found = db.page(flt, before, limit + 1, through=through)
    shown = found[:limit]
    next_cursor = None
    if len(found) > limit:
        next_cursor = shown[-1].row_id
    elif through is not None:
        # Every row down to ``through`` is shown: Load more goes on below it, if anything is.
        last = shown[-1].row_id if shown else through
        next_cursor = last if db.page(flt, last, 1) else None
    histogram = db.histogram(flt, cache=current_state().histograms)
    chart = draw(histogram, query.zone)
    total = db.count(flt, current_state().counts)
    title = "Events of this filter" if query.params else "All events"
    description = (
        f"{histogram.total:,} events per {histogram.unit}, times in {query.zone_name}; "
        "a bar links to its time range"
    )
    return {
        "rows": [
            table_row(entry, is_sealed(sealings.get(entry.source), entry.seq)) for entry in shown
        ],
        "total": total,
        "next_cursor": next_cursor,
        "chart": chart,
        "chart_svg": render_inline(
            chart, title, description, lambda start, end: query.link(since=start, until=end)
        ),
    }


def _link(query: Query) -> str:
    """The filter's query string for the page's other links, "" for no filter at all."""
    link = query.link()
    return "" if link == "?" else link


def _shown(ts: str, query: Query) -> str:
    """A stored time in the page's zone; a time that is not ISO 8601 is shown as stored."""
    try:
        return display_time(ts, query.zone)
    except ValueError:
        return ts


class Chip(NamedTuple):
    """An active filter value as the page shows it: ``ip ≠ 10.0.0.1``, and the link without it."""

    text: str
    href: str


class FilterBoxes(NamedTuple):
    """What each box of the filter form shows, and the values the form carries hidden."""

    shown: dict[str, str]
    hidden: list[tuple[str, str]]


def _chips(query: Query) -> list[Chip]:
    chips = []
    for key, value in query.params:
        field = key.removesuffix(EXCLUDED)
        sign = "≠" if key.endswith(EXCLUDED) else "="
        text = f"{FIELD_NAMES.get(field, field)} {sign} {value}"
        chips.append(Chip(text, query.link(remove=(key, value))))
    return chips


def _boxes(query: Query) -> FilterBoxes:
    """What each filter box shows, and the values kept as hidden inputs of the form.

    A field with one value shows it in its box; with several (facet and cell clicks add
    them) the box stays empty and each value rides along hidden, shown as a chip.
    Exclusions are always hidden inputs with chips.
    """
    shown: dict[str, str] = {key: query.value(key) for key in ("q", "since", "until")}
    hidden: list[tuple[str, str]] = []
    for key in MULTI_VALUE_KEYS:
        values = query.values(key)
        if key == "source":
            continue  # its own select holds every chosen source
        if len(values) == 1:
            shown[key] = values[0]
        else:
            shown[key] = ""
            hidden += [(key, value) for value in values]
    for key in MULTI_VALUE_KEYS:
        hidden += [(key + EXCLUDED, value) for value in query.values(key + EXCLUDED)]
    return FilterBoxes(shown, hidden)


def _action_groups(seen: list[str], flt: Filter) -> list[tuple[str, list[tuple[str, str]]]]:
    """The catalog by area, then the keys seen in the table (or asked for) outside the catalog."""
    groups = [(area, sorted(actions.items())) for area, actions in AREAS.items()]
    others = sorted((set(seen) | set(flt.action) | set(flt.not_action)) - set(ACTIONS))
    if others:
        groups.append(("Seen in the log", [(key, "") for key in others]))
    return groups


@audit.get("/admin/audit/export.<fmt>")
def export(fmt: str) -> Response:
    """Stream every entry of the filter as CSV or NDJSON, recording ``audit.export`` first."""
    if fmt not in ("csv", "ndjson"):
        abort(404)
    flt = parse_filter(request.args, zone_cookie=request.cookies.get(ZONE_COOKIE))
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
            details={"format": fmt, "filter": flt.as_dict(), **actor_details()},
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
    """The activity chart of the filter as an SVG image of its own, times in UTC (for scripts).

    The Audit page draws the same chart inline, in the viewer's zone, with links.
    """
    flt = parse_filter(request.args, zone_cookie=request.cookies.get(ZONE_COOKIE))
    db = get_db()
    histogram = db.histogram(flt, cache=current_state().histograms) if db is not None else None
    title = "Events of this filter" if not flt.is_empty() else "All events"
    svg = render_svg(histogram or Histogram("day", []), title)
    # A few seconds of browser caching: paging through the table reloads the same chart.
    return Response(svg, mimetype="image/svg+xml", headers={"Cache-Control": "private, max-age=15"})
