"""``trek-audit serve``, ``trek-audit admin create|set-password`` and ``trek-audit token``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from trek_audit.options import data_dir_option, load_settings
from trek_audit.settings import Settings

from .account_change import account_change
from .accounts import ROLES, AccountError
from .accounts_db import AccountsDB
from .tokens import TokenError, TokenStore

__all__ = ["admin", "serve", "token"]


@click.command("serve")
@data_dir_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=5000, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="gunicorn worker processes (default: 2 per CPU, 2 to 4).",
)
def serve(data_dir: Path | None, host: str, port: int, workers: int | None) -> None:
    """Serve the admin panel on gunicorn, with the indexer for the data directory.

    Starts the indexer (unless one already runs on the data directory) and restarts it if
    it stops, creates the `admin` account on first start (password from
    TREK_ADMIN_PASSWORD, or random and printed once, last), then serves until Ctrl-C or
    SIGTERM, which stop both cleanly (exit status 0). A port in use ends it at once
    (exit status 1).

    \b
    Examples:
        trek-audit serve
        trek-audit serve --host 0.0.0.0 --port 8080 --workers 4
        TREK_DATA_DIR=/srv/trek/data TREK_COOKIE_SECURE=1 trek-audit serve
    """
    from trek_audit.writer import AuditWriteError

    from .secret_key import SecretKeyError
    from .serve import CannotListen, default_workers
    from .serve import serve as run

    settings = load_settings(data_dir=data_dir)
    try:
        status = run(
            settings, host, port, workers or default_workers(), click.echo, _echo_to_stderr
        )
    except (SecretKeyError, CannotListen) as error:
        raise click.ClickException(str(error)) from None
    except AuditWriteError as error:
        raise click.ClickException(
            f"the audit log cannot be written, so the first admin account was not created: {error}"
        ) from None
    if status:
        sys.exit(status)


def _echo_to_stderr(message: str) -> None:
    click.echo(message, err=True)


@click.group("admin")
def admin() -> None:
    """Manage panel accounts (stored in <data>/accounts.db).

    \b
    Examples:
        trek-audit admin create alice --role viewer
        echo 'a long password' | trek-audit admin set-password alice --password-stdin
    """


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise click.ClickException("no password on standard input")
        return line
    password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@admin.command("create")
@data_dir_option
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), default="admin", show_default=True)
@click.option("--email", default=None, help="Email shown with the account's events.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create(
    data_dir: Path | None, name: str, role: str, email: str | None, password_stdin: bool
) -> None:
    """Create an account; the password is prompted for (hidden, twice) or read from stdin.

    \b
    Examples:
        trek-audit admin create alice
        printf '%s\\n' "$PW" | trek-audit admin create bob --role viewer --password-stdin
    """
    settings = load_settings(data_dir=data_dir)
    password = _read_password(password_stdin)
    try:
        with AccountsDB(settings.data.accounts_db) as db, account_change(db) as accounts:
            account = accounts.create(name, password, role, email)
            _record_or_refuse(
                settings,
                "admin.user_create",
                f"the account {name!r} was not created",
                resource=account.username,
                details=account.creation_details(via="cli"),
            )
    except AccountError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"created {role} account {name!r}")


@admin.command("set-password")
@data_dir_option
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def set_password(data_dir: Path | None, name: str, password_stdin: bool) -> None:
    """Set an account's password; its open sessions end.

    \b
    Examples:
        trek-audit admin set-password admin
        printf '%s\\n' "$PW" | trek-audit admin set-password admin --password-stdin
    """
    settings = load_settings(data_dir=data_dir)
    password = _read_password(password_stdin)
    try:
        with AccountsDB(settings.data.accounts_db) as db, account_change(db) as accounts:
            account = accounts.set_password(name, password)
            _record_or_refuse(
                settings,
                "user.password_change",
                f"the password of {name!r} was not changed",
                resource=account.username,
                details={"username": account.username, "via": "cli"},
            )
    except AccountError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"password of {name!r} changed")


@click.group("token")
def token() -> None:
    """Manage the panel's read-only API tokens (stored in <data>/accounts.db).

    A token reads the JSON API and the exports, sent as ``Authorization: Bearer <token>``.

    \b
    Examples:
        trek-audit token create siem-export
        trek-audit token list --json
        trek-audit token revoke siem-export
    """


@token.command("create")
@data_dir_option
@click.argument("name")
def token_create(data_dir: Path | None, name: str) -> None:
    """Create a token named NAME and print its secret, once, on the last line.

    Only a hash of the secret is kept: copy it now.

    \b
    Examples:
        trek-audit token create siem-export
        SECRET=$(trek-audit token create nightly-backup | tail -n 1)
    """
    settings = load_settings(data_dir=data_dir)
    try:
        with AccountsDB(settings.data.accounts_db) as db, account_change(db) as accounts:
            created, secret = TokenStore(accounts.db).create(name, created_by=_CLI)
            _record_or_refuse(
                settings,
                "admin.token_create",
                f"the token {name!r} was not created",
                resource=created.name,
                details={"name": created.name, "via": _CLI},
            )
    except TokenError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"created token {name!r}; copy it now, it is not shown again:", err=True)
    click.echo(secret)


@token.command("revoke")
@data_dir_option
@click.argument("name")
def token_revoke(data_dir: Path | None, name: str) -> None:
    """Revoke the token named NAME: refused from now on, it stays listed.

    \b
    Example:
        trek-audit token revoke siem-export
    """
    settings = load_settings(data_dir=data_dir)
    try:
        with AccountsDB(settings.data.accounts_db) as db, account_change(db) as accounts:
            TokenStore(accounts.db).revoke(name)
            _record_or_refuse(
                settings,
                "admin.token_revoke",
                f"the token {name!r} was not revoked",
                resource=name,
                details={"name": name, "via": _CLI},
            )
    except TokenError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"revoked token {name!r}")


@token.command("list")
@data_dir_option
@click.option("--json", "as_json", is_flag=True, help="One JSON array of objects instead.")
def token_list(data_dir: Path | None, as_json: bool) -> None:
    """List every token (revoked ones too) with when and by whom it was made and last used.

    \b
    Examples:
        trek-audit token list
        trek-audit token list --json | jq -r '.[] | select(.revoked == null) | .name'
    """
    settings = load_settings(data_dir=data_dir)
    with AccountsDB(settings.data.accounts_db) as db:
        tokens = TokenStore(db).list()
    if as_json:
        click.echo(json.dumps([item.as_dict() for item in tokens], indent=2))
        return
    header = ("NAME", "CREATED", "BY", "LAST USED", "STATE")
    rows = [
        (
            item.name,
            item.created,
            item.created_by,
            item.last_used or "never",
            f"revoked {item.revoked}" if item.revoked else "active",
        )
        for item in tokens
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


# What the CLI's token events and tokens name as their maker: whoever can run the command on
# the data directory (the panel names the signed-in admin instead).
_CLI = "cli"


def _record_or_refuse(
    settings: Settings, action: str, refused: str, *, resource: str, details: dict[str, Any]
) -> None:
    """Append the command's event, or end it (exit 1) saying what was refused.

    Called inside the change's ``account_change`` block: the raise rolls the change back, as
    the panel does for the same actions.
    """
    from trek_audit.writer import AuditWriteError, AuditWriter

    try:
        with AuditWriter.from_settings(settings) as writer:
            writer.record(action, resource=resource, details=details)
    except AuditWriteError as error:
        raise click.ClickException(
            f"the audit log cannot be written, so {refused}: {error}. Nothing was changed; "
            "free space or fix the log directory's permissions, then try again."
        ) from None
