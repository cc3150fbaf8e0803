"""Counting a token's uses across a batch of redemptions, ``max_uses`` included.

The batch has read (and locked, :func:`app.tokens.repository.lock_tokens`) the rows of every
token it redeems, so the counts here are the real ones and nobody else can move them until
commit: deciding in Python, one redemption after the other, is the same as each redemption
running its own conditional ``UPDATE`` in turn — no two can take the last use.

A Range request for a path this token has already started is a continuation and takes no
use: a client resuming a download must not burn the allowance. Starts are only recorded for
tokens with ``max_uses`` (for the others nothing depends on them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from app.errors import TokenInvalid
from app.tokens import repository as repo


@dataclass(frozen=True)
class Use:
    """What a redemption takes: a use (``uses`` is the count after it) or a continuation."""

    uses: int | None
    continuation: bool = False


class Uses:
    def __init__(
        self,
        session: Session,
        tokens: Mapping[str, repo.TokenFacts],
        wanted: Iterable[tuple[str, str]],
    ) -> None:
        """``wanted``: the ``(jti, path)`` this batch may redeem, to look up their starts."""
        self._max = {jti: t.max_uses for jti, t in tokens.items()}
        self._uses = {jti: t.uses for jti, t in tokens.items()}
        limited = {(jti, path) for jti, path in wanted if self._max.get(jti) is not None}
        self._started = repo.started_files(session, limited)
        self._new_starts: dict[tuple[str, str], datetime] = {}
        self._last_used: dict[str, datetime] = {}

    def check(self, jti: str, path: str, *, ranged: bool) -> Use | TokenInvalid:
        """The use this redemption would take now, or why it may not."""
        max_uses = self._max[jti]
        if max_uses is not None and ranged and (jti, path) in self._started:
            return Use(None, continuation=True)
        if max_uses is not None and self._uses[jti] >= max_uses:
            return TokenInvalid(
                f"token has been used {max_uses} times", code="token_uses_exhausted"
            )
        return Use(self._uses[jti] + 1)

    def take(self, jti: str, path: str, use: Use, now: datetime) -> None:
        if use.continuation:
            return
        self._uses[jti] += 1
        self._last_used[jti] = now
        if self._max[jti] is not None and (jti, path) not in self._started:
            self._started.add((jti, path))
            self._new_starts[(jti, path)] = now

    def write(self, session: Session) -> None:
        repo.set_uses(session, ((j, self._uses[j], t) for j, t in sorted(self._last_used.items())))
        repo.add_starts(session, ((j, p, t) for (j, p), t in self._new_starts.items()))
