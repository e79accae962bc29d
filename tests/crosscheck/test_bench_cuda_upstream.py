"""Smoke test of benchmarks/_cuda_upstream.py (refnsm's GPU path against spikingjelly and neuromancer on torch's
GPU): every case runs once at tiny sizes, refnsm under the CUDA simulator and upstream with ``torch_device="cpu"``
(torch is CPU-only here), and both sides must compute the same numbers (float32, 1e-5 relative), so the code
path of ``bench_cuda.py``'s upstream table does not first break on a GPU machine.  The timings themselves only
mean something there.
"""

import sys
from pathlib import Path

import numpy as np
import pytest
from cuda_support import MODE, run_file_under_simulator
from helpers import rel

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.mark.skipif(MODE is not None, reason="the kernels run in this process")
def test_under_simulator():
    run_file_under_simulator(__file__)


def _host(r):
    from refnsm.cuda import is_device_array, to_host

    if isinstance(r, (tuple, list)):
        return [_host(x) for x in r]
    return to_host(r) if is_device_array(r) else np.asarray(r)


@pytest.mark.skipif(MODE is None, reason="run by test_under_simulator")
def test_upstream_gpu_cases_agree_at_tiny_size():
    import refnsm.cuda as rc

    sys.path.insert(0, str(BENCH))
    try:
        import _cuda_upstream
    finally:
        sys.path.remove(str(BENCH))
    ok, reason = _cuda_upstream.available()
    assert not ok or MODE == "hardware", "torch sees a GPU although kernels run in the simulator"
    rng = np.random.default_rng(0)
    cases = _cuda_upstream.cases(rc, rng, "tiny", "cpu")
    assert len(cases) == 4
    for case, size, me, up in cases:
        mine, theirs = _host(me()), _host(up())
        for a, b in zip(mine, theirs):
            assert rel(a, b) <= 1e-5, (case, rel(a, b))
