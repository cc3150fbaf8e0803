"""The access rule applied to catalogue reads: what each caller may see and download now."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.catalogue import service
from app.catalogue.visibility import visible_models, visible_release
from app.clock import FixedClock
from app.errors import NotFound
from app.models import Model, Partner, PartnerAgreement
from app.policy.principals import ANONYMOUS, Principal
from app.policy.tiers import Tier
from tests.factories.access import researcher
from tests.factories.catalogue import check, publish_release

MANIFEST = "/v1/models/acme/atlas-7b/releases/v1/manifest"


@pytest.fixture
def t0(client: TestClient, admin_headers: dict[str, str], clock: FixedClock) -> datetime:
    """secret: internal forever; weights: partner now, research +1d, open +2d; config: open."""
    now = clock.now()
    publish_release(
        client,
        admin_headers,
        components={
            "secret": [],
            "weights": [
                ("partner", now),
                ("research", now + timedelta(days=1)),
                ("open", now + timedelta(days=2)),
            ],
            "config": [("open", now - timedelta(days=1))],
        },
        files={
            "s.bin": ("secret", b"s"),
            "w.bin": ("weights", b"w"),
            "config.json": ("config", b"{}"),
        },
    )
    return now


def partner_for(db: Session, clock: FixedClock, model: str) -> Principal:
    ns, name = model.split("/")
    model_id = db.scalar(select(Model.id).where(Model.namespace == ns, Model.name == name))
    p = Partner(
        name=f"p-{model}", client_id=f"wgc_{name}", secret_hash="0" * 64, created_at=clock.now()
    )
    db.add(p)
    db.flush()
    db.add(PartnerAgreement(partner_id=p.id, model_id=model_id, created_at=clock.now()))
    db.flush()
    return Principal(kind="partner", id=p.id)


def test_anonymous_sees_open_files_and_the_next_lift_but_not_internal(
    client: TestClient, t0: datetime
) -> None:
    body = check(client.get(MANIFEST), 200)
    assert body["clearance"] == "open"
    assert [f["path"] for f in body["files"]] == ["config.json"]
    comps = {c["name"]: c for c in body["components"]}
    assert set(comps) == {"config", "weights"}  # "secret" is internal: invisible
    assert comps["weights"]["tier"] == "partner"
    assert comps["weights"]["downloadable"] is False
    assert comps["weights"]["next"]["tier"] == "research"
    assert comps["weights"]["opens_to_you_at"] is not None
    assert "s.bin" not in str(body)


def test_admins_see_everything(
    client: TestClient, admin_headers: dict[str, str], t0: datetime
) -> None:
    body = check(client.get(MANIFEST, headers=admin_headers), 200)
    assert body["clearance"] == "internal"
    assert [f["path"] for f in body["files"]] == ["config.json", "s.bin", "w.bin"]


def test_partner_under_agreement_sees_partner_files(
    client: TestClient, db: Session, clock: FixedClock, t0: datetime
) -> None:
    partner = partner_for(db, clock, "acme/atlas-7b")
    m = service.manifest(
        db, principal=partner, namespace="acme", name="atlas-7b", version="v1", now=clock.now()
    )
    assert m.clearance == Tier.PARTNER
    assert [f.path for f in m.files] == ["config.json", "w.bin"]
    assert {c.name for c in m.components} == {"config", "weights"}
    # One microsecond before the partner stage, nothing but config.
    early = service.manifest(
        db,
        principal=partner,
        namespace="acme",
        name="atlas-7b",
        version="v1",
        now=t0 - timedelta(microseconds=1),
    )
    assert [f.path for f in early.files] == ["config.json"]


def test_researcher_without_grant_waits_for_open(
    client: TestClient, db: Session, clock: FixedClock, t0: datetime
) -> None:
    _, headers = researcher(db, clock)
    clock.set(t0 + timedelta(days=1))
    assert [f["path"] for f in check(client.get(MANIFEST, headers=headers), 200)["files"]] == [
        "config.json"
    ]
    clock.set(t0 + timedelta(days=2) - timedelta(microseconds=1))
    assert [f["path"] for f in check(client.get(MANIFEST, headers=headers), 200)["files"]] == [
        "config.json"
    ]
    clock.set(t0 + timedelta(days=2))
    assert [f["path"] for f in check(client.get(MANIFEST, headers=headers), 200)["files"]] == [
        "config.json",
        "w.bin",
    ]


def test_manifest_tells_callers_without_a_grant_what_one_would_open(
    client: TestClient,
    admin_headers: dict[str, str],
    db: Session,
    clock: FixedClock,
    t0: datetime,
) -> None:
    """What ``weightgate ls`` shows before ``request-access``: weights open to approved
    researchers at +1d (a day before everyone), config already open."""
    _, headers = researcher(db, clock)
    for who in ({}, headers):
        comps = {c["name"]: c for c in check(client.get(MANIFEST, headers=who), 200)["components"]}
        assert comps["weights"]["with_grant"] == {
            "downloadable": False,
            "opens_at": (t0 + timedelta(days=1)).isoformat().replace("+00:00", "Z"),
        }
        assert comps["weights"]["opens_to_you_at"] == (t0 + timedelta(days=2)).isoformat().replace(
            "+00:00", "Z"
        )
        assert comps["config"]["with_grant"] == {"downloadable": True, "opens_at": None}
    clock.set(t0 + timedelta(days=1))
    comps = {c["name"]: c for c in check(client.get(MANIFEST, headers=headers), 200)["components"]}
    assert comps["weights"]["with_grant"] == {"downloadable": True, "opens_at": None}
    # A hold freezes it: nothing scheduled would open it to a grant holder.
    clock.set(t0)
    check(
        client.post(
            "/v1/models/acme/atlas-7b/releases/v1/components/weights/schedule/hold",
            json={"reason": "eval"},
            headers=admin_headers,
        ),
        200,
    )
    comps = {c["name"]: c for c in check(client.get(MANIFEST, headers=headers), 200)["components"]}
    assert comps["weights"]["with_grant"] == {"downloadable": False, "opens_at": None}
    # Callers whose clearance is above open get no outlook: a grant changes nothing for them.
    admin = check(client.get(MANIFEST, headers=admin_headers), 200)["components"]
    assert all(c["with_grant"] is None for c in admin)


def test_unannounced_models_answer_like_unknown_ones(
    client: TestClient, admin_headers: dict[str, str], clock: FixedClock
) -> None:
    publish_release(
        client,
        admin_headers,
        model="acme/hidden",
        components={"weights": [("partner", clock.now() + timedelta(days=1))]},
    )
    for path in ("", "/releases", "/releases/v1", "/releases/v1/manifest"):
        hidden = client.get(f"/v1/models/acme/hidden{path}")
        unknown = client.get(f"/v1/models/acme/hiddem{path}")
        assert hidden.status_code == unknown.status_code == 404, path
        assert hidden.json()["code"] == unknown.json()["code"] == "model_not_found"
        assert hidden.json()["detail"].replace("hidden", "X") == unknown.json()["detail"].replace(
            "hiddem", "X"
        )
    listed = check(client.get("/v1/models"), 200)
    assert "acme/hidden" not in [m["id"] for m in listed["items"]]
    assert "acme/hidden" in [
        m["id"] for m in check(client.get("/v1/models", headers=admin_headers), 200)["items"]
    ]


def test_unannounced_releases_answer_like_unknown_ones(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock, t0: datetime
) -> None:
    publish_release(
        client,
        admin_headers,
        version="v2",
        create=False,
        components={"weights": [("open", t0 + timedelta(days=10))]},
        files={"w2.bin": ("weights", b"w2")},
    )
    model = db.scalar(select(Model).where(Model.name == "atlas-7b"))
    assert model is not None
    now = clock.now()
    with pytest.raises(NotFound) as hidden:
        visible_release(db, ANONYMOUS, model, "v2", now=now)
    with pytest.raises(NotFound) as unknown:
        visible_release(db, ANONYMOUS, model, "v3", now=now)
    assert hidden.value.code == unknown.value.code == "release_not_found"
    # "main" is the latest release the caller may know about.
    assert visible_release(db, ANONYMOUS, model, "main", now=now).version == "v1"
    admin = Principal(kind="user", id=1, role="admin")
    assert visible_release(db, admin, model, "main", now=now).version == "v2"
    later = t0 + timedelta(days=10)
    assert visible_release(db, ANONYMOUS, model, "main", now=later).version == "v2"
    # The same over HTTP.
    for path in ("/releases/v2", "/releases/v2/manifest"):
        hidden_resp = client.get(f"/v1/models/acme/atlas-7b{path}")
        unknown_resp = client.get(f"/v1/models/acme/atlas-7b{path.replace('v2', 'v3')}")
        assert hidden_resp.status_code == unknown_resp.status_code == 404
        assert hidden_resp.json()["detail"].replace("v2", "X") == unknown_resp.json()[
            "detail"
        ].replace("v3", "X")
    listed = check(client.get("/v1/models/acme/atlas-7b/releases"), 200)
    assert [r["version"] for r in listed["items"]] == ["v1"]
    # Nor does the model's latest_version give v2 away.
    assert check(client.get("/v1/models/acme/atlas-7b"), 200)["latest_version"] == "v1"
    public = check(client.get("/v1/models"), 200)["items"]
    assert [(m["id"], m["latest_version"]) for m in public] == [("acme/atlas-7b", "v1")]
    staff_model = check(client.get("/v1/models/acme/atlas-7b", headers=admin_headers), 200)
    assert staff_model["latest_version"] == "v2"
    everything = check(client.get("/v1/models/acme/atlas-7b/releases", headers=admin_headers), 200)
    assert [r["version"] for r in everything["items"]] == ["v1", "v2"]
    main = check(client.get("/v1/models/acme/atlas-7b/releases/main/manifest"), 200)
    assert main["version"] == "v1"
    staff = check(
        client.get("/v1/models/acme/atlas-7b/releases/v2/manifest", headers=admin_headers), 200
    )
    assert staff["version"] == "v2"
    # A token request without a version takes the latest release the caller may know about.
    _, headers = researcher(db, clock)
    token = check(
        client.post(
            "/v1/tokens", json={"model": "acme/atlas-7b", "components": ["config"]}, headers=headers
        ),
        201,
    )
    assert [f["path"] for f in token["files"]] == ["config.json"]
    clock.set(later)
    # Once v2 is announced, "main" is v2 and only v2: its components, its files.
    main = check(client.get("/v1/models/acme/atlas-7b/releases/main/manifest"), 200)
    assert main["version"] == "v2"
    assert [c["name"] for c in main["components"]] == ["weights"]
    assert [f["path"] for f in main["files"]] == ["w2.bin"]
    token = check(client.post("/v1/tokens", json={"model": "acme/atlas-7b"}, headers=headers), 201)
    assert token["scope"]["version"] == "v2"
    assert token["scope"]["components"] == ["weights"]
    assert [f["path"] for f in token["files"]] == ["w2.bin"]


def test_visible_models_batches_clearance(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock
) -> None:
    later = clock.now() + timedelta(days=1)
    for name in ("a", "b", "c"):
        publish_release(
            client,
            admin_headers,
            model=f"acme/{name}",
            components={"weights": [("partner", later)]},
        )
    publish_release(
        client, admin_headers, model="acme/d", components={"weights": [("open", clock.now())]}
    )
    models = list(db.scalars(select(Model).order_by(Model.id)))
    partner = partner_for(db, clock, "acme/b")
    seen = visible_models(db, partner, models, now=clock.now())
    by_name = {m.name: seen.get(m.id) for m in models}
    assert by_name == {"a": None, "b": Tier.PARTNER, "c": None, "d": Tier.OPEN}
    assert visible_models(db, ANONYMOUS, models, now=clock.now()) == {models[3].id: Tier.OPEN}
