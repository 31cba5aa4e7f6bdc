"""The activity chart: bars linked to their time range, ticks at round times of the zone, text
escaped, colours left to the stylesheet inline and carried by the stand-alone image."""

from __future__ import annotations

from datetime import UTC, datetime
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import pytest

from trek_audit.store import Histogram
from trek_audit.store.calendar import bucket_labels
from trek_audit.webui.chart import draw, render_inline, render_svg

SVG = "{http://www.w3.org/2000/svg}"
BERLIN = ZoneInfo("Europe/Berlin")


def histogram(unit: str, start: datetime, end: datetime, count: int = 3) -> Histogram:
    """A bucket of every ``unit`` from start to end, every third one empty."""
    labels = bucket_labels(start, end, unit)
    return Histogram(
        unit, [(label, 0 if n % 3 == 2 else count + n) for n, label in enumerate(labels)]
    )


def link(start: str, end: str) -> str:
    return f"?since={start}&until={end}"


def inline(
    hist: Histogram, zone: ZoneInfo = BERLIN, title: str = "All events"
) -> ElementTree.Element:
    markup = render_inline(draw(hist, zone), title, "a description", link)
    return ElementTree.fromstring(str(markup))  # noqa: S314 - our own output


SPANS = [
    (
        "minute",
        datetime(2026, 11, 25, 22, 0, tzinfo=UTC),
        datetime(2026, 11, 25, 23, 30, tzinfo=UTC),
    ),
    (
        "minute",
        datetime(2026, 11, 25, 22, 0, tzinfo=UTC),
        datetime(2026, 11, 25, 22, 9, tzinfo=UTC),
    ),
    ("hour", datetime(2026, 11, 25, 22, tzinfo=UTC), datetime(2026, 11, 27, 3, tzinfo=UTC)),
    ("hour", datetime(2026, 11, 20, 0, tzinfo=UTC), datetime(2026, 11, 24, 23, tzinfo=UTC)),
    ("day", datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 11, 27, tzinfo=UTC)),
    ("day", datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 8, tzinfo=UTC)),
    ("month", datetime(2020, 9, 1, tzinfo=UTC), datetime(2026, 11, 27, tzinfo=UTC)),
]
SPAN_IDS = ["90-minutes", "10-minutes", "30-hours", "5-days", "3-months", "8-days", "6-years"]


@pytest.mark.parametrize(("unit", "start", "end"), SPANS, ids=SPAN_IDS)
@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "Asia/Kolkata", "America/New_York"])
def test_the_time_axis_has_four_to_eight_labels_in_order(
    unit: str, start: datetime, end: datetime, zone: str
) -> None:
    chart = draw(histogram(unit, start, end), ZoneInfo(zone))
    places = [tick.at for tick in chart.x_ticks]
    assert 4 <= len(places) <= 8, chart.x_ticks
    assert places == sorted(places) and len(set(places)) == len(places)
    assert all(
        chart.bars[0].x <= at <= chart.bars[-1].x + chart.bars[-1].width + 1 for at in places
    )


def test_hour_ticks_fall_on_round_hours_of_the_zone_even_a_half_hour_one() -> None:
    hist = histogram(
        "hour", datetime(2026, 11, 25, 22, tzinfo=UTC), datetime(2026, 11, 27, 3, tzinfo=UTC)
    )
    kolkata = [tick.text for tick in draw(hist, ZoneInfo("Asia/Kolkata")).x_ticks]
    berlin = [tick.text for tick in draw(hist, BERLIN).x_ticks]
    assert berlin == ["Nov 26 00:00", "06:00", "12:00", "18:00", "Nov 27 00:00"]
    # 22:00 UTC is 03:30 in Kolkata: the labels are its whole hours, not UTC's.
    assert all(text.endswith(":00") for text in kolkata), kolkata
    assert kolkata[0] == "Nov 26 06:00"


def test_the_value_axis_shows_zero_half_the_peak_and_the_peak() -> None:
    hist = Histogram("hour", [("2026-11-26T13", 10), ("2026-11-26T14", 4), ("2026-11-26T15", 0)])
    chart = draw(hist, UTC)
    assert [tick.text for tick in chart.y_ticks] == ["0", "5", "10"]
    heights = {bar.key: bar.height for bar in chart.bars}
    assert heights["2026-11-26T13"] > heights["2026-11-26T14"] > heights["2026-11-26T15"] == 0


