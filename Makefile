# One entry point for everything: `make run` and `make test` are the README's two commands.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
KAFKA_PORT ?= 9092
PYTEST_ARGS ?=

# prometheus: Debian's package, for the deploy tests (installed on demand by the tests too)
.PHONY: docs prometheus help install test test-unit test-tf test-integration test-slow lint format run kafka-up kafka-down kafka-status bench drift-demo clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed -e 's/:.*## /\t/' -e 's/$$(KAFKA_PORT)/$(KAFKA_PORT)/g'

install: $(STAMP)  ## create .venv and install the project with its dev and train extras

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || { echo "make: creating the virtualenv $(VENV) ..."; $(PYTHON) -m venv $(VENV); }
	@echo "make: installing the project into $(VENV) with its dev and train extras;"
	@echo "      about 2.6 GB once installed, TensorFlow 1.9 GB of it: the first time takes a while ..."
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e '.[dev,train]'
	@touch $@
	@echo "make: installed ($(VENV)/bin/stocksent)"

test: install prometheus  ## unit + integration tests (starts its own Kafka on a free port); slow suites excluded
	$(BIN)/pytest $(PYTEST_ARGS)

test-unit: install  ## the fast unit tests: no broker, no TensorFlow (model tests: make test-tf)
	$(BIN)/pytest -m "not integration and not slow and not tensorflow" $(PYTEST_ARGS)

test-tf: install  ## the unit tests that load TensorFlow and build or run a model
	$(BIN)/pytest -m "tensorflow and not integration and not slow" $(PYTEST_ARGS)

test-integration: install  ## integration tests only: real Kafka
	$(BIN)/pytest -m "integration and not slow" $(PYTEST_ARGS)

test-slow: install  ## the heavy suites (training, long runs), run on their own
	$(BIN)/pytest -m slow $(PYTEST_ARGS)

lint: install  ## ruff (lint and format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install  ## apply ruff's formatter and import sorting
	$(BIN)/ruff check --fix --select I .
	$(BIN)/ruff format .

run: install  ## start Kafka, producer, classifier, aggregator; show the stream (SOURCE=replay REPLAY=samples/stocktwits-messages.jsonl, or SOURCE=live SYMBOLS=SPY,AAPL)
	$(BIN)/stocksent run --kafka-port $(KAFKA_PORT) \
		$(if $(SOURCE),--source $(SOURCE)) $(if $(SYMBOLS),--symbols $(SYMBOLS)) \
		$(if $(RATE),--rate $(RATE)) $(if $(REPLAY),--replay $(REPLAY)) \
		$(if $(BOOTSTRAP),--bootstrap-servers $(BOOTSTRAP)) $(if $(DURATION),--duration $(DURATION))

kafka-up: install  ## start the local Apache Kafka broker on 127.0.0.1:$(KAFKA_PORT)
	$(BIN)/stocksent kafka up --port $(KAFKA_PORT)

kafka-down: install  ## stop it (add WIPE=1 to delete its data)
	$(BIN)/stocksent kafka down --port $(KAFKA_PORT) $(if $(WIPE),--wipe,)

kafka-status: install  ## is it running, where is its log
	$(BIN)/stocksent kafka status --port $(KAFKA_PORT)

prometheus:  ## install prometheus and promtool (Debian package) for the deploy tests
	@bash scripts/install-prometheus.sh || echo "prometheus not installed: the tests that need it will skip"

docs: install  ## regenerate the generated tables: docs/REFERENCE.md, README options, .env.example
	$(BIN)/python -m tools.reference

bench: install  ## the speed benchmark (writes bench/results/latest.json)
	$(BIN)/python -m bench.run

drift-demo: install  ## the learning loop end to end on the canonical data (needs ../shared/data)
	$(BIN)/python -m bench.drift_demo $(if $(WORK),--work $(WORK))

clean:  ## remove the virtualenv and caches (Kafka jars stay in ~/.cache/stocksent)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
