"""Presigned GET URLs, bounded by the token and reused while they are fresh.

SigV4 presigning through boto3 costs more CPU than verifying the ES256 token (DESIGN.md:
≈ 150 µs against ≈ 90 µs), and every redemption of the same file within a minute would get
an equivalent URL. So a URL signed for the full cap (at most 5 minutes) is kept per object
and filename and handed out again while it has at least half its life left, but only to a
redemption whose token outlives it: a URL never expires later than the token it answers,
nor more than the cap after it was signed. Tokens expiring sooner get a URL of their own,
signed for exactly what is left of them.

A presigned URL is a bearer credential whichever way it is made; sharing one between
redemptions that are each allowed to read the object changes nothing about who may read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from app.lru import LRU
from app.storage import ObjectStore

# Even if configured higher: a presigned URL is a bearer credential nobody can revoke.
PRESIGN_CEILING = 300


@dataclass(frozen=True)
class Presigned:
    url: str
    expires_at: datetime


class PresignCache:
    def __init__(self, *, max_entries: int = 4096) -> None:
        self._entries: LRU[tuple[str, str], Presigned] = LRU(max_entries)

    def url(
        self,
        store: ObjectStore,
        *,
        sha256: str,
        filename: str,
        now: datetime,
        cap_seconds: int,
        not_after: datetime | None,
    ) -> str | None:
        """A URL valid until no later than ``not_after`` and ``now + cap``; ``None`` if the
        store cannot presign."""
        cap = max(1, min(cap_seconds, PRESIGN_CEILING))
        full = now + timedelta(seconds=cap)
        if not_after is not None and not_after < full:
            seconds = int((not_after - now).total_seconds())
            return store.presign_get(sha256, expires_in=max(1, seconds), filename=filename)
        key = (sha256, filename)
        hit = self._entries.get(key)
        if hit is not None:
            left = (hit.expires_at - now).total_seconds()
            if left >= cap / 2 and hit.expires_at <= full:
                return hit.url
        url = store.presign_get(sha256, expires_in=cap, filename=filename)
        if url is None:
            return None
        self._entries.put(key, Presigned(url, full))
        return url
