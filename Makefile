# The course's two commands:  make lab  (open the notebooks)  and  make test  (check them).
# Each one creates .venv and installs the locked versions (requirements.lock) on first use;
# afterwards it starts at once. Paths in recipes are quoted, so the course folder may have a
# space in its name; VENV itself must not (make cannot name a target that has a space).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
READY  := $(VENV)/.installed

# The tooling is pinned too: uv's 0.x minor releases may change behaviour.
UV_REQUIREMENT := uv>=0.13,<0.14
# The Python that requirements.lock is resolved for (the stored outputs were made with it).
LOCK_PYTHON := 3.11

# Quiet, offline, reproducible notebook runs: no progress bars, no Hub downloads.
export COURSE_QUIET = 1
export HF_HUB_OFFLINE = 1

NBVAL := --nbval --nbval-current-env --nbval-sanitize-with nbval_sanitize.cfg --nbval-cell-timeout 1800

# Numeric profiles for the notebook check (CONTRIBUTING.md, "Outputs that hold on every machine").
# "native" is this machine as it is. "avx" and "avx2" run the same strict nbval with other CPU
# kernels (ATen's vector width, oneDNN's and MKL's code paths) and another thread count, so that
# an output that depends on float rounding fails here before it fails on a learner's laptop; each
# catches cells the other misses. "ci" runs the odd-numbered notebooks under avx and the even ones
# under avx2: both profiles in the time of one pass (avx, slower, gets the lighter half).
# `make test-portable` runs every notebook under both (x86-64 only).
PROFILE_native :=
PROFILE_avx    := ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=AVX MKL_CBWR=AVX OMP_NUM_THREADS=3
PROFILE_avx2   := ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_CBWR=AVX2 OMP_NUM_THREADS=2
NB_PROFILE ?= native
ifeq ($(filter $(NB_PROFILE),native avx avx2 ci),)
$(error NB_PROFILE=$(NB_PROFILE) is not a profile: use native, avx, avx2 or ci)
endif
EVEN_NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][02468]_*.ipynb notebooks/solutions/[0-9][02468]_*.ipynb))
ODD_NOTEBOOKS  := $(sort $(wildcard notebooks/[0-9][13579]_*.ipynb notebooks/solutions/[0-9][13579]_*.ipynb))
# The saved outputs come from a CPU run: compare on the CPU even where a GPU is present.
RUN_NBVAL := COURSE_DEVICE=cpu "$(PY)" -m pytest $(NBVAL) -p no:cacheprovider

# Jupyter refuses to start as root (a Docker container, a cloud VM) unless it is told it may.
ALLOW_ROOT = $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root)

.PHONY: lab test lint test-helpers test-notebooks test-portable run install lock stamp bench clean

lab: $(READY)
	"$(VENV)/bin/jupyter" lab $(ALLOW_ROOT) notebooks/

test: lint test-helpers test-notebooks

# The linter and the formatter, with the settings in pyproject.toml ([tool.ruff]).
# `"$(VENV)/bin/ruff" format .` applies the formatting, `ruff check --fix .` the safe fixes.
lint: $(READY)
	"$(VENV)/bin/ruff" check .
	"$(VENV)/bin/ruff" format --check .

test-helpers: $(READY)
	"$(PY)" -m pytest tests

test-notebooks: $(READY)
ifeq ($(NB_PROFILE),ci)
	$(PROFILE_avx2) $(RUN_NBVAL) $(EVEN_NOTEBOOKS)
	$(PROFILE_avx) $(RUN_NBVAL) $(ODD_NOTEBOOKS)
else
	$(PROFILE_$(NB_PROFILE)) $(RUN_NBVAL) notebooks
endif

# The portable check: every notebook under both foreign profiles (x86-64 only).
test-portable: $(READY)
	$(MAKE) --no-print-directory test-notebooks NB_PROFILE=avx
	$(MAKE) --no-print-directory test-notebooks NB_PROFILE=avx2

run: $(READY)
	"$(PY)" scripts/run_notebooks.py

bench: $(READY)
	for f in benchmarks/bench_*.py; do "$(PY)" "$$f" || exit 1; done

stamp: $(READY)
	"$(PY)" scripts/stamp_notebooks.py

# Always reinstalls from the lock, so that it also repairs a .venv whose packages were changed
# by hand (uv leaves the packages that already have their locked version alone).
install:
	rm -f "$(READY)"
	$(MAKE) --no-print-directory "$(READY)"

# Maintainers: run after editing requirements.txt, then re-run the notebooks so that their
# stored outputs come from the new versions (CONTRIBUTING.md). One file for every platform
# (--universal); --fork-strategy fewest keeps one version of each package across Python
# versions, so that Python 3.12 and 3.13 get the same numpy as the 3.11 that saved the outputs.
lock: | $(UV)
	"$(UV)" pip compile --quiet --universal --fork-strategy fewest --generate-hashes \
		--python-version $(LOCK_PYTHON) --custom-compile-command "make lock" \
		requirements.txt -o requirements.lock

CHECK_PYTHON := import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed, \
	found " + sys.version.split()[0] + ": install it, then run make again \
	(or make PYTHON=python3.12 ...)."

$(UV):
	@"$(PYTHON)" -c '$(CHECK_PYTHON)'
	test -x "$(PY)" || "$(PYTHON)" -m venv "$(VENV)"
	"$(PY)" -m pip install --quiet --disable-pip-version-check "$(UV_REQUIREMENT)"

# Two commands: a hashed install refuses the (unhashed) editable course in the same command.
# --compile-bytecode writes the .pyc files once, as pip does (uv does not by default), so that
# no test process or notebook kernel compiles torch and transformers from source again.
# JupyterLab's news pop-up ("notified about official Jupyter news?") is switched off for the
# course's environment only.
$(READY): requirements.lock pyproject.toml | $(UV)
	"$(UV)" pip install --quiet --compile-bytecode --python "$(PY)" --require-hashes \
		-r requirements.lock
	"$(UV)" pip install --quiet --python "$(PY)" --no-deps -e .
	"$(VENV)/bin/jupyter" labextension disable --level=sys_prefix \
		"@jupyterlab/apputils-extension:announcements"
	touch "$(READY)"

clean:
	rm -rf build runs checkpoints notebooks/runs notebooks/checkpoints notebooks/outputs notebooks/artifacts .pytest_cache
