"""Small helpers for writing the oracle as plain math: NumPy object arrays of mpmath numbers.

``mpa(x)`` turns a float array into an object array of ``mpf`` (exactly: every float is a rational), ``f64`` turns
one back (rounded to nearest float64).  A *pair* ``(value, scale)`` carries, with each exact result, the sum of
the absolute values of the terms that form it (see ``measure.py``); ``mm`` and ``msum`` form both at once.
Everything runs inside ``mp.workdps(DPS)`` opened by the caller through :func:`exact`.
"""

from __future__ import annotations

import functools

import mpmath as mp
import numpy as np

from .measure import DPS

_vec = {}


def mpa(x):
    x = np.asarray(x)
    out = np.empty(x.shape, dtype=object)
    flat = out.reshape(-1)
    for k, v in enumerate(x.reshape(-1)):
        flat[k] = mp.mpf(float(v))
    return out


def f64(a):
    a = np.asarray(a, dtype=object)
    return np.array([float(v) for v in a.reshape(-1)], dtype=np.float64).reshape(a.shape)


def vmap(fn, a):
    """Apply a scalar mpmath function elementwise to an object array."""
    a = np.asarray(a, dtype=object)
    out = np.empty(a.shape, dtype=object)
    fo, fa = out.reshape(-1), a.reshape(-1)
    for k in range(fa.size):
        fo[k] = fn(fa[k])
    return out


def absa(a):
    return vmap(abs, a)


def mm(a, b):
    """(a @ b, |a| @ |b|)."""
    return a @ b, absa(a) @ absa(b)


def zeros(shape):
    out = np.empty(shape, dtype=object)
    out.reshape(-1)[:] = [mp.mpf(0)] * out.size
    return out


def exact(fn):
    """Decorator: run ``fn`` with DPS digits and convert every (value, scale) pair of its dict to float64 arrays."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with mp.workdps(DPS):
            res = fn(*args, **kwargs)
            return {k: (f64(v), f64(s)) for k, (v, s) in res.items()}

    return wrapper
