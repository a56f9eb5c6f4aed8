# ciplan: every target bootstraps .venv from a bare machine (python3 >= 3.11 on PATH).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SCALE ?= 1
OUT ?= out/demo
REPORT_LANG ?= en

.PHONY: demo test lint compile bench bench-large ui clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "ciplan needs Python >= 3.11"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: compile
	$(BIN)/ciplan run --scale $(SCALE) --out $(OUT) --lang $(REPORT_LANG)

lint: $(STAMP)
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest -q

# the project's own modules compiled ahead, as pip compiles what it installs (a machine
# with PYTHONDONTWRITEBYTECODE set would compile them at every command); a source newer
# than its compiled file is compiled again when imported, so nothing stale is ever run
compile: $(STAMP)
	$(BIN)/python -m compileall -q forecasting optimization pipelines

bench: compile
	$(BIN)/python -m benchmarks

bench-large: $(STAMP)
	$(BIN)/python -m benchmarks.large

# the store `ciplan run` printed, e.g. make ui STORE=sqlite:////tmp/mlflow.db
STORE ?= sqlite:///mlruns/mlflow.db
ui: $(STAMP)
	mkdir -p mlruns
	@echo "Runs tables: switch the sidebar to 'Model training' (MLflow 3 opens on GenAI traces)," \
		"or open the 'Proposals side by side' address ciplan run printed"
	$(BIN)/mlflow ui --backend-store-uri '$(STORE)' \
		--default-artifact-root ./mlruns/artifacts --host 127.0.0.1 --port 5000

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
