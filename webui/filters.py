"""Reading the query string: filters, cursor and page size, each refused by name when bad."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from trek_audit.store import Filter
from trek_audit.writer.line import ACTION_PATTERN

__all__ = ["FILTER_PARAMETERS", "ParameterError", "parse_filter", "parse_page"]

FILTER_PARAMETERS = ("action", "user", "ip", "q", "since", "until")
DEFAULT_LIMIT = 100
MAX_LIMIT = 500
_MAX_LENGTH = {"user": 320, "ip": 100, "q": 500}


class ParameterError(ValueError):
    """A query parameter the panel cannot use; ``parameter`` names it."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.message = message


def parse_filter(args: Mapping[str, str]) -> Filter:
    """Build the Filter from action, user, ip, q, since and until; an empty value is unset."""
    values = {name: (args.get(name) or "").strip() or None for name in FILTER_PARAMETERS}
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
        action=action, user=values["user"], ip=values["ip"], q=values["q"], since=since, until=until
    )


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

    A bare date as ``until`` means the end of that day, so until=2026-11-26 includes the 26th.
    """
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError:
        raise ParameterError(
            name, f"{name} must be a date or date-time such as 2026-11-26 or 2026-11-26T13:00"
        ) from None
    try:
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        if end_of_day and len(raw) == 10:
            moment += timedelta(days=1)
    except OverflowError:
        raise ParameterError(name, f"{name} is out of range") from None
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:"
        f"{moment.minute:02d}:{moment.second:02d}.{moment.microsecond:06d}Z"
    )
