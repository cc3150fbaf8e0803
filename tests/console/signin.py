"""Signing a TestClient into the console the way a browser does (sign-in form, its token
cookie, an Origin header), and reading the CSRF token a page carries."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

ORIGIN = "http://testserver"


def form_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF token"
    return found.group(1)


def sign_in(client: TestClient, api_key: str) -> str:
    """Sign ``client`` in with ``api_key``; returns the session's CSRF token."""
    page = client.get("/console/sign-in")
    assert page.status_code == 200, page.text
    resp = client.post(
        "/console/sign-in",
        data={"api_key": api_key, "csrf_token": form_token(page.text), "next": "/console/"},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert resp.status_code == 303, resp.text
    home = client.get("/console/")
    return form_token(home.text)
