"""The JSON API with several values, exclusions, IP patterns, zones, ``through`` and facets."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from flask.testing import FlaskClient

from .webui_support import insert_rows, json_body, make_row

Wanted = Callable[[dict[str, Any]], bool]

BOB = {"user_id": 42, "username": "Bob", "email": "Bob@Example.com"}
NOBODY = {"user_id": None, "username": None, "email": None}


@pytest.fixture
def mixed(db: sqlite3.Connection) -> list[dict[str, Any]]:
    """120 events in four kinds, one a minute from 2026-11-01T00:01Z.

    n % 4 == 0: a failed login from 198.51.100.<n>, nobody signed in;
    n % 4 == 1: Bob creates trip/<n % 3> from 203.0.113.9;
    n % 4 == 2: alice updates trip/1, no IP;
    n % 4 == 3: alice signs in from 2001:db8::<n in hex>.
    """
    rows = []
    for n in range(1, 121):
        kind = n % 4
        fields: dict[str, Any]
        if kind == 0:
            fields = {**NOBODY, "action": "user.login_failed", "ip": f"198.51.100.{n}"}
        elif kind == 1:
            fields = {
                **BOB,
                "action": "trip.create",
                "ip": "203.0.113.9",
                "resource": f"trip/{n % 3}",
            }
        elif kind == 2:
            fields = {"action": "trip.update", "ip": None, "resource": "trip/1"}
        else:
            fields = {"action": "user.login", "ip": f"2001:db8::{n:x}", "resource": None}
        rows.append(make_row(n, **fields))
    insert_rows(db, rows)
    return rows


def walk(client: FlaskClient, query: str) -> list[str]:
    """Every entry's id over all pages (with a loop guard), newest first."""
    seen: list[str] = []
    cursor = ""
    for _ in range(100):
        response = client.get(f"/api/admin/audit?{query}&limit=13{cursor}")
        assert response.status_code == 200, response.get_data(as_text=True)
        body = json_body(response)
        seen.extend(entry["id"] for entry in body["entries"])
        if body["next"] is None:
            assert body["total"] == len(seen)
            return seen
        cursor = "&before=" + body["next"]
    raise AssertionError("pagination did not end")


def expected(rows: list[dict[str, Any]], wanted: Wanted) -> list[str]:
    return [row["event_id"] for row in reversed(rows) if wanted(row)]


def kind(*kinds: int) -> Wanted:
    return lambda row: row["seq"] % 4 in kinds


@pytest.mark.parametrize(
    ("query", "wanted"),
    [
        ("action=user.login&action=trip.update", kind(2, 3)),
        ("action!=user.login&action!=trip.update", kind(0, 1)),
        ("action=trip.create&action=trip.update&user!=bob", kind(2)),
        ("ip=203.0.113.9&ip=198.51.100.8", lambda r: r["seq"] % 4 == 1 or r["seq"] == 8),
        ("ip!=203.0.113.9", kind(0, 2, 3)),
        ("resource=trip/1&resource=trip/2", lambda r: r["resource"] in ("trip/1", "trip/2")),
        ("resource!=trip/1", lambda r: r["resource"] != "trip/1"),
        ("source=local&source!=web-2", lambda r: True),
        ("source=web-2", lambda r: False),
    ],
    ids=[
        "actions",
        "excluded-actions",
        "excluded-user",
        "ips",
        "excluded-ip-keeps-rows-without-one",
        "resources",
        "excluded-resource",
        "sources",
        "other-source",
    ],
)
def test_several_values_are_any_of_them_and_exclusions_none_of_them(
    admin_client: FlaskClient, mixed: list[dict[str, Any]], query: str, wanted: Wanted
) -> None:
    assert walk(admin_client, query) == expected(mixed, wanted)


@pytest.mark.parametrize(
    ("ip", "wanted"),
    [
        ("198.51.100.0/24", kind(0)),
        ("198.51.100.0/28", lambda r: r["seq"] % 4 == 0 and r["seq"] < 16),
        ("198.51.100.17/28", lambda r: r["seq"] % 4 == 0 and 16 <= r["seq"] < 32),
        ("198.51.0.0/16", kind(0)),
        ("203.0.113.0/24", kind(1)),
        ("2001:db8::/32", kind(3)),
        ("2001:db8::/124", lambda r: r["seq"] % 4 == 3 and r["seq"] < 16),
        ("198.51.100.1", lambda r: False),
        ("198.51.100.1*", lambda r: r["seq"] % 4 == 0 and str(r["seq"]).startswith("1")),
        ("198.51.", kind(0)),
        ("2001:db8:", kind(3)),
    ],
    ids=[
        "cidr-24",
        "cidr-28",
        "cidr-host-bits",
        "cidr-16",
        "cidr-other",
        "cidr-v6",
        "cidr-v6-small",
        "exact-is-not-a-prefix",
        "prefix-star",
        "prefix-dot",
        "prefix-colon",
    ],
)
def test_an_ip_is_an_address_a_network_or_a_prefix(
    admin_client: FlaskClient, mixed: list[dict[str, Any]], ip: str, wanted: Wanted
) -> None:
    assert walk(admin_client, urlencode({"ip": ip})) == expected(mixed, wanted)


