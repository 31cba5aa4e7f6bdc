"""What the panel asks audit.db for and what it gets back: a filter, entries, a histogram."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from trek_audit.layout import LOCAL_SOURCE

__all__ = ["FILTER_FIELDS", "Entry", "Filter", "Histogram"]


# The fields that take several values (any of them) and exclusions (``not_<field>``).
FILTER_FIELDS = ("action", "user", "ip", "resource", "source")
# The one-value fields, after the others in URLs.
_SINGLE_FIELDS = ("q", "since", "until")


@dataclass(frozen=True)
class Filter:
    """What the admin asked for: the values of one field combine with OR, fields with AND.

    ``user`` matches a username or an email whatever its case (``str.casefold``), or a user
    id when it is a whole number. ``ip`` is an address, a network (``185.220.101.0/24``) or a
    text prefix (``185.220.`` or ``185.220.*``), see ``ip_patterns``. ``resource`` is exact.
    ``since`` and ``until`` are timestamps in the stored form (``2026-11-26T13:22:49.123456Z``);
    ``since`` is inclusive, ``until`` exclusive. ``q`` is free text for the full-text index:
    its words are quoted, so it is never FTS syntax (a trailing ``*`` keeps a prefix search).
    ``not_<field>`` leaves out the rows with any of its values; a row without a value (no IP,
    no user) is never left out by them.

    Each tuple is kept sorted and without repeats (or empty strings), so that two filters
    asking the same are equal, and are one key of the panel's caches.
    """

    action: tuple[str, ...] = ()
    user: tuple[str, ...] = ()
    ip: tuple[str, ...] = ()
    resource: tuple[str, ...] = ()
    source: tuple[str, ...] = ()
    q: str | None = None
    since: str | None = None
    until: str | None = None
    not_action: tuple[str, ...] = ()
    not_user: tuple[str, ...] = ()
    not_ip: tuple[str, ...] = ()
    not_resource: tuple[str, ...] = ()
    not_source: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in FILTER_FIELDS:
            for key in (name, "not_" + name):
                values = getattr(self, key)
                if isinstance(values, str):
                    # tuple("user.login") would be its letters: a mistake to refuse, not guess.
                    raise TypeError(f"Filter.{key} is a tuple of values, not a str: {values!r}")
                object.__setattr__(self, key, tuple(sorted({value for value in values if value})))

    def is_empty(self) -> bool:
        return not any(asdict(self).values())

    def as_params(self) -> list[tuple[str, str]]:
        """The filter as URL pairs, in a stable order: each field's values, then its exclusions
        (under ``<field>!``), then q, since and until."""
        params = [
            (key, value)
            for name in FILTER_FIELDS
            for key, values in ((name, getattr(self, name)), (name + "!", self.excluded(name)))
            for value in values
        ]
        params.extend((name, value) for name in _SINGLE_FIELDS if (value := getattr(self, name)))
        return params

    def as_dict(self) -> dict[str, str | list[str]]:
        """The fields that are set, for the details of ``audit.export``: one value as a str,
        several as a list; exclusions under ``<field>!``."""
        fields: dict[str, str | list[str]] = {}
        for key, value in self.as_params():
            kept = fields.get(key)
            if kept is None:
                fields[key] = value
            elif isinstance(kept, list):
                kept.append(value)
            else:
                fields[key] = [kept, value]
        return fields

    def excluded(self, name: str) -> tuple[str, ...]:
        """The values ``not_<name>`` leaves out (``name`` one of FILTER_FIELDS)."""
        values: tuple[str, ...] = getattr(self, "not_" + name)
        return values


@dataclass(frozen=True)
class Entry:
    """One row of audit_log; ``row_id`` is the cursor, ``event_id`` the event's identity."""

    row_id: int
    event_id: str
    seq: int | None
    ts: str
    action: str
    user_id: int | None
    username: str | None
    email: str | None
    resource: str | None
    ip: str | None
    details: str | None
    source: str = LOCAL_SOURCE

    @property
    def has_user(self) -> bool:
        return self.user_id is not None or self.username is not None or self.email is not None


@dataclass(frozen=True)
class Histogram:
    """Counts of matching events per time bucket, oldest first, empty buckets included."""

    unit: str  # "minute", "hour", "day" or "month"
    buckets: list[tuple[str, int]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(count for _, count in self.buckets)
