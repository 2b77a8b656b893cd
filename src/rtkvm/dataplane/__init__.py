"""The RT data plane: OVS-DPDK with vhost-user ports, behind a describe/plug/unplug contract."""
