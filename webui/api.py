"""The JSON API: GET /api/admin/audit, the same filters and cursor as the page."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Blueprint, Response, jsonify, request
from werkzeug.wrappers import Response as BaseResponse

from .entries import api_entry
from .filters import ParameterError, parse_filter, parse_page
from .seals import is_sealed, read_row_sealings, read_sealing
from .security import require_admin
from .state import current_state, get_db

__all__ = ["api"]

api = Blueprint("api", __name__, url_prefix="/api/admin")
api.before_request(require_admin)


@api.errorhandler(ParameterError)
def _bad_parameter(error: ParameterError) -> tuple[BaseResponse, int]:
    return jsonify(error=error.message, parameter=error.parameter), 400


@api.get("/audit")
def audit_entries() -> BaseResponse:
    """Entries newest first: ``{"entries": [...], "total": n, "next": cursor or null}``.

    ``next`` is the row id to pass as ``before`` for the following page; it is null on the
    last page. ``total`` counts every entry of the filter, not just this page. ``source``
    (given several times, or comma-separated) keeps the entries of those sources; each entry
    names its ``source``. Seal lines (``audit.seal``) are left out unless the ``action``
    filter names them. Each entry's ``sealed`` says whether a seal covers it yet (by a seal
    of its own source).
    """
    flt = parse_filter(request.args)
    before, limit = parse_page(request.args)
    db = get_db()
    if db is None:
        return _json({"entries": [], "total": 0, "next": None})
    rows = db.page(flt, before, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    sealings = read_row_sealings(db, db.sources_seen(), read_sealing(db))
    return _json(
        {
            "entries": [
                {**api_entry(row), "sealed": is_sealed(sealings.get(row.source), row.seq)}
                for row in rows
            ],
            "total": db.count(flt, current_state().counts),
            "next": str(rows[-1].row_id) if more else None,
        }
    )


def _json(body: dict[str, Any]) -> BaseResponse:
    # orjson: a page of 500 entries serialises several times faster than with json.
    return Response(orjson.dumps(body), mimetype="application/json")
