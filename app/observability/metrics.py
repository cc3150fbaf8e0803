"""Prometheus metrics of the service, defined once; other domains import and increment them.

Counters live in the process (or, when ``PROMETHEUS_MULTIPROC_DIR`` is set before start,
in prometheus_client's shared files so several uvicorn workers add up, see
docs/operations.md). Values that belong to the database rather than a process (the outbox
backlog, transitions due) are read at scrape time by :class:`DatabaseCollector`, so every
replica reports the same truth instead of a stale copy.

Label values are always from small fixed sets (route *templates*, status codes, error
codes, tiers): never a path, a model name or anything a caller can vary at will.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import lru_cache
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import Engine, Select, func, select

from app.models import SafetyReport, WebhookDelivery

log = logging.getLogger(__name__)

# The *_created series double every counter's output for a timestamp no dashboard uses.
disable_created_metrics()  # type: ignore[no-untyped-call]

HTTP_REQUESTS = Counter(
    "weightgate_http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "weightgate_http_request_duration_seconds",
    "Time to answer an HTTP request (until the last body byte was handed to the server).",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120),
)
BYTES_SERVED = Counter(
    "weightgate_bytes_served",
    "Response body bytes sent, by route template (file routes carry the downloads).",
    ["route"],
)


@lru_cache(maxsize=1024)
def http_series(method: str, route: str, status: int) -> tuple[Counter, Histogram]:
    """The request counter and duration histogram of one (method, route, status), looked up
    once: ``labels()`` costs more than the increment it leads to, and runs on every request.
    Bounded, like the label values themselves (route *templates*, not paths)."""
    return (
        HTTP_REQUESTS.labels(method=method, route=route, status=str(status)),
        HTTP_DURATION.labels(method=method, route=route),
    )


TOKENS_ISSUED = Counter(
    "weightgate_tokens_issued",
    "Download tokens issued, by the tier (clearance) they carry.",
    ["tier"],
)
TOKENS_REDEEMED = Counter(
    "weightgate_tokens_redeemed",
    "Successful file requests, by kind (token, anonymous) and mode (redirect, proxy).",
    ["kind", "mode"],
)
DENIALS = Counter(
    "weightgate_denials",
    "Requests refused with 401, 403 or 429, by the problem's stable code.",
    ["reason"],
)
SCHEDULER_LAG = Histogram(
    "weightgate_scheduler_lag_seconds",
    "Delay between a stage's scheduled time and the moment a replica recorded its lift.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600),
)
TRANSITIONS_RECORDED = Counter(
    "weightgate_transitions_recorded",
    "Embargo lifts recorded by this process's scheduler.",
)
SCHEDULER_TICKS = Counter(
    "weightgate_scheduler_ticks",
    "Scheduler passes, by outcome (ok, error).",
    ["outcome"],
)
SAFETY_TIME_TO_TRIAGE = Histogram(
    "weightgate_safety_time_to_triage_seconds",
    "Time from a safety report's filing to an admin's first status change.",
    buckets=(60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86_400, 3 * 86_400, 7 * 86_400),
)
WEBHOOK_ATTEMPTS = Counter(
    "weightgate_webhook_attempts",
    "Webhook delivery attempts, by outcome (delivered, retry, failed).",
    ["outcome"],
)


def count_token_issued(tier: str) -> None:
    TOKENS_ISSUED.labels(tier=tier).inc()


def count_token_redeemed(kind: str, mode: str, n: int = 1) -> None:
    TOKENS_REDEEMED.labels(kind=kind, mode=mode).inc(n)


def count_denial(reason: str) -> None:
    DENIALS.labels(reason=reason).inc()


def observe_scheduler_lag(seconds: float) -> None:
    SCHEDULER_LAG.observe(max(0.0, seconds))


def observe_time_to_triage(seconds: float) -> None:
    SAFETY_TIME_TO_TRIAGE.observe(max(0.0, seconds))


class DatabaseCollector(Collector):
    """Gauges read from the database when Prometheus scrapes: what every replica shares."""

    def __init__(
        self,
        engine: Engine,
        now: Callable[[], datetime],
        *,
        due_stages: Callable[[datetime, Select[Any]], Select[Any]],
    ) -> None:
        # ``due_stages`` is the scheduler's own query (app.schedule.claimer), passed in by
        # create_app: the scheduler records its metrics here, so this module cannot import it.
        self._engine = engine
        self._now = now
        self._due_stages = due_stages

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily(
            "weightgate_metrics_database_up",
            "1 if the database answered the scrape-time queries below, else 0.",
        )
        try:
            backlog, oldest, due, reports = self._read()
        except Exception:  # a scrape must not fail because the database is down
            log.warning("metrics.database_unreachable")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily(
            "weightgate_outbox_backlog",
            "Webhook deliveries still pending (not yet delivered, not given up).",
            value=backlog,
        )
        yield GaugeMetricFamily(
            "weightgate_outbox_oldest_pending_seconds",
            "Age of the oldest pending webhook delivery (0 when none).",
            value=oldest,
        )
        yield GaugeMetricFamily(
            "weightgate_transitions_due",
            "Stages whose time has come that no scheduler has recorded yet.",
            value=due,
        )
        open_reports = GaugeMetricFamily(
            "weightgate_safety_reports_open",
            "Safety reports still open (new or triaged), by severity.",
            labels=["severity"],
        )
        for severity in ("low", "medium", "high", "critical"):
            open_reports.add_metric([severity], reports.get(severity, 0))
        yield open_reports

    def _read(self) -> tuple[int, float, int, dict[str, int]]:
        now = self._now()
        with self._engine.connect() as conn:
            backlog, oldest_at = conn.execute(
                select(func.count(), func.min(WebhookDelivery.created_at)).where(
                    WebhookDelivery.status == "pending"
                )
            ).one()
            due = conn.scalar(self._due_stages(now, select(func.count())))
            reports = {
                severity: int(n)
                for severity, n in conn.execute(
                    select(SafetyReport.severity, func.count())
                    .where(SafetyReport.status.in_(("new", "triaged")))
                    .group_by(SafetyReport.severity)
                )
            }
        # min() keeps the column's type, so this is an aware UTC datetime on every backend.
        oldest = 0.0 if oldest_at is None else max(0.0, (now - oldest_at).total_seconds())
        return int(backlog), oldest, int(due or 0), reports


def render(database: DatabaseCollector | None) -> tuple[bytes, str]:
    """The exposition text: this process's (or all workers') metrics plus database gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    if database is not None:
        extra = CollectorRegistry(auto_describe=False)
        extra.register(database)
        body += generate_latest(extra)
    return body, CONTENT_TYPE_LATEST
