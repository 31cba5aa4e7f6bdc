"""Reading the query string: filters, cursor and page size, each refused by name when bad."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from werkzeug.datastructures import MultiDict

from trek_audit.layout import SOURCE_NAME_PATTERN
from trek_audit.store import Filter
from trek_audit.writer.line import ACTION_PATTERN

__all__ = ["FILTER_PARAMETERS", "ParameterError", "parse_filter", "parse_page"]

# The parameters of one value each; ``source`` may have several.
_SINGLE_PARAMETERS = ("action", "user", "ip", "q", "since", "until")
FILTER_PARAMETERS = (*_SINGLE_PARAMETERS, "source")
DEFAULT_LIMIT = 100
MAX_LIMIT = 500
_MAX_LENGTH = {"user": 320, "ip": 100, "q": 500}
# More sources than any panel lists: each is a branch of the query (see store.sql).
MAX_SOURCES = 20
# A calendar date, extended (2026-11-26) or basic (20261126): a whole day.
_DATE = re.compile(r"(?P<year>\d{4})(?P<sep>-?)(?P<month>\d{2})(?P=sep)(?P<day>\d{2})", re.ASCII)
# A calendar date with a time of day (and maybe an offset): one instant, which
# ``datetime.fromisoformat`` then reads and checks.
_DATE_TIME = re.compile(r"\d{4}(-?)\d{2}\1\d{2}[Tt ]\d{2}\S*", re.ASCII)


class ParameterError(ValueError):
    """A query parameter the panel cannot use; ``parameter`` names it."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.message = message


def parse_filter(args: Mapping[str, str]) -> Filter:
    """Build the Filter from action, user, ip, q, since, until and source; empty is unset.

    ``source`` may be given several times, or as one comma-separated value, or both.
    """
    values = {name: (args.get(name) or "").strip() or None for name in _SINGLE_PARAMETERS}
    for name, limit in _MAX_LENGTH.items():
        value = values[name]
        if value is not None and len(value) > limit:
            raise ParameterError(name, f"{name} is longer than {limit} characters")
    action = values["action"]
    if action is not None and ACTION_PATTERN.fullmatch(action) is None:
        raise ParameterError("action", "action must be an action key such as user.login")
    since = _timestamp("since", values["since"], end_of_day=False)
    until = _timestamp("until", values["until"], end_of_day=True)
    if since is not None and until is not None and until <= since:
        raise ParameterError("until", "until must be later than since")
    return Filter(
        action=action,
        user=values["user"],
        ip=values["ip"],
        q=values["q"],
        since=since,
        until=until,
        source=_sources(args),
    )


def _sources(args: Mapping[str, str]) -> tuple[str, ...]:
    given = args.getlist("source") if isinstance(args, MultiDict) else [args.get("source") or ""]
    names = {name.strip() for value in given for name in value.split(",")} - {""}
    for name in names:
        if SOURCE_NAME_PATTERN.fullmatch(name) is None:
            raise ParameterError(
                "source", "source must be a source name such as local or web-2 (or several)"
            )
    if len(names) > MAX_SOURCES:
        raise ParameterError("source", f"source names at most {MAX_SOURCES} sources")
    return tuple(sorted(names))


def parse_page(args: Mapping[str, str]) -> tuple[int | None, int]:
    """Return (before, limit): the cursor (a row id) and the page size, 1 to MAX_LIMIT."""
    before = _positive_int(args, "before", None)
    limit = _positive_int(args, "limit", DEFAULT_LIMIT)
    assert limit is not None
    if limit > MAX_LIMIT:
        raise ParameterError("limit", f"limit must be at most {MAX_LIMIT}")
    return before, limit


def _positive_int(args: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise ParameterError(name, f"{name} must be a positive whole number")
    number = int(raw)
    if number < 1:
        raise ParameterError(name, f"{name} must be a positive whole number")
    return number


def _timestamp(name: str, raw: str | None, *, end_of_day: bool) -> str | None:
    """Accept a date or an ISO 8601 date-time; without an offset it is UTC. Returns the stored form.

    A date (2026-11-26 or 20261126) is the whole day: as ``since`` its first instant, as
    ``until`` (exclusive) the next day's, so until=2026-11-26 includes the 26th in either form.
    Other ISO forms that name a span longer than an instant (a week, a day of the year) are
    refused rather than read as their first midnight.
    """
    if raw is None:
        return None
    text = raw.replace("z", "Z")
    day = _DATE.fullmatch(text)
    try:
        if day is not None:
            moment = datetime(int(day["year"]), int(day["month"]), int(day["day"]), tzinfo=UTC)
        elif _DATE_TIME.fullmatch(text) is not None:
            moment = datetime.fromisoformat(text)
        else:
            raise ValueError(text)
    except ValueError:
        raise ParameterError(
            name,
            f"{name} must be a date such as 2026-11-26 or 20261126, or a date-time such as "
            "2026-11-26T13:00 (UTC unless an offset such as +01:00 is given)",
        ) from None
    try:
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        if end_of_day and day is not None:
            moment += timedelta(days=1)
    except OverflowError:
        raise ParameterError(name, f"{name} is out of range") from None
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:"
        f"{moment.minute:02d}:{moment.second:02d}.{moment.microsecond:06d}Z"
    )
