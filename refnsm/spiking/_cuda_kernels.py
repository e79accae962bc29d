r"""CUDA twins of the spiking kernels (:mod:`refnsm.spiking._kernels`): the same names and arguments.

Open the two files side by side: ``kernel_forward``, ``kernel_vjp``, ``similarity_forward``, ``similarity_vjp``,
``label_matrix``, ``pairwise_loss``, ``pairwise_loss_grad``, ``spike_similar_loss_fused``, ``cross_entropy_steps``,
and the helpers ``row_sqnorms``, ``kernel_from_gram``, ``in_unit_interval`` and ``gram_matrix``.  They take
C-contiguous float32/float64 device arrays (no validation: :mod:`refnsm.spiking.losses` validates through
:mod:`refnsm._backend`) and return device arrays; scalars (losses, counts, statuses) come back as Python numbers.
Imported only when ``device="cuda"`` is asked for.

Every elementwise step is one thread per output element with the CPU kernel's expression and order of operations,
in the input dtype (constants cast to it), scalar losses accumulated in float64; matrix products use the tiled
product of :mod:`refnsm.cuda._primitives` and sums its deterministic fixed-tree ``sum_reduce``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numba import cuda

from ..cuda import _primitives as prim
from ..cuda._arrays import empty as _empty
from ._kernels import BCE, GAUSSIAN, L1, LINEAR, MSE, NEAR, POLYNOMIAL, SIGMOID

__all__ = [
    "row_sqnorms", "kernel_from_gram", "kernel_forward", "kernel_vjp", "similarity_forward", "similarity_vjp",
    "pairwise_loss", "pairwise_loss_grad", "label_matrix", "in_unit_interval", "spike_similar_loss_fused",
    "cross_entropy_steps", "gram_matrix", "time_mean", "broadcast_time", "mse_to_constant", "firing_rate_mse",
    "LINEAR", "POLYNOMIAL", "SIGMOID", "GAUSSIAN", "MSE", "L1", "BCE",
]



# ================================================================================================ kernels
@lru_cache(maxsize=None)
def _kernels(dtype):
    """The elementwise CUDA kernels for one float dtype (constants are cast to it, as the CPU kernels do)."""
    ft = prim._FT[np.dtype(dtype)]
    zero, one, two = ft(0.0), ft(1.0), ft(2.0)
    near_lim = ft(NEAR)
    floor = ft(-100.0)

    @cuda.jit
    def from_gram(G, x2, y2, K_, kind, pp, c):
        # K[i, j] = kappa from G[i, j]; x2, y2 squared row norms (gaussian only), pp = p, c = 2 p^2 in the dtype
        j, i = cuda.grid(2)
        if i < G.shape[0] and j < G.shape[1]:
            g = G[i, j]
            if kind == 0:
                K_[i, j] = g
            elif kind == 1:
                K_[i, j] = g ** pp
            elif kind == 2:
                z = -(pp * g)
                # exp overflows to inf beyond log(max float64) on hardware; Python's math.exp (simulator) raises
                K_[i, j] = one / (one + (math.inf if z > 709.782712893384 else math.exp(z)))
            else:
                K_[i, j] = math.exp(-((x2[i] + y2[j]) - two * g) / c)

    @cuda.jit
    def coupling(A, K_, G, B, kind, pp, pm1, c, p_is_zero):
        # B = dL/dG (linear, polynomial, sigmoid) or Q = dL/dDist (gaussian)
        j, i = cuda.grid(2)
        if i < A.shape[0] and j < A.shape[1]:
            a = A[i, j]
            if kind == 0:
                B[i, j] = a
            elif kind == 1:
                if p_is_zero:
                    B[i, j] = zero
                else:
                    B[i, j] = a * (pp * G[i, j] ** pm1)
            elif kind == 2:
                k = K_[i, j]
                z = pp * G[i, j]  # 1 - k as sigma(-z), as _kernels._kernel_coupling (k saturates to 1)
                B[i, j] = pp * (a * (k * (one / (one + (math.inf if z > 709.782712893384 else math.exp(z))))))
            else:
                B[i, j] = -((a * K_[i, j]) / c)

    @cuda.jit
    def row_sums(B, out):
        i = cuda.grid(1)
        if i < B.shape[0]:
            acc = zero
            for j in range(B.shape[1]):
                acc += B[i, j]
            out[i] = acc

    @cuda.jit
    def col_sums(B, out):
        j = cuda.grid(1)
        if j < B.shape[1]:
            acc = zero
            for i in range(B.shape[0]):
                acc += B[i, j]
            out[j] = acc

    @cuda.jit
    def gauss_combine(g, s, x):
        # g[i, k] = 2 s_i x[i, k] - 2 g[i, k]
        j, i = cuda.grid(2)
        if i < g.shape[0] and j < g.shape[1]:
            g[i, j] = two * s[i] * x[i, j] - two * g[i, j]

    @cuda.jit
    def sqrt_vec(v):
        i = cuda.grid(1)
        if i < v.shape[0]:
            v[i] = math.sqrt(v[i])

    @cuda.jit
    def sim_post(K_, G, r, kind, e, exact, X, c):
        # cosine normalisation (linear), the closed-form diagonals and the gaussian's near pairs from the
        # differences (as _kernels.similarity_forward); c = 2 sigma^2
        j, i = cuda.grid(2)
        if i < K_.shape[0] and j < K_.shape[1]:
            if kind == 0:
                if exact and i == j:
                    K_[i, j] = (r[i] * r[i]) / (r[i] * r[i] + e)
                else:
                    K_[i, j] = G[i, j] / (r[i] * r[j] + e)
            elif kind == 3 and exact:
                if i == j:
                    K_[i, j] = one
                else:
                    sq = G[i, i] + G[j, j]
                    if (sq - two * G[i, j]) <= near_lim * sq:
                        d = zero
                        for k in range(X.shape[1]):
                            t = X[i, k] - X[j, k]
                            d += t * t
                        K_[i, j] = math.exp(-d / c)

    @cuda.jit
    def cosine_bc(A, G, r, e, B, C):
        j, i = cuda.grid(2)
        if i < A.shape[0] and j < A.shape[1]:
            Pij = r[i] * r[j] + e
            B[i, j] = A[i, j] / Pij
            C[i, j] = -(A[i, j] * (G[i, j] / Pij)) / Pij  # Pij * Pij overflows for huge spikes

    @cuda.jit
    def sim_rows(B, C, r, near, W, h, kind):
        # one thread per row i: W[i, :] and h[i] of dX = W X + diag(h) X; for the gaussian (C = G) the far pairs,
        # with the near ones' M_ij in near[i, :] (the split of _kernels.gaussian_pairs)
        i = cuda.grid(1)
        n = B.shape[0]
        if i < n:
            if kind == 0:
                acc = zero
                for j in range(n):
                    W[i, j] = B[i, j] + B[j, i]
                    acc += (C[i, j] + C[j, i]) * r[j]
                h[i] = acc / r[i] if r[i] != 0 else zero
            elif kind == 3:
                acc = zero
                for j in range(n):
                    near[i, j] = zero
                    W[i, j] = zero
                    if j != i:
                        m = two * (B[i, j] + B[j, i])
                        sq = C[i, i] + C[j, j]
                        if (sq - two * C[i, j]) <= near_lim * sq:
                            near[i, j] = m
                        else:
                            W[i, j] = -m
                            acc += m
                h[i] = acc
            else:
                h[i] = zero
                for j in range(n):
                    W[i, j] = B[i, j] + B[j, i]

    @cuda.jit
    def add_diag_scaled(out, h, X):
        j, i = cuda.grid(2)
        if i < out.shape[0] and j < out.shape[1]:
            if h[i] != 0:
                out[i, j] += h[i] * X[i, j]

    @cuda.jit
    def add_near_pairs(out, near, X):
        # out[i, k] += sum_j near[i, j] (X[i, k] - X[j, k]), in j order as _kernels.gaussian_near_pairs
        k, i = cuda.grid(2)
        if i < out.shape[0] and k < out.shape[1]:
            acc = out[i, k]
            xi = X[i, k]
            for j in range(near.shape[1]):
                m = near[i, j]
                if m != 0:
                    acc += m * (xi - X[j, k])
            out[i, k] = acc

    @cuda.jit
    def loss_terms(S, Y, loss, terms):
        # float64 terms of the mean; each formed in the dtype first, as the CPU accumulates it
        j, i = cuda.grid(2)
        m = S.shape[1]
        if i < S.shape[0] and j < m:
            s = S[i, j]
            t = Y[i, j]
            if loss == 0:
                d = s - t
                terms[i * m + j] = d * d
            elif loss == 1:
                terms[i * m + j] = math.fabs(s - t)
            else:
                # log(0) = -inf is clamped to -100 anyway; the guards keep the simulator's Python math
                # (which raises on log(0)) on the same path as the hardware
                ls = math.log(s) if s > zero else floor
                ls = ls if ls > floor else floor
                l1s = math.log1p(-s) if s < one else floor
                l1s = l1s if l1s > floor else floor
                terms[i * m + j] = (t - one) * l1s - t * ls

    @cuda.jit
    def loss_grad(S, Y, loss, scale, e, A):
        j, i = cuda.grid(2)
        if i < S.shape[0] and j < S.shape[1]:
            d = S[i, j] - Y[i, j]
            if loss == 0:
                A[i, j] = two * d * scale
            elif loss == 1:
                A[i, j] = (one if d > 0 else (-one if d < 0 else zero)) * scale
            else:
                s = S[i, j]
                v = s * (one - s)
                A[i, j] = d / (v if v > e else e) * scale

    @cuda.jit
    def complement(X, G, x2, C, kind, pp, c):
        # C = 1 - S without cancellation (sigmoid, gaussian), as _kernels.similarity_complement
        j, i = cuda.grid(2)
        if i < C.shape[0] and j < C.shape[1]:
            if kind == 2:
                z = pp * G[i, j]
                C[i, j] = one / (one + (math.inf if z > 709.782712893384 else math.exp(z)))
            elif i == j:
                C[i, j] = zero
            else:
                sq = G[i, i] + G[j, j]
                if (sq - two * G[i, j]) <= near_lim * sq:
                    d = zero
                    for k in range(X.shape[1]):
                        t = X[i, k] - X[j, k]
                        d += t * t
                else:
                    d = (x2[i] + x2[j]) - two * G[i, j]
                C[i, j] = -math.expm1(-d / c)

    @cuda.jit
    def loss_terms_c(S, C, Y, loss, terms):
        # as loss_terms with C = 1 - S given (_kernels.pairwise_loss_exact)
        j, i = cuda.grid(2)
        m = S.shape[1]
        if i < S.shape[0] and j < m:
            s = S[i, j]
            t = Y[i, j]
            cc = C[i, j]
            d = -cc if t == one else s - t
            if loss == 0:
                terms[i * m + j] = d * d
            elif loss == 1:
                terms[i * m + j] = math.fabs(d)
            else:
                lc = math.log(cc) if cc > zero else floor
                lc = lc if lc > floor else floor
                # log S: from S itself where it is small, from C where S is near 1 (_kernels.pairwise_loss_exact)
                if s < 0.5:
                    ls = math.log(s) if s > zero else floor
                else:
                    ls = math.log1p(-cc) if cc < one else floor
                ls = ls if ls > floor else floor
                if t == zero:
                    terms[i * m + j] = -lc
                elif t == one:
                    terms[i * m + j] = -ls
                else:
                    terms[i * m + j] = (t - one) * lc - t * ls

    @cuda.jit
    def loss_grad_c(S, C, Y, loss, scale, e, A):
        j, i = cuda.grid(2)
        if i < S.shape[0] and j < S.shape[1]:
            t = Y[i, j]
            d = -C[i, j] if t == one else S[i, j] - t
            if loss == 0:
                A[i, j] = two * d * scale
            elif loss == 1:
                A[i, j] = (one if d > 0 else (-one if d < 0 else zero)) * scale
            else:
                v = S[i, j] * C[i, j]
                A[i, j] = d / (v if v > e else e) * scale

    @cuda.jit
    def ce_steps(x, target, ignore_index, scale, want_grad, terms, grad):
        # one thread per (t, n, s): the log-sum-exp in float64, its loss term and its softmax gradient
        q = cuda.grid(1)
        T, N, C, S = x.shape
        if q < T * N * S:
            t = q // (N * S)
            n = (q // S) % N
            s = q % S
            tg = target[n, s]
            if tg == ignore_index:
                terms[q] = 0.0
                if want_grad:
                    for c in range(C):
                        grad[t, n, c, s] = zero
                return
            mx = -math.inf
            for c in range(C):
                v = float(x[t, n, c, s])
                if v > mx:
                    mx = v
            se = 0.0
            for c in range(C):
                se += math.exp(float(x[t, n, c, s]) - mx)
            lse = mx + math.log(se)
            terms[q] = lse - float(x[t, n, tg, s])
            if want_grad:
                for c in range(C):
                    pc = math.exp(float(x[t, n, c, s]) - mx) / se
                    if c == tg:
                        pc -= 1.0
                    grad[t, n, c, s] = pc * scale

    @cuda.jit
    def repeat_cols(Kcol, out):
        j, i = cuda.grid(2)
        if i < out.shape[0] and j < out.shape[1]:
            out[i, j] = Kcol[i, 0]

    return dict(from_gram=from_gram, coupling=coupling, row_sums=row_sums, col_sums=col_sums,
                gauss_combine=gauss_combine, sqrt_vec=sqrt_vec, sim_post=sim_post, cosine_bc=cosine_bc,
                sim_rows=sim_rows, add_diag_scaled=add_diag_scaled, add_near_pairs=add_near_pairs,
                loss_terms=loss_terms, loss_grad=loss_grad, complement=complement, loss_terms_c=loss_terms_c,
                loss_grad_c=loss_grad_c,
                ce_steps=ce_steps, repeat_cols=repeat_cols)


@lru_cache(maxsize=None)
def _label_kernel(ldtype):
    one = prim._FT[np.dtype(ldtype)](1.0)
    zero = prim._FT[np.dtype(ldtype)](0.0)

    @cuda.jit
    def label(L, Y):
        # Y = min(L L^T, 1), the dot product formed in L's dtype over the upper triangle's index order
        j, i = cuda.grid(2)
        n = L.shape[0]
        if i < n and j < n:
            a = i if i < j else j
            b = j if i < j else i
            acc = zero
            for k in range(L.shape[1]):
                acc += L[a, k] * L[b, k]
            Y[i, j] = acc if acc < one else one

    return label


@cuda.jit
def _valid_flags(target, ignore_index, flags):
    q = cuda.grid(1)
    S = target.shape[1]
    if q < target.shape[0] * S:
        flags[q] = 1.0 if target[q // S, q % S] != ignore_index else 0.0


def _k(x):
    return _kernels(x.dtype)


def _ft(x):
    return prim._FT[np.dtype(x.dtype)]


# ======================================================================================= kernel twins
def row_sqnorms(x):
    """Twin of ``_kernels.row_sqnorms``: squared row norms, each summed in column order."""
    return prim.row_sqnorms(x)


def kernel_from_gram(G, x, y, kind, p):
    """Twin of ``_kernels.kernel_from_gram``: K[i, j] = kappa(x_i, y_j) from the Gram matrix G = x y^T."""
    ft = _ft(G)
    Kd = _empty(G.shape, G.dtype)
    if kind == GAUSSIAN:
        x2, y2 = prim.row_sqnorms(x), prim.row_sqnorms(y)
    else:
        x2 = y2 = _empty(1, G.dtype)
    b, t = prim.grid2(*G.shape)
    _k(G)["from_gram"][b, t](G, x2, y2, Kd, kind, ft(p), ft(2.0 * p * p))
    return Kd


def kernel_forward(x, y, kind, p):
    """Twin of ``_kernels.kernel_forward``: (K, G) with G = x y^T by the tiled product."""
    G = prim.matmul_abt(x, y)
    return kernel_from_gram(G, x, y, kind, p), G


def _kernel_coupling(A, K_, G, kind, p):
    ft = _ft(A)
    B = _empty(A.shape, A.dtype)
    b, t = prim.grid2(*A.shape)
    _k(A)["coupling"][b, t](A, K_, G, B, kind, ft(p), ft(p - 1.0), ft(2.0 * p * p), p == 0.0)
    return B


def _row_col_sums(B):
    rs = _empty(B.shape[0], B.dtype)
    cs = _empty(B.shape[1], B.dtype)
    kk = _k(B)
    b, t = prim.grid1(B.shape[0])
    kk["row_sums"][b, t](B, rs)
    b, t = prim.grid1(B.shape[1])
    kk["col_sums"][b, t](B, cs)
    return rs, cs


def kernel_vjp(A, x, y, kind, p):
    """Twin of ``_kernels.kernel_vjp``: (dL/dx, dL/dy) for K = kernel(x, y) and A = dL/dK."""
    K_, G = kernel_forward(x, y, kind, p)
    B = _kernel_coupling(A, K_, G, kind, p)
    gx = prim.matmul_ab(B, y)
    gy = prim.matmul_atb(B, x)
    if kind != GAUSSIAN:
        return gx, gy
    rs, cs = _row_col_sums(B)
    kk = _k(A)
    b, t = prim.grid2(*gx.shape)
    kk["gauss_combine"][b, t](gx, rs, x)
    b, t = prim.grid2(*gy.shape)
    kk["gauss_combine"][b, t](gy, cs, y)
    return gx, gy


def similarity_forward(X, G, kind, p, eps, exact_diagonal):
    """Twin of ``_kernels.similarity_forward``: (S, r), the cosine-normalised similarity and the row norms."""
    Kd = kernel_from_gram(G, X, X, kind, p)
    r = prim.row_sqnorms(X)
    kk = _k(X)
    b, t = prim.grid1(r.shape[0])
    kk["sqrt_vec"][b, t](r)
    if kind == LINEAR or (kind == GAUSSIAN and exact_diagonal):
        b, t = prim.grid2(*Kd.shape)
        kk["sim_post"][b, t](Kd, G, r, kind, _ft(X)(eps), bool(exact_diagonal), X, _ft(X)(2.0 * p * p))
    return Kd, r


def similarity_vjp(A, X, S, G, r, kind, p, eps):
    """Twin of ``_kernels.similarity_vjp``: dL/dX = W X + diag(h) X for S = similarity(X), A = dL/dS."""
    n = X.shape[0]
    kk = _k(X)
    W = _empty((n, n), X.dtype)
    h = _empty(n, X.dtype)
    dummy2 = _empty((1, 1), X.dtype)
    b2, t2 = prim.grid2(n, n)
    b1, t1 = prim.grid1(n)
    if kind == LINEAR:
        B = _empty((n, n), X.dtype)
        C = _empty((n, n), X.dtype)
        kk["cosine_bc"][b2, t2](A, G, r, _ft(X)(eps), B, C)
        kk["sim_rows"][b1, t1](B, C, r, dummy2, W, h, kind)
    else:
        B = _kernel_coupling(A, S, G, kind, p)
        near = _empty((n, n), X.dtype) if kind == GAUSSIAN else dummy2
        kk["sim_rows"][b1, t1](B, G, r, near, W, h, kind)
    out = prim.matmul_ab(W, X)
    b, t = prim.grid2(*out.shape)
    kk["add_diag_scaled"][b, t](out, h, X)
    if kind == GAUSSIAN:
        kk["add_near_pairs"][b, t](out, near, X)
    return out


def pairwise_loss(S, Y, loss, bce_eps):
    """Twin of ``_kernels.pairwise_loss``: the mean elementwise loss (float64, deterministic device sum)."""
    n, m = S.shape
    terms = _empty(n * m, np.float64)
    b, t = prim.grid2(n, m)
    _k(S)["loss_terms"][b, t](S, Y, loss, terms)
    return prim.sum_reduce(terms) / (n * m)


def pairwise_loss_grad(S, Y, loss, g, bce_eps):
    """Twin of ``_kernels.pairwise_loss_grad``: A = dL/dS = g * (elementwise derivative) / N^2."""
    n, m = S.shape
    ft = _ft(S)
    A = _empty(S.shape, S.dtype)
    b, t = prim.grid2(n, m)
    _k(S)["loss_grad"][b, t](S, Y, loss, ft(g / (n * m)), ft(bce_eps), A)
    return A


def similarity_complement(X, G, kind, p):
    """Twin of ``_kernels.similarity_complement``: C = 1 - S without cancellation (sigmoid, gaussian)."""
    n = X.shape[0]
    ft = _ft(X)
    C = _empty((n, n), X.dtype)
    x2 = prim.row_sqnorms(X) if kind == GAUSSIAN else _empty(1, X.dtype)
    b, t = prim.grid2(n, n)
    _k(X)["complement"][b, t](X, G, x2, C, kind, ft(p), ft(2.0 * p * p))
    return C


def pairwise_loss_exact(S, C, Y, loss, bce_eps):
    """Twin of ``_kernels.pairwise_loss_exact``: the mean loss with C = 1 - S given."""
    n, m = S.shape
    terms = _empty(n * m, np.float64)
    b, t = prim.grid2(n, m)
    _k(S)["loss_terms_c"][b, t](S, C, Y, loss, terms)
    return prim.sum_reduce(terms) / (n * m)


def pairwise_loss_grad_exact(S, C, Y, loss, g, bce_eps):
    """Twin of ``_kernels.pairwise_loss_grad_exact``: A = dL/dS with C = 1 - S given."""
    n, m = S.shape
    ft = _ft(S)
    A = _empty(S.shape, S.dtype)
    b, t = prim.grid2(n, m)
    _k(S)["loss_grad_c"][b, t](S, C, Y, loss, ft(g / (n * m)), ft(bce_eps), A)
    return A


def label_matrix(L, dtype_like):
    """Twin of ``_kernels.label_matrix``: Y = min(L L^T, 1) formed in L's dtype, in ``dtype_like``'s dtype."""
    n = L.shape[0]
    Y = _empty((n, n), dtype_like.dtype)
    b, t = prim.grid2(n, n)
    _label_kernel(L.dtype)[b, t](L, Y)
    return Y


def in_unit_interval(M):
    """Twin of ``_kernels.in_unit_interval`` (a device count of the elements outside [0, 1])."""
    return prim.count_outside_unit_interval(M) == 0


def gram_matrix(X):
    """``G = X X^T`` by the tiled product (the host forms it by BLAS syrk, ``refnsm.spiking.losses._gram``)."""
    return prim.matmul_abt(X, X)


def spike_similar_loss_fused(X, G, L, kind, p, eps, exact_diagonal, loss, g, bce_eps, want_grad):
    """Twin of ``_kernels.spike_similar_loss_fused``: (status, value, dL/dX as a device array).  An empty ``G``
    means "form it here", as on the CPU."""
    if G.size == 0:
        G = gram_matrix(X)
    S, r = similarity_forward(X, G, kind, p, eps, exact_diagonal)
    Y = label_matrix(L, X)
    empty = _empty((0, 0), X.dtype)
    if loss == BCE:
        if not in_unit_interval(S):
            return 1, np.nan, empty
        if not in_unit_interval(Y):
            return 2, np.nan, empty
    if exact_diagonal and (kind == SIGMOID or kind == GAUSSIAN):
        C = similarity_complement(X, G, kind, p)
        value = pairwise_loss_exact(S, C, Y, loss, bce_eps)
        if not want_grad:
            return 0, value, empty
        A = pairwise_loss_grad_exact(S, C, Y, loss, g, bce_eps)
    else:
        value = pairwise_loss(S, Y, loss, bce_eps)
        if not want_grad:
            return 0, value, empty
        A = pairwise_loss_grad(S, Y, loss, g, bce_eps)
    return 0, value, similarity_vjp(A, X, S, G, r, kind, p, eps)


def cross_entropy_steps(x, target, ignore_index, g, want_grad):
    """Twin of ``_kernels.cross_entropy_steps``: (loss, grad, count) for x [T, N, C, S], target [N, S] (int64)."""
    T, N, C, S = x.shape
    flags = _empty(max(N * S, 1), np.float64)
    b, t = prim.grid1(N * S)
    _valid_flags[b, t](target, ignore_index, flags)
    valid = int(prim.sum_reduce(flags[: N * S])) if N * S else 0
    count = valid * T
    grad = _empty(x.shape if want_grad else (0, 0, 0, 0), x.dtype)
    if count == 0:
        if want_grad and grad.size:
            z = cuda.to_device(np.zeros(x.shape, dtype=x.dtype))
            grad = z
        return np.nan, grad, 0
    terms = _empty(T * N * S, np.float64)
    gdev = grad if want_grad else _empty((1, 1, 1, 1), x.dtype)
    b, t = prim.grid1(T * N * S)
    _k(x)["ce_steps"][b, t](x, target, ignore_index, g / count, bool(want_grad), terms, gdev)
    return prim.sum_reduce(terms) / count, grad, count


@lru_cache(maxsize=None)
def _time_kernels(dtype):
    """Kernels of the time-mean losses for one float dtype (constants cast to it, as the CPU kernels do)."""
    ft = prim._FT[np.dtype(dtype)]
    zero, one = ft(0.0), ft(1.0)

    @cuda.jit
    def mean_over_time(xs, tt, out):
        # out[k] = (sum_t xs[t, k]) / T, the sum in the dtype over t in order (CPU: time_mean); tt = T in the dtype
        k = cuda.grid(1)
        if k < out.shape[0]:
            acc = zero
            for t in range(xs.shape[0]):
                acc += xs[t, k]
            out[k] = acc / tt

    @cuda.jit
    def repeat_over_time(flat, tt, out):
        # out[t, k] = flat[k] / T (CPU: broadcast_time); one thread per element
        q = cuda.grid(1)
        K = flat.shape[0]
        if q < out.shape[0] * K:
            out[q // K, q % K] = flat[q % K] / tt

    @cuda.jit
    def mse_terms(flat, ph, g, n, want_grad, terms, grad):
        # terms[k] = (y_k - phi)^2 formed in the dtype, as float64; grad[k] = 2 (y_k - phi) g / n in float64
        k = cuda.grid(1)
        if k < flat.shape[0]:
            d = flat[k] - ph
            terms[k] = float(d * d)
            if want_grad:
                grad[k] = 2.0 * float(d) * g / n

    @cuda.jit
    def rate_terms(fr, labels, d, terms):
        # d[n, c] = fr[n, c] - onehot (in the dtype); terms = float(d)^2
        c, n = cuda.grid(2)
        C = fr.shape[1]
        if n < fr.shape[0] and c < C:
            dd = fr[n, c] - (one if labels[n] == c else zero)
            d[n, c] = dd
            terms[n * C + c] = float(dd) * float(dd)

    @cuda.jit
    def rate_grad(d, scale, grad):
        # grad[t, n, c] = d[n, c] * scale (float64), stored in the dtype
        q = cuda.grid(1)
        N, C = d.shape[0], d.shape[1]
        if q < grad.shape[0] * N * C:
            r = q % (N * C)
            grad[q // (N * C), r // C, r % C] = float(d[r // C, r % C]) * scale

    return dict(mean_over_time=mean_over_time, repeat_over_time=repeat_over_time, mse_terms=mse_terms,
                rate_terms=rate_terms, rate_grad=rate_grad)


def time_mean(x):
    """Twin of ``_kernels.time_mean``: the mean over the leading (time) axis, summed in the input dtype."""
    T = x.shape[0]
    K = x.size // T if T else 0
    out = _empty(tuple(x.shape)[1:], x.dtype)
    if K:
        b, t = prim.grid1(K)
        _time_kernels(x.dtype)["mean_over_time"][b, t](x.reshape(T, K), prim._FT[np.dtype(x.dtype)](T),
                                                       out.reshape(K))
    return out


def broadcast_time(grad_mean, T):
    """Twin of ``_kernels.broadcast_time``: ``grad_mean / T`` repeated over T leading steps."""
    K = grad_mean.size
    out = _empty((T,) + tuple(grad_mean.shape), grad_mean.dtype)
    if T * K:
        b, t = prim.grid1(T * K)
        _time_kernels(grad_mean.dtype)["repeat_over_time"][b, t](grad_mean.reshape(K),
                                                                 prim._FT[np.dtype(grad_mean.dtype)](T),
                                                                 out.reshape(T, K))
    return out


def mse_to_constant(y, phi, g, want_grad):
    """Twin of ``_kernels.mse_to_constant``: (mean (y - phi)^2 as a float, g 2 (y - phi) / numel flat or empty)."""
    n = y.size
    flat = y.reshape(n)
    terms = _empty(n, np.float64)
    grad = _empty(n if want_grad else 0, y.dtype)
    if n:
        b, t = prim.grid1(n)
        _time_kernels(y.dtype)["mse_terms"][b, t](flat, prim._FT[np.dtype(y.dtype)](phi), float(g), float(n),
                                                  bool(want_grad), terms, grad if want_grad else terms)
    return prim.sum_reduce(terms) / n, grad


def firing_rate_mse(spikes, labels, g, want_grad):
    """Twin of ``_kernels.firing_rate_mse``: (mean over [N, C] of (mean_t spikes - onehot)^2, its gradient [T, N, C]
    or an empty array); ``labels`` an int64 device vector."""
    T, N, C = spikes.shape
    kk = _time_kernels(spikes.dtype)
    fr = time_mean(spikes)
    d = _empty((N, C), spikes.dtype)
    terms = _empty(N * C, np.float64)
    b, t = prim.grid2(N, C)
    kk["rate_terms"][b, t](fr, labels, d, terms)
    grad = _empty((T, N, C) if want_grad else (0, 0, 0), spikes.dtype)
    if want_grad and grad.size:
        b, t = prim.grid1(T * N * C)
        kk["rate_grad"][b, t](d, 2.0 * g / (N * C * T), grad)
    return prim.sum_reduce(terms) / (N * C), grad
