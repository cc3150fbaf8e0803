"""The database step of a batch of downloads on PostgreSQL, in three round trips.

Sent one by one through SQLAlchemy, a batch is about a dozen statements, each its own round
trip; and a round trip, not the work PostgreSQL does, is what a statement costs: the
client's CPU in send/recv/poll, and with a remote database the network's latency, paid once
per statement while every download of the batch waits. Here each phase's statements go to
the server as one message (psycopg's ``ClientCursor`` binds the parameters client-side with
libpq's quoting) and PostgreSQL runs them in order, in the session's transaction:

1. :func:`read`: the token rows, locked in jti order; their files with the components; the
   components' stages; the holders' grants and partner agreements; files already started;
2. :func:`lock`: the quota counters charged (``INSERT … ON CONFLICT … RETURNING``, in key
   order) and the audit chain's head (``FOR UPDATE``), the two locks a batch writes under;
3. :func:`write`: refused charges taken back, obsolete windows dropped, use counts, starts,
   the audit rows and the new head.

Then the session commits. Rows travel as one JSON document per statement
(``json_to_recordset``), not one parameter per value: psycopg adapts parameters in Python.
The SQLite path (:mod:`app.delivery.service`) runs the same steps through the repositories;
``tests/delivery/test_pg_batch.py`` checks that both read the same facts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.access.rule import Holdings
from app.audit.service import Head, insert_events_sql, rows_json
from app.tokens import repository as repo

Statement = tuple[str, Sequence[object]]


def run(session: Session, statements: Sequence[Statement]) -> list[list[tuple[Any, ...]]]:
    """Run ``statements`` in one round trip, in the session's transaction; the rows of each
    (empty for those that return none)."""
    sql = ";\n".join(s for s, _ in statements)
    params = [p for _, ps in statements for p in ps]
    raw = session.connection().connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    try:
        with psycopg.ClientCursor(raw) as cur:
            cur.execute(sql, params)
            out: list[list[tuple[Any, ...]]] = []
            while True:
                out.append(list(cur.fetchall()) if cur.description is not None else [])
                if not cur.nextset():
                    return out
    except psycopg.Error as exc:
        # As SQLAlchemy would have raised it (so the batch is retried request by request),
        # without the parameters: they hold client addresses and request ids.
        raise DBAPIError.instance(sql, None, exc, psycopg.Error, hide_parameters=True) from exc


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


# Lists travel as JSON arrays (``IN (SELECT json_array_elements_text(…))``): psycopg would
# adapt a Python list element by element, in Python.
_TOKENS = """
SELECT t.jti, t.kind, t.subject, t.revoked_at, t.max_uses, t.uses, t.model_id, t.release_id,
       r.revision, u.role, u.disabled_at, p.name, p.disabled_at
