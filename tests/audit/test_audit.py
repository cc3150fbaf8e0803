"""The audit log: filtered listing for admins, and a hash chain that names tampering."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session

from app import audit
from app.audit.chain import GENESIS, event_hash
from app.audit.verify import verify_chain
from app.clock import FixedClock
from app.models import AuditEvent, AuditHead
from tests.factories.principals import make_user


def seed(db: Session, clock: FixedClock, n: int = 6) -> list[AuditEvent]:
    events = []
    for i in range(n):
        events.append(
            audit.record(
                db,
                now=clock.advance(seconds=10),
                actor="user:1" if i % 2 else "system:scheduler",
                action="embargo.lifted"
                if i % 3 == 0
                else f"grant.{'created' if i % 2 else 'revoked'}",
                target_type="component" if i % 3 == 0 else "grant",
                target_id=f"acme/m@v1/c{i}",
                data={"i": i},
            )
        )
    db.commit()
    return events


def verify(client: TestClient, headers: dict[str, str]) -> dict[str, object]:
    resp = client.get("/v1/audit/verify", headers=headers)
    assert resp.status_code == 200
    body: dict[str, object] = resp.json()
    return body


def test_ids_are_gap_free_and_each_event_links_to_the_one_before(
    db: Session, clock: FixedClock
) -> None:
    events = seed(db, clock, 4)
    start = events[0].id - 1
    assert [e.id for e in events] == list(range(start + 1, start + 5))
    assert events[1].prev_hash == events[0].hash
    head = db.get(AuditHead, 1, populate_existing=True)
    assert head is not None
    assert (head.last_id, head.last_hash) == (events[-1].id, events[-1].hash)


def test_a_rolled_back_event_leaves_no_gap(db: Session, clock: FixedClock) -> None:
    first = audit.record(db, now=clock.now(), actor="system", action="a")
    nested = db.begin_nested()
    audit.record(db, now=clock.now(), actor="system", action="rolled-back")
    nested.rollback()
    after = audit.record(db, now=clock.now(), actor="system", action="b")
    assert after.id == first.id + 1
    assert after.prev_hash == first.hash
    assert verify_chain(db).ok


def test_listing_filters_and_pages_newest_first(
    client: TestClient, db: Session, clock: FixedClock, admin_headers: dict[str, str]
) -> None:
    events = seed(db, clock)
    lifted = client.get("/v1/audit", params={"action": "embargo.lifted"}, headers=admin_headers)
    assert lifted.status_code == 200
    assert [e["id"] for e in lifted.json()["items"]] == [events[3].id, events[0].id]
    item = lifted.json()["items"][0]
    assert item["target_id"] == "acme/m@v1/c3"
    assert item["data"] == {"i": 3}
    assert item["hash"] == events[3].hash
    assert item["prev_hash"] == events[2].hash

    grants = client.get("/v1/audit", params={"action": "grant.*"}, headers=admin_headers).json()
    assert {e["action"] for e in grants["items"]} == {"grant.created", "grant.revoked"}
    by_actor = client.get(
        "/v1/audit", params={"actor": "user:1", "target_type": "grant"}, headers=admin_headers
    ).json()
    assert [e["id"] for e in by_actor["items"]] == [events[5].id, events[1].id]
    one = client.get(
        "/v1/audit",
        params={"target_type": "component", "target_id": "acme/m@v1/c3"},
        headers=admin_headers,
    ).json()
    assert [e["id"] for e in one["items"]] == [events[3].id]
    window = client.get(
        "/v1/audit",
        params={"since": events[1].at.isoformat(), "until": events[3].at.isoformat()},
        headers=admin_headers,
    ).json()
    assert [e["id"] for e in window["items"]] == [events[2].id, events[1].id]

    pages, cursor = [], None
    while True:
        params: dict[str, str | int] = {"limit": 4, "actor": "user:1"}
        if cursor:
            params["cursor"] = cursor
        body = client.get("/v1/audit", params=params, headers=admin_headers).json()
        pages.append([e["id"] for e in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    everything = [i for page in pages for i in page]
    assert everything == sorted(everything, reverse=True)
    assert set(everything) >= {events[1].id, events[3].id, events[5].id}


def test_listing_refuses_bad_input_and_non_admins(
    client: TestClient, db: Session, clock: FixedClock, admin_headers: dict[str, str]
) -> None:
    naive = client.get("/v1/audit", params={"since": "2026-01-01T00:00:00"}, headers=admin_headers)
    assert naive.status_code == 422
    assert naive.json()["code"] == "validation_error"
    assert "timezone" in naive.json()["detail"]
    assert client.get("/v1/audit", params={"limit": 0}, headers=admin_headers).status_code == 422
    assert client.get("/v1/audit").status_code == 401
    _, key = make_user(db, clock)
    for path in ("/v1/audit", "/v1/audit/verify"):
        resp = client.get(path, headers={"Authorization": f"Bearer {key}"})
        assert resp.status_code == 403
        assert resp.json()["code"] == "admin_required"


def test_verify_is_ok_on_an_intact_chain(
    client: TestClient, db: Session, clock: FixedClock, admin_headers: dict[str, str]
) -> None:
    events = seed(db, clock)
    body = verify(client, admin_headers)
    total = db.scalar(select(func.count()).select_from(AuditEvent))
    assert body == {
        "ok": True,
        "events": total,
        "last_id": events[-1].id,
        "last_hash": events[-1].hash,
    }


def test_an_edited_row_is_named(
    client: TestClient, db: Session, clock: FixedClock, admin_headers: dict[str, str]
) -> None:
    events = seed(db, clock)
    victim = events[2]
    db.execute(text("UPDATE audit_events SET actor = 'user:666' WHERE id = :id"), {"id": victim.id})
    body = verify(client, admin_headers)
    assert body["ok"] is False
    assert body["first_bad"] == victim.id
    assert body["reason"] == f"event {victim.id} was edited: its content no longer matches its hash"


def test_an_edited_and_rehashed_row_breaks_the_next_link(
    client: TestClient, db: Session, clock: FixedClock, admin_headers: dict[str, str]
) -> None:
    """A forger who also recomputes the edited row's hash is caught by the next row."""
    events = seed(db, clock)
    victim = events[2]
    db.execute(update(AuditEvent).where(AuditEvent.id == victim.id).values(actor="user:666"))
    edited = db.get_one(AuditEvent, victim.id, populate_existing=True)
    forged = event_hash(edited, edited.prev_hash)
    db.execute(update(AuditEvent).where(AuditEvent.id == victim.id).values(hash=forged))
    body = verify(client, admin_headers)
    assert body["first_bad"] == victim.id + 1
    assert "does not link to the event before it" in str(body["reason"])


