"""API tokens: made and revoked by an admin, read-only, on the API and the exports only."""

from __future__ import annotations

import html
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from trek_audit.webui.tokens import TOKEN_PREFIX, TokenError, TokenStore, hash_token
from trek_audit.writer import Event, decode
from trek_audit.writer.catalog import AREAS

from . import test_webui_fail_closed as fail_closed
from .webui_support import csrf_from, json_body, small_log_disk, state_of

INVALID = {"error": "invalid or revoked token"}
INVALID_CHALLENGE = 'Bearer error="invalid_token"'


@pytest.fixture
def store(app: Flask) -> TokenStore:
    return TokenStore(state_of(app).accounts_db)


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def events(data_dir: Path) -> list[Event]:
    """Every event in trek.log, oldest first."""
    log = data_dir / "logs" / "trek.log"
    return [decode(line) for line in log.read_bytes().splitlines()] if log.exists() else []


def assert_no_cookie(response: TestResponse) -> None:
    assert "Set-Cookie" not in response.headers, response.headers["Set-Cookie"]


def assert_invalid_token(response: TestResponse) -> None:
    assert response.status_code == 401
    assert json_body(response) == INVALID
    assert response.headers["WWW-Authenticate"] == INVALID_CHALLENGE
    assert_no_cookie(response)


def create_on_page(client: FlaskClient, name: str) -> TestResponse:
    token = csrf_from(client.get("/admin/tokens").get_data(as_text=True))
    return client.post("/admin/tokens", data={"csrf_token": token, "name": name})


def revoke_on_page(client: FlaskClient, name: str) -> TestResponse:
    token = csrf_from(client.get("/admin/tokens").get_data(as_text=True))
    return client.post(f"/admin/tokens/{name}/revoke", data={"csrf_token": token})


# The store.


def test_a_token_is_256_random_bits_after_its_prefix_and_only_its_hash_is_kept(
    store: TokenStore, data_dir: Path
) -> None:
    token, secret = store.create("siem", created_by="admin")
    assert secret.startswith(TOKEN_PREFIX)
    assert len(secret) == len(TOKEN_PREFIX) + 43  # 32 bytes in URL-safe base64, unpadded
    assert (token.name, token.created_by, token.last_used, token.revoked) == (
        "siem",
        "admin",
        None,
        None,
    )
    with sqlite3.connect(data_dir / "accounts.db") as conn:
        stored = conn.execute("SELECT token_hash FROM api_tokens").fetchall()
    assert stored == [(hash_token(secret),)]
    assert secret.encode() not in (data_dir / "accounts.db").read_bytes()


def test_two_tokens_never_share_a_secret(store: TokenStore) -> None:
    secrets = {store.create(f"t{n}", created_by="admin")[1] for n in range(20)}
    assert len(secrets) == 20


def test_verify_knows_the_secret_and_nothing_else(store: TokenStore) -> None:
    token, secret = store.create("siem", created_by="admin")
    verified = store.verify(secret)
    assert verified is not None and verified.name == "siem" and verified.id == token.id
    for wrong in (
        secret[:-1],
        secret + "x",
        secret.removeprefix(TOKEN_PREFIX),
        "",
        TOKEN_PREFIX,
        TOKEN_PREFIX + "x" * 10_000,
        hash_token(secret),
    ):
        assert store.verify(wrong) is None, wrong


def test_a_revoked_token_is_refused_and_stays_listed(store: TokenStore) -> None:
    _, secret = store.create("siem", created_by="admin")
    revoked = store.revoke("siem")
    assert revoked.revoked is not None and revoked.state == "revoked"
    assert store.verify(secret) is None
    assert [(t.name, t.state) for t in store.list()] == [("siem", "revoked")]


def test_a_listed_name_cannot_be_reused_even_after_revoking(store: TokenStore) -> None:
    store.create("siem", created_by="admin")
    with pytest.raises(TokenError, match="already listed"):
        store.create("siem", created_by="admin")
    store.revoke("siem")
    with pytest.raises(TokenError, match="already listed"):
        store.create("siem", created_by="admin")


def test_revoking_an_unknown_or_revoked_token_says_so(store: TokenStore) -> None:
    with pytest.raises(TokenError, match="no token named 'nope'"):
        store.revoke("nope")
    store.create("siem", created_by="admin")
    store.revoke("siem")
    with pytest.raises(TokenError, match="already revoked"):
        store.revoke("siem")


BAD_NAMES = ["", "-lead", ".hidden", "has space", "a/b", "<script>", "x" * 65, "é"]


