"""Request ids, structured logs, Prometheus metrics and readiness."""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from app.clock import FixedClock
from app.db import make_engine, make_sessionmaker
from app.main import create_app
from app.models import AuditEvent
from app.observability.logging import JsonFormatter, RequestIdFilter
from app.observability.metrics import (
    DatabaseCollector,
    count_token_issued,
    count_token_redeemed,
    observe_scheduler_lag,
    render,
)
from app.schedule.claimer import due_stages_query
from app.settings import Settings
from app.storage.filesystem import FilesystemStore
from app.webhooks.outbox import enqueue_event
from tests.conftest import T0
from tests.factories.catalogue import publish_release
from tests.factories.schedules import make_component, make_release, make_subscription
from tests.fixtures.databases import fresh_database


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def metric(client: TestClient, name: str, **labels: str) -> float:
    resp = client.get("/metrics")
    assert resp.status_code == 200
    return samples(resp.text).get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("app")
    logger.addHandler(handler)
    yield buffer
    logger.removeHandler(handler)


def test_a_request_id_is_made_up_echoed_and_logged(
    client: TestClient, log_lines: io.StringIO
) -> None:
    resp = client.get("/healthz")
    made_up = resp.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made_up)

    resp = client.get("/healthz", headers={"X-Request-Id": "lb-7f3a.abc:1"})
    assert resp.headers["x-request-id"] == "lb-7f3a.abc:1"

    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    requests = [line for line in lines if line["event"] == "http.request"]
    assert [r["request_id"] for r in requests] == [made_up, "lb-7f3a.abc:1"]
    assert requests[0]["route"] == "/healthz"
    assert requests[0]["status"] == 200
    assert requests[0]["method"] == "GET"
    assert requests[0]["logger"] == "app.observability.middleware"
    assert requests[0]["level"] == "info"


@pytest.mark.parametrize(
    "incoming", ["x" * 65, "has space", "new\nline", "", "-leading-dash", "é-accent"]
)
def test_an_unsafe_incoming_request_id_is_replaced(client: TestClient, incoming: str) -> None:
    resp = client.get("/healthz", headers={b"X-Request-Id": incoming.encode("utf-8")})
    assert re.fullmatch(r"[0-9a-f]{32}", resp.headers["x-request-id"])


def test_the_request_id_reaches_the_audit_log_and_error_responses(
    client: TestClient, admin_headers: dict[str, str], db: Session
) -> None:
    resp = client.post(
        "/v1/webhooks",
        json={"url": "https://93.184.215.14/h", "events": ["*"]},
        headers={**admin_headers, "X-Request-Id": "req-audit-1"},
    )
    assert resp.status_code == 201
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "webhook.created"))
    assert event is not None
    assert event.request_id == "req-audit-1"
    missing = client.get("/v1/webhooks/999", headers={**admin_headers, "X-Request-Id": "req-2"})
    assert missing.status_code == 404
    assert missing.headers["x-request-id"] == "req-2"


def test_logs_never_carry_query_strings(client: TestClient, log_lines: io.StringIO) -> None:
    client.get("/v1/files/acme/x/v1/a.bin", params={"token": "secret-token-value"})
    text = log_lines.getvalue()
    assert "secret-token-value" not in text
    assert '"event": "http.request"' in text


def test_metrics_count_requests_by_route_template_status_and_bytes(client: TestClient) -> None:
    before = metric(
        client,
        "weightgate_http_requests_total",
        method="GET",
        route="/v1/webhooks/{webhook_id}",
        status="401",
    )
    for _ in range(3):
        client.get("/v1/webhooks/12345")
    client.get("/no/such/route/at/all")
    after = metric(
        client,
        "weightgate_http_requests_total",
        method="GET",
        route="/v1/webhooks/{webhook_id}",
        status="401",
    )
    assert after - before == 3
    resp = client.get("/metrics")
    assert resp.headers["content-type"].startswith("text/plain")
    got = samples(resp.text)
    assert (
        got[
            (
                "weightgate_http_requests_total",
                (("method", "GET"), ("route", "<unmatched>"), ("status", "404")),
            )
        ]
        >= 1
    )
    # Raw paths never become label values (sample values may be any number, 12345 too).
    labels = {value for _, pairs in got for _, value in pairs}
    assert not [v for v in labels if "12345" in v or "/no/such/route" in v]
    healthz_bytes = metric(client, "weightgate_bytes_served_total", route="/healthz")
    client.get("/healthz")
    assert metric(client, "weightgate_bytes_served_total", route="/healthz") - healthz_bytes == len(
        b'{"status":"ok"}'
    )
    assert (
        metric(
            client,
            "weightgate_http_request_duration_seconds_count",
            method="GET",
            route="/healthz",
        )
        >= 1
    )


def test_denials_are_counted_by_their_code(
    client: TestClient, db: Session, clock: FixedClock
) -> None:
    before = metric(client, "weightgate_denials_total", reason="unauthenticated")
    assert client.get("/v1/audit").status_code == 401
    assert client.get("/v1/audit", headers={"Authorization": "Bearer wg_nope"}).status_code == 401
    assert metric(client, "weightgate_denials_total", reason="unauthenticated") - before == 1
    assert metric(client, "weightgate_denials_total", reason="invalid_api_key") >= 1


