# seqlane: one entry point for developers and CI.
# Lambda runs Python 3.12: develop and test on it (pyenv's 3.12 if present, else any working python3.12).
PYTHON ?= $(shell for p in $$HOME/.pyenv/versions/3.12*/bin/python3.12 python3.12 python3; do \
	$$p --version >/dev/null 2>&1 && { command -v $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo e2e lint test test-only validate build bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/cfn-lint template.yaml
	$(BIN)/cfn-lint template.yaml -a cfn_lint_serverless.rules
	AWS_DEFAULT_REGION=eu-west-2 SAM_CLI_TELEMETRY=0 $(BIN)/sam validate --lint

# The bundled demo, end to end on the embedded AWS with the CPU engine; prints the summary and recall/precision.
demo: $(STAMP)
	$(BIN)/seqlane demo

# A full pipeline run on the embedded AWS: upload -> manifest -> execution -> Batch job -> catalog -> events.
e2e: $(STAMP)
	$(BIN)/pytest tests/integration -v -p no:warnings

test-only: $(STAMP)
	$(BIN)/pytest -q -p no:warnings

# The gate: lint, template checks and every test.
test: lint test-only

validate: lint

# Needs python3.12 on PATH (pyenv: PYENV_VERSION=3.11.7:3.12.1).
build: $(STAMP)
	PATH="$(dir $(PYTHON)):$$PATH" SAM_CLI_TELEMETRY=0 $(BIN)/sam build

bench: $(STAMP)
	$(BIN)/python benchmarks/transitions.py
	$(BIN)/python benchmarks/cold_start.py
	$(BIN)/python benchmarks/demo.py
	$(BIN)/python benchmarks/ingest.py

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .ruff_cache .mypy_cache seqlane-demo
