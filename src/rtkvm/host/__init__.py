"""The compute-node layer: inspect, check, plan (and later tune) one host.

Everything here reads the host through :class:`rtkvm.hostfs.HostFS`; nothing in
this package opens a host path directly.
"""
