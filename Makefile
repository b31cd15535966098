# datasum — `make figures` and `make test` are all a newcomer needs (see README.md).
#
#   make figures [SCALE=smoke|cpu|paper]   regenerate figures/<scale>/ with papermill
#   make test                              the whole test suite (what CI runs)
#   make test-fresh                        make test as a newcomer meets it: a fresh clone of HEAD and an
#                                          empty cache, once with portable CPU kernels, once with native ones
#   make bench                             speed and memory benchmarks, as ratios
#   make docs                              the website: the notebooks (stored outputs), claims and API -> _site/
#   make clean                             remove the virtual environment and executed notebooks
SHELL := /bin/bash
SCALE ?= smoke
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# A CPU build of torch where one is at hand: these machines keep torch 2.13.0+cpu on disk, so the
# pinned version installs offline. Elsewhere the pin falls back to pip's normal torch; pass
# TORCH='torch==X' (or install torch yourself first) to choose another.
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed
PYTEST_NBVAL := --nbval-lax --nbval-current-env --nbval-sanitize-with .nbval-sanitize.cfg
export PYTHONHASHSEED := 0

.PHONY: install data figures test test-fresh test-notebooks test-unit sync bench docs clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -qq "$(TORCH)" || $(BIN)/pip install -qq torch
	$(BIN)/pip install -qq -e ".[dev]"
	@touch $@

data: install
	$(BIN)/datasum fetch --scale $(SCALE)

figures: data
	$(BIN)/datasum reproduce --scale $(SCALE)

# The notebooks are the source: the exported library and the cleaned notebooks must be what is in the tree.
sync: install
	@if git rev-parse --git-dir >/dev/null 2>&1; then \
	  state() { { git status --porcelain; git diff; } | md5sum; }; \
	  before=$$(state); \
	  $(BIN)/nbdev-export && $(BIN)/nbdev-clean; \
	  if [ "$$before" != "$$(state)" ]; then \
	    echo "nbdev-export / nbdev-clean changed the tree: export and clean the notebooks, then commit:"; \
	    git status --short; exit 1; \
	  fi; \
	fi

test: data sync
	$(BIN)/pytest $(PYTEST_NBVAL) nbs tests

# Stored outputs must hold on machines whose CPUs pick other kernels. `portable` asks torch for its
# plain kernels (ATEN_CPU_CAPABILITY=default) and numpy for its baseline ones (every dispatched
# feature that this CPU has is disabled); `native` uses what the processor offers.
test-fresh: install
	@mkdir -p runs; set -e; for kernels in portable native; do \
	  dir=$$(mktemp -d); git clone -q "$$PWD" "$$dir/datasum"; start=$$SECONDS; \
	  echo "== $$kernels kernels: fresh clone of $$(git rev-parse --short HEAD) in $$dir, empty DATASUM_CACHE"; \
	  ( cd "$$dir/datasum" && export DATASUM_CACHE="$$dir/cache" && \
	    if [ $$kernels = portable ]; then \
	      export ATEN_CPU_CAPABILITY=default; \
	      export NPY_DISABLE_CPU_FEATURES="$$($(abspath $(BIN))/python -c 'from numpy._core._multiarray_umath import __cpu_dispatch__ as d, __cpu_features__ as f; print(" ".join(x for x in d if f.get(x)))')"; \
	    fi; \
	    $(MAKE) --no-print-directory test ) > runs/test-fresh-$$kernels.log 2>&1 && status=0 || status=$$?; \
	  tail -n 3 runs/test-fresh-$$kernels.log; \
	  echo "== $$kernels kernels: make test exit $$status in $$((SECONDS - start)) s (log: runs/test-fresh-$$kernels.log)"; \
	  rm -rf "$$dir"; [ $$status -eq 0 ]; \
	done

test-notebooks: data
	$(BIN)/pytest $(PYTEST_NBVAL) nbs

test-unit: install
	$(BIN)/pytest tests

bench: data
	$(BIN)/python benchmarks/run.py

# The website, offline, from the committed notebooks and figures (nothing re-executed): open _site/index.html.
docs: install
	$(BIN)/python docs/build.py --quiet

clean:
	rm -rf $(VENV) runs _proc _site docs/_gen docs/_doctrees docs/_build
