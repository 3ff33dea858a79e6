# Cosmic Chat: the two commands a person needs are `make run` and `make test`.
# Everything they need is installed on first use; stamps make later runs fast.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
ARGS   ?=
CHROMIUM := /usr/bin/chromium

.DEFAULT_GOAL := help
.PHONY: help install install-python install-node browser lint test test-python test-js run bench soak clean

help:
	@echo "make run    start the whole chat locally at http://127.0.0.1:7071/ (ARGS='...' passes options)"
	@echo "make test   install what is needed and run every test"
	@echo "make lint   ruff over the code tree"
	@echo "make bench  end-to-end benchmarks, figures and plot for docs/benchmarks.md"
	@echo "make soak   30 minutes of mixed load with periodic faults"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt functions/requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

www/node_modules/.installed: www/package.json www/package-lock.json
	cd www && npm ci --no-audit --no-fund --loglevel=error
	touch $@

tests/js/node_modules/.installed: tests/js/package.json tests/js/package-lock.json
	cd tests/js && npm ci --no-audit --no-fund --loglevel=error
	touch $@

install-python: $(VENV)/.installed
install-node: www/node_modules/.installed tests/js/node_modules/.installed
install: install-python install-node

# Browser tests drive Debian's Chromium; test tools cannot download browsers here.
browser:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = "0" ]; then \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
	  echo "Chromium is missing: run 'sudo apt-get install -y chromium' (as root: apt-get install -y chromium)"; exit 1; \
	fi

lint: install-python
	$(BIN)/ruff check .
	$(BIN)/actionlint -no-color .github/workflows/*.yml

test-js: install-node
	node --test tests/www/

test-python: install browser
	$(BIN)/python -m pytest

test: lint test-js test-python

run: install-python www/node_modules/.installed
	$(BIN)/python -m emulators $(ARGS)

bench: install
	$(BIN)/python -m bench $(ARGS)

soak: install
	$(BIN)/python -m bench.soak $(ARGS)

clean:
	rm -rf $(VENV) www/node_modules tests/js/node_modules .pytest_cache .ruff_cache
