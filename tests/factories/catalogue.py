"""Build catalogue state through the HTTP API, the way an admin would."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient


@dataclass
class Published:
    model: str
    version: str
    revision: str
    files: dict[str, bytes] = field(default_factory=dict)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check(resp: Any, status: int) -> Any:
    assert resp.status_code == status, f"{resp.status_code}: {resp.text}"
    return resp.json() if resp.content else None


def create_model(
    client: TestClient, headers: dict[str, str], model: str = "acme/atlas-7b", **extra: Any
) -> dict[str, Any]:
    body = {"id": model, "display_name": "Atlas", "license": "Be nice.", **extra}
    return check(client.post("/v1/models", json=body, headers=headers), 201)  # type: ignore[no-any-return]


def publish_release(
    client: TestClient,
    headers: dict[str, str],
    *,
    model: str = "acme/atlas-7b",
    version: str = "v1",
    components: dict[str, list[tuple[str, datetime]]] | None = None,
    files: dict[str, tuple[str, bytes]] | None = None,
    create: bool = True,
    publish: bool = True,
) -> Published:
    """Create (optionally) the model, a release, components with schedules, upload files
    ``{path: (component, bytes)}`` and publish."""
    if create:
        create_model(client, headers, model)
    check(
        client.post(f"/v1/models/{model}/releases", json={"version": version}, headers=headers), 201
    )
    components = components if components is not None else {"weights": []}
    for name, stages in components.items():
        body = {"name": name, "schedule": [{"tier": t, "at": at.isoformat()} for t, at in stages]}
        check(
            client.post(
                f"/v1/models/{model}/releases/{version}/components", json=body, headers=headers
            ),
            201,
        )
    files = files if files is not None else {"model.safetensors": ("weights", b"\x00" * 1000)}
    for path, (comp, data) in files.items():
        check(
            client.put(
                f"/v1/models/{model}/releases/{version}/files/{path}",
                params={"component": comp},
                content=data,
                headers=headers,
            ),
            201,
        )
    revision = ""
    if publish:
        revision = check(
            client.post(f"/v1/models/{model}/releases/{version}/publish", headers=headers), 200
        )["revision"]
    return Published(model, version, revision, {p: d for p, (_, d) in files.items()})


def signature_files(
    client: TestClient, headers: dict[str, str], model: str = "acme/atlas-7b", version: str = "v1"
) -> dict[str, dict[str, Any]]:
    """``{path: manifest entry}`` of the signature files publish added to a release
    (app/signing), as ``headers``' caller sees them."""
    manifest = check(
        client.get(f"/v1/models/{model}/releases/{version}/manifest", headers=headers), 200
    )
    return {f["path"]: f for f in manifest["files"] if f["path"].startswith("signatures/")}
