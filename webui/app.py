"""The app factory: settings, shared state, blueprints, error pages and security headers."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from flask import Flask, g, jsonify, make_response, render_template
from werkzeug.exceptions import HTTPException, ServiceUnavailable
from werkzeug.wrappers import Response as BaseResponse

from trek_audit.settings import Settings

from .accounts import MIN_PASSWORD_LENGTH
from .accounts_page import accounts_page
from .api import api
from .audit import audit
from .auth import auth
from .events import events
from .health import health
from .secret_key import load_or_create_secret_key
from .security import check_csrf, csrf_token, load_account, secure_headers, wants_json
from .state import EXTENSION, PanelState, current_state, release_db
from .tokens_page import tokens_page

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def create_app(settings: Settings | Mapping[str, str] | None = None) -> Flask:
    """Build the panel from Settings, a mapping of environment variable names, or None.

    None reads the environment; a mapping is read the same way, e.g.
    ``create_app({"TREK_DATA_DIR": "/srv/trek/data", "TREK_SECRET_KEY": "..."})``.
    """
    if settings is None:
        settings = Settings.from_env()
    elif not isinstance(settings, Settings):
        settings = Settings.from_env(settings)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key or load_or_create_secret_key(settings.data.secret_key),
        SESSION_COOKIE_NAME="trek_audit_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.cookie_secure,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        # A session lasts 12 hours from login, not from the last request: no re-signed
        # cookie on every response.
        SESSION_REFRESH_EACH_REQUEST=False,
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    app.extensions[EXTENSION] = PanelState(settings)

    app.before_request(_start_timer)
    app.before_request(load_account)
    app.before_request(check_csrf)
    app.after_request(secure_headers)
    app.after_request(_server_timing)
    app.teardown_appcontext(release_db)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["min_password_length"] = MIN_PASSWORD_LENGTH
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True

    @app.context_processor
    def _account() -> dict[str, Any]:
        return {"account": g.get("account")}

    app.register_error_handler(HTTPException, _error_page)
    app.register_error_handler(sqlite3.DatabaseError, _database_error)

    app.register_blueprint(auth)
    app.register_blueprint(audit)
    app.register_blueprint(events)
    app.register_blueprint(accounts_page)
    app.register_blueprint(tokens_page)
    app.register_blueprint(api)
    app.register_blueprint(health)
    return app


def _start_timer() -> None:
    g.started = time.perf_counter()


def _server_timing(response: BaseResponse) -> BaseResponse:
    """Say how long the app took (Server-Timing), for browsers' dev tools and the benchmark."""
    started = g.get("started")
    if started is not None:
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.3f}"
    return response


def _database_error(error: sqlite3.DatabaseError) -> BaseResponse:
    """A damaged or unreadable audit.db: say so (503), rather than a bare 500."""
    log.error("cannot read the audit database: %s", error)
    return _error_page(
        ServiceUnavailable(
            f"The audit database cannot be read ({error}). Check {current_state().data.audit_db}; "
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
