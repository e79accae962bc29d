"""Shared pytest configuration.

Hypothesis runs with no deadline (the first call of a Numba kernel compiles it) and a fixed derandomized
profile under CI, so a CI run is reproducible.
"""

import importlib.util
import os
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from hypothesis import HealthCheck, settings

matplotlib.use("Agg")
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/cuda_support.py, shared by tests/test_cuda_*.py

settings.register_profile("dev", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "ci", deadline=None, max_examples=60, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ci" if os.environ.get("CI", "").lower() == "true" else "dev")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def load_tutorial(tmp_path_factory):
    """``load_tutorial("01_spike_similarity")`` imports ``tutorials/01_spike_similarity.py`` as a module.

    Its ``FIGURES`` directory is redirected to a temporary folder: the quick-mode runs of the test suite must not
    overwrite the full-run figures committed in ``figures/``."""
    root = Path(__file__).resolve().parent.parent / "tutorials"
    figures = tmp_path_factory.mktemp("figures")

    def load(name):
        spec = importlib.util.spec_from_file_location(f"tutorial_{name}", root / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.FIGURES = figures
        return module

    return load
