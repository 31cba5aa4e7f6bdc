"""Signing in and out, and changing one's own password."""

from __future__ import annotations

import logging

from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from trek_audit.writer import AuditWriteError

from .account_change import account_change
from .accounts import AccountError
from .security import current_account, end_session, require_login, start_session
from .state import client_address, current_state, record_event, record_or_refuse
from .throttle import Refusals

__all__ = ["auth"]

log = logging.getLogger(__name__)

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


def _record_refusals(refusals: Refusals) -> bool:
    """Append one address's refused attempts as one event whose ip is that address.

    False (and a log line) when the log cannot take it: the refusals are reported later.
    """
    try:
        current_state().writer.record(
            "user.login_throttled", ip=refusals.address, details=refusals.details()
        )
    except (AuditWriteError, ValueError) as error:
        log.error("could not record user.login_throttled: %s", error)
        return False
    return True


def _report_refusals() -> None:
    """Report the throttle's refusals that are due, whoever asks: no timer runs in a worker."""
    current_state().throttle.report_refusals(_record_refusals)


@auth.get("/login")
def login() -> str | BaseResponse:
    _report_refusals()
    if current_account() is not None:
        return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", next=request.args.get("next", ""), error=None)


@auth.post("/login")
def login_submit() -> tuple[str, int, dict[str, str]] | tuple[str, int] | BaseResponse:
    username = request.form.get("username", "").strip()[:200]
    password = request.form.get("password", "")
    next_url = request.form.get("next", "")
    state = current_state()
    address = client_address()
    wait = state.throttle.begin_attempt(username, address)
    # A refused attempt writes no event of its own: the refusals of each address are reported
    # in aggregate, so hammering the form cannot flood the audit log.
    _report_refusals()
    if wait is not None:
        page = render_template(
            "login.html",
            next=next_url,
            username=username,
            error=f"Too many failed logins. Try again in {wait} seconds.",
        )
        return page, 429, {"Retry-After": str(wait)}
    account = state.accounts.verify(username, password)
    if account is None:
        # Nothing happens on a failed login, so one the log cannot take still answers 401:
        # a 503 here would tell a guesser that the audit log is down.
        record_event(
            "user.login_failed",
            details={"username": username, "reason": "wrong username or password"},
        )
        page = render_template(
            "login.html", next=next_url, username=username, error="Wrong username or password."
        )
        return page, 401
    # Recorded before the session starts: a login the audit log cannot take gets no session
    # (503), and stays counted as a failed attempt for the throttle.
    record_or_refuse("user.login", "you were not logged in", account=account)
    state.throttle.clear_failures(username, address)
    start_session(account)
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
    address = client_address()
    wait = state.throttle.begin_attempt(account.username, address)
    _report_refusals()
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
    state.throttle.clear_failures(account.username, address)
    if new != request.form.get("confirm_password", ""):
        return render_template("password.html", error="The new passwords differ.", done=None), 400
    try:
        # Committed only once the event is recorded; a 503 from record_or_refuse rolls it back.
        with account_change(state.accounts_db) as accounts:
            account = accounts.set_password(account.username, new)
            record_or_refuse(
                "user.password_change", "your password was not changed", account=account
            )
    except AccountError as error:
        return render_template("password.html", error=str(error), done=None), 400
    start_session(account)  # other sessions of this account end with the old version
    return redirect(url_for("auth.password", done=1))
