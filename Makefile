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
# cfn-guard ships inside the npm package @cdklabs/cdk-validator-cfnguard (no Rust toolchain needed).
GUARD_DIR := .tools/cfn-guard
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

# Peer dependencies (aws-cdk-lib) are only for the package's CDK plugin, never used here.
$(GUARD_DIR)/.installed: requirements/cfn-guard/package.json requirements/cfn-guard/package-lock.json
	mkdir -p $(GUARD_DIR)
	cp requirements/cfn-guard/package.json requirements/cfn-guard/package-lock.json $(GUARD_DIR)/
	cd $(GUARD_DIR) && npm ci --legacy-peer-deps --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

.PHONY: install
install: $(VENV)/.installed $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed $(GUARD_DIR)/.installed ## Create the environments and tools (idempotent)

.PHONY: lint
lint: $(VENV)/.installed ## ruff + mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy layers/shared/redcap_ctl tests/testkit $$(find functions tests/local tests/bench tests/cost tests/smoke tests/preflight tests/loadtest -name "*.py")

.PHONY: unit
unit: $(VENV)/.installed ## pytest (everything but the image tests)
	$(VENV)/bin/pytest --ignore=tests/image

# ----- The REDCap image (containers/redcap; see docs/image.md) -----
REDCAP_ZIP ?=
RDS_CA_BUNDLE ?=
CONTAINER_ENV := CONTAINERS_CONF=$(CURDIR)/containers/podman/containers.conf
# The RDS CA bundle, fetched once when RDS_CA_BUNDLE is not given (needs internet access).
RDS_CA_URL   := https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem
RDS_CA_CACHE := .cache/rds-global-bundle.pem

.PHONY: container-tools
container-tools: ## Install podman and debootstrap if missing (root)
	.ci/install-container-tools

# `make image` checks REDCAP_ZIP first, while make reads this file: before container-tools installs
# anything or the CA bundle is downloaded, and also under `make -n` and `make -j` (a prerequisite
# would not be guaranteed to run first).
ifneq ($(filter image,$(MAKECMDGOALS)),)
ifeq ($(strip $(REDCAP_ZIP)),)
$(error REDCAP_ZIP=path/to/redcapX.Y.Z.zip is required: make image REDCAP_ZIP=redcapX.Y.Z.zip)
endif
ifneq ($(shell test -f '$(REDCAP_ZIP)' && echo file),file)
$(error REDCAP_ZIP=$(REDCAP_ZIP) is not a file: give the path of the REDCap release zip)
endif
endif

