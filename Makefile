# mlspec-attest developer entry points. Every target creates/uses .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: venv demo test lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[dev,demo]'
	touch $(STAMP)

venv: $(STAMP)

## Run the full example pipeline: sign 13 stages, verify, show attacks refused.
demo: $(STAMP)
	$(BIN)/python examples/pipeline/run_demo.py

## Run the offline test suite.
test: $(STAMP)
	$(BIN)/python -m pytest -q

## ruff + mypy (strict)
lint: $(STAMP)
	$(BIN)/ruff check mlspec_attest tests examples
	$(BIN)/ruff format --check mlspec_attest tests
	$(BIN)/mypy

## Benchmarks against the peers, in one run (several minutes, ~6.5 GB of temporary
## disk; b3sum and openssl from the OS); writes docs/benchmarks.md.
.PHONY: bench
BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,demo,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/run.py

## Mutation testing of the security-critical modules (mutmut 3; see docs/testing.md).
## Per-module kill rates; exit 1 below 95 % or with a survivor docs/testing.md does not
## explain. Results are cached in mutants/ (re-runs test only what changed).
##   make mutate MODULES="mlspec_attest/dsse.py mlspec_attest/bundle.py"
##   make mutate MUTATE_ARGS="--report-only"    (or --fresh, --max-children 1)
.PHONY: mutate
MODULES ?=
MUTATE_ARGS ?=
mutate: $(STAMP)
	nice -n 10 $(BIN)/python tools/mutate.py $(MUTATE_ARGS) $(MODULES)

clean:
	rm -rf $(VENV) .mlspec build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