def test_a_deleted_row_is_named_by_its_id(
    client: TestClient, db: Session, clock: FixedClock, admin_headers: dict[str, str]
) -> None:
    events = seed(db, clock)
    victim = events[3]
    db.execute(delete(AuditEvent).where(AuditEvent.id == victim.id))
    body = verify(client, admin_headers)
    assert body["ok"] is False
    assert body["first_bad"] == victim.id
    assert f"event {victim.id} is missing (deleted)" in str(body["reason"])
    assert body["events"] == victim.id - 1


def test_deleted_rows_in_a_row_are_reported_as_a_range(
    client: TestClient, db: Session, clock: FixedClock, admin_headers: dict[str, str]
) -> None:
    events = seed(db, clock)
    db.execute(delete(AuditEvent).where(AuditEvent.id.in_([events[1].id, events[2].id])))
    body = verify(client, admin_headers)
    assert body["first_bad"] == events[1].id
    assert f"events {events[1].id}..{events[2].id} are missing" in str(body["reason"])


def test_a_truncated_tail_is_detected_against_the_head(
    client: TestClient, db: Session, clock: FixedClock, admin_headers: dict[str, str]
) -> None:
    events = seed(db, clock)
    db.execute(delete(AuditEvent).where(AuditEvent.id >= events[4].id))
    body = verify(client, admin_headers)
    assert body["ok"] is False
    assert body["first_bad"] == events[4].id
    assert "tail truncated" in str(body["reason"])


def test_a_rewritten_head_is_detected(db: Session, clock: FixedClock) -> None:
    seed(db, clock)
    db.execute(update(AuditHead).values(last_hash="e" * 64))
    report = verify_chain(db)
    assert not report.ok
    assert report.reason is not None
    assert "head" in report.reason


def test_an_empty_log_verifies(db: Session) -> None:
    db.execute(delete(AuditEvent))
    db.execute(update(AuditHead).values(last_id=0, last_hash=GENESIS))
    report = verify_chain(db)
    assert (report.ok, report.events, report.last_id) == (True, 0, 0)


