"""What happens when the release changes while an upload's bytes are streaming: the file is
refused and the object it stored is removed again, unless other files share it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.catalogue import repository as repo
from app.catalogue import uploads
from app.clock import FixedClock
from app.errors import Conflict
from app.models import ReleaseFile
from app.policy.principals import Principal
from app.settings import Settings
from app.storage import ObjectStore
from tests.factories.catalogue import publish_release, sha256
from tests.storage.inventory import address, contents

BOTH = pytest.mark.parametrize("store", ["filesystem", "s3"], indirect=True)
ADMIN = Principal(kind="user", id=1, role="admin")


def body(parts: list[bytes], midway: Callable[[], None]) -> AsyncIterator[bytes]:
    async def gen() -> AsyncIterator[bytes]:
        for i, part in enumerate(parts):
            if i == len(parts) // 2:
                midway()
            yield part

    return gen()


def receive(
    db: Session,
    store: ObjectStore,
    settings: Settings,
    clock: FixedClock,
    parts: list[bytes],
    midway: Callable[[], None],
) -> object:
    model = repo.model_by_id(db, "acme", "atlas-7b")
    assert model is not None
    return asyncio.run(
        uploads.receive(
            db,
            store=store,
            body=body(parts, midway),
            model=model,
            version="v2",
            path="late.bin",
            component="weights",
            expected_sha256=None,
            settings=settings,
            actor=ADMIN,
            clock=clock,
            ctx=None,
        )
    )


def publish_v2(db: Session) -> Callable[[], None]:
    def go() -> None:  # another admin publishes v2 while our bytes are on the wire
        model = repo.model_by_id(db, "acme", "atlas-7b")
        assert model is not None
        rel = repo.release(db, model.id, "v2")
        assert rel is not None
        rel.status = "published"
        db.commit()

    return go


@BOTH
def test_release_published_mid_upload_leaves_no_object(
    client: TestClient,
    admin_headers: dict[str, str],
    db: Session,
    store: ObjectStore,
    settings: Settings,
    clock: FixedClock,
) -> None:
    v1 = publish_release(client, admin_headers, files={"a.bin": ("weights", b"v1 bytes")})
    publish_release(client, admin_headers, version="v2", create=False, files={}, publish=False)
    before = contents(store)
    assert before == [address(store, sha256(b"v1 bytes"))]
    with pytest.raises(Conflict) as err:
        receive(db, store, settings, clock, [b"x" * 1000] * 4, publish_v2(db))
    assert err.value.code == "release_published"
    assert contents(store) == before
    assert db.scalar(select(func.count()).select_from(ReleaseFile)) == len(v1.files)


@BOTH
def test_a_shared_object_survives_a_refused_upload(
    client: TestClient,
    admin_headers: dict[str, str],
    db: Session,
    store: ObjectStore,
    settings: Settings,
    clock: FixedClock,
) -> None:
    shared = b"bytes v1 already has"
    publish_release(client, admin_headers, files={"a.bin": ("weights", shared)})
    publish_release(client, admin_headers, version="v2", create=False, files={}, publish=False)
    with pytest.raises(Conflict):
        receive(db, store, settings, clock, [shared[:5], shared[5:]], publish_v2(db))
    # v1's file still has its bytes.
    assert contents(store) == [address(store, sha256(shared))]
    assert b"".join(store.iter_range(sha256(shared))) == shared
