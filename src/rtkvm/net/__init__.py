"""Unmanaged L2 networks, host wiring, LLDP cross-checks and round-trip measurement."""
