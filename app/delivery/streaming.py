"""Serving an object's bytes over HTTP: Range (206/416), ETag, If-None-Match (304), If-Range,
HEAD, Content-Length, and presigned redirects.

Shared by ``/v1/files`` (proxy mode, filesystem store) and the Hugging Face ``/resolve``
route. The ETag of a file is its SHA-256, which never changes for a given content.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from starlette.responses import Response, StreamingResponse

from app.storage import ObjectStore
from app.storage.disposition import content_disposition

CHUNK = 1024 * 1024
# One range, ``first-last``, ``first-`` or ``-suffix``. Numbers are bounded before they are
# converted: ``int()`` of a 5,000-digit string raises (Python's int/str conversion limit), and
# that one request's exception used to fail every download of its batch.
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$", re.ASCII)
# Longer Range headers are not one range we could serve: ignored, as RFC 9110 §14.2 allows.
MAX_RANGE_HEADER = 200
# Positions with more significant digits than this are beyond any object (2**63 has 19).
_MAX_DIGITS = 19
_BEYOND = 2**63


def _position(digits: str) -> int:
    """A byte position of the Range header, bounded: anything past 2**63 is 2**63."""
    digits = digits.lstrip("0") or "0"
    return _BEYOND if len(digits) > _MAX_DIGITS else min(int(digits), _BEYOND)


@dataclass(frozen=True)
class RangePlan:
    """What to send: ``status`` 200/206/304/416 and the inclusive byte range."""

    status: int
    start: int = 0
    end: int = -1  # inclusive; -1 with size 0

    @property
    def length(self) -> int:
        return max(0, self.end - self.start + 1)


def etag_for(sha256: str) -> str:
    return f'"{sha256}"'


def _etag_matches(header: str, etag: str) -> bool:
    candidates = [c.strip() for c in header.split(",")]
    weak = "W/" + etag
    return "*" in candidates or etag in candidates or weak in candidates


def plan_range(headers: Mapping[str, str], *, size: int, sha256: str) -> RangePlan:
    etag = etag_for(sha256)
    inm = headers.get("if-none-match")
    if inm is not None and _etag_matches(inm, etag):
        return RangePlan(304)
    full = RangePlan(200, 0, size - 1)
    rng = headers.get("range")
    if rng is None:
        return full
    if_range = headers.get("if-range")
    if if_range is not None and if_range.strip() != etag:
        return full  # the client's partial copy is of other content: send it all
    if len(rng) > MAX_RANGE_HEADER:
        return full
    m = _RANGE.match(rng.strip().replace(" ", ""))
    if m is None:
        # Several ranges or another unit: ignoring Range is allowed (RFC 9110 §14.2).
        return full
    first, last = m.group(1), m.group(2)
    if first == "" and last == "":
        return full
    if first == "":
        suffix = _position(last)
        if suffix == 0:
            return RangePlan(416)
        start, end = max(0, size - suffix), size - 1
    else:
        start = _position(first)
        end = size - 1 if last == "" else min(_position(last), size - 1)
        if start > end and last != "":
            return full if _position(last) < start else RangePlan(416)
    if start >= size:
        return RangePlan(416)
    return RangePlan(206, start, end)


def file_headers(*, sha256: str, size: int, filename: str) -> dict[str, str]:
    return {
        "ETag": etag_for(sha256),
        "Accept-Ranges": "bytes",
        "Content-Disposition": content_disposition(filename),
        # Access-controlled content: shared caches must not keep it.
        "Cache-Control": "private, max-age=0",
        "X-Content-SHA256": sha256,
    }


def file_response(
    method: str,
    headers: Mapping[str, str],
    store: ObjectStore,
    *,
    sha256: str,
    size: int,
    filename: str,
    extra_headers: Mapping[str, str] | None = None,
) -> tuple[Response, RangePlan]:
    """The response for GET/HEAD of a stored object, and the plan that was applied."""
    plan = plan_range(headers, size=size, sha256=sha256)
    base = {**file_headers(sha256=sha256, size=size, filename=filename), **(extra_headers or {})}
    if plan.status == 304:
        base.pop("Content-Disposition")
        return Response(status_code=304, headers=base), plan
    if plan.status == 416:
        base["Content-Range"] = f"bytes */{size}"
        return Response(status_code=416, headers=base), plan
    base["Content-Length"] = str(plan.length)
    if plan.status == 206:
        base["Content-Range"] = f"bytes {plan.start}-{plan.end}/{size}"
    if method == "HEAD" or plan.length == 0:
        return Response(
            status_code=plan.status, headers=base, media_type="application/octet-stream"
        ), plan

    def body() -> Iterator[bytes]:
        yield from store.iter_range(sha256, plan.start, plan.end, CHUNK)

    return StreamingResponse(
        body(), status_code=plan.status, headers=base, media_type="application/octet-stream"
    ), plan
