"""Two ``weightgate serve`` processes on one PostgreSQL database: what one of them changes
is refused by the other within a second, although both answer the hot routes from caches
(app/freshness.py).

Each scenario warms both processes' caches with the same request, makes the change on
process A, then asks process B again and again: every request sent a second or more after
A answered must be refused. The test makes its own database, so it runs in both passes of
the suite (on PostgreSQL each time).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from app.access.users import create_user_with_key
from app.db import make_engine, make_sessionmaker
from app.models import Grant, Model
from tests.fixtures.databases import fresh_database
from tests.fixtures.servers import live_server, publish_over_http

pytestmark = [pytest.mark.slow, pytest.mark.own_database]

REPO = "acme/fresh"
FILE = "model.safetensors"
BOUND = 1.0  # seconds: a change made on A is refused by B this long after A answered


@dataclass
class Pair:
    a: str
    b: str
    admin: dict[str, str]
    keys: dict[str, str]  # email -> API key
    ids: dict[str, int]  # email -> user id


@contextmanager
def pair(tmp: Path) -> Iterator[Pair]:
    with fresh_database(tmp, kind="postgresql", label="fresh") as db_url, ExitStack() as stack:
        engine = make_engine(db_url)
        stack.callback(engine.dispose)
        keys, ids = {}, {}
        now = datetime.now(UTC)
        with make_sessionmaker(engine)() as db:
            for email, role in (
                ("ops@example.org", "admin"),
                ("ann@example.org", "researcher"),
                ("bob@example.org", "researcher"),
                ("cy@example.org", "researcher"),
                ("dee@example.org", "researcher"),
            ):
                user, keys[email] = create_user_with_key(
                    db, email=email, role=role, name=email, actor="system:test", now=now
                )
                ids[email] = user.id
            db.commit()
        common = {
            "WEIGHTGATE_DATABASE_URL": db_url,
            "WEIGHTGATE_STORAGE_URL": (tmp / "objects").as_uri(),
            "WEIGHTGATE_KEYS_DIR": str(tmp / "keys"),
            "WEIGHTGATE_SCHEDULER_ENABLED": "false",
        }
        urls = []
        for name in ("a", "b"):
            home = tmp / name
            home.mkdir()
            urls.append(stack.enter_context(live_server(common, tmp=home)).url)
        admin = {"Authorization": f"Bearer {keys['ops@example.org']}"}
        past = (now - timedelta(days=1)).isoformat()
        publish_over_http(
            urls[0],
            keys["ops@example.org"],
            REPO,
            components={"weights": [("research", past)]},
            files={FILE: ("weights", b"w" * 4096)},
        )
        with make_sessionmaker(engine)() as db:
            model_id = db.scalar(select(Model.id).where(Model.name == "fresh"))
            assert model_id is not None
            for email in (
                "ann@example.org",
                "bob@example.org",
                "cy@example.org",
                "dee@example.org",
            ):
                db.add(Grant(user_id=ids[email], model_id=model_id, created_at=now))
            db.commit()
        yield Pair(urls[0], urls[1], admin, keys, ids)


def _resolve(base: str, key: str) -> int:
    r = httpx.get(
        f"{base}/{REPO}/resolve/main/{FILE}",
        headers={"Authorization": f"Bearer {key}"},
        follow_redirects=False,
        timeout=30,
    )
    return r.status_code


def refused_everywhere(
    p: Pair, ask: Callable[[str], int], change: Callable[[], httpx.Response]
) -> float:
    """Warm both caches with ``ask``, make ``change`` on A, then ask B until it refuses:
    every answer to a request sent ``BOUND`` s or more after A answered must be a refusal.
    Returns how long after A's answer B first refused."""
    assert ask(p.a) == 200
    assert ask(p.b) == 200
    assert ask(p.b) == 200  # answered from B's cache
    done = change()
    assert done.is_success, done.text
    changed = time.monotonic()
    first_refusal: float | None = None
    late: list[int] = []
    deadline = changed + 30  # a wedged server fails the test, never hangs it
    while time.monotonic() < deadline and len(late) < 3:
        sent = time.monotonic() - changed
        status = ask(p.b)
        if status != 200 and first_refusal is None:
            first_refusal = sent
        if sent >= BOUND:
            late.append(status)
    assert late, "no request was sent a second after the change"
    assert all(s in (401, 403, 404) for s in late), late
    assert first_refusal is not None
    assert first_refusal < BOUND, first_refusal
    return first_refusal


def test_changes_on_one_replica_are_refused_by_the_other_within_a_second(
    tmp_path: Path,
) -> None:
    with pair(tmp_path) as p, httpx.Client(base_url=p.a, headers=p.admin, timeout=30) as a:
        # A revoked API key.
        ann = p.keys["ann@example.org"]
        key_id = _key_id(a, p.ids["ann@example.org"])
        refused_everywhere(
            p,
            lambda base: _resolve(base, ann),
            lambda: a.delete(f"/v1/users/{p.ids['ann@example.org']}/api-keys/{key_id}"),
        )
        # A disabled user.
        bob = p.keys["bob@example.org"]
        refused_everywhere(
            p,
            lambda base: _resolve(base, bob),
            lambda: a.patch(f"/v1/users/{p.ids['bob@example.org']}", json={"disabled": True}),
        )
        # A revoked grant (the model, its release and the grant were cached).
        cy = p.keys["cy@example.org"]
        refused_everywhere(
            p,
            lambda base: _resolve(base, cy),
            lambda: a.delete(f"/v1/models/{REPO}/grants/{p.ids['cy@example.org']}"),
        )
        # An ended partner agreement.
        partner = a.post("/v1/partners", json={"name": "Lab", "models": [REPO]}).json()
        token = httpx.post(
            f"{p.a}/v1/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": partner["client_id"],
                "client_secret": partner["client_secret"],
            },
        ).json()["access_token"]
        refused_everywhere(
            p,
            lambda base: _manifest(base, token),
            lambda: a.patch(f"/v1/partners/{partner['id']}", json={"models": []}),
        )
        # An emergency restriction, for everyone at once (an admin's key is not refused:
        # a researcher's, granted, is).
        dee = p.keys["dee@example.org"]
        refused_everywhere(
            p,
            lambda base: _resolve(base, dee),
            lambda: a.post(
                f"/v1/models/{REPO}/releases/v1/components/weights/schedule/restrict",
                json={"tier": "internal", "reason": "under review"},
            ),
        )


def _manifest(base: str, token: str) -> int:
    """200 while the manifest lists a file the caller may download, else the refusal."""
    r = httpx.get(
        f"{base}/v1/models/{REPO}/releases/v1/manifest",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    if r.status_code != 200:
        return r.status_code
    return 200 if r.json()["files"] else 403


def _key_id(client: httpx.Client, user_id: int) -> int:
    keys = client.get(f"/v1/users/{user_id}/api-keys").json()["items"]
    assert len(keys) == 1
    return int(keys[0]["id"])
