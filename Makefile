# initsweep: the README's commands. Every target sets up .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-full docs bench lint clean

venv: $(STAMP)

# Re-install when the package metadata changes; torch + torchvision resolve together (~5 GB once).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

# the demo's run dir, fixed once per `make demo` so the report finds it
DEMO_DIR := outputs/runs/demo/$(shell date +%Y-%m-%d_%H-%M-%S)

demo: venv
	$(BIN)/initsweep-train hydra.run.dir=$(DEMO_DIR)
	$(BIN)/initsweep-report $(DEMO_DIR)

# fast: all but the slow end-to-end runs and the SLURM tests
test: venv
	$(BIN)/pytest -m "not slow and not slurm"

# everything: the slow and the SLURM tests too (those skip, saying why, without a cluster); CI's
test-full: venv
	$(BIN)/pytest

# the docs site in site/ (mkdocs serve to read it while editing)
docs: venv
	$(BIN)/mkdocs build --strict

# the per-step tables, the whole study (a 6-scheme x 3-seed sweep three ways), then the docs'
# tables from their JSON (docs/explanation/performance.md); about 30 minutes on 2 cores
bench: venv
	$(BIN)/python scripts/bench.py
	$(BIN)/python scripts/bench_study.py
	$(BIN)/python scripts/bench_docs.py

lint: venv
	$(BIN)/ruff check .

clean:
	rm -rf outputs/* multirun .pytest_cache site
