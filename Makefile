# la-stack — the verbs. Every target runs `setup` first; tools live in .tools/ and .venv/.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV    := .venv
PY      := $(VENV)/bin/python
LASTACK := $(PY) -m lastack
export PATH := $(CURDIR)/.tools/bin:$(CURDIR)/$(VENV)/bin:$(PATH)
PYTEST_ARGS ?=

.PHONY: help setup deps lock lint test test-empty-cache test-render bench schema docs annotations render demo demo-down footprint
.PHONY: package publish bundle cluster-up cluster-down screenshots moodle-setup

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
	@$(LASTACK) services
	@$(PY) -m pytest $(PYTEST_ARGS)
	@# The whole-suite run also proves no verdict depends on the vendored archives.
	@$(if $(PYTEST_ARGS),true,$(LASTACK) test-empty-cache)

test-empty-cache: setup ## the render and live tiers again as a machine with an empty chart cache runs them
	@$(LASTACK) test-empty-cache

test-render: setup ## the render tier only
	@$(PY) -m pytest tests/render tests/tooling $(PYTEST_ARGS)

annotations: setup ## regenerate Chart.yaml's Artifact Hub images (needs `make deps`) and changes
	@$(LASTACK) annotations

render: setup ## print the validated render of the default values
	@$(LASTACK) render

schema: setup ## regenerate charts/la-stack/values.schema.json from values.yaml
	@$(LASTACK) schema

docs: setup ## regenerate charts/la-stack/README.md from its template and values.yaml
	@$(LASTACK) docs

bench: setup ## timings (render per Helm, render tier, operator builds, live lifecycle, ingest) and footprint
	@$(LASTACK) deps --allow-missing
	@$(LASTACK) bench
	@$(LASTACK) bench-ingest
	@$(LASTACK) bench-pipeline
	@$(LASTACK) footprint

cluster-up: setup ## start the local control plane and the ECK operator (built on first use); prints its KUBECONFIG
	@$(LASTACK) cluster-up

cluster-down: setup ## stop the local control plane and delete its data
	@$(LASTACK) cluster-down

demo: setup ## the stack on kind/k3d (or $$KUBECONFIG) with sample data; DRY_RUN=1: plan only; VALUES=f.yaml
	@$(LASTACK) demo $(if $(filter 1,$(DRY_RUN)),--dry-run) $(if $(VALUES),--values $(VALUES))

demo-down: setup ## remove what `make demo` installed (and the cluster, if it created one)
	@$(LASTACK) demo --down

screenshots: setup ## headless-Chromium screenshots of the starter dashboards into docs/screenshots/
	@$(LASTACK) screenshots

moodle-setup: ## write moodle-setup-$$SOURCE/ for a Moodle of lrs.sources (NAMESPACE, FULLNAME)
	@kubectl -n "$(or $(NAMESPACE),la-stack)" get configmap "$(or $(FULLNAME),la-stack)-moodle-setup" \
		-o jsonpath='{.data.$(SOURCE)\.sh}' | sh

footprint: setup ## CPU/memory requests and limits and storage per component, per values profile
	@$(LASTACK) footprint

package: setup ## write dist/la-stack-<version>.tgz with the subcharts (ALLOW_PARTIAL=1 if some absent)
	@$(LASTACK) package $(if $(filter 1,$(ALLOW_PARTIAL)),--allow-partial)

publish: setup ## helm push dist/ to REGISTRY=oci://host/path (REGISTRY_USERNAME/PASSWORD, PLAIN_HTTP=1, DIGEST_FILE)
	@$(LASTACK) publish --registry "$(REGISTRY)" $(if $(filter 1,$(PLAIN_HTTP)),--plain-http) \
		$(if $(DIGEST_FILE),--digest-file "$(DIGEST_FILE)") \
		$(if $(filter 1,$(ALLOW_PARTIAL)),--allow-partial)

bundle: setup ## write the air-gapped dist/la-stack-bundle-<version>.tar.gz (charts, images.txt)
	@$(LASTACK) bundle $(if $(filter 1,$(ALLOW_PARTIAL)),--allow-partial)
