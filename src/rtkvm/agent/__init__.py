"""The node agent: one per compute node, the API's hands on the host.

``inventory`` builds the registration payload from the host's facts,
``executor`` creates and deletes guests (guest and data plane layers),
``reconcile`` compares what libvirt and the switch run with the API's view,
``loop`` registers, heartbeats, polls work and dispatches it. libvirt and the
switch sit behind the small protocols of ``hypervisor`` and ``switch``, so
that the agent is tested with fakes or libvirt's test driver.
"""
