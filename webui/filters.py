"""Reading the query string: the filter as typed and as the store takes it, the zone, the cursor.

``read_query`` never refuses a request: each bad value is reported under its key and left out
of the filter, so the page can show the boxes as typed with the problem next to the field.
``parse_filter`` is the same reading for the API and the exports, which refuse the first bad
value with a ``ParameterError`` (a 400 naming the parameter).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from werkzeug.datastructures import MultiDict

from trek_audit.layout import SOURCE_NAME_PATTERN
from trek_audit.store import FILTER_FIELDS, Filter, parse_ip_pattern
from trek_audit.writer.line import ACTION_PATTERN

from .timerange import DEFAULT_ZONE, parse_time, read_zone, stored_form

__all__ = [
    "DEFAULT_LIMIT",
    "EXCLUDED",
    "FILTER_PARAMETERS",
    "MAX_LIMIT",
    "MAX_THROUGH_ROWS",
    "MAX_VALUES",
    "MULTI_VALUE_KEYS",
    "ZONE_COOKIE",
    "PageRequest",
    "ParameterError",
    "Query",
    "parse_filter",
    "parse_page",
    "read_query",
    "valid_query",
]

ZONE_COOKIE = "trek_tz"
# The URL keys that repeat (any of their values) are the Filter's multi-value fields; each
# takes exclusions (none of their values) too, under its key with "!" added: ip!=10.0.0.1.
MULTI_VALUE_KEYS = FILTER_FIELDS
EXCLUDED = "!"
_SINGLE_VALUE_KEYS = ("q", "since", "until")
_MULTI_VALUE_PARAMETERS = (*MULTI_VALUE_KEYS, *(key + EXCLUDED for key in MULTI_VALUE_KEYS))
FILTER_PARAMETERS = (*_MULTI_VALUE_PARAMETERS, *_SINGLE_VALUE_KEYS)
# Each value of a field is a branch or an IN term of the query (see store.sql): more than any
# investigation types, few enough to keep a query cheap.
MAX_VALUES = 20
_MAX_LENGTH = {"user": 320, "ip": 100, "resource": 2000, "q": 500, "since": 100, "until": 100}
DEFAULT_LIMIT = 100
MAX_LIMIT = 500
# The rows a page shows with ``through`` (the newest down to a row once seen): a reload after
# many Load mores, bounded so that one request stays small.
MAX_THROUGH_ROWS = 1000


class ParameterError(ValueError):
    """A query parameter the panel cannot use; ``parameter`` names it."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.message = message


@dataclass(frozen=True)
class Query:
    """The filter of a request, its parameters as typed, its zone and what was wrong with it.

    ``params`` keeps every filter value as typed (stripped; relative times stay relative), in
    URL order (a key's values together, where the key first appears), bad ones included so
    that the boxes show them; a comma-separated ``source`` is one pair per name. ``tz`` is
    the zone parameter as typed ("" when the zone came from the cookie or is the default);
    links keep it.
    """

    filter: Filter
    params: list[tuple[str, str]]
    zone: ZoneInfo
    zone_name: str
    errors: dict[str, str]
    tz: str = ""

    def value(self, key: str) -> str:
        """The typed value of a one-value key (q, since, until, tz; "" when unset): for boxes."""
        if key == "tz":
            return self.tz
        return next((value for name, value in self.params if name == key), "")

    def values(self, key: str) -> list[str]:
        """Every typed value of a repeatable key, in URL order."""
        return [value for name, value in self.params if name == key]

    def link(
        self,
        add: tuple[str, str] | None = None,
        remove: tuple[str, str] | None = None,
        **extra: str,
    ) -> str:
        """``?...`` for this filter with a pair added and/or removed, and ``extra`` keys set.

        Adding a value of a one-value key (q, since, until) replaces it; adding ``ip=X`` drops
        ``ip!=X`` and the other way round. ``extra`` sets each key to one value ("" drops it).
        The cursor (before, through) is left out; the typed zone is kept.
        """
        pairs = [pair for pair in self.params if pair != remove]
        if add is not None:
            key, value = add
            opposite = (key[:-1] if key.endswith(EXCLUDED) else key + EXCLUDED, value)
            pairs = [
                pair
                for pair in pairs
                if pair != opposite and (key not in _SINGLE_VALUE_KEYS or pair[0] != key)
            ]
            if add not in pairs:
                pairs.append(add)
        settings = {"tz": self.tz, **extra}
        pairs = [pair for pair in pairs if pair[0] not in settings]
        pairs.extend((key, value) for key, value in settings.items() if value)
        # Characters a query may carry as they are stay readable: ip!=10.0.0.0/8, 185.220.*.
        return "?" + urlencode(pairs, safe="!*:/@")


def read_query(
    args: Mapping[str, str], *, zone_cookie: str | None = None, now: datetime | None = None
) -> Query:
    """Read the filter, zone and times of a query string; never raises.

    The zone is the ``tz`` parameter, else the ``trek_tz`` cookie, else UTC; a bad ``tz`` is
    an error (and the cookie or UTC is used), a bad cookie is ignored. Unknown keys are ignored.
    """
    reading = _Reading()
    tz = _one(args, "tz")
    zone_name = DEFAULT_ZONE
    for candidate, reported in ((tz, True), (zone_cookie or "", False)):
        if not candidate:
            continue
        try:
            read_zone(candidate)
        except ValueError as error:
            if reported:
                reading.fail("tz", f"tz {error}")
            continue
        zone_name = candidate
        break
    zone = ZoneInfo(zone_name)
    for key, value in _pairs(args):
        if key in _MULTI_VALUE_PARAMETERS:
            names = value.split(",") if key.startswith("source") else [value]
            for name in (name.strip() for name in names):
                if name:
                    reading.params.append((key, name))
    for key in _SINGLE_VALUE_KEYS:
        if value := _one(args, key):
            reading.params.append((key, value))
    for key in _MULTI_VALUE_PARAMETERS:
        reading.check_values(key)
    q = reading.text("q")
    times = reading.times(zone, now or datetime.now(UTC))
    kept = reading.kept
    flt = Filter(
        action=kept("action"),
        user=kept("user"),
        ip=kept("ip"),
        resource=kept("resource"),
        source=kept("source"),
        q=q,
        since=times.get("since"),
        until=times.get("until"),
        not_action=kept("action!"),
        not_user=kept("user!"),
        not_ip=kept("ip!"),
        not_resource=kept("resource!"),
        not_source=kept("source!"),
    )
    return Query(flt, reading.params, zone, zone_name, reading.errors, tz)


