# rtkvm: the two commands a user needs are `make demo` and `make test`.
# Both run `make setup` first, which is idempotent and installs everything
# from scratch on Debian 12 as root (apt packages, the virtualenv).

VENV    ?= .venv
PY      := $(VENV)/bin/python
RTKVM   := $(VENV)/bin/rtkvm
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: setup demo openstack-demo test lint unit bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	@bash scripts/demo.sh

# rtkvm as the RT layer of a real OpenStack (Nova, Placement, Keystone, Glance, Neutron from
# PyPI, started by rtkvm): RT servers booted through Nova; summary in openstack-demo-output/
openstack-demo: setup
	$(PY) scripts/openstack_demo.py

lint: setup
	$(VENV)/bin/ruff check src tests scripts benchmarks
	$(VENV)/bin/ruff format --check src tests scripts benchmarks
	$(VENV)/bin/mypy

unit: setup
	$(VENV)/bin/pytest -q -m "not e2e and not integration"

test: setup lint
	$(VENV)/bin/pytest -q

bench: setup
	$(PY) benchmarks/host_layer.py
	$(PY) benchmarks/scheduler.py --postgresql --placement
	$(PY) benchmarks/api_throughput.py
	$(PY) benchmarks/console.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info src/*.egg-info
