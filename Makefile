# tsp-platform: `make demo` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | sha256sum | cut -c1-12)
export DAGSTER_HOME := $(CURDIR)/.dagster_home
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export DBT_SEND_ANONYMOUS_USAGE_STATS := false

.PHONY: install demo test lint ui benchmarks clean dagster-home

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 required"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip==24.3.1"
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

dagster-home:
	@mkdir -p $(DAGSTER_HOME)
	@test -f $(DAGSTER_HOME)/dagster.yaml || cp configs/dagster.yaml $(DAGSTER_HOME)/dagster.yaml

demo: install dagster-home
	$(VENV)/bin/tsp demo

test: install
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -n 2 tests

lint: install
	$(VENV)/bin/ruff check --select F,E9 tsp_platform tsp_cli assets resources partitions benchmarks tests
	$(VENV)/bin/lint-imports

ui: install dagster-home
	$(VENV)/bin/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

benchmarks: install
	$(PY) benchmarks/ingest.py
	$(PY) benchmarks/selection.py
	$(PY) benchmarks/allocation.py
	$(PY) benchmarks/tournament.py
	$(PY) benchmarks/tournament_cells.py
	$(PY) benchmarks/executor.py

clean:
	rm -rf data .dagster_home dbt_checks/target dbt_checks/logs
