"""A ``user`` filter looks names up in the full-text index, and still finds exactly the rows
whose username or email equals it, whatever the text."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from hypothesis import example, given, settings
from hypothesis import strategies as st

from trek_audit.store import AuditQuery, Filter, connect, migrate
from trek_audit.store.schema import fill_full_text, newest_row_id
from trek_audit.store.search import column_phrase

INSERT = (
    "INSERT INTO audit_log (event_id, seq, ts, action, user_id, username, email, ip) "
    "VALUES (?, ?, '2026-11-26T13:22:49.123456Z', 'user.login', ?, ?, ?, ?)"
)

names = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["alice", "Alice", "a-b", "a b", "ä", "ａ", "___", "::1", "x\x00y", '"']),
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


@settings(max_examples=200, deadline=None)
@given(
    users=st.lists(
        st.tuples(st.none() | st.integers(-5, 5), st.none() | names, st.none() | names),
        max_size=8,
    ),
    wanted=names.filter(bool),  # an empty value is no filter (Filter.is_empty)
)
@example(users=[(None, "Alice", "alice"), (None, "alice-b", None)], wanted="alice")
@example(users=[(None, "a b c", None), (None, "a b", None)], wanted="a b")
@example(users=[(7, None, None), (None, "7", None)], wanted="7")
def test_a_user_filter_finds_exactly_the_rows_with_that_name_or_id(
    users: list[tuple[int | None, str | None, str | None]], wanted: str
) -> None:
    with database(users) as query:
        expected = [
            row_id + 1
            for row_id, (uid, name, mail) in enumerate(users)
            if wanted in (name, mail) or (uid is not None and whole_number(wanted) == uid)
        ]
        flt = Filter(user=wanted)
        assert sorted(user_ids(query, flt)) == expected
        assert query.count(flt) == len(expected)
        by_ip = [row_id + 1 for row_id, (_, name, _) in enumerate(users) if name == wanted]
        assert sorted(user_ids(query, Filter(ip=wanted))) == by_ip


def test_a_name_with_words_is_looked_up_in_the_full_text_index() -> None:
    with database([(None, "alice", None)]) as query:
        plan = " ".join(query.explain(Filter(user="alice")))
    assert "audit_log_fts VIRTUAL TABLE" in plan
    assert column_phrase(("username",), 'say "hi"') == '{username} : "say ""hi"""'


def test_a_name_without_a_word_is_checked_row_by_row() -> None:
    assert column_phrase(("username", "email"), "___") is None
    with database([(None, "___", None), (None, "_", "___")]) as query:
        assert user_ids(query, Filter(user="___")) == [2, 1]
        plan = " ".join(query.explain(Filter(user="___")))
    assert "audit_log_fts" not in plan


def test_a_search_and_a_name_combine_in_one_full_text_query() -> None:
    with database([(None, "alice", None), (None, "bob", "alice")]) as query:
        assert user_ids(query, Filter(user="alice", q="alice")) == [2, 1]
        assert user_ids(query, Filter(user="alice", q="bob")) == [2]
        assert user_ids(query, Filter(user="bob", q="alice")) == [2]
