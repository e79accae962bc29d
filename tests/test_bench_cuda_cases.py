"""Smoke test of the GPU benchmark's case lists: every case runs once, at tiny sizes, under the CUDA simulator.

The benchmark itself (benchmarks/bench_cuda.py) only runs on a machine with a GPU; this test makes sure that each
``benchmarks/_cuda_cases_<family>.py`` calls existing functions with valid arguments and that the CPU and GPU
results of each case agree, so the benchmark does not first break on the machine where it is meant to run.
"""

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _simulator_on():
    from numba.core import config

    return bool(config.ENABLE_CUDASIM)


def _families():
    sys.path.insert(0, str(BENCH))
    try:
        import bench_cuda
    finally:
        sys.path.remove(str(BENCH))
    return [f for f in bench_cuda.FAMILIES if (BENCH / f"_cuda_cases_{f}.py").exists()]


def _to_numpy(r):
    from refnsm.cuda import is_device_array, to_host

    if isinstance(r, tuple):
        return tuple(_to_numpy(x) for x in r)
    return to_host(r) if is_device_array(r) else np.asarray(r)


def _assert_same(a, b, tol):
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y, tol)
        return
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    scale = max(np.abs(b).max(initial=0.0), 1e-300)
    assert np.abs(a - b).max(initial=0.0) / scale <= tol


@pytest.mark.skipif(not _simulator_on(), reason="needs NUMBA_ENABLE_CUDASIM=1 (set by make test on machines without a GPU)")
@pytest.mark.parametrize("family", _families())
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cases_run_and_agree(family, dtype):
    import refnsm.cuda as rc

    sys.path.insert(0, str(BENCH))
    try:
        mod = importlib.import_module(f"_cuda_cases_{family}")
    finally:
        sys.path.remove(str(BENCH))
    tol = 1e-10 if dtype == np.float64 else 1e-4
    cases = mod.cases(rc, np.random.default_rng(0), "tiny", dtype)
    assert cases
    for case, size, cpu_fn, dev_fn, host_fn in cases:
        cpu = _to_numpy(cpu_fn())
        _assert_same(_to_numpy(dev_fn()), cpu, tol)
        _assert_same(_to_numpy(host_fn()), cpu, tol)
