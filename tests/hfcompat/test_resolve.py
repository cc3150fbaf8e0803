"""``/{ns}/{name}/resolve/{rev}/{path}``: Hub headers, proxy and redirect delivery, denials,
and the audit trail, on both object stores."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clock import FixedClock
from app.models import AuditEvent, QuotaCounter
from app.storage import ObjectStore
from app.storage.disposition import content_disposition
from tests.factories.catalogue import Published, publish_release, sha256
from tests.fixtures.parts import change_settings
from tests.hfcompat.conftest import CONFIG, MODEL, WEIGHTS, anonymous_view, grant

BOTH = pytest.mark.parametrize("store", ["filesystem", "s3"], indirect=True)


def resolve_url(rev: str, path: str) -> str:
    return f"/{MODEL}/resolve/{rev}/{path}"


def events(db: Session) -> list[AuditEvent]:
    db.expire_all()
    return list(
        db.scalars(
            select(AuditEvent).where(AuditEvent.action == "hf.resolve").order_by(AuditEvent.id)
        )
    )


@pytest.fixture
def proxy(app: FastAPI) -> None:
    change_settings(app, delivery_mode="proxy")


@BOTH
@pytest.mark.usefixtures("proxy")
def test_proxy_mode_serves_bytes_with_hub_headers_on_head_and_get(
    client: TestClient, mixed: Published, db: Session
) -> None:
    head = client.head(resolve_url("main", "config.json"))
    assert head.status_code == 200
    assert head.content == b""
    expected = {
        # `main` names what the caller sees now: the config only (app/hfcompat/views.py).
        "x-repo-commit": anonymous_view(mixed),
        "x-linked-etag": f'"{sha256(CONFIG)}"',
        "x-linked-size": str(len(CONFIG)),
        "etag": f'"{sha256(CONFIG)}"',
        "content-length": str(len(CONFIG)),
        "accept-ranges": "bytes",
    }
    assert {k: head.headers[k] for k in expected} == expected
    got = client.get(resolve_url(anonymous_view(mixed), "config.json"))
    assert got.status_code == 200
    assert got.content == CONFIG
    assert {k: got.headers[k] for k in expected} == expected
    # The release's own revision names all of it; its open files resolve one by one.
    whole = client.get(resolve_url(mixed.revision, "config.json"))
    assert (whole.content, whole.headers["x-repo-commit"]) == (CONFIG, mixed.revision)
    logged = events(db)
    assert [(e.data["method"], e.data["mode"], e.outcome, e.actor) for e in logged] == [
        ("HEAD", "proxy", "ok", "anonymous"),
        ("GET", "proxy", "ok", "anonymous"),
        ("GET", "proxy", "ok", "anonymous"),
    ]
    assert logged[0].target_id == f"{MODEL}@v1/config.json"


@BOTH
@pytest.mark.usefixtures("proxy")
def test_proxy_mode_resumes_with_range(
    client: TestClient,
    mixed: Published,
    db: Session,
    clock: FixedClock,
    researcher: tuple[int, dict[str, str]],
) -> None:
    user_id, headers = researcher
    grant(db, clock, user_id)
    r = client.get(
        resolve_url("v1", "model.safetensors"), headers={**headers, "Range": "bytes=1000-"}
    )
    assert r.status_code == 206
    assert r.content == WEIGHTS[1000:]
    assert r.headers["content-range"] == f"bytes 1000-{len(WEIGHTS) - 1}/{len(WEIGHTS)}"
    assert r.headers["x-linked-size"] == str(len(WEIGHTS))
    last = events(db)[-1]
    assert last.data["range"] == [1000, len(WEIGHTS) - 1]
    assert last.actor == f"user:{user_id}"
    assert last.data["tier"] == "research"


@pytest.mark.parametrize("store", ["s3"], indirect=True)
def test_redirect_mode_302_carries_every_header_and_a_short_presigned_url(
    client: TestClient, mixed: Published, db: Session, app: FastAPI
) -> None:
    change_settings(app, presign_max_seconds=120)
    r = client.get(resolve_url("main", "config.json"), follow_redirects=False)
    assert r.status_code == 302
    assert r.headers["x-repo-commit"] == anonymous_view(mixed)
    assert r.headers["x-linked-etag"] == f'"{sha256(CONFIG)}"'
    assert r.headers["x-linked-size"] == str(len(CONFIG))
    assert r.headers["cache-control"] == "no-store"
    location = r.headers["location"]
    query = parse_qs(urlparse(location).query)
    assert int(query["X-Amz-Expires"][0]) <= 120
    assert query["response-content-disposition"] == [content_disposition("config.json")]
    # The presigned URL really serves the file (moto's S3 over HTTP).
    assert httpx.get(location).content == CONFIG
    # A HEAD answers the same metadata without a URL: a presigned URL can GET, and a HEAD
    # is charged nothing. The Hub's client then GETs the resolve URL, which redirects.
    head = client.head(resolve_url("main", "config.json"), follow_redirects=False)
    assert head.status_code == 200
    assert "location" not in head.headers
    for name in ("x-repo-commit", "x-linked-etag", "x-linked-size", "etag"):
        assert head.headers[name] == r.headers[name], name
    assert head.headers["content-length"] == str(len(CONFIG))
    assert [(e.data["method"], e.data["mode"]) for e in events(db)] == [
        ("GET", "redirect"),
        ("HEAD", "redirect"),
    ]


def test_filesystem_store_serves_bytes_even_in_redirect_mode(
    client: TestClient, mixed: Published, store: ObjectStore
) -> None:
    assert store.name == "filesystem"
    r = client.get(resolve_url("main", "config.json"), follow_redirects=False)
    assert r.status_code == 200
    assert r.content == CONFIG


@BOTH
def answer(client: TestClient, method: str, rev: str, path: str) -> tuple[int, dict[str, str], str]:
    """An answer with the path it names blanked out, to compare answers for two paths."""
    r = client.request(method, resolve_url(rev, path))
    headers = {k: v.replace(path, "<path>") for k, v in r.headers.items()}
    headers.pop("x-request-id")
    headers.pop("content-length")  # the paths differ in length
    return r.status_code, headers, r.text.replace(path, "<path>")


def test_a_gated_release_answers_every_path_alike_and_the_denials_are_audited(
    client: TestClient, mixed: Published, db: Session
) -> None:
    """A path the caller may not download now answers from the release alone
    (app/disclosure.py): here weights are closed to anonymous callers, so the release is
    gated as a whole, as the Hub gates a repository. A gated shard and a missing file give
    the same answer: shards cannot be counted or named by probing."""
    for method in ("HEAD", "GET"):
        gated = answer(client, method, "main", "model.safetensors")
        assert gated == answer(client, method, "main", "model-00002-of-00002.safetensors")
        status, headers, body = gated
        assert status == 403
        assert headers["x-error-code"] == "GatedRepo"
        assert "needs an approved access request" in headers["x-error-message"]
        assert "opens to everyone at 2026-07-01T12:00:00+00:00" in headers["x-error-message"]
        assert "x-linked-size" not in headers  # an error is never served as the file
        # The message again as a warning, which the client logs whatever exception it then
        # raises (hf prints "requires approval" for GatedRepo and drops the message); one
        # topic per distinct refusal, since the client shows a topic once per process.
        topic, message = headers["x-hf-warning"].split("; ", 1)
        assert topic.startswith(f"weightgate-refused {MODEL} ")
        assert message == headers["x-error-message"]
    assert '"code":"access_grant_required"' in body
    assert [(e.outcome, e.data["code"]) for e in events(db)] == [
        ("denied", "access_grant_required")
    ] * 4


def test_missing_and_unknowable_files_are_entry_not_found(
    client: TestClient,
    admin_headers: dict[str, str],
    clock: FixedClock,
    mixed: Published,
    db: Session,
) -> None:
    # A release whose every component is open or invisible to the caller: a file of an
    # internal component "does not exist", exactly like a missing one.
    publish_release(
        client,
        admin_headers,
        model=MODEL,
        version="v2",
        create=False,
        components={
            "config": [("open", clock.now() - timedelta(hours=1))],
            "heads": [("open", clock.now() + timedelta(days=1))],
        },
        files={"config.json": ("config", b"{}"), "heads.bin": ("heads", b"h" * 10)},
    )
    for method in ("HEAD", "GET"):
        hidden = answer(client, method, "v2", "heads.bin")
        assert hidden == answer(client, method, "v2", "nope.bin")
        assert hidden[0] == 404
        assert hidden[1]["x-error-code"] == "EntryNotFound"
    admin = client.get(resolve_url("v2", "heads.bin"), headers=admin_headers)
    assert admin.status_code == 200
    assert admin.content == b"h" * 10
    assert [e.outcome for e in events(db)] == ["denied"] * 4 + ["ok"]


def test_unknown_model_and_revision_answer_with_their_codes(
    client: TestClient, mixed: Published
) -> None:
    r = client.get("/acme/ghost/resolve/main/config.json")
    assert (r.status_code, r.headers["X-Error-Code"]) == (404, "RepoNotFound")
    r = client.head(resolve_url("v5", "config.json"))
    assert (r.status_code, r.headers["X-Error-Code"]) == (404, "RevisionNotFound")


@pytest.mark.usefixtures("proxy")
def test_if_none_match_and_bad_ranges(client: TestClient, mixed: Published) -> None:
    etag = f'"{sha256(CONFIG)}"'
    r = client.get(resolve_url("main", "config.json"), headers={"If-None-Match": etag})
    assert r.status_code == 304
    assert r.headers["x-repo-commit"] == anonymous_view(mixed)
    r = client.get(resolve_url("main", "config.json"), headers={"Range": "bytes=9999-"})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{len(CONFIG)}"


@pytest.mark.usefixtures("proxy")
def test_anonymous_resolves_share_the_per_address_download_quota(
    client: TestClient, mixed: Published, app: FastAPI, db: Session
) -> None:
    change_settings(app, quota_anonymous_per_minute=2)
    for _ in range(3):
        assert client.head(resolve_url("main", "config.json")).status_code == 200  # free
    assert client.get(resolve_url("main", "config.json")).status_code == 200
    assert client.get(resolve_url("main", "config.json")).status_code == 200
    r = client.get(resolve_url("main", "config.json"))
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) >= 1
    assert r.json()["code"] == "quota_anonymous_downloads"
    assert events(db)[-1].outcome == "denied"


@pytest.fixture
def holder(
    app: FastAPI, db: Session, clock: FixedClock, researcher: tuple[int, dict[str, str]]
) -> dict[str, str]:
    """The researcher's headers: granted the model, with room for one download of the
    weights a day."""
    user_id, headers = researcher
    grant(db, clock, user_id)
    change_settings(app, quota_bytes_per_day=len(WEIGHTS))
    return headers


@pytest.mark.parametrize("store", ["s3"], indirect=True)
def test_redirects_charge_the_daily_bytes_quota_of_the_key_holder(
    client: TestClient, mixed: Published, db: Session, holder: dict[str, str]
) -> None:
    headers = holder
    url = resolve_url("main", "model.safetensors")
    assert client.get(url, headers=headers, follow_redirects=False).status_code == 302
    # HEAD hands out no bytes (and no URL); the next GET is over the day's allowance.
    assert client.head(url, headers=headers, follow_redirects=False).status_code == 200
    r = client.get(url, headers=headers, follow_redirects=False)
    assert r.status_code == 429
    assert r.json()["code"] == "quota_bytes"
    # After the 429, a HEAD still hands out nothing that could fetch the file.
    after = client.head(url, headers=headers, follow_redirects=False)
    assert "location" not in after.headers
    # The refusal records the bytes asked for, as /v1/files does.
    assert [(e.outcome, e.data.get("bytes")) for e in events(db)] == [
        ("ok", len(WEIGHTS)),
        ("ok", 0),
        ("denied", len(WEIGHTS)),
        ("ok", 0),
    ]


@pytest.mark.usefixtures("proxy")
def test_the_bytes_quota_counts_only_what_was_served(
    client: TestClient, mixed: Published, db: Session, holder: dict[str, str]
) -> None:
    """As on /v1/files: the day's counter is what was sent; a refused download asked for
    bytes but got none, so it adds nothing (it used to add what it asked for)."""
    headers = holder
    weights, config = resolve_url("main", "model.safetensors"), resolve_url("main", "config.json")
    assert client.get(weights, headers=headers).content == WEIGHTS
    for url in (weights, config):
        refused = client.get(url, headers=headers)
        assert refused.status_code == 429
        assert refused.json()["code"] == "quota_bytes"
    db.expire_all()
    assert db.scalars(select(QuotaCounter.amount)).all() == [len(WEIGHTS)]
    assert [(e.outcome, e.data["bytes"]) for e in events(db)] == [
        ("ok", len(WEIGHTS)),
        ("denied", len(WEIGHTS)),
        ("denied", len(CONFIG)),
    ]
