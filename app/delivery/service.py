"""Deciding downloads: verify the token, re-check it and the access rule in the database,
count the use, charge the quota, audit; then the router redirects or streams.

Downloads are decided in batches (:mod:`app.delivery.group_commit`): :func:`redeem_batch`
runs one short transaction for every request that arrived while the previous batch was being
written, with the same number of statements for one request or a hundred, and commits
before any of them is answered, so a long stream never holds a lock, the event loop never
waits on the database, and nothing is served that is not on record. Each request is decided
as if it had run alone, in arrival order. Re-checked at every redemption:

1. the token (signature, claims; :mod:`app.tokens.codec`, done by the router) and its scope
   against the URL;
2. its row (locked for the batch): known, a download token of the same subject, not revoked;
3. the file: exists in the token's release, whose revision is the token's, in a component
   the token covers;
4. the holder: not disabled, and the access rule *now* (clearance now, schedule now, never
   more than the token's tier), so a token never outlives the permission that issued it;
5. ``max_uses`` (:mod:`app.tokens.uses`): a Range request for a path this token already
   started is a resume, and takes no use while the file's resumes stay within its size per
   use taken on it;
6. the bytes-per-day quota (:class:`app.quotas.service.Ledger`).

Both count what an answer hands out: the bytes of the range it streams, or, for a redirect
to a presigned URL (which can fetch the whole object, however often, until it expires), the
whole file. A HEAD or a 304 hands out nothing.

Anonymous requests (no token) get files of components that are ``open`` now, under a
per-address quota. Every outcome, success or refusal, is an audit event, tokens refused
before the database included (:class:`RefusedToken`). Hugging Face resolves, which their
route decides from an API key, join the batch for their quota charge and event
(:class:`Checked`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from app.audit import NewEvent
from app.context import RequestContext
from app.delivery.batch_store import Address, BatchAsk, BatchFacts, BatchStore, store_for
from app.delivery.streaming import RangePlan, plan_range
from app.errors import AppError, ServiceUnavailable, TokenInvalid
from app.policy.clearance import Holdings, usable_clearance
from app.policy.decision import Allowed, Reason, Refused, decide
from app.policy.disclosure import file_disclosure
from app.policy.principals import Principal, parse_subject
from app.policy.schedule import ScheduleState, effective_tier
from app.policy.tiers import Tier
from app.quotas import service as quotas
from app.refusals import denial
from app.refusals import refusal as answer
from app.settings import Settings
from app.storage import ObjectStore
from app.tokens import events
from app.tokens import repository as repo
from app.tokens.claims import DownloadClaims, FileRequest
from app.tokens.codec import SignedButRefused
from app.tokens.uses import FileKey, Progress, Use, Uses

Mode = Literal["redirect", "proxy"]


def delivery_mode(settings: Settings, store: ObjectStore) -> Mode:
    """How a file leaves: a 302 to a presigned URL, or the bytes through the server (always
    for the filesystem store, which cannot presign)."""
    return (
        "redirect"
        if settings.delivery_mode == "redirect" and store.name != "filesystem"
        else "proxy"
    )


log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class Redemption:
    """One download request: a verified token (or none, anonymous) and the file asked for."""

    claims: DownloadClaims | None
    address: FileAddress
    method: str
    headers: Mapping[str, str]  # Range, If-Range, If-None-Match
    mode: Mode
    now: datetime
    ctx: RequestContext


@dataclass(frozen=True)
class RefusedToken:
    """A request whose token failed verification: only its denial is left to record."""

    error: TokenInvalid
    address: FileAddress
    method: str
    now: datetime
    ctx: RequestContext


@dataclass(frozen=True)
class Checked:
    """A download whose route decided it itself (the Hugging Face ``/resolve``: an API key and
    the access rule, read in the request's own session): the batch charges its quota and
    records its event, with the same chain lock and commit as every other download. Its
    ``result`` is what to send, or the refusal to record."""

    result: Authorized | AppError
    charge: quotas.Charge | None
    address: FileAddress  # the release's version, not the revision the client named
    method: str
    now: datetime
    ctx: RequestContext
    actor: str
    action: str
    data: Mapping[str, object]  # the event's, before the outcome's code and status


Request = Redemption | RefusedToken | Checked


def _not_found(address: FileAddress, *, anonymous: bool = False) -> AppError:
    """A file the caller may not know about: missing, or closed to them (app/disclosure.py
    answers both alike)."""
    detail = f"no file {address.path!r} in {address.model} {address.version}"
    if anonymous:
        detail += (
            " that anyone may download: files not open to everyone need a download token "
            "(POST /v1/tokens), sent as ?token= or a Bearer header"
        )
    return answer(Reason.FILE_NOT_FOUND, detail)


def _sends_bytes(method: str, plan: RangePlan) -> bool:
    return method == "GET" and plan.status in (200, 206)


@dataclass
class _Pending:
    """A request that passed every check that does not count anything."""

    item: Redemption | Checked
    allowed: Authorized
    data: dict[str, object]
    jti: str | None = None  # a use to take (token downloads sending bytes)
    charge: quotas.Charge | None = None
    handed_out: int = 0  # bytes the answer hands out (the whole file for a redirect)


def redeem(
    sessions: sessionmaker[Session], requests: Sequence[Request], *, settings: Settings
) -> list[Authorized | AppError]:
    """:func:`redeem_batch` in a session of its own.

    What can fail is split in two: a failure in deciding one request is that request's alone
    (:func:`_decide` turns it into its own error, recorded like any refusal, and the batch
    goes on); a failure of the batch's shared work (a read, the locks, the writes, the
    commit: a deadlock with another replica's batch, a row one request trips over) raises, and
    :class:`app.delivery.group_commit.GroupCommit` runs each request again alone, so one
    request's failure never becomes its neighbours'. A request that fails alone is answered
    503 (the database) or 500 (a bug), and logged."""
    try:
        with sessions() as session:
            return redeem_batch(session, requests, settings)
    except Exception as exc:
        if len(requests) > 1:
            raise
        return [_failure(exc)]


def _failure(exc: Exception) -> AppError:
    if isinstance(exc, DBAPIError):
        log.warning("delivery.database_error", extra={"error": type(exc.orig).__name__})
        return ServiceUnavailable(
            "the download could not be recorded; try again",
            code="database_error",
            headers={"Retry-After": "1"},
        )
    log.error("delivery.failed", exc_info=exc)
    return _internal_error()


def _internal_error() -> AppError:
    return AppError("the download could not be decided; try again later", code="internal_error")


def redeem_batch(
    session: Session,
    requests: Sequence[Request],
    settings: Settings,
    *,
    store: BatchStore | None = None,
) -> list[Authorized | AppError]:
    """Decide ``requests`` in one transaction and commit it: for each, what to send, or the
    error to answer with (its denial is on record either way).

    Three steps behind :class:`~app.delivery.batch_store.BatchStore` (one statement each on
    PostgreSQL): read what the requests are decided from; charge the quotas and lock the
    audit chain; write the uses, refunds and events. Then commit."""
    if not requests:
        return []
    store = store or store_for(session)
    facts = _read(session, requests, store=store, async_commit=settings.delivery_async_commit)
    decided = [_decide(i, r, facts, settings) for i, r in enumerate(requests)]
    pending = [d for d in decided if isinstance(d, _Pending)]
    asked = quotas.asked(p.charge for p in pending if p.charge is not None)
    totals, head = store.lock(session, asked)
    ledger = quotas.Ledger(asked, totals)
    uses = Uses(facts.tokens, facts.started)
    results: list[Authorized | AppError] = []
    new_events: list[NewEvent] = []
    for request, d in zip(requests, decided, strict=True):
        if isinstance(d, _Pending):
            result, data = _count(d, uses, ledger), d.data
        else:
            result, data = d, _base_data(request)
        results.append(result)
        new_events.append(_event(request, result, data))
    store.write(session, ledger=ledger, uses=uses, events=new_events, head=head)
    session.commit()
    events.recorded(new_events)
    return results


def _read(
    session: Session, requests: Sequence[Request], *, store: BatchStore, async_commit: bool
) -> _Facts:
    redemptions = [r for r in requests if isinstance(r, Redemption)]
    users: set[int] = set()
    partners: set[int] = set()
    for r in redemptions:
        if r.claims is not None:
            kind, ident = r.claims.subject
            (users if kind == "user" else partners).add(ident)
    # Anonymous downloads name files by their public coordinates: each distinct file of the
    # batch is looked up once (a popular open model is the same few files again and again).
    anonymous = {
        i: _coordinates(r.address)
        for i, r in enumerate(requests)
        if isinstance(r, Redemption) and r.claims is None
    }
    ask = BatchAsk(
        wanted=frozenset((r.claims.jti, r.address.path) for r in redemptions if r.claims),
        user_ids=frozenset(users),
        partner_ids=frozenset(partners),
        addresses=tuple(dict.fromkeys(anonymous.values())),
    )
    facts = store.read(session, ask, async_commit=async_commit)
    return _Facts(facts, {i: facts.open_files[a] for i, a in anonymous.items()})


def _coordinates(address: FileAddress) -> Address:
    return (address.namespace, address.name, address.version, address.path)


@dataclass(frozen=True)
class _Facts:
    """The batch's facts, with each anonymous request's file by its index."""

    read: BatchFacts
    open_files: Mapping[int, repo.OpenFileFacts | None]

    @property
    def tokens(self) -> Mapping[str, repo.TokenFacts]:
        return self.read.tokens

    @property
    def files(self) -> Mapping[tuple[int, str], repo.FileFacts]:
        return self.read.files

    @property
    def held(self) -> Holdings:
        return self.read.held

    @property
    def started(self) -> Mapping[FileKey, Progress]:
        return self.read.started

    def state(
        self, component_id: int, held_at: datetime | None, restricted: str | None
    ) -> ScheduleState:
        return self.read.state(component_id, held_at, restricted)


def _allowed(
    item: Redemption,
    settings: Settings,
    *,
    sha256: str,
    size: int,
    expires: int | None,
    subject: str | None,
    jti: str | None,
) -> _Pending:
    """A download that passed every check: what it sends, what it hands out, what it takes.

    A redirect hands out a presigned URL for the whole object, whatever range was asked
    (S3 serves any range of it, as often as asked, until the URL expires): it is charged
    and counted as the whole file. A streamed answer hands out the range it sends."""
    plan = plan_range(item.headers, size=size, sha256=sha256)
    data = _base_data(item)
    sends = _sends_bytes(item.method, plan)
    redirect = sends and item.mode == "redirect"
    handed_out = size if redirect else plan.length if sends else 0
    data["status"] = 302 if redirect else plan.status
    data["bytes"] = handed_out
    if plan.status == 206 and not redirect:
        data["range"] = [plan.start, plan.end]
    pending = _Pending(item, Authorized(sha256, size, plan, expires), data, handed_out=handed_out)
    if sends:
        pending.jti = jti
        pending.charge = download_charge(
            settings, subject, client_addr=item.ctx.client_addr, size=handed_out, now=item.now
        )
    return pending


def download_charge(
    settings: Settings, subject: str | None, *, client_addr: str | None, size: int, now: datetime
) -> quotas.Charge:
    """What sending ``size`` bytes counts against: the holder's bytes per day or, for an
    anonymous caller, one download against its address's per-minute allowance."""
    if subject is None:
        return quotas.Charge(quotas.anonymous_quota(settings), client_addr or "unknown", 1, now)
    return quotas.Charge(quotas.bytes_quota(settings), subject, size, now)


def _base_data(item: Request) -> dict[str, object]:
    if isinstance(item, Checked):
        return dict(item.data)
    data: dict[str, object] = {"method": item.method}
    if isinstance(item, Redemption):
        data["mode"] = item.mode
    data["path"] = item.address.path
    if isinstance(item, Redemption) and item.claims is not None:
        data["jti"] = item.claims.jti
    return data


def _decide(index: int, item: Request, facts: _Facts, settings: Settings) -> _Pending | AppError:
    if isinstance(item, RefusedToken):
        return item.error
    if isinstance(item, Checked):
        if isinstance(item.result, AppError):
            return item.result
        return _Pending(item, item.result, dict(item.data), charge=item.charge)
    try:
        if item.claims is None:
            return _anonymous(item, facts.open_files[index], facts, settings)
        return _with_token(item, item.claims, facts, settings)
    except AppError as err:
        return err
    except Exception:
        # This request's own failure (a bug its input reached): its error, on record like
        # any refusal; the rest of the batch is decided as if it had not come.
        log.exception("delivery.decide_failed", extra={"path": item.address.path[:200]})
        return _internal_error()


def _anonymous(
    item: Redemption, f: repo.OpenFileFacts | None, facts: _Facts, settings: Settings
) -> _Pending:
    if (
        f is None
        or f.release_status != "published"
        or f.file_sha256 is None
        or f.file_size is None
        or f.component_id is None
    ):
        raise _not_found(item.address, anonymous=True)
    tier = effective_tier(facts.state(f.component_id, f.held_at, f.restricted_tier), item.now)
    seen = file_disclosure(downloadable=tier == Tier.OPEN, component_visible=tier != Tier.INTERNAL)
    if seen != "download":
        # Without a token, a file not open to everyone is not there (a 401 for it and a
        # 404 for a missing one let anyone count and name a release's closed files).
        raise _not_found(item.address, anonymous=True)
    return _allowed(
        item, settings, sha256=f.file_sha256, size=f.file_size, expires=None, subject=None, jti=None
    )


def _with_token(
    item: Redemption, claims: DownloadClaims, facts: _Facts, settings: Settings
) -> _Pending:
    address, now = item.address, item.now
    request = FileRequest(model=address.model, version=address.version, path=address.path)
    early = claims.verify(now, request)
    if early is not None:
        raise early.error()
    t = facts.tokens.get(claims.jti)
    if t is None or t.kind != "download" or t.subject != claims.sub or t.model_id is None:
        raise TokenInvalid("token is not one this server issued", code="token_unknown")
    if t.revoked_at is not None:
        raise TokenInvalid("token has been revoked", code="token_revoked")
    pinned = FileRequest(address.model, address.version, address.path, revision=t.revision)
    wrong_release = claims.verify(now, pinned)  # about the release: says nothing of files
    if wrong_release is not None:
        raise wrong_release.error()
    kind, ident = claims.subject
    if (kind == "user" and (t.user_role is None or t.user_disabled_at is not None)) or (
        kind == "partner" and (t.partner_name is None or t.partner_disabled_at is not None)
    ):
        raise TokenInvalid("the token's holder is disabled", code="token_principal_disabled")
    f = None if t.release_id is None else facts.files.get((t.release_id, address.path))
    if f is None:
        raise _not_found(address)
    holder = Principal(kind=kind, id=ident, role=t.user_role)
    clearance = usable_clearance(claims.tier, facts.held.clearance(holder, t.model_id, now))
    state = facts.state(f.component_id, f.held_at, f.restricted_tier)
    decision = decide(holder, clearance=clearance, schedule=state, now=now)
    outside = claims.verify(now, replace(pinned, component=f.component_name))
    seen = file_disclosure(
        downloadable=isinstance(decision, Allowed),
        component_visible=clearance == Tier.INTERNAL or decision.tier != Tier.INTERNAL,
        covered_by_token=outside is None,
    )
    if seen == "not_found":
        raise _not_found(address)  # e.g. an internal file, probed with any token of the release
    if outside is not None:
        raise outside.error()  # a file the holder may download, with another token
    if isinstance(decision, Refused):
        # Closed since the token was issued: why, and until when.
        raise denial(decision, "this file", model=address.model)
    return _allowed(
        item,
        settings,
        sha256=f.sha256,
        size=f.size,
        expires=claims.exp,
        subject=claims.sub,
        jti=claims.jti,
    )


def _count(p: _Pending, uses: Uses, ledger: quotas.Ledger) -> Authorized | AppError:
    """Take the use and charge the quota, both or neither, after the requests before it."""
    use: Use | None = None
    if p.jti is not None:
        checked = uses.check(
            p.jti,
            p.item.address.path,
            ranged=p.allowed.plan.status == 206,
            length=p.handed_out,
            size=p.allowed.size,
        )
        if isinstance(checked, AppError):
            return checked
        use = checked
    if p.charge is not None:
        over = ledger.refusal(p.charge)
        if over is not None:
            return over
        ledger.accept(p.charge)
    if p.jti is not None and use is not None:
        uses.take(p.jti, p.item.address.path, use, p.item.now, length=p.handed_out)
        if use.continuation:
            p.data["continuation"] = True
        else:
            p.data["uses"] = use.uses
    return p.allowed


def _actor(request: Request) -> str:
    """Who the event names. Nothing from a token whose signature failed is trusted; a signed
    token refused for its claims (expired, wrong audience, …) names its holder."""
    if isinstance(request, Checked):
        return request.actor
    if isinstance(request, Redemption):
        return request.claims.sub if request.claims is not None else "anonymous"
    if isinstance(request.error, SignedButRefused):
        sub = request.error.claims.get("sub")
        if isinstance(sub, str) and parse_subject(sub):
            return sub[:64]
    return "anonymous"


def _event(request: Request, result: Authorized | AppError, data: dict[str, object]) -> NewEvent:
    if isinstance(request, RefusedToken) and isinstance(request.error, SignedButRefused):
        jti = request.error.claims.get("jti")
        if isinstance(jti, str):
            data["jti"] = jti[:64]
    outcome = "denied" if isinstance(result, AppError) else "ok"
    if isinstance(result, AppError):
        data = {**data, "code": result.code, "status": result.status}
    if isinstance(request, Checked):
        action = request.action
    elif isinstance(result, AppError):
        action = "download.denied"
    elif isinstance(request, Redemption) and request.claims is not None:
        action = "download.redeemed"
    else:
        action = "download.anonymous"
    return NewEvent(
        now=request.now,
        actor=_actor(request),
        action=action,
        target_type="file",
        target_id=request.address.audit_id,
        outcome=outcome,
        data=data,
        ctx=request.ctx,
    )
