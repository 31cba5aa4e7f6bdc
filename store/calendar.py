"""Time buckets for the histogram: minute, hour, day or month, labelled by a cut timestamp.

A bucket's label is the stored timestamp cut short (``2026-11-26T13:22`` is a minute,
``2026-11`` a month), so SQLite groups rows by ``substr(ts, 1, width)`` and a coarser unit
is the same labels cut shorter still.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["UNIT_WIDTH", "bucket_labels", "coarsen", "label_time", "parse_ts", "unit_for"]

# Characters of the timestamp that name a bucket of each unit.
UNIT_WIDTH = {"minute": 16, "hour": 13, "day": 10, "month": 7}
_UNIT_STEP = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}


def unit_for(span: timedelta, max_buckets: int) -> str:
    """The finest unit that covers ``span`` in fewer than ``max_buckets`` buckets."""
    for unit in ("minute", "hour", "day"):
        if span / _UNIT_STEP[unit] < max_buckets:
            return unit
    return "month"


def label_time(label: str) -> datetime:
    """The start of a bucket from its label (a timestamp cut to 7, 10, 13 or 16 characters)."""
    if len(label) == 7:
        return datetime.fromisoformat(label + "-01").replace(tzinfo=UTC)
    if len(label) == 13:
        return datetime.fromisoformat(label + ":00").replace(tzinfo=UTC)
    return datetime.fromisoformat(label).replace(tzinfo=UTC)


def coarsen(counts: dict[str, int], width: int) -> dict[str, int]:
    """Merge per-bucket counts into the buckets of a coarser unit (labels cut to ``width``)."""
    coarse: dict[str, int] = {}
    for label, count in counts.items():
        coarse[label[:width]] = coarse.get(label[:width], 0) + count
    return coarse


def parse_ts(ts: str) -> datetime:
    """A stored timestamp as a datetime; one that is not ISO 8601 counts from its date."""
    text = ts.rstrip("Z")
    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    except ValueError:
        return datetime.fromisoformat(text[:10]).replace(tzinfo=UTC)


def bucket_labels(start: datetime, end: datetime, unit: str) -> list[str]:
    """Every label of ``unit`` from the bucket holding ``start`` to the one holding ``end``."""
    width = UNIT_WIDTH[unit]
    labels: list[str] = []
    if unit == "month":
        year, month = start.year, start.month
        while (year, month) <= (end.year, end.month):
            labels.append(f"{year:04d}-{month:02d}")
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return labels
    step = _UNIT_STEP[unit]
    current = start.replace(second=0, microsecond=0)
    if unit in ("hour", "day"):
        current = current.replace(minute=0)
    if unit == "day":
        current = current.replace(hour=0)
    while current <= end:
        labels.append(current.strftime("%Y-%m-%dT%H:%M:%S")[:width])
        current += step
    return labels
