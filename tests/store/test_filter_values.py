"""A filter takes several values per field (any of them) and exclusions (none of them)."""

from __future__ import annotations

import random

import pytest

from trek_audit.store import AuditQuery, CountCache, Filter, parse_ip_pattern
from trek_audit.store.ip_patterns import IpPattern, network_prefixes, text_after
from trek_audit.store.sql import MAX_BRANCHES, branches, leaves_out_seals
from trek_audit.writer.chain import SEAL_ACTION

from .rows_support import Row, database, ids, insert, seal


def matching(query: AuditQuery, flt: Filter) -> list[int]:
    """Every row id the filter finds, newest first, by pages of 3 (the union's limits too)."""
    found: list[int] = []
    before = None
    for _ in range(1000):  # a guard: no filter here has 3,000 rows
        page = query.page(flt, before, 3)
        found.extend(ids(page))
        if len(page) < 3:
            break
        before = page[-1].row_id
    else:
        raise AssertionError("the pages never ended")
    assert query.count(flt) == len(found)
    return found


# -- the Filter value ----------------------------------------------------------------------


def test_values_are_sorted_without_repeats_so_equal_filters_are_equal() -> None:
    one = Filter(action=("b", "a", "b", ""), not_ip=("10.0.0.2", "10.0.0.1"))
    other = Filter(action=("a", "b"), not_ip=("10.0.0.1", "10.0.0.2"))
    assert one == other and hash(one) == hash(other)
    assert one.action == ("a", "b")


def test_a_str_for_a_tuple_is_refused_rather_than_read_as_letters() -> None:
    with pytest.raises(TypeError, match="tuple of values"):
        Filter(action="user.login")  # type: ignore[arg-type]


def test_params_list_values_then_exclusions_per_field_then_the_single_fields() -> None:
    flt = Filter(
        q="paris",
        until="2026-11-27T00:00:00.000000Z",
        ip=("10.0.0.0/8",),
        action=("user.login", "trip.create"),
        not_action=("audit.seal",),
        source=("web-2",),
    )
    assert flt.as_params() == [
        ("action", "trip.create"),
        ("action", "user.login"),
        ("action!", "audit.seal"),
        ("ip", "10.0.0.0/8"),
        ("source", "web-2"),
        ("q", "paris"),
        ("until", "2026-11-27T00:00:00.000000Z"),
    ]
    assert flt.as_dict() == {
        "action": ["trip.create", "user.login"],
        "action!": "audit.seal",
        "ip": "10.0.0.0/8",
        "source": "web-2",
        "q": "paris",
        "until": "2026-11-27T00:00:00.000000Z",
    }
    assert Filter().as_dict() == {} and Filter().is_empty()
    assert not Filter(not_user=("bob",)).is_empty()


# -- several values, exclusions ------------------------------------------------------------


ROWS = [
    Row("user.login", 1, "alice", "alice@example.com", "trip/1", "10.0.0.1"),
    Row("trip.create", 2, "bob", None, "trip/10", "10.0.1.7", source="web-2"),
    Row("user.login_failed", None, None, None, None, None),
    Row("trip.update", 3, "Alice", None, "trip/1", "192.168.1.1", source="web-2"),
    Row("trip.delete", None, None, "Alice@Example.com", "trip/2", "2001:db8::5"),
    Row("user.login", 4, "carol", "carol@example.org", None, "10.0.0.1"),
]


def test_values_of_one_field_are_any_of_them_and_fields_are_all_of_them() -> None:
    with database(ROWS) as query:
        assert matching(query, Filter(action=("user.login", "trip.create"))) == [6, 2, 1]
        both = Filter(action=("user.login", "trip.create"), source=("web-2",))
        assert matching(query, both) == [2]
        assert matching(query, Filter(user=("bob", "carol"))) == [6, 2]
        assert matching(query, Filter(resource=("trip/1", "trip/2"))) == [5, 4, 1]


def test_an_exclusion_leaves_out_rows_with_any_of_its_values() -> None:
    with database(ROWS) as query:
        assert matching(query, Filter(not_action=("user.login", "trip.update"))) == [5, 3, 2]
        assert matching(query, Filter(not_source=("local",))) == [4, 2]
        flt = Filter(action=("user.login",), not_user=("carol",))
        assert matching(query, flt) == [1]


def test_an_exclusion_keeps_the_rows_without_a_value() -> None:
    with database(ROWS) as query:
        # Row 3 has no IP, no user and no resource: no exclusion of those leaves it out.
        assert matching(query, Filter(not_ip=("10.0.0.1",))) == [5, 4, 3, 2]
        assert matching(query, Filter(not_user=("alice", "2"))) == [6, 5, 3]
        assert matching(query, Filter(not_resource=("trip/1",))) == [6, 5, 3, 2]
        assert matching(query, Filter(not_ip=("10.0.0.0/8", "2001:db8::/32"))) == [4, 3]


