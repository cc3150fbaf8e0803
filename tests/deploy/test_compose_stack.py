"""The deployment, run: the image built from this checkout, deploy/compose.yaml started with
local stand-ins for the third-party images (tests/deploy/standins/), and two replicas
driven through the load balancer the way an operator and a researcher would.

One test, in phases, because the phases share one stack that takes a minute to start (and
xdist must not start two): the image's own guarantees; `weightgate publish` of a folder and
`weightgate download` of it, SHA-256 checked; a replica restarted in the middle of a
download, which still completes; `docker stop` of the replica that is receiving an upload,
which finishes that upload and loses nothing acknowledged; what the load balancer hides and
which forwarded addresses the replicas believe.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.deploy.docker import APP_IMAGE, ROOT, build_images, compose_binary, docker
from tests.fixtures.servers import VENV_BIN, free_port

pytestmark = [pytest.mark.docker, pytest.mark.own_database, pytest.mark.slow]

MiB = 1024 * 1024
COMPOSE_FILES = [ROOT / "deploy" / "compose.yaml", ROOT / "tests/deploy/standins/compose.yaml"]
MODEL = "acme/deployed"


@dataclass
class Stack:
    project: str
    env: dict[str, str]
    url: str
    lb_address: str
    gateway: str
    logs: Path

    def compose(self, *args: str, timeout: float = 300) -> str:
        files = [arg for f in COMPOSE_FILES for arg in ("-f", str(f))]
        result = subprocess.run(
            [str(compose_binary()), "-p", self.project, *files, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"compose {' '.join(args)}:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def replicas(self) -> list[str]:
        names = self.compose("ps", "--all", "--format", "{{.Name}}", "server").split()
        assert len(names) == 2, names
        return sorted(names)

    def wait_ready(self, container: str | None = None, timeout: float = 180) -> None:
        """Until the load balancer answers /readyz (or ``container`` is healthy)."""
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            if container is not None:
                state = docker("inspect", "-f", "{{.State.Health.Status}}", container).strip()
                if state == "healthy":
                    return
            else:
                try:
                    response = httpx.get(self.url + "/readyz", timeout=3)
                    state = str(response.status_code)
                    if response.status_code == 200:
                        return
                except httpx.HTTPError as e:
                    state = type(e).__name__
            time.sleep(0.5)
        raise AssertionError(f"{container or self.url} not ready after {timeout}s ({state})")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    took = build_images()
    built = time.monotonic()
    port = free_port()
    octet = 200 + secrets.randbelow(50)
    env = {
        **os.environ,
        "WEIGHTGATE_IMAGE": APP_IMAGE,
        "WEIGHTGATE_HTTP_PORT": f"127.0.0.1:{port}",
        "WEIGHTGATE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "WEIGHTGATE_FRONT_SUBNET": f"172.31.{octet}.0/24",
        "WEIGHTGATE_LB_ADDRESS": f"172.31.{octet}.10",
        "POSTGRES_PASSWORD": secrets.token_urlsafe(16),
        "MINIO_ROOT_USER": "root-" + secrets.token_hex(4),
        "MINIO_ROOT_PASSWORD": secrets.token_urlsafe(16),
        "WEIGHTGATE_S3_ACCESS_KEY": "weightgate-" + secrets.token_hex(4),
        "WEIGHTGATE_S3_SECRET_KEY": secrets.token_urlsafe(24),
    }
    logs = tmp_path_factory.mktemp("stack") / "compose.log"
    stack = Stack(
        project=f"wgdeploy{os.getpid()}",
        env=env,
        url=f"http://127.0.0.1:{port}",
        lb_address=env["WEIGHTGATE_LB_ADDRESS"],
        gateway=f"172.31.{octet}.1",
        logs=logs,
    )
    try:
        stack.compose("up", "--detach", "--no-build", timeout=600)
        stack.wait_ready()
        builds = ", ".join(f"{name} {seconds:.0f}s" for name, seconds in took.items())
        print(f"deploy: images: {builds}; stack up {time.monotonic() - built:.0f}s")
        yield stack
    finally:
        try:
            logs.write_text(stack.compose("logs", "--no-color", "--timestamps"))
            print(f"deploy: compose logs in {logs}")
        finally:
            stack.compose("down", "--volumes", "--remove-orphans", "--timeout", "5")


# ------------------------------------------------------------------------------ helpers


def weightgate(stack: Stack, token: str, *args: str, cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "WEIGHTGATE_URL": stack.url, "WEIGHTGATE_TOKEN": token}
    return subprocess.Popen(
        [str(VENV_BIN / "weightgate"), *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 300) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out
    return out


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_folder(root: Path, sizes: dict[str, int]) -> dict[str, str]:
    root.mkdir(parents=True)
    for name, size in sizes.items():
        (root / name).write_bytes(os.urandom(size))
    return {name: sha256(root / name) for name in sizes}


def iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def container_pid(name: str) -> int:
    return int(docker("inspect", "-f", "{{.State.Pid}}", name).strip())


def send_queue_bytes(name: str, port: int = 8000) -> int:
    """Bytes waiting in the send queues of the container's established connections on
    ``port``: a replica streaming to a client that stopped reading holds them."""
    total = 0
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{container_pid(name)}/net/{table}")
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01":  # ESTABLISHED
                total += int(fields[4].split(":")[0], 16)
    return total


def received_bytes(name: str) -> int:
    """Bytes the container's network interfaces have received so far."""
    lines = Path(f"/proc/{container_pid(name)}/net/dev").read_text().splitlines()[2:]
    return sum(int(line.split(":", 1)[1].split()[0]) for line in lines if "lo:" not in line)


