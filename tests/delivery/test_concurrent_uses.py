"""max_uses under real concurrency: a live server with two worker processes on PostgreSQL.

It makes its own PostgreSQL database, so it runs once, in the PostgreSQL pass (it used to run
in both, to the same effect): SQLite serialises every writer and so proves nothing about
races.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from app.audit.verify import verify_chain
from app.models import AuditEvent, IssuedToken
from tests.fixtures.databases import fresh_database
from tests.fixtures.servers import at_once, create_user, live_server, publish_over_http

pytestmark = [pytest.mark.slow, pytest.mark.own_database]


def test_twenty_concurrent_redemptions_of_a_five_use_token(tmp_path: Path) -> None:
    with fresh_database(tmp_path, kind="postgresql", label="race") as db_url:
        env = {"WEIGHTGATE_DATABASE_URL": db_url, "WEIGHTGATE_SCHEDULER_ENABLED": "false"}
        with live_server(env, tmp=tmp_path, workers=2) as server:
            admin_key = create_user(server, "ops@example.org", "admin")
            admin = {"Authorization": f"Bearer {admin_key}"}
            publish_over_http(
                server.url,
                admin_key,
                "acme/race",
                components={"weights": []},
                files={"w.bin": ("weights", b"w" * 4096)},
            )
            issued = httpx.post(
                server.url + "/v1/tokens",
                json={"model": "acme/race", "max_uses": 5},
                headers=admin,
            )
            assert issued.status_code == 201, issued.text
            token, jti = issued.json()["token"], issued.json()["jti"]
            responses = at_once(
                20,
                lambda c: c.get(
                    server.url + "/v1/files/acme/race/v1/w.bin", params={"token": token}
                ),
            )
        results = [
            (r.status_code, "ok" if r.status_code == 200 else r.json()["code"]) for r in responses
        ]
        assert Counter(results) == {(200, "ok"): 5, (401, "token_uses_exhausted"): 15}
        engine = create_engine(db_url)
        try:
            with engine.connect() as conn:
                uses = conn.scalar(select(IssuedToken.uses).where(IssuedToken.jti == jti))
                outcomes = Counter(
                    conn.scalars(
                        select(AuditEvent.outcome).where(
                            AuditEvent.action.in_(["download.redeemed", "download.denied"])
                        )
                    ).all()
                )
            # Two worker processes appended in batches: the chain is still one chain.
            with Session(engine) as session:
                chain = verify_chain(session)
        finally:
            engine.dispose()
        assert uses == 5
        assert outcomes == {"ok": 5, "denied": 15}
        assert chain.ok, chain.reason
