"""API tokens: read-only keys for the JSON API and the exports, kept in accounts.db.

A token is ``trek_`` followed by 256 random bits (URL-safe base64). Only its SHA-256 is stored;
the text is shown once, when it is made.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypedDict

from .accounts import NAME_PATTERN
from .accounts_db import AccountsDB

__all__ = [
    "TOKEN_PREFIX",
    "TOUCH_INTERVAL",
    "ApiToken",
    "ApiTokenRecord",
    "TokenError",
    "TokenStore",
    "hash_token",
]

TOKEN_PREFIX = "trek_"  # noqa: S105 (a prefix that marks a token, not a secret)
# ``last_used`` is written at most this often per token (seconds): a script polling the API
# many times a second must not turn every read into a write to accounts.db.
TOUCH_INTERVAL = 60.0
# secrets.token_urlsafe(32) gives 43 characters; anything far longer is not one of ours, and
# hashing it is refused before it costs anything.
_MAX_SECRET_LENGTH = 128
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_COLUMNS = "id, name, created, created_by, last_used, revoked"


class TokenError(ValueError):
    """A token operation that cannot be done, with a message for the person asking."""


@dataclass(frozen=True)
class ApiToken:
    """One token as listed: never its secret, which is not stored."""

    id: int
    name: str
    created: str
    created_by: str
    last_used: str | None
    revoked: str | None

    @property
    def is_revoked(self) -> bool:
        return self.revoked is not None

    @property
    def state(self) -> str:
        """``active`` or ``revoked``, for lists."""
        return "revoked" if self.is_revoked else "active"

    def as_dict(self) -> ApiTokenRecord:
        """The token as ``trek-audit token list --json`` shows it."""
        return {
            "name": self.name,
            "created": self.created,
            "created_by": self.created_by,
            "last_used": self.last_used,
            "revoked": self.revoked,
            "state": self.state,
        }


class ApiTokenRecord(TypedDict):
    name: str
    created: str
    created_by: str
    last_used: str | None
    revoked: str | None
    state: str


def hash_token(secret: str) -> str:
    """The stored form of a token: its SHA-256, hex.

    A fast hash is right here, unlike for passwords: a token is 256 random bits, so there is
    no dictionary to try and no slow hash would make guessing any less hopeless, while every
    API request pays for the hash. Looking the hash up (rather than comparing secrets) also
    means no secret is ever compared byte by byte.
    """
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def _now() -> str:
    return datetime.now(UTC).strftime(_TIME_FORMAT)


class TokenStore:
    """The api_tokens table of accounts.db."""

    def __init__(self, db: AccountsDB) -> None:
        self.db = db

    def create(self, name: str, created_by: str) -> tuple[ApiToken, str]:
        """Make a token named ``name``; returns it and its secret, which is not kept anywhere."""
        if NAME_PATTERN.fullmatch(name) is None:
            raise TokenError(
                "a token name is 1 to 64 letters, digits or . _ @ - "
                "and starts with a letter or digit"
            )
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        try:
            with self.db.connect() as conn:
                conn.execute(
                    "INSERT INTO api_tokens (name, token_hash, created, created_by) "
                    "VALUES (?, ?, ?, ?)",
                    (name, hash_token(secret), _now(), created_by),
                )
        except sqlite3.IntegrityError:
            raise TokenError(
                f"a token named {name!r} is already listed (revoked tokens stay listed): "
                "choose another name"
            ) from None
        token = self.get(name)
        assert token is not None
        return token, secret

    def revoke(self, name: str) -> ApiToken:
        """Revoke the token named ``name``: it is refused from now on, and stays listed."""
        with self.db.connect() as conn:
            row = conn.execute("SELECT revoked FROM api_tokens WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise TokenError(f"no token named {name!r}")
            if row[0] is not None:
                raise TokenError(f"the token {name!r} was already revoked at {row[0]}")
            conn.execute("UPDATE api_tokens SET revoked = ? WHERE name = ?", (_now(), name))
        token = self.get(name)
        assert token is not None
        return token

    def get(self, name: str) -> ApiToken | None:
        with self.db.connect() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM api_tokens WHERE name = ?",  # noqa: S608
                (name,),
            ).fetchone()
        return ApiToken(*row) if row else None

    def list(self) -> list[ApiToken]:
        """Every token, revoked ones too, by name."""
        with self.db.connect() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM api_tokens ORDER BY name"  # noqa: S608
            ).fetchall()
        return [ApiToken(*row) for row in rows]

    def verify(self, secret: str) -> ApiToken | None:
        """The active token whose secret this is, or None (unknown, revoked or malformed).

        The lookup is by hash through the unique index, so its time does not depend on how
        much of a guess matches a real token. A token used now has its ``last_used`` written,
        at most once a minute.
        """
        if not secret.startswith(TOKEN_PREFIX) or len(secret) > _MAX_SECRET_LENGTH:
            return None
        with self.db.connect() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM api_tokens WHERE token_hash = ?",  # noqa: S608
                (hash_token(secret),),
            ).fetchone()
        if row is None:
            return None
        token = ApiToken(*row)
        if token.is_revoked:
            return None
        self._touch(token)
        return token

    def _touch(self, token: ApiToken) -> None:
        # Decided on the row just read, so every worker process agrees without shared memory.
        now = datetime.now(UTC)
        if token.last_used is not None:
            try:
                last = datetime.strptime(token.last_used, _TIME_FORMAT).replace(tzinfo=UTC)
            except ValueError:  # edited by hand: write a good one
                last = datetime.min.replace(tzinfo=UTC)
            if (now - last).total_seconds() < TOUCH_INTERVAL:
                return
        with self.db.connect() as conn:
            conn.execute(
                "UPDATE api_tokens SET last_used = ? WHERE id = ?",
                (now.strftime(_TIME_FORMAT), token.id),
            )
