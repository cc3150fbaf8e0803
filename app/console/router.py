"""The web console's routes, all under ``/console`` (docs/console.md)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.console import (
    access_queue,
    audit_page,
    catalogue_pages,
    download_pages,
    model_settings,
    oidc,
    partner_admin,
    partner_pages,
    researcher_pages,
    safety_pages,
    schedule_actions,
    sign_in,
    sign_up,
    upcoming,
    user_pages,
    webhook_pages,
)
from app.console.assets import serve_asset
from app.console.security import PREFIX

router = APIRouter(include_in_schema=False)


@router.get(PREFIX + "/static/{name}")
async def static(request: Request, name: str) -> Response:
    return serve_asset(request, name)


router.include_router(sign_in.router)
router.include_router(oidc.router)
router.include_router(upcoming.router)
router.include_router(catalogue_pages.router)
router.include_router(schedule_actions.router)
router.include_router(audit_page.router)
router.include_router(access_queue.router)
router.include_router(model_settings.router)
router.include_router(researcher_pages.router)
router.include_router(download_pages.router)
router.include_router(partner_pages.router)
router.include_router(sign_up.router)
router.include_router(safety_pages.router)
router.include_router(webhook_pages.router)
router.include_router(user_pages.router)
router.include_router(partner_admin.router)
