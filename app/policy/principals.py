"""Who is calling: a user (admin or researcher), a partner organisation, or nobody.

A pure value (no web, no database): the policy decides on it, :mod:`app.auth` builds it
from a request's credentials.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

# Primary keys are 32-bit INTEGERs (app.ids.MAX_ROW_ID): a larger id names no row.
_MAX_ID = 2**31 - 1
_SUBJECT = re.compile(r"^(user|partner):([1-9][0-9]{0,9})$")


@dataclass(frozen=True)
class Principal:
    kind: Literal["user", "partner", "anonymous"]
    id: int | None = None
    role: str | None = None  # users only: "admin" | "researcher"
    name: str = ""
    # The access token's jti when a partner authenticated with one (for audit).
    via: str | None = None

    @property
    def subject(self) -> str:
        """Stable id used in tokens' ``sub`` and in the audit log."""
        return "anonymous" if self.kind == "anonymous" else f"{self.kind}:{self.id}"

    @property
    def is_admin(self) -> bool:
        return self.kind == "user" and self.role == "admin"

    @property
    def user_id(self) -> int | None:
        return self.id if self.kind == "user" else None

    @property
    def partner_id(self) -> int | None:
        return self.id if self.kind == "partner" else None


ANONYMOUS = Principal(kind="anonymous")


def parse_subject(sub: str) -> tuple[Literal["user", "partner"], int] | None:
    """``user:12`` → ("user", 12); ``None`` for anything else, an id no row can have
    included. The inverse of :attr:`Principal.subject`."""
    m = _SUBJECT.match(sub)
    if m is None or int(m.group(2)) > _MAX_ID:
        return None
    kind: Literal["user", "partner"] = "user" if m.group(1) == "user" else "partner"
    return kind, int(m.group(2))
