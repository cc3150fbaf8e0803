"""Issuing download tokens: check the access rule now, pin the release, sign, keep a row.

:func:`issue_download_token` is the one way a download token comes to exist; the token route
and the Hugging Face routes both call it. Every issue and every refusal is audited.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

from sqlalchemy.orm import Session

from app.catalogue import repository as catalogue
from app.catalogue.names import split_model_id
from app.catalogue.visibility import ComponentView, visible_model, visible_release_views
from app.context import RequestContext
from app.errors import AppError, Conflict, NotFound, Unauthorized, Unprocessable
from app.models import IssuedToken, Model, Release, ReleaseFile
from app.policy.decision import Reason, Refused, decide
from app.policy.disclosure import file_disclosure
from app.policy.principals import Principal
from app.policy.tiers import Tier
from app.quotas import service as quotas
from app.refusals import denial
from app.refusals import refusal as refusal_of
from app.settings import Settings
from app.tokens import codec, events
from app.tokens import repository as repo
from app.tokens.claims import DOWNLOAD_AUDIENCE, MAX_SCOPE_ITEMS, DownloadClaims, Scope
from app.tokens.keys import KeySet


@dataclass(frozen=True)
class IssuedFile:
    path: str
    size: int
    sha256: str
    component: str
    url: str


@dataclass(frozen=True)
class IssuedDownload:
    token: str
    claims: DownloadClaims
    issued_at: datetime
    expires_at: datetime
    max_uses: int | None
    files: tuple[IssuedFile, ...]


def new_jti() -> str:
    return secrets.token_urlsafe(18)


def lifetime(settings: Settings, requested: int | None) -> int:
    """Default 15 minutes (configurable); less on request; never above the maximum."""
    longest = settings.token_max_ttl
    if requested is None:
        return min(settings.token_default_ttl, longest)
    if requested > longest:
        raise Unprocessable(
            f"ttl_seconds may be at most {longest}", code="ttl_too_long", max_ttl_seconds=longest
        )
    return requested


def file_url(settings: Settings, model: Model, rel: Release, path: str) -> str:
    base = settings.effective_public_url
    return f"{base}/v1/files/{model.namespace}/{model.name}/{rel.version}/{quote(path)}"


def _release(
    session: Session,
    principal: Principal,
    model: Model,
    version: str | None,
    *,
    clearance: Tier,
    now: datetime,
) -> tuple[Release, list[ComponentView]]:
    if version is None:
        # The latest release the caller may know about: one published ahead of its embargo
        # (all components still internal) must not shadow the release before it.
        try:
            rel, views = visible_release_views(
                session, principal, model, "main", clearance=clearance, now=now
            )
        except NotFound as e:
            raise NotFound(
                f"{model.repo_id} has no published release", code="release_not_found"
            ) from e
    else:
        rel, views = visible_release_views(
            session, principal, model, version, clearance=clearance, now=now
        )
    if rel.status != "published" or rel.revision is None:
        raise Conflict(f"release {rel.version} is not published", code="release_not_published")
    return rel, views


def _select(
    views: Sequence[ComponentView],
    files: Sequence[ReleaseFile],
    *,
    components: Sequence[str] | None,
    paths: Sequence[str] | None,
) -> tuple[list[ComponentView], list[ReleaseFile]]:
    """The components and files asked for; unknown and invisible ones are the same 404.
    Components are named by what the caller may know (those not ``internal`` to them), and
    files by what they may download now: a path closed to the caller answers like a missing
    one (app/disclosure.py)."""
    visible = {v.component.name: v for v in views if v.visible}
    by_id = {v.component.id: v for v in views if v.visible}
    if paths is not None:
        asked = set(paths)
        wanted = {
            f.path: f
            for f in files
            if f.path in asked
            and f.component_id in by_id
            and file_disclosure(
                downloadable=by_id[f.component_id].downloadable, component_visible=True
            )
            == "download"
        }
        missing = [p for p in paths if p not in wanted]
        if missing:
            raise refusal_of(
                Reason.FILE_NOT_FOUND,
                f"no file {missing[0]!r} in this release that you may download now",
            )
        names = {by_id[f.component_id].component.name for f in wanted.values()}
        if components is not None and not names <= set(components):
            raise Unprocessable(
                "paths must belong to the components listed", code="paths_outside_components"
            )
        return [visible[n] for n in sorted(names)], sorted(wanted.values(), key=lambda f: f.path)
    if components is not None:
        missing = [c for c in components if c not in visible]
        if missing:
            raise NotFound(
                f"no component {missing[0]!r} in this release", code="component_not_found"
            )
        chosen = [visible[c] for c in sorted(set(components))]
    else:
        chosen = [v for v in visible.values() if v.downloadable] or list(visible.values())[:1]
        if not chosen:
            raise NotFound("this release has no component you may see", code="component_not_found")
    ids = {v.component.id for v in chosen}
    return chosen, [f for f in files if f.component_id in ids]


def issue_download_token(
    session: Session,
    *,
    principal: Principal,
    keys: KeySet,
    settings: Settings,
    now: datetime,
    model: str,
    version: str | None = None,
    components: Sequence[str] | None = None,
    paths: Sequence[str] | None = None,
    ttl_seconds: int | None = None,
    max_uses: int | None = None,
    ctx: RequestContext | None = None,
) -> IssuedDownload:
    """Check the access rule now for every file asked for and sign a token covering them.

    Raises (after auditing the refusal) ``NotFound`` for unknown or hidden models, releases,
    components and paths, ``EmbargoActive``/``GrantRequired`` when a component is not open
    to the caller now, ``QuotaExceeded`` over the tokens-per-minute quota.
    """
    if principal.kind == "anonymous" or principal.id is None:
        raise Unauthorized("download tokens are issued to users and partners")
    ttl = lifetime(settings, ttl_seconds)
    try:
        quotas.charge(
            session, quotas.tokens_quota(settings), key=principal.subject, amount=1, now=now
        )
        issued = _issue(
            session,
            principal=principal,
            keys=keys,
            settings=settings,
            now=now,
            model_id=model,
            version=version,
            components=components,
            paths=paths,
            ttl=ttl,
            max_uses=max_uses,
        )
    except AppError as err:
        events.record_denial(
            session,
            now=now,
            actor=principal.subject,
            action="token.denied",
            target_type="model",
            target_id=model[:200],
            error=err,
            data={"version": version, "components": components, "paths": paths},
            ctx=ctx,
        )
        raise
    c = issued.claims
    events.record(
        session,
        now=now,
        actor=principal.subject,
        action="token.issued",
        target_type="token",
        target_id=c.jti,
        data={
            "jti": c.jti,
            "model": c.scope.model,
            "version": c.scope.version,
            "tier": c.tier.value,
            "components": list(c.scope.components),
            "paths": None if c.scope.paths is None else list(c.scope.paths),
            "expires_at": issued.expires_at.isoformat(),
            "max_uses": max_uses,
            "via": principal.via,
        },
        ctx=ctx,
    )
    return issued


def _issue(
    session: Session,
    *,
    principal: Principal,
    keys: KeySet,
    settings: Settings,
    now: datetime,
    model_id: str,
    version: str | None,
    components: Sequence[str] | None,
    paths: Sequence[str] | None,
    ttl: int,
    max_uses: int | None,
) -> IssuedDownload:
    namespace, name = split_model_id(model_id)
    model, clearance = visible_model(session, principal, namespace, name, now=now)
    rel, views = _release(session, principal, model, version, clearance=clearance, now=now)
    assert rel.revision is not None
    chosen, files = _select(
        views, catalogue.files(session, rel.id), components=components, paths=paths
    )
    if len(chosen) > MAX_SCOPE_ITEMS:
        # Checked before anything is signed or counted: a token whose scope its own
        # verification refuses (DownloadClaims.from_payload) could never be redeemed.
        raise Unprocessable(
            f"a token covers at most {MAX_SCOPE_ITEMS} components and this release has "
            f"{len(chosen)} you may download: name the ones you need",
            code="scope_too_large",
        )
    for view in chosen:
        decision = decide(principal, clearance=clearance, schedule=view.state, now=now)
        if isinstance(decision, Refused):
            what = f"component {view.component.name!r} of {model.repo_id}"
            raise denial(decision, what, model=model.repo_id)
    if not files:
        raise NotFound("the components asked for have no files", code="file_not_found")
    issued_at = now.replace(microsecond=0)
    expires_at = issued_at + timedelta(seconds=ttl)
    claims = DownloadClaims(
        iss=settings.issuer,
        sub=principal.subject,
        aud=DOWNLOAD_AUDIENCE,
        iat=int(issued_at.timestamp()),
        nbf=int(issued_at.timestamp()),
        exp=int(expires_at.timestamp()),
        jti=new_jti(),
        tier=clearance,
        scope=Scope(
            model=model.repo_id,
            version=rel.version,
            revision=rel.revision,
            components=tuple(v.component.name for v in chosen),
            paths=None if paths is None else tuple(sorted(f.path for f in files)),
        ),
    )
    key = keys.signing_key(now)
    token = codec.sign(claims.to_payload(), typ=codec.DOWNLOAD_TYP, key=key)
    if len(token) > codec.MAX_TOKEN_BYTES:
        raise Unprocessable(
            "that many paths do not fit in a token: ask by component", code="scope_too_large"
        )
    repo.add_token(
        session,
        IssuedToken(
            jti=claims.jti,
            kind="download",
            kid=key.kid,
            subject=claims.sub,
            user_id=principal.user_id,
            partner_id=principal.partner_id,
            model_id=model.id,
            release_id=rel.id,
            tier=clearance.value,
            scope=claims.scope.to_json(),
            issued_at=issued_at,
            expires_at=expires_at,
            max_uses=max_uses,
            uses=0,
        ),
    )
    names = {v.component.id: v.component.name for v in chosen}
    return IssuedDownload(
        token=token,
        claims=claims,
        issued_at=issued_at,
        expires_at=expires_at,
        max_uses=max_uses,
        files=tuple(
            IssuedFile(
                path=f.path,
                size=f.size,
                sha256=f.sha256,
                component=names[f.component_id],
                url=file_url(settings, model, rel, f.path),
            )
            for f in files
        ),
    )
