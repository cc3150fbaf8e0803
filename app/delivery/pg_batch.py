"""The database step of a batch of downloads on PostgreSQL: three statements.

Sent one by one through SQLAlchemy, a batch was about a dozen statements, each its own round
trip; and a round trip, more than the work PostgreSQL does, is what a statement costs: the
client's CPU in send/poll/recv and in waking up for each result, and with a remote database
the network's latency, paid once per statement while every download of the batch waits.
Here each phase is one statement, whose answer is one JSON document:

1. :func:`read`: the token rows, locked in jti order; their files with the components; the
   files anonymous requests name by their public coordinates; the components' stages; the
   holders' grants and partner agreements; files already started;
2. :func:`lock`: the quota counters charged (``INSERT … ON CONFLICT … RETURNING``, in key
   order), then the audit chain's head (``FOR UPDATE``): the two locks a batch writes under;
3. :func:`write`: refused charges taken back, obsolete windows dropped, use counts, files
   started or resumed,
   the audit rows and the new head, as data-modifying ``WITH`` queries.

Then the session commits. Rows travel as JSON documents (``json_to_recordset``) rather than
one parameter per value, which psycopg would adapt one by one, in Python; each statement is
the same text every time, so psycopg prepares it (after a few runs) and PostgreSQL does not
parse it again on that connection.
This is :class:`app.delivery.batch_store.PostgresBatch`; :class:`~app.delivery.batch_store.
GenericBatch` runs the same steps through the repositories, and
``tests/delivery/test_batch_parity.py`` checks on generated worlds that both read the same
facts, answer the same and write the same rows.
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

from app.audit.chain import GENESIS
from app.audit.service import Head, insert_events_sql, rows_json
from app.policy.clearance import Holdings
from app.quotas import repository as quota_repo
from app.tokens import repository as repo


def one(session: Session, sql: str, params: Mapping[str, object]) -> Any:
    """The single value ``sql`` returns, run in the session's transaction."""
    raw = session.connection().connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    try:
        with raw.cursor() as cur:
            row = cur.execute(sql, params).fetchone()
    except psycopg.Error as exc:
        # As SQLAlchemy would have raised it (so the batch is retried request by request),
        # without the parameters: they hold client addresses and request ids.
        raise DBAPIError.instance(sql, None, exc, psycopg.Error, hide_parameters=True) from exc
    return None if row is None else row[0]


def _utc(value: str) -> datetime:
    """A timestamp as PostgreSQL writes it in JSON, in UTC."""
    return datetime.fromisoformat(value).astimezone(UTC)


def _time(value: str | None) -> datetime | None:
    return None if value is None else _utc(value)


def _list(values: Iterable[str] | Iterable[int]) -> str:
    return json.dumps(sorted(set(values)))


# Lists travel as JSON arrays (``IN (SELECT json_array_elements_text(…))``). The token rows
# are locked first, in jti order (so concurrent batches of other replicas lock them in the
# same order); everything else is read through them.
_READ = """
WITH t AS (
    SELECT jti, kind, subject, revoked_at, max_uses, uses, model_id, release_id, user_id,
           partner_id
    FROM issued_tokens
    WHERE jti IN (SELECT json_array_elements_text(%(jtis)s::json))
    ORDER BY jti
    FOR UPDATE
), f AS (
    SELECT f.release_id, f.path, f.sha256, f.size, c.id AS component_id, c.name, c.held_at,
           c.restricted_tier
    FROM release_files f JOIN components c ON c.id = f.component_id
    WHERE f.release_id IN (SELECT release_id FROM t)
      AND f.path IN (SELECT json_array_elements_text(%(paths)s::json))
), a AS (
    -- Anonymous downloads name their files by public coordinates (ord: their position).
    SELECT q.ord, m.id AS model_id, r.id AS release_id, r.status, r.revision, f.sha256,
           f.size, c.id AS component_id, c.name, c.held_at, c.restricted_tier
    FROM json_to_recordset(%(addresses)s::json)
         AS q(ord int, namespace text, name text, version text, path text)
    JOIN models m ON m.namespace = q.namespace AND m.name = q.name
    JOIN releases r ON r.model_id = m.id AND r.version = q.version
    LEFT JOIN release_files f ON f.release_id = r.id AND f.path = q.path
    LEFT JOIN components c ON c.id = f.component_id
)
SELECT json_build_array(
    (SELECT json_agg(json_build_array(
                t.jti, t.kind, t.subject, t.revoked_at, t.max_uses, t.uses, t.model_id,
                t.release_id, r.revision, u.role, u.disabled_at, p.name, p.disabled_at))
     FROM t
     LEFT JOIN releases r ON r.id = t.release_id
     LEFT JOIN users u ON u.id = t.user_id
     LEFT JOIN partners p ON p.id = t.partner_id),
    (SELECT json_agg(json_build_array(
                release_id, path, sha256, size, component_id, name, held_at, restricted_tier))
     FROM f),
    (SELECT json_agg(json_build_array(component_id, tier, at) ORDER BY component_id, at)
     FROM stages
     WHERE component_id IN (SELECT component_id FROM f)
        OR component_id IN (SELECT component_id FROM a)),
    (SELECT json_agg(json_build_array(user_id, model_id))
     FROM grants
     WHERE user_id IN (SELECT json_array_elements_text(%(users)s::json)::bigint)
       AND revoked_at IS NULL
       AND model_id IN (SELECT model_id FROM t)),
    (SELECT json_agg(json_build_array(a.partner_id, a.model_id, a.ends_at, p.disabled_at))
     FROM partner_agreements a JOIN partners p ON p.id = a.partner_id
     WHERE a.partner_id IN (SELECT json_array_elements_text(%(partners)s::json)::bigint)
       AND a.model_id IN (SELECT model_id FROM t)),
    (SELECT json_agg(json_build_array(jti, path, uses, resumed))
     FROM token_file_starts
     WHERE jti IN (SELECT jti FROM t)
       AND path IN (SELECT json_array_elements_text(%(paths)s::json))),
    (SELECT json_agg(json_build_array(
                ord, model_id, release_id, status, revision, sha256, size, component_id, name,
                held_at, restricted_tier))
     FROM a),
    -- SET LOCAL, when asked for (WEIGHTGATE_DELIVERY_ASYNC_COMMIT).
    CASE WHEN %(async_commit)s THEN set_config('synchronous_commit', 'off', true) END
)"""


