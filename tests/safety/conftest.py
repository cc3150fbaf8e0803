"""The token tests' small published world (tests/tokens/world.py) serves the safety tests:
a researcher with a grant, one without, a partner, components at every tier."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.clock import FixedClock
from tests.factories.catalogue import check
from tests.tokens.world import MODEL, World, build_world


@pytest.fixture
def world(
    client: TestClient, db: Session, clock: FixedClock, admin_headers: dict[str, str]
) -> World:
    return build_world(client, db, clock, admin_headers)


def report_body(**fields: Any) -> dict[str, Any]:
    return {
        "version": "v1",
        "components": ["config"],
        "category": "security",
        "severity": "high",
        "description": "a two-line prompt gets the refusal classifier to stand down",
        "evidence": "prompt: ...\noutput: ...",
        **fields,
    }


def file_report(
    world: World, headers: dict[str, str], status: int = 201, model: str = MODEL, **fields: Any
) -> Any:
    resp = world.client.post(
        f"/v1/models/{model}/reports", json=report_body(**fields), headers=headers
    )
    return check(resp, status)
