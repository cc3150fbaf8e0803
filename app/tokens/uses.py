"""Counting a token's uses across a batch of redemptions, ``max_uses`` included.

The batch has read (and locked, :func:`app.tokens.repository.lock_tokens`) the rows of every
token it redeems, so the counts here are the real ones and nobody else can move them until
commit: deciding in Python, one redemption after the other, is the same as each redemption
running its own conditional ``UPDATE`` in turn — no two can take the last use.

A use buys one download of a file, and with it one more file's worth of resumes. A download
that sends bytes without a Range header takes a use; so does the first request for a file,
ranged or not. A Range request for a file the token has already started is a *resume*: it
takes no use as long as the bytes resumes have handed out for that file (each counted as
what its answer hands out: the range's length, or the whole file when it is a redirect) stay
within the file's size per use taken on it. Past that, the resume takes another use, or is
refused ``token_uses_exhausted`` when none is left. So a client that loses its connection
and resumes never burns a use, and a one-use token shared with others serves a file at most
twice (the download and one copy's worth of resumes), instead of to everyone until it
expires. Files are tracked only for tokens with ``max_uses`` (for the others nothing depends
on them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from app.errors import TokenInvalid
from app.tokens import repository as repo

FileKey = tuple[str, str]  # (jti, path)


@dataclass
class Progress:
    """A started file of a token: the uses taken on it and the bytes resumes handed out."""

    uses: int
    resumed: int


@dataclass(frozen=True)
class Use:
    """What a redemption takes: a use (``uses`` is the token's count after it) or, for a
    resume within the file's allowance, none (``uses`` is ``None``)."""

    uses: int | None
    resume: bool = False  # a Range request for a file the token had started

    @property
    def continuation(self) -> bool:
        return self.uses is None


class Uses:
    def __init__(
        self, tokens: Mapping[str, repo.TokenFacts], started: Mapping[FileKey, Progress]
    ) -> None:
        """``tokens``: the batch's locked token rows; ``started``: the files among those it
        may redeem that were started before (:func:`started`)."""
        self._max = {jti: t.max_uses for jti, t in tokens.items()}
        self._uses = {jti: t.uses for jti, t in tokens.items()}
        self._files = {k: Progress(p.uses, p.resumed) for k, p in started.items()}
        self._changed: dict[FileKey, datetime] = {}
        self._last_used: dict[str, datetime] = {}

    def check(
        self, jti: str, path: str, *, ranged: bool, length: int, size: int
    ) -> Use | TokenInvalid:
        """The use a redemption handing out ``length`` bytes of a ``size``-byte file would
        take now, or why it may not."""
        max_uses = self._max[jti]
        if max_uses is None:
            return Use(self._uses[jti] + 1)
        progress = self._files.get((jti, path))
        resume = ranged and progress is not None
        if resume and progress is not None and progress.resumed + length <= progress.uses * size:
            return Use(None, resume=True)
        if self._uses[jti] >= max_uses:
            detail = f"token has been used {max_uses} times"
            if resume:
                detail += ", and this file's resumes have used up what those uses allow"
            return TokenInvalid(detail, code="token_uses_exhausted")
        return Use(self._uses[jti] + 1, resume=resume)

    def take(self, jti: str, path: str, use: Use, now: datetime, *, length: int) -> None:
        if not use.continuation:
            self._uses[jti] += 1
            self._last_used[jti] = now
        if self._max[jti] is None:
            return
        key = (jti, path)
        progress = self._files.get(key)
        if progress is None:
            self._files[key] = Progress(uses=1, resumed=0)
        else:
            if not use.continuation:
                progress.uses += 1
            if use.resume:
                progress.resumed += length
        self._changed.setdefault(key, now)

    def counts(self) -> list[tuple[str, int, datetime]]:
        """``(jti, uses, last used at)`` of every token that took a use."""
        return [(j, self._uses[j], t) for j, t in sorted(self._last_used.items())]

    def files(self) -> list[repo.FileUse]:
        """The files this batch started or resumed, with their new counts."""
        return [
            repo.FileUse(j, p, t, self._files[(j, p)].uses, self._files[(j, p)].resumed)
            for (j, p), t in self._changed.items()
        ]

    def write(self, session: Session) -> None:
        repo.set_uses(session, self.counts())
        repo.set_file_uses(session, self.files())


def limited(tokens: Mapping[str, repo.TokenFacts], wanted: Iterable[FileKey]) -> set[FileKey]:
    """The ``(jti, path)`` of ``wanted`` whose token has ``max_uses``: the only ones whose
    progress matters."""
    return {(j, p) for j, p in wanted if j in tokens and tokens[j].max_uses is not None}


def started(
    session: Session, tokens: Mapping[str, repo.TokenFacts], wanted: Iterable[FileKey]
) -> dict[FileKey, Progress]:
    """Which of ``wanted`` were started before, and how far (read under the tokens' row
    locks)."""
    return {
        key: Progress(uses, resumed)
        for key, (uses, resumed) in repo.started_files(session, limited(tokens, wanted)).items()
    }
