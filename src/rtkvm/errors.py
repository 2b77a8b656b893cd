"""The one exception tree of rtkvm.

Every error rtkvm raises on purpose derives from :class:`RtkvmError` and
carries a message that tells the user what to change. The CLI turns these into
a one-line message and a non-zero exit code; anything else is a bug. This
module must not import anything from the rest of the package.
"""

from __future__ import annotations


class RtkvmError(Exception):
    """Base of every deliberate rtkvm error; ``str(e)`` is shown to the user."""


class InputError(RtkvmError):
    """Bad input from the user (a flag, a file, a request): say what to change."""


class CpuListError(InputError):
    """A CPU list or mask that does not parse; the message names the bad token."""


class HostReadError(RtkvmError):
    """A host file could not be read (missing, unreadable, malformed)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class HostWriteError(RtkvmError):
    """A host file could not be written; names the file and the reason."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"cannot write {path}: {reason}")
        self.path = path
        self.reason = reason


class DataError(RtkvmError):
    """Shipped or user-provided data (TOML profiles, checks) is invalid."""


class PlanError(InputError):
    """A partition request that the host cannot satisfy; says what fits."""


class RuntimeSetupError(RtkvmError):
    """libvirtd/QEMU could not be installed, configured or started; says what to do."""


class ImageError(RtkvmError):
    """The guest image could not be built (download, unpack, assemble)."""


class GuestError(RtkvmError):
    """A guest lifecycle step failed (define, start, stop, delete, console, measure)."""


class MeasureError(RtkvmError):
    """Measurement output could not be parsed or does not support the asked statistic."""


class DataplaneError(RtkvmError):
    """The RT switch (OVS-DPDK) could not be started, configured or verified; says why."""


class NetworkError(InputError):
    """A bad unmanaged network or host wiring (label, VLAN id, name); says what to change."""


class TuneError(RtkvmError):
    """Host tuning could not plan, apply, verify or roll back a setting; names both."""


class ApplyInterruptedError(TuneError):
    """Apply stopped before it finished (the fault-injection write budget ran out)."""


class WriteRefusedError(TuneError):
    """The host refused one tuning write; names the setting and the file."""

    def __init__(self, setting: str, path: str, reason: str) -> None:
        super().__init__(
            f"setting {setting}: cannot write {path}: {reason}. Nothing was written for it; "
            "earlier changes are journaled (`rtkvm host rollback` undoes them)."
        )
        self.setting = setting
        self.path = path
        self.reason = reason


class NoValidHostError(RtkvmError):
    """No host can take the guest; the message says why per class of host."""


class QuotaExceededError(RtkvmError):
    """The project's quota would be exceeded; says what it uses and what the guest needs."""


class InstanceGoneError(RtkvmError):
    """The instance left 'scheduling' (deleted) while it was being scheduled."""


class MeasureTimeoutError(RtkvmError):
    """A measurement did not end within --timeout (it goes on on its host)."""


class WaitTimeoutError(RtkvmError):
    """The server did not reach the state in time; says where it is."""


class CloudError(RtkvmError):
    """The control plane refused a request (or could not be reached); carries the HTTP status."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def transient(self) -> bool:
        """Worth retrying: the control plane was not reached or failed on its side."""
        return self.status is None or self.status >= 500

    @property
    def unauthorized(self) -> bool:
        """The credential was refused: retrying with it cannot help."""
        return self.status in (401, 403)


class NotRegisteredError(CloudError):
    """The control plane lost this host's registration: register again."""


class GuestBuildError(GuestError):
    """Building failed, and undoing it left something behind (named in the message)."""


class AllInOneError(RtkvmError):
    """A background process of ``rtkvm up`` could not be started or stopped; says why."""


class SpecError(InputError):
    """An RT guest spec (flavor) that cannot work; says which field to change."""


class DomainXMLError(InputError):
    """Domain XML that rtkvm cannot read: names the element and what is wrong."""


class OpenStackError(RtkvmError):
    """An OpenStack service (Keystone, Nova, Glance, Neutron) refused a request or could not
    be reached, or a clouds.yaml names no usable cloud; carries the HTTP status if any."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class PlacementError(RtkvmError):
    """OpenStack Placement refused a request or could not be reached; carries the status."""

    def __init__(self, message: str, status: int | None = None, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        """Placement's error code, e.g. ``placement.concurrent_update``."""


class ProviderGenerationError(PlacementError):
    """Another writer changed the resource provider since it was read: read it again."""
