# The two README commands work on a fresh machine with only Python 3.11+:
#   make demo   create .venv if missing, install the project, run `recovery demo`
#   make test   create .venv if missing, install the project with its test extras, run the whole suite
# The project is (re)installed when pyproject.toml is newer than the stamp file in .venv.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-recovery-helpers
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-k runner -x"`.
PYTEST_ARGS ?=
# pytest-xdist workers; each worker starts its own sandbox (session fixture).
WORKERS ?= 2

# Trials of the chaos soak (issue 15): `make soak SOAK_TRIALS=500`; CI's `make test` runs 12 of them.
SOAK_TRIALS ?= 200

.PHONY: demo test soak lint install clean

demo: $(STAMP)
	$(BIN)/recovery demo

test: $(STAMP)
	$(BIN)/pytest -n $(WORKERS) $(PYTEST_ARGS)

# The chaos soak: patch and undo SIGKILLed at random moments, an application writing in between, every write
# checked as the sandbox applies it (tests/chaos_support.py). Prints trials, kills, app writes, checked writes.
soak: $(STAMP)
	SOAK_TRIALS=$(SOAK_TRIALS) SOAK_VERBOSE=1 $(BIN)/pytest -p no:cacheprovider -s -q tests/test_chaos_soak.py

install: $(STAMP)

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || \
		{ echo "Python 3.11 or newer is needed: run make PYTHON=/path/to/python3.11 ..." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV) || \
		{ echo "could not create $(VENV): on Debian/Ubuntu install python3-venv" >&2; rm -rf $(VENV); exit 1; }

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

# Optional: ruff is installed on first use (it is not a project dependency).
lint: $(STAMP)
	@$(BIN)/python -m ruff --version >/dev/null 2>&1 || $(BIN)/python -m pip install --quiet ruff
	$(BIN)/python -m ruff check recovery_helpers tests

clean:
	rm -rf runs build dist .pytest_cache
