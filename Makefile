# acs-call-recording: every command a platform engineer needs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The venv is built with Python 3.11 (the Function App's runtime; the pins are for it): python3.11
# when it is on PATH, else python3. Another interpreter: `make install PYTHON=/path/to/python3.11`.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || echo python3)
PYTHON_VERSION := 3.11
VENV := .venv
PY := $(VENV)/bin/python
# Each stamp lives inside what it stands for, so `rm -rf .venv` (or node_modules) also removes
# the stamp and the next `make install` (or `make test`) builds it again.
VENV_STAMPS := $(VENV)/.stamps
NPM_STAMP := node_modules/.npm-ci-done
STACK ?= dev
# `make up`: where the stack keeps its data and logs (default: a new temp dir, logs kept on exit),
# and the file a shell can `source` to use it (RECORDINGS_API_URL, RECORDINGS_FUNCTION_KEY, ...).
STATE_DIR ?=
ENV_FILE ?= .local/up.env
# `make up API_AUTH=entraId` (or both): the API takes Entra ID tokens of a local token issuer, and
# the env file lets the CLI sign in with azure-identity (see the README's "API authentication").
API_AUTH ?=
# `make deploy` and `make teardown` show the plan and ask before they change anything (pulumi's own
# prompt); YES=1 passes --yes (no question: CI, scripts).
YES ?=

.PHONY: help install test lint format local up package preview deploy teardown bench scan

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) \
		| sed -e 's/$$(STACK)/$(STACK)/g' -e 's/$$(ENV_FILE)/$(subst /,\/,$(ENV_FILE))/g' \
		| awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# Installs are stamped against the files that pin them, so a second `make test` installs nothing;
# the stamp sits inside the venv, so a deleted venv is built again.
# The interpreter is checked first: another version fails deep inside pip ("No matching
# distribution found"), and a .venv of the wrong version (left by such a run) is built anew.
$(VENV_STAMPS)/requirements: requirements.txt functions/requirements.txt
	@found="$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)"; \
	if [ "$$found" != "$(PYTHON_VERSION)" ]; then \
		echo "make install needs Python $(PYTHON_VERSION); PYTHON=$(PYTHON) is $${found:-not a working Python}." >&2; \
		echo "Install Python $(PYTHON_VERSION) and pass it: make install PYTHON=python$(PYTHON_VERSION) (or its full path)." >&2; \
		exit 2; \
	fi
	@if [ -e $(VENV) ] && [ "$$($(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" != "$(PYTHON_VERSION)" ]; then \
		echo "$(VENV) is not a Python $(PYTHON_VERSION) virtualenv: creating it again"; rm -rf $(VENV); \
	fi
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@mkdir -p $(VENV_STAMPS)
	@touch $@

# One way to import the repository's packages (scripts, local_runtime, recordings_cli, infra, ...)
# and the Function App's (functions/ is its deployed root) from any directory and any process of
# the venv: a .pth file in its site-packages. Rewritten when this Makefile changes.
$(VENV_STAMPS)/import-path: $(VENV_STAMPS)/requirements Makefile
	@printf '%s\n' "$(CURDIR)" "$(CURDIR)/functions" \
		> "$$($(PY) -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/acs_call_recording.pth"
	@touch $@

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

install: $(VENV_STAMPS)/requirements $(VENV_STAMPS)/import-path $(NPM_STAMP) ## Create .venv with pinned packages and install Azurite (npm ci)

test: install ## Run the whole test suite (starts and stops its own Azurite, emulator and API)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install ## ruff check, ruff format --check and actionlint on the workflows
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) scripts/actionlint.py

format: install ## Apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

local: install ## Run the whole pipeline on this machine, play the demo, stop everything
	@$(PY) -m scripts.local_stack demo $(if $(STATE_DIR),--state-dir "$(STATE_DIR)")

up: install ## Start the local stack and keep it running (Ctrl-C stops it); `source $(ENV_FILE)` to use it
	@$(PY) -m scripts.local_stack up $(if $(ENV_FILE),--env-file "$(ENV_FILE)") $(if $(STATE_DIR),--state-dir "$(STATE_DIR)") $(if $(API_AUTH),--api-auth "$(API_AUTH)")

package: install ## Build the Function App zip (dist/functionapp.zip), byte-identical across builds
	$(PY) -m scripts.build_package

preview: install ## pulumi preview of stack $(STACK) with the policy pack
	@$(PY) -m scripts.preflight --stack $(STACK)
	pulumi preview --stack $(STACK) --policy-pack policy --diff

deploy: install ## pulumi up of stack $(STACK): shows the plan and asks first (YES=1: no question)
	@$(PY) -m scripts.preflight --stack $(STACK)
	pulumi up --stack $(STACK) --policy-pack policy --diff $(if $(YES),--yes)

teardown: install ## pulumi destroy of stack $(STACK): asks first (YES=1: no question); the archive is kept
	@$(PY) -m scripts.preflight --stack $(STACK)
	pulumi destroy --stack $(STACK) $(if $(YES),--yes)

bench: install ## Benchmarks (emulator render/download, API latency, archiver throughput); figures go to the README
	$(PY) -m scripts.bench $(BENCH_ARGS)

# Checkov is a scanner, not a dependency of the project: it gets a virtualenv of its own.
SCAN_VENV := .local/scan-venv
CHECKOV := checkov==3.3.30

scan: install ## Checkov over ARM exports of the public and private stacks; fails on a finding the README does not accept
	@test -x $(SCAN_VENV)/bin/checkov || { $(PYTHON) -m venv $(SCAN_VENV) && $(SCAN_VENV)/bin/python -m pip install --quiet --disable-pip-version-check $(CHECKOV); }
	$(PY) -m scripts.scan --checkov $(SCAN_VENV)/bin/checkov --out-dir dist/scan
