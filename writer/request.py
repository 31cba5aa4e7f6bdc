"""Record an audit event inside a Flask request: the app passes the user, the request the IP."""

from __future__ import annotations

import os
from typing import Any

from flask import current_app, request

from trek_audit.settings import SETTINGS

from .appender import AuditWriter
from .client_ip import client_ip
from .default import default_writer
from .line import Event, User

__all__ = ["record_request", "request_ip"]


def request_ip(trust_proxy: object = None) -> str | None:
    """The client IP of the current request under the TRUST_PROXY rule.

    ``trust_proxy`` defaults to the app's ``TRUST_PROXY`` config value, else the
    ``TRUST_PROXY`` setting (environment).
    """
    if trust_proxy is None:
        trust_proxy = current_app.config.get("TRUST_PROXY")
    if trust_proxy is None:
        trust_proxy = SETTINGS["TRUST_PROXY"].read(os.environ)
    # Several X-Forwarded-For headers count as one list, in order.
    forwarded = ",".join(request.headers.getlist("X-Forwarded-For")) or None
    return client_ip(request.remote_addr, forwarded, trust_proxy)


def record_request(
    action: str,
    *,
    user: User | dict[str, Any] | None = None,
    resource: str | None = None,
    details: dict[str, Any] | None = None,
    writer: AuditWriter | None = None,
    trust_proxy: object = None,
) -> Event:
    """Append one event for the current request, with its client IP; see ``AuditWriter.record``.

    ``writer`` defaults to the process's default writer (configured from the settings).
    """
    audit_writer = writer if writer is not None else default_writer()
    return audit_writer.record(
        action, user=user, resource=resource, ip=request_ip(trust_proxy), details=details
    )
