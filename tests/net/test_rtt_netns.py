"""sockperf round trip between two namespaces this test creates (a veth pair, no switch)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from rtkvm.cli.main import main
from rtkvm.net.rtt import render
from rtkvm.net.rttrun import NetnsEndpoint, measure
from rtkvm.testing.netpair import linked_namespaces

pytestmark = pytest.mark.e2e


def test_rtt_between_two_namespaces(capsys: pytest.CaptureFixture[str]) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to create network namespaces")
    assert shutil.which("sockperf"), "sockperf missing: run `make setup`"
    tag = os.getpid() % 10000
    with linked_namespaces(
        f"rtkvm-rtt-s{tag}",
        f"rtkvm-rtt-c{tag}",
        f"rtks{tag}",
        server_address="169.254.78.1/24",
        client_address="169.254.78.2/24",
    ) as (client_ns, server):
        report = measure(
            NetnsEndpoint(client_ns), NetnsEndpoint(server.netns), server.ip, seconds=2, mps=2000
        )
        print("\n" + render(report, histogram_rows=5))
        assert report.samples > 1000
        assert 0 < report.min_us <= report.percentiles[50.0] <= report.max_us
        assert sum(report.histogram.counts) == report.samples
        assert 99.99 in report.unresolved  # a few thousand samples cannot resolve 99.99

        # The same through the CLI, as JSON.
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            main(
                [
                    "net",
                    "rtt",
                    "--client-netns",
                    client_ns,
                    "--server-netns",
                    server.netns,
                    "--server-ip",
                    server.ip,
                    "--seconds",
                    "1",
                    "--mps",
                    "1000",
                    "-f",
                    "json",
                ]
            )
        assert exit_info.value.code == 0
        data = json.loads(capsys.readouterr().out)
        assert data["samples"] > 300 and data["min_us"] <= data["max_us"]
        assert sum(data["histogram"]["counts"]) == data["samples"]
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert client_ns not in listed and server.netns not in listed
