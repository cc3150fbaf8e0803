"""Fixtures for the Hugging Face routes: a researcher, grants written straight to the database,
and a release mixing an open component with a research-tier one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.clock import FixedClock
from app.hfcompat.views import view_revision
from tests.factories.catalogue import Published, publish_release
from tests.factories.principals import make_user
from tests.hfcompat import factories

MODEL = "acme/atlas-7b"
CONFIG = b'{"hidden_size": 4096}'
WEIGHTS = bytes(range(256)) * 40
NESTED = b"tokenizer bytes"


def anonymous_view(mixed: Published) -> str:
    """The commit anonymous callers see of ``mixed``: its config component only."""
    return view_revision(mixed.revision, ["config"], whole=False)


def grant(db: Session, clock: FixedClock, user_id: int, model: str = MODEL) -> None:
    factories.grant(db, clock, user_id, model)


@pytest.fixture
def researcher(db: Session, clock: FixedClock) -> tuple[int, dict[str, str]]:
    user, key = make_user(db, clock, email="ada@example.org")
    return user.id, {"Authorization": f"Bearer {key}"}


@pytest.fixture
def mixed(client: TestClient, admin_headers: dict[str, str], clock: FixedClock) -> Published:
    """config + tokenizer open since yesterday; weights research now, open in 30 days."""
    past = clock.now() - timedelta(days=1)
    return publish_release(
        client,
        admin_headers,
        model=MODEL,
        components={
            "config": [("open", past)],
            "weights": [("research", past), ("open", clock.now() + timedelta(days=30))],
        },
        files={
            "config.json": ("config", CONFIG),
            "tokenizer/tokenizer.json": ("config", NESTED),
            "model.safetensors": ("weights", WEIGHTS),
        },
    )
