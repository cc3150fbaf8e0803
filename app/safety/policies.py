"""Reading and changing a model's automatic hold policy (admins); each change audited and
applied at once to the reports already open."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import audit
from app.context import RequestContext
from app.models import Component, Model, Release, SafetyHold, SafetyPolicy
from app.policy.principals import Principal
from app.safety import policy
from app.safety import repository as repo
from app.safety.schemas import PolicyHoldOut, PolicyIn, PolicyOut, Severity

RECENT_HOLDS = 50


def policy_out(session: Session, model: Model) -> PolicyOut:
    row = repo.policy(session, model.id)
    defaults = PolicyIn(enabled=False)
    holds = session.execute(
        select(SafetyHold, Component, Release)
        .join(Component, Component.id == SafetyHold.component_id)
        .join(Release, Release.id == Component.release_id)
        .where(Release.model_id == model.id)
        .order_by(SafetyHold.id.desc())
        .limit(RECENT_HOLDS)
    ).all()
    return PolicyOut(
        model=model.repo_id,
        enabled=row.enabled if row else False,
        min_reporters=row.min_reporters if row else defaults.min_reporters,
        min_severity=Severity(row.min_severity) if row else defaults.min_severity,
        window_hours=row.window_hours if row else defaults.window_hours,
        updated_at=row.updated_at if row else None,
        updated_by=row.updated_by if row else None,
        holds=[
            PolicyHoldOut(
                version=rel.version,
                component=comp.name,
                placed_at=hold.placed_at,
                stage_tier=hold.stage_tier,
                stage_at=hold.stage_at,
                reports=list(hold.reports),
                active=comp.held_at == hold.placed_at and comp.held_by == policy.POLICY_ACTOR,
            )
            for hold, comp, rel in holds
        ],
    )


def _settings(row: SafetyPolicy | None) -> dict[str, object] | None:
    if row is None:
        return None
    return {
        "enabled": row.enabled,
        "min_reporters": row.min_reporters,
        "min_severity": row.min_severity,
        "window_hours": row.window_hours,
    }


def set_policy(
    session: Session,
    *,
    model: Model,
    body: PolicyIn,
    actor: Principal,
    now: datetime,
    ctx: RequestContext | None = None,
) -> None:
    """Replace the model's policy. Turned on (or tightened), it applies at once to the
    reports already open: a component that meets it now is held now."""
    row = session.get(SafetyPolicy, model.id, with_for_update=True)
    before = _settings(row)
    if row is None:
        row = SafetyPolicy(model_id=model.id)
        session.add(row)
    row.enabled = body.enabled
    row.min_reporters = body.min_reporters
    row.min_severity = body.min_severity.value
    row.window_hours = body.window_hours
    row.updated_at = now
    row.updated_by = actor.subject
    session.flush()
    if row.enabled:
        # Components before the audit head: the lock order of app/safety/policy.py.
        policy.evaluate(
            session, component_ids=repo.components_to_judge(session, model_id=model.id), now=now
        )
    audit.record(
        session,
        now=now,
        actor=actor.subject,
        action="safety.policy.updated",
        target_type="model",
        target_id=model.repo_id,
        before=before,
        after=_settings(row),
        ctx=ctx,
    )
