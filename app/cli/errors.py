"""What can go wrong on the client side, and the exit code each failure leaves behind.

Scripts switch on the exit code, so each kind of failure has its own and they never change:

    0  OK            everything asked for is on disk and verified
    1  ERROR         anything else (a bug, a bad local file system, …)
    2  USAGE         bad arguments (typer's own code)
    3  AUTH          no/invalid API key, no access grant, not allowed
    4  NOT_FOUND     unknown model, release, component or file
    5  EMBARGO       what was asked for is not open to you yet (the date is printed)
    6  NETWORK       server unreachable, connection dropped or 5xx after every retry
    7  INTEGRITY     a file's SHA-256 or size is not what the manifest says
    8  QUOTA         over a quota, with a wait too long to sit out

    CliError
    ├── UsageError
    ├── AuthError
    ├── NotFoundError
    ├── EmbargoError (until=…)
    ├── NetworkError
    ├── IntegrityError
    └── QuotaError (retry_after=…)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_NOT_FOUND = 4
EXIT_EMBARGO = 5
EXIT_NETWORK = 6
EXIT_INTEGRITY = 7
EXIT_QUOTA = 8


class CliError(Exception):
    exit_code: ClassVar[int] = EXIT_ERROR

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class UsageError(CliError):
    """Arguments our own commands cannot make sense of (typer's own come out as 2 too)."""

    exit_code = EXIT_USAGE


class AuthError(CliError):
    exit_code = EXIT_AUTH


class NotFoundError(CliError):
    exit_code = EXIT_NOT_FOUND


class EmbargoError(CliError):
    exit_code = EXIT_EMBARGO

    def __init__(self, message: str, *, until: datetime | None = None, code: str | None = None):
        super().__init__(message, code=code)
        self.until = until


class NetworkError(CliError):
    exit_code = EXIT_NETWORK


class IntegrityError(CliError):
    exit_code = EXIT_INTEGRITY


class QuotaError(CliError):
    exit_code = EXIT_QUOTA

    def __init__(self, message: str, *, retry_after: int | None = None, code: str | None = None):
        super().__init__(message, code=code)
        self.retry_after = retry_after


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def from_problem(status: int, body: dict[str, Any], *, what: str) -> CliError:
    """The error for a problem+json answer. ``what`` says what was being done, for humans."""
    code = str(body.get("code") or f"http_{status}")
    detail = str(body.get("detail") or body.get("title") or f"HTTP {status}")
    message = f"{what}: {detail}"
    if status == 401:
        return AuthError(message, code=code)
    if status == 403:
        # Closed by the schedule, with its date or with none (the server's app/refusals.py).
        if code in ("embargoed", "not_open_to_you", "component_held"):
            return EmbargoError(message, until=parse_time(body.get("until")), code=code)
        return AuthError(message, code=code)
    if status == 404:
        return NotFoundError(message, code=code)
    if status == 429:
        retry = body.get("retry_after")
        return QuotaError(message, retry_after=retry if isinstance(retry, int) else None, code=code)
    if status >= 500:
        return NetworkError(message, code=code)
    return CliError(message, code=code)
