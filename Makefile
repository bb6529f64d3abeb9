# Two commands on a fresh machine: `make demo` (the main job) and `make test` (the suite).
# Both create .venv and install the project into it first when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench up down

$(BIN)/noticecrawler: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

demo: $(BIN)/noticecrawler
	$(BIN)/noticecrawler demo

test: $(BIN)/noticecrawler
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -p no:cacheprovider

bench: $(BIN)/noticecrawler
	$(BIN)/python bench/bench_incremental.py
	$(BIN)/python bench/bench_dispatch.py
	$(BIN)/python bench/bench_matching.py
	$(BIN)/python bench/bench_fanout.py --devices 10000
	$(BIN)/python bench/bench_latency.py

up: $(BIN)/noticecrawler
	$(BIN)/noticecrawler up

down: $(BIN)/noticecrawler
	$(BIN)/noticecrawler down
