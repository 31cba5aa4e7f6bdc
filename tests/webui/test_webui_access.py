"""Who may see what: anonymous, a viewer and an admin on every route; CSRF; security headers."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from trek_audit.webui.entries import CSV_HEADER

from .webui_support import ADMIN, csrf_from, json_body, log_in, state_of

PAGES = [
    "/",
    "/admin/audit",
    "/admin/audit/export.csv",
    "/admin/audit/export.ndjson",
    "/admin/audit/chart.svg",
    "/admin/accounts",
    "/admin/tokens",
]


@pytest.mark.parametrize("path", PAGES, ids=PAGES)
def test_anonymous_browser_is_sent_to_login(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_anonymous_api_call_gets_401_json(client: FlaskClient) -> None:
    response = client.get("/api/admin/audit")
    assert response.status_code == 401
    assert json_body(response) == {"error": "login required"}


ADMIN_PAGES = ["/admin/accounts", "/admin/tokens"]
READER_PAGES = [p for p in PAGES if p not in ("/", *ADMIN_PAGES)]


@pytest.mark.parametrize("path", ADMIN_PAGES, ids=ADMIN_PAGES)
def test_viewer_gets_403_on_admin_pages(viewer_client: FlaskClient, path: str) -> None:
    assert viewer_client.get(path).status_code == 403


@pytest.mark.parametrize("path", READER_PAGES, ids=READER_PAGES)
def test_viewer_reads_the_audit_pages(viewer_client: FlaskClient, db: object, path: str) -> None:
    assert viewer_client.get(path).status_code == 200


def test_viewer_reads_the_api(viewer_client: FlaskClient, db: object) -> None:
    response = viewer_client.get("/api/admin/audit")
    assert response.status_code == 200
    assert json_body(response) == {"entries": [], "total": 0, "next": None}


def test_the_menu_shows_audit_to_everyone_and_accounts_and_tokens_to_admins(
    viewer_client: FlaskClient, admin_client: FlaskClient
) -> None:
    viewer_nav = viewer_client.get("/account/password").get_data(as_text=True)
    assert 'href="/admin/audit">Audit<' in viewer_nav
    assert "/admin/accounts" not in viewer_nav and "/admin/tokens" not in viewer_nav
    admin_nav = admin_client.get("/account/password").get_data(as_text=True)
    for link in ('href="/admin/audit">Audit<', 'href="/admin/accounts">', 'href="/admin/tokens">'):
        assert link in admin_nav


def test_viewer_may_change_own_password_page(viewer_client: FlaskClient) -> None:
    assert viewer_client.get("/account/password").status_code == 200


@pytest.mark.parametrize("path", PAGES, ids=PAGES)
def test_admin_reaches_every_page(admin_client: FlaskClient, db: object, path: str) -> None:
    response = admin_client.get(path)
    assert response.status_code == (302 if path == "/" else 200)


def test_admin_reaches_api(admin_client: FlaskClient, db: object) -> None:
    response = admin_client.get("/api/admin/audit")
    assert response.status_code == 200
    assert json_body(response) == {"entries": [], "total": 0, "next": None}


def test_pages_work_before_the_indexer_created_the_database(admin_client: FlaskClient) -> None:
    page = admin_client.get("/admin/audit").get_data(as_text=True)
    assert "no audit database yet" in page
    assert json_body(admin_client.get("/api/admin/audit"))["total"] == 0


def _empty_file(path: Path) -> None:
    path.write_bytes(b"")


def _database_without_tables(path: Path) -> None:
    # What a reader sees while the indexer's first migration is still in its transaction.
    sqlite3.connect(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()


@pytest.mark.parametrize(
    "prepare", [_empty_file, _database_without_tables], ids=["empty-file", "not-migrated-yet"]
)
def test_pages_work_while_the_indexer_is_creating_the_database(
    admin_client: FlaskClient, data_dir: Path, prepare: Callable[[Path], None]
) -> None:
    prepare(data_dir / "audit.db")
    page = admin_client.get("/admin/audit?q=trip&user=bob")
    assert page.status_code == 200
    assert "no audit database yet" in page.get_data(as_text=True)
    api = admin_client.get("/api/admin/audit?action=user.login")
    assert (api.status_code, json_body(api)) == (200, {"entries": [], "total": 0, "next": None})
    assert admin_client.get("/admin/audit/chart.svg").status_code == 200
    export = admin_client.get("/admin/audit/export.csv")
    assert export.status_code == 200
    assert export.get_data(as_text=True).splitlines() == [",".join(CSV_HEADER)]


def test_an_unreadable_database_gives_a_clear_503(
    admin_client: FlaskClient, data_dir: Path
) -> None:
    (data_dir / "audit.db").write_bytes(b"this is not an SQLite database " * 200)
    page = admin_client.get("/admin/audit")
    assert page.status_code == 503
    assert "audit database cannot be read" in page.get_data(as_text=True)
    api = admin_client.get("/api/admin/audit")
    assert api.status_code == 503
    assert "audit database cannot be read" in json_body(api)["error"]
    assert admin_client.get("/admin/audit/chart.svg").status_code == 503
    assert admin_client.get("/admin/audit/export.ndjson").status_code == 503


def test_login_without_csrf_token_is_400(client: FlaskClient) -> None:
    client.get("/login")
    response = client.post("/login", data={"username": ADMIN[0], "password": ADMIN[1]})
    assert response.status_code == 400


def test_login_with_wrong_csrf_token_is_403(client: FlaskClient) -> None:
    client.get("/login")
    response = client.post(
        "/login", data={"username": ADMIN[0], "password": ADMIN[1], "csrf_token": "forged"}
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    "path",
    ["/logout", "/account/password", "/admin/accounts", "/admin/tokens", "/admin/tokens/x/revoke"],
)
def test_state_changing_posts_need_the_csrf_token(admin_client: FlaskClient, path: str) -> None:
    assert admin_client.post(path, data={}).status_code == 400
    assert admin_client.post(path, data={"csrf_token": "nope"}).status_code == 403
    # Still logged in: the refused logout did nothing.
    assert admin_client.get("/admin/audit").status_code == 200


def test_logout_is_a_post_that_ends_the_session(admin_client: FlaskClient) -> None:
    token = csrf_from(admin_client.get("/admin/accounts").get_data(as_text=True))
    assert admin_client.get("/logout").status_code == 405
    assert admin_client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert admin_client.get("/admin/audit").status_code == 302


def test_a_copy_of_the_session_cookie_is_dead_after_logout(
    app: Flask, admin_client: FlaskClient
) -> None:
    """The cookie is signed, not stored: logout must still end it on the server side."""
    cookie = admin_client.get_cookie("trek_audit_session")
    assert cookie is not None
    token = csrf_from(admin_client.get("/admin/accounts").get_data(as_text=True))
    assert admin_client.post("/logout", data={"csrf_token": token}).status_code == 302
    thief = app.test_client()
    thief.set_cookie("trek_audit_session", cookie.value)
    assert thief.get("/admin/audit").status_code == 302
    assert thief.get("/api/admin/audit").status_code == 401


def test_login_renews_the_session_and_token(client: FlaskClient) -> None:
    before = csrf_from(client.get("/login").get_data(as_text=True))
    assert log_in(client, *ADMIN).status_code == 302
    after = csrf_from(client.get("/admin/accounts").get_data(as_text=True))
    assert after != before


def test_session_cookie_is_httponly_and_samesite_lax(client: FlaskClient) -> None:
    response = log_in(client, *ADMIN)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_session_cookie_is_secure_when_configured(environ: dict[str, str]) -> None:
    from trek_audit.webui import create_app

    app = create_app({**environ, "TREK_COOKIE_SECURE": "true"})
    try:
        state_of(app).accounts.create("root", "root-password", "admin")
        client = app.test_client()
        response = log_in(client, "root", "root-password")
        assert "; Secure" in response.headers["Set-Cookie"]
    finally:
        state_of(app).close()


def test_every_response_forbids_framing_and_inline_script(client: FlaskClient) -> None:
    for response in (client.get("/login"), client.get("/api/admin/audit"), client.get("/nope")):
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"]


def test_pages_have_no_inline_script(admin_client: FlaskClient, db: object) -> None:
    import re

    for path in ("/login", "/admin/audit", "/admin/accounts", "/admin/tokens", "/account/password"):
        html = admin_client.get(path).get_data(as_text=True)
        for tag in re.findall(r"<script[^>]*>", html):
            assert "src=" in tag, f"inline script on {path}"
        assert " on" + "click=" not in html and "javascript:" not in html


HOSTILE_NEXT = [
    "//evil.example/x",
    "https://evil.example/",
    "javascript:alert(1)",
    "/\\evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\nSet-Cookie: x=1",
    "/ /evil.example",
    "/\x00/evil.example",
]


@pytest.mark.parametrize("target", HOSTILE_NEXT, ids=[repr(t) for t in HOSTILE_NEXT])
def test_login_redirect_never_leaves_the_site(client: FlaskClient, target: str) -> None:
    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login",
        data={"username": ADMIN[0], "password": ADMIN[1], "csrf_token": token, "next": target},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/audit"
    # Signed in already, GET /login follows ``next`` too.
    again = client.get("/login", query_string={"next": target})
    assert again.status_code == 302
    assert again.headers["Location"] == "/admin/audit"


def test_login_returns_to_the_page_asked_for(client: FlaskClient) -> None:
    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login",
        data={
            "username": ADMIN[0],
            "password": ADMIN[1],
            "csrf_token": token,
            "next": "/admin/audit?action=user.login",
        },
    )
    assert response.headers["Location"] == "/admin/audit?action=user.login"


def test_anonymous_is_sent_to_login_from_the_password_page(client: FlaskClient) -> None:
    response = client.get("/account/password")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


@pytest.mark.parametrize("who", ["anonymous", "viewer"])
def test_only_an_admin_can_create_accounts(
    app: Flask, client: FlaskClient, viewer_client: FlaskClient, who: str
) -> None:
    browser = client if who == "anonymous" else viewer_client
    # A valid token of the browser's own session: only the access rule stands in the way.
    form = "/login" if who == "anonymous" else "/account/password"
    token = csrf_from(browser.get(form).get_data(as_text=True))
    response = browser.post(
        "/admin/accounts",
        data={
            "csrf_token": token,
            "username": "intruder",
            "password": "intruder-password",
            "confirm_password": "intruder-password",
            "role": "admin",
        },
    )
    assert response.status_code == (302 if who == "anonymous" else 403)
    assert state_of(app).accounts.by_username("intruder") is None
