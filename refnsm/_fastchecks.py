"""Numba kernels behind :mod:`refnsm._checks` (imported on first use, so ``import refnsm`` never loads Numba).

At the sizes of a training step (a 32 x 16 batch) the fixed cost of NumPy's ``np.isfinite(a).all()`` (a temporary
boolean array and two calls, about 2 µs) is larger than the work; one compiled loop that stops at the first bad
element costs a fraction of that and allocates nothing.
"""

import numpy as np
from numba import njit


@njit(cache=True)
def all_finite(a):
    """True when no element of the 1-D array ``a`` is NaN or Inf."""
    for i in range(a.shape[0]):
        if not np.isfinite(a[i]):
            return False
    return True
