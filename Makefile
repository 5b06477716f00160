# One command to run the app, one to run the tests; both set up .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export GRADIO_ANALYTICS_ENABLED := False
HOST ?= 127.0.0.1
PORT ?= 7860
ARGS ?=

.PHONY: serve test bench train clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# The app needs only the inference stack (no torch).
$(VENV)/.app: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

# Tests also train a tiny model, drive Chromium, run a Ray job and write Zeiss CZI files.
$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[dev,train,browser,scale,czi]"
	touch $@ $(VENV)/.app

serve: $(VENV)/.app
	$(BIN)/medimg serve --host $(HOST) --port $(PORT) $(ARGS)

test: $(VENV)/.dev
	$(BIN)/python -m pytest -q -ra

bench: $(VENV)/.dev
	$(BIN)/python benchmarks/run_all.py

train: $(VENV)/.dev
	$(BIN)/medimg train

clean:
	rm -rf $(VENV)
