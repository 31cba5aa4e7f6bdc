"""Times as typed: relative forms, rounding, dates and date-times in a zone, and zone names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trek_audit.webui.timerange import (
    QUICK_RANGES,
    QuickRange,
    display_time,
    is_relative,
    parse_time,
    read_zone,
    stored_form,
    zone_label,
    zone_names,
)

UTC_ZONE = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")
KOLKATA = ZoneInfo("Asia/Kolkata")
# A Thursday in winter, 14:03:07.5 in Berlin (UTC+01:00).
NOW = datetime(2026, 1, 15, 13, 3, 7, 500000, tzinfo=UTC)


def since(text: str, zone: ZoneInfo = UTC_ZONE, now: datetime = NOW) -> str:
    return stored_form(parse_time(text, zone, now=now, end=False))


def until(text: str, zone: ZoneInfo = UTC_ZONE, now: datetime = NOW) -> str:
    return stored_form(parse_time(text, zone, now=now, end=True))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", "2026-01-15T13:03:07.500000Z"),
        ("now-30s", "2026-01-15T13:02:37.500000Z"),
        ("now-15m", "2026-01-15T12:48:07.500000Z"),
        ("now-24h", "2026-01-14T13:03:07.500000Z"),
        ("now-7d", "2026-01-08T13:03:07.500000Z"),
        ("now-2w", "2026-01-01T13:03:07.500000Z"),
        ("now-1M", "2025-12-15T13:03:07.500000Z"),
        ("now-1y", "2025-01-15T13:03:07.500000Z"),
        ("now+1h", "2026-01-15T14:03:07.500000Z"),
        ("now-1d-2h", "2026-01-14T11:03:07.500000Z"),
        ("now-1h+30m", "2026-01-15T12:33:07.500000Z"),
    ],
    ids=lambda value: str(value),
)
def test_each_relative_form_counts_back_from_now(text: str, expected: str) -> None:
    assert since(text) == expected
    assert until(text) == expected  # without rounding, since and until are the same instant
    assert is_relative(text)


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("now/s", "2026-01-15T13:03:07.000000Z", "2026-01-15T13:03:08.000000Z"),
        ("now/m", "2026-01-15T13:03:00.000000Z", "2026-01-15T13:04:00.000000Z"),
        ("now/h", "2026-01-15T13:00:00.000000Z", "2026-01-15T14:00:00.000000Z"),
        ("now/d", "2026-01-15T00:00:00.000000Z", "2026-01-16T00:00:00.000000Z"),
        ("now/w", "2026-01-12T00:00:00.000000Z", "2026-01-19T00:00:00.000000Z"),
        ("now/M", "2026-01-01T00:00:00.000000Z", "2026-02-01T00:00:00.000000Z"),
        ("now/y", "2026-01-01T00:00:00.000000Z", "2027-01-01T00:00:00.000000Z"),
        ("now-1d/d", "2026-01-14T00:00:00.000000Z", "2026-01-15T00:00:00.000000Z"),
        ("now-1M/M", "2025-12-01T00:00:00.000000Z", "2026-01-01T00:00:00.000000Z"),
    ],
    ids=lambda value: str(value),
)
def test_rounding_takes_since_to_the_start_and_until_to_the_end_of_the_unit(
    text: str, start: str, end: str
) -> None:
    assert since(text) == start
    assert until(text) == end


def test_today_and_yesterday_are_whole_days_in_the_zone() -> None:
    # Midnight in Berlin is 23:00 UTC the day before in winter.
    assert (since("now/d", BERLIN), until("now/d", BERLIN)) == (
        "2026-01-14T23:00:00.000000Z",
        "2026-01-15T23:00:00.000000Z",
    )
    assert (since("now-1d/d", BERLIN), until("now-1d/d", BERLIN)) == (
        "2026-01-13T23:00:00.000000Z",
        "2026-01-14T23:00:00.000000Z",
    )


def test_a_day_in_summer_in_berlin_starts_at_22_utc() -> None:
    summer = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert since("now/d", BERLIN, summer) == "2026-06-30T22:00:00.000000Z"
    assert since("2026-07-01", BERLIN) == "2026-06-30T22:00:00.000000Z"
    assert since("2026-07-01T09:00", BERLIN) == "2026-07-01T07:00:00.000000Z"


def test_the_day_the_clocks_go_forward_has_23_hours() -> None:
    spring = datetime(2026, 3, 29, 10, 0, tzinfo=UTC)
    start = parse_time("now/d", BERLIN, now=spring, end=False)
    end = parse_time("now/d", BERLIN, now=spring, end=True)
    assert end - start == timedelta(hours=23)
    assert parse_time("2026-03-29", BERLIN, now=NOW, end=True) - parse_time(
        "2026-03-29", BERLIN, now=NOW, end=False
    ) == timedelta(hours=23)


def test_a_day_back_across_a_clock_change_keeps_the_clock_time() -> None:
    # 12:00 CEST on the 30th of March, a day back is 12:00 CET on the 29th... of a 23-hour day.
    after = datetime(2026, 3, 30, 10, 0, tzinfo=UTC)
    assert since("now-1d", BERLIN, after) == "2026-03-29T10:00:00.000000Z"
    assert since("now-24h", BERLIN, after) == "2026-03-29T10:00:00.000000Z"
    assert since("now-2d", BERLIN, after) == "2026-03-28T11:00:00.000000Z"
    assert since("now-48h", BERLIN, after) == "2026-03-28T10:00:00.000000Z"


def test_a_skipped_clock_time_moves_forward_by_the_jump() -> None:
    # Berlin's clocks go from 02:00 to 03:00 on 2026-03-29: 02:30 is read as 03:30 CEST.
    assert since("2026-03-29T02:30", BERLIN) == "2026-03-29T01:30:00.000000Z"
    assert since("2026-03-29T03:30", BERLIN) == "2026-03-29T01:30:00.000000Z"


def test_a_repeated_clock_time_is_its_first_occurrence() -> None:
    # Berlin's clocks go from 03:00 back to 02:00 on 2026-10-25: 02:30 CEST comes first.
    assert since("2026-10-25T02:30", BERLIN) == "2026-10-25T00:30:00.000000Z"


def test_rounding_to_the_hour_inside_a_repeated_hour_stays_in_that_occurrence() -> None:
    second = datetime(2026, 10, 25, 1, 40, tzinfo=UTC)  # 02:40 CET, the second 02:40
    assert since("now/h", BERLIN, second) == "2026-10-25T01:00:00.000000Z"
    assert until("now/h", BERLIN, second) == "2026-10-25T02:00:00.000000Z"


def test_a_half_hour_zone_rounds_on_its_own_clock() -> None:
    # 13:03 UTC is 18:33 in Kolkata (UTC+05:30): its hour began at 12:30 UTC.
    assert since("now/h", KOLKATA) == "2026-01-15T12:30:00.000000Z"
    assert until("now/h", KOLKATA) == "2026-01-15T13:30:00.000000Z"
    assert since("now/d", KOLKATA) == "2026-01-14T18:30:00.000000Z"
    assert until("2026-01-15", KOLKATA) == "2026-01-15T18:30:00.000000Z"


def test_one_month_on_from_the_31st_is_the_last_day_of_a_shorter_month() -> None:
    march = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
    assert since("now-1M", UTC_ZONE, march) == "2026-02-28T12:00:00.000000Z"
    assert since("now-1y", UTC_ZONE, datetime(2028, 2, 29, tzinfo=UTC)).startswith("2027-02-28")


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2026-11-02", "2026-11-01T23:00:00.000000Z", "2026-11-02T23:00:00.000000Z"),
        ("20261102", "2026-11-01T23:00:00.000000Z", "2026-11-02T23:00:00.000000Z"),
        ("2026-11-02T13:00", "2026-11-02T12:00:00.000000Z", "2026-11-02T12:00:00.000000Z"),
        ("20261102T1300", "2026-11-02T12:00:00.000000Z", "2026-11-02T12:00:00.000000Z"),
        ("2026-11-02 13:00:05", "2026-11-02T12:00:05.000000Z", "2026-11-02T12:00:05.000000Z"),
        ("2026-11-02T13:00+03:00", "2026-11-02T10:00:00.000000Z", "2026-11-02T10:00:00.000000Z"),
        ("2026-11-02T13:00Z", "2026-11-02T13:00:00.000000Z", "2026-11-02T13:00:00.000000Z"),
        (
            "2026-11-26T13:22:49.123456Z",
            "2026-11-26T13:22:49.123456Z",
            "2026-11-26T13:22:49.123456Z",
        ),
    ],
    ids=["date", "basic-date", "date-time", "basic", "space", "offset", "z", "stored-form"],
)
def test_absolute_times_are_read_in_the_zone_unless_they_carry_an_offset(
    text: str, start: str, end: str
) -> None:
    assert since(text, BERLIN) == start
    assert until(text, BERLIN) == end
    assert not is_relative(text)


@pytest.mark.parametrize(
    "text",
    [
        "yesterday",
        "now-",
        "now-1",
        "now-1x",
        "now/q",
        "now/",
        "now-1d/",
        "now/d/d",
        "now-1.5h",
        "NOW",
        "now - 1h",
        "2026-W45",
        "2026-306",
        "2026-11",
        "2026-11-02T",
        "2026-13-01",
        "2026-02-30",
        "2026-11-02T25:00",
        "",
    ],
)
def test_other_text_is_refused_with_the_forms_it_takes(text: str) -> None:
    with pytest.raises(ValueError, match="now-24h.*20261126"):
        parse_time(text, UTC_ZONE, now=NOW, end=False)


@pytest.mark.parametrize("text", ["now-9999999y", "now+9999999M", "9999-12-31"])
def test_a_time_beyond_the_calendar_is_out_of_range(text: str) -> None:
    with pytest.raises(ValueError, match="out of range"):
        parse_time(text, KOLKATA, now=NOW, end=True)


@settings(deadline=None)  # a shared machine may pause a run; nothing here is slow
@given(text=st.text(max_size=40))
def test_any_text_is_an_instant_in_utc_or_a_value_error(text: str) -> None:
    try:
        moment = parse_time(text, BERLIN, now=NOW, end=True)
    except ValueError:
        return
    assert moment.utcoffset() == timedelta(0)


@settings(deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from("+-"), st.integers(0, 500), st.sampled_from("smhdwMy")),
        max_size=4,
    ),
    rounding=st.sampled_from(["", "/s", "/m", "/h", "/d", "/w", "/M", "/y"]),
)
def test_a_rounded_since_is_never_after_its_until(
    steps: list[tuple[str, int, str]], rounding: str
) -> None:
    text = "now" + "".join(f"{sign}{count}{unit}" for sign, count, unit in steps) + rounding
    start = parse_time(text, BERLIN, now=NOW, end=False)
    end = parse_time(text, BERLIN, now=NOW, end=True)
    assert start < end if rounding else start == end


def test_quick_ranges_are_the_usual_ones() -> None:
    assert list(QUICK_RANGES) == [
        QuickRange("Last 15 minutes", "now-15m", ""),
        QuickRange("Last 1 hour", "now-1h", ""),
        QuickRange("Last 24 hours", "now-24h", ""),
        QuickRange("Last 7 days", "now-7d", ""),
        QuickRange("Last 30 days", "now-30d", ""),
        QuickRange("Today", "now/d", "now/d"),
        QuickRange("Yesterday", "now-1d/d", "now-1d/d"),
    ]
    for quick in QUICK_RANGES:
        assert is_relative(quick.since) and (quick.until == "" or is_relative(quick.until))


def test_a_stored_time_is_shown_in_the_zone_to_the_second() -> None:
    assert display_time("2026-01-15T12:00:00.000000Z", BERLIN) == "2026-01-15 13:00:00"
    assert display_time("2026-07-15T12:00:00.999999Z", BERLIN) == "2026-07-15 14:00:00"
    assert display_time("2026-01-15T20:00:00.000000Z", KOLKATA) == "2026-01-16 01:30:00"
    assert display_time("2026-01-15T12:00:00.000000Z", UTC_ZONE) == "2026-01-15 12:00:00"


def test_the_zone_label_gives_the_offset_at_that_moment() -> None:
    assert zone_label("Europe/Berlin", NOW) == "Europe/Berlin (UTC+01:00)"
    assert zone_label("Europe/Berlin", datetime(2026, 7, 1, tzinfo=UTC)) == (
        "Europe/Berlin (UTC+02:00)"
    )
    assert zone_label("Asia/Kolkata", NOW) == "Asia/Kolkata (UTC+05:30)"
    assert zone_label("America/St_Johns", NOW) == "America/St_Johns (UTC-03:30)"
    assert zone_label("UTC", NOW) == "UTC (UTC+00:00)"


def test_the_zones_offered_are_utc_and_area_city_names_sorted() -> None:
    names = zone_names()
    assert names == sorted(names)
    assert {"UTC", "Europe/Berlin", "Asia/Kolkata", "America/Argentina/Buenos_Aires"} <= set(names)
    assert not {"US/Eastern", "Etc/GMT+3", "EST", "posixrules"} & set(names)
    assert all(name == "UTC" or "/" in name for name in names)


@pytest.mark.parametrize("name", ["UTC", "Europe/Berlin", "Asia/Kolkata", "US/Eastern"])
def test_an_iana_name_is_a_zone(name: str) -> None:
    assert read_zone(name) == ZoneInfo(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Mars/Olympus",
        "../../etc/passwd",
        "Europe/../UTC",
        "/usr/share/zoneinfo/UTC",
        "/etc/localtime",
        "europe/berlin",
        "Europe/Berlin\x00",
        "x" * 300,
    ],
    ids=["empty", "unknown", "parent", "dotdot", "absolute", "localtime", "case", "nul", "long"],
)
def test_anything_but_an_iana_name_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="Europe/Berlin"):
        read_zone(name)
