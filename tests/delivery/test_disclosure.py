"""What a caller may not know is refused exactly like what does not exist (app/disclosure.py),
on every route that names a model, a release or a file: the same status, body and headers,
after the same database work.

``acme/atlas-7b`` v1 (tests/tokens/world.py): ``weights`` at the partner tier now,
``config`` research, ``tokenizer`` open, ``safety`` (classifier.bin) internal.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from app.models import Grant
from tests.factories.catalogue import publish_release
from tests.fixtures.statements import count_statements
from tests.tokens.world import MODEL, World

URL = "/v1/files/acme/atlas-7b/v1/"


def same(a: Any, b: Any, *paths: str) -> None:
    """``a`` and ``b`` are the same answer, once the paths they name are blanked out."""

    def shape(r: Any) -> tuple[int, dict[str, str], str]:
        text, headers = r.text, dict(r.headers)
        headers.pop("x-request-id", None)
        headers.pop("content-length", None)
        for p in paths:
            text = text.replace(p, "<path>")
            headers = {k: v.replace(p, "<path>") for k, v in headers.items()}
        return r.status_code, headers, text

    assert shape(a) == shape(b)


def test_any_token_of_the_release_learns_nothing_of_files_closed_to_its_holder(
    world: World,
) -> None:
    token = str(world.token(world.researcher, components=["config"])["token"])

    def get(path: str) -> Any:
        return world.client.get(URL + path, params={"token": token})

    # Internal (classifier.bin) and partner-tier (model.safetensors) files, outside the
    # token and closed to its holder: exactly like a missing file.
    missing = get("nope.bin")
    assert (missing.status_code, missing.json()["code"]) == (404, "file_not_found")
    same(get("classifier.bin"), missing, "classifier.bin", "nope.bin")
    same(get("model.safetensors"), missing, "model.safetensors", "nope.bin")
    # A file the holder may download, with another token: the token says so.
    other = get("tokenizer.json")
    assert (other.status_code, other.json()["code"]) == (401, "token_wrong_file")


def test_a_file_its_token_covers_says_why_it_closed(world: World, db: Session) -> None:
    token = str(world.token(world.researcher, components=["config"])["token"])
    db.execute(update(Grant).values(revoked_at=world.clock.now()))
    db.commit()
    # Issuing the token told its holder about config.json: now closed to them, it says why.
    r = world.client.get(URL + "config.json", params={"token": token})
    assert (r.status_code, r.json()["code"]) == (403, "access_grant_required")


def test_token_requests_by_path_learn_nothing_of_closed_files(world: World) -> None:
    def ask(*paths: str) -> Any:
        return world.client.post(
            "/v1/tokens", json={"model": MODEL, "paths": list(paths)}, headers=world.researcher
        )

    missing = ask("nope.bin")
    assert (missing.status_code, missing.json()["code"]) == (404, "file_not_found")
    same(ask("model.safetensors"), missing, "model.safetensors", "nope.bin")  # partner tier
    same(ask("classifier.bin"), missing, "classifier.bin", "nope.bin")  # internal
    assert ask("config.json").status_code == 201
    # Components are announced: naming a closed one says why and when it opens.
    closed = world.client.post(
        "/v1/tokens", json={"model": MODEL, "components": ["weights"]}, headers=world.researcher
    )
    assert (closed.status_code, closed.json()["code"]) == (403, "embargoed")
    assert closed.json()["until"] is not None


def test_the_hub_tree_learns_nothing_of_closed_directories(
    world: World, admin_headers: dict[str, str]
) -> None:
    past = world.clock.now() - timedelta(days=1)
    publish_release(
        world.client,
        admin_headers,
        model="acme/dirs",
        components={"open": [("open", past)], "weights": [("research", past)]},
        files={
            "config.json": ("open", b"{}"),
            "shards/model-00001.safetensors": ("weights", b"a" * 10),
            "shards/model-00002.safetensors": ("weights", b"b" * 10),
        },
    )
    api = "/api/models/acme/dirs/tree/v1/"
    closed, missing = world.client.get(api + "shards"), world.client.get(api + "nothing")
    # The release is gated to anonymous callers (weights are closed to them): a directory
    # of closed files and a missing one are the same GatedRepo, about the release.
    assert closed.status_code == 403
    assert closed.headers["x-error-code"] == "GatedRepo"
    same(closed, missing, "shards", "nothing")
    root = world.client.get(api.rstrip("/"), params={"recursive": "true"})
    assert [e["path"] for e in root.json()] == ["config.json", "signatures", "signatures/open.sig"]
    _topic, message = root.headers["x-hf-warning"].split(";", 1)
    assert "2" not in message  # no count of what was left out
    assert "weights" in message


@pytest.mark.parametrize(
    "route",
    [
        "/v1/models/{m}",
        "/v1/models/{m}/releases/v1/manifest",
        "/api/models/{m}",
        "/api/models/{m}/tree/v1",
        "/{m}/resolve/main/config.json",
    ],
)
@pytest.mark.parametrize("who", ["anonymous", "researcher"])
def test_an_unannounced_model_costs_what_a_missing_one_does(
    world: World, engine: Engine, admin_headers: dict[str, str], db: Session, route: str, who: str
) -> None:
    """An unannounced model answered ~0.9 ms slower than a missing one: three more queries.
    Now both run the same statements (timings: bench/disclosure.py)."""
    soon = world.clock.now() + timedelta(days=3)
    publish_release(
        world.client,
        admin_headers,
        model="acme/secret",
        components={"weights": [("open", soon)]},
        files={"config.json": ("weights", b"{}")},
    )
    headers = world.stranger if who == "researcher" else {}
    if headers:
        # The caller's key is read once, then kept (app/access/key_cache.py): known before
        # either request, so that both are compared on what they ask about the model.
        assert world.client.get("/v1/me", headers=headers).status_code == 200
    answers, runs = [], []
    for model in ("acme/secret", "acme/no-such-model"):
        with count_statements(engine) as seen:
            r = world.client.get(route.format(m=model), headers=headers)
        answers.append(r)
        runs.append([re.sub(r"sa_savepoint_\d+", "sp", s) for s in seen])
    assert answers[0].status_code == 404
    same(answers[0], answers[1], "acme/secret", "acme/no-such-model", "secret", "no-such-model")
    assert runs[0] == runs[1]
