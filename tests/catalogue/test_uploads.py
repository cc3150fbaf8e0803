"""The upload route on both object stores: streaming, declared hashes, limits, replace,
delete, and the freeze after publishing. "Nothing left behind" is checked in the database
(no file or object row) and in the store itself (directory walk / bucket listing)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import AuditEvent, ReleaseFile, StoredObject
from app.storage import ObjectStore
from tests.factories.catalogue import check, publish_release, sha256, signature_files
from tests.fixtures.parts import change_settings
from tests.storage.inventory import address, contents, pending_multipart

BOTH = pytest.mark.parametrize("store", ["filesystem", "s3"], indirect=True)
MODEL = "acme/atlas-7b"
FILES = f"/v1/models/{MODEL}/releases/v1/files"
MiB = 1024 * 1024


@pytest.fixture
def draft(client: TestClient, admin_headers: dict[str, str]) -> None:
    """A draft v1 with components ``weights`` and ``tokenizer`` and no files."""
    publish_release(
        client,
        admin_headers,
        components={"weights": [], "tokenizer": []},
        files={},
        publish=False,
    )


def put(
    client: TestClient,
    headers: dict[str, str],
    path: str,
    data: bytes | Iterator[bytes],
    component: str | None = "weights",
    **extra_headers: str,
) -> Any:
    params = {"component": component} if component is not None else {}
    sent = {**headers, **{k.replace("_", "-"): v for k, v in extra_headers.items()}}
    return client.put(f"{FILES}/{path}", params=params, content=data, headers=sent)


def rows(db: Session) -> tuple[int, int]:
    files = db.scalar(select(func.count()).select_from(ReleaseFile))
    objects = db.scalar(select(func.count()).select_from(StoredObject))
    return int(files or 0), int(objects or 0)


def draft_files(client: TestClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    manifest = check(client.get(f"/v1/models/{MODEL}/releases/v1/manifest", headers=headers), 200)
    return manifest["files"]  # type: ignore[no-any-return]


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    """A body without Content-Length (chunked), as a streaming client sends it."""
    for i in range(0, len(data), size):
        yield data[i : i + size]


@BOTH
@pytest.mark.usefixtures("draft")
def test_upload_hashes_server_side_and_stores_by_content(
    client: TestClient, admin_headers: dict[str, str], store: ObjectStore, db: Session
) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    body = check(put(client, admin_headers, "model-00001-of-00002.safetensors", data), 201)
    assert body == {
        "path": "model-00001-of-00002.safetensors",
        "size": len(data),
        "sha256": sha256(data),
        "component": "weights",
    }
    assert contents(store) == [address(store, sha256(data))]
    assert rows(db) == (1, 1)
    assert draft_files(client, admin_headers) == [
        {
            "path": "model-00001-of-00002.safetensors",
            "size": len(data),
            "sha256": sha256(data),
            "component": "weights",
            "tier": "internal",
        }
    ]
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "file.uploaded")).one()
    assert event.after == {
        "path": "model-00001-of-00002.safetensors",
        "sha256": sha256(data),
        "size": len(data),
        "component": "weights",
    }


@BOTH
@pytest.mark.usefixtures("draft")
def test_large_chunked_upload_crosses_multipart(
    client: TestClient, admin_headers: dict[str, str], store: ObjectStore
) -> None:
    # 11 MiB without Content-Length: above the 5 MiB multipart threshold of the test store.
    data = b"".join(sha256(str(i).encode()).encode() * 2048 for i in range(176))
    body = check(put(client, admin_headers, "big.bin", chunks(data, 300_000)), 201)
    assert body["sha256"] == sha256(data)
    assert body["size"] == len(data)
    assert contents(store) == [address(store, sha256(data))]
    assert pending_multipart(store) == []
    assert b"".join(store.iter_range(sha256(data))) == data


@BOTH
@pytest.mark.usefixtures("draft")
def test_declared_sha256_that_matches_is_accepted(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    data = b"tokenizer json"
    body = check(
        put(
            client,
            admin_headers,
            "tokenizer.json",
            data,
            component="tokenizer",
            x_content_sha256=sha256(data).upper(),  # hex case does not matter
        ),
        201,
    )
    assert body["sha256"] == sha256(data)


@BOTH
@pytest.mark.usefixtures("draft")
@pytest.mark.parametrize("size", [1000, 7 * MiB], ids=["small", "multipart"])
def test_declared_sha256_mismatch_leaves_nothing_behind(
    client: TestClient, admin_headers: dict[str, str], store: ObjectStore, db: Session, size: int
) -> None:
    data = b"\x01" * size
    declared = sha256(b"what the publisher meant to send")
    r = put(
        client, admin_headers, "model.safetensors", chunks(data, MiB), x_content_sha256=declared
    )
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["code"] == "sha256_mismatch"
    assert problem["actual_sha256"] == sha256(data)
    assert declared in problem["detail"]
    assert "nothing was stored" in problem["detail"]
    assert rows(db) == (0, 0)
    assert contents(store) == []
    assert pending_multipart(store) == []
    assert draft_files(client, admin_headers) == []


@pytest.mark.usefixtures("draft")
@pytest.mark.parametrize("value", ["abc", "g" * 64, "a" * 65, "sha256:" + "a" * 64])
def test_malformed_declared_sha256_is_refused_before_reading(
    client: TestClient, admin_headers: dict[str, str], db: Session, value: str
) -> None:
    r = put(client, admin_headers, "a.bin", b"x", x_content_sha256=value)
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_sha256_header"
    assert r.json()["detail"] == "X-Content-SHA256 must be 64 hex characters"
    assert rows(db) == (0, 0)


@BOTH
@pytest.mark.usefixtures("draft")
def test_size_limit_gives_413_and_leaves_nothing_behind(
    client: TestClient, admin_headers: dict[str, str], app: FastAPI, store: ObjectStore, db: Session
) -> None:
    change_settings(app, max_upload_bytes=6 * MiB)
    data = b"\x02" * (6 * MiB + 1)
    # Declared up front: refused before a byte is read.
    r = put(client, admin_headers, "big.bin", data)
    assert r.status_code == 413
    assert r.json()["code"] == "file_too_large"
    assert r.json()["detail"] == f"file exceeds the upload limit of {6 * MiB} bytes"
    # Streamed without a length: cut off once the limit is crossed, staging cleaned up.
    r = put(client, admin_headers, "big.bin", chunks(data, MiB))
    assert r.status_code == 413
    assert r.json()["code"] == "file_too_large"
    assert rows(db) == (0, 0)
    assert contents(store) == []
    assert pending_multipart(store) == []
    # Exactly at the limit is fine.
    check(put(client, admin_headers, "big.bin", chunks(data[:-1], MiB)), 201)


@BOTH
@pytest.mark.usefixtures("draft")
def test_replacing_a_file_in_a_draft(
    client: TestClient, admin_headers: dict[str, str], store: ObjectStore, db: Session
) -> None:
    check(put(client, admin_headers, "config.json", b'{"v": 1}'), 201)
    # Same path again: 200, new content, and it may move to another component.
    replaced = put(client, admin_headers, "config.json", b'{"v": 2}', component="tokenizer")
    assert replaced.status_code == 200
    assert replaced.json() == {
        "path": "config.json",
        "size": 8,
        "sha256": sha256(b'{"v": 2}'),
        "component": "tokenizer",
    }
    # Without ?component= a replacement keeps the file's component.
    kept = put(client, admin_headers, "config.json", b'{"v": 3}', component=None)
    assert kept.status_code == 200
    assert kept.json()["component"] == "tokenizer"
    files = draft_files(client, admin_headers)
    assert [(f["path"], f["sha256"], f["component"]) for f in files] == [
        ("config.json", sha256(b'{"v": 3}'), "tokenizer")
    ]
    event = db.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == "file.uploaded")
        .order_by(AuditEvent.id.desc())
        .limit(1)
    ).one()
    assert event.before == {"sha256": sha256(b'{"v": 2}'), "size": 8}


@pytest.mark.usefixtures("draft")
def test_new_file_needs_an_existing_component(
    client: TestClient, admin_headers: dict[str, str], db: Session
) -> None:
    r = put(client, admin_headers, "a.bin", b"x", component=None)
    assert r.status_code == 422
    assert r.json()["code"] == "component_required"
    r = put(client, admin_headers, "a.bin", b"x", component="adapters")
    assert r.status_code == 404
    assert r.json()["code"] == "component_not_found"
    assert r.json()["detail"] == "component adapters not found in v1; create it first"
    assert rows(db) == (0, 0)


@BOTH
def test_identical_files_across_releases_share_one_object(
    client: TestClient, admin_headers: dict[str, str], store: ObjectStore, db: Session
) -> None:
    shared = b"same tokenizer" * 100
    publish_release(
        client,
        admin_headers,
        files={"tokenizer.json": ("weights", shared), "w.bin": ("weights", b"v1")},
    )
    publish_release(
        client,
        admin_headers,
        version="v2",
        create=False,
        files={"tokenizer.json": ("weights", shared), "w.bin": ("weights", b"v2")},
    )
    # Each release also has its signature (app/signing): two more files and objects.
    sigs = [
        signature_files(client, admin_headers, version=v)["signatures/weights.sig"]["sha256"]
        for v in ("v1", "v2")
    ]
    assert rows(db) == (6, 5)
    assert contents(store) == sorted(
        [
            *(address(store, sha256(d)) for d in (shared, b"v1", b"v2")),
            *(address(store, h) for h in sigs),
        ]
    )


@BOTH
def test_published_release_is_frozen(
    client: TestClient, admin_headers: dict[str, str], store: ObjectStore, db: Session
) -> None:
    publish_release(client, admin_headers)
    before = contents(store)
    for r in (
        put(client, admin_headers, "extra.bin", b"new bytes"),
        put(client, admin_headers, "model.safetensors", b"changed"),
        client.delete(f"{FILES}/model.safetensors", headers=admin_headers),
        client.post(
            f"/v1/models/{MODEL}/releases/v1/components",
            json={"name": "late", "schedule": []},
            headers=admin_headers,
        ),
        client.post(f"/v1/models/{MODEL}/releases/v1/publish", headers=admin_headers),
    ):
        assert r.status_code == 409, r.text
        assert r.json()["code"] == "release_published"
        assert "is published" in r.json()["detail"]
    assert rows(db) == (2, 2)  # the file and its signature
    assert contents(store) == before


def test_publishing_an_empty_release_is_refused(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    publish_release(client, admin_headers, files={}, publish=False)
    r = client.post(f"/v1/models/{MODEL}/releases/v1/publish", headers=admin_headers)
    assert r.status_code == 409
    assert r.json()["code"] == "release_empty"


@pytest.mark.usefixtures("draft")
def test_deleting_a_draft_file(
    client: TestClient, admin_headers: dict[str, str], db: Session
) -> None:
    check(put(client, admin_headers, "a.bin", b"a"), 201)
    check(put(client, admin_headers, "b.bin", b"b"), 201)
    r = client.delete(f"{FILES}/a.bin", headers=admin_headers)
    assert r.status_code == 204
    assert [f["path"] for f in draft_files(client, admin_headers)] == ["b.bin"]
    again = client.delete(f"{FILES}/a.bin", headers=admin_headers)
    assert again.status_code == 404
    assert again.json() == {
        "type": "https://weightgate.dev/problems/file_not_found",
        "title": "Not found",
        "status": 404,
        "code": "file_not_found",
        "detail": "no file 'a.bin' in v1",
    }
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "file.deleted")).one()
    assert event.before == {"path": "a.bin", "sha256": sha256(b"a"), "size": 1}


@pytest.mark.usefixtures("draft")
def test_uploads_need_an_admin(
    client: TestClient, admin_headers: dict[str, str], db: Session, clock: Any
) -> None:
    from tests.factories.principals import make_user

    _, key = make_user(db, clock)
    anonymous = client.put(f"{FILES}/a.bin", params={"component": "weights"}, content=b"x")
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "unauthenticated"
    researcher = put(client, {"Authorization": f"Bearer {key}"}, "a.bin", b"x")
    assert researcher.status_code == 403
    assert researcher.json()["code"] == "admin_required"
    assert rows(db) == (0, 0)


def test_upload_to_unknown_model_or_release(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    r = client.put(
        "/v1/models/acme/nope/releases/v1/files/a.bin",
        params={"component": "weights"},
        content=b"x",
        headers=admin_headers,
    )
    assert r.status_code == 404
    assert r.json()["code"] == "model_not_found"
    publish_release(client, admin_headers, files={}, publish=False)
    r = client.put(
        f"/v1/models/{MODEL}/releases/v9/files/a.bin",
        params={"component": "weights"},
        content=b"x",
        headers=admin_headers,
    )
    assert r.status_code == 404
    assert r.json()["detail"] == f"release v9 of {MODEL} not found"
