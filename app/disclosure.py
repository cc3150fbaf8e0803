"""What a caller may learn about what they may not download, and how each refusal is answered.

The rule, decided here once for every route (``/v1/files``, ``/resolve`` and the Hub's
listings, ``POST /v1/tokens``, the catalogue):

- A thing the caller may not know exists is refused exactly like a thing that does not
  exist: same status, body and headers, after the same work. A caller may not know a model
  that is not announced to them, a release that is not announced, a component that is
  ``internal`` to a non-staff caller, nor a *file* they may not download now: file paths
  are shown only with the files (manifests, ``siblings``, ``tree``), so a path that answered
  differently from a missing one would let anyone probe shard counts and names.
- A component whose existence is announced may say why it is closed and when it opens
  (manifests list it with its tier and next lift), and so may a file covered by a download
  token the caller holds: issuing the token told them about it.
- So a path the caller may not know is answered from what they may know of the release,
  never from the path: ``/v1/files`` and ``POST /v1/tokens`` say "no such file"; the Hub's
  routes treat a release with a component closed to the caller as gated as a whole, as
  huggingface.co gates a repository (GatedRepo, saying how it opens), and say "no such
  file" only for a release with nothing closed to the caller.

:func:`file_disclosure` applies the rule to one file; :data:`ANSWERS` maps every reason a
request is refused for to its HTTP status, problem ``code`` and the ``X-Error-Code`` that
Hugging Face clients turn into their own exceptions; :func:`refusal` builds the error.
This module imports nothing from the web, the database or the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from app.errors import AppError, EmbargoActive, Forbidden, GrantRequired, NotFound


class Reason(StrEnum):
    MODEL_NOT_FOUND = "model_not_found"
    RELEASE_NOT_FOUND = "release_not_found"
    COMPONENT_NOT_FOUND = "component_not_found"
    FILE_NOT_FOUND = "file_not_found"
    EMBARGOED = "embargoed"  # opens to the caller at a known date
    GRANT_REQUIRED = "access_grant_required"  # opens to the caller with an access grant
    NOT_OPEN_TO_YOU = "not_open_to_you"  # nothing scheduled opens it to the caller


@dataclass(frozen=True)
class Answer:
    error: type[AppError]
    code: str
    hub: str  # X-Error-Code: what huggingface_hub raises (utils/_http.py)


ANSWERS: dict[Reason, Answer] = {
    Reason.MODEL_NOT_FOUND: Answer(NotFound, "model_not_found", "RepoNotFound"),
    Reason.RELEASE_NOT_FOUND: Answer(NotFound, "release_not_found", "RevisionNotFound"),
    Reason.COMPONENT_NOT_FOUND: Answer(NotFound, "component_not_found", "EntryNotFound"),
    Reason.FILE_NOT_FOUND: Answer(NotFound, "file_not_found", "EntryNotFound"),
    # Not GatedRepo: for that code `hf` prints "requires approval" and drops the message.
    Reason.EMBARGOED: Answer(EmbargoActive, "embargoed", "Embargoed"),
    Reason.GRANT_REQUIRED: Answer(GrantRequired, "access_grant_required", "GatedRepo"),
    Reason.NOT_OPEN_TO_YOU: Answer(Forbidden, "not_open_to_you", "NotOpenToYou"),
}


def header_safe(text: str, limit: int = 2000) -> str:
    """``text`` fit for a header value: printable ASCII on one line, at most ``limit``
    characters (enough to name every closed component of a release with its reason).
    Messages echo what the caller sent (a repo id, a path), and a control character in a
    header makes the server drop the connection without an answer (uvicorn refuses it)."""
    printable = "".join(c if " " <= c <= "~" else "?" for c in text)
    return " ".join(printable.split())[:limit]


def refusal(
    reason: Reason,
    detail: str,
    *,
    hub: bool = False,
    commit: str | None = None,
    until: datetime | None = None,
    **extra: Any,
) -> AppError:
    """The error for ``reason``: its status and ``code`` from :data:`ANSWERS`; with ``hub``,
    the ``X-Error-Code``/``X-Error-Message`` headers Hugging Face clients read (and
    ``X-Repo-Commit``, under which they cache "no such file at this commit")."""
    answer = ANSWERS[reason]
    headers: dict[str, str] = {}
    if hub:
        headers = {"X-Error-Code": answer.hub, "X-Error-Message": header_safe(detail)}
        if commit is not None:
            headers["X-Repo-Commit"] = commit
    if answer.error is EmbargoActive:
        return EmbargoActive(detail, until=until, code=answer.code, headers=headers, **extra)
    return answer.error(detail, code=answer.code, headers=headers, **extra)


FileDisclosure = Literal["download", "not_found", "closed"]


def file_disclosure(
    *, downloadable: bool, component_visible: bool, covered_by_token: bool = False
) -> FileDisclosure:
    """How to answer a request for an existing file (a missing one is ``not_found``):

    - ``download``: the caller may download it now;
    - ``closed``: refuse, saying why and when it opens (the file is covered by a token the
      caller holds, and its component is one they may know about);
    - ``not_found``: refuse exactly as if the file did not exist.
    """
    if downloadable:
        return "download"
    if covered_by_token and component_visible:
        return "closed"
    return "not_found"
