"""Upload retries, error mapping, parallel cancellation and the progress views of
``weightgate publish``, against an in-memory HTTP server (httpx.MockTransport) so failures
can be staged exactly."""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from app.cli.publish_api import AdminApi, ApiError, Unreachable, problem
from app.cli.publish_plan import LocalFile
from app.cli.publish_upload import BarsView, View, make_view, upload_all

pytestmark = pytest.mark.no_database

Handler = Callable[[httpx.Request], httpx.Response]


class Streaming(httpx.BaseTransport):
    """Like httpx.MockTransport, but hands the request over unread, so the handler sees
    the body arrive chunk by chunk as a server would."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.handler(request)


def api(handler: Handler, *, streaming: bool = False) -> AdminApi:
    transport = Streaming(handler) if streaming else httpx.MockTransport(handler)
    client = httpx.Client(base_url="http://wg.test", transport=transport)
    return AdminApi(client, retries=3, backoff=0)


def local(tmp_path: Path, name: str, data: bytes, component: str = "weights") -> LocalFile:
    path = tmp_path / name
    path.write_bytes(data)
    return LocalFile(name, path, len(data), component)


def stored(request: httpx.Request, body: bytes) -> httpx.Response:
    return httpx.Response(
        201,
        json={
            "path": request.url.path.rsplit("/files/", 1)[1],
            "size": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
            "component": request.url.params["component"],
        },
    )


def test_upload_declares_hash_length_and_retries_transient_failures(tmp_path: Path) -> None:
    f = local(tmp_path, "model.safetensors", b"w" * 3_000_000)
    sha = hashlib.sha256(b"w" * 3_000_000).hexdigest()
    seen: list[tuple[str, str, int]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = request.read()
        seen.append(
            (request.headers["x-content-sha256"], request.headers["content-length"], len(body))
        )
        if len(seen) == 1:
            return httpx.Response(503, text="upstream busy")
        if len(seen) == 2:
            raise httpx.ReadError("connection reset")
        return stored(request, body)

    restarts: list[int] = []
    out = api(handler).upload(
        "acme/x",
        "v1",
        path=f.path,
        source=f.source,
        size=f.size,
        sha256=sha,
        component="weights",
        restart=lambda: restarts.append(1),
    )
    assert out["sha256"] == sha
    # Every attempt sent the whole file again, with the same declarations.
    assert seen == [(sha, "3000000", 3_000_000)] * 3
    assert restarts == [1, 1]


def test_upload_gives_up_after_the_last_attempt(tmp_path: Path) -> None:
    f = local(tmp_path, "a.bin", b"x")
    calls = []

    def busy(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(503, json={"code": "unavailable", "detail": "try later"})

    with pytest.raises(ApiError) as err:
        api(busy).upload(
            "acme/x", "v1", path="a.bin", source=f.source, size=1, sha256="0" * 64, component="w"
        )
    assert (err.value.status, err.value.code, err.value.detail) == (503, "unavailable", "try later")
    assert len(calls) == 3

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    with pytest.raises(Unreachable, match=r"uploading a\.bin: ConnectError"):
        api(down).upload(
            "acme/x", "v1", path="a.bin", source=f.source, size=1, sha256="0" * 64, component="w"
        )


def test_client_errors_are_not_retried(tmp_path: Path) -> None:
    f = local(tmp_path, "a.bin", b"x")
    calls = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(
            422,
            json={"code": "sha256_mismatch", "detail": "the uploaded bytes hash to ..."},
            headers={"content-type": "application/problem+json"},
        )

    with pytest.raises(ApiError, match="sha256_mismatch"):
        api(refuse).upload(
            "acme/x", "v1", path="a.bin", source=f.source, size=1, sha256="0" * 64, component="w"
        )
    assert len(calls) == 1


def test_paths_are_percent_encoded_in_the_url(tmp_path: Path) -> None:
    f = local(tmp_path, "x.bin", b"x")
    urls: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        urls.append(request.url.raw_path)
        return stored(request, request.read())

    api(handler).upload(
        "acme/x",
        "v1",
        path="dir/a b#?%.bin",
        source=f.source,
        size=1,
        sha256="0" * 64,
        component="w",
    )
    assert urls == [b"/v1/models/acme/x/releases/v1/files/dir/a%20b%23%3F%25.bin?component=w"]


def test_problem_without_json_keeps_the_status() -> None:
    err = problem(httpx.Response(502, text="<html>Bad gateway</html>\nmore"))
    assert (err.status, err.code, err.detail) == (502, "http_502", "<html>Bad gateway</html>")


def test_one_failure_stops_the_other_uploads(tmp_path: Path) -> None:
    big = local(tmp_path, "big.bin", b"b" * 8_000_000)
    bad = local(tmp_path, "bad.bin", b"x")
    started = threading.Event()
    stop = threading.Event()
    received: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("bad.bin"):
            started.wait(5)
            return httpx.Response(409, json={"code": "release_published", "detail": "frozen"})
        assert isinstance(request.stream, Iterable)
        for chunk in request.stream:
            received.append(len(chunk))
            if not started.is_set():
                started.set()
                stop.wait(5)  # hold the first chunk until the other upload has failed
        return httpx.Response(500)

    view = View(Console(file=io.StringIO()), big.size + bad.size)
    with pytest.raises(ApiError, match="release_published"):
        upload_all(
            api(handler, streaming=True),
            model="acme/x",
            version="v1",
            files=[big, bad],
            existing={},
            jobs=2,
            view=view,
            stop=stop,
        )
    # The big upload was abandoned after its first chunk instead of sending all 8 MB.
    assert received == [1024 * 1024]


def test_unchanged_files_are_not_sent(tmp_path: Path) -> None:
    same = local(tmp_path, "same.bin", b"same")
    moved = local(tmp_path, "moved.bin", b"moved", component="tokenizer")
    changed = local(tmp_path, "changed.bin", b"new")
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path.rsplit("/", 1)[1])
        return stored(request, request.read())

    existing = {
        "same.bin": (hashlib.sha256(b"same").hexdigest(), "weights"),
        "moved.bin": (hashlib.sha256(b"moved").hexdigest(), "weights"),  # other component
        "changed.bin": (hashlib.sha256(b"old").hexdigest(), "weights"),
    }
    out = io.StringIO()
    results = upload_all(
        api(handler),
        model="acme/x",
        version="v1",
        files=[same, moved, changed],
        existing=existing,
        jobs=1,
        view=make_view(Console(file=out, width=200), 12),
    )
    assert sorted(sent) == ["changed.bin", "moved.bin"]
    assert {r.file.path: r.sent for r in results} == {
        "same.bin": False,
        "moved.bin": True,
        "changed.bin": True,
    }
    assert (
        f"unchanged same.bin (4 bytes, sha256 {hashlib.sha256(b'same').hexdigest()})"
        in out.getvalue()
    )


def test_terminal_gets_progress_bars(tmp_path: Path) -> None:
    f = local(tmp_path, "model.safetensors", b"m" * 2_500_000)
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160)
    view = make_view(console, f.size)
    assert isinstance(view, BarsView)
    upload_all(
        api(lambda r: stored(r, r.read())),
        model="acme/x",
        version="v1",
        files=[f],
        existing={},
        jobs=1,
        view=view,
    )
    text = out.getvalue()
    assert "upload model.safetensors" in text
    assert "total" in text
    assert "2.5/2.5 MB" in text
    assert "uploaded model.safetensors (2500000 bytes" in text
