"""Deciding a download: verify the token, re-check it and the access rule in the database,
count the use, charge the quota, audit; then the router redirects or streams.

:func:`authorize` runs as one short transaction in a worker thread (its own session,
committed before any byte moves), so a long stream never holds a lock and the event loop
never waits on the database. Re-checked at every redemption, in this order:

1. the token (signature, claims; :mod:`app.tokens.codec`) and its scope against the URL;
2. its row: known, a download token of the same subject, not revoked;
3. the file: exists in the token's release, whose revision is the token's, in a component
   the token covers;
4. the holder: not disabled, and the access rule *now* (clearance now, schedule now, never
   more than the token's tier) — so a token never outlives the permission that issued it;
5. ``max_uses``: one conditional ``UPDATE`` takes a use; a Range request for a path this
   token already started is a continuation and takes none;
6. the bytes-per-day quota.

Anonymous requests (no token) get files of components that are ``open`` now, under a
per-address quota. Every outcome, success or refusal, is an audit event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from app.access.principals import Principal
from app.access.rule import clearance_for
from app.access.tiers import Tier
from app.context import RequestContext
from app.delivery.streaming import RangePlan, plan_range
from app.errors import AppError, NotFound, TokenInvalid, Unauthorized
from app.schedule.evaluate import ScheduleState, effective_tier
from app.settings import Settings
from app.tokens import events, quotas
from app.tokens import repository as repo
from app.tokens.claims import DownloadClaims, FileRequest, parse_subject
from app.tokens.codec import SignedButRefused
from app.tokens.entitlement import refusal, usable_clearance

Mode = Literal["redirect", "proxy"]


@dataclass(frozen=True)
class FileAddress:
    namespace: str
    name: str
    version: str
    path: str

    @property
    def model(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def audit_id(self) -> str:
        return f"{self.model}@{self.version}/{self.path}"[:256]


@dataclass(frozen=True)
class Authorized:
    """A download allowed: what to send, and how long a presigned URL may live."""

    sha256: str
    size: int
    plan: RangePlan
    token_expires: int | None  # the token's exp (epoch seconds); None when anonymous


def _not_found(address: FileAddress) -> NotFound:
    return NotFound(
        f"no file {address.path!r} in {address.model} {address.version}", code="file_not_found"
    )


def _state(
    component_id: int, held_at: datetime | None, restricted: str | None, session: Session
) -> ScheduleState:
    return ScheduleState.of(repo.stages_of(session, component_id), held_at, restricted)


def _sends_bytes(method: str, plan: RangePlan) -> bool:
    return method == "GET" and plan.status in (200, 206)


def authorize(
    sessions: sessionmaker[Session],
    *,
    claims: DownloadClaims | None,
    address: FileAddress,
    method: str,
    headers: Mapping[str, str],
    mode: Mode,
    settings: Settings,
    now: datetime,
    ctx: RequestContext,
) -> Authorized:
    """Allow the download (committing its use, quota charge and audit event) or raise the
    refusal (after committing its audit event)."""
    actor = claims.sub if claims is not None else "anonymous"
    data: dict[str, object] = {"method": method, "mode": mode, "path": address.path}
    if claims is not None:
        data["jti"] = claims.jti
    with sessions() as session:
        if settings.delivery_async_commit and session.get_bind().dialect.name == "postgresql":
            session.execute(text("SET LOCAL synchronous_commit TO OFF"))
        try:
            if claims is None:
                allowed = _anonymous(session, address, method, headers, settings, now, ctx, data)
            else:
                allowed = _with_token(
                    session, claims, address, method, headers, settings, now, data
                )
        except AppError as err:
            events.record_denial(
                session,
                now=now,
                actor=actor,
                action="download.denied",
                target_type="file",
                target_id=address.audit_id,
                error=err,
                data=data,
                ctx=ctx,
            )
            raise
        events.record(
            session,
            now=now,
            actor=actor,
            action="download.redeemed" if claims is not None else "download.anonymous",
            target_type="file",
            target_id=address.audit_id,
            data=data,
            ctx=ctx,
        )
        session.commit()
    return allowed


def _plan(
    headers: Mapping[str, str], sha256: str, size: int, method: str, data: dict[str, object]
) -> RangePlan:
    plan = plan_range(headers, size=size, sha256=sha256)
    data["status"] = plan.status
    data["bytes"] = plan.length if _sends_bytes(method, plan) else 0
    if plan.status == 206:
        data["range"] = [plan.start, plan.end]
    return plan


def _anonymous(
    session: Session,
    address: FileAddress,
    method: str,
    headers: Mapping[str, str],
    settings: Settings,
    now: datetime,
    ctx: RequestContext,
    data: dict[str, object],
) -> Authorized:
    f = repo.file_facts(
        session,
        namespace=address.namespace,
        name=address.name,
        version=address.version,
        path=address.path,
    )
    if (
        f is None
        or f.release_status != "published"
        or f.file_sha256 is None
        or f.file_size is None
        or f.component_id is None
    ):
        raise _not_found(address)
    tier = effective_tier(_state(f.component_id, f.held_at, f.restricted_tier, session), now)
    if tier == Tier.INTERNAL:
        raise _not_found(address)  # staff-only components are not there for anyone else
    if tier != Tier.OPEN:
        raise Unauthorized(
            f"this file is open to the {tier.value} tier: get a download token "
            "(POST /v1/tokens) and send it as ?token= or a Bearer header",
            code="token_required",
        )
    plan = _plan(headers, f.file_sha256, f.file_size, method, data)
    if _sends_bytes(method, plan):
        quotas.charge(
            session,
            quotas.anonymous_quota(settings),
            key=ctx.client_addr or "unknown",
            amount=1,
            now=now,
        )
    return Authorized(f.file_sha256, f.file_size, plan, None)


def _with_token(
    session: Session,
    claims: DownloadClaims,
    address: FileAddress,
    method: str,
    headers: Mapping[str, str],
    settings: Settings,
    now: datetime,
    data: dict[str, object],
) -> Authorized:
    request = FileRequest(model=address.model, version=address.version, path=address.path)
    early = claims.verify(now, request)
    if early is not None:
        raise early.error()
    f = repo.redemption_facts(session, jti=claims.jti, path=address.path)
    if f is None or f.kind != "download" or f.subject != claims.sub or f.model_id is None:
        raise TokenInvalid("token is not one this server issued", code="token_unknown")
    if f.revoked_at is not None:
        raise TokenInvalid("token has been revoked", code="token_revoked")
    if f.file_sha256 is None or f.file_size is None or f.component_id is None:
        raise _not_found(address)
    late = claims.verify(
        now,
        FileRequest(
            model=address.model,
            version=address.version,
            path=address.path,
            revision=f.revision,
            component=f.component_name,
        ),
    )
    if late is not None:
        raise late.error()
    kind, ident = claims.subject
    if (kind == "user" and (f.user_role is None or f.user_disabled_at is not None)) or (
        kind == "partner" and (f.partner_name is None or f.partner_disabled_at is not None)
    ):
        raise TokenInvalid("the token's holder is disabled", code="token_principal_disabled")
    holder = Principal(kind=kind, id=ident, role=f.user_role)
    clearance = usable_clearance(claims.tier, clearance_for(session, holder, f.model_id, now=now))
    state = _state(f.component_id, f.held_at, f.restricted_tier, session)
    denied = refusal(state, clearance=clearance, principal_kind=kind, now=now, what="this file")
    if denied is not None:
        raise denied
    plan = _plan(headers, f.file_sha256, f.file_size, method, data)
    if _sends_bytes(method, plan):
        _take_use(session, claims.jti, address.path, plan, f.max_uses, now, data)
        quotas.charge(
            session, quotas.bytes_quota(settings), key=claims.sub, amount=plan.length, now=now
        )
    return Authorized(f.file_sha256, f.file_size, plan, claims.exp)


def _take_use(
    session: Session,
    jti: str,
    path: str,
    plan: RangePlan,
    max_uses: int | None,
    now: datetime,
    data: dict[str, object],
) -> None:
    """Count a use, unless this is a Range request continuing a path already started."""
    if max_uses is not None:
        first = repo.start_file(session, jti, path, now=now)
        if not first and plan.status == 206:
            data["continuation"] = True
            return
    uses = repo.take_use(session, jti, now=now)
    if uses is None:
        if max_uses is None:  # revoked since the row was read
            raise TokenInvalid("token has been revoked", code="token_revoked")
        raise TokenInvalid(f"token has been used {max_uses} times", code="token_uses_exhausted")
    data["uses"] = uses


def record_token_refusal(
    sessions: sessionmaker[Session],
    *,
    error: TokenInvalid,
    address: FileAddress,
    method: str,
    now: datetime,
    ctx: RequestContext,
) -> None:
    """Audit a token refused before any database check. Nothing from a token whose signature
    failed is trusted (the actor is anonymous); a signed token refused for its claims
    (expired, wrong audience, …) names its holder and jti."""
    actor = "anonymous"
    data: dict[str, object] = {"method": method, "path": address.path}
    if isinstance(error, SignedButRefused):
        sub, jti = error.claims.get("sub"), error.claims.get("jti")
        actor = sub[:64] if isinstance(sub, str) and parse_subject(sub) else actor
        if isinstance(jti, str):
            data["jti"] = jti[:64]
    with sessions() as session:
        events.record_denial(
            session,
            now=now,
            actor=actor,
            action="download.denied",
            target_type="file",
            target_id=address.audit_id,
            error=error,
            data=data,
            ctx=ctx,
        )