def test_the_walk_crosses_batches(db: Session, clock: FixedClock) -> None:
    events = seed(db, clock, 7)
    assert verify_chain(db, batch=2).ok
    db.execute(delete(AuditEvent).where(AuditEvent.id == events[5].id))
    report = verify_chain(db, batch=2)
    assert report.first_bad == events[5].id


def verify_since(
    client: TestClient, headers: dict[str, str], since_id: object, since_hash: object
) -> dict[str, object]:
    resp = client.get(
        "/v1/audit/verify",
        params={"since_id": str(since_id), "since_hash": str(since_hash)},
        headers=headers,
    )
    assert resp.status_code == 200, resp.text
    body: dict[str, object] = resp.json()
    return body


def test_verify_since_an_anchor_reads_only_the_newer_events(
    client: TestClient, db: Session, clock: FixedClock, admin_headers: dict[str, str]
) -> None:
    seed(db, clock, 3)
    anchor = verify(client, admin_headers)  # what an operator records, e.g. daily
    newer = seed(db, clock, 4)
    body = verify_since(client, admin_headers, anchor["last_id"], anchor["last_hash"])
    assert body == {
        "ok": True,
        "events": 4,
        "last_id": newer[-1].id,
        "last_hash": newer[-1].hash,
        "since_id": anchor["last_id"],
    }
    # The anchor may be the head itself (nothing new) or the genesis (a full walk).
    at_head = verify_since(client, admin_headers, body["last_id"], body["last_hash"])
    assert (at_head["ok"], at_head["events"]) == (True, 0)
    full = verify_since(client, admin_headers, 0, GENESIS)
    assert (full["ok"], full["events"]) == (True, newer[-1].id)


def test_verify_since_names_tampering_after_and_at_the_anchor(
    client: TestClient, db: Session, clock: FixedClock, admin_headers: dict[str, str]
) -> None:
    old = seed(db, clock, 3)
    anchor_id, anchor_hash = old[-1].id, old[-1].hash
    newer = seed(db, clock, 3)

    db.execute(
        text("UPDATE audit_events SET actor = 'user:666' WHERE id = :id"), {"id": newer[1].id}
    )
    after = verify_since(client, admin_headers, anchor_id, anchor_hash)
    assert (after["ok"], after["first_bad"]) == (False, newer[1].id)
    assert after["events"] == 1
    assert "was edited" in str(after["reason"])
    db.execute(update(AuditEvent).where(AuditEvent.id == newer[1].id).values(actor=newer[1].actor))
    assert verify_since(client, admin_headers, anchor_id, anchor_hash)["ok"] is True

    # The history up to the anchor rewritten and re-hashed: the anchor's hash changed.
    forged = verify_since(client, admin_headers, anchor_id, "f" * 64)
    assert (forged["ok"], forged["first_bad"]) == (False, anchor_id)
    assert "not the one recorded" in str(forged["reason"])
    # The anchor edited in place.
    db.execute(text("UPDATE audit_events SET actor = 'user:666' WHERE id = :id"), {"id": anchor_id})
    edited = verify_since(client, admin_headers, anchor_id, anchor_hash)
    assert (edited["ok"], edited["first_bad"]) == (False, anchor_id)
    assert "was edited" in str(edited["reason"])
    # The log cut back to before the anchor.
    db.execute(delete(AuditEvent).where(AuditEvent.id >= anchor_id))
    db.execute(update(AuditHead).values(last_id=old[-2].id, last_hash=old[-2].hash))
    cut = verify_since(client, admin_headers, anchor_id, anchor_hash)
    assert (cut["ok"], cut["first_bad"]) == (False, old[-2].id + 1)
    assert "beyond the chain head" in str(cut["reason"])


def test_verify_since_refuses_a_half_or_malformed_anchor(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    half = client.get("/v1/audit/verify", params={"since_id": 3}, headers=admin_headers)
    assert half.status_code == 422
    assert half.json()["code"] == "incomplete_anchor"
    malformed: list[dict[str, str]] = [
        {"since_id": "-1", "since_hash": GENESIS},
        {"since_id": "1", "since_hash": "ABC"},
        {"since_id": "x", "since_hash": GENESIS},
    ]
    for params in malformed:
        bad = client.get("/v1/audit/verify", params=params, headers=admin_headers)
        assert bad.status_code == 422, params
        assert bad.headers["content-type"].startswith("application/problem+json")
    genesis = client.get(
        "/v1/audit/verify", params={"since_id": 0, "since_hash": "1" * 64}, headers=admin_headers
    )
    assert genesis.json()["ok"] is False
    assert genesis.json()["first_bad"] == 0
