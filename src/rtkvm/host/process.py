"""What this process may do: capabilities, memlock limit, cgroups, /dev/kvm.

Reads CapEff from /proc/self/status (named with the kernel's capability
numbers), "Max locked memory" from /proc/self/limits, the cgroup layout from
/proc/mounts (v1, v2 or hybrid), whether RT group scheduling is active
(cpu.rt_runtime_us at the root of the v1 cpu controller: libvirt's vCPU
threads then cannot get SCHED_FIFO unless their group gets an RT budget),
and whether /dev/kvm exists. Parsers are pure; this module must not change
limits, cgroups or capabilities.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtkvm.hostfs import HostFS, Unknown

STATUS_PATH = "/proc/self/status"
LIMITS_PATH = "/proc/self/limits"
MOUNTS_PATH = "/proc/mounts"
KVM_PATH = "/dev/kvm"
CGROUP_ROOT = "/sys/fs/cgroup"
RT_GROUP_CANDIDATES = (f"{CGROUP_ROOT}/cpu", f"{CGROUP_ROOT}/cpu,cpuacct")

CAPABILITY_NAMES = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
"""Capability names indexed by bit number (include/uapi/linux/capability.h)."""


@dataclass(frozen=True)
class CgroupMount:
    path: str
    fstype: str
    """``cgroup`` (v1) or ``cgroup2``."""
    controllers: tuple[str, ...]
    """v1 controllers from the mount options; () for cgroup2."""


@dataclass(frozen=True)
class ProcessReport:
    capabilities: frozenset[str] | Unknown
    memlock_soft: int | Unknown | None
    """Bytes; None = unlimited."""
    memlock_hard: int | Unknown | None
    cgroup_version: str | Unknown
    """``v1``, ``v2`` or ``hybrid``."""
    cgroup_mounts: tuple[CgroupMount, ...] | Unknown
    rt_group_sched: bool | Unknown
    rt_group_path: str | None
    """The cpu.rt_runtime_us file found; None when RT group scheduling is off."""
    kvm_present: bool


_V1_OPTIONS = frozenset(
    {"rw", "ro", "nosuid", "nodev", "noexec", "relatime", "noatime", "clone_children"}
)


# -- pure parsers ---------------------------------------------------------------------


def parse_capabilities(status: str) -> frozenset[str]:
    """Names of the effective capabilities in /proc/PID/status; raises ValueError.

    Bits beyond the names rtkvm knows become ``CAP_<bit>``.
    """
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key == "CapEff":
            try:
                bits = int(value.strip(), 16)
            except ValueError:
                raise ValueError(f"CapEff is not hex: {value.strip()!r}") from None
            return frozenset(
                CAPABILITY_NAMES[i] if i < len(CAPABILITY_NAMES) else f"CAP_{i}"
                for i in range(bits.bit_length())
                if bits >> i & 1
            )
    raise ValueError("no CapEff line")


def parse_memlock(limits: str) -> tuple[int | None, int | None]:
    """(soft, hard) bytes of "Max locked memory"; None = unlimited; raises ValueError."""
    for line in limits.splitlines():
        if line.startswith("Max locked memory"):
            words = line[len("Max locked memory") :].split()
            if len(words) < 2:
                raise ValueError(f"short limits line {line!r}")
            return _limit(words[0]), _limit(words[1])
    raise ValueError("no 'Max locked memory' line")


def _limit(word: str) -> int | None:
    if word == "unlimited":
        return None
    try:
        return int(word)
    except ValueError:
        raise ValueError(f"limit {word!r} is neither a number nor 'unlimited'") from None


def parse_cgroup_mounts(mounts: str) -> tuple[CgroupMount, ...]:
    """cgroup and cgroup2 entries of /proc/mounts, in order."""
    found: list[CgroupMount] = []
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[2] not in ("cgroup", "cgroup2"):
            continue
        controllers: tuple[str, ...] = ()
        if fields[2] == "cgroup":
            controllers = tuple(
                opt for opt in fields[3].split(",") if opt not in _V1_OPTIONS and "=" not in opt
            )
        found.append(CgroupMount(_unescape(fields[1]), fields[2], controllers))
    return tuple(found)


def _unescape(path: str) -> str:
    """Undo /proc/mounts octal escapes (``\\040`` for a space)."""
    return path.replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")


def cgroup_version(mounts: tuple[CgroupMount, ...]) -> str | None:
    """``v1``, ``v2`` or ``hybrid``; None when no cgroup filesystem is mounted."""
    v1 = any(m.fstype == "cgroup" and m.controllers for m in mounts)
    v2 = any(m.fstype == "cgroup2" for m in mounts)
    if v1 and v2:
        return "hybrid"
    if v1:
        return "v1"
    if v2:
        return "v2"
    return None


# -- readers --------------------------------------------------------------------------


def read_rt_group_sched(
    fs: HostFS, mounts: tuple[CgroupMount, ...] | Unknown
) -> tuple[bool, str | None]:
    """Whether cpu.rt_runtime_us exists at the root of the v1 cpu controller."""
    candidates = list(RT_GROUP_CANDIDATES)
    if not isinstance(mounts, Unknown):
        candidates = [m.path for m in mounts if "cpu" in m.controllers] + candidates
    for directory in dict.fromkeys(candidates):
        path = f"{directory}/cpu.rt_runtime_us"
        if fs.exists(path):
            return True, path
    return False, None


def read_process(fs: HostFS) -> ProcessReport:
    capabilities: frozenset[str] | Unknown
    status = fs.read_maybe(STATUS_PATH)
    if isinstance(status, Unknown):
        capabilities = status
    else:
        try:
            capabilities = parse_capabilities(status)
        except ValueError as exc:
            capabilities = Unknown(STATUS_PATH, str(exc))

    soft: int | Unknown | None
    hard: int | Unknown | None
    limits = fs.read_maybe(LIMITS_PATH)
    if isinstance(limits, Unknown):
        soft = hard = limits
    else:
        try:
            soft, hard = parse_memlock(limits)
        except ValueError as exc:
            soft = hard = Unknown(LIMITS_PATH, str(exc))

    mounts: tuple[CgroupMount, ...] | Unknown
    version: str | Unknown
    text = fs.read_maybe(MOUNTS_PATH)
    if isinstance(text, Unknown):
        mounts = version = text
    else:
        mounts = parse_cgroup_mounts(text)
        version = cgroup_version(mounts) or Unknown(MOUNTS_PATH, "no cgroup filesystem mounted")
    rt_group, rt_path = read_rt_group_sched(fs, mounts)
    return ProcessReport(
        capabilities=capabilities,
        memlock_soft=soft,
        memlock_hard=hard,
        cgroup_version=version,
        cgroup_mounts=mounts,
        rt_group_sched=rt_group,
        rt_group_path=rt_path,
        kvm_present=fs.exists(KVM_PATH),
    )
