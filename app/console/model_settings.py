"""A model's access settings from the console: auto-approve and the request form's fields,
saved through the catalogue service exactly as ``PATCH /v1/models/{ns}/{name}``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse

from app.catalogue import service as catalogue_service
from app.catalogue.router import admin_model
from app.catalogue.schemas import ModelPatch
from app.console.schedule_actions import parse
from app.console.security import PREFIX
from app.console.session import AdminSession, CheckedForm, form_list, principal_of
from app.console.templating import render
from app.context import ClockDep, ContextDep
from app.db import SessionDep
from app.errors import AppError

router = APIRouter(prefix=PREFIX, include_in_schema=False)
FIELD_TYPES = ("text", "email", "select", "checkbox", "country")


async def _field_rows(request: Request) -> dict[str, list[str]]:
    names = ("field_name", "field_type", "field_label", "field_options", "field_required")
    return {name: await form_list(request, name) for name in names}


def request_fields(rows: dict[str, list[str]]) -> list[dict[str, Any]]:
    """The form's field rows as the API's ``request_fields`` (a row without a name is left
    out; ``field_required`` lists the indexes of the rows ticked as required)."""
    required = set(rows["field_required"])
    fields = []
    for i, name in enumerate(rows["field_name"]):
        if not name.strip():
            continue
        options = rows["field_options"][i] if i < len(rows["field_options"]) else ""
        fields.append(
            {
                "name": name.strip(),
                "type": rows["field_type"][i] if i < len(rows["field_type"]) else "text",
                "label": rows["field_label"][i] if i < len(rows["field_label"]) else "",
                "required": str(i) in required,
                "options": [o.strip() for o in options.split(",") if o.strip()],
            }
        )
    return fields


@router.post("/models/{namespace}/{name}/settings")
def save_settings(
    request: Request,
    namespace: str,
    name: str,
    admin: AdminSession,
    form: CheckedForm,
    rows: Annotated[dict[str, list[str]], Depends(_field_rows)],
    session: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> Response:
    model = admin_model(session, namespace, name)
    try:
        body: ModelPatch = parse(
            ModelPatch,
            {
                "auto_approve": form.get("auto_approve") == "on",
                "request_fields": request_fields(rows),
            },
        )
        catalogue_service.update_model(
            session, model=model, body=body, actor=principal_of(admin), now=clock.now(), ctx=ctx
        )
    except AppError as err:
        session.rollback()
        return render(
            request,
            "error.html",
            {"title": "Check the form", "detail": err.detail, "status": err.status},
            status=err.status,
        )
    return RedirectResponse(f"{PREFIX}/models/{model.repo_id}?saved=1#settings", status_code=303)
