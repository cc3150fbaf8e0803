"""Errors the Hugging Face client understands.

``huggingface_hub`` (``utils/_http.py: hf_raise_for_status``) turns a failed response into
its own exception from the ``X-Error-Code`` header alone, and shows ``X-Error-Message`` to the
user; the body is only a fallback. HEAD responses have no body at all, so everything the
client needs travels in headers. The bodies stay our problem+json with a stable ``code``.

    X-Error-Code       client exception           when
    RepoNotFound       RepositoryNotFoundError    unknown model, or one the caller may not know
    RevisionNotFound   RevisionNotFoundError      no published release by that name or id
    EntryNotFound      RemoteEntryNotFoundError   no such file (or one the caller may not know)
    GatedRepo          GatedRepoError             the file exists but is not open to the caller

A 401 carries ``X-Error-Message: Invalid credentials in Authorization header``: that exact text
keeps the client from reporting a bad key as a missing repository.
"""

from __future__ import annotations

from datetime import datetime

from app.access.tiers import Tier
from app.errors import AppError, EmbargoActive, Forbidden, GrantRequired, NotFound, Unauthorized

INVALID_CREDENTIALS = "Invalid credentials in Authorization header"


def header_safe(text: str) -> str:
    """``text`` fit for a header value: printable ASCII on one line, at most 500 characters.
    Messages echo what the caller sent (a repo id, a path), and a control character in a
    header makes the server drop the connection without an answer (uvicorn refuses it)."""
    printable = "".join(c if " " <= c <= "~" else "?" for c in text)
    return " ".join(printable.split())[:500]


def hf_headers(
    code: str, message: str, *, commit: str | None = None, extra: dict[str, str] | None = None
) -> dict[str, str]:
    headers = {"X-Error-Code": code, "X-Error-Message": header_safe(message), **(extra or {})}
    if commit is not None:
        # The client caches "this file does not exist at that commit" under X-Repo-Commit.
        headers["X-Repo-Commit"] = commit
    return headers


def repo_not_found(repo_id: str) -> NotFound:
    # Same words whether the model does not exist or the caller may not know it exists.
    detail = f"model {repo_id} not found"
    return NotFound(detail, code="model_not_found", headers=hf_headers("RepoNotFound", detail))


def revision_not_found(repo_id: str, revision: str) -> NotFound:
    detail = f"no published release {revision!r} of {repo_id}"
    return NotFound(
        detail, code="release_not_found", headers=hf_headers("RevisionNotFound", detail)
    )


def entry_not_found(repo_id: str, version: str, path: str, *, commit: str) -> NotFound:
    detail = f"no file {path!r} in {repo_id}@{version}"
    return NotFound(
        detail, code="file_not_found", headers=hf_headers("EntryNotFound", detail, commit=commit)
    )


def gated(
    repo_id: str,
    what: str,
    *,
    clearance: Tier,
    tier: Tier,
    opens_to_caller_at: datetime | None,
) -> AppError:
    """Why ``what`` (a file or a release) is closed to the caller, as a GatedRepo error.

    - it would open to the caller with an access grant → ``access_grant_required``;
    - it opens to the caller's clearance on a known date → ``embargoed`` with ``until``;
    - nothing scheduled opens it to the caller → ``forbidden``.
    """
    when = f"; it opens to you at {opens_to_caller_at.isoformat()}" if opens_to_caller_at else ""
    if clearance == Tier.OPEN and tier == Tier.RESEARCH:
        detail = (
            f"{what} of {repo_id} needs an approved access request "
            f"(weightgate request-access {repo_id}){when}"
        )
        return GrantRequired(
            detail,
            headers=hf_headers("GatedRepo", detail),
            opens_to_you_at=opens_to_caller_at.isoformat() if opens_to_caller_at else None,
        )
    if opens_to_caller_at is not None:
        detail = f"{what} of {repo_id} is under embargo{when}"
        return EmbargoActive(
            detail, until=opens_to_caller_at, headers=hf_headers("GatedRepo", detail)
        )
    detail = f"{what} of {repo_id} is not open to your access tier ({clearance.value})"
    return Forbidden(detail, code="not_open_to_you", headers=hf_headers("GatedRepo", detail))


def with_invalid_credentials(err: Unauthorized) -> Unauthorized:
    """The same 401, marked so the HF client says "bad credentials", not "no such repo"."""
    err.headers = {**err.headers, "X-Error-Message": INVALID_CREDENTIALS}
    return err
