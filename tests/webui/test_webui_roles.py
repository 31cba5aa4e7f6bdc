"""Who reaches which route: every route of the app, for anonymous, a viewer, an admin, a token.

The routes come from the app's own URL map, so a route added without a line in ``EXPECTED``
fails ``test_every_route_has_an_expectation``: each new route says who may use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from trek_audit.webui.security import TOKEN_ENDPOINTS
from trek_audit.webui.tokens import TokenStore

from .webui_support import ADMIN, VIEWER, csrf_from, log_in, state_of

ROLES = ("anonymous", "viewer", "admin", "token")


class Expected(NamedTuple):
    """The status each role gets (anonymous: 302 to the login page on pages, 401 on JSON)."""

    anonymous: int
    viewer: int
    admin: int
    token: int


# (endpoint, method) -> statuses. POSTs carry the browser's CSRF token and an empty form: the
# access rule is all that stands in the way, and an empty form changes nothing (400/404).
EXPECTED: dict[tuple[str, str], Expected] = {
    ("static", "GET"): Expected(200, 200, 200, 200),
    ("health.healthz", "GET"): Expected(200, 200, 200, 200),
    ("health.metrics", "GET"): Expected(401, 401, 200, 401),
    ("auth.login", "GET"): Expected(200, 302, 302, 401),
    ("auth.login_submit", "POST"): Expected(401, 401, 401, 401),
    ("auth.logout", "POST"): Expected(302, 302, 302, 401),
    ("auth.password", "GET"): Expected(302, 200, 200, 401),
    ("auth.password", "POST"): Expected(302, 400, 400, 401),
    ("audit.index", "GET"): Expected(302, 302, 302, 401),
    ("audit.audit_page", "GET"): Expected(302, 200, 200, 401),
    ("audit.chart", "GET"): Expected(302, 200, 200, 401),
    ("audit.export", "GET"): Expected(302, 200, 200, 200),
    ("events.event_page", "GET"): Expected(302, 200, 200, 401),
    ("events.event_json", "GET"): Expected(401, 200, 200, 200),
    ("api.audit_entries", "GET"): Expected(401, 200, 200, 200),
    ("api.audit_facets", "GET"): Expected(401, 200, 200, 200),
    ("accounts_page.accounts", "GET"): Expected(302, 403, 200, 401),
    ("accounts_page.accounts", "POST"): Expected(302, 403, 400, 401),
    ("tokens_page.tokens", "GET"): Expected(302, 403, 200, 401),
    ("tokens_page.tokens", "POST"): Expected(302, 403, 400, 401),
    ("tokens_page.revoke", "POST"): Expected(302, 403, 404, 401),
}

# The values of the routes' variables: an event that exists, a token that does not.
ROUTE_VALUES = {
    "filename": "panel.css",
    "fmt": "csv",
    "event_id": "evt-00000001",
    "name": "no-such-token",
}


@pytest.fixture
def environ(environ: dict[str, str]) -> dict[str, str]:
    """As in a deployment running ``index --once`` from cron: /healthz is 200 without an indexer."""
    return {**environ, "TREK_FOLLOWER_EXPECTED": "false"}


def routes(app: Flask) -> set[tuple[str, str]]:
    """Every (endpoint, method) the app answers, HEAD and OPTIONS aside (Flask adds them)."""
    return {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }


def test_every_route_has_an_expectation(app: Flask) -> None:
    assert sorted(routes(app) - set(EXPECTED)) == [], "routes without a line in EXPECTED"
    assert sorted(set(EXPECTED) - routes(app)) == [], "lines in EXPECTED without a route"


def test_tokens_reach_exactly_the_token_endpoints() -> None:
    reached = {endpoint for (endpoint, _), expected in EXPECTED.items() if expected.token == 200}
    assert reached - {"static", "health.healthz"} == TOKEN_ENDPOINTS


def test_no_post_accepts_a_token() -> None:
    assert [
        key for key, expected in EXPECTED.items() if key[1] == "POST" and expected.token < 400
    ] == []


def _signed_in(app: Flask, account: tuple[str, str]) -> FlaskClient:
    client = app.test_client()
    assert log_in(client, *account).status_code == 302
    return client


def _request(
    client: FlaskClient, method: str, url: str, csrf_page: str | None, **kwargs: Any
) -> TestResponse:
    data = {}
    if method == "POST" and csrf_page is not None:
        data["csrf_token"] = csrf_from(client.get(csrf_page).get_data(as_text=True))
    response = client.open(url, method=method, data=data, **kwargs)
    response.close()  # a file (static) or a stream (export) left open is a ResourceWarning
    return response


@pytest.mark.parametrize(
    ("endpoint", "method"), sorted(EXPECTED), ids=[f"{m} {e}" for e, m in sorted(EXPECTED)]
)
def test_each_role_gets_its_status(
    app: Flask, add_rows: Callable[..., Any], endpoint: str, method: str
) -> None:
    add_rows(3)
    _, secret = TokenStore(state_of(app).accounts_db).create("roles", created_by="admin")
    with app.test_request_context():
        rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
        values: dict[str, Any] = {name: ROUTE_VALUES[name] for name in rule.arguments}
        url = url_for(endpoint, **values)
    got: dict[str, int] = {}
    got["anonymous"] = _request(app.test_client(), method, url, "/login").status_code
    got["viewer"] = _request(_signed_in(app, VIEWER), method, url, "/account/password").status_code
    got["admin"] = _request(_signed_in(app, ADMIN), method, url, "/account/password").status_code
    as_token = _request(
        app.test_client(), method, url, None, headers={"Authorization": f"Bearer {secret}"}
    )
    got["token"] = as_token.status_code
    assert got == EXPECTED[endpoint, method]._asdict()
    # A token never gets a session, whatever the answer.
    assert "Set-Cookie" not in as_token.headers
