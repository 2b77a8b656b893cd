"""The OpenStack all-in-one of ``rtkvm openstack up``: tests, demos, trials; not production."""
