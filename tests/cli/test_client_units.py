"""The client's pieces against scripted HTTP answers (httpx.MockTransport): retries and their
limits, error mapping, unsafe paths, and servers that misbehave mid-download."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from app.cli import body_transport
from app.cli import http as cli_http
from app.cli.body_transport import HttpxTransport
from app.cli.config import ClientConfig
from app.cli.download import Fetched, FileFetcher, TokenSource
from app.cli.download_file import gaps, merged, resumable_ranges, split
from app.cli.download_run import _Work, shares
from app.cli.errors import (
    AuthError,
    CliError,
    EmbargoError,
    IntegrityError,
    NetworkError,
    NotFoundError,
    QuotaError,
    from_problem,
)
from app.cli.http import ApiClient
from app.cli.localfiles import local_path
from app.cli.plan import Plan, RemoteFile, Target
from app.cli.progress import PlainReporter, RichReporter, make_reporter

pytestmark = pytest.mark.no_database

Handler = Callable[[httpx.Request], httpx.Response]
DATA = bytes(range(256)) * 64  # 16 KiB
FILE = RemoteFile("w.bin", len(DATA), hashlib.sha256(DATA).hexdigest(), "weights")


def api_with(monkeypatch: pytest.MonkeyPatch, handler: Handler, **kw: object) -> ApiClient:
    monkeypatch.setattr(
        cli_http,
        "make_httpx_client",
        lambda base: httpx.Client(base_url=base, transport=httpx.MockTransport(handler)),
    )
    # File bodies through the same scripted client (the direct transport is a real socket).
    monkeypatch.setattr(body_transport, "make_body_transport", lambda api: HttpxTransport(api.http))
    return ApiClient(ClientConfig(url="http://wg.test", token=None), sleep=lambda _: None, **kw)  # type: ignore[arg-type]


def problem(status: int, code: str, **extra: object) -> httpx.Response:
    return httpx.Response(
        status,
        json={"code": code, "detail": f"{code} detail", **extra},
        headers={"content-type": "application/problem+json"},
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("acme/atlas", Target("acme", "atlas", None)),
        ("acme/atlas@v1", Target("acme", "atlas", "v1")),
        ("acme/atlas@2026-12", Target("acme", "atlas", "2026-12")),
    ],
)
def test_target_parse(spec: str, expected: Target) -> None:
    assert Target.parse(spec) == expected


@pytest.mark.parametrize("spec", ["atlas", "acme/", "/atlas", "acme/at/las", "acme/atlas@"])
def test_target_parse_refuses(spec: str) -> None:
    with pytest.raises(CliError, match="expected namespace/name"):
        Target.parse(spec)


@pytest.mark.parametrize(
    "rel",
    ["../x", "/etc/passwd", "a/../../b", "a\\b", ".weightgate/x", "x.part", "", "a//b", "./a"],
)
def test_local_path_refuses_what_could_escape_or_collide(tmp_path: Path, rel: str) -> None:
    with pytest.raises(CliError, match="unsafe file path"):
        local_path(tmp_path, rel)


def test_local_path_keeps_ordinary_paths_inside(tmp_path: Path) -> None:
    assert local_path(tmp_path, "shards/a.bin") == tmp_path / "shards" / "a.bin"


@pytest.mark.parametrize(
    ("status", "body", "kind", "exit_code"),
    [
        (401, {"code": "invalid_api_key"}, AuthError, 3),
        (403, {"code": "access_grant_required"}, AuthError, 3),
        (403, {"code": "embargoed", "until": "2027-01-01T00:00:00Z"}, EmbargoError, 5),
        (404, {"code": "model_not_found"}, NotFoundError, 4),
        (429, {"code": "quota_bytes", "retry_after": 7}, QuotaError, 8),
        (503, {"code": "unavailable"}, NetworkError, 6),
        (409, {"code": "conflict"}, CliError, 1),
    ],
)
def test_problems_map_to_exit_codes(
    status: int, body: dict[str, object], kind: type[CliError], exit_code: int
) -> None:
    err = from_problem(status, body, what="doing it")
    assert type(err) is kind
    assert err.exit_code == exit_code
    if isinstance(err, EmbargoError):
        assert err.until is not None
        assert err.until.year == 2027


def test_get_retries_dropped_connections_and_5xx_then_succeeds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers: list[Callable[[], httpx.Response]] = [
        lambda: (_ for _ in ()).throw(httpx.ConnectError("refused")),
        lambda: problem(503, "unavailable"),
        lambda: httpx.Response(200, json={"ok": True}),
    ]
    api = api_with(monkeypatch, lambda _: answers.pop(0)())
    assert api.get("/x", what="reading") == {"ok": True}
    assert answers == []


def test_get_gives_up_after_its_retries_with_a_network_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = []

    def down(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("refused")

    api = api_with(monkeypatch, down, retries=2)
    with pytest.raises(NetworkError, match=r"cannot reach http://wg\.test"):
        api.get("/x", what="reading")
    assert len(calls) == 3


def test_a_long_retry_after_is_not_sat_out(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def over(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(
            429, json={"code": "quota_bytes", "detail": "used up"}, headers={"Retry-After": "3600"}
        )

    with pytest.raises(QuotaError) as exc:
        api_with(monkeypatch, over).get("/x", what="reading")
    assert exc.value.retry_after == 3600
    assert len(calls) == 1


def test_posts_that_are_not_idempotent_are_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return problem(502, "bad_gateway")

    api = api_with(monkeypatch, flaky)
    with pytest.raises(NetworkError):
        api.request("POST", "/x", what="asking", json={}, idempotent=False)
    assert len(calls) == 1


def fetcher(api: ApiClient, root: Path, *, retries: int = 3) -> FileFetcher:
    plan = Plan("acme/m", "v1", "r" * 40, "open", [FILE], [], [])
    tokens = TokenSource(api, plan=plan, files=[FILE], by_path=False)
    return FileFetcher(
        api, tokens, plan, root, PlainReporter(), retries=retries, sleep=lambda _: None
    )


def start_partial(root: Path, n: int) -> None:
    (root / "w.bin.part").write_bytes(DATA[:n])
    (root / "w.bin.part.json").write_text(json.dumps({"sha256": FILE.sha256, "size": FILE.size}))


def test_a_server_ignoring_range_sends_everything_and_the_file_starts_over(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    start_partial(tmp_path, 5000)
    seen: list[str | None] = []

    def whole(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("range"))
        return httpx.Response(200, content=DATA)

    got = fetcher(api_with(monkeypatch, whole), tmp_path).fetch(FILE)
    assert seen == ["bytes=5000-"]
    assert (tmp_path / "w.bin").read_bytes() == DATA
    assert got.resumed_from == 5000


def test_a_206_for_another_range_is_not_appended(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    start_partial(tmp_path, 5000)
    answers = [
        httpx.Response(
            206,
            content=DATA[100:],
            headers={"Content-Range": f"bytes 100-{len(DATA) - 1}/{len(DATA)}"},
        ),
        httpx.Response(
            206,
            content=DATA[5000:],
            headers={"Content-Range": f"bytes 5000-{len(DATA) - 1}/{len(DATA)}"},
        ),
    ]
    fetcher(api_with(monkeypatch, lambda _: answers.pop(0)), tmp_path).fetch(FILE)
    assert (tmp_path / "w.bin").read_bytes() == DATA


def test_more_bytes_than_the_manifest_lists_is_an_integrity_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    api = api_with(monkeypatch, lambda _: httpx.Response(200, content=DATA + b"extra"))
    with pytest.raises(IntegrityError, match="more than the 16384 bytes"):
        fetcher(api, tmp_path).fetch(FILE)
    assert not (tmp_path / "w.bin").exists()


def test_error_bodies_are_never_written_and_not_found_is_final(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    api = api_with(monkeypatch, lambda _: problem(404, "file_not_found"))
    with pytest.raises(NotFoundError, match=r"downloading w\.bin: file_not_found detail"):
        fetcher(api, tmp_path).fetch(FILE)
    assert (tmp_path / "w.bin.part").read_bytes() == b""
    assert not (tmp_path / "w.bin").exists()


def test_an_early_close_is_resumed_within_the_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[str | None] = []

    def short_then_rest(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("range"))
        if len(seen) == 1:
            return httpx.Response(200, content=DATA[:7000])  # the connection closed early
        return httpx.Response(
            206,
            content=DATA[7000:],
            headers={"Content-Range": f"bytes 7000-{len(DATA) - 1}/{len(DATA)}"},
        )

    got = fetcher(api_with(monkeypatch, short_then_rest), tmp_path).fetch(FILE)
    assert seen == [None, "bytes=7000-"]
    assert got.transferred == len(DATA)
    assert (tmp_path / "w.bin").read_bytes() == DATA


def test_no_progress_at_all_stops_after_the_retries(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    api = api_with(monkeypatch, lambda _: problem(503, "unavailable"))
    with pytest.raises(NetworkError, match="gave up after 2 retries"):
        fetcher(api, tmp_path, retries=2).fetch(FILE)


def test_rich_progress_on_a_terminal_and_plain_lines_elsewhere() -> None:
    screen = io.StringIO()
    rich = RichReporter(
        total_bytes=300, console=Console(file=screen, force_terminal=True, color_system=None)
    )
    rich.start("a.bin", total=200, resumed_at=50)
    rich.advance("a.bin", 100)
    rich.restart("a.bin")
    rich.advance("a.bin", 200)
    rich.finish("a.bin", "sha256 ok")
    rich.note("component weights opens later")
    rich.close()
    assert "done a.bin: sha256 ok" in screen.getvalue()
    assert "component weights opens later" in screen.getvalue()

    lines = io.StringIO()
    plain = PlainReporter(lines)
    plain.start("a.bin", total=2048, resumed_at=1024)
    plain.finish("a.bin", "sha256 ok")
    assert lines.getvalue().splitlines() == [
        "resume  a.bin at 1.0 KiB of 2.0 KiB (1024 bytes)",
        "done    a.bin: sha256 ok",
    ]
    # Under pytest stderr is not a terminal: plain lines.
    assert isinstance(make_reporter(total_bytes=1), PlainReporter)


class Streamed(httpx.SyncByteStream):
    """A body that arrives in pieces, like a socket's (not pre-read like ``content=``)."""

    def __init__(self, data: bytes, piece: int = 4096) -> None:
        self._pieces = [data[i : i + piece] for i in range(0, len(data), piece)]

    def __iter__(self) -> Iterator[bytes]:
        yield from self._pieces


