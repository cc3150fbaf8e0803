"""Errors the Hugging Face client understands.

``huggingface_hub`` (``utils/_http.py: hf_raise_for_status``) turns a failed response into
its own exception from the ``X-Error-Code`` header alone, and shows ``X-Error-Message`` to the
user; the body is only a fallback. HEAD responses have no body at all, so everything the
client needs travels in headers. The bodies stay our problem+json with a stable ``code``.

    X-Error-Code       client exception           when
    RepoNotFound       RepositoryNotFoundError    unknown model, or one the caller may not know
    RevisionNotFound   RevisionNotFoundError      no published release by that name or id
    EntryNotFound      RemoteEntryNotFoundError   no such file, in a release with nothing
                                                  closed to the caller
    GatedRepo          GatedRepoError             any file the caller may not download now
                                                  (missing or not) of a release with something
                                                  closed to them: gated as a whole, like a
                                                  gated repository on the Hub

A 401 carries ``X-Error-Message: Invalid credentials in Authorization header``: that exact text
keeps the client from reporting a bad key as a missing repository.
"""

from __future__ import annotations

from app.errors import AppError, Unauthorized
from app.policy.decision import Reason
from app.refusals import header_safe, refusal

__all__ = [
    "INVALID_CREDENTIALS",
    "entry_not_found",
    "header_safe",
    "repo_not_found",
    "revision_not_found",
    "with_invalid_credentials",
]

INVALID_CREDENTIALS = "Invalid credentials in Authorization header"


def repo_not_found(repo_id: str) -> AppError:
    # Same words whether the model does not exist or the caller may not know it exists.
    return refusal(Reason.MODEL_NOT_FOUND, f"model {repo_id} not found", hub=True)


def revision_not_found(repo_id: str, revision: str) -> AppError:
    detail = f"no published release {revision!r} of {repo_id}"
    return refusal(Reason.RELEASE_NOT_FOUND, detail, hub=True)


def entry_not_found(repo_id: str, version: str, path: str, *, commit: str) -> AppError:
    detail = f"no file {path!r} in {repo_id}@{version}"
    return refusal(Reason.FILE_NOT_FOUND, detail, hub=True, commit=commit)


def with_invalid_credentials(err: Unauthorized) -> Unauthorized:
    """The same 401, marked so the HF client says "bad credentials", not "no such repo"."""
    err.headers = {**err.headers, "X-Error-Message": INVALID_CREDENTIALS}
    return err
