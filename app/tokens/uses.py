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
        self, tokens: Mapping[str, repo.TokenFacts], started: Iterable[tuple[str, str]]
    ) -> None:
        """``tokens``: the batch's locked token rows; ``started``: the ``(jti, path)`` among
        those it may redeem that were started before (:func:`started`)."""
        self._max = {jti: t.max_uses for jti, t in tokens.items()}
        self._uses = {jti: t.uses for jti, t in tokens.items()}
        self._started = set(started)
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

    def counts(self) -> list[tuple[str, int, datetime]]:
        """``(jti, uses, last used at)`` of every token that took a use."""
        return [(j, self._uses[j], t) for j, t in sorted(self._last_used.items())]

    def starts(self) -> list[tuple[str, str, datetime]]:
        """``(jti, path, started at)`` of the files this batch started."""
        return [(j, p, t) for (j, p), t in self._new_starts.items()]

    def write(self, session: Session) -> None:
        repo.set_uses(session, self.counts())
        repo.add_starts(session, self.starts())


def limited(
    tokens: Mapping[str, repo.TokenFacts], wanted: Iterable[tuple[str, str]]
) -> set[tuple[str, str]]:
    """The ``(jti, path)`` of ``wanted`` whose token has ``max_uses``: the only ones whose
    starts matter (a continuation is free only where uses are counted against a limit)."""
    return {(j, p) for j, p in wanted if j in tokens and tokens[j].max_uses is not None}


def started(
    session: Session, tokens: Mapping[str, repo.TokenFacts], wanted: Iterable[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Which of ``wanted`` were started before (read under the tokens' row locks)."""
    return repo.started_files(session, limited(tokens, wanted))
