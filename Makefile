# la-stack — the verbs. Every target runs `setup` first; tools live in .tools/ and .venv/.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV    := .venv
PY      := $(VENV)/bin/python
LASTACK := $(PY) -m lastack
export PATH := $(CURDIR)/.tools/bin:$(CURDIR)/$(VENV)/bin:$(PATH)
PYTEST_ARGS ?=

.PHONY: help setup deps lock lint test test-render bench schema docs render demo

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

setup: ## create .venv and build the pinned tools (idempotent, quick when nothing changed)
	@bash scripts/setup.sh

deps: setup ## vendor the subchart archives (chart repositories, else $$LA_STACK_CHART_CACHE)
	@$(LASTACK) deps

lock: setup ## rewrite Chart.lock after changing dependencies in Chart.yaml
	@$(LASTACK) lock

lint: setup ## helm lint --strict (Helm 3 and 4), ct lint, yamllint, ruff
	@$(LASTACK) lint

test: setup ## lint, then every test tier that can run here
	@$(LASTACK) deps --allow-missing
	@$(LASTACK) lint
	@$(PY) -m pytest $(PYTEST_ARGS)

test-render: setup ## the render tier only
	@$(PY) -m pytest tests/render tests/tooling $(PYTEST_ARGS)

render: setup ## print the validated render of the default values
	@$(LASTACK) render

bench: setup ## print render timings (Helm 3 vs Helm 4) and the render tier's wall time
	@$(LASTACK) deps --allow-missing
	@$(LASTACK) bench

demo: setup ## the whole stack on a local kind/k3d cluster (being built)
	@echo "make demo is not available yet: the demo script lands with the demo profile." >&2; exit 1
