"""Schedule actions on a component from the release page: reschedule (with a preview),
hold, resume, lift now (after a confirmation naming who it opens to), restrict.

Each action is the API's: the same pydantic input, the same service function, the same
audit event with the signed-in admin as actor, the same webhooks and errors. The form
carries the schedule's version (its ETag) and the change is refused, with a message, when
another admin changed the schedule in between (:func:`app.schedule.service.check_version`).
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from app.access import grants
from app.console.catalogue_pages import render_release
from app.console.security import PREFIX
from app.console.session import AdminSession, CheckedForm, form_list, principal_of
from app.console.templating import render
from app.context import ClockDep, ContextDep
from app.db import SessionDep
from app.errors import AppError, Unprocessable
from app.policy.tiers import Tier
from app.schedule import service
from app.schedule.schemas import HoldIn, LiftIn, RestrictIn, ResumeIn, ScheduleIn

router = APIRouter(prefix=PREFIX, include_in_schema=False)
COMPONENT = "/models/{namespace}/{name}/releases/{version}/components/{component}/schedule"


def parse(schema: type[BaseModel], data: dict[str, Any]) -> Any:
    """The API's input model, or 422 with the first problem in words."""
    try:
        return schema.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        where = ".".join(str(p) for p in first["loc"])
        raise Unprocessable(f"{where}: {message}" if where else message) from e


def _zone(name: str) -> zoneinfo.ZoneInfo:
    if name == "UTC" or not name:
        return zoneinfo.ZoneInfo("UTC")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as e:
        raise Unprocessable(f"unknown time zone {name!r}") from e


def stages_from_form(
    past_tiers: list[str], past_ats: list[str], tiers: list[str], ats: list[str], zone: str
) -> list[dict[str, str]]:
    """The whole schedule a reschedule form sends: the past stages as they were (UTC), then
    each filled row, its local time read in the zone the form stated. A row with no tier
    and no time is left out (that is how a stage is removed)."""
    tz = _zone(zone)
    out = [{"tier": t, "at": at} for t, at in zip(past_tiers, past_ats, strict=False)]
    for tier, at in zip(tiers, ats, strict=False):
        if not tier and not at:
            continue
        if not tier or not at:
            raise Unprocessable("each stage needs both a tier and a time (or neither, to drop it)")
        try:
            local = datetime.fromisoformat(at)
        except ValueError as e:
            raise Unprocessable(f"{at!r} is not a date and time") from e
        if local.tzinfo is None:
            local = local.replace(tzinfo=tz)
        out.append({"tier": tier, "at": local.astimezone(UTC).isoformat()})
    return out


class Action:
    """The route parameters every action shares, with the component loaded and locked."""

    def __init__(
        self,
        request: Request,
        namespace: str,
        name: str,
        version: str,
        component: str,
        admin: AdminSession,
        form: CheckedForm,
        session: SessionDep,
        clock: ClockDep,
        ctx: ContextDep,
    ) -> None:
        self.request, self.session, self.form, self.ctx = request, session, form, ctx
        self.now = clock.now()
        self.actor = principal_of(admin)
        self.names = (namespace, name, version, component)
        self.target = service.load_target(session, namespace, name, version, component)

    @property
    def page(self) -> str:
        namespace, name, version, _ = self.names
        return f"{PREFIX}/models/{namespace}/{name}/releases/{version}"

    def run(
        self, done: str, change: Callable[[], object], draft: dict[str, Any] | None = None
    ) -> Response:
        """Check the version, make the change; back to the release page, with the outcome
        or the refusal shown at the component."""
        try:
            service.check_version(self.session, self.target, self.form.get("etag"))
            change()
        except AppError as err:
            return self.refused(err, draft)
        component = self.target.component.name
        return RedirectResponse(
            f"{self.page}?done={done}&component={component}#c-{component}", status_code=303
        )

    def refused(self, err: AppError, draft: dict[str, Any] | None = None) -> Response:
        # Nothing of the refused change may stay in the transaction the page is read from.
        self.session.rollback()
        target = service.load_target(self.session, *self.names)
        name = target.component.name
        return render_release(
            self.request,
            self.session,
            target.model,
            target.release,
            now=self.now,
            errors={name: err.detail},
            drafts={name: draft} if draft else None,
            status=err.status,
        )


ActionDep = Annotated[Action, Depends(Action)]


@router.post(COMPONENT + "/hold")
def hold(action: ActionDep) -> Response:
    def change() -> None:
        body = parse(HoldIn, {"reason": action.form.get("reason", "")})
        service.hold(
            action.session,
            target=action.target,
            reason=body.reason,
            actor=action.actor,
            now=action.now,
            ctx=action.ctx,
        )

    return action.run("held", change)


@router.post(COMPONENT + "/resume")
def resume(action: ActionDep) -> Response:
    def change() -> None:
        body = parse(ResumeIn, {"reason": action.form.get("reason") or None})
        service.resume(
            action.session,
            target=action.target,
            reason=body.reason,
            actor=action.actor,
            now=action.now,
            ctx=action.ctx,
        )

    return action.run("resumed", change)


@router.post(COMPONENT + "/restrict")
def restrict(action: ActionDep) -> Response:
    def change() -> None:
        body = parse(
            RestrictIn, {"tier": action.form.get("tier"), "reason": action.form.get("reason", "")}
        )
        service.restrict(
            action.session,
            target=action.target,
            tier=body.tier,
            reason=body.reason,
            actor=action.actor,
            now=action.now,
            ctx=action.ctx,
        )

    return action.run("restricted", change)