@pytest.mark.parametrize("encoding", [None, "gzip"])
def test_streamed_bodies_raw_or_compressed_by_a_proxy_arrive_intact(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, encoding: str | None
) -> None:
    seen: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("accept-encoding"))
        if encoding == "gzip":
            body = gzip.compress(DATA)
            return httpx.Response(200, stream=Streamed(body), headers={"Content-Encoding": "gzip"})
        return httpx.Response(200, stream=Streamed(DATA))

    fetcher(api_with(monkeypatch, answer), tmp_path).fetch(FILE)
    assert seen == ["identity"]
    assert (tmp_path / "w.bin").read_bytes() == DATA


def test_ranges_split_merge_and_leave_gaps_exactly() -> None:
    assert merged([(5, 10), (0, 5), (20, 30), (25, 40), (7, 7)]) == [(0, 10), (20, 40)]
    assert gaps([(0, 10), (20, 30)], 40) == [(10, 20), (30, 40)]
    assert gaps([], 5) == [(0, 5)]
    assert split([(0, 100)], 4, 10) == [(0, 25), (25, 50), (50, 75), (75, 100)]
    assert split([(0, 100)], 4, 40) == [(0, 50), (50, 100)]  # no range under the minimum
    assert split([(0, 10), (50, 100)], 3, 1) == [(0, 10), (50, 67), (67, 84), (84, 100)]
    assert split([(0, 25_165_947)], 4, 4 << 20) == [
        (a, min(a + 6_291_487, 25_165_947)) for a in range(0, 25_165_947, 6_291_487)
    ]
    assert shares([FILE], parallel=4, min_split=4096) == {FILE.path: 4}
    assert shares([FILE], parallel=4, min_split=8193) == {FILE.path: 1}  # 2 ranges too small
    two = RemoteFile("b.bin", 3 * len(DATA), "0" * 64, "weights")
    assert shares([FILE, two], parallel=4, min_split=1) == {FILE.path: 1, two.path: 3}


