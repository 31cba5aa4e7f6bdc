"""The activity chart: a bar per time bucket, drawn on the server as SVG (no script).

``draw`` lays a histogram out once (bars, x ticks at round times of the viewer's zone, y
ticks); ``render_inline`` turns the layout into the SVG the Audit page embeds (colours come
from classes, so the page's stylesheet and its dark theme style it), ``render_svg`` into the
stand-alone image of GET /admin/audit/chart.svg (its own fills, times in UTC).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from markupsafe import Markup, escape

from trek_audit.store import Histogram
from trek_audit.store.calendar import label_time

__all__ = ["Bar", "Chart", "Tick", "draw", "render_inline", "render_svg", "utc_iso"]

WIDTH, HEIGHT = 960, 180
_TOP, _BOTTOM, _LEFT, _RIGHT = 22, 26, 52, 44
PLOT_W, PLOT_H = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
_BASE = HEIGHT - _BOTTOM
# At most this many time labels on the x axis: ~110 px each leaves room for "Nov 26 14:00".
MAX_X_TICKS = 8
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Tick steps from the finest: (unit, how many); a month is 1/12 of a year for the estimate.
_TICK_STEPS = (
    *(("minute", n) for n in (1, 2, 5, 10, 15, 30)),
    *(("hour", n) for n in (1, 2, 3, 6, 12)),
    *(("day", n) for n in (1, 2, 7, 14)),
    *(("month", n) for n in (1, 2, 3, 6, 12, 24, 60, 120, 600)),
)
_APPROX = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "month": timedelta(days=30.44),
}


@dataclass(frozen=True)
class Bar:
    """One bucket: where it is drawn, its count, and its span (UTC ISO, None if unreadable)."""

    label: str  # the bucket's span in the zone, "2026-11-26 14:00–15:00"
    key: str  # the histogram's label, "2026-11-26T13"
    count: int
    start: str | None
    end: str | None
    x: float
    width: float
    y: float
    height: float


@dataclass(frozen=True)
class Tick:
    """A label on an axis: its place (x on the time axis, y on the count axis) and its text."""

    at: float
    text: str


@dataclass(frozen=True)
class Chart:
    """The laid-out chart of one histogram in one zone."""

    unit: str
    total: int
    peak: int
    bars: list[Bar]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    start: str | None  # the plotted range, UTC ISO with Z (None without bars)
    end: str | None

    @property
    def counted(self) -> list[Bar]:
        """The buckets with events, for the table of counts."""
        return [bar for bar in self.bars if bar.count]


def utc_iso(moment: datetime) -> str:
    """A UTC instant as the page's links and data attributes carry it: 2026-11-26T13:00:00Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def draw(histogram: Histogram, zone: tzinfo) -> Chart:
    """Lay the histogram out: equal bars oldest first, ticks at round times of ``zone``."""
    buckets = histogram.buckets
    peak = max((count for _, count in buckets), default=0)
    spans = [_span(label, histogram.unit) for label, _ in buckets]
    step = PLOT_W / len(buckets) if buckets else 0.0
    bars = []
    for index, ((label, count), span) in enumerate(zip(buckets, spans, strict=True)):
        height = max(count / peak * PLOT_H, 1.0) if count else 0.0
        bars.append(
            Bar(
                label=_span_label(span, histogram.unit, zone) if span else label,
                key=label,
                count=count,
                start=utc_iso(span[0]) if span else None,
                end=utc_iso(span[1]) if span else None,
                x=_LEFT + index * step,
                width=max(step - 1, 1.0),
                y=_BASE - height,
                height=height,
            )
        )
    readable = bool(spans) and all(span is not None for span in spans)
    known = [span for span in spans if span is not None]
    return Chart(
        unit=histogram.unit,
        total=histogram.total,
        peak=peak,
        bars=bars,
        x_ticks=_x_ticks(known, step, zone) if readable else [],
        y_ticks=_y_ticks(peak),
        start=utc_iso(known[0][0]) if readable else None,
        end=utc_iso(known[-1][1]) if readable else None,
    )


def _span(label: str, unit: str) -> tuple[datetime, datetime] | None:
    """A bucket's first instant and the next bucket's, or None for a label off the grid."""
    try:
        start = label_time(label)
    except ValueError:
        return None
    if unit == "month":
        year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
        return start, start.replace(year=year, month=month)
    return start, start + _APPROX.get(unit, timedelta(days=1))


