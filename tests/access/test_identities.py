"""Emails and names read as what they are: lookalikes, control and format characters are
refused (422) at registration, when an admin creates or renames a user, for partners and API
key names; nothing of them reaches the approval queue, the audit log or webhooks."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access.identities import clean_name, normalise_email
from app.clock import FixedClock
from app.errors import Unprocessable
from app.models import User
from app.settings import Settings
from tests.factories.principals import make_user

BAD_EMAILS = [
    "ada@example.org.",  # trailing dot: the same domain, spelled differently
    "ada@ex\u0430mple.org",  # Cyrillic a
    "ada\u202e@example.org",  # right-to-left override
    "ad\x07a@example.org",  # BEL
    "\x1b[31mada@example.org",  # a terminal escape sequence
    "ada@example",
    "ada@@example.org",
    "ada@-example.org",
    "ada@example.123",
    "a..b@example.org",
    "\u0430da@example.org",
]
BAD_NAMES = [
    "Ada\x07",
    "\x1b[2J\x1b[HAdmin",
    "evil\u202egro.elpmaxe",
    "Ada\u200bLovelace",  # zero-width space
    "Ada\ue000",  # private use
    "Ada\u2028Lovelace",  # line separator
    "Ada\tLovelace",
]


@pytest.mark.parametrize("email", BAD_EMAILS)
def test_lookalike_and_malformed_emails_are_refused(email: str) -> None:
    with pytest.raises(Unprocessable) as refused:
        normalise_email(email)
    assert refused.value.code == "invalid_email"
    assert all(" " <= c <= "~" for c in refused.value.detail)  # the message is plain, too


@pytest.mark.parametrize("name", BAD_NAMES)
def test_names_with_control_or_format_characters_are_refused(name: str) -> None:
    with pytest.raises(Unprocessable) as refused:
        clean_name(name)
    assert refused.value.code == "invalid_name"


def test_real_names_and_emails_pass_normalised() -> None:
    assert normalise_email("  Ada.L+wg@Example.ORG ") == "Ada.L+wg@example.org"
    assert normalise_email("ada@xn--bcher-kva.example") == "ada@xn--bcher-kva.example"
    assert clean_name("  Jose\u0301   García  ") == "Jos\u00e9 Garc\u00eda"  # NFC, spaces
    assert clean_name("王小明") == "王小明"
    assert clean_name("Zoë O'Brien-Łukasiewicz") == "Zoë O'Brien-Łukasiewicz"


@pytest.fixture
def open_registration(settings: Settings) -> None:
    settings.open_registration = True
    settings.quota_registrations_per_hour = 0  # this test signs up more than 10 times


def test_every_route_that_names_a_person_refuses_lookalikes(
    client: TestClient,
    db: Session,
    clock: FixedClock,
    admin_headers: dict[str, str],
    open_registration: None,
) -> None:
    for email in BAD_EMAILS[:5]:
        for url, headers in (("/v1/register", {}), ("/v1/users", admin_headers)):
            r = client.post(url, json={"email": email}, headers=headers)
            assert (r.status_code, r.json()["code"]) == (422, "invalid_email"), (url, r.text)
    for name in BAD_NAMES:
        r = client.post("/v1/register", json={"email": "ada@example.org", "name": name})
        assert (r.status_code, r.json()["code"]) == (422, "invalid_name"), r.text
        r = client.post("/v1/partners", json={"name": name}, headers=admin_headers)
        assert (r.status_code, r.json()["code"]) == (422, "invalid_name"), r.text
    user, key = make_user(db, clock)
    mine = {"Authorization": f"Bearer {key}"}
    r = client.post("/v1/me/api-keys", json={"name": "laptop\x1b[0m"}, headers=mine)
    assert (r.status_code, r.json()["code"]) == (422, "invalid_name"), r.text
    r = client.patch(f"/v1/users/{user.id}", json={"name": "\u202eAdmin"}, headers=admin_headers)
    assert (r.status_code, r.json()["code"]) == (422, "invalid_name"), r.text
    db.expire_all()
    assert db.scalars(select(User.email).where(User.email.like("%ada%"))).all() == []
