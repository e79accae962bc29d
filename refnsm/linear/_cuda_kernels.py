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

Determinism: no atomics.  Every output element is written by one thread that sums in a fixed order; the Householder
VJP, whose reflector gradients sum over all rows, runs in one block whose threads split rows, then columns, with a
barrier between the phases (a sequential chain of reflectors cannot be split across blocks without one launch per
reflector).  Two runs give bitwise-identical results.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numba import cuda

from ..cuda import _primitives as prim
from ..cuda._arrays import empty as _empty
from .householder import _order as _reflector_order

__all__ = [
    "hh_chain_apply", "hh_chain_vjp", "householder_matrix", "householder_matrix_vjp", "pf_weight", "pf_weight_vjp",
    "add_bias", "col_sums", "all_finite", "transpose", "spectral_factors", "spectral_core_vjp",
]

# one block for the Householder VJP: 256 threads on a GPU, 8 under the simulator (a Python thread each)
VJP_THREADS = prim.RED


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
def _hh_apply_rows(X, U, order, f):
    # one thread per row b of X: X[b] <- X[b] H(v_order[0]) H(v_order[1]) ... (the CPU kernel's loop for that row)
    b = cuda.grid(1)
    if b < X.shape[0]:
        n = X.shape[1]
        for s in range(order.shape[0]):
            t = order[s]
            a = 0.0
            for j in range(t, n):
                a += float(X[b, j] * U[t, j])
            a *= f[s]
            for j in range(t, n):
                X[b, j] = float(X[b, j]) - a * float(U[t, j])


@cuda.jit
def _hh_vjp_block(Y, G, U, order, f, dU, av, bv):
    # one block walks the chain backwards; per reflector three phases separated by barriers:
    #   rows:    Y[b] <- Y[b] H (the reflector's input), a_b = Y[b].v, beta_b = G[b].v
    #   columns: dU[t, j] -= f (beta_b Y[b, j] + a_b G[b, j]) for b = 0, 1, ... in order, then += f^2 (sum a b) U[t, j]
    #   rows:    G[b] <- G[b] H
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    B = Y.shape[0]
    n = Y.shape[1]
    for s in range(order.shape[0] - 1, -1, -1):
        t = order[s]
        fs = f[s]
        for b in range(tid, B, nt):
            a = 0.0
            for j in range(t, n):
                a += float(Y[b, j] * U[t, j])
            a *= fs
            for j in range(t, n):
                Y[b, j] = float(Y[b, j]) - a * float(U[t, j])
            a = 0.0
            beta = 0.0
            for j in range(t, n):
                a += float(Y[b, j] * U[t, j])
                beta += float(G[b, j] * U[t, j])
            av[b] = a
            bv[b] = beta
        cuda.syncthreads()
        # H_{n-1} = I - 2 e e^T does not depend on U[n-1, n-1]: its gradient stays exactly 0 (as the CPU kernel)
        for j in range(t + tid, n if t < n - 1 else 0, nt):
            coef = 0.0
            for b in range(B):
                coef += av[b] * bv[b]
                dU[t, j] = float(dU[t, j]) - fs * (bv[b] * float(Y[b, j]) + av[b] * float(G[b, j]))
            coef *= fs * fs
            dU[t, j] = float(dU[t, j]) + coef * float(U[t, j])
        cuda.syncthreads()
        for b in range(tid, B, nt):
            beta = bv[b] * fs
            for j in range(t, n):
                G[b, j] = float(G[b, j]) - beta * float(U[t, j])
        cuda.syncthreads()


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
def hh_chain_apply(X, U, order):
    """Twin of ``_kernels.hh_chain_apply``: in place X <- X H(U[order[0]]) H(U[order[1]]) ... (X [B, n], U [k, n]).

    One thread per row of X runs the whole chain on its row, in the CPU kernel's order (rows are independent); the
    scales 2/(v.v) are formed first, one thread per reflector.  Deterministic: every element is written only by the
    thread that owns its row, every sum runs over the columns in order."""
    k = order.shape[0]
    f = _empty(max(k, 1), np.float64)
    b, t = prim.grid1(k)
    _hh_scales[b, t](U, order, f)
    if X.shape[0] and k:
        b, t = prim.grid1(X.shape[0])
        _hh_apply_rows[b, t](X, U, order, f)


def hh_chain_vjp(Y, G, U, order, dU):
    """Twin of ``_kernels.hh_chain_vjp``: Y (the chain's output) and G (its gradient) are overwritten with the chain's
    input and the input's gradient; the reflector gradients are accumulated into dU.  One block (see the module
    docstring): for each reflector, threads own rows (recompute the input, form a_b and beta_b), then columns
    (dU[t, j] summed over the rows b = 0, 1, ... in the CPU's order), then rows again (G <- G H), with barriers
    between the phases.  Deterministic: no element has two writers and no sum depends on the thread count."""
    k = order.shape[0]
    if k == 0:
        return
    f = _empty(k, np.float64)
    b, t = prim.grid1(k)
    _hh_scales[b, t](U, order, f)
    B = Y.shape[0]
    av = _empty(max(B, 1), np.float64)
    bv = _empty(max(B, 1), np.float64)
    _hh_vjp_block[1, VJP_THREADS](Y, G, U, order, f, dU, av, bv)


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
