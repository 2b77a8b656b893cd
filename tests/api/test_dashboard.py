"""The dashboard over HTTP (the browser test drives the same pages in Chromium).

A token logs in once and becomes an HttpOnly, SameSite=Strict cookie for /ui; every
page checks it as the API checks tokens; members never see hosts and see only their
project's servers and measurements; text from users is escaped; the partition map
shows each CPU's role and the guests holding it; the report downloads as one page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from lxml import etree

from rtkvm.api.testing import ADMIN_TOKEN, Cloud, expect
from rtkvm.measure import cyclictest

from .test_measurements import CYCLICTEST_RESULT, _state, _two_hosts

HOST_2THREADS = Path(__file__).parents[1] / "measure" / "data" / "host_2threads.txt"
RESULT = {**CYCLICTEST_RESULT, "latency": cyclictest.parse(HOST_2THREADS.read_text()).to_dict()}


def _login(cloud: Cloud, token: str) -> TestClient:
    browser = cloud.client(None)
    answer = browser.post("/ui/session", headers={"Authorization": f"Bearer {token}"}, json={})
    assert answer.status_code == 200, answer.text
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
    return browser


def _doc(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return etree.fromstring(response.text, etree.HTMLParser())


def _text(doc: Any) -> str:
    return " ".join("".join(doc.itertext()).split())


def _world(cloud: Cloud) -> dict[str, Any]:
    cloud.project("p1")
    cloud.project("p2")
    alice = cloud.member("alice", "p1")
    bob = cloud.member("bob", "p2")
    agent = cloud.host("h1", physnets=("blue",), nodes=1, cores_per_node=8)
    cloud.network("blue", "blue", shared=True)
    cloud.flavor("rt2", 2)
    vm = expect(alice.post("/v1/instances", json={"name": "vm1", "flavor": "rt2"}), 201)
    rt = {"state": "degraded", "reasons": ["<b>vcpu1</b> is other/0"],
          "waived": {"accel.kvm": "kvm_unusable"}}  # fmt: skip
    expect(agent.post(f"/v1/agent/instances/{vm['id']}/state",
                      json={"state": "active", "rt": rt}), 200)  # fmt: skip
    other = expect(bob.post("/v1/instances", json={"name": "bobs", "flavor": "rt2"}), 201)
    m = expect(alice.post("/v1/measurements", json={"kind": "cyclictest", "server": vm["id"]}),
               201)  # fmt: skip
    expect(_state(agent, m["id"], "running"), 200)
    expect(_state(agent, m["id"], "done", result=RESULT), 200)
    alice_token = alice.headers["Authorization"].split()[1]
    return {"vm": vm, "other": other, "m": m, "alice": alice_token}


def test_a_host_that_is_not_ready_shows_each_failed_check_with_its_fix(cloud: Cloud) -> None:
    cloud.host("lab", verdict="not-ready", nodes=1, cores_per_node=4)
    admin = _login(cloud, ADMIN_TOKEN)
    text = _text(_doc(admin.get("/ui/hosts/lab")))
    assert "sched.rt_throttling" in text
    assert "RT throttling" in text or "rt_runtime" in text  # the check's title
    assert "sysctl -w kernel.sched_rt_runtime_us=-1" in text  # and its fix, from the data


def test_without_a_session_every_page_is_the_login_form(cloud: Cloud) -> None:
    anonymous = cloud.client(None)
    for path in ("/ui", "/ui/hosts", "/ui/servers", "/ui/measurements", "/ui/networks"):
        got = anonymous.get(path)
        assert got.status_code == 401 and 'id="login"' in got.text, path
    anonymous.cookies.set("rtkvm_session", "rtk_nope", path="/ui")
    got = anonymous.get("/ui/hosts")
    assert got.status_code == 401 and "unknown or revoked API token" in got.text
    refused = anonymous.post("/ui/session", headers={"Authorization": "Bearer rtk_bad"}, json={})
    assert refused.status_code == 401


def test_admins_see_hosts_with_their_partition_map(cloud: Cloud) -> None:
    world = _world(cloud)
    admin = _login(cloud, ADMIN_TOKEN)
    hosts = _doc(admin.get("/ui/hosts"))
    assert "h1" in _text(hosts) and "max 14445 µs" in _text(hosts)
    host = _doc(admin.get("/ui/hosts/h1"))
    cpus = {int(c.get("data-cpu")): c for c in host.iterfind(".//div[@class]") if c.get("data-cpu")}
    roles = {cpu: c.get("data-role") for cpu, c in cpus.items()}
    assert "housekeeping" in roles.values() and "rt" in roles.values()
    held = [cpu for cpu, c in cpus.items() if "vm1" in "".join(c.itertext())]
    assert len(held) == 2 and all(roles[c] == "rt" for c in held)
    servers = _doc(admin.get("/ui/servers"))
    assert "vm1" in _text(servers) and "bobs" in _text(servers)
    assert "<b>vcpu1</b> is other/0" in _text(servers)  # an agent's text, never markup
    assert servers.find(".//b[.='vcpu1']") is None
    assert "blue" in _text(_doc(admin.get("/ui/networks")))
    assert world["vm"]["id"]


def test_members_see_their_project_only_and_no_hosts(cloud: Cloud) -> None:
    world = _world(cloud)
    alice = _login(cloud, world["alice"])
    assert alice.get("/ui/hosts").status_code == 403
    servers = _text(_doc(alice.get("/ui/servers")))
    assert "vm1" in servers and "degraded" in servers and "bobs" not in servers
    assert alice.get(f"/ui/servers/{world['other']['id']}").status_code == 404
    shown = _doc(alice.get(f"/ui/servers/{world['vm']['id']}"))
    assert "accel.kvm (kvm_unusable)" in _text(shown)
    listed = _doc(alice.get("/ui/measurements"))
    assert world["m"]["id"][:8] in _text(listed)
    page = _doc(alice.get(f"/ui/measurements/{world['m']['id']}"))
    assert page.find(".//figure[@class='histogram']") is not None
    assert "p99" in _text(page)
    report = alice.get(f"/ui/report.html?id={world['m']['id']}")
    assert report.status_code == 200 and "attachment" in report.headers["content-disposition"]
    assert "<figure" in report.text
    assert alice.get(f"/ui/report.html?id={world['m']['id']}&id=nope").status_code == 200
    logout = alice.get("/ui/logout", follow_redirects=False)
    assert logout.status_code == 303 and 'rtkvm_session=""' in logout.headers["set-cookie"]


def test_an_agent_token_cannot_log_in(cloud: Cloud) -> None:
    done = cloud.api.enroll_host("h9")
    refused = cloud.client(None).post(
        "/ui/session", headers={"Authorization": f"Bearer {done.agent_token}"}, json={}
    )
    assert refused.status_code == 403 and "agent token" in refused.json()["detail"]


def test_a_round_trip_across_hosts_shows_both_hosts(cloud: Cloud) -> None:
    _alice, _h1, _h2, m = _two_hosts(cloud)
    admin = _login(cloud, ADMIN_TOKEN)
    rows = _doc(admin.get("/ui/measurements")).findall(".//tr")
    [row] = [r for r in rows if m["id"][:8] in _text(r)]
    assert "h1 → h2" in _text(row)