FROM issued_tokens t
LEFT JOIN releases r ON r.id = t.release_id
LEFT JOIN users u ON u.id = t.user_id
LEFT JOIN partners p ON p.id = t.partner_id
WHERE t.jti IN (SELECT json_array_elements_text(%s::json))
ORDER BY t.jti
FOR UPDATE OF t"""
# The files, stages and holdings are those of the tokens' releases and models, named by
# subqueries on the rows the first statement locked: nothing waits for its answer.
_FILES = """
SELECT f.release_id, f.path, f.sha256, f.size, c.id, c.name, c.held_at, c.restricted_tier
FROM release_files f JOIN components c ON c.id = f.component_id
WHERE f.release_id IN (
    SELECT release_id FROM issued_tokens
    WHERE jti IN (SELECT json_array_elements_text(%s::json))
) AND f.path IN (SELECT json_array_elements_text(%s::json))"""
_STAGES = """
SELECT s.component_id, s.tier, s.at FROM stages s
WHERE s.component_id IN (
    SELECT f.component_id FROM release_files f
    WHERE f.release_id IN (
        SELECT release_id FROM issued_tokens
        WHERE jti IN (SELECT json_array_elements_text(%s::json))
    ) AND f.path IN (SELECT json_array_elements_text(%s::json))
) OR s.component_id IN (SELECT json_array_elements_text(%s::json)::bigint)
ORDER BY s.component_id, s.at"""
_GRANTS = """
SELECT g.user_id, g.model_id FROM grants g
WHERE g.user_id IN (SELECT json_array_elements_text(%s::json)::bigint)
  AND g.revoked_at IS NULL
  AND g.model_id IN (
    SELECT model_id FROM issued_tokens
    WHERE jti IN (SELECT json_array_elements_text(%s::json))
)"""
_AGREEMENTS = """
SELECT a.partner_id, a.model_id, a.ends_at, p.disabled_at
FROM partner_agreements a JOIN partners p ON p.id = a.partner_id
WHERE a.partner_id IN (SELECT json_array_elements_text(%s::json)::bigint)
  AND a.model_id IN (
    SELECT model_id FROM issued_tokens
    WHERE jti IN (SELECT json_array_elements_text(%s::json))
)"""
_STARTS = """
SELECT jti, path FROM token_file_starts
WHERE jti IN (SELECT json_array_elements_text(%s::json))
  AND path IN (SELECT json_array_elements_text(%s::json))"""


@dataclass(frozen=True)
class Read:
    """What :func:`read` found for the batch."""

    tokens: dict[str, repo.TokenFacts]
    files: dict[tuple[int, str], repo.FileFacts]
    stages: dict[int, list[tuple[str, datetime]]]
    held: Holdings
    started: set[tuple[str, str]]  # (jti, path) started before, whatever the token's limit


def read(
    session: Session,
    wanted: Iterable[tuple[str, str]],
    *,
    user_ids: Iterable[int],
    partner_ids: Iterable[int],
    component_ids: Iterable[int],
    async_commit: bool,
) -> Read:
    """Everything a batch decides from, in one round trip. ``wanted``: the ``(jti, path)``
    its token requests ask for; ``component_ids``: more components whose stages it needs
    (those of anonymous requests' files)."""
    pairs = set(wanted)
    jtis = json.dumps(sorted({j for j, _ in pairs}))
    paths = json.dumps(sorted({p for _, p in pairs}))
    statements: list[Statement] = [
        (_TOKENS, [jtis]),
        (_FILES, [jtis, paths]),
        (_STAGES, [jtis, paths, json.dumps(sorted(set(component_ids)))]),
        (_GRANTS, [json.dumps(sorted(set(user_ids))), jtis]),
        (_AGREEMENTS, [json.dumps(sorted(set(partner_ids))), jtis]),
        (_STARTS, [jtis, paths]),
    ]
    if async_commit:
        statements.insert(0, ("SET LOCAL synchronous_commit TO OFF", []))
    *_, tokens, files, stages, grants, agreements, starts = run(session, statements)
    token_facts = {
        jti: repo.TokenFacts(
            jti=jti,
            kind=kind,
            subject=subject,
            revoked_at=_utc(revoked_at),
            max_uses=max_uses,
            uses=uses,
            model_id=model_id,
            release_id=release_id,
            revision=revision,
            user_role=role,
            user_disabled_at=_utc(user_disabled),
            partner_name=partner_name,
            partner_disabled_at=_utc(partner_disabled),
        )
        for (
            jti,
            kind,
            subject,
            revoked_at,
            max_uses,
            uses,
            model_id,
            release_id,
            revision,
            role,
            user_disabled,
            partner_name,
            partner_disabled,
        ) in tokens
    }
    releases = {j: t.release_id for j, t in token_facts.items()}
    asked = {(releases.get(j), p) for j, p in pairs}
    file_facts = {
        (rid, path): repo.FileFacts(rid, path, sha, size, cid, name, _utc(held), restricted)
        for rid, path, sha, size, cid, name, held, restricted in files
        if (rid, path) in asked
    }
    by_component: dict[int, list[tuple[str, datetime]]] = {}
    for cid, tier, at in stages:
        by_component.setdefault(cid, []).append((tier, at.astimezone(UTC)))
    held = Holdings.of(
        grants=((u, m) for u, m in grants),
        agreements=((p, m, _utc(ends), disabled) for p, m, ends, disabled in agreements),
    )
    started = {(j, p) for j, p in starts if (j, p) in pairs}
    return Read(token_facts, file_facts, by_component, held, started)


_CHARGE = """
INSERT INTO quota_counters (key, window_start, amount)
SELECT key, window_start, amount
FROM json_to_recordset(%s::json) AS r(key text, window_start timestamptz, amount bigint)
ORDER BY key, window_start
ON CONFLICT (key, window_start) DO UPDATE SET amount = quota_counters.amount + excluded.amount
RETURNING key, window_start, amount"""
_LOCK_HEAD = "SELECT last_id, last_hash FROM audit_head WHERE id = 1 FOR UPDATE"
_NEW_HEAD = (
    "INSERT INTO audit_head (id, last_id, last_hash) VALUES (1, 0, %s) ON CONFLICT DO NOTHING"
)


def _counters_json(amounts: Mapping[repo.Counter, int]) -> str:
    return json.dumps(
        [{"key": k, "window_start": w.isoformat(), "amount": a} for (k, w), a in amounts.items()]
    )


def lock(
    session: Session, asked: Mapping[repo.Counter, int]
) -> tuple[dict[repo.Counter, int], Head]:
    """Add the batch's charges to their counters and lock the audit head, in one round trip:
    each counter's new total, and the head."""
    statements: list[Statement] = [(_LOCK_HEAD, [])]
    if asked:
        statements.insert(0, (_CHARGE, [_counters_json(asked)]))
    *charged, head = run(session, statements)
    totals = {(k, w.astimezone(UTC)): int(a) for k, w, a in (charged[0] if charged else [])}
    if not head:  # the migration seeds the head; a database without one starts it
        from app.audit.chain import GENESIS

        _, head = run(session, [(_NEW_HEAD, [GENESIS]), (_LOCK_HEAD, [])])
    return totals, (int(head[0][0]), str(head[0][1]))


_REFUND = """
UPDATE quota_counters SET amount = quota_counters.amount - r.amount
FROM json_to_recordset(%s::json) AS r(key text, window_start timestamptz, amount bigint)
WHERE quota_counters.key = r.key AND quota_counters.window_start = r.window_start"""
_DROP_OLD_WINDOWS = """
DELETE FROM quota_counters
USING json_to_recordset(%s::json) AS r(key text, window_start timestamptz)
WHERE quota_counters.key = r.key AND quota_counters.window_start < r.window_start"""
_SET_USES = """
UPDATE issued_tokens SET uses = r.uses, last_used_at = r.at
FROM json_to_recordset(%s::json) AS r(jti text, uses integer, at timestamptz)
WHERE issued_tokens.jti = r.jti"""
_ADD_STARTS = """
INSERT INTO token_file_starts (jti, path, started_at)
SELECT jti, path, at FROM json_to_recordset(%s::json) AS r(jti text, path text, at timestamptz)
ON CONFLICT (jti, path) DO NOTHING"""
_SET_HEAD = "UPDATE audit_head SET last_id = %s, last_hash = %s WHERE id = 1"


def write(
    session: Session,
    *,
    refunds: Mapping[repo.Counter, int],
    opened: Sequence[repo.Counter],
    counts: Sequence[tuple[str, int, datetime]],
    starts: Sequence[tuple[str, str, datetime]],
    events: Sequence[dict[str, Any]],
) -> None:
    """Everything the batch writes, in one round trip (the session then commits)."""
    statements: list[Statement] = []
    if refunds:
        statements.append((_REFUND, [_counters_json(refunds)]))
    if opened:
        windows = [{"key": k, "window_start": w.isoformat()} for k, w in opened]
        statements.append((_DROP_OLD_WINDOWS, [json.dumps(windows)]))
    if counts:
        uses = [{"jti": j, "uses": u, "at": t.isoformat()} for j, u, t in counts]
        statements.append((_SET_USES, [json.dumps(uses)]))
    if starts:
        started = [{"jti": j, "path": p, "at": t.isoformat()} for j, p, t in starts]
        statements.append((_ADD_STARTS, [json.dumps(started)]))
    if events:
        statements.append((insert_events_sql("%s"), [rows_json(events)]))
        statements.append((_SET_HEAD, [events[-1]["id"], events[-1]["hash"]]))
    if statements:
        run(session, statements)