@router.post(COMPONENT + "/lift")
def lift(action: ActionDep) -> Response:
    def change() -> None:
        body = parse(
            LiftIn,
            {"tier": action.form.get("tier") or None, "reason": action.form.get("reason") or None},
        )
        service.lift(
            action.session,
            target=action.target,
            tier=body.tier,
            reason=body.reason,
            actor=action.actor,
            now=action.now,
            ctx=action.ctx,
        )

    return action.run("lifted", change)


async def _stage_rows(request: Request) -> dict[str, list[str]]:
    return {name: await form_list(request, name) for name in ("past_tier", "past_at", "tier", "at")}


StageRows = Annotated[dict[str, list[str]], Depends(_stage_rows)]


def _schedule_in(action: Action, rows: dict[str, list[str]]) -> ScheduleIn:
    schedule = stages_from_form(
        rows["past_tier"], rows["past_at"], rows["tier"], rows["at"], action.form.get("zone", "")
    )
    body: ScheduleIn = parse(
        ScheduleIn, {"schedule": schedule, "reason": action.form.get("reason") or None}
    )
    return body


def _reschedule(action: Action, body: ScheduleIn) -> None:
    service.reschedule(
        action.session,
        target=action.target,
        schedule=[s.resolve(action.now) for s in body.schedule],
        reason=body.reason,
        actor=action.actor,
        now=action.now,
        ctx=action.ctx,
    )


@router.post(COMPONENT)
def reschedule(action: ActionDep, rows: StageRows) -> Response:
    draft = {
        "open": "reschedule",
        "rows": list(zip(rows["tier"], rows["at"], strict=False)),
        "reason": action.form.get("reason", ""),
    }
    try:
        body = _schedule_in(action, rows)
    except AppError as err:
        return action.refused(err, draft)
    return action.run("rescheduled", lambda: _reschedule(action, body), draft)


@router.post(COMPONENT + "/preview")
def preview(request: Request, action: ActionDep, rows: StageRows) -> Response:
    """What the reschedule would change, computed by the service itself inside a savepoint
    that is rolled back: the preview can never disagree with the save."""
    old = {s.tier.value: s.at for s in _current(action).stages}
    try:
        body = _schedule_in(action, rows)
        savepoint = action.session.begin_nested()
        try:
            service.check_version(action.session, action.target, action.form.get("etag"))
            _reschedule(action, body)
            new = _current(action)
        finally:
            savepoint.rollback()
    except AppError as err:
        return render(request, "_preview.html", {"error": err.detail}, status=200)
    changes: list[dict[str, Any]] = []
    for stage in new.stages:
        was = old.pop(stage.tier.value, None)
        if was is None:
            changes.append({"text": f"{stage.tier}: added at", "at": stage.at, "was": None})
        elif was != stage.at:
            changes.append({"text": f"{stage.tier}: moves to", "at": stage.at, "was": was})
    for tier, at in old.items():
        changes.append({"text": f"{tier}: removed", "at": None, "was": at})
    return render(request, "_preview.html", {"error": None, "changes": changes, "preview": new})


def _current(action: Action) -> Any:
    stages = service.stages_of(action.session, action.target)
    return service.schedule_out(action.target, stages, now=action.now)


def audience(session: Session, target: service.Target, *, now: datetime, tier: Tier) -> str:
    """Who a lift to ``tier`` opens the component to, beyond those who already have it."""
    if tier == Tier.OPEN:
        return "Everyone will be able to download it, without an account (anonymous downloads)."
    users, partners = grants.audience_counts(session, target.model.id, now=now)
    current = service.schedule_out(target, service.stages_of(session, target), now=now).tier
    parts = []
    if current.rank < Tier.PARTNER.rank <= tier.rank:
        parts.append(f"{partners} partner{'s' if partners != 1 else ''} under agreement")
    if current.rank < Tier.RESEARCH.rank <= tier.rank:
        parts.append(f"{users} user{'s' if users != 1 else ''} with an access grant")
    if not parts:
        return "Nobody new: everyone this tier admits can already download it."
    return "It opens to " + " and ".join(parts) + " for this model."


@router.get(COMPONENT + "/lift")
def lift_confirmation(
    request: Request,
    namespace: str,
    name: str,
    version: str,
    component: str,
    admin: AdminSession,
    session: SessionDep,
    clock: ClockDep,
    tier: Annotated[Tier | None, Query()] = None,
) -> Response:
    now = clock.now()
    target = service.load_target(session, namespace, name, version, component)
    stages = service.stages_of(session, target)
    out = service.schedule_out(target, stages, now=now)
    chosen = tier or (out.next.tier if out.next else None)
    if chosen is None:
        raise Unprocessable(f"{target.label} has no stage left to lift to; choose a tier")
    page = f"{PREFIX}/models/{namespace}/{name}/releases/{version}"
    return render(
        request,
        "lift_confirm.html",
        {
            "label": target.label,
            "current": out.tier,
            "tier": chosen,
            "audience": audience(session, target, now=now, tier=chosen),
            "etag": service.schedule_version(target.component, stages),
            "action": f"{page}/components/{component}/schedule/lift",
            "back": f"{page}#c-{component}",
        },
    )