def _span_label(span: tuple[datetime, datetime], unit: str, zone: tzinfo) -> str:
    start, end = (moment.astimezone(zone) for moment in span)
    midnight = start.hour == start.minute == 0
    if unit == "month" and midnight and start.day == 1:
        return f"{start:%Y-%m}"
    if unit == "day" and midnight:
        return f"{start:%Y-%m-%d}"
    if unit in ("minute", "hour"):
        return f"{start:%Y-%m-%d %H:%M}–{end:%H:%M}"
    return f"{start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M}"


def _x_ticks(spans: list[tuple[datetime, datetime]], step: float, zone: tzinfo) -> list[Tick]:
    """Labels at round times of ``zone`` (whole hours, midnights, firsts of months), 2 to 8."""
    first, last = spans[0][0], spans[-1][1]
    unit, every = next(
        (
            (unit, n)
            for unit, n in _TICK_STEPS
            if (last - first) / (_APPROX[unit] * n) < MAX_X_TICKS
        ),
        _TICK_STEPS[-1],
    )
    ticks: list[Tick] = []
    previous: datetime | None = None
    for moment in _round_times(first.astimezone(zone), last, unit, every, zone):
        x = _x_of(moment, spans, step)
        if x is None:
            continue
        ticks.append(Tick(x, _tick_text(moment, unit, previous)))
        previous = moment
    return ticks


def _round_times(
    start: datetime, last: datetime, unit: str, every: int, zone: tzinfo
) -> Iterator[datetime]:
    """The instants from ``start`` to ``last`` whose wall time in ``zone`` is a round one."""
    wall = start.replace(tzinfo=None, second=0, microsecond=0)
    if unit != "minute":
        wall = wall.replace(minute=0)
    if unit in ("day", "month"):
        wall = wall.replace(hour=0)
    if unit == "month":
        wall = wall.replace(day=1)
    seen: set[datetime] = set()
    # Wall times step by the base unit and those on the grid are kept: at most 8 steps of
    # ``every`` units, so a few hundred iterations at worst.
    while True:
        moment = wall.replace(tzinfo=zone).astimezone(UTC)
        if moment > last:
            return
        if moment >= start and moment not in seen and _on_grid(wall, unit, every):
            seen.add(moment)
            yield moment.astimezone(zone)
        wall = _next_wall(wall, unit)


def _on_grid(wall: datetime, unit: str, every: int) -> bool:
    if unit == "minute":
        return wall.minute % every == 0
    if unit == "hour":
        return wall.hour % every == 0
    if unit == "day":
        # Day 1 of the proleptic calendar is a Monday: weekly ticks fall on Mondays.
        return (wall.toordinal() - 1) % every == 0
    return (wall.year * 12 + wall.month - 1) % every == 0


def _next_wall(wall: datetime, unit: str) -> datetime:
    if unit == "month":
        return (
            wall.replace(year=wall.year + 1, month=1)
            if wall.month == 12
            else wall.replace(month=wall.month + 1)
        )
    return wall + _APPROX[unit]


def _x_of(moment: datetime, spans: list[tuple[datetime, datetime]], step: float) -> float | None:
    """Where an instant falls on the time axis: inside its bucket, in proportion."""
    for index, (start, end) in enumerate(spans):
        if start <= moment <= end:
            return _LEFT + (index + (moment - start) / (end - start)) * step
    return None


def _tick_text(moment: datetime, unit: str, previous: datetime | None) -> str:
    day = f"{_MONTHS[moment.month - 1]} {moment.day}"
    if unit in ("minute", "hour"):
        new_day = previous is None or previous.date() != moment.date()
        return f"{day} {moment:%H:%M}" if new_day else f"{moment:%H:%M}"
    if unit == "day":
        return day
    if moment.month == 1 or previous is None:
        return f"{_MONTHS[moment.month - 1]} {moment.year}"
    return _MONTHS[moment.month - 1]


