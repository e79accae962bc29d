"""refnsm's CUDA path (device="cuda") passes the golden suite: on the GPU when there is one, under Numba's CUDA
simulator otherwise (`make test` sets NUMBA_ENABLE_CUDASIM=1 without a GPU).  The simulator runs every kernel
thread in Python, so here one case per function or class runs (both dtypes); `python -m refnsm golden verify
--backend refnsm:cuda` runs them all (measured times in docs/golden.md)."""

import os

import pytest

import refnsm.golden as G


def _cuda_usable():
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return True
    try:
        from numba import cuda
        return cuda.is_available()
    except Exception:
        return False


pytestmark = pytest.mark.skipif(not _cuda_usable(), reason="no GPU and NUMBA_ENABLE_CUDASIM is not 1")


@pytest.mark.parametrize("family", ("spiking", "similarity", "hopfield", "linear", "regularization"))
def test_refnsm_cuda_passes(family):
    sim = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
    cases = [c for c in (G.cheapest_per_function() if sim else G.cases()) if c.family == family]
    rep = G.verify("refnsm:cuda", cases=cases)
    assert rep.ok, "\n".join(r.line() for r in rep.failures())
    assert rep.counts["passed"] > 0
