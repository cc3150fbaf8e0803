"""What one Hub resolve decides before its download joins the batch: who asks, the release
``rev`` names, and the file, read in a transaction of its own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from app.errors import AppError
from app.hfcompat import service
from app.hfcompat.service import HfRelease
from app.models import ReleaseFile
from app.parts import Parts
from app.policy.principals import Principal


@dataclass(frozen=True)
class Resolution:
    principal: Principal
    target: HfRelease
    # The file, or why it is refused: a refusal is still recorded (and counted) by the batch.
    found: ReleaseFile | AppError


def decide(
    parts: Parts,
    authenticate: Callable[[Session], Principal],
    namespace: str,
    name: str,
    rev: str,
    path: str,
    *,
    now: datetime,
) -> Resolution:
    """The caller (``authenticate``), the release and the file, in one session committed
    here rather than by ``get_session`` when the route returns: the route then waits for the
    download batch (:mod:`app.delivery.group_commit`), which records and charges in a
    transaction of its own, and this one must not stay open through it (an API key's
    last-use stamp is a write: on SQLite it would hold the write lock the batch needs). A
    refused caller or an unknown release rolls back and raises, as a dependency would."""
    with parts.sessionmaker() as session:
        principal = authenticate(session)
        # The release, the caller's grants and the file from the per-process catalogue
        # cache (app/catalogue/cached.py) when it holds them.
        target = service.open_release(
            session, principal, namespace, name, rev, now=now, cache=parts.catalogue_cache
        )
        found: ReleaseFile | AppError
        try:
            found = service.resolve_file(session, target, path)
        except AppError as err:
            found = err
        session.commit()
    return Resolution(principal, target, found)
