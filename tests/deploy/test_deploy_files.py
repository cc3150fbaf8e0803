"""The Dockerfile, deploy/compose.yaml and deploy/k8s/ checked statically (no Docker engine
or cluster runs here): they parse, have the pieces the operations story relies on, and
name only settings that exist."""

from __future__ import annotations

import re
import shlex
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
# Read by `weightgate serve` (a CLI option's envvar), not by Settings.
EXTRA_ENV = {"WEIGHTGATE_FORWARDED_ALLOW_IPS"}


def known_setting(name: str) -> bool:
    if name in EXTRA_ENV:
        return True
    field = name.removeprefix("WEIGHTGATE_").lower()
    return name.startswith("WEIGHTGATE_") and field in Settings.model_fields


# ---------------------------------------------------------------------------- Dockerfile


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text("utf-8")
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    assert not current, "Dockerfile ends inside a continued line"
    out = []
    for entry in logical:
        word, _, rest = entry.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for instr in dockerfile():
        if instr[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(instr)
    return result


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))


def test_dockerfile_is_multi_stage_and_ships_only_the_built_environment() -> None:
    all_stages = stages()
    assert len(all_stages) >= 2
    froms = [s[0][1] for s in all_stages]
    assert all(" AS " in f.upper() for f in froms), froms
    final = all_stages[-1]
    copies = [args for instr, args in final if instr == "COPY"]
    assert copies, "the runtime stage copies the built environment"
    assert all(c.startswith("--from=") for c in copies), "only build artefacts reach runtime"


def test_dockerfile_python_satisfies_requires_python() -> None:
    args = {a.split("=")[0]: a.split("=")[1] for i, a in dockerfile() if i == "ARG" and "=" in a}
    version = args["PYTHON_VERSION"]
    minimum = pyproject()["project"]["requires-python"].removeprefix(">=")
    assert tuple(map(int, version.split("."))) >= tuple(map(int, minimum.split(".")))
    assert version == f"{sys.version_info.major}.{sys.version_info.minor}", (
        "the image runs the Python version the tests run on"
    )


def test_dockerfile_installs_this_pyproject_like_the_tests_do() -> None:
    build = stages()[0]
    copied = " ".join(args for instr, args in build if instr == "COPY")
    project = pyproject()
    # Everything `pip install .` needs: the metadata, the readme it names, every package.
    assert "pyproject.toml" in copied
    assert project["project"]["readme"] in copied
    for include in project["tool"]["setuptools"]["packages"]["find"]["include"]:
        package = include.rstrip("*")
        assert re.search(rf"\b{package}\b", copied), f"package {package} is not copied"
    runs = " && ".join(args for instr, args in build if instr == "RUN")
    installs = re.findall(r"pip install ([^&;]*)", runs)
    targets = [shlex.split(i) for i in installs]
    assert any(t and t[-1] == "." for t in targets), f"no `pip install .` in {installs}"
    # Not an editable install, not a package pulled from an index under the same name.
    assert not any("-e" in t or "weightgate" in t for t in targets)
    # The Makefile installs the same project (plus test extras) for the test suite.
    makefile = (ROOT / "Makefile").read_text("utf-8")
    assert "pip install --quiet -e '.[test]'" in makefile
    assert project["project"]["scripts"]["weightgate"] == "app.cli.main:main"


def test_dockerfile_runs_as_non_root_with_a_health_check() -> None:
    final = stages()[-1]
    users = [args for instr, args in final if instr == "USER"]
    assert users, "the runtime stage must switch user"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    health = [args for instr, args in final if instr == "HEALTHCHECK"]
    assert len(health) == 1
    assert "/healthz" in health[0]
    cmd = [args for instr, args in final if instr == "CMD"][-1]
    # `serve` migrates first unless told --no-migrate: the image migrates, then serves.
    assert yaml.safe_load(cmd)[:2] == ["weightgate", "serve"]
    assert "--no-migrate" not in cmd


def test_dockerignore_lets_in_exactly_what_the_build_copies() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "app", "migrations"}
    for name in allowed:
        assert (ROOT / name).exists()


# ------------------------------------------------------------------------------ compose


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text("utf-8"))
    assert isinstance(doc, dict)
    return doc


def test_compose_has_the_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "minio", "createbucket", "migrate", "server", "lb"} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["minio"]["image"].startswith("minio/minio")
    assert "mc mb" in " ".join(services["createbucket"]["command"])