@dataclass(frozen=True)
class Read:
    """What :func:`read` found for the batch."""

    tokens: dict[str, repo.TokenFacts]
    files: dict[tuple[int, str], repo.FileFacts]
    stages: dict[int, list[tuple[str, datetime]]]
    held: Holdings
    # (jti, path) started before, whatever the token's limit: (uses on it, bytes resumed)
    started: dict[tuple[str, str], tuple[int, int]]
    open_files: dict[int, repo.OpenFileFacts]  # by position in ``addresses``; absent: none


def read(
    session: Session,
    wanted: Iterable[tuple[str, str]],
    *,
    user_ids: Iterable[int],
    partner_ids: Iterable[int],
    addresses: Sequence[tuple[str, str, str, str]],
    async_commit: bool,
) -> Read:
    """Everything a batch decides from, in one statement. ``wanted``: the ``(jti, path)``
    its token requests ask for; ``addresses``: the ``(namespace, name, version, path)`` its
    anonymous requests ask for (:func:`app.tokens.repository.file_facts` for each)."""
    pairs = set(wanted)
    tokens, files, stages, grants, agreements, starts, opened, _ = one(
        session,
        _READ,
        {
            "jtis": _list(j for j, _ in pairs),
            "paths": _list(p for _, p in pairs),
            "addresses": json.dumps(
                [
                    {"ord": i, "namespace": ns, "name": name, "version": version, "path": path}
                    for i, (ns, name, version, path) in enumerate(addresses)
                ]
            ),
            "users": _list(user_ids),
            "partners": _list(partner_ids),
            "async_commit": async_commit,
        },
    )
    token_facts = {
        jti: repo.TokenFacts(
            jti=jti,
            kind=kind,
            subject=subject,
            revoked_at=_time(revoked_at),
            max_uses=max_uses,
            uses=uses,
            model_id=model_id,
            release_id=release_id,
            revision=revision,
            user_role=role,
            user_disabled_at=_time(user_disabled),
            partner_name=partner_name,
            partner_disabled_at=_time(partner_disabled),
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
        ) in tokens or ()
    }
    releases = {j: t.release_id for j, t in token_facts.items()}
    asked = {(releases.get(j), p) for j, p in pairs}
    file_facts = {
        (rid, path): repo.FileFacts(rid, path, sha, size, cid, name, _time(held), restricted)
        for rid, path, sha, size, cid, name, held, restricted in files or ()
        if (rid, path) in asked
    }
    by_component: dict[int, list[tuple[str, datetime]]] = {}
    for cid, tier, at in stages or ():
        by_component.setdefault(cid, []).append((tier, _utc(at)))
    held = Holdings.of(
        grants=((u, m) for u, m in grants or ()),
        agreements=((p, m, _time(ends), disabled) for p, m, ends, disabled in agreements or ()),
    )
    started = {(j, p): (int(u), int(r)) for j, p, u, r in starts or () if (j, p) in pairs}
    open_files = {
        ord_: repo.OpenFileFacts(mid, rid, status, rev, sha, size, cid, name, _time(held), tier)
        for ord_, mid, rid, status, rev, sha, size, cid, name, held, tier in opened or ()
    }
    return Read(token_facts, file_facts, by_component, held, started, open_files)


