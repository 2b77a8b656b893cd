"""The doctor's experiments, run in a short-lived child process; prints one JSON object.

``python -m rtkvm.host.experiment_child [--kvm]`` tries, in this process only:

- ``sched_fifo``: SCHED_FIFO priority 1 for itself (what libvirt asks for an RT
  vCPU), then back to SCHED_OTHER;
- ``memlock``: raising RLIMIT_MEMLOCK to unlimited (what libvirt does for a guest
  with ``<locked/>``; it needs CAP_SYS_RESOURCE) and locking 64 MiB;
- ``kvm_vcpu`` (with ``--kvm``): a KVM VM and one vCPU through /dev/kvm's ioctls.

Each prints ``{"ok": true|false, "detail": "..."}`` under its name. Run only by
:mod:`rtkvm.host.experiments`; it must not touch anything outside itself and
exits when done.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import mmap
import os
import resource
import sys

KVM_GET_API_VERSION = 0xAE00
KVM_CREATE_VM = 0xAE01
KVM_CREATE_VCPU = 0xAE41
LOCK_BYTES = 64 * 1024 * 1024


def sched_fifo() -> tuple[bool, str]:
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except OSError as exc:
        return False, (
            f"sched_setscheduler(SCHED_FIFO, 1) was refused to a child process of uid "
            f"{os.getuid()}: {os.strerror(exc.errno or 0)} (errno {exc.errno})"
        )
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    return True, "a child process ran at SCHED_FIFO priority 1"


def memlock() -> tuple[bool, str]:
    try:
        unlimited = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
        resource.setrlimit(resource.RLIMIT_MEMLOCK, unlimited)
    except (ValueError, OSError) as exc:
        return False, (
            f"raising RLIMIT_MEMLOCK to unlimited was refused ({exc}); libvirt does that "
            "for a guest with <locked/>, which needs CAP_SYS_RESOURCE"
        )
    libc = ctypes.CDLL(None, use_errno=True)
    area = mmap.mmap(-1, LOCK_BYTES)
    address = ctypes.addressof(ctypes.c_char.from_buffer(area))
    if libc.mlock(ctypes.c_void_p(address), ctypes.c_size_t(LOCK_BYTES)) != 0:
        err = ctypes.get_errno()
        return False, f"mlock of 64 MiB failed: {os.strerror(err)} (errno {err})"
    libc.munlock(ctypes.c_void_p(address), ctypes.c_size_t(LOCK_BYTES))
    return True, "a child raised its memlock limit to unlimited and locked 64 MiB"


def kvm_vcpu() -> tuple[bool, str]:
    try:
        kvm = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        return False, f"/dev/kvm cannot be opened: {os.strerror(exc.errno or 0)}"
    try:
        version = fcntl.ioctl(kvm, KVM_GET_API_VERSION, 0)
        vm = fcntl.ioctl(kvm, KVM_CREATE_VM, 0)
        vcpu = fcntl.ioctl(vm, KVM_CREATE_VCPU, 0)
    except OSError as exc:
        return False, f"KVM refused a VM or a vCPU: {os.strerror(exc.errno or 0)}"
    os.close(vcpu)
    os.close(vm)
    os.close(kvm)
    return True, f"a KVM VM with one vCPU was created (KVM API {version})"


def main() -> None:
    trials = {"memlock": memlock, "sched_fifo": sched_fifo}
    if "--kvm" in sys.argv[1:]:
        trials["kvm_vcpu"] = kvm_vcpu
    out = {}
    for name, trial in trials.items():
        try:
            ok, detail = trial()
        except Exception as exc:  # an experiment that breaks says so; the others still run
            ok, detail = False, f"the experiment failed: {type(exc).__name__}: {exc}"
        out[name] = {"ok": ok, "detail": detail}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
