"""Panel accounts: create one, check a password, change it, look accounts up."""

from __future__ import annotations

import functools
import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

from werkzeug.security import check_password_hash, generate_password_hash

from .accounts_db import AccountsDB

__all__ = ["MIN_PASSWORD_LENGTH", "NAME_PATTERN", "ROLES", "Account", "AccountError", "Accounts"]


@functools.cache
def _dummy_hash() -> str:
    """The hash an unknown username is checked against, so a miss costs what a wrong password
    does; made on first use, not at import (scrypt is slow on purpose)."""
    return generate_password_hash("not a password of anyone", method="scrypt")


ROLES = ("admin", "viewer")
MIN_PASSWORD_LENGTH = 8
# A username, and an API token's name: safe in a URL path and in a log line.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_COLUMNS = "id, username, email, role, session_version, created"


class AccountError(ValueError):
    """An account operation that cannot be done, with a message for the person asking."""


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    email: str | None
    role: str
    session_version: int
    created: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def as_user(self) -> dict[str, object]:
        """The writer's user object for events this account causes."""
        return {"id": self.id, "username": self.username, "email": self.email}

    def creation_details(self, via: str | None = None) -> dict[str, object]:
        """The details of the ``admin.user_create`` event that created this account."""
        details: dict[str, object] = {"username": self.username, "role": self.role, "id": self.id}
        if via is not None:
            details["via"] = via
        return details


class Accounts:
    """The accounts table of accounts.db."""

    def __init__(self, db: AccountsDB) -> None:
        self.db = db

    def create(
        self, username: str, password: str, role: str = "admin", email: str | None = None
    ) -> Account:
        if NAME_PATTERN.fullmatch(username) is None:
            raise AccountError(
                "a username is 1 to 64 letters, digits or . _ @ - and starts with a letter or digit"
            )
        if role not in ROLES:
            raise AccountError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        _check_password(password)
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        try:
            with self.db.connect() as conn:
                conn.execute(
                    "INSERT INTO accounts (username, email, password_hash, role, created) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (
                        username,
                        email or None,
                        generate_password_hash(password, method="scrypt"),
                        role,
                        created,
                    ),
                )
        except sqlite3.IntegrityError:
            raise AccountError(f"an account named {username!r} already exists") from None
        account = self.by_username(username)
        assert account is not None
        return account

    def set_password(self, username: str, password: str) -> Account:
        """Change the password; every session of the account signed before this ends."""
        _check_password(password)
        with self.db.connect() as conn:
            changed = conn.execute(
                "UPDATE accounts SET password_hash = ?, session_version = session_version + 1 "
                "WHERE username = ?",
                (generate_password_hash(password, method="scrypt"), username),
            ).rowcount
        if not changed:
            raise AccountError(f"no account named {username!r}")
        account = self.by_username(username)
        assert account is not None
        return account

    def get(self, account_id: int) -> Account | None:
        return self._one("id = ?", account_id)

    def by_username(self, username: str) -> Account | None:
        return self._one("username = ?", username)

    def all(self) -> list[Account]:
        with self.db.connect() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM accounts ORDER BY username"  # noqa: S608
            ).fetchall()
        return [Account(*row) for row in rows]

    def has_admin(self) -> bool:
        with self.db.connect() as conn:
            return (
                conn.execute("SELECT 1 FROM accounts WHERE role = 'admin' LIMIT 1").fetchone()
                is not None
            )

    def verify(self, username: str, password: str) -> Account | None:
        """Return the account when the password is right, else None, in about the same time."""
        with self.db.connect() as conn:
            row = conn.execute(
                "SELECT id, password_hash FROM accounts WHERE username = ?", (username,)
            ).fetchone()
        if row is None:
            check_password_hash(_dummy_hash(), password)
            return None
        if not check_password_hash(row[1], password):
            return None
        return self.get(int(row[0]))

    def _one(self, condition: str, value: object) -> Account | None:
        with self.db.connect() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM accounts WHERE {condition}",  # noqa: S608
                (value,),
            ).fetchone()
        return Account(*row) if row else None


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
