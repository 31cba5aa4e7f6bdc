"""Sessions, CSRF tokens, access rules and the headers every response carries.

Two roles sign in: an admin (everything) and a viewer (reads the audit log: the Audit page,
event pages, the API and the exports; not the accounts or tokens pages). An API token reads
what a viewer reads through ``TOKEN_ENDPOINTS`` only, and never starts or changes a session.
"""

from __future__ import annotations

import hmac
import secrets
import time

from flask import Response, abort, current_app, g, jsonify, redirect, request, session, url_for
from werkzeug.wrappers import Response as BaseResponse

from .accounts import Account
from .state import current_state
from .tokens import ApiToken, TokenStore

__all__ = [
    "CSP",
    "TOKEN_ENDPOINTS",
    "actor_details",
    "check_csrf",
    "csrf_token",
    "current_account",
    "current_token",
    "end_session",
    "load_account",
    "require_admin",
    "require_login",
    "require_reader",
    "require_reader_or_token",
    "secure_headers",
    "start_session",
    "wants_json",
]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_UNSAFE_METHODS = frozenset(("POST", "PUT", "PATCH", "DELETE"))

# The endpoints an API token reaches: reads a script needs (entries, facets, one event,
# exports). Every one is a GET; no endpoint that changes anything is here.
TOKEN_ENDPOINTS = frozenset(
    {"api.audit_entries", "api.audit_facets", "audit.export", "events.event_json"}
)
_BEARER = "bearer"
# Endpoints that read a Bearer header of their own (TREK_METRICS_TOKEN), or need no login.
_OWN_BEARER = frozenset({"health.metrics", "health.healthz", "static"})


def csrf_token() -> str:
    """The session's CSRF token, created on first use."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def check_csrf() -> None:
    """Refuse a state-changing request without the session's token: 400 absent, 403 wrong."""
    if request.method not in _UNSAFE_METHODS:
        return
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token")
    if not sent:
        abort(400, description="missing CSRF token: reload the page and try again")
    expected = session.get("csrf")
    if not isinstance(expected, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(403, description="wrong CSRF token: reload the page and try again")


def start_session(account: Account) -> None:
    """Replace whatever session there was with a new one for ``account`` (and a new CSRF token)."""
    session.clear()
    session.permanent = True
    session["uid"] = account.id
    session["ver"] = account.session_version
    # The cookie is signed, not stored; this id lets logout end it on the server side.
    session["sid"] = secrets.token_urlsafe(24)
    session["csrf"] = secrets.token_urlsafe(32)


def end_session() -> None:
    """Log out: clear the cookie, and refuse any copy of it until it would have expired."""
    sid = session.get("sid")
    if isinstance(sid, str):
        lifetime = current_app.permanent_session_lifetime.total_seconds()
        current_state().ended_sessions.end(sid, time.time() + lifetime)
    session.clear()


def load_account() -> BaseResponse | None:
    """Find the signed-in account; a session signed before a password change is dropped.

    A request with a Bearer token is the token's alone: its cookie is neither read nor
    cleared, so that no Set-Cookie ever answers a token; and it is refused (401) on every
    endpoint but TOKEN_ENDPOINTS (and those with a Bearer of their own, /metrics), before
    any page, form or CSRF check sees it.
    """
    g.account = None
    if _bearer() is not None:
        # No endpoint: the URL matched no route, and its 404 (or 405) says more than a 401.
        if request.endpoint is None or request.endpoint in TOKEN_ENDPOINTS | _OWN_BEARER:
            return None
        return _deny_token("API tokens are accepted by the API and the exports only")
    uid, version, sid = session.get("uid"), session.get("ver"), session.get("sid")
    if uid is None:
        return None
    state = current_state()
    account = state.accounts.get(uid)
    if (
        account is None
        or account.session_version != version
        or not isinstance(sid, str)
        or state.ended_sessions.has_ended(sid)
    ):
        session.clear()
        return None
    g.account = account
    return None


def current_account() -> Account | None:
    return g.get("account")


def current_token() -> ApiToken | None:
    """The API token the request came with, once ``require_reader_or_token`` accepted it."""
    return g.get("api_token")


def actor_details() -> dict[str, str]:
    """``{"token": name}`` when the request came with a token, else ``{}``: for event details."""
    token = current_token()
    return {"token": token.name} if token is not None else {}


def _bearer() -> str | None:
    """The credentials of an ``Authorization: Bearer`` header ("" when empty), None without one.

    Other schemes (Basic...) are no credentials of this panel: ignored, as before tokens.
    """
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() != _BEARER:
        return None
    return credentials.strip()


def wants_json() -> bool:
    return request.path.startswith("/api/")


def _deny_anonymous() -> BaseResponse:
    if wants_json():
        response = jsonify(error="login required")
        response.status_code = 401
        return response
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def require_login() -> BaseResponse | None:
    """Blueprint guard: any signed-in account."""
    if current_account() is None:
        return _deny_anonymous()
    return None


def require_reader() -> BaseResponse | None:
    """Blueprint guard: any signed-in account, admin or viewer."""
    return require_login()


def require_reader_or_token() -> BaseResponse | None:
    """Blueprint guard: a signed-in account, or a valid Bearer token on a TOKEN_ENDPOINTS one.

    A Bearer header decides alone, whatever cookie comes with it: a wrong, revoked or
    malformed token, or a token on any other endpoint, is a 401.
    """
    secret = _bearer()
    if secret is None:
        return require_reader()
    if request.endpoint not in TOKEN_ENDPOINTS:
        return _deny_token("API tokens are accepted by the API and the exports only")
    token = TokenStore(current_state().accounts_db).verify(secret)
    if token is None:
        return _deny_token("invalid or revoked token")
    g.api_token = token
    return None


def _deny_token(message: str) -> BaseResponse:
    response = jsonify(error=message)
    response.status_code = 401
    response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return response


def require_admin() -> BaseResponse | None:
    """Blueprint guard: anonymous gets a redirect (pages) or 401 (API); a non-admin gets 403."""
    account = current_account()
    if account is None:
        return _deny_anonymous()
    if not account.is_admin:
        abort(403, description="this page needs an admin account")
    return None


def secure_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if request.endpoint != "static":
        headers.setdefault("Cache-Control", "no-store")
    return response
