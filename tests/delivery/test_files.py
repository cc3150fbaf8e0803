"""GET|HEAD /v1/files: proxy and redirect delivery, Range, re-checks, uses, quotas, audit."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.models import AuditEvent, Component, Grant, IssuedToken, User
from app.storage.disposition import content_disposition
from tests.fixtures.parts import app_parts, change_settings
from tests.tokens.world import World, bearer

URL = "/v1/files/acme/atlas-7b/v1/"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def use_settings(world: World, **changes: Any) -> None:
    change_settings(world.client.app, **changes)


def events(db: Session, action: str | None = None) -> list[AuditEvent]:
    q = select(AuditEvent).order_by(AuditEvent.id)
    if action is not None:
        q = q.where(AuditEvent.action == action)
    return list(db.scalars(q).all())


def test_proxy_delivers_exact_bytes_with_token_in_query_or_header(
    world: World, db: Session
) -> None:
    token = str(world.token(world.researcher, components=["config"])["token"])
    data = world.files["config.json"]
    resp = world.client.get(URL + "config.json", params={"token": token})
    assert resp.status_code == 200
    assert resp.content == data
    assert resp.headers["etag"] == f'"{sha(data)}"'
    assert resp.headers["content-length"] == str(len(data))
    assert resp.headers["accept-ranges"] == "bytes"
    assert resp.headers["content-disposition"].startswith('attachment; filename="config.json"')
    again = world.client.get(URL + "config.json", headers=bearer(token))
    assert again.content == data
    (event, second) = events(db, "download.redeemed")
    assert event.actor == f"user:{world.researcher_id}"
    assert event.outcome == "ok"
    assert event.client_addr == "testclient"
    assert event.target_id == "acme/atlas-7b@v1/config.json"
    assert event.data["jti"] == payload_jti(token)
    assert event.data["bytes"] == len(data)
    assert (event.data["mode"], event.data["status"], event.data["uses"]) == ("proxy", 200, 1)
    assert second.data["uses"] == 2


def payload_jti(token: str) -> str:
    from tests.tokens.forge import payload_of

    return str(payload_of(token)["jti"])


@pytest.mark.parametrize("store", ["filesystem", "s3"], indirect=True)
def test_range_through_proxy_returns_exactly_the_slice(world: World) -> None:
    use_settings(world, delivery_mode="proxy")
    token = str(world.token(world.partner(), components=["weights"])["token"])
    data = world.files["model.safetensors"]
    for header, start, end in (("bytes=100-1099", 100, 1099), ("bytes=-10", 2990, 2999)):
        resp = world.client.get(
            URL + "model.safetensors", params={"token": token}, headers={"Range": header}
        )
        assert resp.status_code == 206
        assert resp.content == data[start : end + 1]
        assert resp.headers["content-range"] == f"bytes {start}-{end}/{len(data)}"
        assert resp.headers["content-length"] == str(end - start + 1)
    unsatisfiable = world.client.get(
        URL + "model.safetensors", params={"token": token}, headers={"Range": "bytes=5000-"}
    )
    assert unsatisfiable.status_code == 416
    assert unsatisfiable.headers["content-range"] == f"bytes */{len(data)}"


def test_head_and_not_modified_take_no_use(world: World, db: Session) -> None:
    out = world.token(world.researcher, components=["config"], max_uses=1)
    token, data = str(out["token"]), world.files["config.json"]
    head = world.client.head(URL + "config.json", params={"token": token})
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(data))
    cached = world.client.get(
        URL + "config.json", params={"token": token}, headers={"If-None-Match": f'"{sha(data)}"'}
    )
    assert cached.status_code == 304
    row = db.get(IssuedToken, str(out["jti"]))
    db.refresh(row)
    assert row is not None
    assert row.uses == 0
    assert world.client.get(URL + "config.json", params={"token": token}).content == data


@pytest.mark.parametrize("store", ["s3"], indirect=True)
def test_redirect_to_presigned_url_bounded_by_token_and_fetchable(
    world: World, s3_endpoint: str
) -> None:
    token = str(world.token(world.partner(), components=["weights"], ttl_seconds=120)["token"])
    world.clock.advance(30)
    resp = world.client.get(
        URL + "model.safetensors", params={"token": token}, follow_redirects=False
    )
    assert resp.status_code == 302
    assert resp.headers["cache-control"] == "no-store"
    location = resp.headers["location"]
    assert location.startswith(s3_endpoint)
    query = parse_qs(urlsplit(location).query)
    # The token has 90 s left: the URL may not outlive it (and never lives past 5 min).
    assert query["X-Amz-Expires"] == ["90"]
    assert query["response-content-disposition"] == [content_disposition("model.safetensors")]
    assert location not in resp.text
    fetched = httpx.get(location)
    assert fetched.status_code == 200
    assert sha(fetched.content) == sha(world.files["model.safetensors"])
    assert fetched.headers["content-disposition"] == content_disposition("model.safetensors")


@pytest.mark.parametrize("store", ["s3"], indirect=True)
def test_presigned_url_lives_at_most_the_configured_cap(world: World) -> None:
    use_settings(world, presign_max_seconds=3600)
    token = str(world.token(world.partner(), components=["weights"], ttl_seconds=7200)["token"])
    resp = world.client.get(
        URL + "model.safetensors", params={"token": token}, follow_redirects=False
    )
    assert parse_qs(urlsplit(resp.headers["location"]).query)["X-Amz-Expires"] == ["300"]
    use_settings(world, presign_max_seconds=60)
    resp = world.client.get(
        URL + "model.safetensors", params={"token": token}, follow_redirects=False
    )
    assert parse_qs(urlsplit(resp.headers["location"]).query)["X-Amz-Expires"] == ["60"]


def test_filesystem_store_is_always_proxied(world: World) -> None:
    assert app_parts(world.client.app).settings.delivery_mode == "redirect"
    token = str(world.token(world.researcher, components=["config"])["token"])
    resp = world.client.get(URL + "config.json", params={"token": token}, follow_redirects=False)
    assert resp.status_code == 200
    assert resp.content == world.files["config.json"]


def test_open_components_download_without_a_token(world: World, db: Session) -> None:
    resp = world.client.get(URL + "tokenizer.json")
    assert resp.status_code == 200
    assert resp.content == world.files["tokenizer.json"]
    (event,) = events(db, "download.anonymous")
    assert (event.actor, event.client_addr, event.data["bytes"]) == (
        "anonymous",
        "testclient",
        len(world.files["tokenizer.json"]),
    )
    # Without a token, a file not open to everyone answers exactly like a missing one
    # (research, internal, nonexistent): its path is not anonymous callers' to know.
    bodies = []
    for path in ("config.json", "classifier.bin", "nope.bin"):
        resp = world.client.get(URL + path)
        assert (resp.status_code, resp.json()["code"]) == (404, "file_not_found")
        assert "need a download token (POST /v1/tokens)" in resp.json()["detail"]
        bodies.append(resp.json()["detail"].replace(path, "<path>"))
        assert "www-authenticate" not in resp.headers
    assert len(set(bodies)) == 1
    assert world.client.get("/v1/files/acme/atlas-7b/v9/tokenizer.json").status_code == 404
    assert world.client.get("/v1/files/acme/nope/v1/tokenizer.json").status_code == 404


def test_anonymous_downloads_are_limited_per_address(world: World, db: Session) -> None:
    use_settings(world, quota_anonymous_per_minute=2)
    world.clock.set(datetime(2026, 6, 1, 12, 0, 15, tzinfo=UTC))
    assert world.client.get(URL + "tokenizer.json").status_code == 200
    assert world.client.head(URL + "tokenizer.json").status_code == 200  # HEAD is free
    assert world.client.get(URL + "tokenizer.json").status_code == 200
    resp = world.client.get(URL + "tokenizer.json")
    assert resp.status_code == 429
    assert resp.headers["retry-after"] == "45"
    assert resp.json()["code"] == "quota_anonymous_downloads"
    world.clock.advance(45)
    assert world.client.get(URL + "tokenizer.json").status_code == 200
    (denied,) = events(db, "download.denied")
    assert denied.data["code"] == "quota_anonymous_downloads"


def test_bytes_per_day_quota(world: World) -> None:
    use_settings(world, quota_bytes_per_day=4000)
    token = str(world.token(world.partner(), components=["weights"])["token"])
    url = URL + "model.safetensors"
    assert world.client.get(url, params={"token": token}).status_code == 200  # 3000
    assert world.client.get(url, params={"token": token}).status_code == 200  # crosses: served
    resp = world.client.get(url, params={"token": token})
    assert resp.status_code == 429
    assert resp.json()["code"] == "quota_bytes"
    # Until the next UTC midnight.
    assert resp.headers["retry-after"] == str(12 * 3600)


def test_max_uses_counts_files_not_range_continuations(world: World, db: Session) -> None:
    use_settings(world, delivery_mode="proxy")
    out = world.token(world.researcher, max_uses=2)
    token = str(out["token"])
    config = URL + "config.json"
    assert world.client.get(config, params={"token": token}).status_code == 200  # use 1
    # A resumed download of the same file does not take another use.
    part = world.client.get(config, params={"token": token}, headers={"Range": "bytes=5-"})
    assert part.status_code == 206
    assert part.content == world.files["config.json"][5:]
    assert world.client.get(URL + "tokenizer.json", params={"token": token}).status_code == 200
    # Both uses taken: a new full download is refused, a resume within the file's
    # allowance (its size per use taken on it) still works.
    resp = world.client.get(config, params={"token": token})
    assert (resp.status_code, resp.json()["code"]) == (401, "token_uses_exhausted")
    tail = world.client.get(config, params={"token": token}, headers={"Range": "bytes=12-"})
    assert tail.status_code == 206
    row = db.get(IssuedToken, str(out["jti"]))
    db.refresh(row)
    assert row is not None
    assert (row.uses, row.max_uses) == (2, 2)
    redeemed = events(db, "download.redeemed")
    assert [e.data.get("continuation", False) for e in redeemed] == [False, True, False, True]


def test_resumes_are_bounded_by_the_files_size_per_use(world: World, db: Session) -> None:
    """A one-use token shared with others: ``Range: bytes=0-`` used to serve the whole file
    again and again while the token read ``used_up``."""
    use_settings(world, delivery_mode="proxy")
    data = world.files["tokenizer.json"]
    size = len(data)
    out = world.token(world.researcher, components=["tokenizer"], max_uses=1)
    token, url = str(out["token"]), URL + "tokenizer.json"

    def fetch(range_: str | None = None) -> tuple[int, str]:
        headers = {"Range": range_} if range_ else {}
        r = world.client.get(url, params={"token": token}, headers=headers)
        return r.status_code, r.json()["code"] if r.status_code >= 400 else str(len(r.content))

    # The download, interrupted twice and resumed: no use taken by the resumes.
    assert fetch() == (200, str(size))
    assert fetch(f"bytes={size // 3}-") == (206, str(size - size // 3))
    assert fetch(f"bytes={2 * size // 3}-") == (206, str(size - 2 * size // 3))
    # Resumes have handed out size // 3 + size - 2 * (size // 3) ~ one copy's worth: the
    # next whole-file "resume" is past the file's allowance, and the one use is taken.
    assert fetch("bytes=0-") == (401, "token_uses_exhausted")
    assert fetch("bytes=0-") == (401, "token_uses_exhausted")
    assert fetch() == (401, "token_uses_exhausted")
    row = db.get(IssuedToken, str(out["jti"]))
    db.refresh(row)
    assert row is not None
    assert row.uses == 1
    served = sum(
        int(e.data["bytes"])
        for e in events(db, "download.redeemed")
        if e.data["path"] == "tokenizer.json"
    )
    assert served <= 2 * size  # the download and at most one copy's worth of resumes


def test_access_is_rechecked_at_every_redemption(world: World, db: Session) -> None:
    token = str(world.token(world.researcher, components=["config"])["token"])
    assert world.client.get(URL + "config.json", params={"token": token}).status_code == 200
    # Grant revoked without touching the token row: the re-check alone refuses it.
    db.execute(
        update(Grant)
        .where(Grant.user_id == world.researcher_id)
        .values(revoked_at=world.clock.now())
    )
    db.commit()
    resp = world.client.get(URL + "config.json", params={"token": token})
    assert (resp.status_code, resp.json()["code"]) == (403, "access_grant_required")
    db.execute(update(Grant).values(revoked_at=None))
    db.commit()
    assert world.client.get(URL + "config.json", params={"token": token}).status_code == 200
    db.execute(
        update(Component).where(Component.name == "config").values(restricted_tier="partner")
    )
    db.commit()
    resp = world.client.get(URL + "config.json", params={"token": token})
    body = resp.json()
    # Nothing scheduled opens it again: not "embargoed" (which always comes with its date).
    assert (resp.status_code, body["code"]) == (403, "not_open_to_you")
    assert "until" not in body
    db.execute(update(Component).values(restricted_tier=None))
    db.execute(
        update(User).where(User.id == world.researcher_id).values(disabled_at=world.clock.now())
    )
    db.commit()
    resp = world.client.get(URL + "config.json", params={"token": token})
    assert (resp.status_code, resp.json()["code"]) == (401, "token_principal_disabled")


def test_token_tier_is_a_ceiling_even_if_clearance_grows(world: World, db: Session) -> None:
    # Issued as a plain researcher (research tier); promoted to admin later.
    token = str(world.token(world.researcher, components=["config"])["token"])
    db.execute(update(User).where(User.id == world.researcher_id).values(role="admin"))
    db.commit()
    assert world.client.get(URL + "config.json", params={"token": token}).status_code == 200


def test_embargo_lift_is_seen_at_its_second(world: World) -> None:
    partner_token = str(
        world.token(world.partner(), components=["weights"], ttl_seconds=3600)["token"]
    )
    assert (
        world.client.get(URL + "model.safetensors", params={"token": partner_token}).status_code
        == 200
    )
    # Researchers: embargoed until T0+10d, then downloadable at that exact second.
    resp = world.client.post(
        "/v1/tokens",
        json={"model": "acme/atlas-7b", "components": ["weights"]},
        headers=world.researcher,
    )
    assert resp.json()["until"] == "2026-06-11T12:00:00+00:00"
    world.clock.advance(timedelta(days=10).total_seconds() - 1)
    assert (
        world.client.post(
            "/v1/tokens",
            json={"model": "acme/atlas-7b", "components": ["weights"]},
            headers=world.researcher,
        ).status_code
        == 403
    )
    world.clock.advance(1)
    token = str(world.token(world.researcher, components=["weights"])["token"])
    assert world.client.get(URL + "model.safetensors", params={"token": token}).status_code == 200


def test_token_and_request_shape_errors(world: World) -> None:
    token = str(world.token(world.researcher, components=["config"])["token"])
    other = str(world.token(world.researcher, components=["config"])["token"])
    resp = world.client.get(URL + "config.json", params={"token": token}, headers=bearer(other))
    assert (resp.status_code, resp.json()["code"]) == (400, "ambiguous_token")
    resp = world.client.get(URL + "config.json", params=[("token", token), ("token", token)])
    assert resp.json()["code"] == "ambiguous_token"
    resp = world.client.get(URL + "config.json", headers={"Authorization": "Basic abc"})
    assert resp.json()["code"] == "malformed_authorization"
    api_key = world.researcher["Authorization"].split()[1]
    resp = world.client.get(URL + "config.json", headers=bearer(api_key))
    assert (resp.status_code, resp.json()["code"]) == (401, "token_wrong_type")
    assert api_key not in resp.text
    resp = world.client.get(URL + "a/%2E%2E/config.json", params={"token": token})
    assert (resp.status_code, resp.json()["code"]) == (422, "invalid_path")


def test_async_commit_option_changes_only_the_commit(
    world: World, engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import event

    from app.delivery import pg_batch

    seen: list[str] = []
    asked: list[bool] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    real_read = pg_batch.read

    def read(*args: Any, **kwargs: Any) -> Any:  # PostgreSQL's batches bypass the engine
        asked.append(kwargs["async_commit"])
        return real_read(*args, **kwargs)

    monkeypatch.setattr(pg_batch, "read", read)
    use_settings(world, delivery_async_commit=True)
    token = str(world.token(world.researcher, components=["config"])["token"])
    event.listen(engine, "before_cursor_execute", record)
    try:
        resp = world.client.get(URL + "config.json", params={"token": token})
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert resp.content == world.files["config.json"]
    # PostgreSQL: the batch's read sets it for its transaction (tests/delivery/test_pg_batch.py
    # checks that it does); SQLite has no such thing, and nothing tries.
    assert asked == ([True] if engine.dialect.name == "postgresql" else [])
    assert not any("synchronous_commit" in s for s in seen)


@pytest.mark.parametrize("store", ["s3"], indirect=True)
def test_redirect_mode_answers_head_and_conditional_requests_itself(world: World) -> None:
    # A HEAD cannot follow a URL presigned for GET, and a 304 needs no round trip to S3.
    token = str(world.token(world.partner(), components=["weights"])["token"])
    data = world.files["model.safetensors"]
    head = world.client.head(URL + "model.safetensors", params={"token": token})
    assert head.status_code == 200
    assert "location" not in head.headers
    assert head.headers["content-length"] == str(len(data))
    assert head.headers["etag"] == f'"{sha(data)}"'
    cached = world.client.get(
        URL + "model.safetensors",
        params={"token": token},
        headers={"If-None-Match": f'"{sha(data)}"'},
        follow_redirects=False,
    )
    assert cached.status_code == 304
    ranged = world.client.get(
        URL + "model.safetensors",
        params={"token": token},
        headers={"Range": "bytes=0-9"},
        follow_redirects=False,
    )
    assert ranged.status_code == 302
    fetched = httpx.get(ranged.headers["location"], headers={"Range": "bytes=0-9"})
    assert fetched.status_code == 206
    assert fetched.content == data[:10]


@pytest.mark.parametrize("store", ["s3"], indirect=True)
def test_a_redirect_is_charged_and_counted_as_the_whole_file(world: World, db: Session) -> None:
    """``Range: bytes=0-0`` was charged 1 byte and answered with a URL for the whole object:
    the bytes-per-day quota (and max_uses) never saw what left."""
    data = world.files["model.safetensors"]
    size = len(data)
    use_settings(world, quota_bytes_per_day=size)
    out = world.token(world.partner(), components=["weights"], max_uses=1)
    token, url = str(out["token"]), URL + "model.safetensors"

    def get(range_: str) -> Any:
        return world.client.get(
            url, params={"token": token}, headers={"Range": range_}, follow_redirects=False
        )

    first = get("bytes=0-0")
    assert first.status_code == 302
    assert httpx.get(first.headers["location"]).content == data  # what it really hands out
    (event,) = events(db, "download.redeemed")
    assert (event.data["bytes"], event.data["status"]) == (size, 302)
    assert "range" not in event.data
    # The day's allowance is past (one whole file charged): the next redirect is refused,
    # and so would the use be: a resume's worth of the file is one more redirect at most.
    again = get("bytes=1-1")
    assert (again.status_code, again.json()["code"]) == (429, "quota_bytes")
    use_settings(world, quota_bytes_per_day=0)
    assert get("bytes=1-1").status_code == 302  # a resume: the file's allowance has room
    exhausted = get("bytes=2-2")
    assert (exhausted.status_code, exhausted.json()["code"]) == (401, "token_uses_exhausted")
