# Prism: `make run` starts the whole stack, `make test` runs the suite. Both set up
# what they need on a fresh Debian machine: a virtualenv and, when missing, redis-server.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# apt-get needs root; as anyone else, ask sudo.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test bench proto lint redis-server install clean

run: install redis-server
	$(BIN)/python -m tools.run

test: install redis-server
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# PEERS=litellm also measures LiteLLM's proxy, installed by the bench in a venv of its own.
bench: install redis-server
	$(BIN)/python -m tools.bench $(if $(PEERS),--peers $(PEERS))

# Regenerates the checked-in stubs; tests/test_stubs.py fails when they are stale.
proto: install
	$(BIN)/python -m tools.protoc prism/v1

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV) || { \
		echo "installing python3-venv with apt-get"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3-venv >/dev/null && \
		$(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

# Only installs the binary: the suite starts its own server on a free port, and `make run`
# uses the Redis that REDIS_URL names or starts one there.
redis-server:
	@command -v redis-server >/dev/null || { \
		echo "installing redis-server with apt-get"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq redis-server >/dev/null; }

clean:
	rm -rf $(VENV) .pytest_cache
