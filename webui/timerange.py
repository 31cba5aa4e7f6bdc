"""Times as people type them (now-24h, now/d, a date, a date-time) in a time zone, and back.

Relative times follow Grafana's syntax: ``now``, then any number of ``+N<unit>`` or ``-N<unit>``
terms, then optionally ``/<unit>`` to round, with the units s m h d w M y. Seconds, minutes and
hours are lengths of time; days, weeks, months and years are steps of the calendar in the zone,
so ``now-1d`` is the same clock time yesterday even across a daylight-saving change. Rounding
takes ``since`` to the start of the unit and ``until`` (which is exclusive) to its end, so
``since=now/d&until=now/d`` is the whole of today in the zone.

A clock time the zone skips (02:30 when clocks jump from 02:00 to 03:00) moves forward by the
jump; one it passes twice (the hour the clocks go back) is its first occurrence.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

__all__ = [
    "DEFAULT_ZONE",
    "QUICK_RANGES",
    "QuickRange",
    "display_time",
    "is_relative",
    "parse_time",
    "read_zone",
    "stored_form",
    "zone_label",
    "zone_names",
]

DEFAULT_ZONE = "UTC"


class QuickRange(NamedTuple):
    """A time range offered as one click: the since and until values it puts in the query."""

    label: str
    since: str
    until: str


QUICK_RANGES = (
    QuickRange("Last 15 minutes", "now-15m", ""),
    QuickRange("Last 1 hour", "now-1h", ""),
    QuickRange("Last 24 hours", "now-24h", ""),
    QuickRange("Last 7 days", "now-7d", ""),
    QuickRange("Last 30 days", "now-30d", ""),
    QuickRange("Today", "now/d", "now/d"),
    QuickRange("Yesterday", "now-1d/d", "now-1d/d"),
)

_UNITS = "smhdwMy"
# At most 7 digits per step: now-9999999s is 115 days, now-9999999y is refused as out of range.
_RELATIVE = re.compile(
    rf"now(?P<steps>(?:[+-]\d{{1,7}}[{_UNITS}])*)(?:/(?P<round>[{_UNITS}]))?", re.ASCII
)
_STEP = re.compile(rf"([+-])(\d+)([{_UNITS}])", re.ASCII)
_LENGTHS = {"s": timedelta(seconds=1), "m": timedelta(minutes=1), "h": timedelta(hours=1)}
# A calendar date, extended (2026-11-26) or basic (20261126): a whole day.
_DATE = re.compile(r"(?P<year>\d{4})(?P<sep>-?)(?P<month>\d{2})(?P=sep)(?P<day>\d{2})", re.ASCII)
# A calendar date with a time of day (and maybe an offset): one instant, which
# ``datetime.fromisoformat`` then reads and checks. Other ISO forms (a week, a day of the
# year, a month) name a span, and are refused rather than read as their first midnight.
_DATE_TIME = re.compile(r"\d{4}(-?)\d{2}\1\d{2}[Tt ]\d{2}\S*", re.ASCII)
# An IANA name is letters, digits and _+-/ (Etc/GMT+3, America/Port-au-Prince).
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*", re.ASCII)


def is_relative(text: str) -> bool:
    """Whether ``text`` is a time relative to now (it then means something else a minute later)."""
    return _RELATIVE.fullmatch(text) is not None


def parse_time(text: str, zone: ZoneInfo, *, now: datetime, end: bool) -> datetime:
    """The instant (in UTC) that ``text`` names in ``zone``; ``end`` reads it as an until.

    A date is its whole day in the zone: its first instant, or for ``end`` (until is
    exclusive) the next day's. Raises ValueError with a message saying what is accepted.
    """
    try:
        relative = _RELATIVE.fullmatch(text)
        if relative is not None:
            return _relative(relative, zone, now, end)
        day = _DATE.fullmatch(text)
        if day is not None:
            start = datetime(int(day["year"]), int(day["month"]), int(day["day"]))
            return _in_zone(start + timedelta(days=1) if end else start, zone)
        if _DATE_TIME.fullmatch(text) is not None:
            moment = datetime.fromisoformat(text.replace("z", "Z"))
            if moment.tzinfo is None:
                return _in_zone(moment, zone)
            return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range") from None
    except ValueError as error:
        # "year 10000 is out of range": a step past the calendar, not a malformed time.
        if str(error).startswith("year "):
            raise ValueError("is out of range") from None
    raise ValueError(
        "must be a time such as now-24h or now/d, a date such as 2026-11-26 or 20261126, "
        "or a date-time such as 2026-11-26T13:00 (in the chosen zone unless an offset "
        "such as +01:00 or Z is given)"
    )


def _relative(match: re.Match[str], zone: ZoneInfo, now: datetime, end: bool) -> datetime:
    moment = now.astimezone(UTC)
    for sign, amount, unit in _STEP.findall(match["steps"]):
        count = int(amount) if sign == "+" else -int(amount)
        if unit in _LENGTHS:
            moment += count * _LENGTHS[unit]
        else:
            moment = _in_zone(_calendar_step(_wall_clock(moment, zone), count, unit), zone)
    unit = match["round"]
    if unit is None:
        return moment
    if unit in _LENGTHS:
        # Rounded on the zone's clock, keeping which of a repeated hour it is (the fold).
        start = _start_of(moment.astimezone(zone), unit).astimezone(UTC)
        return start + _LENGTHS[unit] if end else start
    day = _start_of(_wall_clock(moment, zone), unit)
    return _in_zone(_calendar_step(day, 1, unit) if end else day, zone)


def _wall_clock(moment: datetime, zone: ZoneInfo) -> datetime:
    """The clock time in ``zone`` at ``moment``, without a zone (for calendar arithmetic)."""
    return moment.astimezone(zone).replace(tzinfo=None, fold=0)


def _in_zone(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant (UTC) at which ``zone``'s clocks show ``wall``.

    fold=0 picks the first of a repeated clock time, and reads a skipped one with the offset
    before the jump, which lands it the length of the jump later (02:30 becomes 03:30).
    """
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _calendar_step(wall: datetime, count: int, unit: str) -> datetime:
    """``wall`` moved by ``count`` days, weeks, months or years, keeping the clock time."""
    if unit == "d":
        return wall + timedelta(days=count)
    if unit == "w":
        return wall + timedelta(weeks=count)
    months = wall.month - 1 + (count if unit == "M" else 12 * count)
    year, month = wall.year + months // 12, months % 12 + 1
    # Like Grafana: the 31st one month on is the last day of a shorter month.
    return wall.replace(year=year, month=month, day=min(wall.day, _days_in(year, month)))


