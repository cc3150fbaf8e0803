"""The client's HTTP layer: one ``httpx.Client`` per command, the API key as a bearer
credential, problem+json answers turned into :mod:`app.cli.errors`, and retries with backoff
for requests that are safe to repeat."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import httpx

from app import __version__
from app.cli.config import ClientConfig
from app.cli.errors import AuthError, CliError, NetworkError, QuotaError, from_problem

USER_AGENT = f"weightgate-cli/{__version__}"
TIMEOUT = httpx.Timeout(30.0, read=60.0)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Waiting out a quota is fine for a minute, not for hours: beyond that, stop and say so.
MAX_QUOTA_WAIT = 60.0

Sleep = Callable[[float], None]


def make_httpx_client(base_url: str) -> httpx.Client:
    """The transport for every command (tests swap in an in-process client here)."""
    return httpx.Client(base_url=base_url, timeout=TIMEOUT, headers={"User-Agent": USER_AGENT})


def backoff(attempt: int, *, base: float = 0.5, cap: float = 20.0) -> float:
    """Exponential backoff with full jitter (attempt 0 is the first retry)."""
    return random.uniform(0, min(cap, base * 2**attempt))  # noqa: S311 - jitter, not secrecy


def problem_of(response: httpx.Response) -> dict[str, Any]:
    """The problem+json body, or a stand-in when the body is not ours (a proxy's HTML page)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        return body
    return {"code": f"http_{response.status_code}", "detail": f"HTTP {response.status_code}"}


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class ApiClient:
    """JSON calls to the weightgate API on behalf of the configured user (or anonymously)."""

    def __init__(
        self, config: ClientConfig, *, retries: int = 4, sleep: Sleep = time.sleep
    ) -> None:
        self.config = config
        self.http = make_httpx_client(config.url)
        self.retries = retries
        self.sleep = sleep

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    @property
    def authenticated(self) -> bool:
        return self.config.token is not None

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.token}"} if self.config.token else {}

    def require_key(self, what: str) -> None:
        if not self.authenticated:
            raise AuthError(
                f"{what}: no API key; run `weightgate login` or set WEIGHTGATE_TOKEN",
                code="not_logged_in",
            )

    def request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        json: Any = None,
        params: dict[str, Any] | None = None,
        idempotent: bool = True,
    ) -> Any:
        """Send, retrying transport errors and 5xx/429 when ``idempotent``; return the JSON
        body (``None`` for 204) or raise the matching :class:`CliError`."""
        attempt = 0
        while True:
            try:
                response = self.http.request(
                    method, path, json=json, params=params, headers=self.auth_headers()
                )
            except httpx.TransportError as e:
                if not idempotent or attempt >= self.retries:
                    raise NetworkError(
                        f"{what}: cannot reach {self.config.url} ({type(e).__name__})"
                    ) from e
                self.sleep(backoff(attempt))
                attempt += 1
                continue
            if response.status_code < 400:
                return response.json() if response.content else None
            if idempotent and response.status_code in RETRY_STATUSES and attempt < self.retries:
                wait = retry_after(response)
                if wait is None or wait <= MAX_QUOTA_WAIT:
                    self.sleep(wait if wait is not None else backoff(attempt))
                    attempt += 1
                    continue
            raise self.error(response, what=what)

    def error(self, response: httpx.Response, *, what: str) -> CliError:
        err = from_problem(response.status_code, problem_of(response), what=what)
        if isinstance(err, QuotaError) and err.retry_after is None:
            wait = retry_after(response)
            err.retry_after = int(wait) if wait is not None else None
        return err

    def get(self, path: str, *, what: str, params: dict[str, Any] | None = None) -> Any:
        return self.request("GET", path, what=what, params=params)

    def paginate(self, path: str, *, what: str, params: dict[str, Any] | None = None) -> list[Any]:
        """Every item of a ``{"items", "next_cursor"}`` list."""
        items: list[Any] = []
        query = dict(params or {})
        while True:
            page = self.get(path, what=what, params=query)
            items.extend(page["items"])
            if not page.get("next_cursor"):
                return items
            query["cursor"] = page["next_cursor"]
