"""Sessions, CSRF tokens, access rules and the headers every response carries."""

from __future__ import annotations

import hmac
import secrets
import time

from flask import Response, abort, current_app, g, jsonify, redirect, request, session, url_for
from werkzeug.wrappers import Response as BaseResponse

from .accounts import Account
from .state import current_state

__all__ = [
    "CSP",
    "check_csrf",
    "csrf_token",
    "current_account",
    "end_session",
    "load_account",
    "require_admin",
    "require_login",
    "secure_headers",
    "start_session",
    "wants_json",
]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_UNSAFE_METHODS = frozenset(("POST", "PUT", "PATCH", "DELETE"))


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


def load_account() -> None:
    """Find the signed-in account; a session signed before a password change is dropped."""
    g.account = None
    uid, version, sid = session.get("uid"), session.get("ver"), session.get("sid")
    if uid is None:
        return
    state = current_state()
    account = state.accounts.get(uid)
    if (
        account is None
        or account.session_version != version
        or not isinstance(sid, str)
        or state.ended_sessions.has_ended(sid)
    ):
        session.clear()
        return
    g.account = account


def current_account() -> Account | None:
    return g.get("account")


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
