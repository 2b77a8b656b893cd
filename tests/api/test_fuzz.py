"""A fuzz pass over the OpenAPI schema: no input gives a 5xx, every status is declared.

schemathesis loads the app's /openapi.json in process and generates requests for
every operation: valid and invalid inputs with the right credential (the admin's,
or the host agent's for /v1/agent), path parameters that name existing objects as
well as made-up ones, and the same operations without a token and with an
unknown one (always 401, except the public ``GET /v1``). With a credential, each
status must be one the operation declares (the errors of
``rtkvm.api.errors.RESPONSES``) and each body must match its declared schema.
Failures are collected per operation and reported with a curl command that
reproduces each.

Bounded and reproducible: a fixed number of examples per operation, derandomized
(a fixed seed), no example database, no shrinking. SQLite only: the fuzz is
about the API's handling of inputs, which does not depend on the database, and
every other API test runs on PostgreSQL as well (that is where PostgreSQL's own
refusals, such as NUL bytes, are covered).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, BaseSchema, Case, GenerationMode, Response
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from rtkvm.api.app import create_app
from rtkvm.api.testing import ADMIN_TOKEN, Cloud, FakeClock, expect
from rtkvm.settings import Settings

EXAMPLES = {"positive": 25, "negative": 15, "existing": 10}
"""Examples per operation and kind of input, with the right credential."""
UNAUTHORIZED_EXAMPLES = 6
"""Examples per operation without a token or with an unknown one (always 401)."""
BAD_TOKEN = "rtk_not-a-token-of-this-cloud-0123456789abcdefghijk"
PUBLIC = {"GET /v1", "GET /healthz", "GET /readyz"}
"""Operations that answer without a token (the version document, liveness, readiness)."""


@dataclass
class World:
    """An app with a little state, and the names fuzzed path parameters may take."""

    app: FastAPI
    schema: BaseSchema
    agent_token: str
    existing: dict[str, dict[str, str]] = field(default_factory=dict)
    """Per path template: path parameters naming objects that exist."""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    db = Path(tmp_path_factory.mktemp("fuzz")) / "rtkvm.db"
    app = create_app(
        Settings(
            database_url=f"sqlite:///{db}",
            bootstrap_admin_token=ADMIN_TOKEN,
            auth_failures_per_minute=1_000_000,  # the fuzz sends bad tokens on purpose
        ),
        clock=FakeClock(),
    )
    cloud = Cloud(app)
    try:
        cloud.project("fz-proj")
        cloud.member("fz-user", "fz-proj")
        cloud.network("fznet", "fzphys", shared=True)
        cloud.flavor("fz-flavor", 2)
        enrolled = expect(cloud.admin.post("/v1/hosts", json={"name": "fz-enrolled"}), 201)
        agent = cloud.host("fz-host", physnets=("fzphys",))
        agent_token = str(agent.headers["Authorization"]).removeprefix("Bearer ")
        vm = expect(
            cloud.admin.post(
                "/v1/instances",
                json={"name": "fz-vm", "flavor": "fz-flavor", "networks": ["fznet"]},
            ),
            201,
        )
        [token] = [t for t in expect(cloud.admin.get("/v1/tokens"), 200) if t["user"] == "fz-user"]
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        existing = {
            "/v1/projects/{name}": {"name": "fz-proj"},
            "/v1/projects/{name}/quota": {"name": "fz-proj"},
            "/v1/users/{name}": {"name": "fz-user"},
            "/v1/tokens/{token_id}": {"token_id": str(token["id"])},
            "/v1/hosts/{name}": {"name": enrolled["host"]["name"]},
            "/v1/agent/instances/{instance_id}/state": {"instance_id": vm["id"]},
            "/v1/flavors/{name}": {"name": "fz-flavor"},
            "/v1/networks/{name}": {"name": "fznet"},
            "/v1/instances/{instance_id}": {"instance_id": vm["id"]},
            "/v1/usage/{project}": {"project": "fz-proj"},
        }
        yield World(app=app, schema=schema, agent_token=agent_token, existing=existing)
    finally:
        cloud.close()
        app.state.services.db.dispose()


Operation = APIOperation[Any, Any, Any, Any]
FuzzCase = Case[Any]


def _operations(world: World) -> list[Operation]:
    """Every operation, deletes last: DELETE /v1/hosts (which ends the agent's token) and
    DELETE /v1/tokens (the admin's own token, id 1, may be drawn) come last of all."""
    ops: list[Operation] = []
    for result in world.schema.get_all_operations():
        assert isinstance(result, Ok), f"the app's OpenAPI schema is invalid: {result}"
        ops.append(result.ok())
    last = {"DELETE /v1/hosts/{name}": 1, "DELETE /v1/tokens/{token_id}": 2}
    return sorted(ops, key=lambda op: (op.method.upper() == "DELETE", last.get(op.label, 0)))


def _modes(op: Operation) -> list[GenerationMode]:
    """Valid inputs, and invalid ones when the operation takes any input at all."""
    has_inputs = len(op.path_parameters) or len(op.query) or len(op.body)
    return [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if has_inputs else [])


def _unparsed(response: Response) -> bool:
    """A body that is not JSON at all is refused before the token is looked at (FastAPI reads
    the body first): a 400 or 422 that says so, and reveals nothing."""
    if response.status_code not in (400, 422):
        return False
    detail = str(response.json().get("detail", ""))
    return detail == "There was an error parsing the body" or "JSON decode error" in detail


@dataclass
class Tally:
    """Requests sent and statuses seen per operation, and the first failure per key."""

    statuses: dict[str, list[int]] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return sum(len(seen) for seen in self.statuses.values())

    def saw(self, op: Operation, status: int) -> None:
        self.statuses.setdefault(op.label, []).append(status)

    def fail(self, key: str, case: FuzzCase, why: str) -> None:
        self.failures.setdefault(key, f"{why}\n    {case.as_curl_command()}")

    def report(self) -> str:
        return "\n".join(f"{key}: {why}" for key, why in self.failures.items())


def _fuzz(
    strategy: st.SearchStrategy[FuzzCase], examples: int, send: Callable[[FuzzCase], None]
) -> None:
    """Up to ``examples`` cases, the same ones on every run; failures are recorded, not raised
    (so nothing is shrunk and one bad operation does not hide the others)."""

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: FuzzCase) -> None:
        send(case)

    run()


def _call(case: FuzzCase, authorization: str | None) -> Response | Exception:
    """The response, or the exception the app raised (a server answers that with a 500)."""
    case.headers.pop("Authorization", None)
    if authorization is not None:
        case.headers["Authorization"] = authorization
    try:
        return case.call()
    except Exception as exc:  # the in-process transport re-raises what the app did not handle
        return exc


def test_fuzz_with_credentials_never_errs_and_keeps_to_the_schema(world: World) -> None:
    tally = Tally()
    started = time.monotonic()
    operations = _operations(world)
    for op in operations:
        token = world.agent_token if op.path.startswith("/v1/agent/") else ADMIN_TOKEN
        strategies = [(mode.value, op.as_strategy(generation_mode=mode)) for mode in _modes(op)]
        if op.path in world.existing:
            fixed = world.existing[op.path]
            strategies.append(("existing", op.as_strategy(path_parameters=fixed)))
        for kind, strategy in strategies:

            def send(
                case: FuzzCase,
                op: Operation = op,
                key: str = f"{op.label} [{kind}]",
                authorization: str = f"Bearer {token}",
            ) -> None:
                response = _call(case, authorization)
                if isinstance(response, Exception):
                    tally.saw(op, 500)
                    tally.fail(key, case, f"500: {type(response).__name__}: {response}")
                    return
                tally.saw(op, response.status_code)
                if response.status_code >= 500:
                    tally.fail(key, case, f"{response.status_code}: {response.text[:300]}")
                    return
                for check in (status_code_conformance, response_schema_conformance):
                    try:
                        case.validate_response(response, checks=[check])
                    except FailureGroup as exc:
                        tally.fail(key, case, f"{check.__name__}: {exc.exceptions[0]}")

            _fuzz(strategy, EXAMPLES[kind], send)
    print(
        f"fuzzed {len(operations)} operations with credentials: {tally.requests} requests "
        f"in {time.monotonic() - started:.1f} s"
    )
    assert not tally.failures, tally.report()
    assert set(tally.statuses) == {op.label for op in operations}
    # the made-up state was reached, not only 404s: each existing object was read back
    for path in ("/v1/projects/{name}", "/v1/flavors/{name}", "/v1/networks/{name}"):
        assert 200 in tally.statuses[f"GET {path}"], path
    for path in ("/v1/hosts/{name}", "/v1/instances/{instance_id}", "/v1/usage/{project}"):
        assert 200 in tally.statuses[f"GET {path}"], path
    assert 200 in tally.statuses["POST /v1/agent/instances/{instance_id}/state"]


@pytest.mark.parametrize("authorization", [None, f"Bearer {BAD_TOKEN}"], ids=["none", "bad"])
def test_fuzz_without_a_valid_token_is_always_401(world: World, authorization: str | None) -> None:
    tally = Tally()
    operations = _operations(world)
    for op in operations:
        expected = 200 if op.label in PUBLIC else 401

        def send(case: FuzzCase, op: Operation = op, expected: int = expected) -> None:
            response = _call(case, authorization)
            if isinstance(response, Exception):
                tally.saw(op, 500)
                tally.fail(op.label, case, f"500: {type(response).__name__}: {response}")
                return
            tally.saw(op, response.status_code)
            if response.status_code != expected and not _unparsed(response):
                tally.fail(op.label, case, f"{response.status_code}: {response.text[:300]}")

        for mode in _modes(op):
            _fuzz(op.as_strategy(generation_mode=mode), UNAUTHORIZED_EXAMPLES, send)
    print(f"fuzzed {len(operations)} operations without a valid token: {tally.requests} requests")
    assert not tally.failures, tally.report()
    assert set(tally.statuses) == {op.label for op in operations}
