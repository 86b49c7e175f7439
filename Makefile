# One entry point for setup, tests and running the stack. Every target that needs
# Python creates or refreshes .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help venv run test lint typecheck format bench gpu-check clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	# The CPU build of torch goes in first, alone, so nothing else resolves another build.
	$(PIP) install -q "torch==2.13.0"
	# nvidia-ml-py (the gpu extra) imports without a GPU: its readings are tested everywhere.
	# ray: the Ray runner's tests start a local cluster (tests/sessions/test_ray_cluster.py).
	$(PIP) install -q -e ".[dev,gpu,ray]"
	touch $@

venv: $(VENV)/.installed  ## Create or refresh .venv

# Options for the stack go in ARGS: make run ARGS="--host-port 17001 --show-health-checks"
ARGS ?=

run: venv  ## Start the host service (:5002) and the backend (:8000) with sample data; options in ARGS="..."
	$(PY) deploy/local_stack.py $(ARGS)

# Test processes for make test: most tests wait on the servers and workers they start, so two
# overlap well on two cores; the Ray tests share one cluster and run in one of them.
TEST_WORKERS ?= 2

test: venv  ## Run lint, import contracts, type checks and the whole test suite
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-logo
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadgroup

lint: venv  ## ruff lint and format check, import contracts
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-logo

typecheck: venv  ## mypy
	$(VENV)/bin/mypy

format: venv  ## Apply ruff formatting and safe fixes
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: venv  ## Run the benchmarks (by hand; figures go in docs/benchmarks.md)
	$(PY) bench/engine_throughput.py
	$(PY) bench/host_service.py
	$(PY) bench/event_streams.py
	$(PY) bench/proxy.py

gpu-check: venv  ## On a GPU machine: GPU tests, resume, bench, sessions; figures into docs/benchmarks.md
	$(PY) bench/gpu_check.py $(ARGS)

clean:  ## Remove .venv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
