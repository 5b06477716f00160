# One command to run the app, one to run the tests; both set up .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export GRADIO_ANALYTICS_ENABLED := False
HOST ?= 127.0.0.1
PORT ?= 7860
ARGS ?=

.PHONY: serve test bench train clean

NEW_ENOUGH := import sys; sys.exit(sys.version_info < (3, 11))

# .made is written last, and a venv without pip (a make stopped while making it) is made again from scratch.
$(VENV)/.made:
	@$(BIN)/python -m pip --version >/dev/null 2>&1 || { \
	  $(PY) -c '$(NEW_ENOUGH)' 2>/dev/null || { echo "medimg needs Python 3.11 or newer, and $(PY) is" \
	    "$$($(PY) -V 2>/dev/null || echo 'not found'): give another with PY, as in make serve PY=python3.11" >&2; \
	    exit 1; }; \
	  set -x; rm -rf $(VENV) && $(PY) -m venv $(VENV) && $(BIN)/python -m pip install -q --upgrade pip; }
	@touch $@

# A venv an older Python made (before PY was given) is made again.
OLD_VENV = $(BIN)/python -c '$(NEW_ENOUGH)' || { echo "$(VENV) has $$($(BIN)/python -V): making it again" >&2; \
	rm -rf $(VENV) && $(MAKE) --no-print-directory $(VENV)/.made; }

# The app needs only the inference stack (no torch).
$(VENV)/.app: pyproject.toml | $(VENV)/.made
	@$(OLD_VENV)
	$(BIN)/pip install -q -e .
	touch $@

# Tests also train a tiny model, drive Chromium, run a Ray job and write Zeiss CZI files.
$(VENV)/.dev: pyproject.toml | $(VENV)/.made
	@$(OLD_VENV)
	$(BIN)/pip install -q -e ".[dev,train,browser,scale,czi]"
	touch $@ $(VENV)/.app

serve: $(VENV)/.app
	$(BIN)/medimg serve --host $(HOST) --port $(PORT) $(ARGS)

test: $(VENV)/.dev
	$(BIN)/python -m pytest -q -raR

bench: $(VENV)/.dev
	$(BIN)/python benchmarks/run_all.py

train: $(VENV)/.dev
	$(BIN)/medimg train

clean:
	rm -rf $(VENV)
