"""Partner client credentials: generating, hashing and verifying ``client_secret``\\s.

Secrets are ``wgp_`` + 256 random bits (the prefix lets secret scanners spot a leaked one),
shown once and stored as SHA-256: with that much entropy there is nothing to brute-force, so
a slow password hash would only cost CPU on every ``/v1/oauth/token`` call. Comparison is
constant-time. A rotated secret stops working at once, unless the rotation was planned with
an overlap (``previous_secret_valid_for_seconds``): then it works until the overlap ends.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import audit
from app.access import repository as repo
from app.access.identities import clean_name
from app.access.schemas import AgreementIn, AgreementOut, PartnerCreate, PartnerOut, PartnerPatch
from app.catalogue.names import split_model_id
from app.context import RequestContext
from app.errors import Conflict, NotFound, Unprocessable
from app.models import Partner, PartnerAgreement
from app.policy.principals import Principal
from app.revocation.service import revoke_tokens

SECRET_PREFIX = "wgp_"  # noqa: S105 - a public prefix for secret scanners, not a secret
CLIENT_ID_PREFIX = "wgc_"
_SECRET_BODY_LEN = 43  # token_urlsafe(32)
# Compared against when the client id is unknown, so that case costs the same as a wrong
# secret (no timing oracle for which client ids exist).
_DUMMY_HASH = hashlib.sha256(b"weightgate-no-such-partner").hexdigest()


def generate_client_id() -> str:
    return CLIENT_ID_PREFIX + secrets.token_hex(12)


def generate_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def looks_like_secret(value: str) -> bool:
    return value.startswith(SECRET_PREFIX) and len(value) == len(SECRET_PREFIX) + _SECRET_BODY_LEN


def verify_partner_secret(
    session: Session, client_id: str, client_secret: str, now: datetime
) -> Partner | None:
    """The active partner whose credentials these are, or ``None`` (unknown client, wrong or
    expired secret, disabled partner). Never says which: the caller answers ``invalid_client``."""
    partner = None
    # No client id is longer, and none holds a NUL (which PostgreSQL cannot even compare).
    if len(client_id) <= 64 and "\x00" not in client_id:
        partner = session.scalar(select(Partner).where(Partner.client_id == client_id))
    given = hash_secret(client_secret)
    expected = partner.secret_hash if partner is not None else _DUMMY_HASH
    previous = (partner.previous_secret_hash if partner is not None else None) or _DUMMY_HASH
    # Both compared every time: how long this takes says nothing about which one matched.
    current_matches = hmac.compare_digest(expected, given)
    previous_matches = hmac.compare_digest(previous, given)
    if partner is None or not looks_like_secret(client_secret):
        return None
    if partner.disabled_at is not None:
        return None
    if current_matches:
        expires = partner.secret_expires_at
    elif previous_matches and partner.previous_secret_hash is not None:
        expires = partner.previous_secret_expires_at
        if expires is None:  # never written without an end; refuse rather than guess
            return None
    else:
        return None
    if expires is not None and expires <= now:
        return None
    return partner


# --- partner organisations (admin) --------------------------------------------------------

AgreementSpec = dict[int, tuple[str, datetime | None]]  # model id → (ns/name, ends_at)


def agreement_specs(session: Session, models: Sequence[str | AgreementIn]) -> AgreementSpec:
    """Resolve ``["ns/name" | {"model", "ends_at"}]`` to model ids; unknown models are 422."""
    wanted: list[tuple[str, datetime | None]] = [
        (m, None) if isinstance(m, str) else (m.model, m.ends_at) for m in models
    ]
    names = [split_model_id(m) for m, _ in wanted]
    if len(set(names)) != len(names):
        raise Unprocessable("a model is listed twice", code="duplicate_model")
    found = repo.models_by_repo_ids(session, names)
    missing = [f"{ns}/{n}" for ns, n in names if f"{ns}/{n}" not in found]
    if missing:
        raise Unprocessable(
            f"unknown model(s): {', '.join(missing[:5])}", code="unknown_model", models=missing[:20]
        )
    return {
        found[f"{ns}/{n}"].id: (f"{ns}/{n}", ends)
        for (ns, n), (_, ends) in zip(names, wanted, strict=True)
    }


def _live(agreement: PartnerAgreement, now: datetime) -> bool:
    return agreement.ends_at is None or agreement.ends_at > now


def partner_snapshot(
    partner: Partner, agreements: Sequence[tuple[PartnerAgreement, str]]
) -> dict[str, Any]:
    """What the audit log records about a partner (never the secret or its hash)."""
    return {
        "name": partner.name,
        "client_id": partner.client_id,
        "disabled": partner.disabled_at is not None,
        "secret_expires_at": _iso(partner.secret_expires_at),
        "previous_secret_expires_at": _iso(partner.previous_secret_expires_at),
        "models": {name: _iso(a.ends_at) for a, name in agreements},
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _check_future(value: datetime | None, now: datetime, what: str) -> None:
    if value is not None and value <= now:
        raise Unprocessable(f"{what} must be in the future", code="invalid_date")


def create_partner(
    session: Session,
    *,
    body: PartnerCreate,
    actor: Principal,
    now: datetime,
    ctx: RequestContext | None = None,
) -> tuple[Partner, str]:
    """A new partner and its client secret (returned once, stored only as a hash)."""
    name = clean_name(body.name, blank=False)
    if repo.partner_by_name(session, name) is not None:
        raise Conflict(f"a partner named {name!r} already exists", code="partner_exists")
    _check_future(body.secret_expires_at, now, "secret_expires_at")
    specs = agreement_specs(session, body.models)
    for _, ends_at in specs.values():
        _check_future(ends_at, now, "ends_at")
    secret = generate_secret()
    partner = Partner(
        name=name,
        client_id=generate_client_id(),
        secret_hash=hash_secret(secret),
        secret_expires_at=body.secret_expires_at,
        created_at=now,
    )
    session.add(partner)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as e:
        raise Conflict(f"a partner named {name!r} already exists", code="partner_exists") from e
    for model_id, (_, ends_at) in specs.items():
        session.add(
            PartnerAgreement(
                partner_id=partner.id, model_id=model_id, created_at=now, ends_at=ends_at
            )
        )
    session.flush()
    audit.record(
        session,
        now=now,
        actor=actor.subject,
        action="partner.created",
        target_type="partner",
        target_id=partner.id,
        after=partner_snapshot(partner, repo.agreements(session, [partner.id])[partner.id]),
        ctx=ctx,
    )
    return partner, secret


def update_partner(
    session: Session,
    *,
    partner_id: int,
    body: PartnerPatch,
    actor: Principal,
    now: datetime,
    ctx: RequestContext | None = None,
) -> tuple[Partner, str | None]:
    """Rename, change covered models, rotate the secret, disable or re-enable.

    Ending an agreement revokes the partner's tokens for that model; disabling revokes all
    its tokens; rotating revokes its API access tokens (the old secret may have leaked),
    unless it is a planned rotation with an overlap for the old secret.
    """
    partner = repo.partner(session, partner_id, for_update=True)
    if partner is None:
        raise NotFound(f"no partner {partner_id}", code="partner_not_found")
    before = partner_snapshot(partner, repo.agreements(session, [partner.id])[partner.id])
    if body.name is not None and clean_name(body.name, blank=False) != partner.name:
        name = clean_name(body.name, blank=False)
        if repo.partner_by_name(session, name) is not None:
            raise Conflict(f"a partner named {name!r} already exists", code="partner_exists")
        partner.name = name
    if body.models is not None:
        _replace_agreements(session, partner, agreement_specs(session, body.models), now=now)
    if "secret_expires_at" in body.model_fields_set:
        if body.secret_expires_at != partner.secret_expires_at:
            _check_future(body.secret_expires_at, now, "secret_expires_at")
        partner.secret_expires_at = body.secret_expires_at
        partner.secret_expiry_reminded_at = None
    if body.previous_secret_valid_for_seconds and not body.rotate_secret:
        raise Unprocessable(
            "previous_secret_valid_for_seconds only goes with rotate_secret: true",
            code="invalid_rotation",
        )
    secret = None
    if body.rotate_secret:
        secret = generate_secret()
        overlap = body.previous_secret_valid_for_seconds
        if overlap:
            # Planned: the old secret keeps working while the partner deploys the new one,
            # and so do the tokens it got. A secret replaced earlier is dropped.
            partner.previous_secret_hash = partner.secret_hash
            partner.previous_secret_expires_at = now + timedelta(seconds=overlap)
        else:
            # The old secret may have leaked: it, any earlier one and their tokens stop now.
            partner.previous_secret_hash = partner.previous_secret_expires_at = None
            revoke_tokens(
                session,
                now=now,
                reason="partner secret rotated",
                partner_id=partner.id,
                kind="partner_access",
            )
        partner.secret_hash = hash_secret(secret)
        partner.secret_rotated_at = now
        partner.secret_expiry_reminded_at = None
    if body.disabled is True and partner.disabled_at is None:
        partner.disabled_at = now
        revoke_tokens(session, now=now, reason="partner disabled", partner_id=partner.id)
    elif body.disabled is False:
        partner.disabled_at = None
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as e:
        raise Conflict("a partner with this name already exists", code="partner_exists") from e
    after = partner_snapshot(partner, repo.agreements(session, [partner.id])[partner.id])
    audit.record(
        session,
        now=now,
        actor=actor.subject,
        action="partner.updated",
        target_type="partner",
        target_id=partner.id,
        before=before,
        after=after,
        data={"secret_rotated": secret is not None},
        ctx=ctx,
    )
    return partner, secret


def _replace_agreements(
    session: Session, partner: Partner, specs: AgreementSpec, *, now: datetime
) -> None:
    current = {a.model_id: a for a, _ in repo.agreements(session, [partner.id])[partner.id]}
    was_live = {m for m, a in current.items() if _live(a, now)}
    for model_id, agreement in current.items():
        if model_id not in specs and _live(agreement, now):
            agreement.ends_at = now
    for model_id, (_, ends_at) in specs.items():
        existing = current.get(model_id)
        if existing is None:
            _check_future(ends_at, now, "ends_at")
            session.add(
                PartnerAgreement(
                    partner_id=partner.id, model_id=model_id, created_at=now, ends_at=ends_at
                )
            )
        elif ends_at != existing.ends_at:
            # Re-sending an unchanged (even past) end date is a no-op; a new one must be
            # ahead (to end an agreement now, leave the model out).
            _check_future(ends_at, now, "ends_at")
            existing.ends_at = ends_at
    session.flush()
    for model_id in sorted(was_live):
        if not _live(current[model_id], now):
            # Tokens re-check the rule anyway; revoking makes the end visible on them at once.
            revoke_tokens(
                session,
                now=now,
                reason="partner agreement ended",
                partner_id=partner.id,
                model_id=model_id,
            )


def partner_out(
    partner: Partner, agreements: Sequence[tuple[PartnerAgreement, str]], *, now: datetime
) -> PartnerOut:
    return PartnerOut(
        id=partner.id,
        name=partner.name,
        client_id=partner.client_id,
        created_at=partner.created_at,
        disabled_at=partner.disabled_at,
        secret_rotated_at=partner.secret_rotated_at,
        secret_expires_at=partner.secret_expires_at,
        previous_secret_expires_at=partner.previous_secret_expires_at,
        models=[
            AgreementOut(
                model=name, created_at=a.created_at, ends_at=a.ends_at, active=_live(a, now)
            )
            for a, name in agreements
        ],
    )


# --- reads for the routes -----------------------------------------------------------------


def partner_by_id(session: Session, partner_id: int) -> Partner | None:
    return repo.partner(session, partner_id)


def live_agreement_models(session: Session, partner: Partner, *, now: datetime) -> list[str]:
    """The models the partner's agreements cover now."""
    return repo.live_agreement_models(session, partner.id, now=now)


def partners_page(
    session: Session, *, after: int | None, limit: int, now: datetime
) -> list[PartnerOut]:
    """Partners in id order (keyset after ``after``) with their agreements: two statements."""
    rows = repo.partners_page(session, after=after, limit=limit)
    agreements = repo.agreements(session, [p.id for p in rows])
    return [partner_out(p, agreements[p.id], now=now) for p in rows]


def partner_view(session: Session, partner_id: int, *, now: datetime) -> PartnerOut:
    partner = repo.partner(session, partner_id)
    if partner is None:
        raise NotFound(f"no partner {partner_id}", code="partner_not_found")
    return partner_out(partner, repo.agreements(session, [partner.id])[partner.id], now=now)
