"""``weightgate request-access`` and ``weightgate access``: asking for a model (its license and
request fields shown first) and listing one's requests and grants."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.cli.errors import CliError
from app.cli.http import ApiClient
from app.cli.plan import Target

Prompt = Callable[[str], str]
Confirm = Callable[[str], bool]
TRUE_WORDS = frozenset({"y", "yes", "true", "1", "on"})


@dataclass(frozen=True)
class ModelTerms:
    model: str
    display_name: str
    license: str
    license_sha256: str
    auto_approve: bool
    fields: list[dict[str, Any]]


def read_terms(api: ApiClient, target: Target) -> ModelTerms:
    m = api.get(f"/v1/models/{target.model}", what=f"reading {target.model}")
    return ModelTerms(
        model=m["id"],
        display_name=m.get("display_name") or m["id"],
        license=m.get("license") or "",
        license_sha256=m["license_sha256"],
        auto_approve=bool(m.get("auto_approve")),
        fields=list(m.get("request_fields") or []),
    )


def parse_answers(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"--answer takes name=value, got {pair!r}", code="bad_answer")
        out[key.strip()] = value
    return out


def collect_answers(
    terms: ModelTerms, given: dict[str, str], *, prompt: Prompt | None
) -> dict[str, str | bool]:
    """Answers for the model's request fields: from ``--answer``, else asked (when there is
    a terminal to ask on). Checkbox fields become booleans."""
    known = {f["name"] for f in terms.fields}
    unknown = sorted(set(given) - known)
    if unknown:
        raise CliError(
            f"{terms.model} asks no field {unknown[0]!r} "
            f"(fields: {', '.join(sorted(known)) or 'none'})",
            code="unknown_field",
        )
    answers: dict[str, str | bool] = {}
    for f in terms.fields:
        name = f["name"]
        value = given.get(name)
        if value is None and prompt is not None:
            label = f.get("label") or name
            options = f" ({'/'.join(f['options'])})" if f.get("options") else ""
            value = prompt(f"{label}{options}")
        if value is None or value == "":
            if f.get("required", True):
                raise CliError(
                    f"{terms.model} requires the field {name!r}: pass --answer {name}=…",
                    code="missing_answer",
                )
            continue
        answers[name] = (
            value.strip().lower() in TRUE_WORDS if f.get("type") == "checkbox" else value
        )
    return answers


def submit_request(
    api: ApiClient, terms: ModelTerms, answers: dict[str, str | bool]
) -> dict[str, Any]:
    body = {"answers": answers, "accept_license": True, "license_sha256": terms.license_sha256}
    out: dict[str, Any] = api.request(
        "POST",
        f"/v1/models/{terms.model}/access-requests",
        json=body,
        what=f"requesting access to {terms.model}",
        idempotent=False,
    )
    return out


@dataclass(frozen=True)
class AccessOverview:
    requests: list[dict[str, Any]]
    granted: list[str]  # models the caller holds an active grant for
    clearance_note: str | None  # admins and partners: why the grant list says little


def overview(api: ApiClient) -> AccessOverview:
    me = api.get("/v1/me", what="reading your account")
    if me.get("kind") == "partner":
        models = me.get("models") or []
        return AccessOverview([], list(models), "partner agreement (partner tier)")
    requests = api.paginate("/v1/me/access-requests", what="listing your access requests")
    models = api.paginate("/v1/models", what="listing models")
    # A user's clearance for a model is "research" exactly while they hold an active grant.
    granted = [m["id"] for m in models if m.get("clearance") == "research"]
    note = "admin: internal clearance on every model" if me.get("role") == "admin" else None
    return AccessOverview(requests, granted, note)


@dataclass(frozen=True)
class GrantOutlook:
    """What ``request-access`` would open, for a caller without a grant (``ls``)."""

    model: str
    opens: list[tuple[str, str | None]]  # component, when (None: at once) — sooner than now
    never: list[str]  # closed to the caller, and a grant would not open them either
    auto_approve: bool
    pending: dict[str, Any] | None  # the caller's pending request for the model
    signed_in: bool


def grant_outlook(
    api: ApiClient, model: str, components: list[dict[str, Any]]
) -> GrantOutlook | None:
    """From the manifest's ``with_grant`` (served to callers whose clearance is ``open``):
    the components an approved request would open now or sooner than they open to the
    caller anyway, and the caller's request state. ``None`` for partners: access requests
    are for users (a partner's access comes with an agreement)."""
    me = api.get("/v1/me", what="reading your account") if api.authenticated else None
    if me is not None and me.get("kind") != "user":
        return None
    opens: list[tuple[str, str | None]] = []
    never: list[str] = []
    for c in sorted(components, key=lambda c: c["name"]):
        outlook = c.get("with_grant")
        if c["downloadable"] or outlook is None:
            continue
        if outlook["downloadable"]:
            opens.append((c["name"], None))
        elif outlook["opens_at"] and outlook["opens_at"] != c.get("opens_to_you_at"):
            opens.append((c["name"], outlook["opens_at"]))
        elif not outlook["opens_at"]:
            never.append(c["name"])
    terms = api.get(f"/v1/models/{model}", what=f"reading {model}")
    pending = None
    if me is not None:
        mine = api.paginate(
            "/v1/me/access-requests",
            what="listing your access requests",
            params={"status": "pending"},
        )
        pending = next((r for r in mine if r["model"] == model), None)
    return GrantOutlook(
        model=model,
        opens=opens,
        never=never,
        auto_approve=bool(terms.get("auto_approve")),
        pending=pending,
        signed_in=me is not None,
    )
