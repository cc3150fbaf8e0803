"""A whole deployment for end-to-end tests: a fresh database, an object store (a directory,
or a bucket on moto's S3 server), ``weightgate serve`` in a subprocess, and an admin key
made the way an operator makes one (``weightgate admin create-user``)."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import boto3
import httpx
from sqlalchemy import func, select

from app.db import make_engine, make_sessionmaker
from app.models import AuditEvent, Grant, Model
from tests.fixtures.databases import fresh_database
from tests.fixtures.servers import AWS_TEST_ENV, VENV_BIN, live_server


@dataclass
class Deployment:
    url: str
    db_url: str
    storage: str  # "filesystem" | "s3"
    objects: Path | None  # the filesystem store's root
    env: dict[str, str]
    tmp: Path
    log: Path
    admin_key: str = ""

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}

    def create_user(self, email: str, role: str = "researcher") -> tuple[int, str]:
        """``weightgate admin create-user``; returns the user id and the key on its last line."""
        out = subprocess.run(
            [
                str(VENV_BIN / "weightgate"),
                "admin",
                "create-user",
                "--email",
                email,
                "--role",
                role,
            ],
            env=self.env,
            cwd=self.tmp,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        lines = out.strip().splitlines()
        user_id = int(lines[0].split("(id ")[1].split(")")[0])
        return user_id, lines[-1].strip()

    def grant(self, user_id: int, model: str) -> None:
        """An approved access grant, written straight into the database as the access domain
        would write it: for setting up a user the server has not answered yet. A write
        behind the server's back reaches its caches within their staleness bound (0.5 s,
        app/freshness.py), not at once: to grant after the server has answered the user, use
        :meth:`approve`, as an admin would."""
        namespace, name = model.split("/")
        engine = make_engine(self.db_url)
        try:
            with make_sessionmaker(engine)() as session:
                model_id = session.scalar(
                    select(Model.id).where(Model.namespace == namespace, Model.name == name)
                )
                assert model_id is not None
                session.add(Grant(user_id=user_id, model_id=model_id, created_at=datetime.now(UTC)))
                session.commit()
        finally:
            engine.dispose()

    def approve(self, key: str, model: str) -> None:
        """An approved access grant, the way people make one: the researcher (``key``) asks
        with the license accepted, an admin approves through the API. The server's commit
        moves its cache epoch at once, so the next request sees the grant."""
        with self.client(key) as http:
            asked = http.post(f"/v1/models/{model}/access-requests", json={"accept_license": True})
        asked.raise_for_status()
        request = asked.json()
        if request["status"] == "approved":  # the model approves by itself
            return
        with self.client(self.admin_key) as http:
            http.post(f"/v1/access-requests/{request['id']}/approve").raise_for_status()

    def count_events(self, action: str) -> int:
        engine = make_engine(self.db_url)
        try:
            with make_sessionmaker(engine)() as session:
                return int(
                    session.scalar(
                        select(func.count())
                        .select_from(AuditEvent)
                        .where(AuditEvent.action == action)
                    )
                    or 0
                )
        finally:
            engine.dispose()


def storage_env(
    tmp: Path, storage: str, s3_endpoint: str | None
) -> tuple[dict[str, str], Path | None]:
    if storage == "filesystem":
        root = tmp / "objects"
        return {"WEIGHTGATE_STORAGE_URL": root.resolve().as_uri()}, root
    assert s3_endpoint is not None
    bucket = f"wg-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(
        Bucket=bucket
    )
    return {
        "WEIGHTGATE_STORAGE_URL": f"s3://{bucket}/objects",
        "WEIGHTGATE_S3_ENDPOINT_URL": s3_endpoint,
        "WEIGHTGATE_S3_PATH_STYLE": "true",
        "WEIGHTGATE_S3_REGION": "us-east-1",
    }, None


@contextmanager
def deployment(
    tmp: Path,
    storage: str,
    *,
    s3_endpoint: str | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[Deployment]:
    tmp.mkdir(parents=True, exist_ok=True)
    with fresh_database(tmp, label="live") as db_url:
        store_env, objects = storage_env(tmp, storage, s3_endpoint)
        server_env = {
            "WEIGHTGATE_DATABASE_URL": db_url,
            "WEIGHTGATE_SCHEDULER_ENABLED": "false",
            "WEIGHTGATE_LOG_LEVEL": "WARNING",
            **store_env,
            **(env or {}),
        }
        with live_server(server_env, tmp=tmp) as server:
            dep = Deployment(
                url=server.url,
                db_url=db_url,
                storage=storage,
                objects=objects,
                env={**os.environ, **AWS_TEST_ENV, **server.env},
                tmp=tmp,
                log=server.log,
            )
            _, dep.admin_key = dep.create_user("admin@example.org", role="admin")
            yield dep
