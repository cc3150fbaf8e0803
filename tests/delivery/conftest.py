"""Fixtures shared by the token tests (and, through tests/delivery/conftest.py, delivery)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.clock import FixedClock
from tests.tokens.world import World, build_world


@pytest.fixture
def world(
    client: TestClient, db: Session, clock: FixedClock, admin_headers: dict[str, str]
) -> World:
    return build_world(client, db, clock, admin_headers)
