"""A ``user`` filter looks names up in the full-text index, and still finds exactly the rows
whose username or email equals it whatever the case, whatever the text; an ``ip`` filter finds
exactly the rows its address, prefix or network says."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from trek_audit.store import AuditQuery, Filter, IpPattern, connect, migrate, parse_ip_pattern
from trek_audit.store.schema import fill_full_text, newest_row_id
from trek_audit.store.search import column_phrase

INSERT = (
    "INSERT INTO audit_log (event_id, seq, ts, action, user_id, username, email, ip) "
    "VALUES (?, ?, '2026-11-26T13:22:49.123456Z', 'user.login', ?, ?, ?, ?)"
)

names = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        ["alice", "Alice", "ALICE", "a-b", "a b", "ä", "Ä", "ａ", "___", "::1", "x\x00y", '"']
        + ["straße", "STRASSE", "10.0.0.1", "10.0.", "10.0.*", "10.0.0.0/16", "2001:db8::/32"]
    ),
)


@contextmanager
def database(users: list[tuple[int | None, str | None, str | None]]) -> Iterator[AuditQuery]:
    """audit.db in memory, one row per (user id, username, email), filled as the indexer does.

    Each row's ip is its username, so the same names test the IP filter too.
    """
    conn = connect(":memory:")
    try:
        migrate(conn)
        with conn:
            newest = newest_row_id(conn)
            conn.executemany(
                INSERT,
                [(f"e{n}", n, uid, name, mail, name) for n, (uid, name, mail) in enumerate(users)],
            )
            fill_full_text(conn, newest)
        yield AuditQuery(conn)
    finally:
        conn.close()


def whole_number(text: str) -> int | None:
    """The user id a filter text names: a whole number, signed, of at most 19 digits."""
    text = text.strip()
    return int(text) if re.fullmatch(r"-?\d{1,19}", text) else None


def user_ids(query: AuditQuery, flt: Filter) -> list[int]:
    return [entry.row_id for entry in query.page(flt, None, 1000)]


def folds_like_lowercase(text: str) -> bool:
    """Whether each letter of ``text`` casefolds to its lowercase, as the full-text index folds.

    A stored name with another letter (``ß``, ``ſ``, ``ﬁ``) is found by its own spelling in any
    case, not by the other spelling the letter casefolds to: see ``sql.name_phrase``.
    """
    return all(char.casefold() == char.lower() and len(char.lower()) == 1 for char in text)


def ip_matches(pattern: IpPattern, ip: str | None) -> bool:
    """What an ``ip`` filter value means, said in Python (the SQL must agree)."""
    if ip is None:
        return False
    if pattern.kind == "exact":
        return ip == pattern.text
    if pattern.kind == "prefix":
        return ip.startswith(pattern.text)
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(pattern.text)
    except ValueError:
        return False


@settings(max_examples=200, deadline=None)
@given(
    users=st.lists(
        st.tuples(st.none() | st.integers(-5, 5), st.none() | names, st.none() | names),
        max_size=8,
    ),
    wanted=names.filter(bool),  # an empty value is no value (Filter leaves it out)
)
@example(users=[(None, "Alice", "alice"), (None, "alice-b", None)], wanted="alice")
@example(users=[(None, "a b c", None), (None, "a b", None)], wanted="a b")
@example(users=[(7, None, None), (None, "7", None)], wanted="7")
@example(users=[(None, "ALICE", None), (None, "x", "Alice@Example.com")], wanted="alice")
@example(users=[(None, "STRASSE", None), (None, "Straße", None)], wanted="straße")
def test_a_user_filter_finds_exactly_the_rows_with_that_name_in_any_case_or_id(
    users: list[tuple[int | None, str | None, str | None]], wanted: str
) -> None:
    with database(users) as query:
        folded = wanted.casefold()
        expected, surely = [], []
        for row_id, (uid, name, mail) in enumerate(users, start=1):
            by_id = uid is not None and whole_number(wanted) == uid
            by_name = [
                text for text in (name, mail) if text is not None and text.casefold() == folded
            ]
            if by_id or by_name:
                expected.append(row_id)
            if by_id or any(folds_like_lowercase(text) for text in by_name):
                surely.append(row_id)
        flt = Filter(user=(wanted,))
        found = sorted(user_ids(query, flt))
        assert set(surely) <= set(found) <= set(expected)
        assert query.count(flt) == len(found)


@settings(max_examples=200, deadline=None)
@given(
    ips=st.lists(st.none() | names | st.ip_addresses().map(str), max_size=8),
    wanted=names.filter(lambda text: bool(text.strip())),
)
@example(ips=["10.0.0.1", "10.0.1.1", "10.1.0.1", "100.0.0.1"], wanted="10.0.0.0/16")
@example(ips=["10.0.0.1", "10.0.1.1", "10.1.0.1", "100.0.0.1"], wanted="10.0.")
@example(ips=["172.16.0.1", "172.31.255.255", "172.32.0.1", "172.15.0.1"], wanted="172.16.0.0/12")
@example(ips=["2001:db8::1", "2001:db9::1", "::1"], wanted="2001:db8::/32")
def test_an_ip_filter_finds_exactly_the_rows_of_its_address_prefix_or_network(
    ips: list[str | None], wanted: str
) -> None:
    with database([(None, None, None)] * len(ips)) as query:
        query.conn.executemany(
            "UPDATE audit_log SET ip = ? WHERE id = ?",
            [(ip, row_id) for row_id, ip in enumerate(ips, start=1)],
        )
        flt = Filter(ip=(wanted,))
        try:
            pattern = parse_ip_pattern(wanted)
        except ValueError:
            with pytest.raises(ValueError):
                query.page(flt)
            return
        expected = [row_id for row_id, ip in enumerate(ips, start=1) if ip_matches(pattern, ip)]
        assert sorted(user_ids(query, flt)) == expected
        kept = [row_id for row_id, ip in enumerate(ips, start=1) if not ip_matches(pattern, ip)]
        assert sorted(user_ids(query, Filter(not_ip=(wanted,)))) == kept


def test_a_name_with_words_is_looked_up_in_the_full_text_index() -> None:
    with database([(None, "alice", None)]) as query:
        plan = " ".join(query.explain(Filter(user=("alice",))))
    assert "audit_log_fts VIRTUAL TABLE" in plan
    assert column_phrase(("username",), 'say "hi"') == '{username} : "say ""hi"""'


def test_a_name_without_a_word_is_checked_row_by_row() -> None:
    assert column_phrase(("username", "email"), "___") is None
    with database([(None, "___", None), (None, "_", "___")]) as query:
        assert user_ids(query, Filter(user=("___",))) == [2, 1]
        assert user_ids(query, Filter(user=("ÄÖ",))) == []
        plan = " ".join(query.explain(Filter(user=("___",))))
    assert "audit_log_fts" not in plan


def test_a_search_and_a_name_combine_in_one_full_text_query() -> None:
    with database([(None, "alice", None), (None, "bob", "alice")]) as query:
        assert user_ids(query, Filter(user=("alice",), q="alice")) == [2, 1]
        assert user_ids(query, Filter(user=("alice",), q="bob")) == [2]
        assert user_ids(query, Filter(user=("bob",), q="alice")) == [2]
