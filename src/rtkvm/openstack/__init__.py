"""rtkvm's side of OpenStack: the services it installs for development, tests and benchmarks."""