def test_a_user_matches_names_and_emails_whatever_their_case() -> None:
    with database(ROWS) as query:
        assert matching(query, Filter(user=("ALICE",))) == [4, 1]
        assert matching(query, Filter(user=("alice@EXAMPLE.com",))) == [5, 1]
        assert matching(query, Filter(user=("Alice", "alice@example.com"))) == [5, 4, 1]
        assert matching(query, Filter(user=("3",))) == [4]


def test_a_resource_is_exact_and_looked_up_in_the_full_text_index() -> None:
    with database(ROWS) as query:
        assert matching(query, Filter(resource=("trip/1",))) == [4, 1]
        assert matching(query, Filter(resource=("trip",))) == []
        plan = " ".join(query.explain(Filter(resource=("trip/1",))))
    assert "audit_log_fts VIRTUAL TABLE" in plan


# -- IP patterns ----------------------------------------------------------------------------


IPS = ["185.220.101.7", "185.220.100.1", "185.221.0.1", "2001:db8::1", "2001:db9::1", None]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("185.220.101.7", [1]),
        ("185.220.101.0/24", [1]),
        ("185.220.100.0/23", [2, 1]),
        ("185.220.0.0/15", [3, 2, 1]),
        ("185.220.101.7/32", [1]),
        ("10.0.0.5/8", []),
        ("185.220.", [2, 1]),
        ("185.220.*", [2, 1]),
        ("185.22*", [3, 2, 1]),
        ("2001:db8::/32", [4]),
        ("2001:db8:", [4]),
        ("2001:db8::1", [4]),
        ("::/0", [5, 4]),
        ("0.0.0.0/0", [3, 2, 1]),
    ],
    ids=lambda value: str(value),
)
def test_an_ip_is_an_address_a_network_or_a_prefix(pattern: str, expected: list[int]) -> None:
    with database([Row(ip=ip) for ip in IPS]) as query:
        assert matching(query, Filter(ip=(pattern,))) == expected


def test_an_ip_pattern_is_read_and_refused_with_a_message() -> None:
    assert parse_ip_pattern("10.0.0.5/8") == IpPattern("network", "10.0.0.0/8")
    assert parse_ip_pattern(" 185.220.* ") == IpPattern("prefix", "185.220.")
    assert parse_ip_pattern("::") == IpPattern("exact", "::")
    assert parse_ip_pattern("web-1") == IpPattern("exact", "web-1")
    with pytest.raises(ValueError, match=r"^185\.220\.101\.0/33 is not a network: the prefix"):
        parse_ip_pattern("185.220.101.0/33")
    with pytest.raises(ValueError, match="is not a network: 185.x is not an IP address"):
        parse_ip_pattern("185.x/8")
    with pytest.raises(ValueError, match="a \\* may only end a prefix"):
        parse_ip_pattern("185.*.1.1")
    with pytest.raises(ValueError, match="needs something before the"):
        parse_ip_pattern("*")


def test_a_network_is_narrowed_by_at_most_16_text_prefixes_of_its_octets() -> None:
    assert network_prefixes("10.0.0.0/8") == ["10."]
    assert network_prefixes("172.16.0.0/12") == [f"172.{n}." for n in range(16, 32)]
    assert network_prefixes("10.1.0.0/17") == ["10.1."]  # 128 prefixes: the whole octets
    assert network_prefixes("0.0.0.0/2") is None and network_prefixes("2001:db8::/32") is None
    assert text_after("10.") == "10/" and text_after("a\U0010ffff") == "b"


def test_an_address_is_found_and_excluded_however_it_is_spelt() -> None:
    stored = ["2001:db8::1", "2001:DB8::1", "::ffff:10.0.0.1", "10.0.0.2", None]
    with database([Row(ip=ip) for ip in stored]) as query:
        # The canonical form the writer stores, and in capitals as an app may have recorded it.
        assert matching(query, Filter(ip=("2001:0DB8:0::1",))) == [2, 1]
        assert matching(query, Filter(not_ip=("2001:0db8::0001",))) == [5, 4, 3]
        # A dual-stack server reports IPv4 clients as ::ffff:a.b.c.d: they are in IPv4 networks.
        assert matching(query, Filter(ip=("10.0.0.0/8",))) == [4, 3]
        assert matching(query, Filter(ip=("2001:DB8:",))) == [1]
    assert parse_ip_pattern("2001:DB8::1") == IpPattern("exact", "2001:db8::1", "2001:DB8::1")


