"""Who is calling: a user (admin or researcher), a partner organisation, or nobody."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


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
