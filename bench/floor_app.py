"""A diagnostic for bench/tokens.py: weightgate with the database step of a redemption
replaced by a constant answer. Never part of the product.

Everything else a redemption does runs as in production (middleware, token verification,
the group-commit hand-off, presigning, the 302), so the gap between this and the bare route
is the cost of the HTTP side, and the gap between this and the real redemption is the
database's.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.asgi import app
from app.delivery import service
from app.delivery.service import Authorized, Request
from app.delivery.streaming import plan_range
from app.errors import AppError
from app.settings import Settings

__all__ = ["app"]

_SHA256 = "0" * 64
_SIZE = 1024


def _decided_without_database(
    _sessions: object, requests: Sequence[Request], *, settings: Settings
) -> list[Authorized | AppError]:
    plan = plan_range({}, size=_SIZE, sha256=_SHA256)
    return [
        Authorized(
            _SHA256,
            _SIZE,
            plan,
            r.claims.exp if isinstance(r, service.Redemption) and r.claims else None,
        )
        for r in requests
    ]


service.redeem = _decided_without_database  # type: ignore[assignment]
