# refnsm developer commands.  Every target is idempotent and works from a clean clone.
#   make test        .venv (created when missing) with refnsm[test]; runs pytest (tests/, cross-checks excluded;
#                    the CUDA tests on the GPU if there is one, else under Numba's CUDA simulator)
#   make crosscheck  .venv-peers by ../shared/peers recipe (docs/crosscheck.md); runs tests/crosscheck/
#   make demo        runs every tutorial in quick mode, writes figures/, prints what each reproduced
#   make warmup      compiles every Numba kernel, float32 and float64, into the cache (run by test and demo)
#   make bench       runs benchmarks/ against the upstream libraries (needs .venv-peers)
#   make fuzz        the long boundary-fuzz sweep (tests/fuzz/run_fuzz.py, ~15 min on 2 busy cores; with the
#                    hypothesis layer's fuzz profile, REFNSM_HYPOTHESIS_PROFILE=fuzz for pytest): writes
#                    tests/fuzz/results.json and regenerates docs/reliability.md from it
#   make golden      runs the golden suite on refnsm itself (both dtypes; docs/golden.md)
#   make gpu-check   on a machine with an NVIDIA GPU (<= 8 min): the CUDA tests on the hardware, the golden suite with
#                    device="cuda" if it exists, benchmarks/bench_cuda.py, one summary (.ci/gpu_check.py; INSTALL=1
#                    installs numba-cuda first).  QUICK=1: the same steps, tiny, under the CUDA simulator (CI)
#   make accuracy    the full oracle sweep (tests/oracle, upstream libraries from .venv-peers): writes docs/accuracy.md
#   make docs        builds the documentation site into build/docs/html (offline, warnings are errors)
#   make docs-test   opens the built site in headless Chromium and checks math, figures (screenshots in build/)
PYTHON      ?= python3
VENV        := .venv
PEERS       := .venv-peers
PY          := $(VENV)/bin/python
PEERS_PY    := $(PEERS)/bin/python
PYTEST_ARGS ?=
# The CUDA tests run on the GPU where there is one (nvidia-smi answers), else under Numba's CUDA simulator.
CUDASIM     ?= $(shell nvidia-smi >/dev/null 2>&1 && echo 0 || echo 1)

.PHONY: test crosscheck demo bench fuzz gpu-check accuracy info clean venv peers warmup docs docs-venv docs-test golden

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,tutorials]"
	touch $@

docs-venv: $(VENV)/.docs-installed
$(VENV)/.docs-installed: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install --quiet -e ".[test,tutorials,docs]"
	touch $@

# The site, offline (MathJax from the sphinx-mathjax-offline package), warnings as errors, tutorials in quick mode.
docs: docs-venv
	MPLBACKEND=Agg $(PY) -m sphinx -W --keep-going -q -b html -d build/docs/doctrees docs build/docs/html
	@echo "docs: open build/docs/html/index.html"

# Headless Chromium on the built site (skips with a message without chromium, fails under CI=true); screenshots
# in build/docs-test/.
docs-test: docs
	REFNSM_DOCS_TEST=1 $(PY) -m pytest tests/test_docs_site.py tests/test_docs_browser.py $(PYTEST_ARGS)

peers: $(PEERS)/.installed
# Order matters: torch (CPU build) first and pinned, then --no-deps for the packages whose dependencies would
# replace it with a multi-GB CUDA build.  See docs/crosscheck.md for why each step is there.
$(PEERS)/.installed: pyproject.toml
	test -x $(PEERS_PY) || python3.11 -m venv $(PEERS)
	$(PEERS_PY) -m pip install --quiet --upgrade pip
	$(PEERS_PY) -m pip install --quiet "torch==2.13.0"
	$(PEERS_PY) -m pip install --quiet "numpy==2.4.6" "scipy==1.17.1" "numba==0.68.1" "jax[cpu]==0.10.2" "jaxlib==0.10.2"
	$(PEERS_PY) -m pip install --quiet "pynsm==1.0.1"
	$(PEERS_PY) -m pip install --quiet "ngclearn==3.2.1" "ngcsimlib==3.1.1"
	$(PEERS_PY) -m pip install --quiet --no-deps "neuromancer==1.5.6"
	$(PEERS_PY) -m pip install --quiet --no-deps "spikingjelly==2.0.0" "loguru==0.7.3" "tqdm==4.70.1"
	$(PEERS_PY) -m pip install --quiet --no-deps "neurotorch==0.0.2" "torchvision==0.28.0" "pythonbasictools==0.0.1a11" \
	    "importlib-metadata==8.9.0" "zipp==4.1.2" "psutil==7.2.2"
	$(PEERS_PY) -m pip install --quiet -e ".[test,tutorials]"
	touch $@

# warmup compiles every kernel (both dtypes) into the Numba cache first, and fails if one is not reached
warmup: venv
	$(PY) -m refnsm warmup

test: venv warmup
	NUMBA_ENABLE_CUDASIM=$(CUDASIM) $(PY) -m pytest tests --ignore=tests/crosscheck $(PYTEST_ARGS)

crosscheck: peers
	$(PEERS_PY) -m pytest tests/crosscheck $(PYTEST_ARGS)

demo: venv warmup
	$(PY) -m refnsm demo

golden: venv
	$(PY) -m refnsm golden verify --backend refnsm

bench: peers
	$(PEERS_PY) -m refnsm bench

fuzz: venv
	$(PY) tests/fuzz/run_fuzz.py --json-out tests/fuzz/results.json; rc=$$?; \
	$(PY) tests/fuzz/make_reliability_doc.py tests/fuzz/results.json && exit $$rc

gpu-check: venv
	$(PY) .ci/gpu_check.py $(if $(filter 1,$(QUICK)),--quick) $(if $(filter 1,$(INSTALL)),--install)
accuracy: peers
	PYTHONPATH=. $(PEERS_PY) tests/oracle/ledger.py

info: venv
	$(PY) -m refnsm info

clean:
	rm -rf $(VENV) $(PEERS) build *.egg-info .pytest_cache .hypothesis docs/tutorials docs/_generated docs/sg_execution_times.rst
