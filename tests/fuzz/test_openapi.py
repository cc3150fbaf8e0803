"""Fuzzing the HTTP API from its OpenAPI document (schemathesis), against a live server, as
each kind of caller: anonymous, a researcher with an access grant, a partner, an admin.

Every operation gets schemathesis-generated requests, valid and invalid (negative data),
half of them aimed at resources that exist (the path parameters of a published model, its
release, components and files); each answer must:

- not be a 5xx, and arrive at all (a dropped connection fails, as a refused header did);
- have a status code the document lists for the operation, with its content type;
- match the documented schema of that status (problem+json for every refusal).

Generation is reproducible (a fixed seed, no example database) and bounded (``EXAMPLES``
per operation and caller). Each caller runs against its own server and database, so what
one mutates (an admin disabling a user, a partner revoking its tokens) cannot hide
another's bugs. It runs once per database pass (SQLite, PostgreSQL). ``EXAMPLES`` is the
budget knob: at 30 the four callers cost about 4 minutes of each pass once the API had grown
to ~130 operations; at 10 about a third of that. Every operation still gets valid, negative
and aimed requests from each caller; ``WEIGHTGATE_FUZZ_EXAMPLES=100`` digs deeper by hand.
"""

from __future__ import annotations

import itertools
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fixtures.databases import backend, fresh_database
from tests.fixtures.servers import LiveServer, create_user, live_server

pytestmark = pytest.mark.slow

SEED = 20261203
EXAMPLES = int(os.environ.get("WEIGHTGATE_FUZZ_EXAMPLES", "10"))  # per operation and caller
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MODEL = "acme/fuzz"


@dataclass
class World:
    server: LiveServer
    headers: dict[str, str]
    known: dict[str, str]  # path parameters that name things that exist


def publish(c: httpx.Client, now: datetime) -> None:
    past, soon = (now - timedelta(days=1)).isoformat(), (now + timedelta(days=5)).isoformat()
    c.post(
        "/v1/models",
        json={"id": MODEL, "license": "Be nice.", "auto_approve": True},
    ).raise_for_status()
    c.post(f"/v1/models/{MODEL}/releases", json={"version": "v1"}).raise_for_status()
    for name, schedule in (
        ("config", [{"tier": "open", "at": past}]),
        ("weights", [{"tier": "partner", "at": past}, {"tier": "research", "at": soon}]),
        ("heads", [{"tier": "research", "at": past}]),
        ("safety", []),
    ):
        c.post(
            f"/v1/models/{MODEL}/releases/v1/components",
            json={"name": name, "schedule": schedule},
        ).raise_for_status()
    for path, component in (
        ("config.json", "config"),
        ("model-00001-of-00002.safetensors", "weights"),
        ("model-00002-of-00002.safetensors", "weights"),
        ("heads/head.bin", "heads"),
        ("safety.bin", "safety"),
    ):
        c.put(
            f"/v1/models/{MODEL}/releases/v1/files/{path}",
            params={"component": component},
            content=path.encode() * 100,
        ).raise_for_status()
    c.post(f"/v1/models/{MODEL}/releases/v1/publish").raise_for_status()