def manifest(stack: Stack, admin: dict[str, str], version: str) -> dict[str, str]:
    response = httpx.get(
        f"{stack.url}/v1/models/{MODEL}/releases/{version}/manifest", headers=admin, timeout=30
    )
    assert response.status_code == 200, response.text
    return {f["path"]: f["sha256"] for f in response.json()["files"]}


# ------------------------------------------------------------------------------- phases


def check_the_image(stack: Stack) -> None:
    """Hardened as the issue asks, without packaging tools, and refusing to keep production
    data on its own disk."""
    hardened = ["--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL"]
    hardened += ["--security-opt", "no-new-privileges"]
    refused = subprocess.run(
        ["docker", "run", "--rm", *hardened, APP_IMAGE],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "refusing to start in production inside a container" in refused.stderr
    assert "SQLite" in refused.stderr
    assert "stored in a directory" in refused.stderr
    probe = (
        "import importlib.util, os\n"
        "mods = [m for m in ('pip', 'setuptools', 'wheel') if importlib.util.find_spec(m)]\n"
        "hits = [os.path.join(r, n) for r, ds, fs in os.walk('/') if not r.startswith("
        "('/proc', '/sys')) for n in ds + fs if n.split('-')[0] in ('pip', 'pip3', "
        "'setuptools', 'wheel')]\n"
        "print(mods, hits)\n"
    )
    out = docker("run", "--rm", *hardened, "--entrypoint", "python3", APP_IMAGE, "-c", probe)
    assert out.strip() == "[] []", f"packaging tools in the runtime image: {out}"
    for name in stack.replicas():
        info = json.loads(docker("inspect", name))[0]
        host = info["HostConfig"]
        assert host["ReadonlyRootfs"] is True
        assert host["CapDrop"] == ["ALL"]
        assert "no-new-privileges:true" in host["SecurityOpt"]
        assert "/tmp" in host["Tmpfs"]
        assert host["Memory"] > 0
        assert info["Config"]["User"] == "10001:10001"
        # docker stop waits longer than serve's graceful timeout (30 s) + loop shutdown.
        assert info["Config"]["StopTimeout"] >= 45
        assert info["State"]["Health"]["Status"] == "healthy"


def publish_and_download(stack: Stack, admin_key: str, work: Path) -> dict[str, str]:
    sizes = {f"model-0000{i}-of-00003.safetensors": 40 * MiB + i for i in (1, 2, 3)}
    sizes["config.json"] = 300
    source = make_folder(work / "v1", sizes)
    now = datetime.now(UTC)
    schedule = (
        f"weights=partner@{iso(now + timedelta(days=7))},open@{iso(now + timedelta(days=60))}"
    )
    publish = weightgate(
        stack, admin_key,
        "publish", str(work / "v1"), "--model", MODEL, "--version", "v1",
        "--component", "weights=*.safetensors", "--component", "config=config.json",
        "--schedule", schedule,
        cwd=work,
    )  # fmt: skip
    revision = finish(publish).strip().splitlines()[-1]
    assert re.fullmatch(r"[0-9a-f]{40}", revision), revision
    got = finish(
        weightgate(stack, admin_key, "download", f"{MODEL}@v1", "--to", "got", "--plain", cwd=work)
    )
    assert {p: sha256(work / "got" / p) for p in sizes} == source, got
    return source


def restart_a_replica_mid_download(
    stack: Stack, admin_key: str, work: Path, source: dict[str, str]
) -> None:
    """The download is paused (SIGSTOP) once bytes arrive, the replica streaming to it is
    restarted (killed after 1 s), and the resumed download goes on from where it was."""
    target = work / "again"
    download = weightgate(
        stack, admin_key, "download", f"{MODEL}@v1", "--to", "again", "--plain",
        "--parallel", "1", "--include", "*.safetensors", cwd=work,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            parts = list(target.glob("*.part")) if target.exists() else []
            if any(p.stat().st_size > 0 for p in parts):
                break
            time.sleep(0.02)
        else:
            raise AssertionError("the download never started")
        download.send_signal(signal.SIGSTOP)
        serving = ""
        deadline = time.monotonic() + 10
        while not serving and time.monotonic() < deadline:
            queued = {name: send_queue_bytes(name) for name in stack.replicas()}
            serving = max(queued, key=lambda n: queued[n]) if max(queued.values()) else ""
            time.sleep(0.1)
        assert serving, "no replica is streaming the paused download"
        before = docker("inspect", "-f", "{{.State.StartedAt}}", serving).strip()
        docker("restart", "--time", "1", serving)
        after = docker("inspect", "-f", "{{.State.StartedAt}}", serving).strip()
        assert after != before, "the replica was not restarted"
    finally:
        download.send_signal(signal.SIGCONT)
    out = finish(download)
    for path, digest in source.items():
        if path.endswith(".safetensors"):
            assert sha256(target / path) == digest, out
    stack.wait_ready(serving)


def stop_a_replica_during_an_upload(stack: Stack, admin_key: str, work: Path) -> None:
    """Files acknowledged before and during `docker stop` of the replica receiving an upload
    are all there afterwards, and the upload in flight on that replica is finished by it
    (graceful shutdown) and acknowledged."""
    admin = {"Authorization": f"Bearer {admin_key}"}
    base = f"{stack.url}/v1/models/{MODEL}/releases"
    with httpx.Client(headers=admin, timeout=120) as client:
        assert client.post(base, json={"version": "v2"}).status_code == 201
        at = iso(datetime.now(UTC) + timedelta(days=30))
        component = {"name": "weights", "schedule": [{"tier": "open", "at": at}]}
        assert client.post(f"{base}/v2/components", json=component).status_code == 201

        acknowledged: dict[str, str] = {}

        def put(path: str, body: bytes | Iterator[bytes], *, retry: bool = False) -> None:
            url = f"{base}/v2/files/{path}?component=weights"
            response = client.put(url, content=body)
            if retry and response.status_code == 502:
                # nginx sent it on a kept-alive connection the stopping replica was closing
                # (a body that was streamed cannot be replayed); a client sends it again.
                response = client.put(url, content=body)
            assert response.status_code == 201, response.text
            acknowledged[path] = response.json()["sha256"]

        for i in range(4):  # round-robin: both replicas acknowledge some
            put(f"before-{i}.bin", os.urandom(3 * MiB))

        # An upload whose body we hold back halfway: find the replica receiving it.
        release, gate = threading.Event(), threading.Event()
        chunks = [os.urandom(4 * MiB) for _ in range(8)]

        def held_body() -> Iterator[bytes]:
            for i, chunk in enumerate(chunks):
                if i == 4:
                    gate.set()
                    release.wait(120)
                yield chunk

        replicas = stack.replicas()
        rx = {name: received_bytes(name) for name in replicas}
        errors: list[BaseException] = []

        def held_upload() -> None:
            try:
                put("during.bin", held_body())
            except BaseException as e:  # reported by the main thread
                errors.append(e)

        uploader = threading.Thread(target=held_upload)
        uploader.start()
        assert gate.wait(60), "the held upload did not start"
        time.sleep(0.5)
        grew = {name: received_bytes(name) - rx[name] for name in replicas}
        receiving = max(grew, key=lambda n: grew[n])
        assert grew[receiving] >= 8 * MiB, grew

        stopped: list[str] = []
        stopper = threading.Thread(target=lambda: stopped.append(docker("stop", receiving)))
        stopper.start()
        time.sleep(1.0)  # SIGTERM delivered: the replica drains and takes no new work
        assert stopper.is_alive(), "the replica stopped without waiting for its upload"
        put("while-stopping.bin", os.urandom(3 * MiB), retry=True)  # the other replica
        release.set()
        uploader.join(120)
        stopper.join(120)
        assert not errors, errors
        assert stopped, "docker stop did not return"
        assert docker("inspect", "-f", "{{.State.ExitCode}}", receiving).strip() == "0"
        assert "during.bin" in acknowledged
        assert hashlib.sha256(b"".join(chunks)).hexdigest() == acknowledged["during.bin"]

        # Nothing acknowledged is missing, by the surviving replica's account ...
        assert manifest(stack, admin, "v2") == acknowledged
        docker("start", receiving)
        stack.wait_ready(receiving)
        published = client.post(f"{base}/v2/publish")
        assert published.status_code == 200, published.text
    # ... nor by the bytes, downloaded and hashed by the CLI after publishing.
    finish(
        weightgate(stack, admin_key, "download", f"{MODEL}@v2", "--to", "v2", "--plain", cwd=work)
    )
    assert {p: sha256(work / "v2" / p) for p in acknowledged} == acknowledged


def check_the_load_balancer(stack: Stack, admin_key: str) -> None:
    """/metrics stays inside; X-Forwarded-For is nginx's, never the client's; a replica
    believes forwarded headers from the load balancer only."""
    for path in ("/metrics", "/metrics/", "//metrics", "/%6detrics"):
        response = httpx.get(stack.url + path, timeout=10)
        assert response.status_code == 404, (path, response.status_code)
    replica = stack.replicas()[0]
    scrape = (
        "import urllib.request; print(urllib.request.urlopen("
        "'http://127.0.0.1:8000/metrics', timeout=5).status)"
    )
    assert docker("exec", replica, "python3", "-c", scrape).strip() == "200"

    admin = {"Authorization": f"Bearer {admin_key}"}
    spoofed = {**admin, "X-Forwarded-For": "203.0.113.66"}
    marker = f"lb-{secrets.token_hex(4)}"
    response = httpx.post(
        f"{stack.url}/v1/me/api-keys", headers=spoofed, json={"name": marker}, timeout=30
    )
    assert response.status_code == 201, response.text
    addrs = audited_addresses(stack, admin)
    assert "203.0.113.66" not in addrs
    # nginx saw the test's connection come from the front network's gateway.
    assert stack.gateway in addrs, addrs

    # Straight to a replica from the other one: that peer is not the load balancer, so its
    # X-Forwarded-For is ignored and the peer's own address is recorded.
    first, second = stack.replicas()
    addresses = docker(
        "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", first
    ).split()
    for address in addresses:
        request = {
            "url": f"http://{address}:8000/v1/me/api-keys",
            "headers": {**spoofed, "X-Forwarded-For": "198.51.100.77"},
        }
        script = (
            "import json, sys, urllib.request\n"
            "r = json.loads(sys.argv[1])\n"
            "req = urllib.request.Request(r['url'], method='POST', headers={**r['headers'], "
            "'Content-Type': 'application/json'}, data=b'{\"name\": \"direct\"}')\n"
            "print(urllib.request.urlopen(req, timeout=10).status)\n"
        )
        out = docker("exec", second, "python3", "-c", script, json.dumps(request))
        assert out.strip() == "201", out
    addrs = audited_addresses(stack, admin)
    assert "198.51.100.77" not in addrs
    assert (
        set(
            docker(
                "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", second
            ).split()
        )
        & addrs
    ), addrs


def audited_addresses(stack: Stack, admin: dict[str, str]) -> set[str]:
    response = httpx.get(f"{stack.url}/v1/audit", headers=admin, params={"limit": 100}, timeout=30)
    assert response.status_code == 200, response.text
    body: Any = response.json()
    items = body["items"] if isinstance(body, dict) else body
    return {e.get("client_addr") for e in items if e.get("client_addr")}


# --------------------------------------------------------------------------------- test


def test_the_stack_through_its_load_balancer(stack: Stack, tmp_path: Path) -> None:
    phases: list[tuple[str, float]] = []

    def timed(name: str, started: float) -> None:
        phases.append((name, time.monotonic() - started))

    t = time.monotonic()
    check_the_image(stack)
    timed("image", t)
    create = stack.compose(
        "exec", "-T", "--index", "1", "server",
        "weightgate", "admin", "create-user", "--email", "ops@example.org", "--role", "admin",
    )  # fmt: skip
    admin_key = create.strip().splitlines()[-1]
    assert admin_key.startswith("wg_")

    t = time.monotonic()
    source = publish_and_download(stack, admin_key, tmp_path)
    timed("publish+download", t)
    t = time.monotonic()
    restart_a_replica_mid_download(stack, admin_key, tmp_path, source)
    timed("restart mid-download", t)
    t = time.monotonic()
    stop_a_replica_during_an_upload(stack, admin_key, tmp_path)
    timed("stop during upload", t)
    t = time.monotonic()
    check_the_load_balancer(stack, admin_key)
    timed("load balancer", t)
    print("deploy phases: " + ", ".join(f"{n} {s:.0f}s" for n, s in phases))
