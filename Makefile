# Everything the project needs is installed by this file into .venv, pinned by constraints.txt.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: help install test test-soak lint demo airflow bench bench-executor bench-ledger sandbox clean

help:
	@echo "make demo | make test | make test-soak | make lint | make bench | make bench-executor | make bench-ledger | make sandbox | make airflow"

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip uv >/dev/null 2>&1 || true
	@if $(VENV)/bin/uv --version >/dev/null 2>&1; then \
		$(VENV)/bin/uv pip install -q -p $(PY) -c constraints.txt -e ".[test]"; \
	else \
		$(PY) -m pip install -q -c constraints.txt -e ".[test]"; \
	fi
	@touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	@bash scripts/system-deps.sh
	$(VENV)/bin/ruff check airflow_provider_fulfillment tests dags benchmarks scripts
	$(PY) -m pytest -q -m "not soak"

test-soak: $(STAMP)
	$(PY) -m pytest -q -m soak

lint: $(STAMP)
	$(VENV)/bin/ruff check airflow_provider_fulfillment tests dags benchmarks scripts
	$(VENV)/bin/ruff format --check airflow_provider_fulfillment tests dags benchmarks scripts README.md benchmarks/README.md airflow_provider_fulfillment/sandbox/README.md

sandbox: $(STAMP)
	$(PY) -m airflow_provider_fulfillment.sandbox --port 8088

demo: $(STAMP)
	$(PY) scripts/demo.py

# Loopback and a login by default; UI_HOST=0.0.0.0 / UI_PORT=8081 to change; your AIRFLOW__* variables pass through.
airflow: $(STAMP)
	$(PY) scripts/airflow_local.py $(if $(UI_HOST),--host $(UI_HOST)) $(if $(UI_PORT),--port $(UI_PORT))

bench: $(STAMP)
	@# The http provider is installed for the HttpOperator baseline only (pinned like the rest).
	@$(VENV)/bin/uv pip install -q -p $(PY) -c constraints.txt apache-airflow-providers-http 2>/dev/null \
		|| $(PY) -m pip install -q -c constraints.txt apache-airflow-providers-http
	$(PY) benchmarks/run.py --million $(BENCH_ARGS)

# Ledger merge throughput on SQLite and PostgreSQL (a throwaway cluster): BENCH_LEDGER_ARGS="--orders 100000".
# Opt-in (minutes): one extract task vs N mapped tasks on a real Airflow with the LocalExecutor.
bench-executor: $(STAMP)
	$(PY) benchmarks/executor.py $(BENCH_EXECUTOR_ARGS)

bench-ledger: $(STAMP)
	@bash scripts/system-deps.sh
	$(PY) benchmarks/ledger_merge.py $(BENCH_LEDGER_ARGS)

clean:
	rm -rf $(VENV) .demo .bench .airflow