def test_an_excluded_network_keeps_the_rest(
    admin_client: FlaskClient, mixed: list[dict[str, Any]]
) -> None:
    assert walk(admin_client, "ip!=198.51.100.0/24") == expected(mixed, kind(1, 2, 3))


@pytest.mark.parametrize("user", ["bob", "BOB", "bob@example.com", "BOB@EXAMPLE.COM", "42"])
def test_a_user_matches_whatever_its_case(
    admin_client: FlaskClient, mixed: list[dict[str, Any]], user: str
) -> None:
    assert walk(admin_client, urlencode({"user": user})) == expected(mixed, kind(1))


def test_a_viewer_filters_like_an_admin(
    viewer_client: FlaskClient, mixed: list[dict[str, Any]]
) -> None:
    assert walk(viewer_client, "user=ALICE&action!=trip.update") == expected(mixed, kind(3))


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("ip=10.0.0.0/33", "ip"),
        ("ip!=999.0.0.0/8", "ip!"),
        ("ip=1.2.*.4", "ip"),
        ("action!=Not%20An%20Action", "action!"),
        ("source!=../etc", "source!"),
        ("tz=Mars/Olympus", "tz"),
        ("tz=../../etc/passwd", "tz"),
        ("since=now-1x", "since"),
        ("until=now-1d&since=now", "until"),
        ("through=5&before=5", "through"),
    ],
)
def test_a_bad_value_is_400_naming_its_parameter(
    admin_client: FlaskClient, db: object, query: str, parameter: str
) -> None:
    response = admin_client.get("/api/admin/audit?" + query)
    assert response.status_code == 400
    body = json_body(response)
    assert body["parameter"] == parameter and body["error"]


def test_twenty_values_are_taken_and_twenty_one_refused(
    admin_client: FlaskClient, mixed: list[dict[str, Any]]
) -> None:
    twenty = [("ip", f"198.51.100.{4 * n}") for n in range(1, 21)]
    assert len(walk(admin_client, urlencode(twenty))) == 20
    response = admin_client.get("/api/admin/audit?" + urlencode([*twenty, ("ip", "10.0.0.1")]))
    assert response.status_code == 400
    assert json_body(response)["parameter"] == "ip"


def test_times_without_an_offset_are_in_the_tz_zone(
    admin_client: FlaskClient, mixed: list[dict[str, Any]]
) -> None:
    # 01:00 in Kolkata is 19:30 UTC the day before: every event is after it, and 00:30 UTC
    # (06:00 in Kolkata) leaves the first 29 minutes.
    assert walk(admin_client, "since=2026-11-01T06:00&tz=Asia/Kolkata") == expected(
        mixed, lambda r: r["seq"] >= 30
    )
    assert walk(admin_client, "until=2026-11-01T06:00&tz=Asia/Kolkata") == expected(
        mixed, lambda r: r["seq"] < 30
    )


def test_the_zone_cookie_is_used_without_tz(
    admin_client: FlaskClient, mixed: list[dict[str, Any]]
) -> None:
    admin_client.set_cookie("trek_tz", "Asia/Kolkata")
    assert walk(admin_client, "until=2026-11-01T06:00") == expected(mixed, lambda r: r["seq"] < 30)
    # tz wins over the cookie.
    assert walk(admin_client, "until=2026-11-01T01:00&tz=UTC") == expected(
        mixed, lambda r: r["seq"] < 60
    )


def test_through_pages_down_to_that_row_and_no_further(
    admin_client: FlaskClient, mixed: list[dict[str, Any]]
) -> None:
    body = json_body(admin_client.get("/api/admin/audit?before=101&through=61&limit=500"))
    assert [entry["id"] for entry in body["entries"]] == [
        f"evt-{n:08d}" for n in range(100, 60, -1)
    ]
    assert body["next"] is None
    limited = json_body(admin_client.get("/api/admin/audit?through=61&limit=25"))
    assert len(limited["entries"]) == 25 and limited["next"] == "96"
    rest = json_body(admin_client.get("/api/admin/audit?before=96&through=61&limit=35"))
    assert rest["entries"][-1]["id"] == "evt-00000061" and rest["next"] is None