def valid_query(
    args: Mapping[str, str], *, zone_cookie: str | None = None, now: datetime | None = None
) -> Query:
    """``read_query``, raising ParameterError for the first bad value instead of leaving it out."""
    query = read_query(args, zone_cookie=zone_cookie, now=now)
    for key, message in query.errors.items():
        raise ParameterError(key, message)
    return query


def parse_filter(
    args: Mapping[str, str], *, zone_cookie: str | None = None, now: datetime | None = None
) -> Filter:
    """The Filter of a query string; ParameterError (the API's 400) for the first bad value."""
    return valid_query(args, zone_cookie=zone_cookie, now=now).filter


class PageRequest(NamedTuple):
    """The rows a page shows: below ``before``, at most ``limit``, none below ``through``."""

    before: int | None
    limit: int
    through: int | None


def parse_page(args: Mapping[str, str]) -> PageRequest:
    """The cursor (a row id), the page size (1 to MAX_LIMIT) and the lowest row id to show.

    ``through`` asks for every row from ``before`` (or the newest) down to that row id,
    which must be below ``before``.
    """
    before = _positive_int(args, "before", None)
    limit = _positive_int(args, "limit", DEFAULT_LIMIT)
    through = _positive_int(args, "through", None)
    assert limit is not None
    if limit > MAX_LIMIT:
        raise ParameterError("limit", f"limit must be at most {MAX_LIMIT}")
    if through is not None and before is not None and through >= before:
        raise ParameterError("through", "through must be a row id below before")
    return PageRequest(before, limit, through)


class _Reading:
    """The state of one ``read_query``: typed pairs, errors by key, and the values kept."""

    def __init__(self) -> None:
        self.params: list[tuple[str, str]] = []
        self.errors: dict[str, str] = {}
        self._kept: dict[str, tuple[str, ...]] = {}

    def fail(self, key: str, message: str) -> None:
        """Report ``message`` (a sentence naming ``key``) unless ``key`` has one already."""
        self.errors.setdefault(key, message)

    def kept(self, key: str) -> tuple[str, ...]:
        """The good values of ``key``."""
        return self._kept.get(key, ())

    def check_values(self, key: str) -> None:
        given = [value for name, value in self.params if name == key]
        if len(set(given)) > MAX_VALUES:
            self.fail(key, f"{key} takes at most {MAX_VALUES} different values")
            return
        kept = []
        for value in given:
            problem = _problem(key, value)
            if problem is None:
                kept.append(value)
            else:
                self.fail(key, problem)
        self._kept[key] = tuple(kept)

    def text(self, key: str) -> str | None:
        """The value of a free-text key, None when unset or too long."""
        value = self.value(key)
        if value is not None and len(value) > _MAX_LENGTH[key]:
            self.fail(key, f"{key} is longer than {_MAX_LENGTH[key]} characters")
            return None
        return value

    def times(self, zone: ZoneInfo, now: datetime) -> dict[str, str]:
        """The stored forms of since and until; a bad or too early until is left out."""
        moments: dict[str, datetime] = {}
        for key in ("since", "until"):
            value = self.text(key)
            if value is None:
                continue
            try:
                moments[key] = parse_time(value, zone, now=now, end=key == "until")
            except ValueError as error:
                self.fail(key, f"{key} {error}")
        if "since" in moments and "until" in moments and moments["until"] <= moments["since"]:
            self.fail("until", "until must be later than since")
            del moments["until"]
        return {key: stored_form(moment) for key, moment in moments.items()}

    def value(self, key: str) -> str | None:
        return next((value for name, value in self.params if name == key), None)


def _problem(key: str, value: str) -> str | None:
    """What is wrong with one value of a multi-value key (``ip`` or ``ip!``), None if nothing."""
    field = key.removesuffix(EXCLUDED)
    limit = _MAX_LENGTH.get(field)
    if limit is not None and len(value) > limit:
        return f"{key} is longer than {limit} characters"
    if field == "action" and ACTION_PATTERN.fullmatch(value) is None:
        return f"{key} must be an action key such as user.login"
    if field == "source" and SOURCE_NAME_PATTERN.fullmatch(value) is None:
        return f"{key} must be a source name such as local or web-2 (or several)"
    if field == "ip":
        try:
            parse_ip_pattern(value)
        except ValueError as error:
            # The store's message names the value and says what is wrong with it.
            return f"{key}: {error}"
    return None


def _field(key: str) -> str:
    """The Filter field of a URL key: ``ip`` is ``ip``, ``ip!`` is ``not_ip``."""
    return "not_" + key[:-1] if key.endswith(EXCLUDED) else key


def _pairs(args: Mapping[str, str]) -> list[tuple[str, str]]:
    if isinstance(args, MultiDict):
        return list(args.items(multi=True))
    return list(args.items())


def _one(args: Mapping[str, str], key: str) -> str:
    return (args.get(key) or "").strip()


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
