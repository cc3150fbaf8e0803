"""The commits Hugging Face clients see (app/hfcompat/views.py): a different set of files a
caller may download is a different commit id, the release's own revision names all of it,
and every id handed out keeps resolving."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clock import FixedClock
from app.hfcompat.views import view_revision
from app.models import HubView
from tests.factories.catalogue import Published, check
from tests.hfcompat.conftest import MODEL, anonymous_view, grant

API = f"/api/models/{MODEL}"


def listed(client: TestClient, rev: str, headers: dict[str, str] | None = None) -> list[str]:
    r = client.get(f"{API}/tree/{rev}", params={"recursive": "true"}, headers=headers or {})
    return [e["path"] for e in check(r, 200) if e["type"] == "file"]


def test_a_grant_changes_the_commit_and_the_old_one_still_names_what_it_held(
    client: TestClient,
    mixed: Published,
    db: Session,
    clock: FixedClock,
    researcher: tuple[int, dict[str, str]],
) -> None:
    user_id, headers = researcher
    before = check(client.get(f"{API}/revision/main", headers=headers), 200)["sha"]
    assert before == anonymous_view(mixed) != mixed.revision
    assert listed(client, before, headers) == ["config.json", "tokenizer/tokenizer.json"]
    # Handed out once, recorded once, whoever asks again.
    check(client.get(API), 200)
    rows = db.scalars(select(HubView).where(HubView.revision == before)).all()
    assert len(rows) == 1

    grant(db, clock, user_id)
    after = check(client.get(f"{API}/revision/main", headers=headers), 200)["sha"]
    assert after == mixed.revision  # everything open to them: the release's own revision
    assert listed(client, after, headers) == [
        "config.json",
        "model.safetensors",
        "tokenizer/tokenizer.json",
    ]
    # The earlier commit keeps resolving and keeps naming the same files: it is immutable.
    old = check(client.get(f"{API}/revision/{before}", headers=headers), 200)
    assert old["sha"] == before
    assert [s["rfilename"] for s in old["siblings"]] == ["config.json", "tokenizer/tokenizer.json"]
    assert listed(client, before, headers) == ["config.json", "tokenizer/tokenizer.json"]
    r = client.head(f"/{MODEL}/resolve/{before}/model.safetensors", headers=headers)
    assert (r.status_code, r.headers["X-Error-Code"]) == (404, "EntryNotFound")
    r = client.head(f"/{MODEL}/resolve/{after}/model.safetensors", headers=headers)
    assert (r.status_code, r.headers["X-Repo-Commit"]) == (200, mixed.revision)


def test_a_lift_changes_the_commit_at_its_second(
    client: TestClient, mixed: Published, clock: FixedClock
) -> None:
    assert check(client.get(API), 200)["sha"] == anonymous_view(mixed)
    clock.advance(days=30)  # weights open to everyone
    assert check(client.get(API), 200)["sha"] == mixed.revision
    assert "model.safetensors" in listed(client, mixed.revision)


def test_the_release_revision_is_listed_only_to_whoever_may_download_all_of_it(
    client: TestClient,
    mixed: Published,
    db: Session,
    clock: FixedClock,
    researcher: tuple[int, dict[str, str]],
) -> None:
    """A listing of part of a commit would be cached by the client as the whole commit."""
    r = client.get(f"{API}/tree/{mixed.revision}", params={"recursive": "true"})
    assert r.status_code == 403
    assert r.headers["X-Error-Code"] == "GatedRepo"
    message = r.headers["X-Error-Message"]
    assert f"revision {mixed.revision} (all of release v1)" in message
    assert "weights needs an approved access request" in message
    assert "the files open to you now are at revision 'v1'" in message
    # Its open files still resolve one by one (hf_hub_download of a pinned revision).
    assert client.head(f"/{MODEL}/resolve/{mixed.revision}/config.json").status_code == 200
    user_id, headers = researcher
    grant(db, clock, user_id)
    assert "model.safetensors" in listed(client, mixed.revision, headers)


def test_a_view_id_is_the_same_on_every_replica_and_unknown_ids_are_not_found(
    client: TestClient, mixed: Published
) -> None:
    # Derived from the release's revision and the components, nothing else.
    assert anonymous_view(mixed) == view_revision(mixed.revision, ["config"], whole=False)
    assert view_revision(mixed.revision, ["config", "weights"], whole=True) == mixed.revision
    assert view_revision(mixed.revision, ["weights"], whole=False) != anonymous_view(mixed)
    never = "0" * 40
    r = client.get(f"{API}/revision/{never}")
    assert (r.status_code, r.headers["X-Error-Code"]) == (404, "RevisionNotFound")
    # A view id belongs to its model: another model does not resolve it.
    check(client.get(API), 200)
    r = client.get(f"/api/models/acme/other/revision/{anonymous_view(mixed)}")
    assert r.status_code == 404


def test_a_restriction_after_a_view_was_handed_out_refuses_it_whole(
    client: TestClient,
    mixed: Published,
    admin_headers: dict[str, str],
    clock: FixedClock,
) -> None:
    sha = check(client.get(API), 200)["sha"]
    clock.advance(days=30)
    everything = check(client.get(API), 200)["sha"]
    assert everything == mixed.revision
    check(
        client.post(
            f"/v1/models/{MODEL}/releases/v1/components/weights/schedule/restrict",
            json={"tier": "research", "reason": "a problem was reported"},
            headers=admin_headers,
        ),
        200,
    )
    # The whole release is no longer the caller's: its listing is refused, and the view of
    # the config still lists exactly what it held.
    r = client.get(f"{API}/tree/{mixed.revision}", params={"recursive": "true"})
    assert r.status_code == 403
    assert listed(client, sha) == ["config.json", "tokenizer/tokenizer.json"]
    assert check(client.get(API), 200)["sha"] == sha
