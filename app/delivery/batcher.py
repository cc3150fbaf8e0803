"""The app's download batcher: ``/v1/files`` and the Hub's resolve submit their downloads to
it (:mod:`app.delivery.group_commit`), and each batch is redeemed
(:func:`app.delivery.service.redeem`) with the session factory and settings the app holds
when it runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from app.delivery import service
from app.delivery.group_commit import GroupCommit
from app.delivery.service import Authorized
from app.errors import AppError
from app.parts import Parts

Redeemer = GroupCommit[service.Request, Authorized]


def make_redeemer(current: Callable[[], Parts], *, max_batch: int) -> Redeemer:
    """A batcher that reads the app's parts (``current``) each time it runs a batch: a test
    that swaps them reaches the batches after it."""

    def run(requests: Sequence[service.Request]) -> list[Authorized | AppError]:
        parts = current()
        return service.redeem(parts.sessionmaker, requests, settings=parts.settings)

    return GroupCommit(run, max_batch=max_batch)
