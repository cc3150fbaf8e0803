"""Hostile names are refused with 422 and a message saying what is wrong, wherever a name
enters: file paths in the upload URL, model ids, versions and component names."""

from __future__ import annotations

import json

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.catalogue.names import check_file_path, routed_file_path
from app.errors import Unprocessable
from app.models import Component, Model, Release, ReleaseFile
from tests.factories.catalogue import check, publish_release
from tests.fixtures.parts import change_settings

MODEL = "acme/atlas-7b"
FILES = f"/v1/models/{MODEL}/releases/v1/files/"

# (raw URL path segment as sent on the wire, words the 422 detail must contain)
HOSTILE_PATHS = [
    ("%2e%2e/etc/passwd", "'..' segments are not allowed"),
    ("weights/%2E%2E/%2E%2E/x", "'..' segments are not allowed"),
    ("%2e/x", "'.' and '..' segments"),
    ("a//b", "empty, '.' and '..' segments"),
    ("/etc/passwd", "absolute paths are not allowed"),
    ("%2Fetc%2Fpasswd", "absolute paths are not allowed"),
    ("C:/Windows/x.dll", "absolute paths are not allowed"),
    ("..%5C..%5Cwin.ini", "backslashes are not allowed"),
    ("a%5Cb", "backslashes are not allowed"),
    ("a%01b", "control or format characters"),
    ("a%1b%5b31mred", "control or format characters"),
    ("a%7f", "control or format characters"),
    ("a%0a", "control or format characters"),  # Starlette routes this as "a"
    ("name%E2%80%AEcod.exe", "control or format characters"),  # RLO: spoofs extensions
    ("%ff", "not valid UTF-8"),
    ("caf%C3", "not valid UTF-8"),
    ("%C0%AF", "not valid UTF-8"),  # overlong "/"
    ("e%CC%81.txt", "Unicode NFC form"),  # "e" + combining acute; NFC is "é"
    ("a" * 1025, "longer than 1024 bytes"),
    ("dir/" + "b" * 256, "segment is longer than 255 bytes"),
    ("%20leading", "whitespace"),
    ("trailing%20/x", "whitespace"),
]


@pytest.fixture
def draft(client: TestClient, admin_headers: dict[str, str]) -> None:
    publish_release(client, admin_headers, files={}, publish=False)


