# Run by the all-in-one's OpenStack virtualenv (not by rtkvm's): nova-compute, with the
# <memoryBacking><locked/> element dropped from the guests it defines when rtkvm detected
# that libvirt cannot lock guest memory on this host (no CAP_SYS_RESOURCE: "cannot limit
# locked memory ... Operation not permitted"). Nova renders <locked/> for every
# hw:cpu_realtime flavor and has no option to leave it out. Arguments: DROP_LOCKED (1 or 0)
# then nova-compute's own. nova.cmd.compute must be imported before the libvirt driver
# (nova 34 runs in native threading mode and refuses an early eventlet import).
import sys

drop_locked = sys.argv[1] == "1"
sys.argv = ["nova-compute", *sys.argv[2:]]

from nova.cmd import compute  # noqa: E402

if drop_locked:
    from nova.virt.libvirt import driver

    original = driver.LibvirtDriver._get_guest_memory_backing_config

    def without_locked(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        backing = original(self, *args, **kwargs)
        if backing is not None:
            backing.locked = False
        return backing

    driver.LibvirtDriver._get_guest_memory_backing_config = without_locked
    print("rtkvm: <locked/> left out of Nova's guests (no CAP_SYS_RESOURCE here)", flush=True)

compute.main()