@pytest.fixture(params=["anonymous", "researcher", "partner", "admin"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    role: str = request.param
    with fresh_database(tmp_path, label="fuzz") as db_url:
        env = {"WEIGHTGATE_DATABASE_URL": db_url, "WEIGHTGATE_SCHEDULER_ENABLED": "false"}
        with live_server(env, tmp=tmp_path) as server:
            admin = {"Authorization": f"Bearer {create_user(server, 'ops@example.org', 'admin')}"}
            with httpx.Client(base_url=server.url, headers=admin, timeout=30) as c:
                publish(c, datetime.now(UTC))
                made = c.post("/v1/users", json={"email": "ada@example.org"}).json()
                researcher = {"Authorization": f"Bearer {made['api_key']}"}
                granted = c.post(
                    f"/v1/models/{MODEL}/access-requests",
                    json={"accept_license": True},
                    headers=researcher,
                )
                granted.raise_for_status()
                partner = c.post("/v1/partners", json={"name": "Partner", "models": [MODEL]})
                creds = partner.json()
                issued = httpx.post(
                    server.url + "/v1/oauth/token",
                    data={
                        "grant_type": "client_credentials",
                        "client_id": creds["client_id"],
                        "client_secret": creds["client_secret"],
                    },
                )
                issued.raise_for_status()
                token = c.post("/v1/tokens", json={"model": MODEL}, headers=researcher).json()
            callers = {
                "anonymous": {},
                "researcher": researcher,
                "partner": {"Authorization": f"Bearer {issued.json()['access_token']}"},
                "admin": admin,
            }
            known = {
                "namespace": "acme",
                "name": "fuzz",
                "version": "v1",
                "rev": "v1",
                "component": "weights",
                "path": "config.json",
                "jti": token["jti"],
                "user": str(made["user"]["id"]),
                "user_id": str(made["user"]["id"]),
                "request_id": str(granted.json()["id"]),
                "partner_id": str(creds["id"]),
                "principal_id": f"user:{made['user']['id']}",
            }
            yield World(server, callers[role], known)


def _strategy(operation: Any, known: dict[str, str]) -> st.SearchStrategy[Any]:
    names = {p.name for p in operation.path_parameters}
    aimed = {k: v for k, v in known.items() if k in names}
    strategies = [
        operation.as_strategy(),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    ]
    if aimed:
        strategies.append(operation.as_strategy(path_parameters=aimed))
    return st.one_of(*strategies)


def _problem(label: str, case: Any, what: str) -> str:
    curl = case.as_curl_command()[:300] if "parsing the body" in what else ""
    return f"{label}: {what} (sent {case.method} {case.formatted_path[:120]}) {curl}"


def fuzz_operation(operation: Any, world: World, answered: Counter[int]) -> list[str]:
    found: list[str] = []
    label = operation.label

    @seed(SEED)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(case=_strategy(operation, world.known))
    def run(case: Any) -> None:
        try:
            response = case.call(base_url=world.server.url, headers=world.headers, timeout=30)
        except requests.RequestException as e:  # dropped connection, no answer at all
            found.append(_problem(label, case, f"no response: {type(e).__name__}: {e}"))
            return
        answered[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:
            for failure in group.exceptions:
                found.append(_problem(label, case, _describe(failure, response)))
        except Failure as failure:
            found.append(_problem(label, case, _describe(failure, response)))

    run()
    return found


def _describe(failure: Failure, response: Any) -> str:
    body = re.sub(r"\s+", " ", response.text[:160])
    message = re.sub(r"\s+", " ", failure.message[:200])
    return f"{failure.title}: {message} [{response.status_code} {body}]"


def test_the_api_answers_every_request_as_documented(world: World) -> None:
    doc = httpx.get(world.server.url + "/openapi.json", timeout=30).json()
    # Each caller sends its own credential (World.headers): left in, the document's bearer
    # scheme makes schemathesis invent one per request, and nearly every answer is a 401.
    doc.get("components", {}).pop("securitySchemes", None)
    for operations in doc["paths"].values():
        for operation in operations.values():
            if isinstance(operation, dict):
                operation.pop("security", None)
    schema = schemathesis.openapi.from_dict(doc)
    problems: list[str] = []
    answered: Counter[int] = Counter()
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            problems.append(f"the document does not describe an operation: {result.err()}")
            continue
        operation = result.ok()
        problems.extend(fuzz_operation(operation, world, answered))
    # The requests reached past the edge: aimed ones find what exists.
    assert sum(n for status, n in answered.items() if status < 300) >= 20, answered
    unique = list(dict.fromkeys(problems))
    assert not unique, f"{len(unique)} problem(s), on {backend()}:\n" + "\n".join(
        itertools.islice(unique, 60)
    )