# `make smoke` checks STACK the same way, before it creates the test environment.
ifneq ($(filter smoke,$(MAKECMDGOALS)),)
ifeq ($(strip $(STACK)),)
$(error make smoke: STACK=name is required (the stack's name; REGION=... and CALLER_IP=... are optional))
endif
endif

.PHONY: image
image: container-tools $(if $(RDS_CA_BUNDLE),,$(RDS_CA_CACHE)) ## Build localhost/redcap:X.Y.Z: make image REDCAP_ZIP=redcapX.Y.Z.zip [RDS_CA_BUNDLE=global-bundle.pem]
	$(CONTAINER_ENV) containers/podman/base-image.sh
	$(CONTAINER_ENV) containers/redcap/build.sh --zip "$(REDCAP_ZIP)" --ca-bundle "$(or $(RDS_CA_BUNDLE),$(RDS_CA_CACHE))" --base-image localhost/debian-base:trixie

$(RDS_CA_CACHE):
	@mkdir -p $(dir $@)
	curl --fail --silent --show-error --max-time 30 -o $@.tmp $(RDS_CA_URL) || { rm -f $@.tmp; echo "Could not fetch the RDS CA bundle: download $(RDS_CA_URL) and pass RDS_CA_BUNDLE=path"; exit 2; }
	mv $@.tmp $@

.PHONY: image-lint
image-lint: $(VENV)/.installed ## Hadolint the Dockerfiles
	$(VENV)/bin/hadolint --config containers/redcap/.hadolint.yaml containers/redcap/Dockerfile tests/image/mariadb/Containerfile

.PHONY: image-test
image-test: $(VENV)/.installed container-tools image-lint ## Build from a stand-in release and test the image against MariaDB, SMTP and credentials stand-ins
	$(CONTAINER_ENV) $(VENV)/bin/pytest tests/image

# This repository's own cfn-lint rules (E9101: each service's resource-policy grammar; docs/security-checks.md).
CFNLINT_RULES := tests/testkit/cfnlint_rules

.PHONY: static
static: install ## cfn-lint (+ serverless rules, + resource-policy grammar), sam validate --lint, checkov, IAM data check, cfn-guard
	$(VENV)/bin/cfn-lint --append-rules cfn_lint_serverless.rules $(CFNLINT_RULES) -- template.yaml
	PYTHONPATH=layers/shared:tests $(PY) -m testkit.iam_check
	$(SAM_ENV) $(SAM) validate --lint --template template.yaml
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation -f template.yaml
	$(MAKE) --no-print-directory guard

.PHONY: guard
guard: $(VENV)/.installed $(GUARD_DIR)/.installed ## cfn-guard: guard/*.guard (HIPAA Security) over the template rendered for dev and prod
	PYTHONPATH=layers/shared:tests $(PY) -m testkit.guard

.PHONY: test
test: install lint unit image-test load-local static build-check ## Everything CI runs: lint, types, tests, the image, a 20 s local load run, template gates, sam build

.PHONY: build-check
build-check: build ## sam build, then check every function package and the layer were produced
	PYTHONPATH=layers/shared:tests $(PY) -m local.check_build

.PHONY: build
build: install ## sam build (layer + functions) for python3.13/arm64
	$(SAM_ENV) $(SAM) build --template template.yaml

# ----- Deploying (docs/runbook.md): only the SAM CLI, never checkov, cfn-guard or the test venv -----
# sam build's Python builder needs a python3.13 on PATH: the SAM CLI venv, made with Python 3.13, has one.
DEPLOY_ENVS := dev prod dev-express prod-express
ENV ?=
REGION ?=
DEPLOY_PATH := PATH=$(CURDIR)/$(SAM_VENV)/bin:$$PATH SAM_CLI_TELEMETRY=0
ifneq ($(filter deploy,$(MAKECMDGOALS)),)
ifneq ($(words $(ENV)) $(words $(filter $(ENV),$(DEPLOY_ENVS))),1 1)
$(error make deploy needs ENV=<one of: $(DEPLOY_ENVS)> (the samconfig.toml environment), e.g. make deploy ENV=prod)
endif
endif

.PHONY: deploy-tools
deploy-tools: $(SAM_VENV)/.installed ## Install only what deploying needs: the pinned SAM CLI in .tools/sam (Python 3.13)

.PHONY: deploy
deploy: $(SAM_VENV)/.installed ## sam build + sam deploy of one samconfig.toml environment: make deploy ENV=prod [REGION=eu-west-1]
	PYTHONPATH=tests $(SAM_VENV)/bin/python -m preflight $(ENV)
	$(DEPLOY_PATH) $(SAM) build --config-env $(ENV)
	$(DEPLOY_PATH) $(SAM) deploy --config-env $(ENV) $(if $(REGION),--region $(REGION))

.PHONY: lock
lock: ## Re-resolve the pinned requirements from requirements/*.in
	@echo "Edit requirements/*.in, then run: rm -rf .venv .tools && make install, and freeze each env into requirements/*.txt"

.PHONY: clean
clean: ## Remove build output and environments
	rm -rf .aws-sam $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache

# make local [COMPUTE=EcsExpress] [BREAK=service[,service]] [ONLY=area[,area]]: make itself rejects
# `make local --break x`, so the runner's options travel as variables (comma-separated lists).
comma := ,
.PHONY: local
local: $(VENV)/.installed ## Run every Lambda's real handler against local emulators [COMPUTE=EcsExpress] [DNS=CreateZone|External] [BREAK=service] [ONLY=area]
	PYTHONPATH=layers/shared:tests $(PY) -m local.run $(if $(COMPUTE),--compute $(COMPUTE)) $(if $(DNS),--dns $(DNS)) \
		$(foreach s,$(subst $(comma), ,$(BREAK)),--break $(s)) $(foreach a,$(subst $(comma), ,$(ONLY)),--only $(a))

.PHONY: smoke
smoke: $(VENV)/.installed ## Read-only check of a live stack with your AWS credentials: make smoke STACK=name [REGION=...] [CALLER_IP=...] (docs/smoke.md)
	PYTHONPATH=layers/shared:tests $(PY) -m smoke --stack "$(STACK)" $(if $(REGION),--region "$(REGION)") $(if $(CALLER_IP),--caller-ip "$(CALLER_IP)")

.PHONY: cost
cost: $(VENV)/.installed ## Monthly cost per environment and compute type; rewrites README.md's table
	PYTHONPATH=layers/shared:tests $(PY) -m cost.run --write

.PHONY: bench
bench: install bench-image bench-canary ## Benchmarks: cold start, peak memory, package sizes, custom-domain overhead, rotation time, the image
	PYTHONPATH=layers/shared:tests $(PY) -m bench.run

.PHONY: bench-canary
bench-canary: $(VENV)/.installed ## ECS Express canary rollback odds under Express's rule and REDCap's; rewrites tests/bench/canary-results.md
	PYTHONPATH=layers/shared:tests $(PY) -m bench.canary_alarm --write

# ----- Load tests (docs/performance.md#load-tests): Locust with REDCap's journeys -----
# make load URL=https://redcap.example.org [USERS=10] [MINUTES=5] [SURVEY=hash] [WAF_LIMIT=n | NO_WAF_PACING=1]
# make load-local [USERS=10] [MINUTES=...] [RECORD=1]: the local image; 20 seconds unless MINUTES is given.
USERS ?= 10
MINUTES ?=
LOAD_RUN := PYTHONPATH=layers/shared:tests $(PY) -m loadtest.run
ifneq ($(filter load,$(MAKECMDGOALS)),)
ifeq ($(strip $(URL)),)
$(error make load needs URL=https://<your stack's address> (make load-local runs against the local image))
endif
endif

.PHONY: load
load: $(VENV)/.installed ## Load test a live stack, paced below WAF's rate limit: make load URL=https://... [USERS=10] [MINUTES=5]
	$(LOAD_RUN) --url "$(URL)" --users $(USERS) $(if $(MINUTES),--minutes $(MINUTES)) $(if $(SURVEY),--survey "$(SURVEY)") \
		$(if $(WAF_LIMIT),--waf-limit $(WAF_LIMIT)) $(if $(NO_WAF_PACING),--no-waf-pacing)

.PHONY: load-local
load-local: $(VENV)/.installed container-tools ## Load test the local image (stand-in release, MariaDB), 20 s by default [RECORD=1]
	$(CONTAINER_ENV) $(LOAD_RUN) --local --users $(USERS) $(if $(MINUTES),--minutes $(MINUTES),--seconds 20) $(if $(RECORD),--record)

.PHONY: bench-image
bench-image: $(VENV)/.installed container-tools ## Image benchmarks: size, start-to-healthy, first install, request latency
	$(CONTAINER_ENV) PYTHONPATH=layers/shared:tests $(PY) -m bench.image