@pytest.mark.usefixtures("draft")
@pytest.mark.parametrize(("raw", "why"), HOSTILE_PATHS, ids=[r[:24] for r, _ in HOSTILE_PATHS])
def test_hostile_upload_paths_are_refused(
    client: TestClient, admin_headers: dict[str, str], db: Session, raw: str, why: str
) -> None:
    r = client.put(
        FILES + raw, params={"component": "weights"}, content=b"x", headers=admin_headers
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["code"] == "invalid_path"
    assert body["detail"].startswith("invalid file path ")
    assert why in body["detail"]
    assert db.scalar(select(func.count()).select_from(ReleaseFile)) == 0


@pytest.mark.usefixtures("draft")
def test_newline_suffix_cannot_delete_another_file(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    check(
        client.put(
            FILES + "a", params={"component": "weights"}, content=b"x", headers=admin_headers
        ),
        201,
    )
    r = client.delete(FILES + "a%0A", headers=admin_headers)
    assert r.status_code == 422
    assert "control or format characters" in r.json()["detail"]
    manifest = check(
        client.get(f"/v1/models/{MODEL}/releases/v1/manifest", headers=admin_headers), 200
    )
    assert [f["path"] for f in manifest["files"]] == ["a"]


@pytest.mark.usefixtures("draft")
@pytest.mark.parametrize(
    "path",
    [
        "model-00001-of-00008.safetensors",
        "tokenizer/tokenizer.json",
        "deep/er/still/x.bin",
        "café/ünïcödé.txt",
        "日本語.md",
        "with space.txt",
        ".gitattributes",
        "a" * 255,
    ],
)
def test_ordinary_paths_are_accepted(
    client: TestClient, admin_headers: dict[str, str], path: str
) -> None:
    body = check(
        client.put(
            FILES + path, params={"component": "weights"}, content=b"x", headers=admin_headers
        ),
        201,
    )
    assert body["path"] == path


@pytest.mark.usefixtures("draft")
def test_max_path_bytes_setting_lowers_the_limit(
    client: TestClient, admin_headers: dict[str, str], app: FastAPI
) -> None:
    change_settings(app, max_path_bytes=20)
    r = client.put(
        FILES + "x" * 21, params={"component": "weights"}, content=b"x", headers=admin_headers
    )
    assert r.status_code == 422
    assert "longer than 20 bytes" in r.json()["detail"]
    check(
        client.put(
            FILES + "x" * 20, params={"component": "weights"}, content=b"x", headers=admin_headers
        ),
        201,
    )
    # It cannot raise it past what the column holds.
    change_settings(app, max_path_bytes=10_000)
    r = client.put(
        FILES + "y" * 1025, params={"component": "weights"}, content=b"x", headers=admin_headers
    )
    assert "longer than 1024 bytes" in r.json()["detail"]


def test_path_checker_explains_the_first_problem() -> None:
    with pytest.raises(Unprocessable) as err:
        check_file_path("")
    assert err.value.detail == "invalid file path : it is empty"
    with pytest.raises(Unprocessable) as err:
        check_file_path("\udcff.bin")  # a lone surrogate from a surrogateescape decode
    assert "not valid UTF-8" in err.value.detail
    # Unprintable or long names are shown escaped and cut, never raw.
    with pytest.raises(Unprocessable) as err:
        check_file_path("x\x1b[2J" + "y" * 200)
    assert "\x1b" not in err.value.detail
    assert len(err.value.detail) < 200


def test_routed_file_path_restores_the_newline_starlette_drops() -> None:
    assert routed_file_path("/v1/models/a/b/releases/v1/files/x\n", "x") == "x\n"
    assert routed_file_path("/v1/models/a/b/releases/v1/files/x", "x") == "x"


def post_json(
    client: TestClient, url: str, body: dict[str, str], headers: dict[str, str]
) -> object:
    # json.dumps so lone surrogates travel as \\udcff escapes, as a hostile client sends them.
    return client.post(
        url,
        content=json.dumps(body).encode(),
        headers={**headers, "content-type": "application/json"},
    )


@pytest.mark.parametrize(
    ("model_id", "why"),
    [
        ("../x", "invalid namespace .."),
        ("acme/..", "invalid model name .."),
        ("acme/x\n", "invalid model name"),
        ("acme/x\x00", "id contains a NUL character"),
        ("acme/e\u0301", "invalid model name"),
        ("acme/\udcff", "valid string"),
        ("acme", "expected 'namespace/name'"),
        ("a/b/c", "expected 'namespace/name'"),
        ("/abs", "invalid namespace"),
        ("acme\\x/y", "invalid namespace"),
        ("api/x", "this name is reserved"),
        ("V1/x", "this name is reserved"),
        ("acme/-x", "starting and ending with a letter or digit"),
        ("acme/" + "x" * 97, "invalid model name"),
        ("acme/" + "x" * 200, "at most 193 characters"),
    ],
)
def test_hostile_model_ids_are_refused(
    client: TestClient, admin_headers: dict[str, str], db: Session, model_id: str, why: str
) -> None:
    r = post_json(client, "/v1/models", {"id": model_id}, admin_headers)
    assert r.status_code == 422, r.text  # type: ignore[attr-defined]
    assert why in r.json()["detail"]  # type: ignore[attr-defined]
    assert db.scalar(select(func.count()).select_from(Model)) == 0


@pytest.mark.parametrize(
    ("version", "why"),
    [
        ("..", "invalid version .."),
        ("v1/x", "invalid version"),
        ("v1\n", "invalid version"),
        ("v\x001", "version contains a NUL character"),
        ("", "invalid version"),
        ("-v", "invalid version"),
        ("main", "reserved for revisions"),
        ("a" * 40, "reserved for revisions"),
        ("\udcff", "valid string"),
        ("a" * 65, "at most 64 characters"),
    ],
)
def test_hostile_versions_are_refused(
    client: TestClient, admin_headers: dict[str, str], db: Session, version: str, why: str
) -> None:
    check(client.post("/v1/models", json={"id": MODEL}, headers=admin_headers), 201)
    r = post_json(client, f"/v1/models/{MODEL}/releases", {"version": version}, admin_headers)
    assert r.status_code == 422, r.text  # type: ignore[attr-defined]
    assert why in r.json()["detail"]  # type: ignore[attr-defined]
    assert db.scalar(select(func.count()).select_from(Release)) == 0


@pytest.mark.usefixtures("draft")
@pytest.mark.parametrize(
    ("component", "why"),
    [
        ("..", "invalid component name"),
        ("Weights", "invalid component name"),
        ("w\n", "invalid component name"),
        ("", "invalid component name"),
        ("a b", "invalid component name"),
        ("\udcff", "valid string"),
        ("x" * 65, "at most 64 characters"),
    ],
)
def test_hostile_component_names_are_refused(
    client: TestClient, admin_headers: dict[str, str], db: Session, component: str, why: str
) -> None:
    r = post_json(
        client, f"/v1/models/{MODEL}/releases/v1/components", {"name": component}, admin_headers
    )
    assert r.status_code == 422, r.text  # type: ignore[attr-defined]
    assert why in r.json()["detail"]  # type: ignore[attr-defined]
    assert db.scalar(select(func.count()).select_from(Component)) == 1  # the draft's weights


@pytest.mark.usefixtures("draft")
@pytest.mark.parametrize("component", ["../x", "Weights", "w\n"])
def test_hostile_component_in_upload_query_is_refused(
    client: TestClient, admin_headers: dict[str, str], component: str
) -> None:
    r = client.put(
        FILES + "a.bin", params={"component": component}, content=b"x", headers=admin_headers
    )
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_name"
    assert r.json()["detail"].startswith("invalid component name")


@pytest.mark.usefixtures("draft")
@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("/v1/models/%2e%2e/x/releases/v1/files/a.bin", "invalid namespace"),
        ("/v1/models/acme/%ff/releases/v1/files/a.bin", "invalid model name"),
        (f"/v1/models/{MODEL}/releases/%2e%2e/files/a.bin", "invalid version"),
        (f"/v1/models/{MODEL}/releases/main/files/a.bin", "reserved for revisions"),
    ],
)
def test_hostile_ids_in_admin_urls_are_refused(
    client: TestClient, admin_headers: dict[str, str], url: str, why: str
) -> None:
    r = client.put(url, params={"component": "weights"}, content=b"x", headers=admin_headers)
    assert r.status_code == 422, r.text
    assert why in r.json()["detail"]
