"""Facets list the most frequent values of a field among a filter's rows, exactly, in time."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from trek_audit.store import FACET_FIELDS, Facet, FacetCache, FacetValue, Filter
from trek_audit.store.caches import CachedFacet
from trek_audit.store.facets import brought_up_to_date
from trek_audit.writer.chain import SEAL_ACTION

from .rows_support import Row, database, insert, seal


def listed(facet: Facet) -> list[tuple[str, int]]:
    assert not facet.timed_out
    return [(value.value, value.count) for value in facet.values]


def test_a_facet_lists_values_by_count_then_by_value_without_nulls() -> None:
    rows = [
        Row(ip="10.0.0.2"),
        Row(ip="10.0.0.1"),
        Row(ip="10.0.0.3"),
        Row(ip="10.0.0.3"),
        Row(ip=None),
        Row(ip=None),
        Row(ip=None),
    ]
    with database(rows) as query:
        facet = query.facet(Filter(), "ip")
        assert listed(facet) == [("10.0.0.3", 2), ("10.0.0.1", 1), ("10.0.0.2", 1)]
        assert facet.values[0] == FacetValue("10.0.0.3", 2) and not facet.distinct_more
        two = query.facet(Filter(), "ip", limit=2)
        assert listed(two) == [("10.0.0.3", 2), ("10.0.0.1", 1)] and two.distinct_more


def test_the_user_facet_lists_a_value_the_user_filter_finds() -> None:
    rows = [
        Row(user_id=1, username="alice", email="alice@example.com"),
        Row(user_id=2, username=None, email="bob@example.com"),
        Row(user_id=3),
        Row(),
    ]
    with database(rows) as query:
        facet = query.facet(Filter(), "user")
        assert listed(facet) == [("3", 1), ("alice", 1), ("bob@example.com", 1)]
        for value in facet.values:
            assert query.count(Filter(user=(value.value,))) == value.count


def test_a_facet_counts_only_the_filter_rows_and_leaves_out_seal_lines() -> None:
    rows = [
        Row("user.login", username="alice", source="web-1"),
        Row("user.login", username="bob", source="web-2"),
        Row("trip.create", username="alice", source="web-2"),
        seal(3),
        seal(4, source="web-2"),
    ]
    with database(rows) as query:
        assert listed(query.facet(Filter(), "action")) == [("user.login", 2), ("trip.create", 1)]
        with_seals = Filter(action=(SEAL_ACTION, "trip.create"))
        assert listed(query.facet(with_seals, "action")) == [
            (SEAL_ACTION, 2),
            ("trip.create", 1),
        ]
        several = Filter(user=("ALICE", "bob"), source=("web-2",))  # several branches
        assert listed(query.facet(several, "user")) == [("alice", 1), ("bob", 1)]
        assert listed(query.facet(Filter(not_user=("alice",)), "action")) == [("user.login", 1)]


def test_an_unknown_field_is_refused() -> None:
    with database() as query, pytest.raises(ValueError, match="no facet of 'details'"):
        query.facet(Filter(), "details")
    assert FACET_FIELDS == ("user", "ip", "action", "resource")


def test_a_facet_that_takes_too_long_times_out_and_leaves_the_connection_as_it_was() -> None:
    rows = [Row(ip=f"10.{n % 250}.{n % 7}.1", resource=f"trip/{n}") for n in range(40_000)]
    with database(rows) as query:
        facet = query.facet(Filter(), "resource", time_limit=0.000_001, cache=FacetCache())
        assert facet == Facet("resource", [], timed_out=True, distinct_more=False)
        # The progress handler is gone: a long statement runs to its end.
        slow = "SELECT count(*) FROM audit_log a, audit_log b WHERE a.id < 200 AND b.id < 200"
        assert query.conn.execute(slow).fetchone()[0] == 199 * 199
        assert listed(query.facet(Filter(), "ip", limit=1)) == [("10.0.0.1", 23)]


def naive_facet(
    rows: list[Row], flt_action: str | None, field: str, limit: int
) -> list[tuple[str, int]]:
    """The facet counted in Python over the rows (seal lines left out, as a filter does)."""
    counts: Counter[str] = Counter()
    for row in rows:
        if row.action == SEAL_ACTION or (flt_action and row.action != flt_action):
            continue
        value = getattr(row, field)
        if value is not None:
            counts[value] += 1
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]


@pytest.mark.parametrize("seed", range(6))
def test_a_cached_facet_stays_exact_as_rows_come(seed: int) -> None:
    rng = random.Random(seed)
    cache = FacetCache()
    rows: list[Row] = []
    # A few frequent values and a long tail, whose shares drift as batches come: a value
    # from beyond the kept ones now and then climbs into the top.
    popular = [f"10.0.0.{n}" for n in range(6)]
    with database() as query:
        for batch in range(25):
            tail = [f"192.168.{batch}.{n}" for n in range(40)]
            new = [
                Row(
                    rng.choice(["user.login", "trip.create", SEAL_ACTION]),
                    ip=rng.choice([*popular, *tail, *tail, None]),
                    resource=rng.choice(["trip/1", "trip/2", None]),
                )
                for _ in range(rng.randint(1, 60))
            ]
            insert(query, new)
            rows.extend(new)
            for action, field, limit in (
                (None, "ip", 3),
                ("trip.create", "ip", 2),
                (None, "resource", 1),
            ):
                flt = Filter(action=(action,)) if action else Filter()
                facet = query.facet(flt, field, limit=limit, cache=cache)
                assert listed(facet) == naive_facet(rows, action, field, limit), batch
                assert facet == query.facet(flt, field, limit=limit)


def test_new_rows_that_could_lift_a_value_beyond_the_kept_ones_make_it_count_again() -> None:
    hit = CachedFacet(10, [("a", 9), ("b", 5)], floor=4, complete=False, exact=2)
    # "c" may have had 4 rows: with 2 new ones it could pass b.
    assert brought_up_to_date(hit, {"c": 2}, 12, limit=2) is None
    # With one, "c" may tie with b's 5 and come first by its value.
    assert brought_up_to_date(hit, {"c": 1}, 11, limit=2) is None
    assert brought_up_to_date(hit, {"c": 1}, 11, limit=1) == CachedFacet(
        11, [("a", 9), ("b", 5)], floor=5, complete=False, exact=1
    )
    kept = brought_up_to_date(hit, {"b": 1, "a": 1}, 12, limit=2)
    assert kept == CachedFacet(12, [("a", 10), ("b", 6)], floor=4, complete=False, exact=2)
    complete = CachedFacet(10, [("a", 2)], floor=0, complete=True, exact=1)
    assert brought_up_to_date(complete, {"z": 3}, 11, limit=1) == CachedFacet(
        11, [("z", 3), ("a", 2)], floor=0, complete=True, exact=2
    )


def test_without_new_rows_a_cached_facet_is_kept_as_far_as_it_is_exact() -> None:
    # Counted afresh, ties at the floor are in their true order already.
    fresh = CachedFacet(10, [("a", 1), ("b", 1)], floor=1, complete=False, exact=2)
    assert brought_up_to_date(fresh, {}, 10, limit=2) == fresh
    merged = CachedFacet(10, [("a", 3), ("b", 1)], floor=1, complete=False, exact=1)
    assert brought_up_to_date(merged, {}, 10, limit=2) is None


def test_an_empty_table_has_empty_facets() -> None:
    with database() as query:
        assert query.facet(Filter(), "user") == Facet("user", [], False, False)


def test_a_time_range_facet_counts_the_rows_of_the_range() -> None:
    with database([Row(ts=f"2026-11-26T13:22:{n:02d}.000000Z") for n in range(50)]) as query:
        flt = Filter(since="2026-11-26T13:22:10.000000Z", until="2026-11-26T13:22:20.000000Z")
        assert listed(query.facet(flt, "action")) == [("user.login", 10)]


def test_the_facets_of_several_fields_read_the_rows_once_and_match_each_facet_alone() -> None:
    generator = random.Random(7)
    rows = [
        Row(
            generator.choice(["user.login", "trip.create", "trip.delete"]),
            username=generator.choice(["alice", "bob", None]),
            ip=generator.choice(["10.0.0.1", "10.0.0.2", "203.0.113.9", None]),
            resource=generator.choice(["trip/1", "trip/2", None]),
        )
        for _ in range(300)
    ]
    with database(rows) as query:
        for flt in (Filter(), Filter(action=("trip.create", "trip.delete")), Filter(user=("bob",))):
            together = query.facets(flt, FACET_FIELDS)
            assert [facet.field for facet in together] == list(FACET_FIELDS)
            assert together == [query.facet(flt, field) for field in FACET_FIELDS]
            statements: list[str] = []
            query.conn.set_trace_callback(statements.append)
            try:
                query.facets(flt, FACET_FIELDS)
            finally:
                query.conn.set_trace_callback(None)
            # The statements of the connection itself, not those FTS5 runs inside (traced as --).
            reads = [sql for sql in statements if sql.startswith("SELECT") and "max(id)" not in sql]
            assert len(reads) == 1, reads


def test_a_cached_field_answers_while_the_others_are_counted() -> None:
    rows = [Row("user.login", username="alice", ip="10.0.0.1") for _ in range(20)]
    with database(rows) as query:
        cache = FacetCache()
        first = query.facets(Filter(), ("action",), cache=cache)
        both = query.facets(Filter(), ("action", "ip"), cache=cache)
        assert both[0] == first[0] and listed(both[1]) == [("10.0.0.1", 20)]
        assert cache.get(Filter(), "ip") is not None
