"""Signing in and out, and changing one's own password."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from .accounts import AccountError
from .security import current_account, end_session, require_login, start_session
from .state import client_address, current_state, record_event

__all__ = ["auth"]

auth = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never an absolute or scheme-relative URL (no open redirect).

    Browsers drop tabs and newlines from a URL, so ``/<TAB>/evil.example`` would become
    ``//evil.example``; and a newline cannot go into a header. A path we built ourselves is
    percent-encoded, so any control character or space means it is not one of ours.
    """
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and not any(ord(char) <= 0x20 or ord(char) == 0x7F for char in target)
    ):
        return target
    return url_for("audit.audit_page")


@auth.get("/login")
def login() -> str | BaseResponse:
    if current_account() is not None:
        return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", next=request.args.get("next", ""), error=None)


@auth.post("/login")
def login_submit() -> tuple[str, int, dict[str, str]] | tuple[str, int] | BaseResponse:
    username = request.form.get("username", "").strip()[:200]
    password = request.form.get("password", "")
    next_url = request.form.get("next", "")
    state = current_state()
    wait = state.throttle.begin_attempt(username, client_address())
    if wait is not None:
        record_event("user.login_failed", details={"username": username, "reason": "throttled"})
        page = render_template(
            "login.html",
            next=next_url,
            username=username,
            error=f"Too many failed logins. Try again in {wait} seconds.",
        )
        return page, 429, {"Retry-After": str(wait)}
    account = state.accounts.verify(username, password)
    if account is None:
        record_event(
            "user.login_failed",
            details={"username": username, "reason": "wrong username or password"},
        )
        page = render_template(
            "login.html", next=next_url, username=username, error="Wrong username or password."
        )
        return page, 401
    state.throttle.clear_failures(username)
    start_session(account)
    record_event("user.login", account=account)
    return redirect(_safe_next(next_url))


@auth.post("/logout")
def logout() -> BaseResponse:
    end_session()
    return redirect(url_for("auth.login"))


@auth.route("/account/password", methods=["GET", "POST"])
def password() -> str | tuple[str, int] | tuple[str, int, dict[str, str]] | BaseResponse:
    """Any signed-in account may change its own password (the one page a viewer can use)."""
    denied = require_login()
    if denied is not None:
        return denied
    account = current_account()
    assert account is not None
    if request.method == "GET":
        return render_template("password.html", error=None, done=request.args.get("done"))
    current = request.form.get("current_password", "")
    new = request.form.get("new_password", "")
    state = current_state()
    # Throttled like a login: a borrowed session must not allow guessing without limit.
    wait = state.throttle.begin_attempt(account.username, client_address())
    if wait is not None:
        page = render_template(
            "password.html",
            error=f"Too many wrong passwords. Try again in {wait} seconds.",
            done=None,
        )
        return page, 429, {"Retry-After": str(wait)}
    if state.accounts.verify(account.username, current) is None:
        return render_template(
            "password.html", error="The current password is wrong.", done=None
        ), 400
    state.throttle.clear_failures(account.username)
    if new != request.form.get("confirm_password", ""):
        return render_template("password.html", error="The new passwords differ.", done=None), 400
    try:
        account = state.accounts.set_password(account.username, new)
    except AccountError as error:
        return render_template("password.html", error=str(error), done=None), 400
    start_session(account)  # other sessions of this account end with the old version
    record_event("user.password_change", account=account)
    return redirect(url_for("auth.password", done=1))
