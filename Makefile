# The two commands of the README: `make demo` and `make test`. Both set everything up first.
# Another Python: `make test-fast PYTHON=/path/to/python3.12 VENV=.venv-3.12` (.ci/run does 3.12 and 3.13).
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# uv installs the locked stack (uv.lock). uv itself is installed once per user and version with
# $(PYTHON)'s pip, next to uv's own cache (a fresh clone then sets up in seconds), and found by the tests.
UV_VERSION := 0.13.8
TOOLS ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/tfsconvert/uv-$(UV_VERSION)
export TFSCONVERT_UV := $(TOOLS)/bin/uv
UV := $(TFSCONVERT_UV)
export UV_PYTHON_DOWNLOADS := never
export TFSCONVERT_FIXTURES ?= $(CURDIR)/.cache/fixtures
# Quieter TensorFlow start-up in demos and tests.
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: demo test test-fast setup java sandbox bench dist lock clean

setup: $(STAMP) java sandbox

# Built aside and moved into place, so two clones setting up at once do not share a half-made venv.
$(UV):
	mkdir -p $(dir $(TOOLS))
	rm -rf $(TOOLS).$$PPID && $(PYTHON) -m venv $(TOOLS).$$PPID
	$(TOOLS).$$PPID/bin/python -m pip install --quiet uv==$(UV_VERSION)
	mv -T $(TOOLS).$$PPID $(TOOLS) 2>/dev/null || rm -rf $(TOOLS).$$PPID

# Re-installs (and rebuilds the C modules: an editable install of this project) only when these change.
# Every package at its uv.lock version, all extras and the dev group (pytest, requests, build, pre-commit).
$(STAMP): pyproject.toml uv.lock setup.py $(wildcard tfsconvert/server/*.[ch] tfsconvert/serving/*.c) | $(UV)
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --frozen --all-extras --python $(PYTHON) --quiet
	touch $@

java:
	@scripts/check-java.sh

sandbox:
	@scripts/check-sandbox.sh

demo: setup
	@scripts/demo.sh

# Tests run in TEST_WORKERS processes, a test file's tests in one (its module fixtures are made once):
# most tests wait on servers, JVMs and child processes, so two workers halve the time on 2 cores.
TEST_WORKERS ?= 2
PYTEST := $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

test: setup
	$(PY) -m fixtures build
	$(PYTEST)

# The suite without the slow tests (JVM conversions, Spark, installs into fresh venvs).
test-fast: setup
	$(PY) -m fixtures build
	$(PYTEST) -m "not slow"

# An sdist and a wheel in dist/ (the C sources and headers in the sdist, compiled modules in the wheel);
# `uv build` is `python -m build` (the wheel built from the sdist) with uv's cached build environment.
dist: setup
	rm -rf dist
	$(UV) build --quiet --python $(PY) --out-dir dist .

# After editing dependencies in pyproject.toml: re-resolve uv.lock (keeps every version it can).
lock: $(UV)
	$(UV) lock

bench: setup
	$(PY) bench/inspect_speed.py
	$(PY) bench/convert_speed.py
	$(PY) bench/graph_memory.py
	$(PY) bench/validate_speed.py
	$(PY) bench/serve_load.py
	$(PY) bench/setup_speed.py

clean:
	rm -rf $(VENV) .venv-3.* .cache .pytest_cache dist build
