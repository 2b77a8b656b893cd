"""A fake of rtkvm host clean's process, libvirt and account seams, for tests."""

from __future__ import annotations


class FakeSeams:
    """Records every call; ``fail`` names calls that report a problem."""

    def __init__(
        self, domains: tuple[str, ...] = (), tuning: int = 0, fail: tuple[str, ...] = ()
    ) -> None:
        self.domains = list(domains)
        self.tuning = tuning
        self.fail = fail
        self.calls: list[tuple[str, ...]] = []

    def _do(self, *call: str) -> list[str]:
        self.calls.append(call)
        return [f"{call[0]} refused"] if call[0] in self.fail else []

    def stop_allinone(self, state_dir: str) -> list[str]:
        return self._do("stop_allinone", state_dir)

    def stop_openstack(self, root: str) -> list[str]:
        return self._do("stop_openstack", root)

    def rtkvm_domains(self) -> list[str]:
        return list(self.domains)

    def delete_domain(self, name: str) -> list[str]:
        self.domains.remove(name)
        return self._do("delete_domain", name)

    def stop_switch(self, rundir: str) -> list[str]:
        return self._do("stop_switch", rundir)

    def delete_peer(self, netns: str, uplink: str) -> list[str]:
        return self._do("delete_peer", netns, uplink)

    def tuning_entries(self) -> int:
        return self.tuning

    def rollback_tuning(self) -> list[str]:
        self.tuning = 0
        return self._do("rollback_tuning")

    def stop_daemon(self, name: str, pidfile: str) -> list[str]:
        return self._do("stop_daemon", name, pidfile)

    def delete_account(self, kind: str, name: str) -> list[str]:
        return self._do("delete_account", kind, name)

    def stop_postgres(self, cluster_dir: str) -> list[str]:
        return self._do("stop_postgres", cluster_dir)
