"""The Hub routes and the manifest answer from per-process caches (app/catalogue/cached.py):
each cached fact, changed behind the app's back and committed, is seen by the next request;
what changes by the clock is seen without any change at all."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.clock import FixedClock
from app.models import Component, Grant, Model
from tests.factories.catalogue import Published
from tests.hfcompat.conftest import MODEL, grant

INFO = f"/api/models/{MODEL}/revision/main"
MANIFEST = f"/v1/models/{MODEL}/releases/v1/manifest"
WEIGHTS = f"/{MODEL}/resolve/main/model.safetensors"


def _siblings(client: TestClient, headers: dict[str, str] | None = None) -> list[str]:
    r = client.get(INFO, headers=headers or {})
    assert r.status_code == 200, r.text
    return sorted(s["rfilename"] for s in r.json()["siblings"])


def _manifest_files(client: TestClient, headers: dict[str, str]) -> list[str]:
    r = client.get(MANIFEST, headers=headers)
    assert r.status_code == 200, r.text
    return sorted(f["path"] for f in r.json()["files"])


def test_a_grant_given_then_revoked_is_seen_at_once(
    client: TestClient,
    db: Session,
    clock: FixedClock,
    mixed: Published,
    researcher: tuple[int, dict[str, str]],
) -> None:
    uid, headers = researcher
    assert "model.safetensors" not in _siblings(client, headers)
    assert "model.safetensors" not in _manifest_files(client, headers)
    grant(db, clock, uid)
    assert "model.safetensors" in _siblings(client, headers)
    assert "model.safetensors" in _manifest_files(client, headers)
    assert client.get(WEIGHTS, headers=headers, follow_redirects=False).status_code in (200, 302)
    db.execute(update(Grant).where(Grant.user_id == uid).values(revoked_at=clock.now()))
    db.commit()
    assert "model.safetensors" not in _siblings(client, headers)
    assert "model.safetensors" not in _manifest_files(client, headers)
    assert client.get(WEIGHTS, headers=headers, follow_redirects=False).status_code in (403, 404)


def test_a_restriction_and_its_lifting_are_seen_at_once(
    client: TestClient,
    db: Session,
    clock: FixedClock,
    mixed: Published,
    researcher: tuple[int, dict[str, str]],
) -> None:
    uid, headers = researcher
    grant(db, clock, uid)
    assert client.get(WEIGHTS, headers=headers, follow_redirects=False).status_code in (200, 302)
    weights = update(Component).where(Component.name == "weights")
    db.execute(weights.values(restricted_tier="internal", restricted_at=clock.now()))
    db.commit()
    assert client.get(WEIGHTS, headers=headers, follow_redirects=False).status_code in (403, 404)
    assert "model.safetensors" not in _manifest_files(client, headers)
    db.execute(weights.values(restricted_tier=None, restricted_at=None))
    db.commit()
    assert client.get(WEIGHTS, headers=headers, follow_redirects=False).status_code in (200, 302)


def test_a_lift_by_the_clock_needs_no_change_and_a_rename_is_seen(
    client: TestClient, db: Session, clock: FixedClock, mixed: Published
) -> None:
    assert "model.safetensors" not in _siblings(client)
    clock.advance(days=31)  # the weights open to everyone by their schedule
    assert "model.safetensors" in _siblings(client)
    db.execute(update(Model).where(Model.name == "atlas-7b").values(name="atlas-7b-old"))
    db.commit()
    assert client.get(INFO).status_code == 404