@pytest.mark.parametrize("name", BAD_NAMES, ids=[repr(n) for n in BAD_NAMES])
def test_a_token_name_follows_the_username_rules(store: TokenStore, name: str) -> None:
    with pytest.raises(TokenError, match="a token name is 1 to 64"):
        store.create(name, created_by="admin")
    assert store.list() == []


def test_the_list_is_by_name_with_revoked_tokens_too(store: TokenStore) -> None:
    for name in ("zeta", "alpha", "mid"):
        store.create(name, created_by="admin")
    store.revoke("mid")
    assert [(t.name, t.state) for t in store.list()] == [
        ("alpha", "active"),
        ("mid", "revoked"),
        ("zeta", "active"),
    ]


def test_last_used_is_written_at_most_once_a_minute(store: TokenStore) -> None:
    _, secret = store.create("siem", created_by="admin")
    first = store.verify(secret)
    assert first is not None and first.last_used is None  # as read, before this use
    used = store.get("siem")
    assert used is not None and used.last_used is not None
    # A second use within the minute writes nothing.
    with store.db.connect() as conn:
        before = conn.total_changes
    assert store.verify(secret) is not None
    with store.db.connect() as conn:
        assert conn.total_changes == before
        # Once the stored time is older than a minute, a use writes it again.
        old = (datetime.now(UTC) - timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        conn.execute("UPDATE api_tokens SET last_used = ?", (old,))
    assert store.verify(secret) is not None
    again = store.get("siem")
    assert again is not None and again.last_used is not None and again.last_used > old


# Bearer tokens on the API and the exports.


@pytest.fixture
def secret(store: TokenStore) -> str:
    return store.create("siem", created_by="admin")[1]


def test_a_token_reads_the_api_without_a_session(
    client: FlaskClient, add_rows: Callable[..., Any], secret: str
) -> None:
    add_rows(3)
    response = client.get("/api/admin/audit", headers=bearer(secret))
    assert response.status_code == 200
    assert json_body(response)["total"] == 3
    assert_no_cookie(response)
    assert client.get_cookie("trek_audit_session") is None


def test_a_token_reads_the_facets_and_an_event(
    client: FlaskClient, add_rows: Callable[..., Any], secret: str
) -> None:
    add_rows(2)
    facets = client.get("/api/admin/audit/facets?field=ip", headers=bearer(secret))
    assert facets.status_code == 200 and "facets" in json_body(facets)
    assert_no_cookie(facets)
    event = client.get("/api/admin/audit/event/evt-00000001", headers=bearer(secret))
    assert event.status_code == 200 and json_body(event)["event"]["id"] == "evt-00000001"
    assert_no_cookie(event)


def test_the_scheme_name_is_case_insensitive(client: FlaskClient, db: object, secret: str) -> None:
    response = client.get("/api/admin/audit", headers={"Authorization": f"bearer {secret}"})
    assert response.status_code == 200


def test_an_export_by_token_is_recorded_with_the_tokens_name(
    client: FlaskClient, add_rows: Callable[..., Any], secret: str, data_dir: Path
) -> None:
    add_rows(2)
    response = client.get("/admin/audit/export.ndjson?action=trip.update", headers=bearer(secret))
    assert response.status_code == 200
    assert len(response.get_data(as_text=True).splitlines()) == 2
    assert_no_cookie(response)
    export = events(data_dir)[-1]
    assert export["action"] == "audit.export"
    assert export["user"] is None
    assert export["details"] is not None
    assert (export["details"]["token"], export["details"]["format"]) == ("siem", "ndjson")


MALFORMED = ["Bearer", "Bearer ", "Bearer not-a-token", "Bearer trek_", "Bearer trek_ x y"]


@pytest.mark.parametrize("header", MALFORMED, ids=MALFORMED)
def test_a_malformed_or_unknown_token_is_401_with_a_bearer_challenge(
    client: FlaskClient, db: object, header: str
) -> None:
    assert_invalid_token(client.get("/api/admin/audit", headers={"Authorization": header}))


def test_a_revoked_token_is_401(
    client: FlaskClient, db: object, store: TokenStore, secret: str
) -> None:
    assert client.get("/api/admin/audit", headers=bearer(secret)).status_code == 200
    store.revoke("siem")
    assert_invalid_token(client.get("/api/admin/audit", headers=bearer(secret)))
    assert_invalid_token(client.get("/admin/audit/export.csv", headers=bearer(secret)))


def test_a_wrong_token_is_401_even_with_an_admins_session(
    admin_client: FlaskClient, db: object
) -> None:
    response = admin_client.get("/api/admin/audit", headers=bearer(TOKEN_PREFIX + "wrong"))
    assert_invalid_token(response)
    # The session was left alone: without the header it still works.
    assert admin_client.get("/api/admin/audit").status_code == 200


def test_a_token_with_a_viewers_cookie_acts_as_the_token(
    viewer_client: FlaskClient, add_rows: Callable[..., Any], secret: str, data_dir: Path
) -> None:
    add_rows(1)
    response = viewer_client.get("/admin/audit/export.csv", headers=bearer(secret))
    assert response.status_code == 200
    assert_no_cookie(response)
    export = events(data_dir)[-1]
    assert export["user"] is None
    assert export["details"] is not None and export["details"]["token"] == "siem"


PAGES = [
    "/",
    "/admin/audit",
    "/admin/audit/chart.svg",
    "/admin/audit/event/evt-00000001",
    "/admin/accounts",
    "/admin/tokens",
    "/account/password",
    "/login",
]


@pytest.mark.parametrize("path", PAGES, ids=PAGES)
def test_a_valid_token_on_a_page_is_401(
    client: FlaskClient, add_rows: Callable[..., Any], secret: str, path: str
) -> None:
    add_rows(1)
    response = client.get(path, headers=bearer(secret))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == INVALID_CHALLENGE
    assert_no_cookie(response)


@pytest.mark.parametrize(
    "path", ["/admin/tokens", "/admin/tokens/siem/revoke", "/admin/accounts", "/logout"]
)
def test_no_post_accepts_a_token(
    client: FlaskClient, store: TokenStore, secret: str, path: str
) -> None:
    response = client.post(path, data={"name": "made-by-token"}, headers=bearer(secret))
    assert response.status_code == 401
    assert_no_cookie(response)
    assert [(t.name, t.state) for t in store.list()] == [("siem", "active")]


def test_basic_and_other_schemes_are_no_credentials(
    client: FlaskClient, db: object, secret: str
) -> None:
    for header in (f"Basic {secret}", f"Token {secret}", secret):
        api = client.get("/api/admin/audit", headers={"Authorization": header})
        assert (api.status_code, json_body(api)) == (401, {"error": "login required"})
        page = client.get("/admin/audit", headers={"Authorization": header})
        assert page.status_code == 302 and page.headers["Location"].startswith("/login")


def test_a_basic_header_leaves_a_session_working(admin_client: FlaskClient, db: object) -> None:
    response = admin_client.get("/api/admin/audit", headers={"Authorization": "Basic eDp5"})
    assert response.status_code == 200


# The Tokens page.


def test_an_admin_creates_a_token_and_sees_its_secret_once(
    app: Flask, admin_client: FlaskClient, data_dir: Path, db: object
) -> None:
    response = create_on_page(admin_client, "siem")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Copy it now" in page
    start = page.index('<code id="new-token">') + len('<code id="new-token">')
    secret = page[start : page.index("</code>", start)]
    assert secret.startswith(TOKEN_PREFIX)
    assert response.headers["Cache-Control"] == "no-store"
    # The list shows it, never its secret again.
    again = admin_client.get("/admin/tokens").get_data(as_text=True)
    assert 'data-name="siem"' in again and secret not in again and "never" in again
    # And it works.
    assert (
        admin_client.application.test_client()
        .get("/api/admin/audit", headers=bearer(secret))
        .status_code
        == 200
    )
    created = [e for e in events(data_dir) if e["action"] == "admin.token_create"]
    assert len(created) == 1
    assert created[0]["resource"] == "siem"
    assert created[0]["details"] == {"name": "siem"}
    assert created[0]["user"] is not None and created[0]["user"]["username"] == "admin"
    listed = TokenStore(state_of(app).accounts_db).get("siem")
    assert listed is not None and listed.created_by == "admin"


def test_the_page_refuses_a_bad_or_taken_name_and_records_nothing(
    admin_client: FlaskClient, store: TokenStore, data_dir: Path
) -> None:
    store.create("siem", created_by="admin")
    bad = create_on_page(admin_client, "no spaces")
    assert bad.status_code == 400 and "a token name is 1 to 64" in bad.get_data(as_text=True)
    taken = create_on_page(admin_client, "siem")
    assert taken.status_code == 400
    assert "already listed" in html.unescape(taken.get_data(as_text=True))
    assert "Copy it now" not in taken.get_data(as_text=True)
    assert [e["action"] for e in events(data_dir)] == ["user.login"]


def test_an_admin_revokes_a_token_and_it_is_refused(
    admin_client: FlaskClient, client: FlaskClient, db: object, secret: str, data_dir: Path
) -> None:
    response = revoke_on_page(admin_client, "siem")
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/tokens?revoked=siem"
    page = admin_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Token siem revoked." in page and "revoked 20" in page
    assert_invalid_token(client.get("/api/admin/audit", headers=bearer(secret)))
    revoked = [e for e in events(data_dir) if e["action"] == "admin.token_revoke"]
    assert [(e["resource"], e["details"], e["user"]) for e in revoked] == [
        ("siem", {"name": "siem"}, {"id": 1, "username": "admin", "email": "admin@example.com"})
    ]


def test_revoking_twice_or_an_unknown_token_changes_nothing(
    admin_client: FlaskClient, secret: str, data_dir: Path
) -> None:
    assert revoke_on_page(admin_client, "siem").status_code == 303
    again = revoke_on_page(admin_client, "siem")
    assert again.status_code == 409 and "already revoked" in again.get_data(as_text=True)
    assert revoke_on_page(admin_client, "nope").status_code == 404
    actions = [e["action"] for e in events(data_dir)]
    assert actions.count("admin.token_revoke") == 1


def test_revoking_needs_the_csrf_token(
    admin_client: FlaskClient, store: TokenStore, secret: str
) -> None:
    assert admin_client.post("/admin/tokens/siem/revoke").status_code == 400
    forged = admin_client.post("/admin/tokens/siem/revoke", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    assert store.verify(secret) is not None


def test_the_page_escapes_what_it_shows(admin_client: FlaskClient) -> None:
    page = admin_client.get("/admin/tokens?revoked=<script>x</script>").get_data(as_text=True)
    assert "<script>x" not in page and "&lt;script&gt;x" in page


def test_a_viewer_cannot_see_make_or_revoke_tokens(
    viewer_client: FlaskClient, store: TokenStore, secret: str
) -> None:
    assert viewer_client.get("/admin/tokens").status_code == 403
    token = csrf_from(viewer_client.get("/account/password").get_data(as_text=True))
    made = viewer_client.post("/admin/tokens", data={"csrf_token": token, "name": "mine"})
    assert made.status_code == 403
    revoked = viewer_client.post("/admin/tokens/siem/revoke", data={"csrf_token": token})
    assert revoked.status_code == 403
    assert [(t.name, t.state) for t in store.list()] == [("siem", "active")]


def test_the_token_events_are_in_the_catalogs_admin_area() -> None:
    assert {"admin.token_create", "admin.token_revoke"} <= set(AREAS["Admin actions"])


# A token change the audit log cannot take does not happen (on a real full or read-only disk).


class TestWhenTheLogCannotBeWritten:
    @pytest.fixture
    def data_dir(self, tmp_path: Path) -> Iterator[Path]:
        with small_log_disk(tmp_path) as path:
            yield path

    @pytest.fixture(params=sorted(fail_closed.FAULTS))
    def break_the_log(
        self, request: pytest.FixtureRequest, data_dir: Path
    ) -> Callable[[Flask], None]:
        fault = fail_closed.FAULTS[request.param]
        return lambda app: fault(app, data_dir / "logs")

    def test_no_token_is_made(
        self,
        app: Flask,
        admin_client: FlaskClient,
        data_dir: Path,
        break_the_log: Callable[[Flask], None],
    ) -> None:
        token = csrf_from(admin_client.get("/admin/tokens").get_data(as_text=True))
        break_the_log(app)
        response = admin_client.post("/admin/tokens", data={"csrf_token": token, "name": "siem"})
        assert response.status_code == 503
        page = html.unescape(response.get_data(as_text=True))
        assert "the token 'siem' was not created" in page and TOKEN_PREFIX not in page
        store = TokenStore(state_of(app).accounts_db)
        assert store.list() == []
        assert fail_closed.panel_events(data_dir) == ["user.login"]

        fail_closed.make_writable(data_dir / "logs")
        assert create_on_page(admin_client, "siem").status_code == 200
        assert [t.name for t in store.list()] == ["siem"]
        assert fail_closed.panel_events(data_dir) == ["user.login", "admin.token_create"]

    def test_no_token_is_revoked(
        self,
        app: Flask,
        admin_client: FlaskClient,
        data_dir: Path,
        break_the_log: Callable[[Flask], None],
    ) -> None:
        store = TokenStore(state_of(app).accounts_db)
        _, secret = store.create("siem", created_by="admin")
        token = csrf_from(admin_client.get("/admin/tokens").get_data(as_text=True))
        break_the_log(app)
        response = admin_client.post("/admin/tokens/siem/revoke", data={"csrf_token": token})
        assert response.status_code == 503
        assert "the token 'siem' was not revoked" in html.unescape(response.get_data(as_text=True))
        assert store.verify(secret) is not None
        assert fail_closed.panel_events(data_dir) == ["user.login"]

        fail_closed.make_writable(data_dir / "logs")
        assert revoke_on_page(admin_client, "siem").status_code == 303
        assert store.verify(secret) is None
        assert fail_closed.panel_events(data_dir) == ["user.login", "admin.token_revoke"]
