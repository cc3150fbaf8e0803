"""With several uvicorn workers, /metrics adds up every worker's counters (prometheus_client
multiprocess mode, switched on by PROMETHEUS_MULTIPROC_DIR), whichever worker answers."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.databases import fresh_database
from tests.fixtures.servers import live_server

pytestmark = [pytest.mark.slow, pytest.mark.own_database]


def healthz_count(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "weightgate_http_requests_total" and s.labels == {
                "method": "GET",
                "route": "/healthz",
                "status": "200",
            }:
                return s.value
    return 0.0


def test_every_scrape_reports_all_workers(tmp_path: Path) -> None:
    prom = tmp_path / "prom"
    prom.mkdir()
    with fresh_database(tmp_path, kind="postgresql", label="prom") as db_url:
        env = {
            "WEIGHTGATE_DATABASE_URL": db_url,
            "WEIGHTGATE_SCHEDULER_ENABLED": "false",
            "PROMETHEUS_MULTIPROC_DIR": str(prom),
        }
        with live_server(env, tmp=tmp_path, workers=2) as server:
            for _ in range(40):  # a new connection each time: the kernel spreads them
                assert httpx.get(server.url + "/healthz").status_code == 200
            # Whichever worker answers the scrape, it reports the sum over both workers'
            # files (a single worker's own count would be about half).
            counts = [healthz_count(httpx.get(server.url + "/metrics").text) for _ in range(6)]
    assert all(c >= 40 for c in counts), counts
