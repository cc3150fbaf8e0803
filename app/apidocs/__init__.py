"""The interactive API reference at ``/docs``: Swagger UI, served from this server.

FastAPI's default page loads Swagger UI's script and styles from a public CDN when a browser
opens it, which a deployment without internet access (or with a strict CSP) cannot do. Here
the assets come from the ``swagger-ui-bundle-v2`` package, the page's own script is a file
next to this module (no inline script), and the page carries a Content-Security-Policy that
lets it load from this server only. ReDoc (also CDN-only in FastAPI) is not served.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, HTMLResponse
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

DOCS = "/docs"
ASSETS = "/docs/assets"
_HERE = Path(__file__).parent
# Swagger UI styles its elements from script, and "Try it out" calls the API from the page.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'"
)

router = APIRouter(include_in_schema=False)


@router.get(DOCS)
async def docs_page() -> HTMLResponse:
    return HTMLResponse(
        (_HERE / "docs.html").read_text(encoding="utf-8"),
        headers={"Content-Security-Policy": DOCS_CSP},
    )


@router.get(DOCS + "/init.js")
async def docs_script() -> FileResponse:
    return FileResponse(_HERE / "init.js", media_type="text/javascript")


def mount_api_docs(app: FastAPI) -> None:
    """Serve ``/docs`` and its assets on ``app`` (created with ``docs_url=None``)."""
    app.include_router(router)
    app.mount(ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")
