"""Whatever address the server is told the client has (a proxy passes ``X-Forwarded-For`` on
to uvicorn, which makes it the client's host), it is recorded in a canonical form that fits
``audit_events.client_addr``: an address over 64 characters used to fail the audit insert
on PostgreSQL, answering 500 with the refusal never recorded."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.context import client_address
from app.models import AuditEvent


@pytest.mark.parametrize(
    ("host", "recorded"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("::ffff:192.0.2.7", "192.0.2.7"),  # one client, one quota, whichever form
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("fe80::1%" + "e" * 80, "fe80::1"),  # a zone id says nothing about the client
        ("x" * 300, "x" * 64),
        ("evil\x00\r\nhost", "evilhost"),
        ("testclient", "testclient"),
    ],
)
def test_addresses_are_recorded_canonical_and_bounded(host: str, recorded: str) -> None:
    assert client_address(host) == recorded


@pytest.fixture
def far_client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, client=("2001:db8::" + ":".join(["ffff"] * 3) + "x" * 70, 1)) as c:
        yield c


def test_a_refusal_from_an_overlong_address_is_answered_and_recorded(
    far_client: TestClient, db: Session
) -> None:
    r = far_client.get("/v1/files/acme/none/v1/x.bin", headers={"X-Request-Id": "far-1"})
    assert r.status_code == 404, r.text
    db.expire_all()
    event = db.scalars(select(AuditEvent).where(AuditEvent.request_id == "far-1")).one()
    assert event.action == "download.denied"
    assert event.client_addr is not None
    assert len(event.client_addr) == 64
    assert event.client_addr.startswith("2001:db8::ffff")
