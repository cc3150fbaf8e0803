"""Browsing the catalogue: search by id or display name under the visibility rule, and how
much of each model's latest release the caller may download now."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.catalogue.listing import openness, visible_models_page
from app.clock import FixedClock
from app.models import Grant, Model
from app.policy.principals import ANONYMOUS, Principal
from tests.factories.access import researcher
from tests.factories.catalogue import check, create_model, publish_release


def _world(client: TestClient, admin_headers: dict[str, str], clock: FixedClock) -> None:
    now = clock.now()
    past = now - timedelta(hours=1)
    publish_release(
        client,
        admin_headers,
        model="acme/atlas-7b",
        components={"config": [("open", past)], "weights": [("research", past)]},
        files={"c.json": ("config", b"{}"), "w.bin": ("weights", b"w")},
    )
    publish_release(
        client,
        admin_headers,
        model="acme/secret-100_b",  # unannounced: internal until tomorrow
        components={"weights": [("open", now + timedelta(days=1))]},
        files={"w.bin": ("weights", b"w")},
    )
    create_model(client, admin_headers, "other/Beacon", display_name="Atlas Mini")
    check(
        client.patch(
            "/v1/models/other/Beacon", json={"display_name": "ATLAS mini"}, headers=admin_headers
        ),
        200,
    )


def test_search_matches_id_or_display_name_and_never_reveals_hidden_models(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock
) -> None:
    _world(client, admin_headers, clock)
    _, headers = researcher(db, clock)

    def ids(q: str, h: dict[str, str] | None = None) -> list[str]:
        body = check(client.get("/v1/models", params={"q": q}, headers=h or headers), 200)
        return [m["id"] for m in body["items"]]

    assert ids("atlas") == ["acme/atlas-7b"]  # "ATLAS mini" has no announced release
    # Every model here is displayed as "Atlas…"; admins see them all.
    assert ids("atlas", admin_headers) == ["acme/atlas-7b", "acme/secret-100_b", "other/Beacon"]
    assert ids("secret") == []
    assert ids("secret", admin_headers) == ["acme/secret-100_b"]
    assert ids("100_") == []
    assert ids("%") == []  # a LIKE wildcard is a character like any other
    assert ids("_", admin_headers) == ["acme/secret-100_b"]
    assert ids("ACME/ATLAS") == ["acme/atlas-7b"]
    too_long = client.get("/v1/models", params={"q": "x" * 201}, headers=headers)
    assert too_long.status_code == 422


def test_openness_counts_what_the_caller_may_download_now(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock
) -> None:
    _world(client, admin_headers, clock)
    user, _ = researcher(db, clock)
    atlas = db.scalar(select(Model).where(Model.name == "atlas-7b"))
    assert atlas is not None
    db.add(Grant(user_id=user.id, model_id=atlas.id, created_at=clock.now()))
    db.flush()
    me = Principal(kind="user", id=user.id, role="researcher", name=user.email)
    for who, expected in ((ANONYMOUS, (1, 2)), (me, (2, 2))):
        items, after = visible_models_page(db, who, after=None, limit=10, now=clock.now())
        assert after is None
        assert [x.model.repo_id for x in items] == ["acme/atlas-7b"]
        got = openness(db, items, now=clock.now())[items[0].model.id]
        assert (got.downloadable, got.visible) == expected
    admin = Principal(kind="user", id=1, role="admin", name="admin")
    items, _ = visible_models_page(db, admin, after=None, limit=10, now=clock.now())
    counts = openness(db, items, now=clock.now())
    by_id = {x.model.repo_id: counts.get(x.model.id) for x in items}
    assert by_id["other/Beacon"] is None  # no release
    secret = by_id["acme/secret-100_b"]
    assert secret is not None
    assert (secret.downloadable, secret.visible) == (1, 1)  # internal: staff only, admins in
