# The two README commands work on a fresh machine with only Python 3.11+:
#   make demo   create .venv if missing, install the project, run `recovery demo`
#   make test   create .venv if missing, install the project with its test extras, run the whole suite
# Also: make test-fast (unit tests, < 1 min), make lint (ruff check + format check, pinned ruff),
#       make check-appkit (a fresh venv with `pip install .` only: appkit imports with boto3 alone),
#       make docs (regenerate docs/reference/policies.md from the code),
#       make conformance (dynalite's DynamoDB suite against the sandbox, compared with the known differences;
#       needs Node.js 20+ and npm, installs the suite's pinned packages once with npm ci).
# The project is (re)installed when pyproject.toml is newer than the stamp file in .venv.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# `make demo` installs the runbook and the sandbox; `make test` everything (the test extra).
DEMO_STAMP := $(VENV)/.installed-recovery-helpers-demo
STAMP  := $(VENV)/.installed-recovery-helpers
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-k runner -x"`.
PYTEST_ARGS ?=
# pytest-xdist workers; each worker starts its own sandbox (session fixture).
WORKERS ?= 2

# Trials of the chaos soak (issue 15): `make soak SOAK_TRIALS=500`; CI's `make test` runs 12 of them.
SOAK_TRIALS ?= 200

.PHONY: demo test test-fast soak lint install clean check-appkit docs conformance

demo: $(DEMO_STAMP)
	$(BIN)/recovery demo

test: $(STAMP)
	$(BIN)/pytest -n $(WORKERS) $(PYTEST_ARGS)

# The unit tests only (tests/unit): each module against the sandbox, in under a minute.
test-fast: $(STAMP)
	$(BIN)/pytest -n $(WORKERS) -q tests/unit $(PYTEST_ARGS)

# The chaos soak: patch and undo SIGKILLed at random moments, an application writing in between, every write
# checked as the sandbox applies it (tests/chaos_support.py). Prints trials, kills, app writes, checked writes.
soak: $(STAMP)
	SOAK_TRIALS=$(SOAK_TRIALS) SOAK_VERBOSE=1 $(BIN)/pytest -p no:cacheprovider -s -q tests/integration/test_chaos_soak.py

install: $(STAMP)

# The suite's test packages, installed once from the npm registry (package-lock.json); nothing is fetched at run time.
CONFORMANCE_DIR := conformance/dynalite
$(CONFORMANCE_DIR)/node_modules/.installed: $(CONFORMANCE_DIR)/package-lock.json
	cd $(CONFORMANCE_DIR) && npm ci --no-audit --no-fund --ignore-scripts
	@touch $@

# Extra arguments, e.g. `make conformance CONFORMANCE_ARGS="--suites getItem query --failures"`.
CONFORMANCE_ARGS ?=
conformance: $(STAMP) $(CONFORMANCE_DIR)/node_modules/.installed
	$(BIN)/python conformance/run.py $(CONFORMANCE_ARGS)

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || \
		{ echo "Python 3.11 or newer is needed: run make PYTHON=/path/to/python3.11 ..." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV) || \
		{ echo "could not create $(VENV): on Debian/Ubuntu install python3-venv" >&2; rm -rf $(VENV); exit 1; }

$(DEMO_STAMP): pyproject.toml setup.py | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[runbook,sandbox]'
	@touch $(DEMO_STAMP)

$(STAMP): pyproject.toml setup.py | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP) $(DEMO_STAMP)

# ruff comes pinned with the test extra (pyproject.toml), so every machine lints alike.
lint: $(STAMP)
	$(BIN)/ruff check recovery_helpers tests bench tools conformance/run.py
	$(BIN)/ruff check notebooks  # lint only: the notebooks' cells are laid out by hand (parameters cells)
	$(BIN)/ruff format --check recovery_helpers tests bench tools

# What an application installs: a fresh venv, `pip install .` (boto3 and botocore only), then appkit imports.
APPKIT_VENV := build/appkit-venv
check-appkit:
	rm -rf $(APPKIT_VENV)
	$(PYTHON) -m venv $(APPKIT_VENV)
	$(APPKIT_VENV)/bin/python -m pip install --quiet .
	cd $(APPKIT_VENV) && bin/python $(CURDIR)/.ci/check_install.py

# The policy tables of docs/reference/policies.md are generated from recovery_helpers/resources/policies.py.
docs: $(STAMP)
	$(BIN)/python -m recovery_helpers.docs

clean:
	rm -rf runs build dist .pytest_cache
