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
    NotSupported       HfHubHTTPError (501)       a Hub API weightgate does not implement
    GatedRepo          GatedRepoError             any file the caller may not download now
                                                  (missing or not) of a release with something
                                                  closed to them that an access grant opens:
                                                  gated as a whole, like a gated repository
    Embargoed          HfHubHTTPError (403)       the same, when what is closed opens on a
                                                  date (the grant is there, or would not help)
    Held               HfHubHTTPError (403)       the same, when a hold keeps it closed
    NotOpenToYou       HfHubHTTPError (403)       the same, when nothing scheduled opens it

A 401 carries ``X-Error-Message: Invalid credentials in Authorization header``: that exact text
keeps the client from reporting a bad key as a missing repository.

Every refusal of closed content also carries its message as ``X-HF-Warning``, which
``hf_raise_for_status`` logs (a warning, shown by default) before it raises, whatever the
caller then makes of the exception. No ``X-Error-Code`` puts the message in both the exception
``hf_hub_download`` raises and the line ``hf download`` prints (docs/huggingface.md, "Where the
reason shows"): ``GatedRepo`` keeps it in the exception and ``hf`` prints "requires approval"
instead; any other 403 is wrapped in a ``LocalEntryNotFoundError`` about the connection, and
``--force-download`` turns every refusal into "Force download failed". The warning is the one
channel no wrapping drops.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from app.errors import AppError, Unauthorized
from app.policy.decision import Reason
from app.refusals import header_safe, refusal, stamp

__all__ = [
    "INVALID_CREDENTIALS",
    "ClosedReason",
    "HubNotSupported",
    "entry_not_found",
    "gated",
    "header_safe",
    "hub_warning",
    "repo_not_found",
    "revision_not_found",
    "with_invalid_credentials",
]

INVALID_CREDENTIALS = "Invalid credentials in Authorization header"


@dataclass(frozen=True)
class ClosedReason:
    """Why one component the caller may know about is closed to them, in words."""

    component: str
    reason: Reason
    opens: datetime | None  # when it opens to the caller, if a date is set
    text: str


class HubNotSupported(AppError):
    """A Hub API weightgate does not implement (uploads, search, discussions, …)."""

    status = 501
    default_code = "not_supported"
    title = "Not supported"

    def __init__(self, detail: str) -> None:
        super().__init__(
            detail,
            headers={"X-Error-Code": "NotSupported", "X-Error-Message": header_safe(detail)},
        )


def hub_warning(topic: str, message: str) -> str:
    """An ``X-HF-Warning`` value: ``huggingface_hub`` splits it at the first ``;`` into a topic
    and a message, and logs the message the first time it sees the topic in a process."""
    return f"{header_safe(topic).replace(';', ',')}; {header_safe(message)}"


def repo_not_found(repo_id: str) -> AppError:
    # Same words whether the model does not exist or the caller may not know it exists.
    return refusal(Reason.MODEL_NOT_FOUND, f"model {repo_id} not found", hub=True)


def revision_not_found(repo_id: str, revision: str) -> AppError:
    detail = f"no published release {revision!r} of {repo_id}"
    return refusal(Reason.RELEASE_NOT_FOUND, detail, hub=True)


def entry_not_found(repo_id: str, version: str, path: str, *, commit: str) -> AppError:
    detail = f"no file {path!r} in {repo_id}@{version}"
    return refusal(Reason.FILE_NOT_FOUND, detail, hub=True, commit=commit)


def gated(
    repo_id: str,
    what: str,
    reasons: Sequence[ClosedReason],
    *,
    hint: str = "",
) -> AppError:
    """Why ``what`` (a release, or a revision of it) is closed to the caller: every closed
    component with its reason and date, and the status and ``X-Error-Code`` of the reason
    that matters most to the caller:

    - something would open with an access grant → ``access_grant_required``, ``GatedRepo``
      (the client says "requires approval", which is then what to do);
    - else something opens on a known date → ``embargoed`` with ``until`` (the soonest);
    - else something waits for a held schedule → ``component_held``;
    - else ``not_open_to_you``.

    Only the first is a ``GatedRepo``: ``hf`` prints "requires approval" for that code and
    drops the message, which would tell an approved researcher the wrong thing about an
    embargo. Under any other code the client shows ``X-Error-Message``.
    """
    listed = "; ".join(r.text for r in reasons) or "it is not open to your access tier"
    detail = f"{what} of {repo_id} is not open to you: {listed}{hint}"
    body = [
        {"component": r.component, "reason": r.reason.value, "opens_to_you_at": _iso(r.opens)}
        for r in reasons
    ]
    kinds = {r.reason for r in reasons}
    if Reason.GRANT_REQUIRED in kinds:
        opens = min((r.opens for r in reasons if r.opens), default=None)
        err = refusal(
            Reason.GRANT_REQUIRED, detail, hub=True, opens_to_you_at=_iso(opens), components=body
        )
    elif dated := [r.opens for r in reasons if r.reason == Reason.EMBARGOED and r.opens]:
        err = refusal(Reason.EMBARGOED, detail, hub=True, until=min(dated), components=body)
    elif Reason.HELD in kinds:
        err = refusal(Reason.HELD, detail, hub=True, components=body)
    else:
        err = refusal(Reason.NOT_OPEN_TO_YOU, detail, hub=True, components=body)
    # The client warns once per topic and process: one topic per distinct refusal, so the
    # same refusal is not repeated for every file of a loop, and a changed one (a new date,
    # another model) shows again.
    digest = hashlib.sha256(detail.encode()).hexdigest()[:16]
    err.headers["X-HF-Warning"] = hub_warning(f"weightgate-refused {repo_id} {digest}", detail)
    return err


def _iso(at: datetime | None) -> str | None:
    return stamp(at) if at else None


def with_invalid_credentials(err: Unauthorized) -> Unauthorized:
    """The same 401, marked so the HF client says "bad credentials", not "no such repo"."""
    err.headers = {**err.headers, "X-Error-Message": INVALID_CREDENTIALS}
    return err
