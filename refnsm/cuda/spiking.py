r"""CUDA twins of the spiking family's kernels (``refnsm/spiking/_kernels.py``) and device-level entry points.

The math is documented in :mod:`refnsm.spiking.losses`; this module computes exactly the same thing on the GPU.

Two layers, as on the CPU:

* **Kernel twins** with the names and arguments of ``refnsm.spiking._kernels`` (``kernel_forward``,
  ``kernel_vjp``, ``similarity_forward``, ``similarity_vjp``, ``label_matrix``, ``pairwise_loss``,
  ``pairwise_loss_grad``, ``spike_similar_loss_fused``, ``cross_entropy_steps``, plus the helpers
  ``row_sqnorms``, ``kernel_from_gram`` and ``in_unit_interval``).  They take C-contiguous float32/float64 device
  arrays (no validation) and return device arrays; scalars (losses, counts, statuses) come back as Python numbers.
  Every elementwise step is one thread per output element with the CPU kernel's expression and order of
  operations, in the input dtype (constants cast to it), scalar losses accumulated in float64; matrix products
  use :func:`refnsm.cuda._primitives.matmul` and sums the deterministic :func:`~refnsm.cuda._primitives.sum_reduce`.
* **Public entry points** mirroring :mod:`refnsm.spiking`: ``kernel_dot_product`` (and ``_vjp``),
  ``spike_similar_loss`` (and ``_vjp``, ``_value_and_grad``), ``temporal_efficient_training_cross_entropy``
  (and ``_vjp``), with the same signatures, defaults, semantics (exact diagonal by default,
  ``compat="spikingjelly"``) and error messages.  ``refnsm.spiking.f(..., device="cuda")`` is meant to be the
  one-line dispatch ``return refnsm.cuda.spiking.f(...)``.

Inputs and outputs of the entry points:

* **NumPy arrays (or array-likes)** are validated by exactly the CPU code (``refnsm._checks`` and the private
  helpers of :mod:`refnsm.spiking.losses`), copied to the device, and the results come back as NumPy arrays.
* **numba device arrays** stay on the device and the array results are device arrays.  They are validated for
  rank, shape, C-contiguity and dtype (float32/float64; integer class indices for targets) on the host from their
  metadata, and for NaN/Inf by a device reduction (:func:`~refnsm.cuda._primitives.count_nonfinite`): only the
  count crosses the bus, and the array is copied back only to name the first bad index in the error.  A TET
  ``target`` given on the device is copied to the host for validation (it is C times smaller than ``x_seq``).
  Mixed inputs (some on the device) run on the device and return device arrays.  Device float inputs of
  different dtypes are promoted as on the CPU (float32 only if every float input is float32) by a device cast.
* Scalar losses are returned as 0-d NumPy arrays of the input dtype, as on the CPU (the BCE range check and the
  TET count need the host anyway).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numba import cuda

from .. import _checks
from ..spiking import _kernels as K
from ..spiking import losses as _L
from . import is_device_array
from . import _primitives as P
from ._arrays import (
    empty as _empty, dev_float as _dev_float, to_dev as _to_dev, common_dtype as _common_dtype,
    any_device as _any_device, out as _out,
)

__all__ = [
    # kernel twins
    "row_sqnorms", "kernel_from_gram", "kernel_forward", "kernel_vjp", "similarity_forward", "similarity_vjp",
    "pairwise_loss", "pairwise_loss_grad", "label_matrix", "in_unit_interval", "spike_similar_loss_fused",
    "cross_entropy_steps",
    # public entry points
    "kernel_dot_product", "kernel_dot_product_vjp", "spike_similar_loss", "spike_similar_loss_vjp",
    "spike_similar_loss_value_and_grad", "temporal_efficient_training_cross_entropy",
    "temporal_efficient_training_cross_entropy_vjp",
]

LINEAR, POLYNOMIAL, SIGMOID, GAUSSIAN = K.LINEAR, K.POLYNOMIAL, K.SIGMOID, K.GAUSSIAN
MSE, L1, BCE = K.MSE, K.L1, K.BCE


# ================================================================================================ kernels
@lru_cache(maxsize=None)
def _kernels(dtype):
    """The elementwise CUDA kernels for one float dtype (constants are cast to it, as the CPU kernels do)."""
    ft = P._FT[np.dtype(dtype)]
    zero, one, two = ft(0.0), ft(1.0), ft(2.0)
    near_lim = ft(K.NEAR)
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
                sim_rows=sim_rows, add_diag_scaled=add_diag_scaled, add_near_pairs=add_near_pairs, loss_terms=loss_terms, loss_grad=loss_grad,
                ce_steps=ce_steps, repeat_cols=repeat_cols)


@lru_cache(maxsize=None)
def _label_kernel(ldtype):
    one = P._FT[np.dtype(ldtype)](1.0)
    zero = P._FT[np.dtype(ldtype)](0.0)

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
    return P._FT[np.dtype(x.dtype)]


# ======================================================================================= kernel twins
def row_sqnorms(x):
    """Twin of ``_kernels.row_sqnorms``: squared row norms, each summed in column order."""
    return P.row_sqnorms(x)


def kernel_from_gram(G, x, y, kind, p):
    """Twin of ``_kernels.kernel_from_gram``: K[i, j] = kappa(x_i, y_j) from the Gram matrix G = x y^T."""
    ft = _ft(G)
    Kd = _empty(G.shape, G.dtype)
    if kind == GAUSSIAN:
        x2, y2 = P.row_sqnorms(x), P.row_sqnorms(y)
    else:
        x2 = y2 = _empty(1, G.dtype)
    b, t = P.grid2(*G.shape)
    _k(G)["from_gram"][b, t](G, x2, y2, Kd, kind, ft(p), ft(2.0 * p * p))
    return Kd


def kernel_forward(x, y, kind, p):
    """Twin of ``_kernels.kernel_forward``: (K, G) with G = x y^T by the tiled product."""
    G = P.matmul_abt(x, y)
    return kernel_from_gram(G, x, y, kind, p), G


def _kernel_coupling(A, K_, G, kind, p):
    ft = _ft(A)
    B = _empty(A.shape, A.dtype)
    b, t = P.grid2(*A.shape)
    _k(A)["coupling"][b, t](A, K_, G, B, kind, ft(p), ft(p - 1.0), ft(2.0 * p * p), p == 0.0)
    return B


def _row_col_sums(B):
    rs = _empty(B.shape[0], B.dtype)
    cs = _empty(B.shape[1], B.dtype)
    kk = _k(B)
    b, t = P.grid1(B.shape[0])
    kk["row_sums"][b, t](B, rs)
    b, t = P.grid1(B.shape[1])
    kk["col_sums"][b, t](B, cs)
    return rs, cs


def kernel_vjp(A, x, y, kind, p):
    """Twin of ``_kernels.kernel_vjp``: (dL/dx, dL/dy) for K = kernel(x, y) and A = dL/dK."""
    K_, G = kernel_forward(x, y, kind, p)
    B = _kernel_coupling(A, K_, G, kind, p)
    gx = P.matmul_ab(B, y)
    gy = P.matmul_atb(B, x)
    if kind != GAUSSIAN:
        return gx, gy
    rs, cs = _row_col_sums(B)
    kk = _k(A)
    b, t = P.grid2(*gx.shape)
    kk["gauss_combine"][b, t](gx, rs, x)
    b, t = P.grid2(*gy.shape)
    kk["gauss_combine"][b, t](gy, cs, y)
    return gx, gy


def similarity_forward(X, G, kind, p, eps, exact_diagonal):
    """Twin of ``_kernels.similarity_forward``: (S, r), the cosine-normalised similarity and the row norms."""
    Kd = kernel_from_gram(G, X, X, kind, p)
    r = P.row_sqnorms(X)
    kk = _k(X)
    b, t = P.grid1(r.shape[0])
    kk["sqrt_vec"][b, t](r)
    if kind == LINEAR or (kind == GAUSSIAN and exact_diagonal):
        b, t = P.grid2(*Kd.shape)
        kk["sim_post"][b, t](Kd, G, r, kind, _ft(X)(eps), bool(exact_diagonal), X, _ft(X)(2.0 * p * p))
    return Kd, r


def similarity_vjp(A, X, S, G, r, kind, p, eps):
    """Twin of ``_kernels.similarity_vjp``: dL/dX = W X + diag(h) X for S = similarity(X), A = dL/dS."""
    n = X.shape[0]
    kk = _k(X)
    W = _empty((n, n), X.dtype)
    h = _empty(n, X.dtype)
    dummy2 = _empty((1, 1), X.dtype)
    b2, t2 = P.grid2(n, n)
    b1, t1 = P.grid1(n)
    if kind == LINEAR:
        B = _empty((n, n), X.dtype)
        C = _empty((n, n), X.dtype)
        kk["cosine_bc"][b2, t2](A, G, r, _ft(X)(eps), B, C)
        kk["sim_rows"][b1, t1](B, C, r, dummy2, W, h, kind)
    else:
        B = _kernel_coupling(A, S, G, kind, p)
        near = _empty((n, n), X.dtype) if kind == GAUSSIAN else dummy2
        kk["sim_rows"][b1, t1](B, G, r, near, W, h, kind)
    out = P.matmul_ab(W, X)
    b, t = P.grid2(*out.shape)
    kk["add_diag_scaled"][b, t](out, h, X)
    if kind == GAUSSIAN:
        kk["add_near_pairs"][b, t](out, near, X)
    return out


def pairwise_loss(S, Y, loss, bce_eps):
    """Twin of ``_kernels.pairwise_loss``: the mean elementwise loss (float64, deterministic device sum)."""
    n, m = S.shape
    terms = _empty(n * m, np.float64)
    b, t = P.grid2(n, m)
    _k(S)["loss_terms"][b, t](S, Y, loss, terms)
    return P.sum_reduce(terms) / (n * m)


def pairwise_loss_grad(S, Y, loss, g, bce_eps):
    """Twin of ``_kernels.pairwise_loss_grad``: A = dL/dS = g * (elementwise derivative) / N^2."""
    n, m = S.shape
    ft = _ft(S)
    A = _empty(S.shape, S.dtype)
    b, t = P.grid2(n, m)
    _k(S)["loss_grad"][b, t](S, Y, loss, ft(g / (n * m)), ft(bce_eps), A)
    return A


def label_matrix(L, dtype_like):
    """Twin of ``_kernels.label_matrix``: Y = min(L L^T, 1) formed in L's dtype, in ``dtype_like``'s dtype."""
    n = L.shape[0]
    Y = _empty((n, n), dtype_like.dtype)
    b, t = P.grid2(n, n)
    _label_kernel(L.dtype)[b, t](L, Y)
    return Y


def in_unit_interval(M):
    """Twin of ``_kernels.in_unit_interval`` (a device count of the elements outside [0, 1])."""
    return P.count_outside_unit_interval(M) == 0


def spike_similar_loss_fused(X, G, L, kind, p, eps, exact_diagonal, loss, g, bce_eps, want_grad):
    """Twin of ``_kernels.spike_similar_loss_fused``: (status, value, dL/dX as a device array)."""
    S, r = similarity_forward(X, G, kind, p, eps, exact_diagonal)
    Y = label_matrix(L, X)
    empty = _empty((0, 0), X.dtype)
    if loss == BCE:
        if not in_unit_interval(S):
            return 1, np.nan, empty
        if not in_unit_interval(Y):
            return 2, np.nan, empty
    value = pairwise_loss(S, Y, loss, bce_eps)
    if not want_grad:
        return 0, value, empty
    A = pairwise_loss_grad(S, Y, loss, g, bce_eps)
    return 0, value, similarity_vjp(A, X, S, G, r, kind, p, eps)


def cross_entropy_steps(x, target, ignore_index, g, want_grad):
    """Twin of ``_kernels.cross_entropy_steps``: (loss, grad, count) for x [T, N, C, S], target [N, S] (int64)."""
    T, N, C, S = x.shape
    flags = _empty(max(N * S, 1), np.float64)
    b, t = P.grid1(N * S)
    _valid_flags[b, t](target, ignore_index, flags)
    valid = int(P.sum_reduce(flags[: N * S])) if N * S else 0
    count = valid * T
    grad = _empty(x.shape if want_grad else (0, 0, 0, 0), x.dtype)
    if count == 0:
        if want_grad and grad.size:
            z = cuda.to_device(np.zeros(x.shape, dtype=x.dtype))
            grad = z
        return np.nan, grad, 0
    terms = _empty(T * N * S, np.float64)
    gdev = grad if want_grad else _empty((1, 1, 1, 1), x.dtype)
    b, t = P.grid1(T * N * S)
    _k(x)["ce_steps"][b, t](x, target, ignore_index, g / count, bool(want_grad), terms, gdev)
    return P.sum_reduce(terms) / count, grad, count


# ==================================================================================== device validation
# ================================================================================ public entry points
def _kdp_prepare(x, y, kernel, args, compat):
    """Validation of kernel_dot_product on either side; returns (x_dev, y_dev, code, p, tile, on_device)."""
    on_device = _any_device(x, y)
    if not on_device:
        x, y, code, p, tile = _L._kdp_prepare(x, y, kernel, args, compat)
        return cuda.to_device(x), cuda.to_device(y), code, p, tile, False
    _L._check_compat(compat)
    dtype = _common_dtype(x, y)
    x = _to_dev(x, "x", ndim=2, shape_hint="[Nx, M]", dtype=dtype)
    y = _to_dev(y, "y", ndim=2, shape_hint="[Ny, M]", dtype=dtype)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"y: expected {x.shape[1]} columns to match x (shape {x.shape}), got shape {y.shape}")
    code, p = _L._kernel_spec(kernel, args)
    tile = False
    if code == GAUSSIAN and x.shape[0] != y.shape[0] and x.shape[0] != 1:
        if compat == "spikingjelly" and y.shape[0] == 1:
            tile = True
        else:  # the CPU's message
            raise ValueError(
                f"y: the gaussian kernel needs as many rows as x (or x with one row); got x {tuple(x.shape)} and y "
                f"{tuple(y.shape)}. spikingjelly returns a wrong [Nx, Nx] matrix for Ny = 1 and crashes otherwise; "
                f"pass compat='spikingjelly' to reproduce the Ny = 1 output"
            )
    return x, y, code, p, tile, True


def kernel_dot_product(x, y, kernel="linear", *args, compat=None):
    r"""GPU twin of :func:`refnsm.spiking.kernel_dot_product`: :math:`K_{ij} = \kappa(x_i, y_j)`.

    Same arguments, semantics and errors.  NumPy in, NumPy out; a device array in, a device array out.
    """
    x, y, code, p, tile, dev = _kdp_prepare(x, y, kernel, args, compat)
    Kmat, _ = kernel_forward(x, y, code, p)
    if tile:
        out = _empty((x.shape[0], x.shape[0]), Kmat.dtype)
        b, t = P.grid2(*out.shape)
        _k(Kmat)["repeat_cols"][b, t](Kmat, out)
        Kmat = out
    return _out(Kmat, dev)


def kernel_dot_product_vjp(grad_out, x, y, kernel="linear", *args, compat=None):
    r"""GPU twin of :func:`refnsm.spiking.kernel_dot_product_vjp`.

    Returns :math:`(\partial L/\partial x, \partial L/\partial y)`, on the side the inputs came from.
    """
    x, y, code, p, tile, dev = _kdp_prepare(x, y, kernel, args, compat)
    dev = dev or is_device_array(grad_out)
    expected = (x.shape[0], x.shape[0] if tile else y.shape[0])
    if is_device_array(grad_out):
        A = _dev_float(grad_out, "grad_out", dtype=x.dtype)
    else:
        A = _checks.as_float_array(grad_out, "grad_out", dtype=x.dtype)
    _checks.check_shape(A, "grad_out", expected, "the kernel matrix's shape")
    if not is_device_array(A):
        A = cuda.to_device(A)
    if tile:  # every column of the tiled output is k(x_i, y_0): their gradients add
        rs = _empty(A.shape[0], A.dtype)
        b, t = P.grid1(A.shape[0])
        _k(A)["row_sums"][b, t](A, rs)
        A = rs.reshape(A.shape[0], 1)
    gx, gy = kernel_vjp(A, x, y, code, p)
    return _out(gx, dev), _out(gy, dev)


def _ssl_run(spikes, labels, kernel_type, loss_type, args, compat, g, want_grad):
    """Validate (as the CPU does), run the fused device twin; returns (value, grad or None)."""
    _L._check_compat(compat)
    code, p = _L._kernel_spec(kernel_type, args, "kernel_type")
    _checks.check_option(loss_type, "loss_type", _L.LOSSES)
    dev = _any_device(spikes, labels)
    if is_device_array(spikes):
        shaped = _dev_float(spikes, "spikes", min_ndim=2, shape_hint="[N, ...] (batch first)")
        if shaped.shape[0] == 0:
            raise ValueError(f"spikes: expected at least one sample, got shape {shaped.shape}")
        X = shaped.reshape(shaped.shape[0], shaped.size // shaped.shape[0] if shaped.shape[0] else 0)
    else:
        shaped, Xh = _L._flatten_spikes(spikes)
        X = cuda.to_device(Xh)
    n = X.shape[0]
    ldtype = np.dtype(np.float32) if compat == "spikingjelly" else np.dtype(X.dtype)
    if is_device_array(labels):
        _checks.check_rank(labels, "labels", ndim=2, shape_hint="[N, C] (multi-hot)")
        if labels.dtype.kind not in "biuf":
            raise TypeError(f"labels: expected a real numeric array, got dtype {labels.dtype}")
        if labels.dtype.kind == "f" and labels.size and P.count_nonfinite(labels):
            _checks.check_finite(labels.copy_to_host(), "labels")
        if labels.shape[0] != n:
            raise ValueError(f"labels: expected {n} rows to match spikes' batch size, got shape {labels.shape}")
        if not labels.is_c_contiguous():
            raise ValueError(f"labels: expected a C-contiguous device array, got strides {labels.strides}")
        L = P.astype(labels, ldtype)
    else:
        L = cuda.to_device(_L._labels_for(labels, n, X.dtype, compat))
    G = P.matmul_abt(X, X)
    status, value, grad = spike_similar_loss_fused(X, G, L, code, p, _L.COSINE_EPS, compat is None,
                                                   _L._LOSS_CODE[loss_type], g, _L.BCE_EPS, want_grad)
    if status:  # bce outside [0, 1]: bring S and Y back to say where and why, with the CPU's message
        S, _ = similarity_forward(X, G, code, p, _L.COSINE_EPS, compat is None)
        _L._bce_range_check(S.copy_to_host(), label_matrix(L, X).copy_to_host(), kernel_type, np.dtype(X.dtype))
    value = np.asarray(value, dtype=X.dtype)
    if not want_grad:
        return value, None
    grad = grad.reshape(*shaped.shape)
    return value, _out(grad, dev)


def spike_similar_loss(spikes, labels, kernel_type="linear", loss_type="mse", *args, compat=None):
    r"""GPU twin of :func:`refnsm.spiking.spike_similar_loss` (a 0-d NumPy array of the spikes' dtype)."""
    return _ssl_run(spikes, labels, kernel_type, loss_type, args, compat, 1.0, False)[0]


def spike_similar_loss_vjp(grad_out, spikes, labels, kernel_type="linear", loss_type="mse", *args, compat=None):
    r"""GPU twin of :func:`refnsm.spiking.spike_similar_loss_vjp` (same shape as ``spikes``, on its side)."""
    g = _checks.scalar_grad_out(grad_out)
    return _ssl_run(spikes, labels, kernel_type, loss_type, args, compat, g, True)[1]


def spike_similar_loss_value_and_grad(spikes, labels, kernel_type="linear", loss_type="mse", *args, compat=None):
    """GPU twin of :func:`refnsm.spiking.spike_similar_loss_value_and_grad` (one forward pass)."""
    return _ssl_run(spikes, labels, kernel_type, loss_type, args, compat, 1.0, True)


def _ce_prepare(x_seq, target, ignore_index):
    """Returns (x4_dev, t2_dev, ignore_index, shape, on_device), validated exactly as the CPU does."""
    dev = _any_device(x_seq, target)
    if not is_device_array(x_seq):
        x, x4, t2, ii = _L._ce_prepare(x_seq, target if not is_device_array(target) else target.copy_to_host(),
                                       ignore_index)
        return cuda.to_device(x4), cuda.to_device(t2), ii, x.shape, dev
    x = _dev_float(x_seq, "x_seq", min_ndim=3, shape_hint="[T, N, C, *spatial]")
    tgt_host = target.copy_to_host() if is_device_array(target) else target
    tgt = _checks.as_index_array(tgt_host, "target", shape_hint="[N, *spatial]")
    ii = _checks.check_int(ignore_index, "ignore_index")
    expected = (x.shape[1],) + tuple(x.shape[3:])
    if tgt.shape != expected:
        raise ValueError(
            f"target: expected shape {expected} (x_seq's batch and spatial dims, [N, *spatial]) for x_seq of shape "
            f"{tuple(x.shape)}, got {tgt.shape}"
        )
    T, N, C = x.shape[:3]
    _L.check_target_values(tgt, T, C, ii, tuple(x.shape))
    S = int(np.prod(x.shape[3:], dtype=np.int64))
    t2 = tgt.reshape(N, S)
    return x.reshape(T, N, C, S), cuda.to_device(np.ascontiguousarray(t2)), ii, tuple(x.shape), True


def temporal_efficient_training_cross_entropy(x_seq, target, ignore_index=_L.IGNORE_INDEX):
    r"""GPU twin of :func:`refnsm.spiking.temporal_efficient_training_cross_entropy` (0-d NumPy array)."""
    x4, t2, ii, _, _ = _ce_prepare(x_seq, target, ignore_index)
    loss, _, _ = cross_entropy_steps(x4, t2, ii, 1.0, False)
    return np.asarray(loss, dtype=x4.dtype)


def temporal_efficient_training_cross_entropy_vjp(grad_out, x_seq, target, ignore_index=_L.IGNORE_INDEX):
    r"""GPU twin of :func:`refnsm.spiking.temporal_efficient_training_cross_entropy_vjp` (x_seq's shape and side)."""
    g = _checks.scalar_grad_out(grad_out)
    x4, t2, ii, shape, dev = _ce_prepare(x_seq, target, ignore_index)
    _, grad, _ = cross_entropy_steps(x4, t2, ii, g, True)
    return _out(grad.reshape(*shape), dev)
