"""What the test files share: the relative error of a result against its reference.

(The CUDA tests' device probe, tolerances and simulator re-run are in ``tests/cuda_support.py``, which uses this.)
"""

import numpy as np


def rel(a, b):
    """``max |a - b| / max |b|`` in float64; against an all-zero (or empty) reference the denominator is 1e-300, so
    only an exact match passes a tolerance."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    if b.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))