def test_token_and_lag_metrics_are_exposed(client: TestClient) -> None:
    count_token_issued("partner")
    count_token_redeemed("anonymous", "proxy")
    observe_scheduler_lag(0.3)
    text = client.get("/metrics").text
    for family in (
        "weightgate_tokens_issued_total counter",
        "weightgate_tokens_redeemed_total counter",
        "weightgate_denials_total counter",
        "weightgate_scheduler_lag_seconds histogram",
        "weightgate_webhook_attempts_total counter",
        "weightgate_outbox_backlog gauge",
        "weightgate_transitions_due gauge",
    ):
        assert f"# TYPE {family}" in text
    got = samples(text)
    assert got[("weightgate_tokens_issued_total", (("tier", "partner"),))] >= 1
    assert (
        got[("weightgate_tokens_redeemed_total", (("kind", "anonymous"), ("mode", "proxy")))] >= 1
    )
    assert got[("weightgate_scheduler_lag_seconds_bucket", (("le", "0.5"),))] >= 1


def test_database_gauges_report_backlog_and_due_transitions(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    with fresh_database(tmp_path, label="gauges") as url:
        engine = make_engine(url)
        with make_sessionmaker(engine)() as db:
            make_subscription(db, T0, events=["*"])
            enqueue_event(db, event_type="release.published", data={}, now=T0)
            enqueue_event(
                db, event_type="release.published", data={}, now=T0 + timedelta(minutes=1)
            )
            _, rel = make_release(db, T0)
            make_component(db, T0, release=rel, stages=[("open", T0 - timedelta(seconds=5))])
            make_component(db, T0, release=rel, stages=[("open", T0 + timedelta(hours=1))])
            db.commit()
        clock.advance(minutes=5)
        body, content_type = render(
            DatabaseCollector(engine, clock.now, due_stages=due_stages_query)
        )
        got = samples(body.decode())
        assert content_type.startswith("text/plain")
        assert got[("weightgate_metrics_database_up", ())] == 1
        assert got[("weightgate_outbox_backlog", ())] == 2
        assert got[("weightgate_outbox_oldest_pending_seconds", ())] == 300
        assert got[("weightgate_transitions_due", ())] == 1
        engine.dispose()


def test_database_gauges_say_when_the_database_is_down() -> None:
    dead = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2")
    body, _ = render(DatabaseCollector(dead, FixedClock(T0).now, due_stages=due_stages_query))
    got = samples(body.decode())
    assert got[("weightgate_metrics_database_up", ())] == 0
    assert ("weightgate_outbox_backlog", ()) not in got
    dead.dispose()


def unready_app(settings: Settings, engine: Engine, store_root: Path) -> FastAPI:
    return create_app(
        settings,
        clock=FixedClock(T0),
        store=FilesystemStore(store_root),
        engine=engine,
        run_background=False,
    )


def test_readyz_passes_then_fails_when_the_database_is_unreachable(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    ok = client.get("/readyz")
    assert ok.status_code == 200
    assert ok.json() == {"status": "ready", "database": "ok", "storage": "ok"}

    dead = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2")
    with TestClient(unready_app(settings, dead, tmp_path / "objects")) as c:
        resp = c.get("/readyz")
    dead.dispose()
    assert resp.status_code == 503
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["code"] == "database_unreachable"
    assert "127.0.0.1:1" not in resp.text  # no connection details in the answer


def test_readyz_fails_when_the_store_is_unreachable(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    root = tmp_path / "gone"
    app = unready_app(settings, engine, root)
    shutil.rmtree(root)
    with TestClient(app) as c:
        resp = c.get("/readyz")
    assert resp.status_code == 503
    assert resp.json()["code"] == "storage_unreachable"


def test_issued_tokens_redemptions_and_download_bytes_are_counted(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    payload = b"\x01" * 4096
    publish_release(
        client,
        admin_headers,
        model="acme/metered",
        components={"weights": [("open", T0 - timedelta(days=1))]},
        files={"w.bin": ("weights", payload)},
    )
    route = "/v1/files/{namespace}/{name}/{version}/{path:path}"
    issued = metric(client, "weightgate_tokens_issued_total", tier="internal")
    redeemed = metric(client, "weightgate_tokens_redeemed_total", kind="token", mode="proxy")
    anonymous = metric(client, "weightgate_tokens_redeemed_total", kind="anonymous", mode="proxy")
    served = metric(client, "weightgate_bytes_served_total", route=route)

    resp = client.post("/v1/tokens", json={"model": "acme/metered"}, headers=admin_headers)
    assert resp.status_code == 201, resp.text
    token = resp.json()["token"]
    got = client.get("/v1/files/acme/metered/v1/w.bin", params={"token": token})
    assert got.status_code == 200
    assert got.content == payload
    assert client.get("/v1/files/acme/metered/v1/w.bin").content == payload  # open: no token

    assert metric(client, "weightgate_tokens_issued_total", tier="internal") - issued == 1
    assert (
        metric(client, "weightgate_tokens_redeemed_total", kind="token", mode="proxy") - redeemed
        == 1
    )
    assert (
        metric(client, "weightgate_tokens_redeemed_total", kind="anonymous", mode="proxy")
        - anonymous
        == 1
    )
    assert metric(client, "weightgate_bytes_served_total", route=route) - served == 2 * 4096
    assert token not in client.get("/metrics").text
