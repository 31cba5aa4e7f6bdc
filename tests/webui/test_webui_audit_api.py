"""The JSON API and the Audit page: filters, keyset pages, bad parameters, totals."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trek_audit.store import AuditQuery, Filter, fts_query

from .webui_support import insert_rows, json_body, make_row

AddRows = Callable[..., list[dict[str, Any]]]


def walk(
    client: FlaskClient, params: dict[str, str], limit: int = 100
) -> tuple[list[dict[str, Any]], int]:
    """Follow ``next`` to the end with a loop guard; return every entry and the number of pages."""
    entries: list[dict[str, Any]] = []
    cursor = None
    for pages in range(1, 1000):
        query = {**params, "limit": str(limit), **({"before": cursor} if cursor else {})}
        body = json_body(client.get("/api/admin/audit?" + urlencode(query)))
        entries.extend(body["entries"])
        cursor = body["next"]
        if cursor is None:
            return entries, pages
    raise AssertionError("pagination did not end")


@pytest.fixture
def mixed(db: sqlite3.Connection) -> list[dict[str, Any]]:
    """250 events: every 5th a failed login from 198.51.100.1, every 7th by bob (id 42)."""
    rows = []
    for n in range(1, 251):
        fields: dict[str, Any] = {}
        if n % 5 == 0:
            fields.update(
                action="user.login_failed",
                user_id=None,
                username=None,
                email=None,
                ip="198.51.100.1",
                details={"username": "mallory", "reason": "x"},
            )
        elif n % 7 == 0:
            fields.update(
                user_id=42,
                username="bob",
                email="bob@example.com",
                details={"title": "Lisbon weekend"},
            )
        rows.append(make_row(n, **fields))
    insert_rows(db, rows)
    return rows


def test_walking_all_pages_sees_every_entry_once_newest_first(
    admin_client: FlaskClient, mixed: list[dict[str, Any]]
) -> None:
    entries, pages = walk(admin_client, {}, limit=100)
    assert pages == 3
    assert [e["id"] for e in entries] == [r["event_id"] for r in reversed(mixed)]


def test_entry_shape(admin_client: FlaskClient, add_rows: AddRows) -> None:
    add_rows(1, details={"title": "Oslo"})
    add_rows(1, start=2, user_id=None, username=None, email=None, details=None, resource=None)
    body = json_body(admin_client.get("/api/admin/audit"))
    assert body["total"] == 2 and body["next"] is None
    anonymous, alice = body["entries"]
    assert alice == {
        "id": "evt-00000001",
        "ts": "2026-11-01T00:01:00.000000Z",
        "user": {"id": 7, "username": "alice", "email": "alice@example.com"},
        "action": "trip.update",
        "resource": "trip/1",
        "ip": "192.0.2.7",
        "details": {"title": "Oslo"},
        "source": "local",
        "sealed": False,
        "row": "1",
    }
    assert anonymous["user"] is None and anonymous["details"] is None


def test_limit_defaults_to_100_and_next_is_the_last_row(
    admin_client: FlaskClient, add_rows: AddRows
) -> None:
    add_rows(150)
    body = json_body(admin_client.get("/api/admin/audit"))
    assert len(body["entries"]) == 100
    assert body["total"] == 150
    assert body["next"] == "51"
    rest = json_body(admin_client.get("/api/admin/audit?before=" + body["next"]))
    assert len(rest["entries"]) == 50 and rest["next"] is None


def test_exactly_a_page_has_no_next(admin_client: FlaskClient, add_rows: AddRows) -> None:
    add_rows(100)
    assert json_body(admin_client.get("/api/admin/audit"))["next"] is None


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"action": "user.login_failed"}, lambda n: n % 5 == 0),
        ({"user": "bob"}, lambda n: n % 7 == 0 and n % 5),
        ({"user": "bob@example.com"}, lambda n: n % 7 == 0 and n % 5),
        ({"user": "42"}, lambda n: n % 7 == 0 and n % 5),
        ({"ip": "198.51.100.1"}, lambda n: n % 5 == 0),
        ({"q": "mallory"}, lambda n: n % 5 == 0),
        ({"q": "lisbon"}, lambda n: n % 7 == 0 and n % 5),
        ({"q": "lis*"}, lambda n: n % 7 == 0 and n % 5),
        ({"since": "2026-11-01T02:00"}, lambda n: n >= 120),
        ({"until": "2026-11-01T01:00:00Z"}, lambda n: n < 60),
        ({"since": "2026-11-01T01:00", "until": "2026-11-01T02:00"}, lambda n: 60 <= n < 120),
        ({"action": "trip.update", "user": "bob"}, lambda n: n % 7 == 0 and n % 5),
        (
            {"action": "user.login_failed", "since": "2026-11-01T03:00"},
            lambda n: n % 5 == 0 and n >= 180,
        ),
        ({"user": "alice", "q": "trip"}, lambda n: n % 5 and n % 7),
        (
            {"ip": "192.0.2.7", "user": "42", "until": "2026-11-01T01:00"},
            lambda n: n % 7 == 0 and n % 5 and n < 60,
        ),
        ({"action": "user.login_failed", "user": "bob"}, lambda n: False),
    ],
    ids=[
        "action",
        "username",
        "email",
        "user-id",
        "ip",
        "q",
        "q-case",
        "q-prefix",
        "since",
        "until",
        "since-until",
        "action+user",
        "action+since",
        "user+q",
        "ip+user+until",
        "contradiction",
    ],
)
def test_filters_narrow_entries_and_total(
    admin_client: FlaskClient,
    mixed: list[dict[str, Any]],
    params: dict[str, str],
    expected: Callable[[int], Any],
) -> None:
    want = [r["event_id"] for r in reversed(mixed) if expected(r["seq"])]
    entries, _ = walk(admin_client, params, limit=7)
    assert [e["id"] for e in entries] == want
    assert json_body(admin_client.get("/api/admin/audit?" + urlencode(params)))["total"] == len(
        want
    )
    html = admin_client.get("/admin/audit?" + urlencode(params)).get_data(as_text=True)
    assert f'data-total="{len(want)}"' in html


def test_page_shows_100_rows_and_a_plain_load_more_link(
    admin_client: FlaskClient, add_rows: AddRows
) -> None:
    add_rows(230, action="trip.create")
    html = admin_client.get("/admin/audit?action=trip.create").get_data(as_text=True)
    assert html.count('<tr data-id="') == 100
    assert 'href="?action=trip.create&amp;before=131"' in html
    second = admin_client.get("/admin/audit?action=trip.create&before=131").get_data(as_text=True)
    assert second.count('<tr data-id="') == 100
    assert "evt-00000130" in second and "evt-00000131" not in second


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=abc", "limit"),
        ("before=-3", "before"),
        ("before=1.5", "before"),
        ("since=yesterday", "since"),
        ("until=2026-13-01", "until"),
        ("since=2026-11-02&until=2026-11-01", "until"),
        ("action=DROP%20TABLE", "action"),
        ("q=" + "x" * 501, "q"),
        ("user=" + "u" * 400, "user"),
        ("ip=" + "1" * 101, "ip"),
    ],
    ids=[
        "limit-0",
        "limit-big",
        "limit-text",
        "before-negative",
        "before-float",
        "since-text",
        "until-month",
        "until-before-since",
        "action-malformed",
        "q-long",
        "user-long",
        "ip-long",
    ],
)
def test_bad_parameter_is_400_naming_it(
    admin_client: FlaskClient, db: object, query: str, parameter: str
) -> None:
    response = admin_client.get("/api/admin/audit?" + query)
    assert response.status_code == 400
    assert json_body(response)["parameter"] == parameter
    assert json_body(response)["error"]
    page = admin_client.get("/admin/audit?" + query)
    assert page.status_code == 400
    assert parameter in page.get_data(as_text=True)


@pytest.mark.parametrize(
    "q",
    [
        '"',
        'a" OR "b',
        "NEAR(",
        "col:val",
        "*",
        "-x",
        "^",
        "AND",
        "(",
        "'; DROP TABLE audit_log; --",
        "trip\x00",
        "\x00*",
    ],
)
def test_search_text_is_never_fts_syntax(
    admin_client: FlaskClient, add_rows: AddRows, q: str
) -> None:
    add_rows(3)
    response = admin_client.get("/api/admin/audit?" + urlencode({"q": q}))
    assert response.status_code == 200
    assert json_body(response)["total"] == len(json_body(response)["entries"])
    for path in ("/admin/audit", "/admin/audit/chart.svg"):
        assert admin_client.get(path + "?" + urlencode({"q": q})).status_code == 200


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text())
def test_any_search_text_is_a_valid_full_text_query(text: str) -> None:
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("CREATE VIRTUAL TABLE t USING fts5(body)")
        conn.execute("INSERT INTO t (body) VALUES ('trip update')")
        match = fts_query(text)
        if match is not None:
            conn.execute("SELECT count(*) FROM t WHERE t MATCH ?", (match,)).fetchone()
    finally:
        conn.close()


def test_unfiltered_total_is_the_indexer_counter(
    admin_client: FlaskClient, db: sqlite3.Connection, add_rows: AddRows
) -> None:
    add_rows(3)
    with db:
        db.execute("UPDATE indexer_state SET value = 1234 WHERE name = 'indexed'")
    assert json_body(admin_client.get("/api/admin/audit"))["total"] == 1234


def test_actions_seen_outside_the_catalog_are_offered(
    admin_client: FlaskClient, add_rows: AddRows
) -> None:
    add_rows(2, action="custom.thing_done")
    html = admin_client.get("/admin/audit").get_data(as_text=True)
    assert '<option value="custom.thing_done"' in html
    assert '<option value="user.login"' in html


@pytest.mark.parametrize(
    "flt",
    [
        Filter(),
        Filter(action=("user.login",)),
        Filter(ip=("10.0.0.1",)),
        Filter(user=("bob",)),
        Filter(user=("7",)),
        Filter(q="paris"),
        Filter(q="paris", action=("trip.create",)),
    ],
    ids=["none", "action", "ip", "user", "user-id", "q", "q+action"],
)
def test_pages_are_index_range_scans_without_sorting(db: sqlite3.Connection, flt: Filter) -> None:
    plan = AuditQuery(db).explain(flt, before=1000)
    assert not [step for step in plan if "TEMP B-TREE FOR ORDER BY" in step], plan
    for step in plan:
        if step.startswith("SCAN "):
            # Only the small UNION results and the full-text index (by MATCH,
            # rowid-bounded) are scanned.
            assert step.startswith("SCAN (subquery-") or (
                step.startswith("SCAN audit_log_fts VIRTUAL TABLE") and ":M" in step and "<" in step
            ), plan
    assert any("id<?" in step or "rowid<?" in step or "M6<" in step for step in plan), plan


def test_histogram_counts_per_bucket(db: sqlite3.Connection, add_rows: AddRows) -> None:
    add_rows(180)  # three hours, one event a minute
    histogram = AuditQuery(db).histogram(Filter())
    assert histogram.unit == "minute" or histogram.unit == "hour"
    assert histogram.total == 180
    by_hour = AuditQuery(db).histogram(Filter(), max_buckets=10)
    assert by_hour.unit == "hour"
    assert by_hour.buckets == [
        ("2026-11-01T00", 59),
        ("2026-11-01T01", 60),
        ("2026-11-01T02", 60),
        ("2026-11-01T03", 1),
    ]


def test_chart_is_svg_without_script(admin_client: FlaskClient, add_rows: AddRows) -> None:
    add_rows(50, action="user.login_failed")
    response = admin_client.get("/admin/audit/chart.svg?action=user.login_failed")
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    svg = response.get_data(as_text=True)
    assert svg.startswith("<svg") and "<script" not in svg
    assert "50 events" in svg and svg.count("<rect") > 2


@pytest.mark.parametrize(
    "flt",
    [
        Filter(action=("trip.create",)),
        Filter(user=("bob",)),
        Filter(q="lisbon"),
        Filter(since="2026-11-01T01:00:00.000000Z"),
    ],
    ids=["action", "user-or", "fts", "since"],
)
def test_cached_counts_stay_exact_as_rows_arrive(db: sqlite3.Connection, flt: Filter) -> None:
    from trek_audit.store import CountCache

    cache = CountCache()
    query = AuditQuery(db)
    bob = {"user_id": 42, "username": "bob", "email": "bob@example.com", "details": {"t": "Lisbon"}}
    for batch in range(4):
        start = 1 + batch * 50
        insert_rows(
            db,
            [
                make_row(
                    n,
                    **(bob if n % 3 == 0 else {}),
                    action="trip.create" if n % 2 else "trip.update",
                )
                for n in range(start, start + 50)
            ],
        )
        assert query.count(flt, cache) == query.count(flt)
    assert cache.get(flt) == (200, query.count(flt))


@pytest.mark.parametrize(
    "flt",
    [Filter(), Filter(action=("trip.create",)), Filter(user=("bob",))],
    ids=["all", "action", "user-or"],
)
def test_cached_histograms_match_fresh_ones_as_rows_arrive(
    db: sqlite3.Connection, flt: Filter
) -> None:
    from trek_audit.store import HistogramCache

    cache = HistogramCache()
    query = AuditQuery(db)
    units = set()
    # Batches far apart in time, so the unit grows from minutes to days and the cache coarsens.
    for batch, step in enumerate([1, 1, 60, 2000]):
        start = 1 + batch * 40
        rows = [
            make_row(
                start * step + i * step,
                action="trip.create" if i % 2 else "trip.update",
                **({"username": "bob"} if i % 3 == 0 else {}),
            )
            for i in range(40)
        ]
        for offset, row in enumerate(rows):
            row["seq"] = start + offset
            row["event_id"] = f"evt-{batch}-{offset}"
        insert_rows(db, rows)
        cached, fresh = query.histogram(flt, 60, cache), query.histogram(flt, 60)
        assert cached == fresh
        units.add(fresh.unit)
    assert len(units) >= 2


def test_until_far_back_pages_from_a_bound_not_from_the_newest_row(db: sqlite3.Connection) -> None:
    insert_rows(db, [make_row(n) for n in range(1, 2001)])
    query = AuditQuery(db)
    flt = Filter(until="2026-11-01T01:00:00.000000Z")  # the first 59 events of 2000
    plan = " ".join(query.explain(flt))
    assert "rowid<?" in plan or "id<?" in plan
    assert [e.seq for e in query.page(flt, None, 100)] == list(range(59, 0, -1))
    # Exact even when ids do not follow time: a late row with an old timestamp is found.
    insert_rows(db, [make_row(5000, ts="2026-11-01T00:00:30.000000Z")])
    assert query.page(flt, None, 1)[0].seq == 5000
    assert query.count(flt) == 60
