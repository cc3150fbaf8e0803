"""Users and API keys, written straight into the test's database session."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.access.apikeys import create_api_key
from app.clock import FixedClock
from app.models import User


def make_user(
    db: Session, clock: FixedClock, *, role: str = "researcher", email: str | None = None
) -> tuple[User, str]:
    import uuid

    user = User(
        email=email or f"{uuid.uuid4().hex[:8]}@example.org",
        name="Test User",
        role=role,
        created_at=clock.now(),
    )
    db.add(user)
    db.flush()
    _, key = create_api_key(db, user=user, now=clock.now(), name="test")
    db.commit()
    return user, key
