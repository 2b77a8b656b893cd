"""Test helpers for real-time guests: in-memory hosts and plans, libvirt's schema check.

:func:`make_topology` builds a :class:`Topology` directly (no files) in the
Linux numbering (core k's threads are k, k + total cores, ...), one socket
per NUMA node, with free hugepages per node; :func:`make_plan` builds a
:class:`PartitionPlan` from list strings; :func:`validate_domain_xml` runs
libvirt's ``virt-xml-validate`` on a domain. This module must not read or
change the real host, and it makes no placement or design decision.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from rtkvm.cpuset import CpuSet
from rtkvm.host.partition import PartitionPlan
from rtkvm.host.topology import Core, HugepagePool, NumaNode, Topology


def make_topology(
    nodes: int = 1, cores_per_node: int = 8, smt: int = 1, free_2m: int = 1024, free_1g: int = 2
) -> Topology:
    """A host of ``nodes`` x ``cores_per_node`` cores with ``smt`` threads each."""
    total = nodes * cores_per_node
    cores: list[Core] = []
    node_list: list[NumaNode] = []
    for node in range(nodes):
        node_cpus: list[int] = []
        for k in range(node * cores_per_node, (node + 1) * cores_per_node):
            cpus = CpuSet(k + t * total for t in range(smt))
            cores.append(Core(package=node, core_id=k % cores_per_node, cpus=cpus, node=node))
            node_cpus.extend(cpus)
        pools = (HugepagePool(2048, free_2m, free_2m), HugepagePool(1048576, free_1g, free_1g))
        node_list.append(NumaNode(node, CpuSet(node_cpus), 16 << 20, 8 << 20, pools))
    cores.sort(key=lambda c: c.first_cpu)
    return Topology(CpuSet(range(total * smt)), tuple(cores), tuple(node_list), ())


def make_plan(housekeeping: str, rt_vcpu: str, dataplane: str = "") -> PartitionPlan:
    return PartitionPlan(
        housekeeping=CpuSet.parse(housekeeping),
        rt_vcpu=CpuSet.parse(rt_vcpu),
        dataplane=CpuSet.parse(dataplane),
    )


def validate_domain_xml(xml: str) -> tuple[bool, str]:
    """(valid, validator output) from libvirt's virt-xml-validate (package libvirt-clients).

    Raises FileNotFoundError when the validator is not installed.
    """
    tool = shutil.which("virt-xml-validate")
    if tool is None:
        raise FileNotFoundError("virt-xml-validate (Debian package libvirt-clients)")
    with tempfile.TemporaryDirectory(prefix="rtkvm-xml-") as tmp:
        target = Path(tmp) / "domain.xml"
        target.write_text(xml, encoding="utf-8")
        result = subprocess.run(
            [tool, str(target), "domain"], capture_output=True, text=True, check=False
        )
    return result.returncode == 0, (result.stdout + result.stderr).strip()
