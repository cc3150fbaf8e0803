"""The admin catalogue API as the publish command uses it, over httpx.

Every non-2xx answer becomes an :class:`ApiError` carrying the problem+json ``code`` and
``detail`` (never the request's credentials); network failures become
:class:`Unreachable`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

CHUNK = 1024 * 1024
# Status codes worth a retry: the request may not have reached a healthy replica.
TRANSIENT = frozenset({502, 503, 504})


class ApiError(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{detail} ({code}, HTTP {status})")
        self.status = status
        self.code = code
        self.detail = detail


class Unreachable(Exception):
    """The server could not be reached or the connection broke."""


def problem(resp: httpx.Response) -> ApiError:
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "code" in body:
        return ApiError(resp.status_code, str(body["code"]), str(body.get("detail", "")))
    text = resp.text.strip().splitlines()[0][:200] if resp.text.strip() else resp.reason_phrase
    return ApiError(resp.status_code, f"http_{resp.status_code}", text)


def sha256_file(path: Path, progress: Callable[[int], None] | None = None) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
            if progress:
                progress(len(chunk))
    return h.hexdigest()


def file_body(path: Path, progress: Callable[[int], None] | None = None) -> Iterator[bytes]:
    """The file's bytes, one chunk at a time: a shard is never held in memory whole."""
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            if progress:
                progress(len(chunk))
            yield chunk


class AdminApi:
    def __init__(self, client: httpx.Client, *, retries: int = 3, backoff: float = 1.0) -> None:
        self.http = client
        self.retries = retries
        self.backoff = backoff

    def _send(self, method: str, url: str, **kw: Any) -> httpx.Response:
        try:
            return self.http.request(method, url, **kw)
        except httpx.TransportError as e:
            raise Unreachable(f"{method} {url}: {type(e).__name__}: {e}") from e

    def _json(self, method: str, url: str, ok: tuple[int, ...] = (200, 201), **kw: Any) -> Any:
        resp = self._send(method, url, **kw)
        if resp.status_code not in ok:
            raise problem(resp)
        return resp.json()

    @staticmethod
    def model_url(model: str) -> str:
        return f"/v1/models/{model}"

    def release_url(self, model: str, version: str) -> str:
        return f"{self.model_url(model)}/releases/{quote(version, safe='')}"

    def get_model(self, model: str) -> dict[str, Any] | None:
        resp = self._send("GET", self.model_url(model))
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise problem(resp)
        return resp.json()  # type: ignore[no-any-return]

    def create_model(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._json("POST", "/v1/models", json=body)  # type: ignore[no-any-return]

    def create_release(self, model: str, version: str, notes: str) -> dict[str, Any] | None:
        """The new draft, or ``None`` if the version already exists."""
        resp = self._send(
            "POST",
            f"{self.model_url(model)}/releases",
            json={"version": version, "notes": notes},
        )
        if resp.status_code == 409 and _code(resp) == "release_exists":
            return None
        if resp.status_code != 201:
            raise problem(resp)
        return resp.json()  # type: ignore[no-any-return]

    def get_release(self, model: str, version: str) -> dict[str, Any]:
        return self._json("GET", self.release_url(model, version))  # type: ignore[no-any-return]

    def components(self, model: str, version: str) -> list[dict[str, Any]]:
        url = f"{self.release_url(model, version)}/components"
        return self._json("GET", url)  # type: ignore[no-any-return]

    def create_component(
        self, model: str, version: str, name: str, schedule: list[dict[str, str]]
    ) -> dict[str, Any]:
        url = f"{self.release_url(model, version)}/components"
        return self._json(  # type: ignore[no-any-return]
            "POST", url, json={"name": name, "schedule": schedule}
        )

    def manifest(self, model: str, version: str) -> dict[str, Any]:
        url = f"{self.release_url(model, version)}/manifest"
        return self._json("GET", url)  # type: ignore[no-any-return]

    def upload(
        self,
        model: str,
        version: str,
        *,
        path: str,
        source: Path,
        size: int,
        sha256: str,
        component: str,
        progress: Callable[[int], None] | None = None,
        restart: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        """PUT one file, streamed from disk, with its SHA-256 declared. Retried (from the
        start of the file) when the connection breaks or a proxy answers 502/503/504;
        uploading the same bytes to the same path again is harmless."""
        url = f"{self.release_url(model, version)}/files/{quote(path, safe='/')}"
        headers = {
            "Content-Length": str(size),
            "Content-Type": "application/octet-stream",
            "X-Content-SHA256": sha256,
        }
        for attempt in range(1, self.retries + 1):
            last = attempt == self.retries
            if attempt > 1 and restart:
                restart()
            try:
                resp = self.http.put(
                    url,
                    params={"component": component},
                    content=file_body(source, progress),
                    headers=headers,
                )
            except httpx.TransportError as e:
                if last:
                    raise Unreachable(f"uploading {path}: {type(e).__name__}: {e}") from e
                time.sleep(self.backoff * 2 ** (attempt - 1))
                continue
            if resp.status_code in (200, 201):
                return resp.json()  # type: ignore[no-any-return]
            if resp.status_code in TRANSIENT and not last:
                time.sleep(self.backoff * 2 ** (attempt - 1))
                continue
            raise problem(resp)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def delete_file(self, model: str, version: str, path: str) -> None:
        url = f"{self.release_url(model, version)}/files/{quote(path, safe='/')}"
        resp = self._send("DELETE", url)
        if resp.status_code != 204:
            raise problem(resp)

    def publish(self, model: str, version: str) -> dict[str, Any]:
        url = f"{self.release_url(model, version)}/publish"
        return self._json("POST", url)  # type: ignore[no-any-return]


def _code(resp: httpx.Response) -> str | None:
    try:
        body = resp.json()
    except ValueError:
        return None
    return str(body.get("code")) if isinstance(body, dict) else None
