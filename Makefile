# segengine — run `make` for the list of targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
SEG := $(VENV)/bin/segengine
DEMO_DIR ?= demo
DEMO_PERSONAS ?= 3000
PYTEST_ARGS ?=
# Test processes: each has its own local[2] SparkSession; files are dealt out whole.
TEST_WORKERS ?= 2
AIRFLOW_VENV ?= .venv-airflow

.PHONY: help setup jars setup-dev airflow-env check-java demo test bench bench-scale lint format package clean

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "} {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

check-java: ## Fail with one clear line unless Java 17+ is installed
	@v=$$(java -version 2>&1 | awk -F'"' '/version/ {print $$2}' | cut -d. -f1); \
	if [ -z "$$v" ] || [ "$$v" -lt 17 ]; then \
	  echo "Java 17 is required (found: $${v:-none}); install it: apt-get install -y openjdk-17-jre-headless"; exit 1; fi

$(VENV)/.runtime: requirements.txt setup.py | check-java
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required (Python 3.11)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	$(PIP) install -q --no-deps -e .
	@touch $@

# delta-spark and its runtime dependencies, pinned in jars/pom.xml, copied by Maven into
# jars/lib (Spark's own jars come with pyspark). A second run finds them and downloads nothing.
JARS := jars/lib/.fetched
$(JARS): jars/pom.xml
	@command -v mvn >/dev/null || { echo "Maven (mvn) is required to fetch the Delta jars: apt-get install -y maven (or run with delta.backend=embedded)"; exit 1; }
	rm -rf jars/lib
	mvn -q -B -Dstyle.color=never -f jars/pom.xml dependency:copy-dependencies -DoutputDirectory=lib -DincludeScope=runtime
	@touch $@

$(VENV)/.dev: $(VENV)/.runtime $(JARS) requirements-dev.txt
	$(PIP) install -q -r requirements-dev.txt
	@# Debian's chromium renders the HTML report in the headless-browser test.
	@command -v chromium >/dev/null || ! command -v apt-get >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	@touch $@

# Airflow for the DAGs in deploy/airflow and their test, in its own environment: its pins
# clash with ours (pandas, pyspark, mlflow). requirements.txt names Airflow, constraints.txt
# pins everything it resolves to. A second run finds the stamp and installs nothing.
$(AIRFLOW_VENV)/.installed: deploy/airflow/requirements.txt deploy/airflow/constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required (Python 3.11)"; exit 1; }
	@test -x $(AIRFLOW_VENV)/bin/python || $(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/pip install -q pip==26.3
	$(AIRFLOW_VENV)/bin/pip install -q -r deploy/airflow/requirements.txt -c deploy/airflow/constraints.txt
	@touch $@

setup: $(VENV)/.runtime $(JARS) ## Create .venv with the pinned runtime dependencies and fetch the Delta jars

jars: $(JARS) ## Fetch the pinned delta-spark jars into jars/lib with Maven

setup-dev: $(VENV)/.dev ## setup + test, lint and notebook tools

airflow-env: $(AIRFLOW_VENV)/.installed ## Create .venv-airflow with the pinned Airflow for the DAG tests (deploy/airflow)

demo: setup ## Generate sample data and run the whole daily pipeline (delta-spark, jars fetched by setup)
	$(SEG) --conf warehouse=$(DEMO_DIR)/warehouse demo --personas $(DEMO_PERSONAS)

test: setup-dev airflow-env ## Run the test suite (airflow-env: the DAG tests run Airflow in .venv-airflow)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

bench: setup-dev ## Run the benchmarks; results go to bench/results.md and bench/results.json
	$(PY) -m bench.run

bench-scale: setup-dev ## 1M and 2M persona end-to-end benchmark (long)
	$(PY) -m bench.run --scale

lint: setup-dev ## ruff check, format check and mypy (settings in pyproject.toml)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy segengine

format: setup-dev ## Apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

package: setup-dev ## Build dist/segengine.zip (for --py-files) and a wheel
	$(PY) -m segengine.packaging dist

clean: ## Remove build output (keeps .venv and data)
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache .mypy_cache
