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

:func:`app.policy.disclosure.file_disclosure` applies the rule to one file and
:func:`app.policy.decision.decide` says why a component is closed; here, :data:`ANSWERS` maps
every reason to its HTTP status, problem ``code`` and the ``X-Error-Code`` that Hugging Face
clients turn into their own exceptions, :func:`refusal` builds the error and :func:`denial`
words a :class:`~app.policy.decision.Refused` the same way on every route. This is the one
table: a new reason is a row here and a branch in ``decide``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.errors import AppError, EmbargoActive, Forbidden, GrantRequired, NotFound
from app.policy.decision import Reason, Refused

__all__ = ["ANSWERS", "Answer", "Reason", "denial", "header_safe", "refusal", "stamp"]


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
    Reason.HELD: Answer(Forbidden, "component_held", "Held"),
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


def stamp(at: datetime) -> str:
    # As the body's ``until`` reads: one spelling of an instant in the message and the field.
    return at.isoformat()


def denial(
    refused: Refused,
    what: str,
    *,
    model: str,
    hub: bool = False,
    commit: str | None = None,
) -> AppError:
    """The error for a component closed to the caller, worded alike on every route: ``what``
    names the thing asked for (``component 'weights' of acme/atlas``), ``model`` the repo id
    the access-request hint names."""
    opens = f"; it opens to you at {stamp(refused.until)}" if refused.until else ""
    if refused.reason == Reason.GRANT_REQUIRED:
        detail = (
            f"{what} needs an approved access request (weightgate request-access {model}){opens}"
        )
        at = stamp(refused.until) if refused.until else None
        return refusal(refused.reason, detail, hub=hub, commit=commit, opens_to_you_at=at)
    if refused.reason == Reason.EMBARGOED:
        detail = f"{what} is under embargo{opens}"
        return refusal(refused.reason, detail, hub=hub, commit=commit, until=refused.until)
    if refused.reason == Reason.HELD:
        # The hold's reason stays with admins: it may name safety reports and reporters.
        detail = (
            f"{what} is on hold: the stage that opens it to you waits for an administrator "
            "to resume its schedule"
        )
        return refusal(refused.reason, detail, hub=hub, commit=commit)
    detail = (
        f"{what} is not open to your access tier ({refused.clearance.value}): "
        "nothing scheduled opens it to you"
    )
    return refusal(refused.reason, detail, hub=hub, commit=commit)
