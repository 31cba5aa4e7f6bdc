"""GET /healthz for probes and GET /metrics for Prometheus, both from the one health read.

/healthz needs no login and shows no event content: only the verdict and the figures of
``trek_audit.store.health.Health``. /metrics is for an admin's session or for
``Authorization: Bearer <TREK_METRICS_TOKEN>``; its values are those of
``trek-audit status --json``, read again at every scrape.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator, Mapping
from typing import Literal, NamedTuple

from flask import Blueprint, current_app, jsonify, request
from flask.blueprints import BlueprintSetupState
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector, CollectorRegistry
from werkzeug.wrappers import Response as BaseResponse

from trek_audit.settings import Settings
from trek_audit.store.health import HealthReport, read_health
from trek_audit.store.supervisor import parse_time

from .security import current_account
from .state import EXTENSION, PanelState, current_state

__all__ = ["METRICS", "MetricSpec", "StatusCollector", "health"]

health = Blueprint("health", __name__)

# The key of the panel's metrics registry in ``app.extensions``.
_REGISTRY = "trek_audit.metrics"


class MetricSpec(NamedTuple):
    """A metric, and the key of ``trek-audit status --json`` whose value it carries.

    ``source_key``: the key of each of ``status --json``'s ``sources`` that gives the metric a
    companion family with a sample per source, labelled ``source`` (``per_source_name``); None
    for a metric of the whole data directory. The total and the per-source samples are kept in
    two families so that summing either never counts an event twice.
    """

    name: str
    kind: Literal["counter", "gauge"]
    help: str
    key: str
    source_key: str | None = None

    @property
    def per_source_name(self) -> str:
        """``trek_audit_source_<rest>``: the family of this metric's samples per source."""
        return self.name.replace("trek_audit_", "trek_audit_source_", 1)


METRICS = (
    MetricSpec(
        "trek_audit_events_indexed_total",
        "counter",
        "Events indexed into audit.db.",
        "indexed",
        "indexed",
    ),
    MetricSpec(
        "trek_audit_last_seq",
        "gauge",
        "Highest seq indexed: of the local log, or with a label of that source (each its own).",
        "last_seq",
        "last_seq",
    ),
    MetricSpec(
        "trek_audit_lag_bytes",
        "gauge",
        "Bytes of log files not indexed yet.",
        "lag_bytes",
        "lag_bytes",
    ),
    MetricSpec(
        "trek_audit_missing_events",
        "gauge",
        "Events inside gaps of the seq sequence (never seen in any log file).",
        "missing_events",
        "missing",
    ),
    MetricSpec(
        "trek_audit_rejected_lines_total",
        "counter",
        "Log lines rejected as malformed.",
        "rejected_lines",
        "rejected",
    ),
    MetricSpec(
        "trek_audit_incidents_total",
        "counter",
        "Truncated, replaced or lost log files.",
        "incidents",
        "incidents",
    ),
    MetricSpec(
        "trek_audit_duplicates_dropped_total",
        "counter",
        "Identical repeated lines dropped (a shipper delivering a line again).",
        "duplicates_dropped",
        "duplicates_dropped",
    ),
    MetricSpec(
        "trek_audit_indexer_up",
        "gauge",
        "1 while an indexer follows the log, else 0.",
        "indexer_running",
    ),
    MetricSpec(
        "trek_audit_indexer_restarts_total",
        "counter",
        "Restarts of the indexer by trek-audit serve since it started.",
        "indexer_restarts",
    ),
    MetricSpec(
        "trek_audit_last_indexed_timestamp_seconds",
        "gauge",
        "Unix time of the last commit that indexed an event (no sample before the first).",
        "last_indexed_at",
        "last_indexed_at",
    ),
    MetricSpec(
        "trek_audit_health_status",
        "gauge",
        "0 ok, 1 degraded, 2 failing: the exit status of trek-audit status.",
        "status",
    ),
)


class StatusCollector(Collector):
    """Reads the status when scraped, never in between: every scrape sees the truth of now."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[Metric]:
        return metric_families(read_health(self.settings))


def metric_families(report: HealthReport) -> Iterator[Metric]:
    """Every metric of ``METRICS``, valued from ``report`` as ``status --json`` shows it.

    A metric with a ``source_key`` is followed by its per-source family
    (``trek_audit_source_...{source="web-2"}``), so a dashboard can tell which host is behind
    or has gaps.
    """
    figures = report.as_json()
    sources = (report.status.get("sources") or []) if report.status is not None else []
    for spec in METRICS:
        family = _family(spec.kind, spec.name, spec.help, [])
        value = float(report.exit_code) if spec.key == "status" else _number(figures[spec.key])
        if value is not None:  # unknown while audit.db cannot be read: no sample
            family.add_metric([], value)
        yield family
        if spec.source_key is not None:
            per_source = _family(
                spec.kind, spec.per_source_name, f"{spec.help} Per source.", ["source"]
            )
            for source in sources:
                row: Mapping[str, object] = source
                sample = _number(row.get(spec.source_key))
                if sample is not None:
                    per_source.add_metric([source["name"]], sample)
            yield per_source


def _family(
    kind: Literal["counter", "gauge"], name: str, help_text: str, labels: list[str]
) -> CounterMetricFamily | GaugeMetricFamily:
    if kind == "counter":
        return CounterMetricFamily(name, help_text, labels=labels)
    return GaugeMetricFamily(name, help_text, labels=labels)


def _number(value: object) -> float | None:
    """A figure of ``status --json`` as a sample value: booleans 0/1, times as Unix seconds."""
    if isinstance(value, str):
        moment = parse_time(value)
        return moment.timestamp() if moment else None
    if isinstance(value, bool | int | float):
        return float(value)
    return None


@health.record_once
def _register(setup: BlueprintSetupState) -> None:
    state: PanelState = setup.app.extensions[EXTENSION]
    # A registry of the panel's own, not prometheus_client's global one: two apps in one
    # process (tests, a host app) each report their own data directory.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatusCollector(state.settings))
    setup.app.extensions[_REGISTRY] = registry


@health.get("/healthz")
def healthz() -> BaseResponse:
    """The verdict and its figures: 200 when ok or degraded, 503 when failing."""
    report = read_health(current_state().settings)
    response = jsonify(report.health())
    response.status_code = 503 if report.verdict == "failing" else 200
    return response


@health.get("/metrics")
def metrics() -> BaseResponse:
    """The Prometheus text format, for an admin's session or the metrics bearer token."""
    if not _may_scrape():
        response = jsonify(
            error="an admin's session or Authorization: Bearer <TREK_METRICS_TOKEN> is required"
        )
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="trek-audit metrics"'
        return response
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    registry: CollectorRegistry = current_app.extensions[_REGISTRY]
    return current_app.response_class(encode(registry), content_type=content_type)


def _may_scrape() -> bool:
    account = current_account()
    if account is not None and account.is_admin:
        return True
    token = current_state().settings.metrics_token
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    if not token or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(sent.strip().encode(), token.encode())
