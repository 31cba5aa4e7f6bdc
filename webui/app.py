"""The app factory: settings, shared state, blueprints, error pages and security headers."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from flask import Flask, g, jsonify, make_response, render_template
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from indexer.query import AuditQuery
from writer import AuditWriteError, AuditWriter

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
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    app.extensions["trek_audit"] = PanelState(config)

    app.before_request(load_account)
    app.before_request(check_csrf)
    app.after_request(secure_headers)
    app.teardown_appcontext(_close_db)
    app.jinja_env.globals["csrf_token"] = csrf_token

    @app.context_processor
    def _account() -> dict[str, Any]:
        return {"account": g.get("account")}

    app.register_error_handler(HTTPException, _error_page)

    from .api import api
    from .audit import audit
    from .auth import auth

    app.register_blueprint(auth)
    app.register_blueprint(audit)
    app.register_blueprint(api)
    return app


def get_db() -> AuditQuery | None:
    """The request's read-only query layer over audit.db, or None before the indexer created it."""
    if "audit_query" not in g:
        state: PanelState = _state()
        try:
            g.audit_query = AuditQuery.open(state.config.audit_db)
        except FileNotFoundError:
            g.audit_query = None
    query: AuditQuery | None = g.audit_query
    return query


def _close_db(_error: BaseException | None) -> None:
    query = g.pop("audit_query", None)
    if query is not None:
        query.close()


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
