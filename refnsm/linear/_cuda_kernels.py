r"""CUDA twins of the structured linear maps' kernels (:mod:`refnsm.linear._kernels`) and of the NumPy helpers the
maps with a device weight call: the same names and arguments.

``hh_chain_apply``, ``hh_chain_vjp`` (Householder chains, in place), ``householder_matrix``,
``householder_matrix_vjp``, ``pf_weight``, ``pf_weight_vjp`` (the fused softmax/sigmoid Perron-Frobenius map),
``add_bias``, ``col_sums``, ``all_finite`` (the shared affine layer), plus ``transpose`` (``Linear``'s
:math:`W = A^\top`) and ``spectral_factors`` / ``spectral_core_vjp`` (``SpectralLinear``'s :math:`\sigma(p)`,
:math:`Q_U \Sigma Q_V` and the elementwise part of its VJP).  They take C-contiguous float32/float64 device arrays (no
validation: :class:`refnsm.linear.base.LinearBase` validates through :mod:`refnsm._backend`) and return device
arrays.  Each kernel follows its CPU twin's loop and expression order in the same precision (float32 products
accumulated in float64 where the Numba kernel does that; ``float()`` makes the simulator, which runs the kernels as
Python, promote exactly as Numba does).  Matrix products use the tiled product of :mod:`refnsm.cuda._primitives`.
Imported only when ``device="cuda"`` is asked for.

Determinism: no atomics.  Every output element is written by one thread that sums in a fixed order, and launch
shapes are fixed per mode (GPU or simulator), so two runs give bitwise-identical results.

Householder chains.  A chain of reflectors is sequential, but every row of ``X`` goes through it independently and
each reflector is a dot product and an axpy over the row's trailing columns.  So one block owns a tile of
``HH_ROWS`` rows with ``HH_LANES`` threads per row (256 threads on a GPU): per reflector, the lanes split the
columns, a fixed shared-memory tree adds their float64 partial sums, and the lanes update their columns (coalesced:
neighbouring lanes touch neighbouring columns).  The VJP is the same walk backwards; its reflector gradients sum over
all rows, so each tile writes its partial sums to a workspace and a second kernel adds the tiles in a fixed order
(one launch pair per chunk of reflectors, the chunk sized to bound the workspace).  Against the CPU kernel, which sums
each dot product in column order, the float64 sums are reordered: see ``hh_chain_apply`` and ``hh_chain_vjp`` for
the resulting rounding.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numba
import numpy as np
from numba import cuda

from ..cuda import _primitives as prim
from ..cuda._arrays import empty as _empty
from .householder import _order as _reflector_order

__all__ = [
    "hh_chain_apply", "hh_chain_vjp", "householder_matrix", "householder_matrix_vjp", "pf_weight", "pf_weight_vjp",
    "add_bias", "col_sums", "all_finite", "transpose", "spectral_factors", "spectral_core_vjp",
]

# Householder chains: one block per tile of HH_ROWS rows, HH_LANES threads per row (see the module docstring)
if prim.using_simulator():
    HH_LANES, HH_ROWS = 4, 2
else:
    HH_LANES, HH_ROWS = 32, 8
# float64 workspace of the VJP's per-block partial reflector gradients: reflectors are processed in chunks that fit
HH_WORKSPACE_BYTES = 64 << 20


# ================================================================================================ kernels
@cuda.jit
def _hh_scales(U, order, f):
    # f[s] = 2 / (v.v) for reflector t = order[s], v = U[t, t:], summed in column order (as the CPU kernel)
    s = cuda.grid(1)
    if s < order.shape[0]:
        t = order[s]
        c = 0.0
        for j in range(t, U.shape[1]):
            c += float(U[t, j] * U[t, j])
        f[s] = 2.0 / c


@cuda.jit
def _hh_apply_tile(X, U, order, f):
    # block = HH_ROWS rows of X, HH_LANES threads per row; per reflector t: lane x sums X[b, j] v_j over its columns
    # j = t + x, t + x + HH_LANES, ... in order, the tree adds the lanes, then every lane updates its columns
    part = cuda.shared.array((HH_ROWS, HH_LANES), numba.float64)
    x = cuda.threadIdx.x
    y = cuda.threadIdx.y
    b = cuda.blockIdx.x * HH_ROWS + y
    live = b < X.shape[0]
    n = X.shape[1]
    for s in range(order.shape[0]):
        t = order[s]
        acc = 0.0
        if live:
            for j in range(t + x, n, HH_LANES):
                acc += float(X[b, j] * U[t, j])
        part[y, x] = acc
        cuda.syncthreads()
        h = HH_LANES // 2  # fixed binary tree over the row's lanes (inline: a device function would need a driver
        while h > 0:       # to compile to PTX)
            if x < h:
                part[y, x] += part[y, x + h]
            cuda.syncthreads()
            h //= 2
        a = part[y, 0] * f[s]
        if live:
            for j in range(t + x, n, HH_LANES):
                X[b, j] = float(X[b, j]) - a * float(U[t, j])
        cuda.syncthreads()  # part is reused by the next reflector


@cuda.jit
def _hh_vjp_tile(Y, G, U, order, f, s0, s1, P, cf):
    # reflectors s = s1-1, ..., s0 backwards on this block's HH_ROWS rows (Y, G rows; row-parallel as _hh_apply_tile):
    #   Y[b] <- Y[b] H (the reflector's input); a_b = Y[b].v, beta_b = G[b].v (tree sums)
    #   P[blk, s - s0, j] = sum_b (beta_b Y[b, j] + a_b G[b, j]), cf[blk, s - s0] = sum_b a_b beta_b over the tile's
    #   rows b in order (thread q of the block owns columns t + q, t + q + nthreads, ...)
    #   G[b] <- G[b] H
    pa = cuda.shared.array((HH_ROWS, HH_LANES), numba.float64)
    pb = cuda.shared.array((HH_ROWS, HH_LANES), numba.float64)
    av = cuda.shared.array(HH_ROWS, numba.float64)
    bv = cuda.shared.array(HH_ROWS, numba.float64)
    x = cuda.threadIdx.x
    y = cuda.threadIdx.y
    q = y * HH_LANES + x
    blk = cuda.blockIdx.x
    b0 = blk * HH_ROWS
    b = b0 + y
    B = Y.shape[0]
    n = Y.shape[1]
    live = b < B
    rows = B - b0 if B - b0 < HH_ROWS else HH_ROWS
    for s in range(s1 - 1, s0 - 1, -1):
        t = order[s]
        fs = f[s]
        acc = 0.0
        if live:
            for j in range(t + x, n, HH_LANES):
                acc += float(Y[b, j] * U[t, j])
        pa[y, x] = acc
        cuda.syncthreads()
        h = HH_LANES // 2  # the tree of _hh_apply_tile
        while h > 0:
            if x < h:
                pa[y, x] += pa[y, x + h]
            cuda.syncthreads()
            h //= 2
        a = pa[y, 0] * fs
        acc = 0.0
        accb = 0.0
        if live:
            for j in range(t + x, n, HH_LANES):
                Y[b, j] = float(Y[b, j]) - a * float(U[t, j])
            for j in range(t + x, n, HH_LANES):
                acc += float(Y[b, j] * U[t, j])
                accb += float(G[b, j] * U[t, j])
        cuda.syncthreads()  # the tree below reuses pa, which the first tree's threads may still be reading
        pa[y, x] = acc
        pb[y, x] = accb
        cuda.syncthreads()
        h = HH_LANES // 2
        while h > 0:
            if x < h:
                pa[y, x] += pa[y, x + h]
                pb[y, x] += pb[y, x + h]
            cuda.syncthreads()
            h //= 2
        a = pa[y, 0]
        beta = pb[y, 0]
        if x == 0:
            av[y] = a
            bv[y] = beta
        cuda.syncthreads()
        for j in range(t + q, n, HH_LANES * HH_ROWS):
            acc = 0.0
            for r in range(rows):
                acc += bv[r] * float(Y[b0 + r, j]) + av[r] * float(G[b0 + r, j])
            P[blk, s - s0, j] = acc
        if q == 0:
            acc = 0.0
            for r in range(rows):
                acc += av[r] * bv[r]
            cf[blk, s - s0] = acc
        cuda.syncthreads()  # every thread has read the tile's G rows before they change
        if live:
            beta *= fs
            for j in range(t + x, n, HH_LANES):
                G[b, j] = float(G[b, j]) - beta * float(U[t, j])
        cuda.syncthreads()


@cuda.jit
def _hh_vjp_reduce(P, cf, U, order, f, s0, m, dU):
    # thread (i, j), i < m: reflector s = s0 + i, t = order[s]; sums the blocks' partials in block order (fixed):
    #   dU[t, j] -= f tot_j, then dU[t, j] += f^2 (sum of cf) U[t, j]   (j >= t)
    # H_{n-1} = I - 2 e e^T does not depend on U[n-1, n-1]: its gradient stays exactly 0 (as the CPU kernel)
    j, i = cuda.grid(2)
    if i < m:
        s = s0 + i
        t = order[s]
        if j >= t and j < U.shape[1] and t < U.shape[1] - 1:
            tot = 0.0
            coef = 0.0
            for blk in range(P.shape[0]):
                tot += P[blk, i, j]
                coef += cf[blk, i]
            fs = f[s]
            dU[t, j] = float(dU[t, j]) - fs * tot
            dU[t, j] = float(dU[t, j]) + coef * fs * fs * float(U[t, j])


@cuda.jit
def _pf_rows(Pm, C, lo, hi, W, M, SC):
    # one thread per row i: M = softmax of row i (max-shifted, sum in float64), sc = 1/(1 + e^-c), W = (hi - (hi-lo) sc) M
    i = cuda.grid(1)
    if i < Pm.shape[0]:
        k = Pm.shape[1]
        mx = Pm[i, 0]
        for j in range(1, k):
            if Pm[i, j] > mx:
                mx = Pm[i, j]
        tot = 0.0
        for j in range(k):
            M[i, j] = math.exp(Pm[i, j] - mx)
            tot += float(M[i, j])
        for j in range(k):
            M[i, j] = float(M[i, j]) / tot
            z = -float(C[i, j])
            # exp overflows to inf beyond log(max float64) on hardware (sc = 0); Python's math.exp raises instead
            sc = 1.0 / (1.0 + (math.inf if z > 709.782712893384 else math.exp(z)))
            SC[i, j] = sc
            W[i, j] = (hi - (hi - lo) * sc) * float(M[i, j])


@cuda.jit
def _pf_vjp_rows(G, M, SC, lo, hi, dP, dC):
    # one thread per row i: dP = M (G S - sum_k G S M), dC = -(hi - lo) G M sc (1 - sc), S = hi - (hi - lo) sc
    i = cuda.grid(1)
    if i < G.shape[0]:
        k = G.shape[1]
        w = hi - lo
        dot = 0.0
        for j in range(k):
            dot += float(G[i, j]) * (hi - w * float(SC[i, j])) * float(M[i, j])
        for j in range(k):
            g = float(G[i, j])
            m = float(M[i, j])
            sc = float(SC[i, j])
            dP[i, j] = m * (g * (hi - w * sc) - dot)
            dC[i, j] = -w * g * m * sc * (1.0 - sc)


@cuda.jit
def _add_bias(y, b):
    # y[i, j] += b[j] (b[0] for a scalar bias): one thread per element
    j, i = cuda.grid(2)
    if i < y.shape[0] and j < y.shape[1]:
        step = 1 if b.shape[0] == y.shape[1] else 0
        y[i, j] += b[j * step]


@cuda.jit
def _transpose(A, out):
    j, i = cuda.grid(2)
    if i < out.shape[0] and j < out.shape[1]:
        out[i, j] = A[j, i]


@cuda.jit
def _take_cols(X, out):
    # out = X[:, :r] as a C-contiguous array (r = out.shape[1])
    j, i = cuda.grid(2)
    if i < out.shape[0] and j < out.shape[1]:
        out[i, j] = X[i, j]


@lru_cache(maxsize=None)
def _typed(dtype):
    """The kernels that need constants of the array dtype (cast as NumPy casts a Python scalar: NEP 50)."""
    ft = prim._FT[np.dtype(dtype)]
    zero, one, half = ft(0.0), ft(1.0), ft(0.5)

    @cuda.jit
    def col_sums(g, out):
        # out[j] = sum_i g[i, j] in the order i = 0, 1, ..., in the dtype: one thread per column
        j = cuda.grid(1)
        if j < g.shape[1]:
            acc = zero
            for i in range(g.shape[0]):
                acc += g[i, j]
            out[j] = acc

    @cuda.jit
    def fill_eye(Q):
        j, i = cuda.grid(2)
        if i < Q.shape[0] and j < Q.shape[1]:
            Q[i, j] = one if i == j else zero

    @cuda.jit
    def fill_zero(a):
        i = cuda.grid(1)
        if i < a.shape[0]:
            a[i] = zero

    @cuda.jit
    def spectral_s(p, lo, w, s, sp):
        # sp = sigmoid(p) = (1 + tanh(p/2)) / 2, s = lo + w sp, in the dtype (lo, w cast to it): one thread per entry
        q = cuda.grid(1)
        if q < p.shape[0]:
            v = half * (one + math.tanh(half * p[q]))
            sp[q] = v
            s[q] = lo + w * sp[q]

    @cuda.jit
    def scale_cols(X, s, out):
        # out[i, q] = X[i, q] s[q] for q < r = s.shape[0], zero for the other columns of out
        j, i = cuda.grid(2)
        if i < out.shape[0] and j < out.shape[1]:
            out[i, j] = X[i, j] * s[j] if j < s.shape[0] else zero

    @cuda.jit
    def scale_rows(X, s, out):
        # out[q, j] = s[q] X[q, j] for q < r = s.shape[0], zero for the other rows of out
        j, i = cuda.grid(2)
        if i < out.shape[0] and j < out.shape[1]:
            out[i, j] = s[i] * X[i, j] if i < s.shape[0] else zero

    @cuda.jit
    def spectral_dp(QU, GQVt, sp, w, dp):
        # dp[q] = (sum_i QU[i, q] GQVt[i, q]) w sp_q (1 - sp_q), the sum in the order i = 0, 1, ...: one thread per q
        q = cuda.grid(1)
        if q < dp.shape[0]:
            acc = zero
            for i in range(GQVt.shape[0]):
                acc += QU[i, q] * GQVt[i, q]
            dp[q] = acc * w * sp[q] * (one - sp[q])

    return dict(col_sums=col_sums, fill_eye=fill_eye, fill_zero=fill_zero, spectral_s=spectral_s,
                scale_cols=scale_cols, scale_rows=scale_rows, spectral_dp=spectral_dp)


def _t(a):
    return _typed(a.dtype)


def _ft(a):
    return prim._FT[np.dtype(a.dtype)]


def _zeros(shape, dtype):
    a = _empty(shape, dtype)
    if a.size:
        b, t = prim.grid1(a.size)
        _typed(dtype)["fill_zero"][b, t](a.reshape(a.size))
    return a


def _copy(a):
    out = cuda.device_array(tuple(a.shape), dtype=a.dtype)
    out.copy_to_device(a)
    return out


# ======================================================================================= kernel twins
def _hh_grid(B):
    return max(1, (B + HH_ROWS - 1) // HH_ROWS), (HH_LANES, HH_ROWS)


def hh_chain_apply(X, U, order):
    r"""Twin of ``_kernels.hh_chain_apply``: in place X <- X H(U[order[0]]) H(U[order[1]]) ... (X [B, n], U [k, n]).

    The scales 2/(v.v) are formed first, one thread per reflector, in the CPU's order (bitwise equal).  Then one block
    per tile of ``HH_ROWS`` rows walks the chain; each row has ``HH_LANES`` threads, which split the columns for the
    dot product :math:`a_b = x_b \cdot v` (float64 partial sums in column order, combined by a fixed tree) and for the
    update :math:`x_b \mathrel{-}= f a_b v`.  Rounding: only the order of the float64 sum in :math:`a_b` differs from
    the CPU kernel's, so the results agree to a few float64 ulps per reflector (float32: the stored values almost
    always bitwise); deterministic, as no element has two writers and the launch shape is fixed."""
    k = order.shape[0]
    f = _empty(max(k, 1), np.float64)
    b, t = prim.grid1(k)
    _hh_scales[b, t](U, order, f)
    if X.shape[0] and k:
        blocks, threads = _hh_grid(X.shape[0])
        _hh_apply_tile[blocks, threads](X, U, order, f)


def hh_chain_vjp(Y, G, U, order, dU):
    r"""Twin of ``_kernels.hh_chain_vjp``: Y (the chain's output) and G (its gradient) are overwritten with the chain's
    input and the input's gradient; the reflector gradients are accumulated into dU (``order`` lists distinct
    reflectors, as every caller's does).

    Rows are independent except through :math:`\partial v_t = \sum_b [\dots]`, a sum over every row.  So the chain
    is walked backwards in chunks of reflectors: per chunk, one block per tile of rows (as ``hh_chain_apply``)
    recovers each reflector's input rows, forms :math:`a_b, \beta_b` by tree sums and writes its tile's partial sums
    of :math:`\beta_b x_b + a_b \bar g_b` and :math:`a_b \beta_b` to a float64 workspace; a second kernel, one thread
    per (reflector, column), adds the tiles' partials in tile order into dU.  The chunk length keeps the workspace
    under ``HH_WORKSPACE_BYTES``; it changes no result.  Rounding: the row dot products
    as in ``hh_chain_apply``, and dU sums the rows in float64 before one rounding to the dtype (the CPU kernel rounds
    after every row), so float32 gradients agree to about (rows x float32 eps), float64 ones to a few ulps.
    Deterministic: fixed launch shapes, fixed sum orders, no atomics."""
    k = order.shape[0]
    if k == 0 or Y.shape[0] == 0:
        return
    f = _empty(k, np.float64)
    b, t = prim.grid1(k)
    _hh_scales[b, t](U, order, f)
    B, n = Y.shape
    blocks, threads = _hh_grid(B)
    chunk = int(max(1, min(k, HH_WORKSPACE_BYTES // (8 * blocks * max(n, 1)))))
    P = _empty((blocks, chunk, n), np.float64)
    cf = _empty((blocks, chunk), np.float64)
    for s1 in range(k, 0, -chunk):
        s0 = max(0, s1 - chunk)
        _hh_vjp_tile[blocks, threads](Y, G, U, order, f, s0, s1, P, cf)
        rb, rt = prim.grid2(s1 - s0, n)
        _hh_vjp_reduce[rb, rt](P, cf, U, order, f, s0, s1 - s0, dU)


def _order_dev(k, reverse):
    return cuda.to_device(_reflector_order(k, reverse))


def householder_matrix(U, k=None, reverse=False):
    """Twin of :func:`refnsm.linear.householder_matrix`: Q = H_0 ... H_{k-1} (``reverse``: H_{k-1} ... H_0)."""
    n = U.shape[1]
    k = n if k is None else k
    Q = _empty((n, n), U.dtype)
    b, t = prim.grid2(n, n)
    _t(U)["fill_eye"][b, t](Q)
    if k:
        hh_chain_apply(Q, U, _order_dev(k, reverse))
    return Q


def householder_matrix_vjp(dQ, Q, U, k=None, reverse=False):
    """Twin of :func:`refnsm.linear.householder_matrix_vjp`: dL/dU for dQ = dL/dQ (dQ and Q are not modified)."""
    n = U.shape[1]
    k = n if k is None else k
    dU = _zeros(tuple(U.shape), U.dtype)
    if k:
        hh_chain_vjp(_copy(Q), _copy(dQ), U, _order_dev(k, reverse), dU)
    return dU


def pf_weight(P, C, lo, hi):
    """Twin of ``_kernels.pf_weight``: (W, M, SC) with M = softmax_rows(P), SC = sigmoid(C), W = (hi - (hi-lo) SC) M.

    One thread per row (the softmax needs the row's max and sum), in the CPU kernel's order: deterministic."""
    n, k = P.shape
    W, M, SC = (_empty((n, k), P.dtype) for _ in range(3))
    b, t = prim.grid1(n)
    _pf_rows[b, t](P, C, float(lo), float(hi), W, M, SC)
    return W, M, SC


def pf_weight_vjp(G, M, SC, lo, hi):
    """Twin of ``_kernels.pf_weight_vjp``: (dP, dC).  One thread per row (dP needs the row's sum, formed in column
    order): deterministic."""
    n, k = G.shape
    dP, dC = _empty((n, k), M.dtype), _empty((n, k), M.dtype)
    b, t = prim.grid1(n)
    _pf_vjp_rows[b, t](G, M, SC, float(lo), float(hi), dP, dC)
    return dP, dC


def add_bias(y, b):
    """Twin of ``_kernels.add_bias``: in place y[i, j] += b[j] (b of length y.shape[1], or 1: a scalar bias)."""
    if y.size:
        bl, t = prim.grid2(*y.shape)
        _add_bias[bl, t](y, b)


def col_sums(g):
    """Twin of ``_kernels.col_sums``: out[j] = sum_i g[i, j] in row order, in g's dtype (one thread per column, so
    each sum has one fixed order: deterministic)."""
    out = _empty(g.shape[1], g.dtype)
    if g.shape[1]:
        b, t = prim.grid1(g.shape[1])
        _t(g)["col_sums"][b, t](g, out)
    return out


def all_finite(a):
    """Twin of ``refnsm._fastchecks.all_finite``: True when no element is NaN or Inf (a device count; one number copied back)."""
    return a.size == 0 or prim.count_nonfinite(a) == 0


def transpose(A):
    """A^T as a new C-contiguous device array (``Linear``: W = weight^T, dL/dweight = G^T); one thread per element."""
    out = _empty((A.shape[1], A.shape[0]), A.dtype)
    if out.size:
        b, t = prim.grid2(*out.shape)
        _transpose[b, t](A, out)
    return out


def _take(X, r):
    out = _empty((X.shape[0], r), X.dtype)
    if out.size:
        b, t = prim.grid2(*out.shape)
        _take_cols[b, t](X, out)
    return out


def spectral_factors(QU, QV, p, sigma_min, sigma_max, r):
    r"""``SpectralLinear._weight`` after the two Householder products: (W, s, sp) with :math:`sp = \sigma(p)`,
    :math:`s = \sigma_\min + (\sigma_\max-\sigma_\min) sp` (NumPy's float32 arithmetic when the dtype is float32) and
    :math:`W = Q_U[:, :r]\,\mathrm{diag}(s)\,Q_V[:r, :]` (a scaling kernel, then the tiled product)."""
    kk = _t(QU)
    ft = _ft(QU)
    s, sp = _empty(r, QU.dtype), _empty(r, QU.dtype)
    if r:
        b, t = prim.grid1(r)
        kk["spectral_s"][b, t](p, ft(sigma_min), ft(sigma_max - sigma_min), s, sp)
    Us = _empty((QU.shape[0], r), QU.dtype)
    if Us.size:
        b, t = prim.grid2(*Us.shape)
        kk["scale_cols"][b, t](QU, s, Us)
    W = prim.matmul_ab(Us, QV[:r])
    return W, s, sp


def spectral_core_vjp(G, QU, QV, s, sp, sigma_min, sigma_max, r):
    r"""``SpectralLinear._core_vjp``: (dQU, dQV, dp) with :math:`G Q_V^\top` and :math:`Q_U^\top G` by the tiled
    product, :math:`dQ_U = [G Q_{V,:r}^\top \mathrm{diag}(s), 0]`, :math:`dQ_V = [\mathrm{diag}(s) Q_{U,:r}^\top G; 0]`,
    :math:`dp_q = (Q_U^\top G Q_V^\top)_{qq}(\sigma_\max-\sigma_\min) sp_q(1-sp_q)`."""
    kk = _t(G)
    GQVt = prim.matmul_abt(G, QV[:r])  # (in, r)
    dQU = _empty(tuple(QU.shape), G.dtype)
    b, t = prim.grid2(*dQU.shape)
    kk["scale_cols"][b, t](GQVt, s, dQU)
    UtG = prim.matmul_atb(_take(QU, r), G)  # (r, out)
    dQV = _empty(tuple(QV.shape), G.dtype)
    b, t = prim.grid2(*dQV.shape)
    kk["scale_rows"][b, t](UtG, s, dQV)
    dp = _empty(r, G.dtype)
    if r:
        b, t = prim.grid1(r)
        kk["spectral_dp"][b, t](QU, GQVt, sp, _ft(G)(sigma_max - sigma_min), dp)
    return dQU, dQV, dp