def _y_ticks(peak: int) -> list[Tick]:
    """0, half the peak (when that is a whole number of events above 0) and the peak."""
    values = [0, peak // 2, peak] if peak >= 2 else [0, peak] if peak else [0]
    return [Tick(_BASE - value / (peak or 1) * PLOT_H, f"{value:,}") for value in values]


def render_inline(
    chart: Chart, title: str, description: str, href: Callable[[str, str], str]
) -> Markup:
    """The chart as the Audit page embeds it; ``href(start, end)`` links a bucket's time range."""
    attrs = f' data-start="{chart.start}" data-end="{chart.end}"' if chart.start else ""
    parts = [
        f'<svg id="activity-chart" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" '
        f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="chart-title chart-desc" data-unit="{escape(chart.unit)}"{attrs}>',
        f'<title id="chart-title">{escape(title)}</title>',
        f'<desc id="chart-desc">{escape(description)}</desc>',
        f'<rect class="plot" x="{_LEFT}" y="{_TOP}" width="{PLOT_W}" height="{PLOT_H}"/>',
    ]
    parts += _axes(chart, fills=False)
    for bar in chart.counted:
        tip = f"{bar.label}: {_events(bar.count)}"
        rect = (
            f'<rect class="bar" x="{bar.x:.1f}" y="{bar.y:.1f}" width="{bar.width:.1f}" '
            f'height="{bar.height:.1f}" data-count="{bar.count}" data-label="{escape(bar.label)}"'
        )
        if bar.start is None or bar.end is None:
            parts.append(f"{rect}><title>{escape(tip)}</title></rect>")
            continue
        parts.append(
            f'<a class="bar-link" href="{escape(href(bar.start, bar.end))}">'
            f'{rect} data-start="{bar.start}" data-end="{bar.end}">'
            f"<title>{escape(tip)}</title></rect></a>"
        )
    if not chart.bars:
        parts.append(_no_events(fills=False))
    parts.append("</svg>")
    return Markup("\n".join(parts))  # noqa: S704 - every text in it went through escape()


def render_svg(histogram: Histogram, title: str) -> str:
    """The stand-alone SVG document of the histogram (UTC); every text in it is XML-escaped."""
    chart = draw(histogram, UTC)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
    ]
    parts += _axes(chart, fills=True)
    for bar in chart.counted:
        parts.append(
            f'<rect x="{bar.x:.1f}" y="{bar.y:.1f}" width="{bar.width:.1f}" '
            f'height="{bar.height:.1f}" fill="#3b6ea5">'
            f"<title>{escape(bar.key)} UTC: {bar.count}</title></rect>"
        )
    if chart.bars:
        parts.append(
            f'<text x="{WIDTH // 2}" y="14" text-anchor="middle" {_FONT} fill="#333333">'
            f"{escape(title)}: {chart.total} events, per {escape(chart.unit)} (UTC)</text>"
        )
    else:
        parts.append(_no_events(fills=True))
    parts.append("</svg>")
    return "\n".join(parts)


_FONT = 'font-family="sans-serif" font-size="11"'


def _axes(chart: Chart, *, fills: bool) -> list[str]:
    """The two axis lines and their ticks; with ``fills``, colours of their own."""
    line = ' stroke="#888888" stroke-width="1"' if fills else ""
    text = f' {_FONT} fill="#333333"' if fills else ""
    axis = "" if fills else ' class="axis"'
    tick = "" if fills else ' class="tick"'
    parts = [
        f'<line{axis} x1="{_LEFT}" y1="{_BASE}" x2="{WIDTH - _RIGHT}" y2="{_BASE}"{line}/>',
        f'<line{axis} x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_BASE}"{line}/>',
    ]
    if not chart.bars:
        return parts
    for y_tick in chart.y_ticks:
        parts.append(
            f'<text{tick} x="{_LEFT - 6}" y="{y_tick.at + 4:.1f}" text-anchor="end"{text}>'
            f"{escape(y_tick.text)}</text>"
        )
    for x_tick in chart.x_ticks:
        parts.append(
            f'<line{axis} x1="{x_tick.at:.1f}" y1="{_BASE}" x2="{x_tick.at:.1f}" '
            f'y2="{_BASE + 4}"{line}/>'
        )
        parts.append(
            f'<text{tick} x="{x_tick.at:.1f}" y="{HEIGHT - 8}" text-anchor="middle"{text}>'
            f"{escape(x_tick.text)}</text>"
        )
    return parts


def _no_events(*, fills: bool) -> str:
    look = f' {_FONT} fill="#555555"' if fills else ' class="tick"'
    return f'<text x="{WIDTH // 2}" y="{HEIGHT // 2}" text-anchor="middle"{look}>No events</text>'


def _events(count: int) -> str:
    return f"{count:,} event" if count == 1 else f"{count:,} events"
