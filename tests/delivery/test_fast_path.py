"""Downloads are dispatched before FastAPI's router (app/delivery/fast_path.py): the same
answers as the declared route, and anything that is not a download goes on untouched."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.tokens.world import World

URL = "/v1/files/acme/atlas-7b/v1/"


def test_other_methods_on_a_download_url_get_the_routers_405(world: World) -> None:
    resp = world.client.post(URL + "tokenizer.json")
    assert resp.status_code == 405
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["code"] == "method_not_allowed"
    assert resp.headers["allow"] == "GET, HEAD, OPTIONS"


def test_a_release_url_without_a_file_names_the_missing_path(world: World) -> None:
    resp = world.client.get("/v1/files/acme/atlas-7b/v1")
    assert resp.status_code == 422
    assert resp.json()["code"] == "invalid_path"


def test_a_path_smuggling_a_final_newline_is_refused_not_served(world: World) -> None:
    # Starlette's and the fast path's `$` both match before a final newline; the route
    # must see the newline and refuse, never serve tokenizer.json for "tokenizer.json\n".
    resp = world.client.get(URL + "tokenizer.json%0A")
    assert resp.status_code in (400, 422)
    assert resp.json()["code"] != "ok"
    assert resp.content != world.files["tokenizer.json"]


def test_open_file_served_through_the_fast_path_has_a_request_id(world: World) -> None:
    resp = world.client.get(URL + "tokenizer.json", headers={"X-Request-Id": "dl-1"})
    assert resp.status_code == 200
    assert resp.content == world.files["tokenizer.json"]
    assert resp.headers["x-request-id"] == "dl-1"


def test_the_download_route_is_still_documented(client: TestClient) -> None:
    op = client.get("/openapi.json").json()["paths"][
        "/v1/files/{namespace}/{name}/{version}/{path}"
    ]["get"]
    params = {(p["name"], p["in"], p["required"]) for p in op["parameters"]}
    assert params == {
        ("namespace", "path", True),
        ("name", "path", True),
        ("version", "path", True),
        ("path", "path", True),
        ("token", "query", False),
    }
