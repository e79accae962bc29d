# refnsm developer commands.  Every target is idempotent and works from a clean clone.
#   make test        .venv (created when missing) with refnsm[test]; runs pytest (tests/, cross-checks excluded;
#                    the CUDA tests on the GPU if there is one, else under Numba's CUDA simulator)
#   make crosscheck  .venv-peers by ../shared/peers recipe (docs/crosscheck.md); runs tests/crosscheck/
#   make demo        runs every tutorial in quick mode, writes figures/, prints what each reproduced
#   make bench       runs benchmarks/ against the upstream libraries (needs .venv-peers)
#   make fuzz        the long boundary-fuzz sweep (tests/fuzz/run_fuzz.py, ~5 min on 2 cores): writes
#                    tests/fuzz/results.json and regenerates docs/reliability.md from it
PYTHON      ?= python3
VENV        := .venv
PEERS       := .venv-peers
PY          := $(VENV)/bin/python
PEERS_PY    := $(PEERS)/bin/python
PYTEST_ARGS ?=
# The CUDA tests run on the GPU where there is one (nvidia-smi answers), else under Numba's CUDA simulator.
CUDASIM     ?= $(shell nvidia-smi >/dev/null 2>&1 && echo 0 || echo 1)

.PHONY: test crosscheck demo bench fuzz info clean venv peers

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,tutorials]"
	touch $@

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

test: venv
	NUMBA_ENABLE_CUDASIM=$(CUDASIM) $(PY) -m pytest tests --ignore=tests/crosscheck $(PYTEST_ARGS)

crosscheck: peers
	$(PEERS_PY) -m pytest tests/crosscheck $(PYTEST_ARGS)

demo: venv
	$(PY) -m refnsm demo

bench: peers
	$(PEERS_PY) -m refnsm bench

fuzz: venv
	$(PY) tests/fuzz/run_fuzz.py --json-out tests/fuzz/results.json; rc=$$?; \
	$(PY) tests/fuzz/make_reliability_doc.py tests/fuzz/results.json && exit $$rc

info: venv
	$(PY) -m refnsm info

clean:
	rm -rf $(VENV) $(PEERS) build *.egg-info .pytest_cache .hypothesis
