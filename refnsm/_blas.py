r"""Matrix products from Python through the BLAS that the Numba kernels call.

Inside a Numba kernel ``np.dot`` calls SciPy's OpenBLAS (Numba binds ``scipy.linalg.cython_blas``).  NumPy's ``@``
and ``np.dot`` call a second OpenBLAS that NumPy's wheels bundle, with its own thread pool.  After a product, an
OpenBLAS pool's threads keep spinning for a while before they sleep; a host function that alternates a kernel's
products with NumPy's products therefore runs the two pools' threads against each other on the same cores.  On
this project's 2-core benchmark machine that made ``hopfield.retrieve_vjp`` at B=64, D=64, H=128 take 6.6-8 ms
instead of 0.17 ms (either pool limited to one thread: 0.17 ms), see ``docs/contributing.md``, "One BLAS per hot
path".

:func:`matmul` makes the product with SciPy's BLAS (``scipy.linalg.blas``, the same library as
``cython_blas``), so the host code next to such a kernel stays on one library.  It is for 2-D float32/float64
operands, the products of a VJP formed on the host; it costs about 1.3 µs more per call than ``np.dot`` at small
sizes (the f2py wrapper), nothing measurable at sizes where a pool wakes.

The product is ``C = A B`` computed as the column-major product :math:`C^\top = B^\top A^\top`, the same
reduction NumPy's row-major ``cblas_dgemm`` call hands to OpenBLAS, so neither operand is copied when it is C- or
F-contiguous (a transposed view is passed with the transpose flag) and the result is C-contiguous.
"""

from __future__ import annotations

import numpy as np

__all__ = ["matmul"]


def _fortran_transpose(a):
    """``(M, trans)`` with ``op(M) = a^T`` and ``M`` F-contiguous: ``a.T`` itself when ``a`` is C-contiguous, ``a``
    with the transpose flag when it is F-contiguous, a C-contiguous copy otherwise."""
    if a.flags.c_contiguous:
        return a.T, 0
    if a.flags.f_contiguous:
        return a, 1
    return np.ascontiguousarray(a).T, 0


def matmul(a, b):
    """``a @ b`` of two 2-D arrays of one dtype (float32 or float64) by SciPy's ``?gemm``; a new C-contiguous
    array."""
    from scipy.linalg import blas

    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul: expected 2-D operands [m, k] and [k, n], got shapes {a.shape} and {b.shape}")
    if a.dtype != b.dtype or a.dtype not in (np.float32, np.float64):
        raise TypeError(f"matmul: expected two float32 or two float64 operands, got {a.dtype} and {b.dtype}")
    m, n = a.shape[0], b.shape[1]
    if m == 0 or n == 0 or a.shape[1] == 0:
        return np.zeros((m, n), dtype=a.dtype)
    gemm = blas.dgemm if a.dtype == np.float64 else blas.sgemm
    bt, trans_bt = _fortran_transpose(b)
    at, trans_at = _fortran_transpose(a)
    # column-major C^T = op(bt) op(at) = B^T A^T, an [n, m] F-ordered result: its transpose is C = A B, C-ordered
    return gemm(1.0, bt, at, trans_a=trans_bt, trans_b=trans_at).T
