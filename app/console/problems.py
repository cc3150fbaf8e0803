"""Errors under ``/console`` as pages: the same problem (status, code, detail) the API
would answer, rendered as HTML; a request without a session is sent to the sign-in form."""

from __future__ import annotations

import json
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import RedirectResponse

from app.console.security import PREFIX
from app.console.templating import render
from app.errors import PROBLEM_JSON

_TITLES = {
    400: "Bad request",
    401: "Sign-in needed",
    403: "Refused",
    404: "Not found",
    405: "Not allowed",
    409: "Conflict",
    413: "Too large",
    422: "Check the form",
    429: "Too many requests",
}


def sign_in_redirect(request: Request) -> Response:
    location = f"{PREFIX}/sign-in"
    if request.method in ("GET", "HEAD"):
        # Back to the page after signing in; never to a form's target (a POST-only path).
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        location += f"?next={quote(target, safe='')}"
    if request.headers.get("hx-request"):
        # htmx swaps a redirect's page into the fragment; ask it to navigate instead.
        return Response(status_code=401, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


def render_problem(request: Request, response: Response) -> Response | None:
    path = request.url.path
    if path != PREFIX and not path.startswith(PREFIX + "/"):
        return None
    if response.headers.get("content-type", "").split(";")[0] != PROBLEM_JSON:
        return None
    problem = json.loads(bytes(response.body))
    if problem.get("code") == "sign_in_required":
        return sign_in_redirect(request)
    status = response.status_code
    headers = {k: v for k, v in response.headers.items() if k.lower() in ("allow", "retry-after")}
    return render(
        request,
        "error.html",
        {
            "title": _TITLES.get(status, "Error"),
            "detail": problem.get("detail", ""),
            "code": problem.get("code", ""),
            "status": status,
        },
        status=status,
        headers=headers,
        as_signed_in=False,
    )