def test_compose_runs_two_replicas_after_a_one_shot_migration(compose: dict[str, Any]) -> None:
    services = compose["services"]
    server, migrate = services["server"], services["migrate"]
    assert server["deploy"]["replicas"] >= 2
    assert server["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert server["depends_on"]["createbucket"]["condition"] == "service_completed_successfully"
    assert "--no-migrate" in server["command"]
    assert migrate["restart"] == "no"
    assert "weightgate migrate" in " ".join(migrate["command"])
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    # Both build the Dockerfile of this repository.
    for svc in (server, migrate):
        context = (DEPLOY / svc["build"]["context"]).resolve()
        assert (context / svc["build"]["dockerfile"]).resolve() == ROOT / "Dockerfile"


def test_compose_configures_postgres_and_s3(compose: dict[str, Any]) -> None:
    env = compose["services"]["server"]["environment"]
    assert env["WEIGHTGATE_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in env["WEIGHTGATE_DATABASE_URL"]
    assert env["WEIGHTGATE_STORAGE_URL"].startswith("s3://")
    assert env["WEIGHTGATE_S3_ENDPOINT_URL"] == "http://minio:9000"
    for name in env:
        assert name.startswith("AWS_") or known_setting(name), f"unknown setting {name}"
    lb = compose["services"]["lb"]
    conf_mount = next(v for v in lb["volumes"] if "nginx" in v)
    conf = (DEPLOY / conf_mount.split(":")[0]).read_text()
    assert "proxy_request_buffering off" in conf
    assert "client_max_body_size 0" in conf


# ---------------------------------------------------------------------------- Kubernetes


@pytest.fixture(scope="module")
def manifests() -> dict[str, list[dict[str, Any]]]:
    """Every document of deploy/k8s/*.yaml, by kind."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text("utf-8")):
            assert isinstance(doc, dict), path
            assert "kind" in doc, path
            by_kind.setdefault(doc["kind"], []).append(doc)
    return by_kind


def only(manifests: dict[str, list[dict[str, Any]]], kind: str) -> dict[str, Any]:
    docs = manifests[kind]
    assert len(docs) == 1, kind
    return docs[0]


def test_kustomization_lists_every_manifest_but_the_secret_example(
    manifests: dict[str, list[dict[str, Any]]],
) -> None:
    listed = set(only(manifests, "Kustomization")["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present - {"secret.example.yaml"}


def test_deployment_replicas_probes_and_secrets(
    manifests: dict[str, list[dict[str, Any]]],
) -> None:
    dep = only(manifests, "Deployment")
    spec = dep["spec"]
    assert spec["replicas"] >= 2
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    (server,) = pod["containers"]
    assert server["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert server["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert server["command"][:2] == ["weightgate", "serve"]
    assert "--no-migrate" in server["command"]
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in server["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert refs["WEIGHTGATE_DATABASE_URL"]["name"] == "weightgate"
    assert refs["WEIGHTGATE_SIGNING_KEY_PEM"]["key"] == "signing-key-pem"
    for e in server["env"]:
        assert e["name"].startswith("AWS_") or known_setting(e["name"]), e["name"]
    (wait,) = pod["initContainers"]
    assert wait["command"] == ["weightgate", "migrate", "--check"]
    assert pod["terminationGracePeriodSeconds"] > 30  # serve's --graceful-timeout


def test_migration_job_and_service_match_the_deployment(
    manifests: dict[str, list[dict[str, Any]]],
) -> None:
    job = only(manifests, "Job")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["weightgate", "migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("OnFailure", "Never")
    dep = only(manifests, "Deployment")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    service = only(manifests, "Service")
    assert service["spec"]["selector"].items() <= labels.items()
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    pdb = only(manifests, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_configmap_and_secret_name_real_settings(
    manifests: dict[str, list[dict[str, Any]]],
) -> None:
    config = only(manifests, "ConfigMap")["data"]
    for name in config:
        assert known_setting(name), f"unknown setting {name}"
    secret = only(manifests, "Secret")
    dep = only(manifests, "Deployment")
    wanted = {
        e["valueFrom"]["secretKeyRef"]["key"]
        for c in dep["spec"]["template"]["spec"]["containers"]
        for e in c["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert wanted <= set(secret["stringData"])
