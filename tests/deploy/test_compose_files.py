"""deploy/compose.yaml and deploy/nginx.conf, read as files and through `docker compose
config` (which needs no engine): what an operator relies on before anything starts.
tests/deploy/test_compose_stack.py runs them."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.settings import Settings
from tests.deploy.docker import compose_binary

pytestmark = pytest.mark.no_database

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SECRETS = {
    "POSTGRES_PASSWORD": "pg-secret",
    "MINIO_ROOT_USER": "root-user",
    "MINIO_ROOT_PASSWORD": "root-secret",
    "WEIGHTGATE_S3_ACCESS_KEY": "app-user",
    "WEIGHTGATE_S3_SECRET_KEY": "app-secret",
}
LONG_RUNNING = ("postgres", "minio", "server", "lb")
ONE_SHOTS = ("createbucket", "migrate")
# Read by `weightgate serve` (a CLI option's envvar), not by Settings.
EXTRA_ENV = {"WEIGHTGATE_FORWARDED_ALLOW_IPS"}


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in SECRETS}
    return subprocess.run(
        [str(compose_binary()), "-f", str(DEPLOY / "compose.yaml"), "config", "--format", "yaml"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    """The file as Compose resolves it (anchors merged, variables filled in)."""
    result = compose_config(SECRETS)
    assert result.returncode == 0, result.stderr
    doc = yaml.safe_load(result.stdout)
    assert isinstance(doc, dict)
    return doc


@pytest.fixture(scope="module")
def nginx() -> str:
    return (DEPLOY / "nginx.conf").read_text("utf-8")


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_a_missing_secret_stops_compose_with_its_name(missing: str) -> None:
    env = {k: v for k, v in SECRETS.items() if k != missing}
    result = compose_config(env)
    assert result.returncode != 0
    assert f"set {missing}" in result.stderr


def test_no_secret_has_a_default_in_the_file() -> None:
    text = (DEPLOY / "compose.yaml").read_text("utf-8")
    for name in SECRETS:
        assert not re.search(rf"\${{{name}:-", text), f"{name} has a default"
        assert re.search(rf"\${{{name}:\?set {name}}}", text), f"{name} does not fail loudly"


def test_every_service_restarts_and_every_image_is_pinned(config: dict[str, Any]) -> None:
    services = config["services"]
    assert set(services) == set(LONG_RUNNING) | set(ONE_SHOTS)
    for name in LONG_RUNNING:
        assert services[name]["restart"] == "unless-stopped", name
    for name in ONE_SHOTS:
        assert services[name]["restart"] == "on-failure", name
    for name, service in services.items():
        image = service["image"]
        if name in ("server", "migrate"):
            assert image == "weightgate:local"  # built from this checkout
            continue
        tag = image.rsplit(":", 1)[1]
        assert re.search(r"\d", tag), f"{name}: {image} is not pinned to a version"
        assert "latest" not in tag


def test_every_container_is_hardened_like_the_kubernetes_pods(config: dict[str, Any]) -> None:
    for name, service in config["services"].items():
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert service["deploy"]["resources"]["limits"]["memory"], name
        assert any(str(t).startswith("/tmp") for t in service["tmpfs"]), name
        assert service.get("user", "10001") not in ("0", "root"), name


def test_replicas_migrations_and_the_grace_period(config: dict[str, Any]) -> None:
    services = config["services"]
    server, migrate, lb = services["server"], services["migrate"], services["lb"]
    assert server["deploy"]["replicas"] == 2
    assert server["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert server["depends_on"]["createbucket"]["condition"] == "service_completed_successfully"
    assert "--no-migrate" in server["command"]
    assert "weightgate migrate" in " ".join(migrate["command"])
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    # The load balancer starts once replicas are ready (their healthcheck is /readyz).
    assert lb["depends_on"]["server"]["condition"] == "service_healthy"
    assert "/readyz" in " ".join(server["healthcheck"]["test"])
    # docker stop gives in-flight uploads serve's grace, plus the background loops' 15 s.
    graceful = next(int(a.split("=")[1]) for a in server["command"] if "graceful-timeout" in a)
    grace = re.fullmatch(r"(\d+)s", server["stop_grace_period"])
    assert grace, server["stop_grace_period"]
    assert int(grace.group(1)) >= graceful + 15, (grace, graceful)
    # Keys: written by the one-shot, read-only for the replicas.
    (keys,) = [v for v in server["volumes"] if v["target"] == "/var/lib/weightgate/keys"]
    assert keys["read_only"] is True


def test_the_app_uses_a_scoped_storage_user_and_trusts_only_the_lb(config: dict[str, Any]) -> None:
    env = config["services"]["server"]["environment"]
    assert env["AWS_ACCESS_KEY_ID"] == SECRETS["WEIGHTGATE_S3_ACCESS_KEY"]
    assert env["AWS_SECRET_ACCESS_KEY"] == SECRETS["WEIGHTGATE_S3_SECRET_KEY"]
    assert SECRETS["MINIO_ROOT_PASSWORD"] not in env.values()
    assert "mc admin policy attach local weightgate-app" in " ".join(
        config["services"]["createbucket"]["command"]
    )
    lb_address = config["services"]["lb"]["networks"]["front"]["ipv4_address"]
    assert env["WEIGHTGATE_FORWARDED_ALLOW_IPS"] == lb_address
    assert env["WEIGHTGATE_DATABASE_URL"].startswith("postgresql+psycopg://weightgate:")
    assert env["WEIGHTGATE_STORAGE_URL"].startswith("s3://")
    for name in env:
        known = name.removeprefix("WEIGHTGATE_").lower() in Settings.model_fields
        assert name.startswith("AWS_") or name in EXTRA_ENV or known, f"unknown setting {name}"
    # Only the load balancer is published; the stores sit on an internal network.
    published = [n for n, s in config["services"].items() if s.get("ports")]
    assert published == ["lb"]
    assert config["networks"]["back"]["internal"] is True
    for name in ("postgres", "minio"):
        assert list(config["services"][name]["networks"]) == ["back"]


def test_nginx_streams_keeps_connections_hides_metrics_and_sets_forwarded_for(nginx: str) -> None:
    assert "client_max_body_size 0;" in nginx
    assert "proxy_request_buffering off;" in nginx
    assert "proxy_buffering off;" in nginx
    assert re.search(r"upstream weightgate \{[^}]*keepalive \d+;", nginx)
    assert 'proxy_set_header Connection "";' in nginx
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in nginx
    assert "$proxy_add_x_forwarded_for" not in nginx
    assert re.search(r"location = /metrics \{\s*return 404;", nginx)
    # Everything it writes goes to the tmpfs: it runs on a read-only root as user 101.
    for path in re.findall(r"(?m)^\s*(?:pid|\w+_temp_path)\s+(\S+);", nginx):
        assert path.startswith("/tmp/"), path
