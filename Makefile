# Two set-up commands: `make demo` and `make test`. Each installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
OPA_VERSION := v1.22.2
TOOLS := .tools
export PATH := $(CURDIR)/$(TOOLS)/bin:$(PATH)

.PHONY: demo test bench opa redis chromium venv clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,browser]'
	touch $@

venv: $(BIN)/.installed

opa:
	@scripts/install-opa.sh $(OPA_VERSION) $(TOOLS)

redis:
	@scripts/install-redis.sh

chromium:
	@scripts/install-chromium.sh

demo: venv opa
	$(BIN)/agt demo
	$(BIN)/python examples/multi_agent_demo.py

test: venv opa redis chromium
	$(BIN)/python -m pytest
	$(BIN)/python scripts/adapter_tests.py

bench: venv opa redis
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache reports
