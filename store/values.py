"""What the panel asks audit.db for and what it gets back: a filter, entries, a histogram."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from trek_audit.layout import LOCAL_SOURCE

__all__ = ["Entry", "Filter", "Histogram"]


@dataclass(frozen=True)
class Filter:
    """What the admin asked for; every field is optional and they combine with AND.

    ``user`` matches a username, an email or (when it is a whole number) a user id.
    ``since`` and ``until`` are timestamps in the stored form (``2026-11-26T13:22:49.123456Z``);
    ``since`` is inclusive, ``until`` exclusive. ``q`` is free text for the full-text index:
    its words are quoted, so it is never FTS syntax (a trailing ``*`` keeps a prefix search).
    ``source`` is the sources a row may come from (any of them), sorted; empty is every source.
    """

    action: str | None = None
    user: str | None = None
    ip: str | None = None
    q: str | None = None
    since: str | None = None
    until: str | None = None
    source: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return not any(asdict(self).values())

    def as_dict(self) -> dict[str, str]:
        """The fields that are set, for URLs and for the details of ``audit.export``.

        Several sources are one value, comma-separated: a source name has no comma in it.
        """
        fields = {key: value for key, value in asdict(self).items() if value}
        if self.source:
            fields["source"] = ",".join(self.source)
        return fields


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
