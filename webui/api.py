"""The JSON API: GET /api/admin/audit (entries) and /api/admin/audit/facets, the page's filters."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Blueprint, Response, jsonify, request
from werkzeug.wrappers import Response as BaseResponse

from trek_audit.store import FACET_FIELDS, Facet

from .entries import api_entry
from .filters import ZONE_COOKIE, ParameterError, Query, parse_page, valid_query
from .seals import is_sealed, read_row_sealings, read_sealing
from .security import require_reader_or_token
from .state import current_state, get_db

__all__ = ["FACET_TIME_LIMIT", "api"]

api = Blueprint("api", __name__, url_prefix="/api/admin")
api.before_request(require_reader_or_token)

# Seconds the facets of one request may count, together, before they give up (timed_out): a
# filter matching millions of rows answers within a second, while one matching 100,000 rows of
# a million (0.5 s for the four, measured) is counted.
FACET_TIME_LIMIT = 1.0


@api.errorhandler(ParameterError)
def _bad_parameter(error: ParameterError) -> tuple[BaseResponse, int]:
    return jsonify(error=error.message, parameter=error.parameter), 400


@api.get("/audit")
def audit_entries() -> BaseResponse:
    """Entries newest first: ``{"entries": [...], "total": n, "next": cursor or null}``.

    ``next`` is the row id to pass as ``before`` for the following page; it is null on the
    last page (or, with ``through``, when the page reached that row). ``total`` counts every
    entry of the filter, not just this page. Relative and zone-less times are read in the
    zone of ``tz`` (else the ``trek_tz`` cookie, else UTC). Each filter field may be given
    several times (any of them) and as ``field!`` (none of them). Seal lines
    (``audit.seal``) are left out unless the ``action`` filter names them. Each entry's
    ``sealed`` says whether a seal covers it yet (by a seal of its own source); ``row`` is
    its row id in audit.db, the cursor of ``before`` and ``through``.
    """
    flt = _query().filter
    page = parse_page(request.args)
    db = get_db()
    if db is None:
        return _json({"entries": [], "total": 0, "next": None})
    rows = db.page(flt, page.before, page.limit + 1, through=page.through)
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    sealings = read_row_sealings(db, db.sources_seen(), read_sealing(db))
    return _json(
        {
            "entries": [
                {
                    **api_entry(row),
                    "sealed": is_sealed(sealings.get(row.source), row.seq),
                    "row": str(row.row_id),
                }
                for row in rows
            ],
            "total": db.count(flt, current_state().counts),
            "next": str(rows[-1].row_id) if more else None,
        }
    )


@api.get("/audit/facets")
def audit_facets() -> BaseResponse:
    """The most frequent users, IPs, actions and resources of the filter's entries.

    ``{"facets": [{"field", "values": [{"value", "count", "add", "exclude"}], "timed_out",
    "more"}]}``: ``add`` and ``exclude`` are the Audit page's query strings with the value
    added to the filter or excluded from it; ``more`` says that other values exist;
    ``timed_out`` that counting took too long (narrow the filter). ``field`` asks for one.
    """
    query = _query()
    fields: tuple[str, ...] = FACET_FIELDS
    wanted = (request.args.get("field") or "").strip()
    if wanted:
        if wanted not in FACET_FIELDS:
            raise ParameterError("field", f"field must be one of {', '.join(FACET_FIELDS)}")
        fields = (wanted,)
    db = get_db()
    facets = (
        db.facets(query.filter, fields, cache=current_state().facets, time_limit=FACET_TIME_LIMIT)
        if db is not None
        else [Facet(name, [], timed_out=False, distinct_more=False) for name in fields]
    )
    return _json({"facets": [_facet_json(facet, query) for facet in facets]})


def _facet_json(facet: Facet, query: Query) -> dict[str, Any]:
    return {
        "field": facet.field,
        "values": [
            {
                "value": value,
                "count": count,
                "add": query.link(add=(facet.field, value)),
                "exclude": query.link(add=(facet.field + "!", value)),
            }
            for value, count in facet.values
        ],
        "timed_out": facet.timed_out,
        "more": facet.distinct_more,
    }


def _query() -> Query:
    return valid_query(request.args, zone_cookie=request.cookies.get(ZONE_COOKIE))


def _json(body: dict[str, Any]) -> BaseResponse:
    # orjson: a page of 500 entries serialises several times faster than with json.
    return Response(orjson.dumps(body), mimetype="application/json")
