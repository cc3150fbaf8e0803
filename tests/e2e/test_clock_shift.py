"""``make test-future`` really moves the clocks: the test process and the server it starts
read the same wall clock, ``WEIGHTGATE_TEST_CLOCK_SHIFT_DAYS`` ahead of the kernel's (0
in the ordinary passes), so the live-server tests that pass under it pass on that day."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx
import pytest

from tests.fixtures.databases import fresh_database
from tests.fixtures.servers import live_server

pytestmark = pytest.mark.slow


def kernel_now(tmp_path: Path) -> datetime:
    """The kernel's time, which no shift of Python's clock touches: a new file's mtime."""
    probe = tmp_path / "probe"
    probe.write_bytes(b"")
    return datetime.fromtimestamp(probe.stat().st_mtime, UTC)


def test_the_test_process_and_its_server_share_the_shifted_clock(tmp_path: Path) -> None:
    shift = timedelta(days=float(os.environ.get("WEIGHTGATE_TEST_CLOCK_SHIFT_DAYS", "0")))
    with (
        fresh_database(tmp_path, label="clock") as db_url,
        live_server({"WEIGHTGATE_DATABASE_URL": db_url}, tmp=tmp_path) as server,
    ):
        served = parsedate_to_datetime(httpx.get(server.url + "/healthz").headers["date"])
    here = datetime.now(UTC)
    assert abs(here - served) < timedelta(seconds=10)
    assert abs((here - kernel_now(tmp_path)) - shift) < timedelta(seconds=10)
