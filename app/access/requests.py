"""Access requests: a user asks for a model (answers + accepted license), an admin decides.

Approval creates a grant. Decisions are set-based — one ``UPDATE … WHERE status = 'pending'
RETURNING`` and one batched ``INSERT`` of grants whether an admin approves one request or
thousands — so a bulk approval costs a handful of statements, and a request two admins
decide at once is decided exactly once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import audit
from app.access import repository as repo
from app.access.schemas import (
    AccessRequestCreate,
    AccessRequestOut,
    BulkResult,
    BulkSkipped,
    UserRef,
)
from app.catalogue import repository as catalogue_repo
from app.context import RequestContext
from app.errors import Conflict, NotFound, Unprocessable
from app.models import AccessRequest, Model
from app.policy.principals import Principal
from app.policy.tiers import Tier
from app.webhooks.outbox import enqueue_event

MAX_ANSWER_CHARS = 2000
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")  # ISO 3166-1 alpha-2
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _bad(name: str, why: str) -> Unprocessable:
    return Unprocessable(f"answers.{name} {why}", code="invalid_answers", field=name)


def validate_answers(
    fields: Sequence[Mapping[str, Any]], answers: Mapping[str, str | bool]
) -> dict[str, str | bool]:
    """The answers checked against the model's request fields, normalised; 422 otherwise."""
    by_name = {str(f["name"]): f for f in fields}
    unknown = sorted(set(answers) - set(by_name))
    if unknown:
        raise Unprocessable(
            f"answers.{unknown[0][:64]} is not a field this model asks for",
            code="invalid_answers",
            field=unknown[0][:64],
        )
    out: dict[str, str | bool] = {}
    for name, field in by_name.items():
        value = answers.get(name)
        required = bool(field.get("required", True))
        kind = str(field.get("type", "text"))
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                raise _bad(name, "is required")
            continue
        if kind == "checkbox":
            if not isinstance(value, bool):
                raise _bad(name, "must be true or false")
            if required and not value:
                raise _bad(name, "must be checked")
            out[name] = value
            continue
        if not isinstance(value, str):
            raise _bad(name, "must be text")
        text = value.strip()
        if len(text) > MAX_ANSWER_CHARS:
            raise _bad(name, f"is longer than {MAX_ANSWER_CHARS} characters")
        if _CONTROL.search(text):
            raise _bad(name, "contains control characters")
        if kind == "email" and not _EMAIL.match(text):
            raise _bad(name, "is not an email address")
        if kind == "select" and text not in field.get("options", []):
            raise _bad(name, "is not one of the offered options")
        if kind == "country":
            text = text.upper()
            if not _COUNTRY.match(text):
                raise _bad(name, "must be a two-letter ISO 3166 country code")
        out[name] = text
    return out


def request_out(req: AccessRequest, *, model: str, email: str) -> AccessRequestOut:
    return AccessRequestOut(
        id=req.id,
        model=model,
        user=UserRef(id=req.user_id, email=email),
        status=req.status,
        answers=req.answers,
        license_sha256=req.license_sha256,
        reason=req.reason,
        created_at=req.created_at,
        decided_at=req.decided_at,
        decided_by=req.decided_by,
    )


def _event(req_id: int, model: str, user_id: int, email: str, **extra: Any) -> dict[str, Any]:
    return {"request_id": req_id, "model": model, "user": {"id": user_id, "email": email}, **extra}


