"""The reminders the scheduler has yet to send, soonest first: ``embargo.upcoming`` before
each lift and ``credentials.expiring`` before a partner secret or an API key runs out
(:mod:`app.schedule.reminders` sends them). What ``weightgate upcoming`` shows an admin.

A reminder is due a fixed lead before the date it announces (one lead for lifts, one for
credentials), so the three sources are merged on their due times; the cursor is the keyset
``(due, source, id)`` of the last item.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.schedule import repository as repo
from app.schedule.embargoes import decode_keyset, encode_position
from app.schedule.reminders import key_reminder_data, lift_reminder_data, secret_reminder_data
from app.schedule.schemas import ReminderOut
from app.settings import Settings

# Sources in the order reminders due at the same instant are listed.
LIFT, SECRET, KEY = 0, 1, 2


def list_reminders(
    session: Session,
    *,
    settings: Settings,
    now: datetime,
    model_id: int | None,
    until: datetime | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[ReminderOut], str | None]:
    """Reminders not sent yet whose date is still ahead, due before ``until`` (all when
    ``None``); with ``model_id``, only that model's lifts (credentials belong to no model)."""
    position = None
    if cursor:
        due, (source, row_id) = decode_keyset(cursor, 2)
        position = (due, source, row_id)
    # One more than asked from each source: if the merge holds more than ``limit``, there is
    # a next page.
    window = repo.ReminderWindow(now=now, until=until, position=position, limit=limit + 1)
    lift_lead = timedelta(seconds=settings.reminder_before_seconds)
    credentials_lead = timedelta(seconds=settings.credentials_reminder_before_seconds)
    found: list[tuple[datetime, int, int, ReminderOut]] = []
    for stage, comp, rel, model in repo.pending_lift_reminders(
        session, window, lead=lift_lead, model_id=model_id
    ):
        found.append(
            _item(
                LIFT,
                stage.id,
                "embargo.upcoming",
                stage.at,
                lift_lead,
                lift_reminder_data(stage, comp, rel, model),
            )
        )
    if model_id is None:
        for partner in repo.pending_secret_reminders(session, window, lead=credentials_lead):
            assert partner.secret_expires_at is not None
            found.append(
                _item(
                    SECRET,
                    partner.id,
                    "credentials.expiring",
                    partner.secret_expires_at,
                    credentials_lead,
                    secret_reminder_data(partner),
                )
            )
        for key, user in repo.pending_key_reminders(session, window, lead=credentials_lead):
            assert key.expires_at is not None
            found.append(
                _item(
                    KEY,
                    key.id,
                    "credentials.expiring",
                    key.expires_at,
                    credentials_lead,
                    key_reminder_data(key, user),
                )
            )
    found.sort(key=lambda f: f[:3])
    page = found[:limit]
    nxt = encode_position(*page[-1][:3]) if len(found) > limit else None
    return [item for *_, item in page], nxt


def _item(
    source: int,
    row_id: int,
    event: str,
    at: datetime,
    lead: timedelta,
    data: dict[str, object],
) -> tuple[datetime, int, int, ReminderOut]:
    due = at - lead
    out = ReminderOut.model_validate({"event": event, "due_at": due, "at": at, "data": data})
    return due, source, row_id, out
