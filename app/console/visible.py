"""What a viewer may know about, or the console's plain 404: a hidden model, release or
component answers exactly like a page that does not exist (never "model not found"), so the
console says no more than the API does."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app.catalogue.schemas import Manifest
from app.catalogue.service import manifest
from app.catalogue.visibility import visible_model
from app.console.session import page_not_found
from app.errors import NotFound
from app.models import Model
from app.policy.principals import Principal
from app.policy.tiers import Tier


def seen_model(
    session: Session, principal: Principal, namespace: str, name: str, now: datetime
) -> tuple[Model, Tier]:
    """The model and the viewer's clearance on it, or the plain 404."""
    try:
        return visible_model(session, principal, namespace, name, now=now)
    except NotFound as e:
        raise page_not_found() from e


def find_manifest(
    session: Session,
    principal: Principal,
    namespace: str,
    name: str,
    *,
    version: str | None,
    now: datetime,
) -> Manifest | None:
    """The release (``version``, or the latest) as the viewer sees it, or ``None`` where
    there is none they may know about."""
    try:
        return manifest(
            session,
            principal=principal,
            namespace=namespace,
            name=name,
            version=version or "main",
            now=now,
        )
    except NotFound:
        return None


def seen_manifest(
    session: Session,
    principal: Principal,
    namespace: str,
    name: str,
    *,
    version: str | None,
    now: datetime,
) -> Manifest:
    """:func:`find_manifest`, or the plain 404."""
    found = find_manifest(session, principal, namespace, name, version=version, now=now)
    if found is None:
        raise page_not_found()
    return found
