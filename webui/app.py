"""The app factory: settings, shared state, blueprints, error pages and security headers."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from flask import Flask, g, jsonify, make_response, render_template
from werkzeug.exceptions import HTTPException, ServiceUnavailable
from werkzeug.wrappers import Response as BaseResponse

from trek_audit.indexer.query import AuditQuery, CountCache, HistogramCache
from trek_audit.writer import AuditWriteError, AuditWriter

from .accounts import Account, Accounts
from .config import PanelConfig, load_or_create_secret_key
from .security import (
    check_csrf,
    client_address,
    csrf_token,
    load_account,
    secure_headers,
    wants_json,
)

__all__ = ["PanelState", "create_app", "get_db", "record_event"]

log = logging.getLogger(__name__)


class PanelState:
    """What the app shares between requests: settings, the accounts file, the audit writer."""

    def __init__(self, config: PanelConfig) -> None:
        self.config = config
        self.accounts = Accounts(config.accounts_db)
        self._writer: AuditWriter | None = None
        self._writer_lock = threading.Lock()
        # A read-only audit.db connection per worker thread, reused by its requests: opening
        # one costs about as much as serving a page. Reads are autocommit, so each statement
        # sees what the indexer has committed.
        self._local = threading.local()
        self._queries: list[AuditQuery] = []
        self.counts = CountCache()
        self.histograms = HistogramCache(64)

    def audit_query(self) -> AuditQuery | None:
        """This thread's query layer over audit.db, or None before the indexer created it."""
        query: AuditQuery | None = getattr(self._local, "query", None)
        if query is None:
            try:
                query = AuditQuery.open(self.config.audit_db)
            except FileNotFoundError:
                return None
            self._local.query = query
            with self._writer_lock:
                self._queries.append(query)
        return query

    @property
    def writer(self) -> AuditWriter:
        with self._writer_lock:
            if self._writer is None:
                w = self.config.writer
                self._writer = AuditWriter(
                    self.config.log_dir,
                    max_bytes=w.max_bytes,
                    backups=w.backups,
                    max_line_bytes=w.max_line_bytes,
                    fsync=w.fsync,
                )
            return self._writer

    def close(self) -> None:
        """Close the writer and every connection; the app can still serve (it reopens them)."""
        with self._writer_lock:
            queries, self._queries = self._queries, []
            self._local = threading.local()
        for query in queries:
            query.close()
        self.accounts.close()
        with self._writer_lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None


def create_app(config: PanelConfig | Mapping[str, str] | None = None) -> Flask:
    """Build the panel from a PanelConfig, a mapping of setting names, or None (the environment)."""
    if config is None:
        config = PanelConfig.from_env()
    elif not isinstance(config, PanelConfig):
        config = PanelConfig.from_env(config)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=config.secret_key or load_or_create_secret_key(config.secret_key_file),
        SESSION_COOKIE_NAME="trek_audit_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.cookie_secure,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        # A session lasts 12 hours from login, not from the last request: no re-signed
        # cookie on every response.
        SESSION_REFRESH_EACH_REQUEST=False,
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    app.extensions["trek_audit"] = PanelState(config)

    app.before_request(_start_timer)
    app.before_request(load_account)
    app.before_request(check_csrf)
    app.after_request(secure_headers)
    app.after_request(_server_timing)
    app.teardown_appcontext(_close_db)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True

    @app.context_processor
    def _account() -> dict[str, Any]:
        return {"account": g.get("account")}

    app.register_error_handler(HTTPException, _error_page)
    app.register_error_handler(sqlite3.DatabaseError, _database_error)

    from .api import api
    from .audit import audit
    from .auth import auth

    app.register_blueprint(auth)
    app.register_blueprint(audit)
    app.register_blueprint(api)
    return app


def _start_timer() -> None:
    g.started = time.perf_counter()


def _server_timing(response: BaseResponse) -> BaseResponse:
    """Say how long the app took (Server-Timing), for browsers' dev tools and the benchmark."""
    started = g.get("started")
    if started is not None:
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.3f}"
    return response


def get_db() -> AuditQuery | None:
    """The request's read-only query layer over audit.db, or None before the indexer created it."""
    if "audit_query" not in g:
        g.audit_query = _state().audit_query()
    query: AuditQuery | None = g.audit_query
    return query


def _close_db(_error: BaseException | None) -> None:
    # The connection stays with its thread for the next request (see PanelState).
    g.pop("audit_query", None)


def _state() -> PanelState:
    from flask import current_app

    state: PanelState = current_app.extensions["trek_audit"]
    return state


def record_event(
    action: str,
    *,
    account: Account | None = None,
    resource: str | None = None,
    details: dict[str, Any] | None = None,
) -> bool:
    """Append one of the panel's own events; False (and a log line) when the log cannot take it."""
    try:
        _state().writer.record(
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


def _database_error(error: sqlite3.DatabaseError) -> BaseResponse:
    """A damaged or unreadable audit.db: say so (503), rather than a bare 500."""
    log.error("cannot read the audit database: %s", error)
    return _error_page(
        ServiceUnavailable(
            f"The audit database cannot be read ({error}). Check {_state().config.audit_db}; "
            "the log files are untouched and can be indexed again."
        )
    )


def _error_page(error: HTTPException) -> BaseResponse:
    code = error.code or 500
    if wants_json():
        response = jsonify(error=error.description)
        response.status_code = code
    else:
        response = make_response(
            render_template(
                "error.html", code=code, name=error.name, description=error.description
            ),
            code,
        )
    if code == 405 and error.get_response().headers.get("Allow"):
        response.headers["Allow"] = error.get_response().headers["Allow"]
    return response
