"""Release keys (generated, required in production, distinct from token keys, rotated without
breaking old signatures) and revocation (manifest, published keys, audit, webhook)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from model_signing import verifying
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clock import FixedClock
from app.main import create_app
from app.models import AuditEvent, ReleaseFile, WebhookDelivery, WebhookSubscription
from app.settings import Settings
from app.signing.keys import rotate
from app.signing.loading import load_release_keys
from app.storage import ObjectStore
from app.tokens.keys import KeyConfigError, load_key_set, private_pem
from tests.factories.catalogue import check, publish_release
from tests.signing.helpers import materialise, release_keys, write_public_key

MANIFEST = "/v1/models/acme/atlas-7b/releases/{v}/manifest"


def verify_upstream(root: Path, signature: Path, public_key: Path) -> None:
    """Upstream model_signing's verifier, in-process (the live tests run its CLI)."""
    config = verifying.Config()  # type: ignore[no-untyped-call]
    config.use_elliptic_key_verifier(public_key=public_key).verify(root, signature)


def test_rotation_keeps_earlier_releases_verifiable(
    client: TestClient,
    admin_headers: dict[str, str],
    store: ObjectStore,
    settings: Settings,
    clock: FixedClock,
    tmp_path: Path,
) -> None:
    publish_release(client, admin_headers, files={"w.bin": ("weights", b"one")})
    clock.advance(days=1)
    new, keys = rotate(settings, now=clock.now())
    assert len(keys) == 2
    publish_release(
        client, admin_headers, version="v2", create=False, files={"w.bin": ("weights", b"two")}
    )
    doc = release_keys(client)
    old, current = doc["keys"]
    assert current["key_id"] == new.key_id
    assert current["not_before"] == clock.now().isoformat().replace("+00:00", "Z")
    assert old["not_after"] == current["not_before"]  # it signed until its successor began
    assert current["not_after"] is None
    for version, key in (("v1", old), ("v2", current)):
        manifest = check(client.get(MANIFEST.format(v=version), headers=admin_headers), 200)
        assert manifest["signatures"][0]["key_id"] == key["key_id"]
        root = materialise(store, manifest, tmp_path / version)
        pub = write_public_key(doc, key["key_id"], tmp_path / f"{version}.pub")
        verify_upstream(root, root / "signatures/weights.sig", pub)
    # And the old signature does not verify with the new key: keys are not interchangeable.
    wrong = write_public_key(doc, current["key_id"], tmp_path / "wrong.pub")
    with pytest.raises(ValueError, match="Key mismatch"):
        verify_upstream(tmp_path / "v1", tmp_path / "v1/signatures/weights.sig", wrong)


def test_keys_are_generated_in_development_and_required_in_production(tmp_path: Path) -> None:
    dev = Settings(environment="development", data_dir=tmp_path / "dev", _env_file=None)
    now = datetime.now(UTC)
    generated = load_release_keys(dev, now=now)
    assert len(generated.listed()) == 1
    assert generated.signing_key(now).signer is not None
    prod = Settings(environment="production", data_dir=tmp_path / "prod", _env_file=None)
    with pytest.raises(KeyConfigError, match="no release-signing key"):
        load_release_keys(prod, now=now)
    assert not (tmp_path / "prod/release-keys").exists()


def test_a_token_key_cannot_sign_releases(
    settings: Settings, clock: FixedClock, store: ObjectStore, engine: object, tmp_path: Path
) -> None:
    token_keys = load_key_set(settings, now=clock.now())
    pem = private_pem(token_keys.signing_key(clock.now()).private).decode()
    same = settings.model_copy(update={"release_signing_key_pem": pem})
    with pytest.raises(KeyConfigError, match="is also a token-signing key"):
        create_app(same, clock=clock, store=store, engine=engine, run_background=False)