def create_request(
    session: Session,
    *,
    principal: Principal,
    model: Model,
    clearance: Tier,
    body: AccessRequestCreate,
    now: datetime,
    ctx: RequestContext | None = None,
) -> AccessRequest:
    """Record a request; on an auto-approve model it is approved (and granted) at once."""
    assert principal.user_id is not None
    if clearance == Tier.INTERNAL:
        raise Conflict("staff already have full access to every model", code="already_cleared")
    if clearance == Tier.RESEARCH:
        raise Conflict(f"you already have access to {model.repo_id}", code="already_granted")
    if not body.accept_license:
        raise Unprocessable(
            "accept_license must be true: access is given under the model's license",
            code="license_not_accepted",
        )
    if body.license_sha256 is not None and body.license_sha256 != model.license_sha256:
        raise Conflict(
            "the license changed since you read it; read it again and resubmit",
            code="license_changed",
            license_sha256=model.license_sha256,
        )
    answers = validate_answers(model.request_fields, body.answers)
    if repo.pending_request(session, principal.user_id, model.id) is not None:
        raise Conflict(
            f"you already have a pending request for {model.repo_id}", code="request_pending"
        )
    req = AccessRequest(
        user_id=principal.user_id,
        model_id=model.id,
        status="pending",
        answers=answers,
        license_sha256=model.license_sha256,
        created_at=now,
    )
    session.add(req)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as e:  # a concurrent request won the partial unique index
        raise Conflict(
            f"you already have a pending request for {model.repo_id}", code="request_pending"
        ) from e
    user = repo.user(session, principal.user_id)
    email = user.email if user else ""
    audit.record(
        session,
        now=now,
        actor=principal.subject,
        action="access_request.created",
        target_type="access_request",
        target_id=req.id,
        after={"model": model.repo_id, "status": "pending", "license_sha256": req.license_sha256},
        data={"answers": answers},
        ctx=ctx,
    )
    data = _event(req.id, model.repo_id, req.user_id, email)
    enqueue_event(session, event_type="access.requested", data=data, now=now)
    if model.auto_approve:
        _decide(
            session,
            ids=[req.id],
            approve=True,
            reason="auto-approved",
            actor="system",
            decided_by=None,
            now=now,
            ctx=ctx,
        )
        session.refresh(req)
    return req


def decide_one(
    session: Session,
    *,
    request_id: int,
    approve: bool,
    reason: str | None,
    actor: Principal,
    now: datetime,
    ctx: RequestContext | None = None,
) -> AccessRequest:
    result = _decide(
        session,
        ids=[request_id],
        approve=approve,
        reason=reason,
        actor=actor.subject,
        decided_by=actor.user_id,
        now=now,
        ctx=ctx,
    )
    if result.skipped:
        if result.skipped[0].code == "not_found":
            raise NotFound(f"no access request {request_id}", code="access_request_not_found")
        req = repo.access_request(session, request_id)
        raise Conflict(
            f"access request {request_id} is already {req.status if req else 'decided'}",
            code="request_not_pending",
        )
    req = repo.access_request(session, request_id)
    assert req is not None
    session.refresh(req)
    return req


def decide_many(
    session: Session,
    *,
    ids: Sequence[int],
    approve: bool,
    reason: str | None,
    actor: Principal,
    now: datetime,
    ctx: RequestContext | None = None,
) -> BulkResult:
    return _decide(
        session,
        ids=ids,
        approve=approve,
        reason=reason,
        actor=actor.subject,
        decided_by=actor.user_id,
        now=now,
        ctx=ctx,
    )


def _decide(
    session: Session,
    *,
    ids: Sequence[int],
    approve: bool,
    reason: str | None,
    actor: str,
    decided_by: int | None,
    now: datetime,
    ctx: RequestContext | None,
) -> BulkResult:
    wanted = list(dict.fromkeys(ids))
    status = "approved" if approve else "denied"
    reason = reason.strip() if reason else None
    changed = repo.decide_pending(
        session, wanted, status=status, reason=reason, decided_by=decided_by, now=now
    )
    done = {rid for rid, _, _ in changed}
    if approve:
        # A pair that somehow still holds an active grant keeps it (the partial unique index
        # allows one); the request is approved either way.
        granted = repo.active_grant_pairs(session, [(u, m) for _, u, m in changed])
        repo.insert_grants(
            session,
            [(r, u, m) for r, u, m in changed if (u, m) not in granted],
            granted_by=decided_by,
            now=now,
        )
    leftover = [i for i in wanted if i not in done]
    exists = repo.existing_request_ids(session, leftover)
    skipped = [
        BulkSkipped(id=i, code="not_pending" if i in exists else "not_found") for i in leftover
    ]
    if changed:
        # One audit event per decided request, so each request's trail is complete (the
        # console's bulk approvals of hundreds are read request by request). They are
        # appended together: one head lock and one multi-row insert, whatever their number.
        models = repo.model_names(session, [m for _, _, m in changed])
        audit.record_many(
            session,
            [
                audit.NewEvent(
                    now,
                    actor,
                    f"access_request.{status}",
                    "access_request",
                    rid,
                    before={"status": "pending"},
                    after={"status": status, "reason": reason},
                    data={"model": models.get(mid, ""), "user_id": uid, "batch": len(changed)},
                    ctx=ctx,
                )
                for rid, uid, mid in sorted(changed)
            ],
        )
        _notify_decisions(session, changed, status=status, reason=reason, now=now)
    return BulkResult(action="approve" if approve else "deny", done=sorted(done), skipped=skipped)