# The counters first, then the head: json_build_array's arguments are evaluated in order,
# and that is the lock order of every batch (and of every replica's batches).
_LOCK = """
WITH charged AS (
    INSERT INTO quota_counters (key, window_start, amount)
    SELECT key, window_start, amount
    FROM json_to_recordset(%(asked)s::json) AS r(key text, window_start timestamptz, amount bigint)
    ORDER BY key, window_start
    ON CONFLICT (key, window_start) DO UPDATE
        SET amount = quota_counters.amount + excluded.amount
    RETURNING key, window_start, amount
)
SELECT json_build_array(
    (SELECT json_agg(json_build_array(key, window_start, amount)) FROM charged),
    (SELECT json_build_array(last_id, last_hash) FROM audit_head WHERE id = 1 FOR UPDATE)
)"""
_NEW_HEAD = """
INSERT INTO audit_head (id, last_id, last_hash) VALUES (1, 0, %(genesis)s)
ON CONFLICT DO NOTHING
RETURNING json_build_array(last_id, last_hash)"""


def _counters(amounts: Mapping[quota_repo.Counter, int]) -> str:
    return json.dumps(
        [{"key": k, "window_start": w.isoformat(), "amount": a} for (k, w), a in amounts.items()]
    )


def lock(
    session: Session, asked: Mapping[quota_repo.Counter, int]
) -> tuple[dict[quota_repo.Counter, int], Head]:
    """Add the batch's charges to their counters and lock the audit head, in one statement:
    each counter's new total, and the head."""
    charged, head = one(session, _LOCK, {"asked": _counters(asked)})
    totals = {(k, _utc(w)): int(a) for k, w, a in charged or ()}
    if head is None:  # the migration seeds the head; a database without one starts it
        head = one(session, _NEW_HEAD, {"genesis": GENESIS})
    return totals, (int(head[0]), str(head[1]))


_WRITE = f"""
WITH refunded AS (
    UPDATE quota_counters SET amount = quota_counters.amount - r.amount
    FROM json_to_recordset(%(refunds)s::json)
        AS r(key text, window_start timestamptz, amount bigint)
    WHERE quota_counters.key = r.key AND quota_counters.window_start = r.window_start
), dropped AS (
    DELETE FROM quota_counters
    USING json_to_recordset(%(opened)s::json) AS r(key text, window_start timestamptz)
    WHERE quota_counters.key = r.key AND quota_counters.window_start < r.window_start
), counted AS (
    UPDATE issued_tokens SET uses = r.uses, last_used_at = r.at
    FROM json_to_recordset(%(uses)s::json) AS r(jti text, uses integer, at timestamptz)
    WHERE issued_tokens.jti = r.jti
), started AS (
    INSERT INTO token_file_starts (jti, path, started_at, uses, resumed)
    SELECT jti, path, at, uses, resumed
    FROM json_to_recordset(%(files)s::json)
        AS r(jti text, path text, at timestamptz, uses integer, resumed bigint)
    ON CONFLICT (jti, path) DO UPDATE SET uses = excluded.uses, resumed = excluded.resumed
), appended AS (
    {insert_events_sql("%(events)s")}
)
UPDATE audit_head SET last_id = %(last_id)s, last_hash = %(last_hash)s WHERE id = 1
RETURNING 1"""  # noqa: S608 (constants only; every value is a parameter)


def write(
    session: Session,
    *,
    refunds: Mapping[quota_repo.Counter, int],
    opened: Sequence[quota_repo.Counter],
    counts: Sequence[tuple[str, int, datetime]],
    files: Sequence[repo.FileUse],
    events: Sequence[dict[str, Any]],
) -> None:
    """Everything the batch writes, in one statement (the session then commits). ``events``
    (never empty: every request of a batch is on record) follow the head :func:`lock` read."""
    one(
        session,
        _WRITE,
        {
            "refunds": _counters(refunds),
            "opened": json.dumps([{"key": k, "window_start": w.isoformat()} for k, w in opened]),
            "uses": json.dumps([{"jti": j, "uses": u, "at": t.isoformat()} for j, u, t in counts]),
            "files": json.dumps(
                [
                    {
                        "jti": f.jti,
                        "path": f.path,
                        "at": f.at.isoformat(),
                        "uses": f.uses,
                        "resumed": f.resumed,
                    }
                    for f in files
                ]
            ),
            "events": rows_json(events),
            "last_id": events[-1]["id"],
            "last_hash": events[-1]["hash"],
        },
    )
