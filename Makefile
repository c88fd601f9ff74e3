# The course's two commands:  make lab  (open the notebooks)  and  make test  (check them).
# Each one creates .venv and installs everything on first use; afterwards it starts at once.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
READY  := $(VENV)/.installed

# Quiet, offline, reproducible notebook runs: no progress bars, no Hub downloads.
export COURSE_QUIET = 1
export HF_HUB_OFFLINE = 1
export TOKENIZERS_PARALLELISM = false

NBVAL := --nbval --nbval-current-env --nbval-sanitize-with nbval_sanitize.cfg --nbval-cell-timeout 1800

.PHONY: lab test test-helpers test-notebooks run install stamp bench clean

lab: $(READY)
	$(VENV)/bin/jupyter lab notebooks/

test: test-helpers test-notebooks

test-helpers: $(READY)
	$(PY) -m pytest tests

# The saved outputs come from a CPU run: compare on the CPU even where a GPU is present.
test-notebooks: $(READY)
	COURSE_DEVICE=cpu $(PY) -m pytest $(NBVAL) -p no:cacheprovider notebooks

run: $(READY)
	$(PY) scripts/run_notebooks.py

bench: $(READY)
	for f in benchmarks/bench_*.py; do $(PY) $$f || exit 1; done

stamp: $(READY)
	$(PY) scripts/stamp_notebooks.py

install: $(READY)

$(READY): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed, found " + sys.version.split()[0] + ": install it, then run make again (or make PYTHON=python3.12 ...)."'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv
	$(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY) -r requirements.txt -e .
	touch $(READY)

clean:
	rm -rf build runs checkpoints notebooks/runs notebooks/checkpoints notebooks/outputs notebooks/artifacts .pytest_cache
