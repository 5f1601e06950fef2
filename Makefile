# One entry point for humans and CI. The test environment (.venv) runs Python 3.13,
# the Lambda runtime; SAM CLI and checkov live in their own environments under
# .tools/ because they pin old boto3/packaging versions.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON313 ?= $(shell .ci/find-python313)
VENV      := .venv
PY        := $(VENV)/bin/python
SAM_VENV  := .tools/sam
CHECKOV_VENV := .tools/checkov
SAM       := $(SAM_VENV)/bin/sam
# sam build looks for "python3.13" on PATH: the 3.13 venv provides it.
SAM_ENV   := PATH=$(CURDIR)/$(VENV)/bin:$$PATH SAM_CLI_TELEMETRY=0
PIP_QUIET := --quiet --disable-pip-version-check

.PHONY: help
help: ## Show the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements/dev.txt
	$(PYTHON313) -m venv $(VENV)
	$(PY) -m pip install $(PIP_QUIET) -r requirements/dev.txt
	touch $@

$(SAM_VENV)/.installed: requirements/sam.txt
	$(PYTHON313) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install $(PIP_QUIET) -r requirements/sam.txt
	touch $@

$(CHECKOV_VENV)/.installed: requirements/checkov.txt
	$(PYTHON313) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install $(PIP_QUIET) -r requirements/checkov.txt
	touch $@

.PHONY: install
install: $(VENV)/.installed $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed ## Create all three environments (idempotent)

.PHONY: lint
lint: $(VENV)/.installed ## ruff + mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy layers/shared/redcap_ctl tests/testkit $$(find functions tests/local tests/bench tests/cost -name "*.py")

.PHONY: unit
unit: $(VENV)/.installed ## pytest only
	$(VENV)/bin/pytest

.PHONY: static
static: install ## cfn-lint (+ serverless rules), sam validate --lint, checkov
	$(VENV)/bin/cfn-lint --append-rules cfn_lint_serverless.rules -- template.yaml
	$(SAM_ENV) $(SAM) validate --lint --template template.yaml
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation -f template.yaml

.PHONY: test
test: install lint unit static build-check ## Everything CI runs: lint, types, tests, template gates, sam build

.PHONY: build-check
build-check: build ## sam build, then check every function package and the layer were produced
	PYTHONPATH=layers/shared:tests $(PY) -m local.check_build

.PHONY: build
build: install ## sam build (layer + functions) for python3.13/arm64
	$(SAM_ENV) $(SAM) build --template template.yaml

.PHONY: lock
lock: ## Re-resolve the pinned requirements from requirements/*.in
	@echo "Edit requirements/*.in, then run: rm -rf .venv .tools && make install, and freeze each env into requirements/*.txt"

.PHONY: clean
clean: ## Remove build output and environments
	rm -rf .aws-sam $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache

.PHONY: local
local: $(VENV)/.installed ## Run every Lambda's real handler against local emulators (COMPUTE=EcsExpress for the Express path)
	PYTHONPATH=layers/shared:tests $(PY) -m local.run $(if $(COMPUTE),--compute $(COMPUTE))

.PHONY: cost
cost: $(VENV)/.installed ## Monthly cost per environment and compute type; rewrites README.md's table
	PYTHONPATH=layers/shared:tests $(PY) -m cost.run --write

.PHONY: bench
bench: install ## Benchmarks: cold start, peak memory, package sizes, custom-domain overhead, rotation time
	PYTHONPATH=layers/shared:tests $(PY) -m bench.run