@pytest.fixture
def attack(db: sqlite3.Connection) -> None:
    """12 failed logins of alice from 185.220.101.7, 5 sign-ins of bob, 3 edits without an IP."""
    rows = [
        make_row(n, action="user.login_failed", ip="185.220.101.7", resource=None)
        for n in range(1, 13)
    ]
    rows += [
        make_row(n, **BOB, action="user.login", ip="10.0.0.1", resource=None) for n in range(13, 18)
    ]
    rows += [
        make_row(n, user_id=9, username="carol", action="trip.update", ip=None, resource="trip/9")
        for n in range(18, 21)
    ]
    insert_rows(db, rows)


def facets(client: FlaskClient, query: str = "") -> dict[str, dict[str, Any]]:
    response = client.get("/api/admin/audit/facets?" + query)
    assert response.status_code == 200, response.get_data(as_text=True)
    return {facet["field"]: facet for facet in json_body(response)["facets"]}


def test_facets_count_the_values_of_each_field_most_frequent_first(
    admin_client: FlaskClient, attack: None
) -> None:
    found = facets(admin_client)
    assert list(found) == ["user", "ip", "action", "resource"]
    counts = {
        field: [(value["value"], value["count"]) for value in facet["values"]]
        for field, facet in found.items()
    }
    assert counts == {
        "user": [("alice", 12), ("Bob", 5), ("carol", 3)],
        "ip": [("185.220.101.7", 12), ("10.0.0.1", 5)],  # no IP is no value
        "action": [("user.login_failed", 12), ("user.login", 5), ("trip.update", 3)],
        "resource": [("trip/9", 3)],
    }
    assert not any(facet["timed_out"] or facet["more"] for facet in found.values())


def test_facet_values_link_to_the_page_with_the_value_added_or_excluded(
    admin_client: FlaskClient, attack: None
) -> None:
    (top, other) = facets(admin_client, "action!=trip.update&tz=Europe/Berlin")["ip"]["values"]
    assert top["add"] == "?action!=trip.update&ip=185.220.101.7&tz=Europe/Berlin"
    assert top["exclude"] == "?action!=trip.update&ip!=185.220.101.7&tz=Europe/Berlin"
    # Following a link shows as many events as the facet counted.
    for value in (top, other):
        added = json_body(admin_client.get("/api/admin/audit" + value["add"]))
        assert added["total"] == value["count"]
    excluded = json_body(admin_client.get("/api/admin/audit" + top["exclude"]))
    assert excluded["total"] == other["count"]


def test_facets_count_only_the_filtered_entries(admin_client: FlaskClient, attack: None) -> None:
    found = facets(admin_client, "user=BOB&user=carol")
    assert [(v["value"], v["count"]) for v in found["action"]["values"]] == [
        ("user.login", 5),
        ("trip.update", 3),
    ]
    user = found["user"]["values"]
    assert [value["value"] for value in user] == ["Bob", "carol"]
    # The exclude link of a value the filter includes swaps it: Bob's events are left out.
    assert dict(parse_qsl(user[0]["exclude"][1:])) == {"user": "carol", "user!": "Bob"}


def test_one_field_may_be_asked_for(admin_client: FlaskClient, attack: None) -> None:
    assert list(facets(admin_client, "field=resource")) == ["resource"]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [("field=details", "field"), ("field=user!", "field"), ("ip=1.2.3.4/99", "ip")],
)
def test_a_bad_facet_request_is_400_naming_its_parameter(
    admin_client: FlaskClient, attack: None, query: str, parameter: str
) -> None:
    response = admin_client.get("/api/admin/audit/facets?" + query)
    assert response.status_code == 400
    assert json_body(response)["parameter"] == parameter


def test_facets_are_empty_before_the_indexer_made_the_database(
    admin_client: FlaskClient,
) -> None:
    found = facets(admin_client)
    assert list(found) == ["user", "ip", "action", "resource"]
    assert all(facet["values"] == [] for facet in found.values())


def test_facets_need_a_signed_in_account(client: FlaskClient, attack: None) -> None:
    response = client.get("/api/admin/audit/facets")
    assert response.status_code == 401
    assert json_body(response)["error"]


def test_a_viewer_gets_facets(viewer_client: FlaskClient, attack: None) -> None:
    assert facets(viewer_client, "field=ip")["ip"]["values"][0]["count"] == 12
