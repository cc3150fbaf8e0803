"""Release day in miniature: 50 researchers' clients arrive together and each walks the
request sequence of ``huggingface_hub.snapshot_download`` (model info, tree, then a HEAD and
a GET of ``/resolve`` per file) against a live server — two worker processes on PostgreSQL,
the one worker the embedded SQLite default allows.

Not a timing (bench/stampede.py measures): what must hold under the burst is that every
client gets every file, byte for byte, nobody is refused, and the audit trail is whole —
one ``hf.resolve`` event per HEAD and per GET, in one valid hash chain. The test makes its
own databases, so it runs once, in the PostgreSQL pass.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from app.audit.verify import verify_chain
from app.models import AuditEvent, Grant, Model, User
from tests.fixtures.databases import fresh_database
from tests.fixtures.servers import create_user, live_server, publish_over_http

pytestmark = [pytest.mark.slow, pytest.mark.own_database]

REPO = "acme/stampede"
CLIENTS = 50
RESEARCHERS = 5  # each key shared by ten clients, as a lab's machines share one
FILES = {f"model-{i:05d}-of-00005.safetensors": os.urandom(20_000 + i) for i in range(1, 6)}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def snapshot(url: str, key: str, start: threading.Barrier) -> tuple[list[str], dict[str, str]]:
    """One client's snapshot_download sequence: the statuses seen, the files' SHA-256."""
    statuses: list[str] = []
    got: dict[str, str] = {}
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120
    ) as http:
        start.wait()
        info = http.get(f"/api/models/{REPO}")
        statuses.append(f"info {info.status_code}")
        tree = http.get(f"/api/models/{REPO}/tree/main", params={"recursive": "true"})
        statuses.append(f"tree {tree.status_code}")
        listed = sorted(s["rfilename"] for s in info.json()["siblings"])
        assert listed == sorted(e["path"] for e in tree.json() if e["type"] == "file")
        for path in listed:
            head = http.head(f"/{REPO}/resolve/main/{path}")
            statuses.append(f"head {head.status_code}")
            body = http.get(f"/{REPO}/resolve/main/{path}", follow_redirects=True)
            statuses.append(f"get {body.status_code}")
            got[path] = sha(body.content)
    return statuses, got


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_fifty_clients_snapshot_a_release_at_once(tmp_path: Path, kind: str) -> None:
    workers = 2 if kind == "postgresql" else 1  # `serve` refuses several workers on SQLite
    with fresh_database(tmp_path, kind=kind, label="stampede") as db_url:
        env = {
            "WEIGHTGATE_DATABASE_URL": db_url,
            "WEIGHTGATE_SCHEDULER_ENABLED": "false",
            "WEIGHTGATE_STORAGE_URL": (tmp_path / "objects").resolve().as_uri(),
        }
        engine = create_engine(db_url)
        try:
            with live_server(env, tmp=tmp_path, workers=workers) as server:
                past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
                publish_over_http(
                    server.url,
                    create_user(server, "ops@example.org", "admin"),
                    REPO,
                    components={"weights": [("research", past)]},
                    files={p: ("weights", d) for p, d in FILES.items()},
                )
                keys = [create_user(server, f"r{i}@example.org") for i in range(RESEARCHERS)]
                with Session(engine) as session, session.begin():
                    model_id = session.scalar(select(Model.id).where(Model.name == "stampede"))
                    users = session.scalars(select(User.id).where(User.role == "researcher"))
                    session.add_all(
                        Grant(user_id=u, model_id=model_id, created_at=datetime.now(UTC))
                        for u in users
                    )
                start = threading.Barrier(CLIENTS)
                results: list[tuple[list[str], dict[str, str]]] = []
                failures: list[BaseException] = []

                def client(i: int) -> None:
                    try:
                        results.append(snapshot(server.url, keys[i % RESEARCHERS], start))
                    except BaseException as e:  # reported below, with the others
                        failures.append(e)
                        start.abort()

                threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(300)
            assert not failures, failures[:3]
            with Session(engine) as session:
                events = Counter(
                    (e.data["method"], e.outcome)
                    for e in session.scalars(
                        select(AuditEvent).where(AuditEvent.action == "hf.resolve")
                    )
                )
                chain = verify_chain(session)
        finally:
            engine.dispose()
    # Every client got every file, and nobody was refused or throttled.
    assert len(results) == CLIENTS
    expected = {p: sha(d) for p, d in FILES.items()}
    # Every uploaded file, and the component's signature file (#22) beside them.
    uploaded = [
        {p: h for p, h in got.items() if p != "signatures/weights.sig"} for _, got in results
    ]
    assert all(files == expected for files in uploaded)
    assert all("signatures/weights.sig" in got for _, got in results)
    statuses = Counter(s for seen, _ in results for s in seen)
    n = CLIENTS * (len(FILES) + 1)  # and the signature file
    assert statuses == {"info 200": CLIENTS, "tree 200": CLIENTS, "head 200": n, "get 200": n}
    # One event per request, all in one unbroken chain.
    assert events == {("HEAD", "ok"): n, ("GET", "ok"): n}
    assert chain.ok, chain.reason
