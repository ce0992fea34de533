# OpenDeploy — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CLUSTER_DIR ?= .cluster
PORT_BASE ?= 7400
AGENTS ?= 3
TEST_WORKERS ?= 2
# make test runs test files in TEST_WORKERS processes (pytest-xdist; each module has its own
# servers, ports and PostgreSQL database, so files never share state).
PROTOS := $(wildcard protos/deploy/v1/*.proto)
CLUSTER := $(BIN)/python -m deploy.localcluster --dir $(CLUSTER_DIR) --port-base $(PORT_BASE) --agents $(AGENTS)

.PHONY: help venv protos protos-check lint test unit integration cluster demo down bench chaos clean

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP) ## Create .venv and install OpenDeploy with its development tools

protos: $(STAMP) ## Regenerate deploy/v1 from protos/ (never edit deploy/v1 by hand)
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python -m grpc_tools.protoc -Iprotos \
	  --python_out=. --grpc_python_out=. --mypy_out=. --mypy_grpc_out=. $(PROTOS)

protos-check: $(STAMP) ## Fail if deploy/v1 is not what `make protos` generates
	@tmp=$$(mktemp -d) && trap 'rm -rf $$tmp' EXIT && \
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python -m grpc_tools.protoc -Iprotos \
	  --python_out=$$tmp --grpc_python_out=$$tmp --mypy_out=$$tmp --mypy_grpc_out=$$tmp \
	  $(PROTOS) >/dev/null 2>&1 && \
	for f in $$tmp/deploy/v1/*; do \
	  cmp -s $$f deploy/v1/$$(basename $$f) || { echo "deploy/v1/$$(basename $$f) is stale: run make protos"; exit 1; }; \
	done && echo "deploy/v1 is up to date"

lint: $(STAMP) ## ruff format check, ruff, mypy
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy services agent deploy

test: $(STAMP) protos-check ## The whole test suite, as CI runs it (SQLite and PostgreSQL)
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile

unit: $(STAMP) ## Unit tests only (fast, pure)
	$(BIN)/pytest -q tests/unit

cluster: $(STAMP) ## Local cluster: services behind HAProxy, AGENTS agents (CLUSTER_DIR, PORT_BASE)
	$(CLUSTER) up

demo: $(STAMP) ## From a fresh clone: start the cluster and deploy examples/hello-web to it
	@if ! ls $(CLUSTER_DIR)/pids/*.pid >/dev/null 2>&1; then $(CLUSTER) up; fi
	$(CLUSTER) demo

down: ## Stop exactly what `make cluster` started in CLUSTER_DIR
	@if [ -x $(BIN)/python ]; then $(CLUSTER) down; else echo "nothing to stop"; fi

bench: $(STAMP) ## Issue 16's six figures: latency, scale (SIM_AGENTS), idle streams (IDLE_AGENTS), a large bundle, beside pyinfra and Ansible
	$(BIN)/pip install -q -e '.[dev,bench]'
	$(BIN)/python -m bench.deploy_latency
	$(BIN)/python -m bench.fleet_scale --agents $(or $(SIM_AGENTS),10 100 1000)
	$(BIN)/python -m bench.idle_streams --agents $(or $(IDLE_AGENTS),10000)
	$(BIN)/python -m bench.bundle_transfer
	$(BIN)/python -m bench.peers

chaos: $(STAMP) ## Deployments under 100 random SIGKILLs of services and agents; prints invariants
	$(BIN)/python -m bench.chaos --kills $(or $(KILLS),100)

clean: down ## Remove the venv and local state
	rm -rf $(VENV) $(CLUSTER_DIR) .opendeploy
