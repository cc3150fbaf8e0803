"""The seam between deciding a batch of downloads and the database: read, lock, write.

:func:`app.delivery.service.redeem_batch` decides from :class:`BatchFacts` and hands back
what to write; a :class:`BatchStore` does the three database steps. Two implementations:

- :class:`PostgresBatch`: one hand-written statement per step (:mod:`app.delivery.pg_batch`);
- :class:`GenericBatch`: the repositories' queries, on any database (SQLite in the embedded
  default).

They must read the same facts and leave the same rows: tests/delivery/test_batch_parity.py
generates worlds (revoked and expired tokens, ended agreements, holds, ceilings, grants,
quotas, max_uses at its limit) and runs both on each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session

from app import audit
from app.audit import NewEvent
from app.auth.holdings import holdings
from app.delivery import pg_batch
from app.policy.clearance import Holdings
from app.policy.schedule import ScheduleState
from app.quotas import repository as quota_repo
from app.quotas import service as quotas
from app.tokens import repository as repo
from app.tokens.uses import FileKey, Progress, Uses, limited
from app.tokens.uses import started as started_files

Address = tuple[str, str, str, str]  # namespace, name, version, path


@dataclass(frozen=True)
class BatchAsk:
    """What a batch needs read: its token downloads and the files anonymous requests name."""

    wanted: frozenset[tuple[str, str]]  # (jti, path) of every token download
    user_ids: frozenset[int]
    partner_ids: frozenset[int]
    addresses: tuple[Address, ...]  # distinct, in first-asked order


@dataclass(frozen=True)
class BatchFacts:
    """What the batch read, once for all its requests."""

    tokens: Mapping[str, repo.TokenFacts]
    files: Mapping[tuple[int, str], repo.FileFacts]
    open_files: Mapping[Address, repo.OpenFileFacts | None]
    stages: Mapping[int, list[tuple[str, datetime]]]  # only components that have stages
    held: Holdings
    started: Mapping[FileKey, Progress]  # files started before, where max_uses counts
    _states: dict[int, ScheduleState] = field(default_factory=dict, compare=False, repr=False)

    def state(
        self, component_id: int, held_at: datetime | None, restricted: str | None
    ) -> ScheduleState:
        """The component's schedule, built once per batch (its requests are mostly for the
        same few components)."""
        state = self._states.get(component_id)
        if state is None:
            state = ScheduleState.of(self.stages.get(component_id, []), held_at, restricted)
            self._states[component_id] = state
        return state


class BatchStore(Protocol):
    def read(self, session: Session, ask: BatchAsk, *, async_commit: bool) -> BatchFacts:
        """The facts, with the token rows locked until commit."""

    def lock(
        self, session: Session, asked: Mapping[quota_repo.Counter, int]
    ) -> tuple[dict[quota_repo.Counter, int], audit.Head | None]:
        """Charge the quota counters (their new totals) and take the audit chain's lock."""

    def write(
        self,
        session: Session,
        *,
        ledger: quotas.Ledger,
        uses: Uses,
        events: Sequence[NewEvent],
        head: audit.Head | None,
    ) -> None:
        """Refunds, use counts, started files and the audit events."""


class PostgresBatch:
    def read(self, session: Session, ask: BatchAsk, *, async_commit: bool) -> BatchFacts:
        found = pg_batch.read(
            session,
            ask.wanted,
            user_ids=ask.user_ids,
            partner_ids=ask.partner_ids,
            addresses=ask.addresses,
            async_commit=async_commit,
        )
        open_files = {a: found.open_files.get(k) for k, a in enumerate(ask.addresses)}
        started = {
            key: Progress(*progress)
            for key, progress in found.started.items()
            if key in limited(found.tokens, ask.wanted)
        }
        return BatchFacts(found.tokens, found.files, open_files, found.stages, found.held, started)

    def lock(
        self, session: Session, asked: Mapping[quota_repo.Counter, int]
    ) -> tuple[dict[quota_repo.Counter, int], audit.Head | None]:
        return pg_batch.lock(session, asked)

    def write(
        self,
        session: Session,
        *,
        ledger: quotas.Ledger,
        uses: Uses,
        events: Sequence[NewEvent],
        head: audit.Head | None,
    ) -> None:
        assert head is not None  # lock() always takes it here
        pg_batch.write(
            session,
            refunds=ledger.refunds(),
            opened=ledger.opened(),
            counts=uses.counts(),
            files=uses.files(),
            events=audit.chain(head, events),
        )


class GenericBatch:
    def read(self, session: Session, ask: BatchAsk, *, async_commit: bool) -> BatchFacts:
        open_files = {a: _open_file(session, a) for a in ask.addresses}
        open_components = {f.component_id for f in open_files.values() if f and f.component_id}
        jtis = sorted({jti for jti, _ in ask.wanted})
        tokens = repo.lock_tokens(session, jtis) if jtis else {}
        files = repo.files_of(
            session,
            {
                (t.release_id, p)
                for j, p in ask.wanted
                if (t := tokens.get(j)) and t.release_id is not None
            },
        )
        components = {f.component_id for f in files.values()} | open_components
        models = {t.model_id for t in tokens.values() if t.model_id is not None}
        held = holdings(
            session, user_ids=ask.user_ids, partner_ids=ask.partner_ids, model_ids=models
        )
        stages = {c: s for c, s in repo.stages_of_many(session, components).items() if s}
        started = started_files(session, tokens, ask.wanted)
        return BatchFacts(tokens, files, open_files, stages, held, started)

    def lock(
        self, session: Session, asked: Mapping[quota_repo.Counter, int]
    ) -> tuple[dict[quota_repo.Counter, int], audit.Head | None]:
        # The chain's lock is taken by audit.record_many when it writes (on SQLite, BEGIN
        # IMMEDIATE already holds the whole database).
        return quota_repo.add_to_counters(session, asked), None

    def write(
        self,
        session: Session,
        *,
        ledger: quotas.Ledger,
        uses: Uses,
        events: Sequence[NewEvent],
        head: audit.Head | None,
    ) -> None:
        uses.write(session)
        ledger.settle(session)
        audit.record_many(session, events)


def _open_file(session: Session, address: Address) -> repo.OpenFileFacts | None:
    namespace, name, version, path = address
    return repo.file_facts(session, namespace=namespace, name=name, version=version, path=path)


def store_for(session: Session) -> BatchStore:
    """The implementation for the session's database."""
    if session.get_bind().dialect.name == "postgresql":
        return PostgresBatch()
    return GenericBatch()