def test_networks_no_prefix_narrows_are_checked_in_one_pass_over_the_rows() -> None:
    networks = tuple(f"2001:db{n:x}::/32" for n in range(20))
    parts = branches(Filter(ip=networks))
    assert len(parts) == 1 and parts[0].conditions[-1].count("trek_in_network") == 1
    with database([Row(ip=ip) for ip in IPS]) as query:
        assert matching(query, Filter(ip=networks)) == [5, 4]
        assert matching(query, Filter(ip=(*networks, "185.220.101.7"))) == [5, 4, 1]
        assert matching(query, Filter(not_ip=networks)) == [6, 3, 2, 1]


def test_a_network_uses_the_ip_index() -> None:
    with database([Row(ip="10.0.0.1")]) as query:
        plan = " ".join(query.explain(Filter(ip=("10.0.0.0/16",))))
    assert "audit_log_ip_id" in plan


# -- branches -------------------------------------------------------------------------------


def test_many_values_become_in_conditions_past_64_branches_with_the_same_rows() -> None:
    rng = random.Random(5)
    actions = [f"act.a{n}" for n in range(20)]
    sources = [f"s{n}" for n in range(20)]
    rows = [
        Row(rng.choice(actions), source=rng.choice(sources), username=rng.choice("abc"))
        for _ in range(300)
    ]
    flt = Filter(action=tuple(actions[:15]), source=tuple(sources[:12]), user=("A", "b"))
    assert len(branches(flt)) <= MAX_BRANCHES
    with database(rows) as query:
        expected = [
            row_id
            for row_id, row in reversed(list(enumerate(rows, start=1)))
            if row.action in flt.action and row.source in flt.source and row.username in ("a", "b")
        ]
        assert expected and matching(query, flt) == expected


def test_one_branch_per_value_while_they_are_few() -> None:
    flt = Filter(action=("a.b", "c.d"), source=("s1", "s2", "s3"), user=("bob", "7"))
    # bob by name; 7 by name or by user id.
    assert len(branches(flt)) == 2 * 3 * 3


# -- seal lines -----------------------------------------------------------------------------


def test_seal_lines_come_only_when_the_action_asks_for_them() -> None:
    rows = [Row("user.login"), seal(1), Row("trip.create"), seal(3)]
    with database(rows) as query:
        assert matching(query, Filter()) == [3, 1]
        assert matching(query, Filter(action=(SEAL_ACTION,))) == [4, 2]
        assert matching(query, Filter(action=(SEAL_ACTION, "user.login"))) == [4, 2, 1]
        assert matching(query, Filter(not_action=("trip.create",))) == [1]
        assert matching(query, Filter(not_action=(SEAL_ACTION,))) == [3, 1]
        assert query.count(Filter(), CountCache()) == 2
    assert leaves_out_seals(Filter()) and leaves_out_seals(Filter(action=("user.login",)))
    assert not leaves_out_seals(Filter(action=(SEAL_ACTION, "user.login")))


def test_cached_counts_of_many_values_stay_exact_as_rows_come() -> None:
    rng = random.Random(11)
    filters = [
        Filter(action=("a.x", "a.y"), not_ip=("10.0.0.0/8",)),
        Filter(user=("U1", "2"), not_action=("a.z",)),
        Filter(ip=("10.", "192.168.0.0/16"), source=("s1", "s2")),
    ]
    cache = CountCache()
    with database() as query:
        for _ in range(6):
            insert(
                query,
                [
                    Row(
                        rng.choice(["a.x", "a.y", "a.z"]),
                        rng.choice([None, 1, 2]),
                        rng.choice([None, "u1", "U2"]),
                        ip=rng.choice([None, "10.1.2.3", "192.168.4.4", "8.8.8.8"]),
                        source=rng.choice(["s1", "s2", "s3"]),
                    )
                    for _ in range(40)
                ],
            )
            for flt in filters:
                assert query.count(flt, cache) == query.count(flt) == len(matching(query, flt))


def has_value(row: Row, field: str) -> bool:
    if field == "user":
        return (row.user_id, row.username, row.email) != (None, None, None)
    return getattr(row, field) is not None


@pytest.mark.parametrize("field", ["action", "user", "ip", "resource", "source"])
def test_a_value_and_its_exclusion_split_the_rows_that_have_the_field(field: str) -> None:
    rows = [*ROWS, seal(6)]
    with database(rows) as query:
        everything = set(matching(query, Filter()))
        values = ["user.login", "alice", "10.0.0.1", "trip/1", "web-2", "10.0.0.0/8"]
        for value in values if field != "ip" else ["10.0.0.1", "10.0.0.0/8", "2001:db8:"]:
            positive = set(matching(query, Filter(**{field: (value,)})))  # type: ignore[arg-type]
            negative = set(matching(query, Filter(**{"not_" + field: (value,)})))  # type: ignore[arg-type]
            assert positive.isdisjoint(negative), value
            without = {row_id for row_id in everything if not has_value(rows[row_id - 1], field)}
            assert positive | negative | without == everything, value
            assert without <= negative, value
