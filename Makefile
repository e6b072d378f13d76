# ServiceHub — `make run` serves the demo district and runs its scheduled jobs, `make test` runs everything.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000

MO     := servicehub/translations/zh/LC_MESSAGES/messages.mo

.PHONY: run test load faults install install-dev lint format migrate seed messages clean

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

install: $(VENV)/.installed $(MO)
install-dev: $(VENV)/.installed-dev $(MO)

# Compiled translations are build output (not in git): rebuilt whenever the .po changes.
$(MO): servicehub/translations/zh/LC_MESSAGES/messages.po | $(VENV)/.installed
	$(BIN)/pybabel compile -d servicehub/translations

# Extract new strings from the code and templates into the .po files, for translators.
messages: install-dev
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -k N_ -o servicehub/translations/messages.pot .
	$(BIN)/pybabel update --no-fuzzy-matching -i servicehub/translations/messages.pot -d servicehub/translations -w 100

migrate: install
	$(BIN)/servicehub db upgrade

seed: migrate
	$(BIN)/servicehub seed catalog
	$(BIN)/servicehub seed demo
	$(BIN)/servicehub demo serve
	$(BIN)/servicehub demo history --leave-open 3
	$(BIN)/servicehub reports close-month
	$(BIN)/servicehub demo applications
	$(BIN)/servicehub demo users
	$(BIN)/servicehub demo day

# The pages and the scheduled jobs (late and missed visits, alerts, escalation, reminders) in one process; Ctrl-C
# stops both. Production runs gunicorn and `servicehub scheduler` apart (docs/deploy.md).
run: seed
	@echo
	@echo "  ServiceHub is starting on  http://$(HOST):$(PORT)/  with its scheduled jobs (Ctrl-C stops both)"
	@echo "  API documentation:         http://$(HOST):$(PORT)/api/v1/docs"
	@echo
	$(BIN)/servicehub serve --host $(HOST) --port $(PORT)

lint: install-dev
	$(BIN)/ruff check .

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: install-dev
	$(BIN)/ruff check .
	$(BIN)/pytest -n 2

# Load test (bench/load.py, numbers in bench/README.md): gunicorn + PostgreSQL on the 20,000-recipient district with
# a year of records, 200 requests/s for 2 minutes. The first run prepares the district (about 20 minutes, kept).
load: install-dev
	$(BIN)/pip install --quiet -e '.[dev,load]'
	$(BIN)/python bench/load.py --markdown

# Fault drills (tests/faults): kill the app in the middle of a publication and of an import, stop PostgreSQL for
# 30 s, kill the scheduler in the middle of a job. They stop the local PostgreSQL server: run them alone.
faults: install-dev
	$(BIN)/pytest -p no:xdist -m faults tests/faults -v

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis build *.egg-info
