"""The Tokens page: API tokens listed, made (the secret shown once) and revoked; admins only."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from .account_change import account_change
from .security import current_account, require_admin
from .state import current_state, record_or_refuse
from .tokens import ApiToken, TokenError, TokenStore

__all__ = ["tokens_page"]

tokens_page = Blueprint("tokens_page", __name__)
tokens_page.before_request(require_admin)


@tokens_page.route("/admin/tokens", methods=["GET", "POST"])
def tokens() -> tuple[str, int]:
    """List the tokens; a POST makes one, records ``admin.token_create`` and shows its secret."""
    error = created = secret = None
    status = 200
    if request.method == "POST":
        try:
            created, secret = _create(request.form.get("name", "").strip())
        except TokenError as problem:
            error, status = str(problem), 400
    return _page(error=error, created=created, secret=secret), status


@tokens_page.post("/admin/tokens/<name>/revoke")
def revoke(name: str) -> BaseResponse | tuple[str, int]:
    """Revoke a token, recording ``admin.token_revoke`` first; back to the list."""
    state = current_state()
    if TokenStore(state.accounts_db).get(name) is None:
        abort(404, description=f"no token named {name!r}")
    try:
        # Committed only once the event is recorded: a 503 leaves the token working.
        with account_change(state.accounts_db) as accounts:
            TokenStore(accounts.db).revoke(name)
            record_or_refuse(
                "admin.token_revoke",
                f"the token {name!r} was not revoked",
                account=current_account(),
                resource=name,
                details={"name": name},
            )
    except TokenError as problem:
        return _page(error=str(problem)), 409
    # See Other: a reload of the list does not post the revocation again.
    return redirect(url_for("tokens_page.tokens", revoked=name), code=303)


def _create(name: str) -> tuple[ApiToken, str]:
    # Committed only once the event is recorded: a 503 leaves no token made.
    with account_change(current_state().accounts_db) as accounts:
        account = current_account()
        assert account is not None  # require_admin let the request in
        token, secret = TokenStore(accounts.db).create(name, created_by=account.username)
        record_or_refuse(
            "admin.token_create",
            f"the token {name!r} was not created",
            account=account,
            resource=token.name,
            details={"name": token.name},
        )
    return token, secret


def _page(
    *, error: str | None = None, created: ApiToken | None = None, secret: str | None = None
) -> str:
    return render_template(
        "tokens.html",
        tokens=TokenStore(current_state().accounts_db).list(),
        error=error,
        created=created,
        secret=secret,
        revoked=request.args.get("revoked") if request.method == "GET" else None,
    )
