r"""CUDA twins of the Hopfield kernels (:mod:`refnsm.hopfield._kernels`): the same names and arguments.

Open the two files side by side: each function here computes what its namesake there computes, on numba device
arrays (C-contiguous float32/float64, no validation: :mod:`refnsm.hopfield.modern` validates through
:mod:`refnsm._backend`), writing into the output arrays it is given and returning what the CPU kernel returns
(host scalars: the energy, ``(n_iter, last_change)``, ``(value, index)``).  The binary baselines
(``classical_async``, ``dense_async``: one unit at a time, sequential by definition) have no twin.  Imported
only when ``device="cuda"`` is asked for.

How each step runs (thread layouts in the kernel docstrings):

* matrix products (:math:`XW`, :math:`AW^\top`, :math:`E^\top A`, :math:`X^\top A`, ...) use the tiled product of
  :mod:`refnsm.cuda._primitives` (each entry the sequential sum over k), launched into the caller's output;
* row-wise work (softmax, energies, row norms) is one thread per row, looping over the row in the CPU kernel's
  order with the CPU kernel's expression, accumulators and casts (float64 where the CPU kernel promotes to
  float64, written explicitly with ``float()`` so that the simulator, which follows NumPy's scalar rules, computes
  what the hardware computes); elementwise work (residuals, the weight update) is one thread per element;
* maxima (the largest squared norm and its first index; the max-norm of an iterate's update) and the batch-mean
  energy are single-block reductions with a fixed tree (no atomics), so two runs give identical bits.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numba
import numpy as np
from numba import cuda

from ..cuda import _primitives as prim
from ..cuda._arrays import empty as _empty

__all__ = [
    "copy_finite", "softmax_rows", "retrieve_into", "iterate_into", "row_sq_norm_max", "energy_rows",
    "delta_into", "contrastive_into", "evolve_into", "advance_into", "plasticity_into",
]

RED = prim.RED


# ================================================================================================ kernels
@lru_cache(maxsize=None)
def _kernels(dtype):
    """The CUDA kernels for one float dtype (arrays of that dtype; accumulators float64 as on the CPU)."""

    @cuda.jit
    def softmax_rows(S, beta, A, rowmax, lse):
        """One thread per row b: ``S[b] -= max S[b]``, ``A[b] = softmax(beta S[b])``, ``lse[b] = log sum exp``.

        The row's loops run in index order, as the CPU kernel's: the max, then ``e_j = exp(beta s_j)`` stored in
        ``A`` (rounded to the dtype) and summed unrounded in float64, then ``A[b, j] = A[b, j] / total``.
        Deterministic: each output element is written by its row's thread only.
        """
        b = cuda.grid(1)
        if b < S.shape[0]:
            H = S.shape[1]
            m = S[b, 0]
            for j in range(1, H):
                if S[b, j] > m:
                    m = S[b, j]
            rowmax[b] = m
            tot = 0.0
            for j in range(H):
                s = S[b, j] - m
                S[b, j] = s
                e = math.exp(beta * float(s))
                A[b, j] = e
                tot += e
            for j in range(H):
                A[b, j] = float(A[b, j]) / tot
            lse[b] = math.log(tot)

    @cuda.jit
    def residual(X, Xhat, inv, E):
        """One thread per element (b, i): ``E[b, i] = (X[b, i] - Xhat[b, i]) * inv`` (inv = 1/B in float64)."""
        i, b = cuda.grid(2)
        if b < X.shape[0] and i < X.shape[1]:
            E[b, i] = float(X[b, i] - Xhat[b, i]) * inv

    @cuda.jit
    def scaled_difference(dW, T, inv):
        """One thread per element (i, j): ``dW[i, j] = (dW[i, j] - T[i, j]) * inv`` (the contrastive rule's end)."""
        j, i = cuda.grid(2)
        if i < dW.shape[0] and j < dW.shape[1]:
            dW[i, j] = float(dW[i, j] - T[i, j]) * inv

    @cuda.jit
    def evolve(W, dW, eta, reg_lambda, l1_lambda, mask, use_mask, out):
        """One thread per element (i, j): ``out = W + eta dW - reg_lambda W - l1_lambda sign(W)``, then
        ``out *= mask`` when ``use_mask``; the CPU kernel's order of operations, in float64, rounded on the store
        (the sign term is skipped when ``l1_lambda`` is 0, as on the CPU)."""
        j, i = cuda.grid(2)
        if i < W.shape[0] and j < W.shape[1]:
            w = W[i, j]
            wf = float(w)
            if l1_lambda != 0.0:
                sg = 0.0
                if w > 0:
                    sg = 1.0
                elif w < 0:
                    sg = -1.0
                out[i, j] = wf + eta * float(dW[i, j]) - reg_lambda * wf - l1_lambda * sg
            else:
                out[i, j] = wf + eta * float(dW[i, j]) - reg_lambda * wf
            if use_mask:
                out[i, j] = out[i, j] * mask[i, j]

    @cuda.jit
    def energy_rows(X, Xhat, rowmax, lse, beta, c, variant, out):
        """One thread per row b: the float64 energy of probe b, with ``c = log(H) / beta + max-norm^2 / 2``.

        variant 0 (Ramsauer): ``-rowmax - lse/beta + x.x/2 + c``; variant 1 (ngclearn): ``-lse/beta + x.xhat/2 +
        c``; the dot products summed in index order in float64 (products formed in the dtype, as on the CPU).
        """
        b = cuda.grid(1)
        if b < X.shape[0]:
            q = 0.0
            if variant == 0:
                for i in range(X.shape[1]):
                    q += float(X[b, i] * X[b, i])
                out[b] = -rowmax[b] - lse[b] / beta + 0.5 * q + c
            else:
                for i in range(X.shape[1]):
                    q += float(X[b, i] * Xhat[b, i])
                out[b] = -lse[b] / beta + 0.5 * q + c

    @cuda.jit
    def sq_norms(W, axis, out):
        """Squared norms in float64: one thread per column j (axis 0, summed over rows in order) or per row i
        (axis 1, four partial sums over j = 0, 4, ... / 1, 5, ... / ... combined as (s0 + s1) + (s2 + s3), the CPU
        kernel's order)."""
        k = cuda.grid(1)
        D = W.shape[0]
        H = W.shape[1]
        if axis == 0:
            if k < H:
                acc = 0.0
                for i in range(D):
                    acc += float(W[i, k] * W[i, k])
                out[k] = acc
        elif k < D:
            J4 = H - H % 4
            s0 = 0.0
            s1 = 0.0
            s2 = 0.0
            s3 = 0.0
            for j in range(0, J4, 4):
                s0 += float(W[k, j] * W[k, j])
                s1 += float(W[k, j + 1] * W[k, j + 1])
                s2 += float(W[k, j + 2] * W[k, j + 2])
                s3 += float(W[k, j + 3] * W[k, j + 3])
            for j in range(J4, H):
                s0 += float(W[k, j] * W[k, j])
            out[k] = (s0 + s1) + (s2 + s3)

    @cuda.jit
    def step_change(X, Xhat, diff):
        """One thread per element (b, i) of an iteration: ``diff = |Xhat - X|`` (in the dtype), then ``X = Xhat``."""
        i, b = cuda.grid(2)
        D = X.shape[1]
        if b < X.shape[0] and i < D:
            diff[b * D + i] = abs(Xhat[b, i] - X[b, i])
            X[b, i] = Xhat[b, i]

    return dict(softmax_rows=softmax_rows, residual=residual, scaled_difference=scaled_difference, evolve=evolve,
                energy_rows=energy_rows, sq_norms=sq_norms, step_change=step_change)


@cuda.jit
def _argmax_first(v, val, idx):
    """One block of RED threads: the max of the float64 vector ``v`` (>= 0) and the first index attaining it.

    Thread t scans ``v[t], v[t + RED], ...`` keeping its first strict maximum; a fixed tree then combines pairs,
    keeping the larger value and, on equal values, the smaller index.  The result is exact and independent of the
    schedule: the CPU's ``(max, first argmax)``.
    """
    sv = cuda.shared.array(RED, numba.float64)
    si = cuda.shared.array(RED, numba.int64)
    t = cuda.threadIdx.x
    best = -1.0
    arg = 0
    for k in range(t, v.shape[0], RED):
        if v[k] > best:
            best = v[k]
            arg = k
    sv[t] = best
    si[t] = arg
    cuda.syncthreads()
    s = RED // 2
    while s > 0:
        if t < s:
            ov = sv[t + s]
            oi = si[t + s]
            if ov > sv[t] or (ov == sv[t] and oi < si[t]):
                sv[t] = ov
                si[t] = oi
        cuda.syncthreads()
        s //= 2
    if t == 0:
        val[0] = sv[0]
        idx[0] = si[0]


@cuda.jit
def _max_reduce(v, out):
    """One block of RED threads: ``out[0] = max(v)`` for a float64 vector of values >= 0 (strided scans, then a
    fixed tree; a max is exact, so the result equals the CPU's running max)."""
    part = cuda.shared.array(RED, numba.float64)
    t = cuda.threadIdx.x
    m = 0.0
    for k in range(t, v.shape[0], RED):
        if v[k] > m:
            m = v[k]
    part[t] = m
    cuda.syncthreads()
    s = RED // 2
    while s > 0:
        if t < s and part[t + s] > part[t]:
            part[t] = part[t + s]
        cuda.syncthreads()
        s //= 2
    if t == 0:
        out[0] = part[0]


def _k(a):
    return _kernels(a.dtype)


def _copy(a):
    """A device copy of a device array."""
    out = cuda.device_array(a.shape, dtype=a.dtype)
    out.copy_to_device(a)
    return out


def _matmul_into(A, B, out, trans_a=False, trans_b=False):
    """``out = op(A) op(B)`` by the tiled product of ``_primitives`` (each entry the sequential sum over k)."""
    n, m = out.shape
    if n and m:
        blocks = (max(1, (m + prim.TILE - 1) // prim.TILE), max(1, (n + prim.TILE - 1) // prim.TILE))
        prim.matmul_kernel(A.dtype)[blocks, (prim.TILE, prim.TILE)](A, B, out, bool(trans_a), bool(trans_b))


# ======================================================================================= kernel twins
def all_finite(X):
    """Twin of ``refnsm._fastchecks.all_finite``: True when no element is NaN/Inf (a device count; only the count is copied)."""
    return X.size == 0 or prim.count_nonfinite(X) == 0


def copy_finite(src, dst):
    """Twin of ``_kernels.copy_finite``: copy ``src`` into ``dst`` (device to device); True when all finite."""
    dst.copy_to_device(src)
    return all_finite(dst)


def softmax_rows(S, beta, A, rowmax, lse):
    """Twin of ``_kernels.softmax_rows`` (in place on ``S``; ``rowmax``, ``lse`` float64)."""
    b, t = prim.grid1(S.shape[0])
    _k(S)["softmax_rows"][b, t](S, float(beta), A, rowmax, lse)


def retrieve_into(X, W, beta, S, A, Xhat, rowmax, lse):
    """Twin of ``_kernels.retrieve_into``: ``S = XW - rowmax``, ``A = softmax(beta S)``, ``Xhat = A W^T``."""
    _matmul_into(X, W, S)
    softmax_rows(S, beta, A, rowmax, lse)
    _matmul_into(A, W, Xhat, trans_b=True)


def iterate_into(X0, W, beta, tol, max_iter, X, S, A, Xhat, rowmax, lse):
    """Twin of ``_kernels.iterate_into``: iterate ``x <- W softmax(beta W^T x)`` from ``X0`` into ``X``.

    The CPU's stopping rule: stop after the first update whose max-norm over the whole batch,
    ``max_{b,i} |x_new - x|``, is ``<= tol``, or after ``max_iter`` updates.  Each iteration is one retrieval, one
    elementwise kernel (the update and its absolute changes) and a single-block max; only that max is copied back.
    Returns ``(n_iter, last_change)``.
    """
    B, D = X0.shape
    X.copy_to_device(X0)
    diff = _empty(B * D, np.float64)
    out = _empty(1, np.float64)
    kk = _k(X)
    b2, t2 = prim.grid2(B, D)
    change = math.inf
    it = 0
    while it < max_iter:
        retrieve_into(X, W, beta, S, A, Xhat, rowmax, lse)
        kk["step_change"][b2, t2](X, Xhat, diff)
        _max_reduce[1, RED](diff, out)
        change = float(out.copy_to_host()[0])
        it += 1
        if change <= tol:
            break
    return it, change


def row_sq_norm_max(W, axis):
    """Twin of ``_kernels.row_sq_norm_max``: ``(max squared norm, first index)`` over the columns (axis 0) or rows
    (axis 1) of ``W``, as host numbers."""
    n = W.shape[1] if axis == 0 else W.shape[0]
    norms = _empty(n, np.float64)
    b, t = prim.grid1(n)
    _k(W)["sq_norms"][b, t](W, int(axis), norms)
    val = _empty(1, np.float64)
    idx = _empty(1, np.int64)
    _argmax_first[1, RED](norms, val, idx)
    return float(val.copy_to_host()[0]), int(idx.copy_to_host()[0])


def energy_rows(X, Xhat, rowmax, lse, beta, H, half_m2, variant, out):
    """Twin of ``_kernels.energy_rows``: per-row energies into the float64 device vector ``out``."""
    c = math.log(H) / beta + half_m2  # the CPU kernel's np.log(H) / beta + half_m2, formed once on the host
    b, t = prim.grid1(X.shape[0])
    _k(X)["energy_rows"][b, t](X, Xhat, rowmax, lse, float(beta), float(c), int(variant), out)


def delta_into(X, Xhat, A, E, dW):
    """Twin of ``_kernels.delta_into``: ``E = (X - Xhat) / B``, ``dW = E^T A`` (the tiled product; for B = 1 each
    entry is the single product, the CPU's value)."""
    B, D = X.shape
    b, t = prim.grid2(B, D)
    _k(X)["residual"][b, t](X, Xhat, 1.0 / B, E)
    _matmul_into(E, A, dW, trans_a=True)


def contrastive_into(X, Xhat, A, W, neg_beta, Shat, Ahat, rowmax, lse, T, dW):
    """Twin of ``_kernels.contrastive_into``: ``dW = (X^T A - Xhat^T Ahat) / B``, ``Ahat = softmax(neg_beta Xhat W)``.

    ``T`` (D, H) is a work buffer here for every B (the CPU kernel skips it for B = 1, where the two rank-1
    products are formed directly; the tiled product gives the same single products).
    """
    B = X.shape[0]
    _matmul_into(Xhat, W, Shat)
    softmax_rows(Shat, neg_beta, Ahat, rowmax, lse)
    _matmul_into(X, A, dW, trans_a=True)
    _matmul_into(Xhat, Ahat, T, trans_a=True)
    b, t = prim.grid2(*dW.shape)
    _k(dW)["scaled_difference"][b, t](dW, T, 1.0 / B)


def evolve_into(W, dW, eta, reg_lambda, l1_lambda, mask, use_mask, out):
    """Twin of ``_kernels.evolve_into`` (``mask`` is not read unless ``use_mask``)."""
    b, t = prim.grid2(*W.shape)
    _k(W)["evolve"][b, t](W, dW, float(eta), float(reg_lambda), float(l1_lambda), mask, bool(use_mask), out)


def advance_into(X, W, beta, variant, S, A, Xhat):
    """Twin of ``_kernels.advance_into``: retrieval plus the batch-mean energy (returned as a host float)."""
    B = X.shape[0]
    rowmax = _empty(B, np.float64)
    lse = _empty(B, np.float64)
    e = _empty(B, np.float64)
    retrieve_into(X, W, beta, S, A, Xhat, rowmax, lse)
    m2, _ = row_sq_norm_max(W, 1 if variant == 1 else 0)
    energy_rows(X, Xhat, rowmax, lse, beta, W.shape[1], 0.5 * m2, variant, e)
    return prim.sum_reduce(e) / B


def plasticity_into(rule, X, Xhat, A, W, neg_beta, eta, reg_lambda, l1_lambda, mask, use_mask, dW, Wn):
    """Twin of ``_kernels.plasticity_into``: ``dW`` by the delta (0) or contrastive (1) rule, then ``Wn``."""
    B, D = X.shape
    H = W.shape[1]
    if rule == 0:
        delta_into(X, Xhat, A, _empty((B, D), X.dtype), dW)
    else:
        contrastive_into(X, Xhat, A, W, neg_beta, _empty((B, H), X.dtype), _empty((B, H), X.dtype),
                         _empty(B, np.float64), _empty(B, np.float64), _empty((D, H), X.dtype), dW)
    evolve_into(W, dW, eta, reg_lambda, l1_lambda, mask, use_mask, Wn)
