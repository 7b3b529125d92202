# The two commands of the README: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export TFSCONVERT_FIXTURES ?= $(CURDIR)/.cache/fixtures
# Quieter TensorFlow start-up in demos and tests.
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: demo test setup java sandbox bench clean

setup: $(STAMP) java sandbox

# Re-installs (and rebuilds the C transport) only when these change.
$(STAMP): pyproject.toml setup.py $(wildcard tfsconvert/server/*.[ch] tfsconvert/serving/*.c)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[all]'
	touch $@

java:
	@scripts/check-java.sh

sandbox:
	@scripts/check-sandbox.sh

demo: setup
	@scripts/demo.sh

test: setup
	$(PY) -m fixtures build
	$(PY) -m pytest

bench: setup
	$(PY) bench/inspect_speed.py
	$(PY) bench/convert_speed.py
	$(PY) bench/graph_memory.py
	$(PY) bench/validate_speed.py
	$(PY) bench/serve_load.py

clean:
	rm -rf $(VENV) .cache .pytest_cache
