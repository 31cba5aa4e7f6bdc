"""Reading the query string: several values, exclusions, zones, errors by key, and links."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import pytest
from werkzeug.datastructures import MultiDict

from trek_audit.store import Filter
from trek_audit.webui.filters import (
    MAX_VALUES,
    PageRequest,
    ParameterError,
    Query,
    parse_filter,
    parse_page,
    read_query,
)

# 14:03 in Berlin (UTC+01:00).
NOW = datetime(2026, 1, 15, 13, 3, 7, tzinfo=UTC)


def read(query: str, zone_cookie: str | None = None) -> Query:
    return read_query(MultiDict(parse_qsl(query)), zone_cookie=zone_cookie, now=NOW)


def test_an_empty_query_is_the_empty_filter_in_utc() -> None:
    query = read("")
    assert query.filter == Filter()
    assert (query.params, query.errors, query.zone_name, query.tz) == ([], {}, "UTC", "")
    assert query.zone == ZoneInfo("UTC")
    assert query.link() == "?"


def test_each_field_takes_several_values_and_exclusions() -> None:
    query = read(
        "ip=10.0.0.2&ip=10.0.0.1&action=user.login&action!=user.logout&user=Alice"
        "&user!=bob&resource=trip/1&resource!=trip/2&source=web-1&source!=web-2&q=lisbon"
    )
    assert query.errors == {}
    assert query.filter == Filter(
        ip=("10.0.0.1", "10.0.0.2"),
        action=("user.login",),
        not_action=("user.logout",),
        user=("Alice",),
        not_user=("bob",),
        resource=("trip/1",),
        not_resource=("trip/2",),
        source=("web-1",),
        not_source=("web-2",),
        q="lisbon",
    )
    assert query.values("ip") == ["10.0.0.2", "10.0.0.1"]  # as typed, in URL order
    assert query.values("user!") == ["bob"]
    assert query.value("q") == "lisbon"
    assert query.value("since") == ""


def test_sources_may_also_be_comma_separated() -> None:
    query = read("source=local, web-2&source=web-3&source!=a,b")
    assert query.filter.source == ("local", "web-2", "web-3")
    assert query.filter.not_source == ("a", "b")
    assert query.values("source") == ["local", "web-2", "web-3"]


def test_values_are_stripped_and_empty_ones_are_unset() -> None:
    query = read("user=%20alice%20&ip=&q=%20%20&since=&action!=")
    assert query.filter == Filter(user=("alice",))
    assert query.params == [("user", "alice")]


def test_unknown_keys_and_the_cursor_are_not_filter_parameters() -> None:
    query = read("colour=red&before=10&through=3&limit=5&user=alice&tz=UTC")
    assert query.params == [("user", "alice")]
    assert query.errors == {}


def test_relative_times_are_kept_as_typed_and_resolved_in_the_filter() -> None:
    query = read("since=now-1d/d&until=now/d&tz=Europe/Berlin")
    assert query.value("since") == "now-1d/d"
    assert query.filter.since == "2026-01-13T23:00:00.000000Z"
    assert query.filter.until == "2026-01-15T23:00:00.000000Z"


def test_the_zone_is_tz_then_the_cookie_then_utc() -> None:
    assert read("", zone_cookie="Asia/Kolkata").zone_name == "Asia/Kolkata"
    assert read("tz=Europe/Berlin", zone_cookie="Asia/Kolkata").zone_name == "Europe/Berlin"
    cookie_only = read("since=2026-01-15", zone_cookie="Asia/Kolkata")
    assert cookie_only.filter.since == "2026-01-14T18:30:00.000000Z"
    assert cookie_only.tz == ""  # the cookie carries it: links need not


def test_a_bad_zone_is_an_error_on_tz_and_the_cookie_or_utc_is_used() -> None:
    query = read("tz=Mars/Olympus&since=2026-01-15", zone_cookie="Asia/Kolkata")
    assert set(query.errors) == {"tz"}
    assert "Europe/Berlin" in query.errors["tz"]
    assert query.zone_name == "Asia/Kolkata"
    assert query.filter.since == "2026-01-14T18:30:00.000000Z"


@pytest.mark.parametrize("cookie", ["../../etc/passwd", "Mars/Olympus", "/etc/localtime"])
def test_a_bad_zone_cookie_is_ignored(cookie: str) -> None:
    query = read("user=alice", zone_cookie=cookie)
    assert (query.zone_name, query.errors) == ("UTC", {})


@pytest.mark.parametrize(
    ("query", "key", "kept"),
    [
        ("action=DROP%20TABLE&action=user.login", "action", Filter(action=("user.login",))),
        ("action!=Bad&action!=user.login", "action!", Filter(not_action=("user.login",))),
        ("source=web-2&source=../x", "source", Filter(source=("web-2",))),
        ("ip=10.0.0.0/33&ip=10.0.0.1", "ip", Filter(ip=("10.0.0.1",))),
        ("ip!=10.0.0.0/33&ip!=10.0.0.1", "ip!", Filter(not_ip=("10.0.0.1",))),
        ("ip=" + "1" * 101 + "&ip=10.0.0.1", "ip", Filter(ip=("10.0.0.1",))),
        ("user=" + "u" * 321 + "&user=bob", "user", Filter(user=("bob",))),
        ("resource=" + "r" * 2001 + "&resource=trip/1", "resource", Filter(resource=("trip/1",))),
        ("q=" + "x" * 501 + "&user=bob", "q", Filter(user=("bob",))),
        ("since=yesterday&user=bob", "since", Filter(user=("bob",))),
        (
            "until=2026-13-01&since=2026-11-01",
            "until",
            Filter(since="2026-11-01T00:00:00.000000Z"),
        ),
        (
            "since=2026-11-02&until=2026-11-01",
            "until",
            Filter(since="2026-11-02T00:00:00.000000Z"),
        ),
    ],
    ids=[
        "action",
        "excluded-action",
        "source",
        "cidr",
        "excluded-cidr",
        "ip-long",
        "user-long",
        "resource-long",
        "q-long",
        "since-text",
        "until-month",
        "until-before-since",
    ],
)
def test_a_bad_value_is_an_error_by_key_and_the_good_ones_are_kept(
    query: str, key: str, kept: Filter
) -> None:
    read_back = read(query)
    assert list(read_back.errors) == [key]
    assert read_back.errors[key].startswith((key + " ", key + ": "))  # it names the key
    assert read_back.filter == kept
    # The boxes show what was typed, the bad value too.
    assert len(read_back.params) == len(parse_qsl(query))


def test_an_invalid_network_says_why() -> None:
    message = read("ip=185.220.101.0/33").errors["ip"]
    assert "185.220.101.0/33" in message


@pytest.mark.parametrize("key", ["action", "user", "ip", "resource", "source", "ip!", "user!"])
def test_more_than_twenty_values_of_a_key_are_refused(key: str) -> None:
    values = [f"10.0.0.{n}" if key.startswith("ip") else f"a.b{n}" for n in range(MAX_VALUES + 1)]
    too_many = MultiDict([(key, value) for value in values] + [("q", "kept")])
    query = read_query(too_many, now=NOW)
    assert list(query.errors) == [key]
    assert "20" in query.errors[key]
    assert query.filter == Filter(q="kept")
    just_enough = read_query(MultiDict([(key, value) for value in values[:MAX_VALUES]]), now=NOW)
    assert just_enough.errors == {}


def test_parse_filter_refuses_the_first_bad_value_naming_it() -> None:
    with pytest.raises(ParameterError) as raised:
        parse_filter(MultiDict([("user", "alice"), ("ip!", "300.1.2.3/8")]))
    assert raised.value.parameter == "ip!"
    assert parse_filter(MultiDict([("user", "alice")])) == Filter(user=("alice",))


def test_parse_filter_reads_relative_times_in_the_cookie_zone() -> None:
    flt = parse_filter(MultiDict([("since", "now/d")]), zone_cookie="Europe/Berlin", now=NOW)
    assert flt.since == "2026-01-14T23:00:00.000000Z"


class TestLinks:
    """Query.link: the page's links keep the filter as typed, with one change."""

    query = read("ip=10.0.0.1&action!=user.logout&since=now-24h&tz=Europe/Berlin")

    def test_adding_a_value_appends_it(self) -> None:
        assert self.query.link(add=("user", "alice")) == (
            "?ip=10.0.0.1&action!=user.logout&since=now-24h&user=alice&tz=Europe/Berlin"
        )

    def test_adding_a_value_already_there_changes_nothing(self) -> None:
        assert self.query.link(add=("ip", "10.0.0.1")) == self.query.link()

    def test_removing_a_value_drops_that_pair_only(self) -> None:
        assert self.query.link(remove=("ip", "10.0.0.1")) == (
            "?action!=user.logout&since=now-24h&tz=Europe/Berlin"
        )

    def test_excluding_an_included_value_swaps_it(self) -> None:
        assert self.query.link(add=("ip!", "10.0.0.1")) == (
            "?action!=user.logout&since=now-24h&ip!=10.0.0.1&tz=Europe/Berlin"
        )
        assert self.query.link(add=("action", "user.logout")) == (
            "?ip=10.0.0.1&since=now-24h&action=user.logout&tz=Europe/Berlin"
        )

    def test_a_one_value_key_is_replaced(self) -> None:
        assert self.query.link(add=("since", "now-15m")) == (
            "?ip=10.0.0.1&action!=user.logout&since=now-15m&tz=Europe/Berlin"
        )

    def test_extra_keys_are_set_and_an_empty_one_dropped(self) -> None:
        assert self.query.link(since="2026-01-01T00:00:00Z", until="2026-01-02T00:00:00Z") == (
            "?ip=10.0.0.1&action!=user.logout&tz=Europe/Berlin"
            "&since=2026-01-01T00:00:00Z&until=2026-01-02T00:00:00Z"
        )
        assert self.query.link(tz="", since="") == "?ip=10.0.0.1&action!=user.logout"

    def test_the_cursor_is_never_kept(self) -> None:
        paged = read("user=alice&before=100&through=50")
        assert paged.link() == "?user=alice"
        assert paged.link(before="40") == "?user=alice&before=40"

    def test_addresses_networks_and_emails_stay_readable(self) -> None:
        readable = "?ip=185.220.*&ip=2001:db8::1&ip!=10.0.0.0/8&user=alice@example.com"
        assert read(readable[1:]).link() == readable

    def test_values_are_escaped(self) -> None:
        odd = read("resource=a%26b%3Dc%23d&since=2026-01-01T00:00%2B01:00")
        link = odd.link()
        assert link == "?resource=a%26b%3Dc%23d&since=2026-01-01T00:00%2B01:00"
        assert read(link[1:]).params == odd.params


def test_a_page_is_a_cursor_a_size_and_a_lowest_row() -> None:
    assert parse_page(MultiDict()) == PageRequest(None, 100, None)
    assert parse_page(MultiDict([("before", "500"), ("through", "20"), ("limit", "7")])) == (
        PageRequest(500, 7, 20)
    )
    assert parse_page(MultiDict([("through", "20")])) == PageRequest(None, 100, 20)


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("through=0", "through"),
        ("through=x", "through"),
        ("before=10&through=10", "through"),
        ("limit=501", "limit"),
        ("before=-1", "before"),
    ],
)
def test_a_bad_page_parameter_is_refused_by_name(query: str, parameter: str) -> None:
    with pytest.raises(ParameterError) as raised:
        parse_page(MultiDict(parse_qsl(query)))
    assert raised.value.parameter == parameter
