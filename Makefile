# digitrec: the two commands a fresh machine needs are `make reports` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.digitrec-installed
# pytest-xdist workers of make test: two keep both cores of a 2-core machine busy (docs/RUNNING.md). Each
# file stays on one worker (a notebook's cells run in order in one kernel), and the notebooks, the longest
# files, go first so that neither worker is left alone with one at the end.
TEST_WORKERS ?= 2

.DEFAULT_GOAL := help
.PHONY: help venv reports test lint benchmark benchmark-classical clean

help: ## Show this help.
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP) ## Create .venv (if missing) and install digitrec with its dev tools into it.

reports: $(STAMP) ## Run the whole suite on the embedded sample, two notebooks at a time; reports land in reports/latest/.
	$(BIN)/digitrec run --jobs 2

test: $(STAMP) ## Run ruff, import-linter's layer rules, the unit tests and nbval on the notebooks.
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest $(wildcard notebooks/*.ipynb) tests --nbval-lax --nbval-current-env -n $(TEST_WORKERS) --dist loadfile

lint: $(STAMP) ## Check the code and notebooks with ruff, and the package's layers with import-linter.
	$(BIN)/ruff check .
	$(BIN)/lint-imports

benchmark: $(STAMP) ## Time the data loaders on full Fashion-MNIST (needs dataset-fashion-mnist).
	$(BIN)/python benchmarks/bench_data_loading.py

benchmark-classical: $(STAMP) ## Time the kNN and tree sweeps against brute force on full Fashion-MNIST (~25 min).
	$(BIN)/python benchmarks/bench_classical_sweeps.py

clean: ## Remove the virtual environment and caches (reports are kept).
	rm -rf $(VENV) .pytest_cache .ruff_cache
