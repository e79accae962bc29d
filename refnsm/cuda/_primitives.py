r"""Deterministic CUDA building blocks: tiled matrix products, row norms, reductions, casts.

Every kernel here is a real ``numba.cuda`` kernel (nopython CUDA, compiled by NVVM on a GPU; run thread by thread
in Python by the simulator).  None uses atomics, so a result never depends on thread scheduling:

* :func:`matmul` computes :math:`C = \mathrm{op}(A)\,\mathrm{op}(B)` (``op`` = identity or transpose) with
  :math:`T \times T` tiles staged in shared memory.  Thread :math:`(i, j)` owns :math:`C_{ij}` and accumulates
  :math:`\sum_k \mathrm{op}(A)_{ik}\,\mathrm{op}(B)_{kj}` in the order :math:`k = 0, 1, \dots, K-1` (padding adds
  exact zeros), so the summation order is the naive one and does not depend on the tile size.  The product of a
  matrix with its own transpose is exactly symmetric.  On hardware NVVM may contract ``a*b + c`` into a fused
  multiply-add, which changes the last bit against the CPU (BLAS) but not from one run to the next.
* :func:`sum_reduce` sums in float64 with **one** block of ``RED`` threads: thread ``t`` adds elements
  ``t, t + RED, t + 2 RED, ...`` in order, then a fixed binary tree in shared memory combines the partial sums.
  Fixed launch configuration, fixed order: bitwise repeatable.
* :func:`count_nonfinite` and :func:`count_outside_unit_interval` use the same reduction (exact: counts).

Launch sizes (``TILE``, ``BLOCK2``, ``TPB``, ``RED``) are fixed per mode: smaller under the simulator, which
spawns a Python thread per CUDA thread.  ``RED`` fixes the reduction tree, so the simulator and a GPU may differ
in the last bit of a reduced sum; each is compared with the CPU within the test tolerance and is repeatable.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numba
import numpy as np
from numba import cuda

from . import require, using_simulator

if using_simulator():
    TILE, BLOCK2, TPB, RED = 4, 4, 8, 8
else:
    TILE, BLOCK2, TPB, RED = 16, 16, 128, 256

_NB = {np.dtype(np.float32): numba.float32, np.dtype(np.float64): numba.float64}
_FT = {np.dtype(np.float32): np.float32, np.dtype(np.float64): np.float64}

# reduction modes
SUM, NONFINITE, OUTSIDE_UNIT = 0, 1, 2


def grid1(n):
    """(blocks, threads) for a 1-D launch over n items (at least one block)."""
    return max(1, (n + TPB - 1) // TPB), TPB


def grid2(n, m):
    """(blocks, threads) for a 2-D launch over an [n, m] output: x runs over columns, y over rows."""
    return (max(1, (m + BLOCK2 - 1) // BLOCK2), max(1, (n + BLOCK2 - 1) // BLOCK2)), (BLOCK2, BLOCK2)


# ------------------------------------------------------------------------------------------------ kernels
@lru_cache(maxsize=None)
def matmul_kernel(dtype):
    """The tiled product kernel for one float dtype (shared-memory tiles need the element type)."""
    nbt = _NB[np.dtype(dtype)]
    zero = _FT[np.dtype(dtype)](0.0)
    T = TILE

    @cuda.jit
    def _matmul(A, B, C, ta, tb):
        sA = cuda.shared.array((T, T), nbt)
        sB = cuda.shared.array((T, T), nbt)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        i = cuda.blockIdx.y * T + ty
        j = cuda.blockIdx.x * T + tx
        n = C.shape[0]
        m = C.shape[1]
        kd = A.shape[0] if ta else A.shape[1]
        acc = zero
        for t in range((kd + T - 1) // T):
            ka = t * T + tx  # this thread stages op(A)[i, ka] and op(B)[kb, j]
            if i < n and ka < kd:
                sA[ty, tx] = A[ka, i] if ta else A[i, ka]
            else:
                sA[ty, tx] = zero
            kb = t * T + ty
            if j < m and kb < kd:
                sB[ty, tx] = B[j, kb] if tb else B[kb, j]
            else:
                sB[ty, tx] = zero
            cuda.syncthreads()
            for q in range(T):
                acc += sA[ty, q] * sB[q, tx]
            cuda.syncthreads()
        if i < n and j < m:
            C[i, j] = acc

    return _matmul


@lru_cache(maxsize=None)
def row_sqnorms_kernel(dtype):
    zero = _FT[np.dtype(dtype)](0.0)

    @cuda.jit
    def _row_sqnorms(x, out):
        i = cuda.grid(1)
        if i < x.shape[0]:
            acc = zero
            for k in range(x.shape[1]):
                acc += x[i, k] * x[i, k]
            out[i] = acc

    return _row_sqnorms


@cuda.jit
def _reduce(a, mode, out):
    """One block of RED threads: strided float64 partial sums, then a fixed tree (no atomics)."""
    part = cuda.shared.array(RED, numba.float64)
    t = cuda.threadIdx.x
    acc = 0.0
    for k in range(t, a.shape[0], RED):
        v = a[k]
        if mode == 0:
            acc += float(v)  # explicit: in the simulator 0.0 + float32 would stay float32 (NEP 50)
        elif mode == 1:
            if not math.isfinite(v):
                acc += 1.0
        else:
            if not (v >= 0 and v <= 1):
                acc += 1.0
    part[t] = acc
    cuda.syncthreads()
    s = RED // 2
    while s > 0:
        if t < s:
            part[t] = part[t] + part[t + s]
        cuda.syncthreads()
        s //= 2
    if t == 0:
        out[0] = part[0]


@cuda.jit
def _cast(a, out):
    i = cuda.grid(1)
    if i < a.shape[0]:
        out[i] = a[i]


# ------------------------------------------------------------------------------------------- host wrappers
def matmul(A, B, trans_a=False, trans_b=False):
    """Device ``op(A) @ op(B)`` (both C-contiguous 2-D device arrays of the same float dtype)."""
    n = A.shape[1] if trans_a else A.shape[0]
    ka = A.shape[0] if trans_a else A.shape[1]
    kb = B.shape[1] if trans_b else B.shape[0]
    m = B.shape[0] if trans_b else B.shape[1]
    if ka != kb:
        raise ValueError(f"B: inner dimensions differ: op(A) is {(n, ka)}, op(B) is {(kb, m)}")
    C = cuda.device_array((n, m), dtype=A.dtype)
    if n and m:
        blocks = (max(1, (m + TILE - 1) // TILE), max(1, (n + TILE - 1) // TILE))
        matmul_kernel(A.dtype)[blocks, (TILE, TILE)](A, B, C, bool(trans_a), bool(trans_b))
    return C


def matmul_ab(A, B):
    """C = A B."""
    return matmul(A, B)


def matmul_abt(A, B):
    """C = A B^T (the Gram matrix when B is A)."""
    return matmul(A, B, trans_b=True)


def matmul_atb(A, B):
    """C = A^T B."""
    return matmul(A, B, trans_a=True)


def row_sqnorms(x):
    """Device vector of the squared row norms of a 2-D device array, each summed in column order."""
    out = cuda.device_array(x.shape[0], dtype=x.dtype)
    if x.shape[0]:
        b, t = grid1(x.shape[0])
        row_sqnorms_kernel(x.dtype)[b, t](x, out)
    return out


def _flat(a):
    return a.reshape(a.size) if a.ndim != 1 else a


def _run_reduce(a, mode):
    require()
    out = cuda.device_array(1, dtype=np.float64)
    flat = _flat(a)
    if flat.size == 0:
        return 0.0
    _reduce[1, RED](flat, mode, out)
    return float(out.copy_to_host()[0])


def sum_reduce(a) -> float:
    """Deterministic float64 sum of every element of a device array (fixed single-block tree)."""
    return _run_reduce(a, SUM)


def count_nonfinite(a) -> int:
    """Number of NaN/Inf elements of a float device array (a device reduction; only the count is copied back)."""
    return int(_run_reduce(a, NONFINITE))


def count_outside_unit_interval(a) -> int:
    """Number of elements outside [0, 1] (NaN counts as outside)."""
    return int(_run_reduce(a, OUTSIDE_UNIT))


def astype(a, dtype):
    """A device copy of ``a`` converted to ``dtype`` (``a`` itself when it already has that dtype)."""
    dtype = np.dtype(dtype)
    if a.dtype == dtype:
        return a
    out = cuda.device_array(a.shape, dtype=dtype)
    if a.size:
        b, t = grid1(a.size)
        _cast[b, t](_flat(a), _flat(out))
    return out


@cuda.jit
def _add(a, b, out):
    q = cuda.grid(1)
    if q < out.shape[0]:
        out[q] = a[q] + b[q]


def add(a, b):
    """``a + b`` elementwise (same shape and dtype; one thread per element, in the dtype)."""
    out = cuda.device_array(a.shape, dtype=a.dtype)
    if a.size:
        bl, t = grid1(a.size)
        _add[bl, t](_flat(a), _flat(b), _flat(out))
    return out
