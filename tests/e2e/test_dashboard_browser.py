"""The dashboard in a real browser: Debian's Chromium, headless, driven through chromedriver.

A real API server (`rtkvm cloud serve`, SQLite) holds a small world made through the
API itself: a registered host wired to blue, a network, an RT server its agent reported
active and checked, a finished cyclictest. The browser logs in through the form as the
admin, opens every page and reads what a person would see: the hosts table, the host's
CPU partition map, the servers with their RT state, the networks, the measurements and
a histogram; then a member logs in and sees no hosts. A screenshot of each page is kept
in test-artifacts/dashboard/ (or $RTKVM_TEST_ARTIFACTS/dashboard).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from rtkvm.measure import cyclictest
from rtkvm.scheduler.fakehosts import fake_host
from rtkvm.testing.apiproc import free_port, start_api, wait_up
from rtkvm.wire.agent_client import AgentClient
from rtkvm.wire.guest import RtCheckDoc, StateReport
from rtkvm.wire.measure import MeasurementReport
from rtkvm.wire.node import DoctorVerdict, HostReport
from rtkvm.wire.user_client import CloudClient

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ADMIN = "rtk_dashboard-e2e-admin-token-0123456789abcdef"
SAMPLE = REPO / "tests" / "measure" / "data" / "host_2threads.txt"
ARTIFACTS = Path(os.environ.get("RTKVM_TEST_ARTIFACTS", REPO / "test-artifacts")) / "dashboard"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
        reason="chromium and chromium-driver are not installed (make setup installs them)",
    ),
]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, str]]:
    port = free_port()
    log = tmp_path / "api.log"
    proc = start_api(f"sqlite:///{tmp_path / 'db.sqlite'}", port, log, admin_token=ADMIN)
    try:
        wait_up(port, proc, log)
        url = f"http://127.0.0.1:{port}"
        admin = CloudClient(url, ADMIN)
        admin.create_project("plant")
        admin.create_user("alice", "plant", "member")
        alice_token = admin.create_token("alice").secret
        alice = CloudClient(url, alice_token)
        agent = AgentClient(url, admin.enroll_host("rt-node-1").agent_token)
        fake = fake_host(nodes=2, cores_per_node=4)
        agent.register(HostReport(
            topology=fake.topology, plan=fake.plan.model_dump(mode="json"),
            doctor=DoctorVerdict(verdict="ready"), dataplane_state="ready", physnets=["blue"],
        ))  # fmt: skip
        admin.create_network({"name": "blue", "physnet": "blue", "shared": True})
        admin.create_flavor({"name": "rt2", "vcpus": 2, "ram": 1024, "extra_specs": {
            "hw:cpu_policy": "dedicated", "hw:cpu_realtime": "yes",
            "hw:cpu_realtime_mask": "^0"}})  # fmt: skip
        vm = alice.create_server("plc-1", "rt2", networks=["blue"])
        agent.report_state(vm.id, StateReport(
            state="active", rt=RtCheckDoc(state="verified", waived={"accel.kvm": "kvm_unusable"})
        ))  # fmt: skip
        m = alice.create_measurement({"kind": "cyclictest", "server": vm.id})
        latency = cyclictest.parse(SAMPLE.read_text()).to_dict()
        agent.report_measurement(m.id, MeasurementReport(state="running"))
        agent.report_measurement(m.id, MeasurementReport(
            state="done", result={"guest": "plc-1", "accel": "tcg", "latency": latency},
        ))  # fmt: skip
        yield {"url": url, "alice": alice_token, "server": vm.id, "measurement": m.id}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _login(d: WebDriver, url: str, token: str, lands_on: str) -> None:
    d.delete_all_cookies()
    d.get(f"{url}/ui/login")
    d.find_element(By.ID, "token").send_keys(token)
    d.find_element(By.ID, "go").click()
    WebDriverWait(d, 15).until(lambda x: x.current_url.endswith(lands_on))


def _shot(driver: WebDriver, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def test_an_operator_reads_the_dashboard_in_chromium(
    world: dict[str, str], browser: object
) -> None:
    from selenium.webdriver.common.by import By

    d = browser
    url = world["url"]
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    d.get(f"{url}/ui/login")
    d.find_element(By.ID, "token").send_keys("rtk_not-a-token")
    d.find_element(By.ID, "go").click()
    WebDriverWait(d, 10).until(lambda x: x.find_element(By.ID, "why").text)
    assert "unknown or revoked API token" in d.find_element(By.ID, "why").text
    _shot(d, "0-login-refused")

    _login(d, url, ADMIN, "/ui/hosts")
    body = d.find_element(By.TAG_NAME, "main").text
    assert "rt-node-1" in body and "ready" in body and "max 14445 µs" in body
    assert "emulated" in body  # the proof ran under TCG and says so
    _shot(d, "1-hosts")

    d.find_element(By.LINK_TEXT, "rt-node-1").click()
    cpus = d.find_elements(By.CSS_SELECTOR, ".cpu")
    assert len(cpus) == 8  # 2 nodes x 4 cores
    roles = {c.get_attribute("data-role") for c in cpus}
    assert {"housekeeping", "rt"} <= roles
    held = [c for c in cpus if "plc-1" in c.text]
    assert len(held) == 2 and {c.get_attribute("data-role") for c in held} == {"rt"}
    colour = held[0].value_of_css_property("background-color")
    assert colour != cpus[0].value_of_css_property("background-color") or roles == {"rt"}
    _shot(d, "2-host-partition-map")

    d.find_element(By.LINK_TEXT, "Servers").click()
    body = d.find_element(By.TAG_NAME, "main").text
    assert "plc-1" in body and "verified" in body and "blue" in body
    _shot(d, "3-servers")
    d.find_element(By.LINK_TEXT, "plc-1").click()
    body = d.find_element(By.TAG_NAME, "main").text
    assert "accel.kvm (kvm_unusable)" in body
    _shot(d, "4-server")

    d.find_element(By.LINK_TEXT, "Networks").click()
    body = d.find_element(By.TAG_NAME, "main").text
    assert "blue" in body and "rt-node-1" in body
    _shot(d, "5-networks")

    d.find_element(By.LINK_TEXT, "Measurements").click()
    body = d.find_element(By.TAG_NAME, "main").text
    assert world["measurement"][:8] in body and "TCG" in body
    assert d.find_element(By.ID, "report").get_attribute("href")
    _shot(d, "6-measurements")
    d.find_element(By.LINK_TEXT, world["measurement"][:8]).click()
    histogram = d.find_element(By.CSS_SELECTOR, "figure.histogram svg")
    assert histogram.size["width"] > 200 and histogram.size["height"] > 100
    assert "p99" in d.find_element(By.TAG_NAME, "main").text
    _shot(d, "7-measurement-histogram")

    _login(d, url, world["alice"], "/ui/servers")
    assert "plc-1" in d.find_element(By.TAG_NAME, "main").text
    d.get(f"{url}/ui/hosts")
    assert "admins only" in d.find_element(By.TAG_NAME, "main").text
    _shot(d, "8-member-no-hosts")
    assert len(list(ARTIFACTS.glob("*.png"))) == 9
