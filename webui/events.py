"""One event on its own page: every field, its line in the log file, its seal, its neighbours."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from flask import Blueprint, Response, abort, render_template, request, url_for

from trek_audit.store import AuditQuery, Entry
from trek_audit.store.event_lines import LineLocation, locate_line

from .entries import api_entry, table_row
from .filters import ZONE_COOKIE, read_query
from .security import require_reader_or_token
from .state import current_state, get_db
from .timerange import display_time

__all__ = ["EVENT_ID_PATTERN", "NEIGHBOURS", "event_url", "events"]

# The line format takes any id of at most 128 characters; the writer's are UUIDv7s (36) and
# imported sources' the same. An id of other characters is refused before any look-up.
EVENT_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}", re.ASCII)
# The events shown on either side of the one asked for.
NEIGHBOURS = 10

events = Blueprint("events", __name__)
events.before_request(require_reader_or_token)


@dataclass(frozen=True)
class SealCover:
    """The seal line that covers an event: its seq, epoch and time (None where unreadable)."""

    event_id: str
    seq: int | None
    epoch: int | None
    ts: str


@dataclass(frozen=True)
class EventView:
    """An event with everything its page shows."""

    entry: Entry
    line: LineLocation
    seal: SealCover | None
    newer: list[Entry]  # newest first
    older: list[Entry]  # newest first

    @property
    def table_link(self) -> str:
        """The Audit page showing exactly the rows of the neighbours' table."""
        newest = self.newer[0] if self.newer else self.entry
        oldest = self.older[-1] if self.older else self.entry
        return url_for("audit.audit_page", before=newest.row_id + 1, through=oldest.row_id)

    @property
    def raw_text(self) -> str | None:
        return None if self.line.raw is None else self.line.raw.decode("utf-8", "replace")


def event_url(event_id: str) -> str | None:
    """The page of an event, None for an id its page would refuse (a row of a foreign log)."""
    if EVENT_ID_PATTERN.fullmatch(event_id) is None:
        return None
    return url_for("events.event_page", event_id=event_id)


@events.get("/admin/audit/event/<event_id>")
def event_page(event_id: str) -> str:
    view = _view(event_id)
    query = read_query(request.args, zone_cookie=request.cookies.get(ZONE_COOKIE))
    return render_template(
        "event.html",
        view=view,
        event=table_row(view.entry),
        neighbours=[
            *((row, False) for row in view.newer),
            (view.entry, True),
            *((row, False) for row in view.older),
        ],
        zone_name=query.zone_name,
        show_time=lambda ts: _shown(ts, query.zone),
        event_url=event_url,
        json_url=url_for("events.event_json", event_id=view.entry.event_id),
    )


@events.get("/api/admin/audit/event/<event_id>")
def event_json(event_id: str) -> Response:
    """``{"event", "row", "file", "seal", "raw", "newer", "older"}``: the event page as JSON."""
    view = _view(event_id)
    body: dict[str, Any] = {
        "event": {**api_entry(view.entry), "seq": view.entry.seq},
        "row": str(view.entry.row_id),
        "file": {"path": view.line.file, "kept": view.line.kept, "note": view.line.note},
        "raw": view.raw_text,
        "seal": None
        if view.seal is None
        else {
            "id": view.seal.event_id,
            "seq": view.seal.seq,
            "epoch": view.seal.epoch,
            "ts": view.seal.ts,
        },
        "newer": [api_entry(row) for row in view.newer],
        "older": [api_entry(row) for row in view.older],
        "table": view.table_link,
    }
    return Response(orjson.dumps(body), mimetype="application/json")


def _view(event_id: str) -> EventView:
    """The event's view, or the request ends: 400 for an id of no event's shape, 404 unknown."""
    if EVENT_ID_PATTERN.fullmatch(event_id) is None:
        abort(
            400,
            description="an event id is at most 128 letters, digits and . _ : - "
            "(such as 0190b5c4-8f2a-7c3e-9d4b-2a1f6e8c7b05)",
        )
    db = get_db()
    entry = db.event(event_id) if db is not None else None
    if db is None or entry is None:
        abort(404, description=f"no event has the id {event_id}")
    older, newer = db.around(entry.row_id, NEIGHBOURS)
    return EventView(
        entry=entry,
        line=locate_line(db, current_state().data, entry),
        seal=_seal_cover(db, entry),
        newer=newer,
        older=older,
    )


def _shown(ts: str, zone: ZoneInfo) -> str:
    """A stored time in ``zone``; one that is not ISO 8601 is shown as stored."""
    try:
        return display_time(ts, zone)
    except ValueError:
        return ts


def _seal_cover(db: AuditQuery, entry: Entry) -> SealCover | None:
    seal = db.covering_seal(entry)
    if seal is None:
        return None
    try:
        details = orjson.loads(seal.details or "null")
    except orjson.JSONDecodeError:
        details = None
    epoch = details.get("epoch") if isinstance(details, dict) else None
    return SealCover(
        event_id=seal.event_id,
        seq=seal.seq,
        epoch=epoch if type(epoch) is int else None,
        ts=seal.ts,
    )
