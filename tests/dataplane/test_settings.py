"""The shipped data plane TOML loads, every entry has a reason, and bad data is refused."""

from __future__ import annotations

import pytest

from rtkvm.dataplane.settings import load_settings
from rtkvm.errors import DataError


def test_shipped_settings() -> None:
    s = load_settings()
    assert s.pmd_policy == "fifo" and 1 <= s.pmd_priority < 50
    assert s.hugepages_per_node == 288  # (512 MiB + 64 MiB headroom) of 2 MiB pages
    keys = {e.key for e in s.other_config}
    assert {"dpdk-init", "pmd-cpu-mask", "dpdk-lcore-mask", "dpdk-socket-mem"} <= keys
    assert all(e.why.strip() for e in s.other_config)
    assert [d.package for d in s.required_drivers] == [
        "librte-mempool-ring23",
        "librte-net-af-packet23",
    ]
    assert (s.uplink_port, s.uplink_devargs.split(",")[0]) == (
        "up-{physnet}",
        "net_af_packet_{physnet}",
    )


def _shipped_with(old: str, new: str) -> str:
    from importlib import resources

    text = resources.files("rtkvm.data").joinpath("dataplane.toml").read_text("utf-8")
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('policy = "fifo"', 'policy = "deadline"', "pmd.policy"),
        ("priority = 1", "priority = 120", "outside 1..99"),
        ('why = "Initialise DPDK', 'why = " "\nx = "', "has no 'why'"),
        ("[hugepages]", "[hugepagez]", "hugepages"),
    ],
)
def test_bad_settings(old: str, new: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_settings(_shipped_with(old, new))


def test_not_toml() -> None:
    with pytest.raises(DataError, match="not valid TOML"):
        load_settings("[[[")


def test_shipped_pmd_priority_is_the_host_scales() -> None:
    """The data plane owns the PMD priority; it is rtkvm.priorities.PMD_DEFAULT."""
    from rtkvm import priorities
    from rtkvm.dataplane.settings import load_settings

    settings = load_settings()
    assert (settings.pmd_policy, settings.pmd_priority) == ("fifo", priorities.PMD_DEFAULT)
    assert settings.pmd_priority <= priorities.KERNEL_DEFAULT_FIFO < priorities.RT_BAND_MIN
