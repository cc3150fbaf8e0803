"""The tier ladder on a live server, PostgreSQL, the real clock — the one place real time is
right: a component scheduled ``partner`` at T, ``research`` at T+2 s, ``open`` at T+4 s.

A partner (with an access token from ``/v1/oauth/token``) sees its files from T, an approved
researcher from T+2 s, a researcher without a grant and an anonymous caller from T+4 s. The
scheduler is off: every lift happens at request time, from the schedule, with no job running.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.fixtures.databases import fresh_database
from tests.fixtures.servers import LiveServer, create_user, live_server

pytestmark = [pytest.mark.slow, pytest.mark.own_database]

MODEL = "acme/atlas-7b"
MANIFEST = f"/v1/models/{MODEL}/releases/v1/manifest"
SCHEDULE = f"/v1/models/{MODEL}/releases/v1/components/weights/schedule"
# How late after its instant a lift may first be observed: one polling round of four
# manifest calls on a loaded two-core machine, with margin.
TOLERANCE = 1.5


@dataclass
class Observer:
    """Polls the manifest as one caller and remembers when the weights were visible."""

    name: str
    headers: dict[str, str]
    seen: list[tuple[float, float, bool]] = field(default_factory=list)

    def poll(self, http: httpx.Client) -> None:
        start = time.time()
        r = http.get(MANIFEST, headers=self.headers)
        end = time.time()
        assert r.status_code == 200, f"{self.name}: {r.status_code} {r.text}"
        paths = [f["path"] for f in r.json()["files"]]
        self.seen.append((start, end, "weights.safetensors" in paths))

    def check_opens_at(self, opens: float) -> None:
        """Never before ``opens``; from the first poll that started at or after it, always."""
        assert self.seen, self.name
        for start, end, saw in self.seen:
            if saw:
                # The server evaluated this request between start and end.
                assert end >= opens, f"{self.name} saw the weights {opens - end:.3f}s early"
            elif start >= opens:
                pytest.fail(f"{self.name} still embargoed {start - opens:.3f}s after {opens}")
        first = next(start for start, _, saw in self.seen if saw)
        assert first <= opens + TOLERANCE, (
            f"{self.name} saw the weights only {first - opens:.3f}s late"
        )


def ok(r: httpx.Response, status: int = 200) -> dict:  # type: ignore[type-arg]
    assert r.status_code == status, (
        f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text}"
    )
    return r.json()  # type: ignore[no-any-return]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with fresh_database(tmp_path, kind="postgresql", label="tiers") as url:
        env = {
            "WEIGHTGATE_DATABASE_URL": url,
            "WEIGHTGATE_SCHEDULER_ENABLED": "false",
            "WEIGHTGATE_OPEN_REGISTRATION": "true",
        }
        with live_server(env, tmp=tmp_path) as srv:
            yield srv


def test_each_tier_opens_at_its_instant(server: LiveServer) -> None:
    admin = {"Authorization": f"Bearer {create_user(server, 'ops@example.org', 'admin')}"}
    far = datetime.now(UTC) + timedelta(days=365)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        # A release whose config is open (so the model is announced and researchers can ask
        # for access) and whose weights are still internal.
        ok(http.post("/v1/models", json={"id": MODEL, "license": "Be nice."}, headers=admin), 201)
        ok(http.post(f"/v1/models/{MODEL}/releases", json={"version": "v1"}, headers=admin), 201)
        for name, stages in {
            "config": [{"tier": "open", "at": (datetime.now(UTC) - timedelta(days=1)).isoformat()}],
            "weights": [{"tier": "partner", "at": far.isoformat()}],
        }.items():
            ok(
                http.post(
                    f"/v1/models/{MODEL}/releases/v1/components",
                    json={"name": name, "schedule": stages},
                    headers=admin,
                ),
                201,
            )
        for path, comp in (("config.json", "config"), ("weights.safetensors", "weights")):
            ok(
                http.put(
                    f"/v1/models/{MODEL}/releases/v1/files/{path}",
                    params={"component": comp},
                    content=path.encode() * 100,
                    headers=admin,
                ),
                201,
            )
        ok(http.post(f"/v1/models/{MODEL}/releases/v1/publish", headers=admin))

        # A partner under agreement, authenticated the OAuth2 way.
        partner = ok(
            http.post("/v1/partners", json={"name": "Contoso", "models": [MODEL]}, headers=admin),
            201,
        )
        token = ok(
            http.post(
                "/v1/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": partner["client_id"],
                    "client_secret": partner["client_secret"],
                },
            )
        )
        assert token["token_type"].lower() == "bearer"
        as_partner = {"Authorization": f"Bearer {token['access_token']}"}
        assert ok(http.get("/v1/me", headers=as_partner))["models"] == [MODEL]

        # Two researchers (self-registered); one asks for access and is approved.
        keys = [
            ok(http.post("/v1/register", json={"email": f"r{i}@example.org"}), 201)["api_key"]
            for i in range(2)
        ]
        approved, waiting = ({"Authorization": f"Bearer {k}"} for k in keys)
        request = ok(
            http.post(
                f"/v1/models/{MODEL}/access-requests",
                json={"answers": {}, "accept_license": True},
                headers=approved,
            ),
            201,
        )
        ok(http.post(f"/v1/access-requests/{request['id']}/approve", headers=admin))
        assert ok(http.get(MANIFEST, headers=approved))["clearance"] == "research"

        # Now set the real schedule, starting shortly.
        t = datetime.now(UTC) + timedelta(seconds=2)
        schedule = [
            ("partner", t),
            ("research", t + timedelta(seconds=2)),
            ("open", t + timedelta(seconds=4)),
        ]
        body = ok(
            http.put(
                SCHEDULE,
                json={"schedule": [{"tier": tier, "at": at.isoformat()} for tier, at in schedule]},
                headers=admin,
            )
        )
        assert [s["state"] for s in body["stages"]] == ["upcoming"] * 3

        observers = [
            Observer("partner", as_partner),
            Observer("approved researcher", approved),
            Observer("researcher without grant", waiting),
            Observer("anonymous", {}),
        ]
        stop = t.timestamp() + 4 + TOLERANCE + 0.5
        while time.time() < stop:
            for o in observers:
                o.poll(http)
            time.sleep(0.05)

    start = t.timestamp()
    partner_o, approved_o, waiting_o, anonymous_o = observers
    partner_o.check_opens_at(start)
    approved_o.check_opens_at(start + 2)
    waiting_o.check_opens_at(start + 4)
    anonymous_o.check_opens_at(start + 4)
    # Each observer polled before its lift too, so "never early" was really tested.
    for o, opens in zip(observers, (start, start + 2, start + 4, start + 4), strict=True):
        assert any(end < opens and not saw for _, end, saw in o.seen), o.name