def test_uploads_under_reserved_paths_are_refused(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    publish_release(client, admin_headers, publish=False)
    for path in ("signatures/weights.sig", ".weightgate/download.json", ".cache/huggingface/x"):
        r = client.put(
            f"/v1/models/acme/atlas-7b/releases/v1/files/{path}",
            params={"component": "weights"},
            content=b"forged",
            headers=admin_headers,
        )
        assert r.status_code == 422, path
        assert r.json()["code"] == "reserved_path"
        assert "reserved" in r.json()["detail"]


def test_a_draft_holding_reserved_paths_is_refused_at_publish_until_they_are_deleted(
    client: TestClient, admin_headers: dict[str, str], db: Session
) -> None:
    """A draft filled before release signing existed may hold a file where signatures go:
    publish says which, changes nothing, and works once the file is deleted."""
    publish_release(client, admin_headers, publish=False)
    base = "/v1/models/acme/atlas-7b/releases/v1"
    legacy = db.scalars(select(ReleaseFile)).one()
    legacy.path = "signatures/weights.sig"  # as an upload before #22 could have named it
    db.commit()
    check(
        client.put(
            f"{base}/files/model.safetensors",
            params={"component": "weights"},
            content=b"weights",
            headers=admin_headers,
        ),
        201,
    )
    r = client.post(f"{base}/publish", headers=admin_headers)
    assert r.status_code == 409
    assert r.json()["code"] == "reserved_path"
    assert "signatures/weights.sig" in r.json()["detail"]
    assert check(client.get(base, headers=admin_headers), 200)["status"] == "draft"
    deleted = client.delete(f"{base}/files/signatures/weights.sig", headers=admin_headers)
    assert deleted.status_code == 204
    published = check(client.post(f"{base}/publish", headers=admin_headers), 200)
    assert published["version"] == "v1"
    assert check(client.get(base, headers=admin_headers), 200)["status"] == "published"
    files = check(client.get(f"{base}/manifest", headers=admin_headers), 200)["files"]
    assert [f["path"] for f in files] == ["model.safetensors", "signatures/weights.sig"]


def test_revocation_is_shown_announced_and_audited(
    app: FastAPI, client: TestClient, admin_headers: dict[str, str], db: Session, clock: FixedClock
) -> None:
    pub = publish_release(
        client,
        admin_headers,
        components={"weights": [("open", clock.now() - timedelta(days=1))]},
    )
    db.add(
        WebhookSubscription(
            url="https://hooks.example/wg",
            events=["release.signature_revoked"],
            secret="s" * 32,
            created_at=clock.now(),
        )
    )
    db.commit()
    url = "/v1/models/acme/atlas-7b/releases/v1/signatures/revoke"
    assert client.post(url, json={"reason": "x"}).status_code == 401
    assert client.post(url, json={}, headers=admin_headers).status_code == 422
    done = check(
        client.post(url, json={"reason": "key copied off a laptop"}, headers=admin_headers), 200
    )
    assert done["reason"] == "key copied off a laptop"
    assert done["revision"] == pub.revision
    again = client.post(url, json={"reason": "twice"}, headers=admin_headers)
    assert (again.status_code, again.json()["code"]) == (409, "signature_already_revoked")

    manifest = check(client.get(MANIFEST.format(v="v1")), 200)  # anonymous: open component
    assert manifest["signature_status"] == "revoked"
    sig = manifest["signatures"][0]
    assert sig["revoke_reason"] == "key copied off a laptop"
    assert sig["revoked_at"] is not None
    revoked = release_keys(client)["revoked"]
    assert [(r["model"], r["version"], r["reason"]) for r in revoked] == [
        ("acme/atlas-7b", "v1", "key copied off a laptop")
    ]
    assert revoked[0]["key_ids"] == [sig["key_id"]]
    event = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "release.signature_revoked")
    ).one()
    assert event.target_id == "acme/atlas-7b@v1"
    delivery = db.scalars(select(WebhookDelivery)).one()
    assert delivery.event_type == "release.signature_revoked"
    assert delivery.payload["data"]["reason"] == "key copied off a laptop"

    draft = publish_release(client, admin_headers, version="v2", create=False, publish=False)
    assert draft.revision == ""
    unsigned = client.post(
        "/v1/models/acme/atlas-7b/releases/v2/signatures/revoke",
        json={"reason": "nothing to revoke"},
        headers=admin_headers,
    )
    assert (unsigned.status_code, unsigned.json()["code"]) == (409, "release_unsigned")
    assert check(client.get(MANIFEST.format(v="v2"), headers=admin_headers), 200)[
        "signature_status"
    ] == ("unsigned")
