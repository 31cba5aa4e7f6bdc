"""What the panel shares between requests, and the request's ways to it.

The app factory puts one ``PanelState`` in ``app.extensions``; blueprints reach it through
``current_state()``, ``get_db()`` and ``record_event()`` here, so that neither they nor this
module import the factory.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from flask import abort, current_app, g, request

from trek_audit.settings import Settings
from trek_audit.store import AuditQuery, CountCache, FacetCache, HistogramCache
from trek_audit.writer import AuditWriteError, AuditWriter
from trek_audit.writer.client_ip import client_ip

from .accounts import Account, Accounts
from .accounts_db import AccountsDB
from .sessions import EndedSessions
from .throttle import LoginThrottle

__all__ = [
    "EXTENSION",
    "PanelState",
    "client_address",
    "current_state",
    "get_db",
    "record_event",
    "record_or_refuse",
    "release_db",
]

log = logging.getLogger(__name__)

# The key of the panel's state in ``app.extensions``.
EXTENSION = "trek_audit"


class PanelState:
    """What the app shares between requests: settings, accounts.db, audit.db, the audit writer."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.data = settings.data
        self.accounts_db = AccountsDB(self.data.accounts_db)
        self.accounts = Accounts(self.accounts_db)
        self.throttle = LoginThrottle(self.accounts_db)
        self.ended_sessions = EndedSessions(self.accounts_db)
        self._writer: AuditWriter | None = None
        self._lock = threading.Lock()
        # A read-only audit.db connection per worker thread, reused by its requests: opening
        # one costs about as much as serving a page. Reads are autocommit, so each statement
        # sees what the indexer has committed.
        self._local = threading.local()
        self._queries: list[AuditQuery] = []
        self.counts = CountCache()
        self.histograms = HistogramCache(64)
        self.facets = FacetCache()

    def audit_query(self) -> AuditQuery | None:
        """This thread's query layer over audit.db, or None before the indexer created it.

        At most once a second the file at the path is compared with the one this thread has
        open: once audit.db is deleted or replaced (the indexer then starts a new one), the
        old file's rows are served no more.
        """
        query: AuditQuery | None = getattr(self._local, "query", None)
        if query is not None and time.monotonic() >= self._local.checked + _IDENTITY_CHECK:
            self._local.checked = time.monotonic()
            if _identity(self.data.audit_db) != self._local.identity:
                log.warning("%s was deleted or replaced: serving the new one", self.data.audit_db)
                with self._lock:
                    self._queries = [item for item in self._queries if item is not query]
                query.close()
                query = self._local.query = None
        if query is None:
            identity = _identity(self.data.audit_db)
            try:
                query = AuditQuery.open(self.data.audit_db)
            except FileNotFoundError:
                return None
            self._local.query = query
            self._local.identity = identity
            self._local.checked = time.monotonic()
            with self._lock:
                self._queries.append(query)
        return query

    @property
    def writer(self) -> AuditWriter:
        """The audit writer for the panel's own events, opened on first use."""
        with self._lock:
            if self._writer is None:
                self._writer = AuditWriter.from_settings(self.settings)
            return self._writer

    def close(self) -> None:
        """Close the writer and every connection; the app can still serve (it reopens them)."""
        with self._lock:
            queries, self._queries = self._queries, []
            self._local = threading.local()
        for query in queries:
            query.close()
        self.accounts_db.close()
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None


# How often, at most, a thread checks that audit.db is still the file it has open (seconds).
_IDENTITY_CHECK = 1.0


def _identity(path: Path) -> tuple[int, int] | None:
    """The (device, inode) of the file at ``path``, None when there is none."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def current_state() -> PanelState:
    """The state of the app handling the current request."""
    state: PanelState = current_app.extensions[EXTENSION]
    return state


def get_db() -> AuditQuery | None:
    """The request's read-only query layer over audit.db, or None before the indexer created it."""
    if "audit_query" not in g:
        g.audit_query = current_state().audit_query()
    query: AuditQuery | None = g.audit_query
    return query


def release_db(_error: BaseException | None) -> None:
    """End the request's use of audit.db (the connection stays with its thread, for the next)."""
    g.pop("audit_query", None)


def client_address() -> str:
    """The client's IP under the TRUST_PROXY rule of the writer."""
    address = client_ip(
        request.remote_addr,
        request.headers.get("X-Forwarded-For"),
        current_state().settings.trust_proxy,
    )
    return address or "unknown"


def record_event(
    action: str,
    *,
    account: Account | None = None,
    resource: str | None = None,
    details: dict[str, Any] | None = None,
) -> bool:
    """Append one of the panel's own events; False (and a log line) when the log cannot take it."""
    try:
        current_state().writer.record(
            action,
            user=account.as_user() if account else None,
            resource=resource,
            ip=client_address(),
            details=details,
        )
    except AuditWriteError as error:
        log.error("could not record %s: %s", action, error)
        return False
    return True


def record_or_refuse(
    action: str,
    refused: str,
    *,
    account: Account | None = None,
    resource: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one of the panel's own events, or end the request with 503 saying what was refused.

    For actions that must not happen unaudited: call it before the action takes effect (inside
    its ``account_change`` block, before a session starts), so that the 503 leaves nothing
    changed. ``refused`` completes "The audit log cannot be written, so ...".
    """
    if not record_event(action, account=account, resource=resource, details=details):
        abort(
            503,
            description=f"The audit log cannot be written, so {refused}. Nothing was changed; "
            "the panel's own log says why (a full disk, a read-only log directory...).",
        )
