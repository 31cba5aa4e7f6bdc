"""since and until: a date is a whole day in the zone, in either ISO form; others are refused."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from .webui_support import json_body

# make_row(n) is at n minutes past 2026-11-01T00:00: November 2nd is events 1440 to 2879.
EVENTS = 3000
FIRST_OF_THE_2ND = 1440
FIRST_OF_THE_3RD = 2880


@pytest.fixture
def three_days(add_rows: Callable[..., list[dict[str, Any]]]) -> None:
    add_rows(EVENTS)


def page_total(client: FlaskClient, query: str) -> int:
    page = client.get("/admin/audit?" + query)
    assert page.status_code == 200
    match = re.search(r'data-total="(\d+)"', page.get_data(as_text=True))
    assert match, "no total on the page"
    return int(match.group(1))


def api_total(client: FlaskClient, query: str) -> int:
    response = client.get("/api/admin/audit?" + query)
    assert response.status_code == 200
    total = json_body(response)["total"]
    assert isinstance(total, int)
    return total


@pytest.mark.parametrize("day", ["2026-11-02", "20261102"], ids=["extended", "basic"])
def test_until_a_date_includes_the_whole_of_that_day_in_page_and_api(
    admin_client: FlaskClient, three_days: None, day: str
) -> None:
    # Events 1 to 2879: up to the end of the 2nd, never stopping at its midnight.
    assert page_total(admin_client, f"until={day}") == FIRST_OF_THE_3RD - 1
    assert api_total(admin_client, f"until={day}") == FIRST_OF_THE_3RD - 1


@pytest.mark.parametrize("day", ["2026-11-02", "20261102"], ids=["extended", "basic"])
def test_since_a_date_starts_at_the_beginning_of_that_day_in_page_and_api(
    admin_client: FlaskClient, three_days: None, day: str
) -> None:
    assert page_total(admin_client, f"since={day}") == EVENTS - FIRST_OF_THE_2ND + 1
    assert api_total(admin_client, f"since={day}") == EVENTS - FIRST_OF_THE_2ND + 1


@pytest.mark.parametrize("day", ["2026-11-02", "20261102"], ids=["extended", "basic"])
def test_since_and_until_the_same_date_is_that_one_day(
    admin_client: FlaskClient, three_days: None, day: str
) -> None:
    query = f"since={day}&until={day}"
    assert page_total(admin_client, query) == FIRST_OF_THE_3RD - FIRST_OF_THE_2ND
    assert api_total(admin_client, query) == FIRST_OF_THE_3RD - FIRST_OF_THE_2ND


@pytest.mark.parametrize(
    "moment",
    ["2026-11-02T13:00", "20261102T1300", "2026-11-02T14:00+01:00"],
    ids=["extended", "basic", "offset"],
)
def test_a_date_time_is_an_instant_not_a_day(
    admin_client: FlaskClient, three_days: None, moment: str
) -> None:
    # until is exclusive: events before 13:00 UTC on the 2nd.
    expected = FIRST_OF_THE_2ND + 13 * 60 - 1
    assert api_total(admin_client, "until=" + moment.replace("+", "%2B")) == expected


@pytest.mark.parametrize(
    "value",
    ["2026-W45", "2026W452", "2026-306", "2026-11", "2026-1102", "2026-11-02T"],
    ids=["week", "week-day", "ordinal", "month", "mixed-forms", "empty-time"],
)
@pytest.mark.parametrize("parameter", ["since", "until"])
def test_other_iso_forms_are_refused_rather_than_read_as_a_midnight(
    admin_client: FlaskClient, db: object, value: str, parameter: str
) -> None:
    response = admin_client.get(f"/api/admin/audit?{parameter}={value}")
    assert response.status_code == 400
    assert json_body(response)["parameter"] == parameter
    page = admin_client.get(f"/admin/audit?{parameter}={value}")
    assert page.status_code == 400
    assert "20261126" in page.get_data(as_text=True)  # the message shows the forms it takes


def test_a_date_is_a_whole_day_in_the_chosen_zone(
    admin_client: FlaskClient, three_days: None
) -> None:
    # November 2nd in Berlin (UTC+01:00) runs from 23:00 UTC on the 1st to 23:00 UTC on the 2nd.
    first_in_berlin = FIRST_OF_THE_2ND - 60
    expected_total = 24 * 60
    query = "since=2026-11-02&until=2026-11-02"
    assert api_total(admin_client, query + "&tz=Europe/Berlin") == expected_total
    later = api_total(admin_client, "since=2026-11-02&tz=Europe/Berlin")
    assert later == EVENTS - first_in_berlin + 1
    admin_client.set_cookie("trek_tz", "Europe/Berlin")
    assert api_total(admin_client, "since=2026-11-02") == later


def test_a_date_time_with_an_offset_ignores_the_zone(
    admin_client: FlaskClient, three_days: None
) -> None:
    utc = api_total(admin_client, "until=2026-11-02T13:00Z")
    assert api_total(admin_client, "until=2026-11-02T13:00Z&tz=Asia/Kolkata") == utc
    assert api_total(admin_client, "until=2026-11-02T13:00&tz=Asia/Kolkata") == utc - 330