def _notify_decisions(
    session: Session,
    changed: Sequence[tuple[int, int, int]],
    *,
    status: str,
    reason: str | None,
    now: datetime,
) -> None:
    """One webhook event per decided request (receivers act per user)."""
    event_type = "access.approved" if status == "approved" else "access.denied"
    if not repo.has_webhook_subscribers(session, event_type):
        return
    models = repo.model_names(session, [m for _, _, m in changed])
    emails = repo.user_emails(session, [u for _, u, _ in changed])
    for rid, uid, mid in changed:
        data = _event(rid, models.get(mid, ""), uid, emails.get(uid, ""), status=status)
        if reason and status == "denied":
            data["reason"] = reason
        enqueue_event(session, event_type=event_type, data=data, now=now)


def requests_out(
    session: Session, *, after: int | None, limit: int, **filters: Any
) -> list[AccessRequestOut]:
    """A page of requests with the repository's filters (status, model, user, age, answer
    text, email domain, order), each as the API shows it: two statements."""
    rows = repo.requests_page(session, after=after, limit=limit, **filters)
    names = repo.model_names(session, {r.model_id for r, _ in rows})
    return [request_out(r, model=names.get(r.model_id, ""), email=email) for r, email in rows]


def queue_page(
    session: Session, *, after: int | None, limit: int, **filters: Any
) -> list[tuple[AccessRequestOut, bool]]:
    """:func:`requests_out`, each with whether the license version the requester accepted
    is the model's current one (the admin's queue): three statements."""
    rows = repo.requests_page(session, after=after, limit=limit, **filters)
    model_ids = list({r.model_id for r, _ in rows})
    names = repo.model_names(session, model_ids)
    licenses = catalogue_repo.license_hashes(session, model_ids)
    return [
        (
            request_out(r, model=names.get(r.model_id, ""), email=email),
            licenses.get(r.model_id) == r.license_sha256,
        )
        for r, email in rows
    ]


# --- reads for the routes -----------------------------------------------------------------


def access_request(session: Session, request_id: int) -> AccessRequest | None:
    return repo.access_request(session, request_id)


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
) -> list[tuple[AccessRequest, str]]:
    """Requests (with the requester's email) in id order, filtered."""
    rows = repo.requests_page(
        session,
        after=after,
        limit=limit,
        status=status,
        model_id=model_id,
        user_id=user_id,
        created_before=created_before,
        answer=answer,
        email_domain=email_domain,
    )
    return [(r, email) for r, email in rows]


def request_view(session: Session, req: AccessRequest) -> AccessRequestOut:
    model = repo.model_names(session, [req.model_id]).get(req.model_id, "")
    email = repo.user_emails(session, [req.user_id]).get(req.user_id, "")
    return request_out(req, model=model, email=email)


def request_views(
    session: Session, rows: Sequence[tuple[AccessRequest, str]]
) -> list[AccessRequestOut]:
    names = repo.model_names(session, [r.model_id for r, _ in rows])
    return [request_out(r, model=names.get(r.model_id, ""), email=email) for r, email in rows]
