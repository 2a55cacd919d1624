# mlspec-attest developer entry points. Every target creates/uses .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: venv demo test lint clean

# Prefix for a step that can be quiet for a while (pip installing wheels, npm ci): a line
# every 15 s says it is still going. The ticker ends with the step's shell.
TICKING = ( i=0; while sleep 1; do i=$$((i+1)); [ $$((i % 15)) -ne 0 ] || \
	echo "   ... still working ($$i s)"; done ) & trap "kill $$! 2>/dev/null" EXIT;

# Installed in steps, each announced, so a first install shows what it is doing; later
# runs skip all of it until pyproject.toml changes. The demo needs the first three; tests
# and lint also need the fourth (test and lint tools, the orchestrators and MLflow that the
# integration tests drive: a few minutes more).
DEMO_STAMP := $(VENV)/.installed-demo
$(DEMO_STAMP): pyproject.toml
	@echo "== make: creating $(VENV) with $(PYTHON), then installing mlspec-attest into it"
	$(PYTHON) -m venv $(VENV)
	@echo "== make [1/4]: mlspec-attest and its core dependencies (sigstore, in-toto, blake3 ...)"
	@$(TICKING) $(BIN)/pip install -e .
	@echo "== make [2/4]: the optional features: scikit-learn, numpy, pyarrow, fsspec, dask ... (the 'all' extra)"
	@$(TICKING) $(BIN)/pip install -e '.[all]'
	@echo "== make [3/4]: what the demo adds (the 'demo' extra)"
	@$(TICKING) $(BIN)/pip install -e '.[demo]'
	touch $(DEMO_STAMP)
	@echo "== make: $(VENV) is ready for the demo"

$(STAMP): $(DEMO_STAMP)
	@echo "== make [4/4]: test and lint tools, Airflow, Prefect, KFP and MLflow for the integration tests (the 'dev' extra; a few minutes)"
	@$(TICKING) $(BIN)/pip install -e '.[dev,demo]'
	touch $(STAMP)
	@echo "== make: $(VENV) is ready"

venv: $(STAMP)

## Run the full example pipeline: sign 13 stages, verify, show attacks refused.
## Ends by printing where its outputs are (examples/pipeline/work/) and what to open first.
demo: $(DEMO_STAMP)
	@echo "== make: running examples/pipeline/run_demo.py (about a minute)"
	$(BIN)/python examples/pipeline/run_demo.py

## Run the offline test suite. The keyless tier's loopback Sigstore needs node and npm
## (it skips, saying so, without them); its node packages are installed once, here.
test: $(STAMP)
	@if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then \
	  echo "== make: node packages of the loopback Sigstore (npm ci, once per lock file)"; \
	  $(TICKING) $(BIN)/python -m tests.sigstore.instance; \
	fi
	@echo "== make: running the test suite (pytest)"
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
##   make mutate MODULES="mlspec_attest/formats/dsse.py mlspec_attest/formats/bundle.py"
##   make mutate MUTATE_ARGS="--report-only"    (or --fresh, --max-children 1)
.PHONY: mutate
MODULES ?=
MUTATE_ARGS ?=
mutate: $(STAMP)
	nice -n 10 $(BIN)/python tools/mutate.py $(MUTATE_ARGS) $(MODULES)

clean:
	rm -rf $(VENV) .mlspec build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache

## Fuzz every parser with atheris, FUZZ_SECONDS each (default 60); FUZZ_TARGETS="jsonio dsse"
## picks some, FUZZ_FLAGS adds libFuzzer flags. Runs start from the seed-* corpus; new corpus
## entries and crash reproducers go to FUZZ_OUT (outside the tree). A crasher belongs in
## tests/fuzz/corpus/<target>/crash-<what> (docs/testing.md).
.PHONY: fuzz
FUZZ_SECONDS ?= 60
FUZZ_OUT ?= $(or $(TMPDIR),/tmp)/mlspec-attest-fuzz
FUZZ_TARGETS ?= $(sort $(basename $(notdir $(filter-out tests/fuzz/targets/_%,$(wildcard tests/fuzz/targets/*.py)))))
fuzz: $(STAMP)
	@status=0; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_OUT)/$$t/corpus $(FUZZ_OUT)/$$t/artifacts; \
	  cp tests/fuzz/corpus/$$t/seed-* $(FUZZ_OUT)/$$t/corpus/; \
	  echo "== fuzz $$t for $(FUZZ_SECONDS) s (crashes: $(FUZZ_OUT)/$$t/artifacts)"; \
	  MLSPEC_FUZZ_WORKDIR=$(FUZZ_OUT)/$$t/work $(BIN)/python -m tests.fuzz.targets.$$t \
	    $(FUZZ_OUT)/$$t/corpus -max_total_time=$(FUZZ_SECONDS) \
	    -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_OUT)/$$t/artifacts/ $(FUZZ_FLAGS) || status=1; \
	done; exit $$status
