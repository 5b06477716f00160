# One command to run the app, one to run the tests; both set up .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export GRADIO_ANALYTICS_ENABLED := False

.PHONY: serve test bench train clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev,train,browser]"
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/medimg serve

test: $(STAMP)
	$(BIN)/python -m pytest -q -ra

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

train: $(STAMP)
	$(BIN)/medimg train

clean:
	rm -rf $(VENV)
