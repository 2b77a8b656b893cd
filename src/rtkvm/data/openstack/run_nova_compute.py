# Run by the all-in-one's OpenStack virtualenv (not by rtkvm's): nova-compute, with the
# <memoryBacking><locked/> element dropped from the guests it defines when rtkvm detected
# that libvirt cannot lock guest memory on this host (no CAP_SYS_RESOURCE: "cannot limit
# locked memory ... Operation not permitted"). Nova renders <locked/> for every
# hw:cpu_realtime flavor and has no option to leave it out. Arguments: DROP_LOCKED (1 or 0)
# then nova-compute's own. nova.cmd.compute must be imported before the libvirt driver
# (nova 34 runs in native threading mode and refuses an early eventlet import).
# Second argument, NO_MSIX (1 or 0): rtkvm's vhost_user_tcg_msix quirk is present (guests
# under TCG, where QEMU 7.2 crashes in msix_set_vector_notifiers when a guest brings up a
# vhost-user virtio-net device): each vhost-user NIC Nova defines gets vectors=0 (no MSI-X)
# through libvirt's QEMU namespace, as rtkvm does for its own guests.
import sys

drop_locked = sys.argv[1] == "1"
no_msix = sys.argv[2] == "1"
sys.argv = ["nova-compute", *sys.argv[3:]]

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

if no_msix:
    from lxml import etree
    from nova.virt.libvirt import driver as libvirt_driver

    QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"

    def vhost_user_without_msix(xml: str) -> str:
        root = etree.fromstring(xml)
        nics = root.findall("./devices/interface[@type='vhostuser']")
        if not nics:
            return xml
        if root.nsmap.get("qemu") != QEMU_NS:
            old, root = (
                root,
                etree.Element(
                    root.tag, attrib=dict(root.attrib), nsmap={**root.nsmap, "qemu": QEMU_NS}
                ),
            )
            root.text = old.text
            for child in list(old):
                root.append(child)
        override = etree.SubElement(root, f"{{{QEMU_NS}}}override")
        for index, nic in enumerate(nics):
            alias = nic.find("alias")
            if alias is None:
                alias = etree.SubElement(nic, "alias", name=f"ua-rtkvm-vhu{index}")
            device = etree.SubElement(override, f"{{{QEMU_NS}}}device", alias=alias.get("name"))
            frontend = etree.SubElement(device, f"{{{QEMU_NS}}}frontend")
            etree.SubElement(
                frontend, f"{{{QEMU_NS}}}property", name="vectors", type="unsigned", value="0"
            )
        return etree.tostring(root, encoding="unicode")

    original_xml = libvirt_driver.LibvirtDriver._get_guest_xml

    def guest_xml(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return vhost_user_without_msix(original_xml(self, *args, **kwargs))

    libvirt_driver.LibvirtDriver._get_guest_xml = guest_xml
    print("rtkvm: vhost-user NICs get vectors=0 (no MSI-X: QEMU under TCG)", flush=True)

compute.main()
