r"""The error measure of the oracle: error relative to the scale of the terms, in units of the dtype's epsilon.

A result :math:`y = \sum_t c_t` formed from terms :math:`c_t` (a sum, a dot product, a matrix product, a sum of
pairwise contributions) can be computed in floating point at best to within a few ulp of
:math:`s = \sum_t |c_t|`, the *term scale*, not to within a few ulp of :math:`|y|` itself: when the terms cancel,
:math:`|y| \ll s`, and no summation order can do better without extra precision.  The oracle therefore returns,
with every exact result, the term scale of each entry, computed from the terms of the plain mathematical
formula (for instance the gaussian similarity's gradient as :math:`\sum_j B_{ij}(x_i - x_j)`, whose terms vanish
for equal rows).  The error of a computed array :math:`\hat y` against the exact :math:`y` is

.. math::

    e = \max_{e} \frac{|\hat y_e - y_e|}{\varepsilon \cdot \max(s_e, \bar s_{r(e)})},

where :math:`\varepsilon` is the machine epsilon of the result's dtype and :math:`\bar s_{r(e)}` is the largest term
scale in the same row (the last axis) as entry :math:`e`: an entry whose own terms are all 0 (a feature no
sample uses) is judged against its row, so one does not get an infinite error from a rounding that is tiny next
to the rest of the sample's gradient.  :math:`e` is in units of :math:`\varepsilon`; a correctly rounded result
has :math:`e \le 1/2` on every entry.  The denominator never falls below the dtype's smallest normal number: an
exact result below it (a float32 gradient of 1e-70) has no relative accuracy in that dtype, and rounding it to 0 is
correct.

The *conditioning* reported alongside is :math:`\kappa = \max_e s_e / |y_e|` over the entries with
:math:`y_e \ne 0` (the condition number of the final summation; 1 when no terms cancel).  It is a property of the
problem, not of the code: it says how much of the error a given input forces on any float implementation that
forms the same terms.

The exact values are computed from the *same* floating-point inputs the code under test received (float32 inputs
exactly as float32), with ``DPS`` decimal digits, so the only error measured is that of the computation.
"""

from __future__ import annotations

import numpy as np

DPS = 50  #: decimal digits of every oracle evaluation


def eps(dtype) -> float:
    return float(np.finfo(np.dtype(dtype)).eps)


def error_in_eps(computed, exact, scale, dtype=None):
    """(worst error in units of eps, flat index of the worst entry) of ``computed`` against ``exact``.

    ``exact`` and ``scale`` are float64 arrays (or scalars) of the same shape as ``computed``; ``dtype`` is the dtype
    whose epsilon is the unit (default: ``computed``'s).  A NaN or an Inf where the exact answer is finite counts
    as an infinite error; a shape mismatch raises."""
    c = np.asarray(computed)
    dtype = c.dtype if dtype is None else np.dtype(dtype)
    c = c.astype(np.float64)
    y = np.asarray(exact, dtype=np.float64)
    s = np.asarray(scale, dtype=np.float64)
    if c.shape != y.shape or s.shape != y.shape:
        raise ValueError(f"error_in_eps: shapes differ: computed {c.shape}, exact {y.shape}, scale {s.shape}")
    if c.size == 0:
        return 0.0, -1
    diff = np.where(np.isfinite(c), np.abs(c - y), np.inf)
    if c.ndim == 0:
        row = s
    else:
        row = np.max(s, axis=-1, keepdims=True) if c.ndim >= 1 else s
    den = np.maximum(np.maximum(s, row) * eps(dtype), np.finfo(dtype).tiny)
    with np.errstate(divide="ignore", invalid="ignore"):
        e = np.where(diff == 0, 0.0, diff / den)
    e = np.where(np.isnan(e), np.inf, e)
    k = int(np.argmax(e))
    return float(e.reshape(-1)[k]), k


def conditioning(exact, scale) -> float:
    """max over entries with a non-zero exact value of (term scale / |exact value|); 1.0 for an empty or zero result."""
    y = np.abs(np.asarray(exact, dtype=np.float64)).reshape(-1)
    s = np.asarray(scale, dtype=np.float64).reshape(-1)
    nz = y > 0
    if not nz.any():
        return 1.0
    return float(max(1.0, np.max(s[nz] / y[nz])))


#: the goal asserted by the fast tests and marked in docs/accuracy.md: worst error, in eps of the dtype, relative
#: to the term scale.  float64: "within a few eps" for the sums of at most a few dozen terms the cases form;
#: float32: the same bound in float32's eps (the kernels compute in the input dtype, as torch does).
GOAL = {np.dtype(np.float64): 16.0, np.dtype(np.float32): 16.0}