def _days_in(year: int, month: int) -> int:
    following = datetime(year + month // 12, month % 12 + 1, 1)
    return (following - timedelta(days=1)).day


def _start_of(wall: datetime, unit: str) -> datetime:
    """The first clock time of the ``unit`` that ``wall`` is in; weeks start on Monday."""
    if unit == "s":
        return wall.replace(microsecond=0)
    if unit == "m":
        return wall.replace(second=0, microsecond=0)
    if unit == "h":
        return wall.replace(minute=0, second=0, microsecond=0)
    day = wall.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "d":
        return day
    if unit == "w":
        return day - timedelta(days=day.weekday())
    if unit == "M":
        return day.replace(day=1)
    return day.replace(month=1, day=1)


def stored_form(moment: datetime) -> str:
    """``moment`` as audit.db stores times: ``2026-11-26T13:22:49.123456Z`` (UTC)."""
    moment = moment.astimezone(UTC)
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:"
        f"{moment.minute:02d}:{moment.second:02d}.{moment.microsecond:06d}Z"
    )


def display_time(ts: str, zone: ZoneInfo) -> str:
    """A stored time shown in ``zone`` to the second: ``2026-11-26 14:22:49``."""
    moment = datetime.fromisoformat(ts.replace("z", "Z")).astimezone(zone)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def zone_label(zone_name: str, now: datetime | None = None) -> str:
    """The zone and its offset at ``now``: ``Europe/Berlin (UTC+01:00)``."""
    moment = (now or datetime.now(UTC)).astimezone(ZoneInfo(zone_name))
    offset = moment.strftime("%z") or "+0000"
    return f"{zone_name} (UTC{offset[:3]}:{offset[3:5]})"


_NOT_A_ZONE = "must be a time zone name such as Europe/Berlin, America/New_York or UTC"


def read_zone(name: str) -> ZoneInfo:
    """The IANA zone called ``name``; ValueError for anything else (paths, unknown names)."""
    if _ZONE_NAME.fullmatch(name) is None or name not in _available():
        raise ValueError(_NOT_A_ZONE)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(_NOT_A_ZONE) from None


def zone_names() -> list[str]:
    """The zones to choose from: UTC and every Area/City name, sorted."""
    return list(_offered())


@lru_cache(maxsize=1)
def _available() -> frozenset[str]:
    # Reading the zone list walks the tzdata package: once per process is enough.
    return frozenset(available_timezones())


# The continents and oceans of the IANA database: old aliases (US/Eastern, Etc/GMT+3) still
# work in ``tz`` but are not offered.
_AREAS = frozenset(
    {
        "Africa",
        "America",
        "Antarctica",
        "Arctic",
        "Asia",
        "Atlantic",
        "Australia",
        "Europe",
        "Indian",
        "Pacific",
    }
)


@lru_cache(maxsize=1)
def _offered() -> tuple[str, ...]:
    names = {name for name in _available() if name.partition("/")[0] in _AREAS}
    return tuple(sorted(names | {DEFAULT_ZONE}))
