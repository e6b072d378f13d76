# ServiceHub — `make run` serves the demo district, `make test` runs everything.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000

.PHONY: run test install install-dev lint format migrate seed clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Re-install when the project's dependencies change.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

migrate: install
	$(BIN)/servicehub db upgrade

seed: migrate
	$(BIN)/servicehub seed catalog

run: seed
	@echo
	@echo "  ServiceHub is starting on  http://$(HOST):$(PORT)/"
	@echo "  API documentation:         http://$(HOST):$(PORT)/api/v1/docs"
	@echo
	$(BIN)/servicehub run --host $(HOST) --port $(PORT)

lint: install-dev
	$(BIN)/ruff check .

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: install-dev
	$(BIN)/ruff check .
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis build *.egg-info
