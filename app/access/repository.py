"""Every query of the access domain (users, keys, partners, requests, grants) lives here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import Row, String, cast, func, insert, or_, select, tuple_, update
from sqlalchemy.orm import Session

from app.models import (
    AccessRequest,
    ApiKey,
    Grant,
    Model,
    Partner,
    PartnerAgreement,
    User,
    WebhookSubscription,
)

# --- users and keys -----------------------------------------------------------------------


def user(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def user_emails(session: Session, user_ids: Iterable[int]) -> dict[int, str]:
    ids = list(set(user_ids))
    if not ids:
        return {}
    return {
        int(i): e for i, e in session.execute(select(User.id, User.email).where(User.id.in_(ids)))
    }


def user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(func.lower(User.email) == email.lower()))


def users_page(
    session: Session,
    *,
    after: int | None,
    limit: int,
    email: str | None = None,
    role: str | None = None,
    disabled: bool | None = None,
    text: str | None = None,
) -> Sequence[User]:
    q = select(User).order_by(User.id).limit(limit)
    if after is not None:
        q = q.where(User.id > after)
    if text:
        needle = text.strip().lower()
        q = q.where(
            or_(
                func.lower(User.email).contains(needle, autoescape=True),
                func.lower(User.name).contains(needle, autoescape=True),
            )
        )
    if email is not None:
        q = q.where(func.lower(User.email) == email.strip().lower())
    if role is not None:
        q = q.where(User.role == role)
    if disabled is not None:
        q = q.where(User.disabled_at.is_not(None) if disabled else User.disabled_at.is_(None))
    return session.scalars(q).all()


def api_keys_page(
    session: Session, user_id: int, *, after: int | None, limit: int
) -> Sequence[ApiKey]:
    q = select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.id).limit(limit)
    if after is not None:
        q = q.where(ApiKey.id > after)
    return session.scalars(q).all()


def api_key(session: Session, user_id: int, key_id: int) -> ApiKey | None:
    return session.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.user_id == user_id))


def count_live_keys(session: Session, user_id: int, *, now: datetime) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(ApiKey)
            .where(
                ApiKey.user_id == user_id,
                ApiKey.revoked_at.is_(None),
                or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now),
            )
        )
        or 0
    )


# --- models -------------------------------------------------------------------------------


def models_by_repo_ids(session: Session, ids: Iterable[tuple[str, str]]) -> dict[str, Model]:
    pairs = list(dict.fromkeys(ids))
    if not pairs:
        return {}
    rows = session.scalars(select(Model).where(tuple_(Model.namespace, Model.name).in_(pairs)))
    return {m.repo_id: m for m in rows}


def model_names(session: Session, model_ids: Iterable[int]) -> dict[int, str]:
    ids = list(set(model_ids))
    if not ids:
        return {}
    rows = session.execute(select(Model.id, Model.namespace, Model.name).where(Model.id.in_(ids)))
    return {mid: f"{ns}/{name}" for mid, ns, name in rows}


# --- partners -----------------------------------------------------------------------------


def partner(session: Session, partner_id: int, *, for_update: bool = False) -> Partner | None:
    q = select(Partner).where(Partner.id == partner_id)
    if for_update:
        q = q.with_for_update()
    return session.scalar(q)


def partner_by_name(session: Session, name: str) -> Partner | None:
    return session.scalar(select(Partner).where(Partner.name == name))


def partners_page(session: Session, *, after: int | None, limit: int) -> Sequence[Partner]:
    q = select(Partner).order_by(Partner.id).limit(limit)
    if after is not None:
        q = q.where(Partner.id > after)
    return session.scalars(q).all()


def agreements(
    session: Session, partner_ids: Sequence[int]
) -> dict[int, list[tuple[PartnerAgreement, str]]]:
    """Each partner's agreements with the covered model's ``namespace/name``."""
    out: dict[int, list[tuple[PartnerAgreement, str]]] = {p: [] for p in partner_ids}
    if not partner_ids:
        return out
    rows = session.execute(
        select(PartnerAgreement, Model.namespace, Model.name)
        .join(Model, Model.id == PartnerAgreement.model_id)
        .where(PartnerAgreement.partner_id.in_(partner_ids))
        .order_by(Model.namespace, Model.name)
    )
    for agreement, ns, name in rows:
        out[agreement.partner_id].append((agreement, f"{ns}/{name}"))
    return out


# --- access requests ----------------------------------------------------------------------


def access_request(session: Session, request_id: int) -> AccessRequest | None:
    return session.get(AccessRequest, request_id)


def pending_request(session: Session, user_id: int, model_id: int) -> AccessRequest | None:
    return session.scalar(
        select(AccessRequest).where(
            AccessRequest.user_id == user_id,
            AccessRequest.model_id == model_id,
            AccessRequest.status == "pending",
        )
    )


def requests_page(
    session: Session,
    *,
    after: int | None,
    limit: int,
    status: str | None = None,
    model_id: int | None = None,
    user_id: int | None = None,
    created_before: datetime | None = None,
    answer: str | None = None,
    email_domain: str | None = None,
    newest_first: bool = False,
) -> Sequence[Row[AccessRequest, str]]:
    """Requests oldest first (an approval queue), or newest first (a user's own history),
    each with the requester's email; ``after`` is the last id of the previous page. Filtered
    by age (``created_before``), by text in the answers (case-insensitive, over the stored
    JSON document) and by the requester's email domain."""
    order = AccessRequest.id.desc() if newest_first else AccessRequest.id
    q = (
        select(AccessRequest, User.email)
        .join(User, User.id == AccessRequest.user_id)
        .order_by(order)
        .limit(limit)
    )
    if after is not None:
        q = q.where(AccessRequest.id < after if newest_first else AccessRequest.id > after)
    if status is not None:
        q = q.where(AccessRequest.status == status)
    if model_id is not None:
        q = q.where(AccessRequest.model_id == model_id)
    if user_id is not None:
        q = q.where(AccessRequest.user_id == user_id)
    if created_before is not None:
        q = q.where(AccessRequest.created_at < created_before)
    if answer:
        document = func.lower(cast(AccessRequest.answers, String))
        q = q.where(document.contains(answer.lower(), autoescape=True))
    if email_domain:
        q = q.where(func.lower(User.email).endswith("@" + email_domain.lower(), autoescape=True))
    return session.execute(q).all()


def decide_pending(
    session: Session,
    ids: Sequence[int],
    *,
    status: str,
    reason: str | None,
    decided_by: int | None,
    now: datetime,
) -> list[tuple[int, int, int]]:
    """Move the still-pending requests among ``ids`` to ``status`` in one statement.

    Returns ``(id, user_id, model_id)`` of exactly the rows this call changed: a request a
    concurrent decision got to first is not returned (the ``status = 'pending'`` condition
    is re-checked under the row lock), so it cannot be decided twice.
    """
    if not ids:
        return []
    rows = session.execute(
        update(AccessRequest)
        .where(AccessRequest.id.in_(ids), AccessRequest.status == "pending")
        .values(status=status, reason=reason, decided_by=decided_by, decided_at=now)
        .returning(AccessRequest.id, AccessRequest.user_id, AccessRequest.model_id)
        .execution_options(synchronize_session=False)
    ).all()
    return [(int(i), int(u), int(m)) for i, u, m in rows]


def existing_request_ids(session: Session, ids: Sequence[int]) -> set[int]:
    if not ids:
        return set()
    return set(session.scalars(select(AccessRequest.id).where(AccessRequest.id.in_(ids))))


# --- grants -------------------------------------------------------------------------------


def active_grant(
    session: Session, user_id: int, model_id: int, *, for_update: bool = False
) -> Grant | None:
    q = select(Grant).where(
        Grant.user_id == user_id, Grant.model_id == model_id, Grant.revoked_at.is_(None)
    )
    if for_update:
        q = q.with_for_update()
    return session.scalar(q)


def latest_grant(session: Session, user_id: int, model_id: int) -> Grant | None:
    return session.scalar(
        select(Grant)
        .where(Grant.user_id == user_id, Grant.model_id == model_id)
        .order_by(Grant.id.desc())
        .limit(1)
    )


def active_grant_pairs(session: Session, pairs: Sequence[tuple[int, int]]) -> set[tuple[int, int]]:
    """Which ``(user_id, model_id)`` pairs already hold an active grant (one query)."""
    if not pairs:
        return set()
    rows = session.execute(
        select(Grant.user_id, Grant.model_id).where(
            tuple_(Grant.user_id, Grant.model_id).in_(list(set(pairs))),
            Grant.revoked_at.is_(None),
        )
    )
    return {(int(u), int(m)) for u, m in rows}


def insert_grants(
    session: Session,
    rows: Sequence[tuple[int, int, int]],
    *,
    granted_by: int | None,
    now: datetime,
) -> None:
    """Insert ``(request_id, user_id, model_id)`` grants as one batched statement."""
    if not rows:
        return
    session.execute(
        insert(Grant),
        [
            {
                "request_id": rid,
                "user_id": uid,
                "model_id": mid,
                "granted_by": granted_by,
                "created_at": now,
            }
            for rid, uid, mid in rows
        ],
    )


def grants_page(
    session: Session, model_id: int, *, after: int | None, limit: int, include_revoked: bool
) -> Sequence[Row[Grant, str]]:
    q = (
        select(Grant, User.email)
        .join(User, User.id == Grant.user_id)
        .where(Grant.model_id == model_id)
        .order_by(Grant.id)
        .limit(limit)
    )
    if after is not None:
        q = q.where(Grant.id > after)
    if not include_revoked:
        q = q.where(Grant.revoked_at.is_(None))
    return session.execute(q).all()


def user_grants_page(
    session: Session, user_id: int, *, after: int | None, limit: int
) -> Sequence[Row[Grant, Model]]:
    """A user's grants, revoked ones included, oldest first, with their models."""
    q = (
        select(Grant, Model)
        .join(Model, Model.id == Grant.model_id)
        .where(Grant.user_id == user_id)
        .order_by(Grant.id)
        .limit(limit)
    )
    if after is not None:
        q = q.where(Grant.id > after)
    return session.execute(q).all()


def live_agreement_models(session: Session, partner_id: int, *, now: datetime) -> list[str]:
    rows = session.execute(
        select(Model.namespace, Model.name)
        .join(PartnerAgreement, PartnerAgreement.model_id == Model.id)
        .where(
            PartnerAgreement.partner_id == partner_id,
            or_(PartnerAgreement.ends_at.is_(None), PartnerAgreement.ends_at > now),
        )
        .order_by(Model.namespace, Model.name)
    )
    return [f"{ns}/{name}" for ns, name in rows]


def has_webhook_subscribers(session: Session, event_type: str) -> bool:
    """Whether any active subscription wants ``event_type`` (one small read, so a bulk
    decision only builds per-request webhook events when someone listens)."""
    rows = session.scalars(
        select(WebhookSubscription.events).where(WebhookSubscription.disabled_at.is_(None))
    )
    return any(event_type in events or "*" in events for events in rows)


def audience_counts(session: Session, model_id: int, *, now: datetime) -> tuple[int, int]:
    """How many enabled users hold an active grant for the model, and how many enabled
    partners have a live agreement covering it: who a lift to ``research`` or ``partner``
    opens a component to (the console's lift confirmation)."""
    users = session.scalar(
        select(func.count())
        .select_from(Grant)
        .join(User, User.id == Grant.user_id)
        .where(Grant.model_id == model_id, Grant.revoked_at.is_(None), User.disabled_at.is_(None))
    )
    partners = session.scalar(
        select(func.count())
        .select_from(PartnerAgreement)
        .join(Partner, Partner.id == PartnerAgreement.partner_id)
        .where(
            PartnerAgreement.model_id == model_id,
            Partner.disabled_at.is_(None),
            or_(PartnerAgreement.ends_at.is_(None), PartnerAgreement.ends_at > now),
        )
    )
    return int(users or 0), int(partners or 0)
