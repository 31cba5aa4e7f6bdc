"""The Accounts page: every account, and a form to create one; admins only."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from .account_change import account_change
from .accounts import ROLES, AccountError
from .security import current_account, require_admin
from .state import current_state, record_or_refuse

__all__ = ["accounts_page"]

accounts_page = Blueprint("accounts_page", __name__)
accounts_page.before_request(require_admin)


@accounts_page.route("/admin/accounts", methods=["GET", "POST"])
def accounts() -> tuple[str, int]:
    """List the accounts; a POST creates one and records ``admin.user_create``."""
    state = current_state()
    error = created = None
    status = 200
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        role = request.form.get("role", "viewer")
        password = request.form.get("password", "")
        try:
            if password != request.form.get("confirm_password", ""):
                raise AccountError("the passwords differ")
            # Committed only once the event is recorded; a 503 from record_or_refuse rolls
            # the new account back.
            with account_change(state.accounts_db) as accounts:
                account = accounts.create(
                    username, password, role, request.form.get("email", "").strip() or None
                )
                record_or_refuse(
                    "admin.user_create",
                    f"the account {account.username!r} was not created",
                    account=current_account(),
                    resource=account.username,
                    details=account.creation_details(),
                )
        except AccountError as problem:
            error, status = str(problem), 400
        else:
            created = account.username
    page = render_template(
        "accounts.html", accounts=state.accounts.all(), roles=ROLES, error=error, created=created
    )
    return page, status
