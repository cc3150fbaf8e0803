"""Test data shared by the Hugging Face and CLI tests: grants written straight to the
database (as approving an access request would leave them)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clock import FixedClock
from app.models import Grant, Model


def grant(db: Session, clock: FixedClock, user_id: int, model: str) -> None:
    namespace, name = model.split("/")
    model_id = db.scalar(select(Model.id).where(Model.namespace == namespace, Model.name == name))
    assert model_id is not None
    db.add(Grant(user_id=user_id, model_id=model_id, created_at=clock.now()))
    db.commit()