def ranged(seen: list[str | None], corrupt: int | None = None) -> Handler:
    """A server that honours ``Range: bytes=a-b`` (and flips byte ``corrupt`` if asked)."""
    body = bytearray(DATA)
    if corrupt is not None:
        body[corrupt] ^= 0xFF

    def answer(request: httpx.Request) -> httpx.Response:
        value = request.headers.get("range")
        seen.append(value)
        if value is None:
            return httpx.Response(200, stream=Streamed(bytes(body)))
        first, _, last = value.removeprefix("bytes=").partition("-")
        a, b = int(first), int(last or len(body) - 1) + 1
        return httpx.Response(
            206,
            stream=Streamed(bytes(body[a:b])),
            headers={"Content-Range": f"bytes {a}-{b - 1}/{len(body)}"},
        )

    return answer


def run_parallel(fetcher: FileFetcher, files: list[RemoteFile]) -> dict[str, Future[Fetched]]:
    work = _Work(fetcher, files, shares(files, parallel=4, min_split=fetcher.min_split))
    threads = [threading.Thread(target=work.run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return work.futures


def test_a_file_in_parallel_ranges_is_assembled_and_checked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[str | None] = []
    f = fetcher(api_with(monkeypatch, ranged(seen)), tmp_path)
    f.min_split = 4096
    got = run_parallel(f, [FILE])[FILE.path].result()
    assert sorted(seen, key=str) == [f"bytes={a}-{a + 4095}" for a in (0, 12288, 4096, 8192)]
    assert (tmp_path / "w.bin").read_bytes() == DATA
    assert got.transferred == len(DATA)
    assert not (tmp_path / "w.bin.part.json").exists()


def test_a_corrupted_range_fails_the_whole_file_and_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    f = fetcher(api_with(monkeypatch, ranged([], corrupt=10_000)), tmp_path)
    f.min_split = 4096
    with pytest.raises(IntegrityError, match=r"w\.bin: SHA-256 mismatch"):
        run_parallel(f, [FILE])[FILE.path].result()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_sparse_partial_file_resumes_only_its_missing_ranges(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    part = bytearray(len(DATA))
    for a, b in [(0, 4096), (8192, 12288)]:
        part[a:b] = DATA[a:b]
    (tmp_path / "w.bin.part").write_bytes(bytes(part))
    (tmp_path / "w.bin.part.json").write_text(
        json.dumps({"sha256": FILE.sha256, "size": FILE.size, "done": [[0, 4096], [8192, 12288]]})
    )
    seen: list[str | None] = []
    got = fetcher(api_with(monkeypatch, ranged(seen)), tmp_path).fetch(FILE)
    assert seen == ["bytes=4096-8191", "bytes=12288-16383"]
    assert (tmp_path / "w.bin").read_bytes() == DATA
    assert (got.resumed_from, got.transferred) == (8192, 8192)


@pytest.mark.parametrize(
    "meta",
    [
        {"done": [[0, 99999]]},  # beyond the file
        {"done": [[5, 2]]},
        {"done": "everything"},
        {"sha256": "0" * 64},  # another file's partial
    ],
)
def test_a_sidecar_that_does_not_add_up_discards_the_partial_file(
    tmp_path: Path, meta: dict[str, object]
) -> None:
    (tmp_path / "w.bin.part").write_bytes(bytes(len(DATA)))
    sidecar = tmp_path / "w.bin.part.json"
    sidecar.write_text(json.dumps({"sha256": FILE.sha256, "size": FILE.size, **meta}))
    assert resumable_ranges(tmp_path / "w.bin.part", sidecar, FILE) == []
    assert not sidecar.exists()
    assert not (tmp_path / "w.bin.part").exists()


def test_a_server_ignoring_range_still_fills_each_parallel_range(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    api = api_with(monkeypatch, lambda _: httpx.Response(200, stream=Streamed(DATA)))
    f = fetcher(api, tmp_path)
    f.min_split = 4096
    run_parallel(f, [FILE])[FILE.path].result()
    assert (tmp_path / "w.bin").read_bytes() == DATA
