"""rtkvm: real-time KVM for the masses.

The package computes, applies and verifies the tuning of real-time compute
nodes, designs and audits real-time guests, and manages them. This top-level
module only names the version; it must not import subpackages (keep
``import rtkvm`` free of side effects and cheap).
"""

__version__ = "0.1.0"
