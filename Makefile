# Two commands do everything on a fresh machine: `make run` (the main job) and `make test` (lint + test suite).
# Both create the virtual environment first if it is missing. torch 2.13.0 is installed before the rest so
# pip takes the local CPU wheel instead of a CUDA build.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup run test

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

run: setup
	$(VENV)/bin/accelerate launch examples/sentiment_transfer.py

# pytest exits 5 when it collected no test: that is a failure here.
test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no test"; exit 1; fi; exit $$rc