def test_each_bar_with_events_links_its_utc_range_and_says_its_count() -> None:
    hist = Histogram("hour", [("2026-11-26T13", 2), ("2026-11-26T14", 0), ("2026-11-26T15", 1)])
    svg = inline(hist)
    assert svg.get("id") == "activity-chart" and svg.get("role") == "img"
    assert (svg.get("data-start"), svg.get("data-end")) == (
        "2026-11-26T13:00:00Z",
        "2026-11-26T16:00:00Z",
    )
    links = svg.findall(f"{SVG}a")
    assert [a.get("href") for a in links] == [
        "?since=2026-11-26T13:00:00Z&until=2026-11-26T14:00:00Z",
        "?since=2026-11-26T15:00:00Z&until=2026-11-26T16:00:00Z",
    ]
    bars = [a.find(f"{SVG}rect") for a in links]
    assert [(bar.get("class"), bar.get("data-count")) for bar in bars if bar is not None] == [
        ("bar", "2"),
        ("bar", "1"),
    ]
    titles = [a.findtext(f"{SVG}rect/{SVG}title") for a in links]
    # 13:00 UTC is 14:00 in Berlin in November.
    assert titles == ["2026-11-26 14:00–15:00: 2 events", "2026-11-26 16:00–17:00: 1 event"]
    plot = [rect for rect in svg.iter(f"{SVG}rect") if rect.get("class") == "plot"]
    assert len(plot) == 1 and {"x", "y", "width", "height"} <= set(plot[0].keys())


def test_a_day_bucket_is_named_by_its_span_when_the_zone_does_not_start_it_at_midnight() -> None:
    hist = Histogram("day", [("2026-11-26", 1)])
    assert draw(hist, UTC).bars[0].label == "2026-11-26"
    assert draw(hist, BERLIN).bars[0].label == "2026-11-26 01:00 – 2026-11-27 01:00"


def test_the_inline_chart_leaves_colours_to_the_stylesheet() -> None:
    hist = histogram(
        "hour", datetime(2026, 11, 25, 22, tzinfo=UTC), datetime(2026, 11, 26, 9, tzinfo=UTC)
    )
    markup = str(render_inline(draw(hist, UTC), "t", "d", link))
    assert "fill=" not in markup and "stroke=" not in markup and "style" not in markup
    classes = {element.get("class") for element in ElementTree.fromstring(markup).iter()}  # noqa: S314
    assert {"plot", "bar", "bar-link", "axis", "tick"} <= classes
    standalone = render_svg(hist, "t")
    assert 'fill="#3b6ea5"' in standalone and 'class="' not in standalone


PAYLOADS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "a & b ' \""]


@pytest.mark.parametrize("payload", PAYLOADS, ids=["script", "attribute", "quotes"])
def test_every_text_of_the_inline_chart_is_text_never_markup(payload: str) -> None:
    hist = Histogram("hour", [(payload, 3), ("2026-11-26T13", 0), (payload + "2", 1)])
    svg = inline(hist, title=payload)
    tags = {element.tag.removeprefix(SVG) for element in svg.iter()}
    assert tags <= {"svg", "title", "desc", "rect", "line", "text", "a"}
    assert svg.findtext(f"{SVG}title") == payload
    bars = [rect for rect in svg.iter(f"{SVG}rect") if rect.get("class") == "bar"]
    # A label off the time grid: drawn with its count, but no range to link or drag to.
    assert [bar.get("data-label") for bar in bars] == [payload, payload + "2"]
    assert [bar.findtext(f"{SVG}title") for bar in bars] == [
        f"{payload}: 3 events",
        f"{payload}2: 1 event",
    ]
    assert not svg.findall(f"{SVG}a") and svg.get("data-start") is None


def test_a_chart_without_events_says_so() -> None:
    svg = inline(Histogram("day", []))
    assert [text.text for text in svg.iter(f"{SVG}text")] == ["No events"]
    assert "No events" in render_svg(Histogram("day", []), "All events")
