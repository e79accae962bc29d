"""What the tests of the CUDA path (tests/test_cuda_*.py) share: where kernels run, tolerances, comparisons.

Where the kernels run
---------------------
numba decides once, when ``numba.cuda`` is first imported, whether it drives a GPU or its simulator
(``NUMBA_ENABLE_CUDASIM=1``), and another test may already have imported it.  So no test file flips the switch
inside the pytest process.  Instead:

* if this process can launch kernels (a real GPU, or the simulator enabled before Python started), every test
  runs here, on that device;
* otherwise every kernel test is skipped here (:data:`needs_device`) and each file's
  ``test_kernels_under_simulator`` re-runs that very file in a subprocess with ``NUMBA_ENABLE_CUDASIM=1``
  (:func:`run_file_under_simulator`) and fails if anything in it fails.  That is robust whatever the test order
  and whatever else imported numba.cuda.

Tolerances (issue 7): every CUDA result against its CPU twin within 1e-12 relative in float64 and 1e-5 in float32,
relative to the largest magnitude of the CPU result.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import rel  # noqa: F401  (re-exported: the CUDA tests import it from here)

ROOT = Path(__file__).resolve().parent.parent
TOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-5}
DTYPES = [np.float64, np.float32]


def device_mode():
    """'simulator', 'hardware' or None (this process cannot launch kernels)."""
    from numba.core import config

    if config.ENABLE_CUDASIM:
        return "simulator"
    try:
        from numba import cuda

        return "hardware" if cuda.is_available() else None
    except Exception:
        return None


MODE = device_mode()
needs_device = pytest.mark.skipif(
    MODE is None, reason="no GPU here and the simulator is off in this process: run by test_kernels_under_simulator"
)


def run_file_under_simulator(path):
    """Run the test file ``path`` in a subprocess with NUMBA_ENABLE_CUDASIM=1; fail with its output if it fails."""
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(Path(path))],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    out = r.stdout[-6000:] + r.stderr[-2000:]
    assert r.returncode == 0, out
    assert " passed" in r.stdout and "failed" not in r.stdout, out


def close(a, b, dtype):
    """Assert ``rel(a, b)`` within the issue's tolerance for ``dtype``."""
    assert rel(a, b) <= TOL[np.dtype(dtype)], rel(a, b)


def dev(a):
    """A NumPy array copied to the device (C-contiguous)."""
    from refnsm.cuda import to_device

    return to_device(np.ascontiguousarray(a))


def host(a):
    """A device array copied back (a NumPy array passes through)."""
    from refnsm.cuda import to_host

    return to_host(a)


def is_dev(a):
    from refnsm.cuda import is_device_array

    return is_device_array(a)


def on_cuda(module, *names):
    """The public functions ``names`` of ``module`` with ``device="cuda"`` bound (what a user calls)."""
    import functools
    import types

    return types.SimpleNamespace(**{n: functools.partial(getattr(module, n), device="cuda") for n in names})
