"""An account change that is made only if its audit event is recorded: one accounts.db transaction.

An admin action that cannot be audited does not happen. Creating an account or setting a
password therefore runs inside ``account_change``: the change is written to accounts.db, the
event is appended to trek.log, and only then is the transaction committed; if the event cannot
be appended, the block raises and the change is rolled back, so nobody ever sees it.

Why change-record-commit rather than record-then-change: the event carries what only the change
knows (the new account's id), and every check (a taken username, a short password) runs before
anything is recorded, so the log never names a change that was refused. The one window left is
a commit that fails after the event was appended (accounts.db's disk failing in between): the
log then names a change that did not happen, which an auditor can see and check, whereas the
other order could leave a change that no one can see.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from .accounts import Accounts
from .accounts_db import AccountsDB

__all__ = ["account_change"]


class _OpenTransaction(AccountsDB):
    """accounts.db as seen from inside one open transaction: ``connect()`` joins it.

    ``AccountsDB.connect()`` commits when its block ends, which would commit the change before
    its event is recorded; this view hands out the same connection without committing.
    """

    def __init__(self, db: AccountsDB, conn: sqlite3.Connection) -> None:
        # The schema is already in place (``db`` made it): nothing to create.
        self.path = db.path
        self._conn = conn

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        yield self._conn

    def close(self) -> None:
        """Nothing of its own to close: the connection belongs to ``db``."""


@contextmanager
def account_change(db: AccountsDB) -> Iterator[Accounts]:
    """Accounts whose changes in the block commit when it ends, and roll back if it raises.

    Record the change's event inside the block; raise when that fails::

        with account_change(db) as accounts:
            account = accounts.create(...)
            record(...)  # raises: no account
    """
    # SQLite takes the write lock at the first change, after the password is hashed (slow on
    # purpose), and holds it only while the event is appended: other workers' logins wait
    # (busy timeout) for a few milliseconds at most.
    with db.connect() as conn:
        yield Accounts(_OpenTransaction(db, conn))
