# The README's two commands: `make demo` and `make test`. Both set up .venv first (once).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.reelforge-installed
# CPU machines take the local CPU wheel; GPU users pass a CUDA build (see README, "GPU machines").
TORCH_PIP_ARGS ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: setup demo test test-slow test-all lint browser clean

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_PIP_ARGS)
	$(BIN)/python -m pip install --quiet -e '.[dev,cloud]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/reelforge demo

lint: $(STAMP)
	$(BIN)/ruff check .

# The eval report is checked in a real headless browser: Debian's chromium, installed when this runs as
# root with apt (CI); elsewhere install it yourself, or that one test skips and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || echo "chromium is not installed: the HTML report's browser test will skip"

# The CI suite: lint, then every test not marked slow.
test: lint browser
	$(BIN)/python -m pytest -m "not slow" -q --durations=20 $(PYTEST_ARGS)

# The long runs (learning proof, fault runs), and everything together.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow -q $(PYTEST_ARGS)

test-all: lint browser
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) reelforge-runs reelforge-demo
