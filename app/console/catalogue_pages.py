"""The admin's catalogue pages: models, a model's releases, and a release's timeline (each
component's schedule as a picture, with its files, sizes and SHA-256 underneath)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.orm import Session

from app.catalogue import contents
from app.catalogue.router import admin_model, model_out, release_out
from app.catalogue.service import require_release
from app.console.security import PREFIX
from app.console.session import AdminSession
from app.console.templating import render
from app.console.timeline_svg import Mark, timeline_svg
from app.context import ClockDep
from app.db import SessionDep
from app.models import Model, Release
from app.pagination import decode_cursor, encode_cursor
from app.policy.tiers import LADDER, Tier
from app.schedule.service import Target, schedule_out, schedule_version

router = APIRouter(prefix=PREFIX, include_in_schema=False)
PAGE = 50
Cursor = Annotated[str | None, Query(max_length=64)]


@router.get("/models")
def models(
    request: Request, admin: AdminSession, session: SessionDep, cursor: Cursor = None
) -> Response:
    rows, latest = contents.models_page(
        session, after=decode_cursor(cursor) if cursor else None, limit=PAGE
    )
    return render(
        request,
        "models.html",
        {
            "models": [model_out(m, latest.get(m.id)) for m in rows],
            "next_cursor": encode_cursor(rows[-1].id) if len(rows) == PAGE else None,
        },
    )


@router.get("/models/{namespace}/{name}")
def model_page(
    request: Request,
    namespace: str,
    name: str,
    admin: AdminSession,
    session: SessionDep,
    cursor: Cursor = None,
    saved: Annotated[bool, Query()] = False,
) -> Response:
    model = admin_model(session, namespace, name)
    rels = contents.releases_page(
        session,
        model.id,
        after=decode_cursor(cursor) if cursor else None,
        limit=PAGE,
        published_only=False,
    )
    stats = contents.release_stats(session, [r.id for r in rels])
    return render(
        request,
        "model.html",
        {
            "model": model_out(model),
            "releases": [release_out(model, r, stats.get(r.id)) for r in rels],
            "next_cursor": encode_cursor(rels[-1].id) if len(rels) == PAGE else None,
            "saved": saved,
            "field_types": ("text", "email", "select", "checkbox", "country"),
        },
    )


@router.get("/models/{namespace}/{name}/releases/{version}")
def release_page(
    request: Request,
    namespace: str,
    name: str,
    version: str,
    admin: AdminSession,
    session: SessionDep,
    clock: ClockDep,
    done: Annotated[str | None, Query(max_length=32)] = None,
    component: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    model = admin_model(session, namespace, name)
    rel = require_release(session, model, version)
    notices = {component: DONE[done]} if component and done in DONE else {}
    return render_release(request, session, model, rel, now=clock.now(), notices=notices)


# What the page says after an action, by the code its redirect carries (a fixed set: a
# message in the URL would let a link put words in the console's mouth).
DONE = {
    "rescheduled": "Rescheduled.",
    "held": "Held: no later stage applies until resumed.",
    "resumed": "Resumed: the schedule applies again.",
    "lifted": "Lifted.",
    "restricted": "Restricted: the emergency ceiling applies until resumed.",
}


def render_release(
    request: Request,
    session: Session,
    model: Model,
    rel: Release,
    *,
    now: datetime,
    notices: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    drafts: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    """The release page; ``errors`` and ``notices`` are shown at their component, and
    ``drafts`` keeps what the admin typed in a form that was refused."""
    held = contents.release_contents(session, rel.id)
    components = []
    for comp in held.components:
        own_stages = held.stages.get(comp.id, [])
        out = schedule_out(Target(model, rel, comp), own_stages, now=now)
        svg = timeline_svg(
            label=f"{model.repo_id}@{rel.version}/{comp.name}",
            marks=[Mark(s.tier, s.at, s.state) for s in out.stages],
            now=now,
            held_at=out.held_at,
            ceiling=Tier(out.restricted_tier) if out.restricted_tier else None,
        )
        own = held.files.get(comp.id, [])
        components.append(
            {
                "schedule": out,
                "svg": svg,
                "files": own,
                "size": sum(f.size for f in own),
                "etag": schedule_version(comp, own_stages),
                "href": f"{PREFIX}/models/{model.repo_id}/releases/{rel.version}/components/"
                f"{comp.name}",
                "error": (errors or {}).get(comp.name),
                "notice": (notices or {}).get(comp.name),
                "draft": (drafts or {}).get(comp.name, {}),
            }
        )
    return render(
        request,
        "release.html",
        {
            "now": now,
            "model": model_out(model),
            "release": release_out(model, rel, None),
            "components": components,
            "tiers": [t.value for t in LADDER],
        },
        status=status,
    )
