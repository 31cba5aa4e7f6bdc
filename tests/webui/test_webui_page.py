"""The Audit page for an investigation: several values and exclusions, chips, cells that filter,
facets, quick ranges, times in a zone, problems shown by their boxes, ``through`` and the chart."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from flask.testing import FlaskClient

from trek_audit.webui.filters import ZONE_COOKIE
from trek_audit.writer import decode

from .page_support import Element, csp_problems, get_page, parse
from .webui_support import insert_rows, make_row

AddRows = Callable[..., list[dict[str, Any]]]


def pairs(href: str | None) -> list[tuple[str, str]]:
    assert href is not None and href.startswith("?"), href
    return parse_qsl(href[1:], keep_blank_values=True)


def shown_ids(page: Element) -> list[str]:
    return [
        str(row.get("data-id"))
        for row in page.by_id("audit-rows").find_all("tr")
        if row.get("data-id")
    ]


@pytest.fixture
def suspects(db: sqlite3.Connection) -> None:
    """Events 1-30: alice from 203.0.113.9 (1-10), bob from 198.51.100.4 (11-20), carol without
    an IP (21-30); every fifth a user.login_failed, the others trip.update."""
    rows = []
    for n in range(1, 31):
        name, ip = (("alice", "203.0.113.9"), ("bob", "198.51.100.4"), ("carol", None))[
            (n - 1) // 10
        ]
        action = "user.login_failed" if n % 5 == 0 else "trip.update"
        rows.append(make_row(n, username=name, email=f"{name}@example.com", ip=ip, action=action))
    insert_rows(db, rows)


def test_several_values_of_a_field_and_an_exclusion_narrow_the_table(
    admin_client: FlaskClient, suspects: None
) -> None:
    query = urlencode([("user", "alice"), ("user", "BOB"), ("action!", "user.login_failed")])
    page = get_page(admin_client, "/admin/audit?" + query)
    expected = [f"evt-{n:08d}" for n in range(20, 0, -1) if n % 5]
    assert shown_ids(page) == expected
    assert page.by_id("total").get("data-total") == str(len(expected))


def test_each_active_value_is_a_chip_whose_link_drops_only_it(
    admin_client: FlaskClient, suspects: None
) -> None:
    query = [("ip", "203.0.113.9"), ("ip", "198.51.100.0/24"), ("action!", "user.login_failed")]
    page = get_page(admin_client, "/admin/audit?" + urlencode(query))
    chips = page.by_id("active-filters").find_all("a", cls="chip")
    assert [chip.text for chip in chips] == [
        "IP = 203.0.113.9 ×",
        "IP = 198.51.100.0/24 ×",
        "action ≠ user.login_failed ×",
    ]
    for chip, removed in zip(chips, query, strict=True):
        assert pairs(chip.get("href")) == [pair for pair in query if pair != removed]


def test_several_values_ride_along_hidden_and_one_value_sits_in_its_box(
    admin_client: FlaskClient, suspects: None
) -> None:
    query = [("ip", "203.0.113.9"), ("ip", "198.51.100.4"), ("user", "alice"), ("user!", "bob")]
    form = get_page(admin_client, "/admin/audit?" + urlencode(query)).by_id("filters")
    hidden = [
        (i.get("name"), i.get("value")) for i in form.find_all("input") if i.get("type") == "hidden"
    ]
    assert hidden == [("ip", "203.0.113.9"), ("ip", "198.51.100.4"), ("user!", "bob")]
    assert form.by_id("filter-user").get("value") == "alice"
    assert form.by_id("filter-ip").get("value") == ""
    assert form.by_id("filter-ip").get("placeholder") == "1.2.3.4, 10.0.0.0/8 or 185.220."


def test_user_action_resource_and_ip_cells_link_to_the_filter_with_their_value_added(
    admin_client: FlaskClient, suspects: None
) -> None:
    page = get_page(admin_client, "/admin/audit?action=trip.update")
    row = page.by_id("audit-rows").find_all("tr")[0]
    assert row.get("data-id") == "evt-00000029" and row.get("data-row") == "29"
    links = {
        (a.get("data-key"), a.get("data-value")): a for a in row.find_all("a", cls="cell-filter")
    }
    assert set(links) == {
        ("user", "carol"),
        ("user", "carol@example.com"),
        ("action", "trip.update"),
        ("resource", "trip/29"),
    }
    assert pairs(links[("user", "carol")].get("href")) == [
        ("action", "trip.update"),
        ("user", "carol"),
    ]
    assert pairs(links[("resource", "trip/29")].get("href")) == [
        ("action", "trip.update"),
        ("resource", "trip/29"),
    ]
    # The action is already the filter: its link is the same filter.
    assert pairs(links[("action", "trip.update")].get("href")) == [("action", "trip.update")]
    ip_cell = get_page(admin_client, "/admin/audit").by_id("audit-rows").find_all("tr")[-1]
    ip_link = ip_cell.find("td", cls="ip").find("a", cls="cell-filter")
    assert (ip_link.text, pairs(ip_link.get("href"))) == ("203.0.113.9", [("ip", "203.0.113.9")])


def test_the_time_of_a_row_links_to_its_event_page(
    admin_client: FlaskClient, suspects: None
) -> None:
    cell = get_page(admin_client, "/admin/audit").by_id("audit-rows").find("td", cls="time")
    assert cell.find("a").get("href") == "/admin/audit/event/evt-00000030"
    time = cell.find("time")
    assert time.get("datetime") == time.get("title") == "2026-11-01T00:30:00.000000Z"


def test_the_facets_section_is_there_for_the_script_to_fill(
    admin_client: FlaskClient, suspects: None
) -> None:
    page = get_page(admin_client, "/admin/audit?" + urlencode({"ip!": "203.0.113.9"}))
    facets = page.by_id("facets")
    api = str(facets.get("data-api"))
    assert api.startswith("/api/admin/audit/facets?") and pairs(api[api.index("?") :]) == [
        ("ip!", "203.0.113.9")
    ]
    boxes = facets.find_all("div", cls="facet")
    assert [box.get("data-field") for box in boxes] == ["user", "ip", "action", "resource"]
    assert all(box.find("h3").text and box.find("ol").children == [] for box in boxes)
    assert "JavaScript" in facets.find("noscript").text


def test_quick_ranges_set_since_and_until_and_keep_the_filter(
    admin_client: FlaskClient, suspects: None
) -> None:
    page = get_page(admin_client, "/admin/audit?user=alice&since=2026-11-01")
    links = page.by_id("quick-ranges").find_all("a")
    assert [a.text for a in links] == [
        "Last 15 minutes",
        "Last 1 hour",
        "Last 24 hours",
        "Last 7 days",
        "Last 30 days",
        "Today",
        "Yesterday",
    ]
    assert (links[0].get("data-since"), links[0].get("data-until")) == ("now-15m", "")
    assert pairs(links[0].get("href")) == [("user", "alice"), ("since", "now-15m")]
    assert pairs(links[6].get("href")) == [
        ("user", "alice"),
        ("since", "now-1d/d"),
        ("until", "now-1d/d"),
    ]


@pytest.fixture
def noon_in_january(db: sqlite3.Connection) -> None:
    insert_rows(db, [make_row(1, ts="2026-01-15T12:00:00.000000Z")])


@pytest.mark.parametrize("how", ["parameter", "cookie"])
def test_times_are_shown_in_the_chosen_zone(
    admin_client: FlaskClient, noon_in_january: None, how: str
) -> None:
    if how == "cookie":
        admin_client.set_cookie(ZONE_COOKIE, "Europe/Berlin")
        url = "/admin/audit"
    else:
        url = "/admin/audit?tz=Europe/Berlin"
    page = get_page(admin_client, url)
    time = page.by_id("audit-rows").find("time")
    assert (time.text, time.get("datetime")) == (
        "2026-01-15 13:00:00",
        "2026-01-15T12:00:00.000000Z",
    )
    assert page.find("th", cls="time").find("span", cls="zone").text == "(Europe/Berlin)"
    assert page.by_id("zone-label").text.startswith("Europe/Berlin (UTC+0")
    selected = [o.text for o in page.by_id("tz-select").find_all("option") if "selected" in o.attrs]
    assert selected == ["Europe/Berlin"]
    assert page.by_id("audit-table").get("data-zone") == "Europe/Berlin"


def test_without_a_zone_times_are_utc(admin_client: FlaskClient, noon_in_january: None) -> None:
    page = get_page(admin_client, "/admin/audit")
    assert page.by_id("audit-rows").find("time").text == "2026-01-15 12:00:00"
    assert page.by_id("zone-label").text == "UTC (UTC+00:00)"


def test_a_bad_value_is_400_with_the_problem_by_its_box_and_the_other_boxes_kept(
    admin_client: FlaskClient, suspects: None
) -> None:
    query = urlencode({"since": "yesterday", "user": "alice", "q": "trip"})
    page = get_page(admin_client, "/admin/audit?" + query, status=400)
    since = page.by_id("filter-since")
    assert (since.get("value"), since.get("aria-invalid")) == ("yesterday", "true")
    error = page.by_id("error-since")
    assert "field-error" in error.classes and "now-24h" in error.text
    siblings = (
        [child for child in since.parent.children if isinstance(child, Element)]
        if since.parent
        else []
    )
    assert siblings[siblings.index(since) + 1] is error  # right after its box
    assert page.by_id("filter-user").get("value") == "alice"
    assert page.by_id("filter-q").get("value") == "trip"
    assert page.by_id("filter-user").get("aria-invalid") is None
    assert page.has_id("filter-problem")
    assert not page.has_id("audit-table") and not page.has_id("activity-chart")


def test_a_bad_zone_is_shown_by_the_zone_select(admin_client: FlaskClient, suspects: None) -> None:
    page = get_page(admin_client, "/admin/audit?tz=Mars/Olympus", status=400)
    assert page.by_id("tz-select").get("aria-invalid") == "true"
    assert "Europe/Berlin" in page.by_id("error-tz").text


@pytest.fixture
def many(add_rows: AddRows) -> None:
    add_rows(1100)


def test_through_shows_every_row_from_before_down_to_it_then_load_more(
    admin_client: FlaskClient, many: None
) -> None:
    page = get_page(admin_client, "/admin/audit?before=401&through=151")
    assert shown_ids(page) == [f"evt-{n:08d}" for n in range(400, 150, -1)]
    more = page.by_id("load-more")
    assert more.get("data-next") == "151"
    assert pairs(more.get("href")) == [("before", "151")]


def test_through_shows_at_most_a_thousand_rows(admin_client: FlaskClient, many: None) -> None:
    page = get_page(admin_client, "/admin/audit?through=1")
    ids = shown_ids(page)
    assert len(ids) == 1000 and ids[0] == "evt-00001100" and ids[-1] == "evt-00000101"
    assert page.by_id("load-more").get("data-next") == "101"


def test_through_the_oldest_row_leaves_nothing_to_load(
    admin_client: FlaskClient, add_rows: AddRows
) -> None:
    add_rows(150)
    page = get_page(admin_client, "/admin/audit?through=1")
    assert len(shown_ids(page)) == 150
    assert not page.has_id("load-more")


def test_the_chart_is_inline_with_linked_bars_ticks_and_a_table_of_counts(
    admin_client: FlaskClient, suspects: None
) -> None:
    page = get_page(admin_client, "/admin/audit?user=alice&tz=Europe/Berlin")
    svg = page.by_id("activity-chart")
    assert svg.tag == "svg" and not page.find_all("img")
    assert (
        svg.get("data-start") == "2026-11-01T00:01:00Z"
        and svg.get("data-end") == "2026-11-01T00:11:00Z"
    )
    bars = svg.find_all("rect", cls="bar")
    assert [bar.get("data-count") for bar in bars] == ["1"] * 10  # a minute each
    first = bars[0]
    assert first.parent is not None and "bar-link" in first.parent.classes
    assert sorted(pairs(first.parent.get("href"))) == [
        ("since", "2026-11-01T00:01:00Z"),
        ("tz", "Europe/Berlin"),
        ("until", "2026-11-01T00:02:00Z"),
        ("user", "alice"),
    ]
    assert first.find("title").text == "2026-11-01 01:01–01:02: 1 event"
    ticks = [text.text for text in svg.find_all("text", cls="tick")]
    assert "0" in ticks and "1" in ticks and "Nov 1 01:02" in ticks  # Berlin's clock
    assert "hidden" in page.by_id("chart-tip").attrs
    counts = page.by_id("chart-counts")
    assert counts.tag == "details" and counts.find("summary").text == "Counts per minute"
    rows = counts.find("tbody").find_all("tr")
    assert len(rows) == 10
    assert [cell.text for cell in rows[0].find_all("td")] == ["2026-11-01 01:01–01:02", "1"]


def test_the_page_has_no_inline_script_or_style_anywhere(
    admin_client: FlaskClient, suspects: None
) -> None:
    for url in ("/admin/audit", "/admin/audit?ip=203.0.113.9&user!=bob", "/admin/audit?since=x"):
        response = admin_client.get(url)
        assert csp_problems(parse(response.get_data(as_text=True))) == [], url


def test_the_export_records_its_filter_with_several_values(
    admin_client: FlaskClient, suspects: None, data_dir: Path
) -> None:
    query = urlencode(
        [("ip", "203.0.113.9"), ("ip", "198.51.100.4"), ("action!", "user.login_failed")]
    )
    body = admin_client.get("/admin/audit/export.ndjson?" + query).get_data(as_text=True)
    assert len(body.splitlines()) == 16
    last = decode((data_dir / "logs" / "trek.log").read_bytes().splitlines()[-1])
    assert last["action"] == "audit.export"
    assert last["details"] == {
        "format": "ndjson",
        "filter": {"ip": ["198.51.100.4", "203.0.113.9"], "action!": "user.login_failed"},
    }


def test_a_bad_filter_of_an_export_is_400_naming_it(
    admin_client: FlaskClient, suspects: None
) -> None:
    response = admin_client.get("/admin/audit/export.csv?ip=300.1.2.3/8")
    assert response.status_code == 400
    assert "ip" in response.get_data(as_text=True)


def test_a_viewer_reads_the_page(viewer_client: FlaskClient, suspects: None) -> None:
    page = get_page(viewer_client, "/admin/audit")
    assert len(shown_ids(page)) == 30
