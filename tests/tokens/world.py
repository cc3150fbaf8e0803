"""A small published world for token and delivery tests.

``acme/atlas-7b`` v1 (clock at T0 = 2026-06-01T12:00Z):

- ``weights`` (model.safetensors): partner since T0-1d, research at T0+10d, open at T0+30d;
- ``config`` (config.json): research since T0-1d;
- ``tokenizer`` (tokenizer.json): open since T0-1d;
- ``safety`` (classifier.bin): no stages, so internal.

Principals: an admin, a researcher with a grant, a researcher without, a partner with an
agreement (client credentials), all written straight into the test's session.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access.partners import generate_client_id, generate_secret, hash_secret
from app.clock import FixedClock
from app.models import Grant, Partner, PartnerAgreement
from app.models import Model as ModelRow
from tests.factories.catalogue import Published, check, publish_release
from tests.factories.principals import make_user

MODEL = "acme/atlas-7b"
FILES = {
    "model.safetensors": ("weights", os.urandom(3000)),
    "config.json": ("config", b'{"hidden": 4096}'),
    "tokenizer.json": ("tokenizer", b'{"vocab": ["a", "b"]}' * 50),
    "classifier.bin": ("safety", b"\x01" * 64),
}


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


@dataclass
class World:
    client: TestClient
    clock: FixedClock
    admin: dict[str, str]
    researcher: dict[str, str]
    researcher_id: int
    stranger: dict[str, str]
    stranger_id: int
    partner_id: int
    client_id: str
    client_secret: str
    release: Published
    files: dict[str, bytes] = field(default_factory=dict)

    def partner_token(self) -> str:
        resp = self.client.post(
            "/v1/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
            },
        )
        return str(check(resp, 200)["access_token"])

    def partner(self) -> dict[str, str]:
        return bearer(self.partner_token())

    def token(
        self, headers: dict[str, str], status: int = 201, **body: object
    ) -> dict[str, object]:
        payload = {"model": MODEL, **body}
        out = check(self.client.post("/v1/tokens", json=payload, headers=headers), status)
        assert isinstance(out, dict)
        return out


def build_world(
    client: TestClient, db: Session, clock: FixedClock, admin_headers: dict[str, str]
) -> World:
    t0 = clock.now()
    day = timedelta(days=1)
    release = publish_release(
        client,
        admin_headers,
        model=MODEL,
        components={
            "weights": [
                ("partner", t0 - day),
                ("research", t0 + 10 * day),
                ("open", t0 + 30 * day),
            ],
            "config": [("research", t0 - day)],
            "tokenizer": [("open", t0 - day)],
            "safety": [],
        },
        files=FILES,
    )
    model_id = db.scalar(
        select(ModelRow.id).where(ModelRow.namespace == "acme", ModelRow.name == "atlas-7b")
    )
    researcher, rkey = make_user(db, clock)
    stranger, skey = make_user(db, clock)
    db.add(Grant(user_id=researcher.id, model_id=model_id, created_at=t0))
    secret = generate_secret()
    partner = Partner(
        name="Partner Co",
        client_id=generate_client_id(),
        secret_hash=hash_secret(secret),
        created_at=t0,
    )
    db.add(partner)
    db.flush()
    db.add(PartnerAgreement(partner_id=partner.id, model_id=model_id, created_at=t0))
    db.commit()
    return World(
        client=client,
        clock=clock,
        admin=admin_headers,
        researcher=bearer(rkey),
        researcher_id=researcher.id,
        stranger=bearer(skey),
        stranger_id=stranger.id,
        partner_id=partner.id,
        client_id=partner.client_id,
        client_secret=secret,
        release=release,
        files={p: d for p, (_, d) in FILES.items()},
    )
