r"""Numba kernels of the structured linear maps: the loops BLAS cannot express, nothing else.

Householder chains
------------------
A reflector :math:`H(\tilde v) = I - 2\tilde v\tilde v^\top/(\tilde v^\top\tilde v)` with
:math:`\tilde v = [0_{t}; v]` acts only on the trailing columns ``t:`` of a row block ``X``:
``X[:, t:] -= (2 / v.v) (X[:, t:] v) v^T``.  ``hh_chain_apply`` multiplies ``X`` on the right by the reflectors
listed in ``order`` (reflector ``t`` uses ``U[t, t:]``); ``hh_chain_vjp`` runs the chain backwards, recomputing each
intermediate from the next with :math:`H^{-1} = H` instead of storing it, and accumulates the reflector gradient

.. math::

    \partial v = \sum_b \Big[-\tfrac{2}{c}\big(\beta_b x_b + a_b \bar g_b\big) + \tfrac{4 a_b \beta_b}{c^2} v\Big],
    \qquad a_b = x_b\cdot v,\ \beta_b = \bar g_b\cdot v,\ c = v\cdot v,

with :math:`x_b` the rows entering the reflector and :math:`\bar g_b` the gradient of the rows leaving it.

Butterfly
---------
``bf_forward`` applies ``m`` butterfly factors (untied twiddle layout ``[m, n/2, 2, 2]``) to the rows of ``X``,
storing every intermediate; ``bf_backward`` is its exact reverse.

Perron–Frobenius
----------------
``pf_weight`` fuses :math:`W = (\sigma_\max - (\sigma_\max-\sigma_\min)\sigma(C)) \odot \mathrm{softmax}_\text{rows}(P)`
into one pass (the NumPy version is a dozen small array operations, which dominate at small sizes), with an
exponential that vectorises (``refnsm._vexp.exp``, within 1 ulp);
``pf_weight_vjp`` is its VJP (see :class:`refnsm.linear.PerronFrobeniusLinear`).  The sigmoid is
:math:`1/(1+e^{-c})` in float64: where :math:`e^{-c}` overflows it is ``inf`` (Numba raises no floating-point
warnings) and :math:`\sigma = 0` exactly, as the limit says.

Soft SVD
--------
``svd_scaled_factor`` forms :math:`\sigma(\theta_{:r})`, :math:`s = \sigma_\max - (\sigma_\max-\sigma_\min)
\sigma(\theta)` and :math:`U_{:, :r}\,\mathrm{diag}(s)`; ``svd_vjp_from_products`` is the elementwise rest of the
VJP, given :math:`G V_{:r}^\top` and :math:`U_{:, :r}^\top G` (see :class:`refnsm.linear.SVDLinear`).
``svd_weight`` and ``svd_weight_vjp`` wrap them with the products made inside the kernel, which saves three
Python-level calls' fixed cost (2.7 -> 1.9 µs for a 16x16 weight, 4.5 -> 3.2 µs for its VJP).  Those products go to
the BLAS that Numba links (SciPy's OpenBLAS build), not NumPy's own build: both are correctly rounded products up to
the usual dot-product error bound.  The maps use the wrappers only for products below 64**3 multiply-adds; larger
ones are NumPy's, the BLAS of the maps' own products (``refnsm.linear.svd._PRODUCTS_IN_KERNEL_BELOW`` says why).

The affine layer (every map)
----------------------------
``add_bias`` (:math:`y \mathrel{+}= b`, row by row), ``col_sums`` (:math:`\partial b = \sum_\text{batch}\bar g`, summed
row after row, the order NumPy's ``sum(axis=0)`` uses) replace NumPy calls whose fixed cost (about 2 µs each) dominated a 16x16 map; the products stay NumPy/BLAS calls.
"""

import numpy as np
from numba import njit

from refnsm._vexp import exp as vexp


@njit(cache=True)
def hh_chain_apply(X, U, order):
    """In place: X <- X H(U[order[0]]) H(U[order[1]]) ...; X is [B, n], U is [k, n] (row t used from column t)."""
    B, n = X.shape
    for s in range(order.shape[0]):
        t = order[s]
        c = 0.0
        for j in range(t, n):
            c += U[t, j] * U[t, j]
        f = 2.0 / c
        for b in range(B):
            a = 0.0
            for j in range(t, n):
                a += X[b, j] * U[t, j]
            a *= f
            for j in range(t, n):
                X[b, j] -= a * U[t, j]


@njit(cache=True)
def hh_chain_vjp(Y, G, U, order, dU):
    """Reverse of ``hh_chain_apply``.  Y (output of the chain) and G (its gradient) are overwritten in place with the
    chain's input and the input's gradient; the reflector gradients are accumulated into dU."""
    B, n = Y.shape
    for s in range(order.shape[0] - 1, -1, -1):
        t = order[s]
        c = 0.0
        for j in range(t, n):
            c += U[t, j] * U[t, j]
        f = 2.0 / c
        # recompute the input of this reflector: X = Y H (H is an involution)
        for b in range(B):
            a = 0.0
            for j in range(t, n):
                a += Y[b, j] * U[t, j]
            a *= f
            for j in range(t, n):
                Y[b, j] -= a * U[t, j]
        coef = 0.0
        for b in range(B):
            a = 0.0
            beta = 0.0
            for j in range(t, n):
                a += Y[b, j] * U[t, j]
                beta += G[b, j] * U[t, j]
            coef += a * beta
            if t < n - 1:  # H_{n-1} = I - 2 e e^T does not depend on U[n-1, n-1]: its gradient is exactly 0
                for j in range(t, n):
                    dU[t, j] -= f * (beta * Y[b, j] + a * G[b, j])
            # gradient of the input rows: G H
            beta *= f
            for j in range(t, n):
                G[b, j] -= beta * U[t, j]
        coef *= f * f
        if t < n - 1:
            for j in range(t, n):
                dU[t, j] += coef * U[t, j]


@njit(cache=True)
def bf_forward(X, tw, strides):
    """Butterfly chain on the rows of X [B, n]; tw is [m, n/2, 2, 2] (factor s uses tw[s]), strides[s] = 2**l.
    Returns the activations [m + 1, B, n] (acts[0] = X, acts[m] = output)."""
    m = strides.shape[0]
    B, n = X.shape
    acts = np.empty((m + 1, B, n), dtype=X.dtype)
    acts[0] = X
    for s in range(m):
        st = strides[s]
        src = acts[s]
        dst = acts[s + 1]
        for b in range(B):
            for g in range(n // (2 * st)):
                for l in range(st):
                    t = g * 2 * st + l
                    k = g * st + l
                    x0 = src[b, t]
                    x1 = src[b, t + st]
                    dst[b, t] = tw[s, k, 0, 0] * x0 + tw[s, k, 0, 1] * x1
                    dst[b, t + st] = tw[s, k, 1, 0] * x0 + tw[s, k, 1, 1] * x1
    return acts


@njit(cache=True)
def bf_backward(acts, G, tw, strides):
    """Reverse of ``bf_forward``: returns (gradient of X, gradient of tw) for the output gradient G [B, n]."""
    m = strides.shape[0]
    B, n = G.shape
    dtw = np.zeros_like(tw)
    g_cur = G.copy()
    g_prev = np.empty_like(G)
    for s in range(m - 1, -1, -1):
        st = strides[s]
        src = acts[s]
        for b in range(B):
            for g in range(n // (2 * st)):
                for l in range(st):
                    t = g * 2 * st + l
                    k = g * st + l
                    x0 = src[b, t]
                    x1 = src[b, t + st]
                    g0 = g_cur[b, t]
                    g1 = g_cur[b, t + st]
                    dtw[s, k, 0, 0] += g0 * x0
                    dtw[s, k, 0, 1] += g0 * x1
                    dtw[s, k, 1, 0] += g1 * x0
                    dtw[s, k, 1, 1] += g1 * x1
                    g_prev[b, t] = tw[s, k, 0, 0] * g0 + tw[s, k, 1, 0] * g1
                    g_prev[b, t + st] = tw[s, k, 0, 1] * g0 + tw[s, k, 1, 1] * g1
        g_cur, g_prev = g_prev, g_cur
    return g_cur, dtw


@njit(cache=True)
def bf_scatter_add(flat, idx, dE):
    """In place: flat[idx[s, j]] += dE[s, j] for s, j in C order (``np.add.at(flat, idx, dE)``, the same additions
    in the same order, without its per-element dispatch); flat is [p, 2, 2], idx [m, h], dE [m, h, 2, 2]."""
    for s in range(idx.shape[0]):
        for j in range(idx.shape[1]):
            t = idx[s, j]
            for a in range(2):
                for b in range(2):
                    flat[t, a, b] += dE[s, j, a, b]


@njit(cache=True, error_model="numpy")
def pf_weight(P, C, lo, hi):
    """Perron-Frobenius map, fused: M = softmax_rows(P), sc = sigmoid(C), W = (hi - (hi - lo) sc) * M.

    The exponentials are ``refnsm._vexp.exp`` (float64 whatever the dtype, within 1 ulp) in loops that vectorise:
    each row's shifted exponentials go to a float64 buffer, are summed in column order, and divided unrounded, so a
    float32 M is rounded once.  ``error_model="numpy"``: Numba's default tests every divisor for zero (to raise
    Python's ZeroDivisionError), which keeps the sigmoid's loop from vectorising; no divisor here can be zero
    (a row sum of exponentials includes exp(0) = 1, and 1 + exp(-c) >= 1).
    """
    n, k = P.shape
    W = np.empty_like(P)
    M = np.empty_like(P)
    SC = np.empty_like(P)
    E = np.empty(k)
    w = hi - lo
    for i in range(n):
        mx = P[i, 0]
        for j in range(1, k):
            if P[i, j] > mx:
                mx = P[i, j]
        for j in range(k):
            E[j] = vexp(float(P[i, j] - mx))
        tot = 0.0
        for j in range(k):
            tot += E[j]
        for j in range(k):
            M[i, j] = E[j] / tot
        for j in range(k):
            sc = 1.0 / (1.0 + vexp(-float(C[i, j])))  # exp overflow: inf, sc = 0 (the limit)
            SC[i, j] = sc
            W[i, j] = (hi - w * sc) * M[i, j]
    return W, M, SC


@njit(cache=True)
def pf_weight_vjp(G, M, SC, lo, hi):
    """VJP of ``pf_weight``: dP = M (G S - sum_k G S M), dC = -(hi - lo) G M sc (1 - sc), with S = hi - (hi - lo) sc."""
    n, k = G.shape
    dP = np.empty_like(M)
    dC = np.empty_like(M)
    w = hi - lo
    for i in range(n):
        dot = 0.0
        for j in range(k):
            dot += G[i, j] * (hi - w * SC[i, j]) * M[i, j]
        for j in range(k):
            dP[i, j] = M[i, j] * (G[i, j] * (hi - w * SC[i, j]) - dot)
            dC[i, j] = -w * G[i, j] * M[i, j] * SC[i, j] * (1.0 - SC[i, j])
    return dP, dC


@njit(cache=True)
def svd_scaled_factor(U, theta, lo, hi, r):
    """The elementwise part of the soft-SVD weight: sg = sigmoid(theta[:r, 0]), s = hi - (hi - lo) sg (each rounded
    to U's dtype) and Us = U[:, :r] diag(s), C-contiguous.  Returns (Us, s, sg); W = Us V[:r]."""
    n = U.shape[0]
    sg = np.empty(r, dtype=U.dtype)
    s = np.empty(r, dtype=U.dtype)
    for q in range(r):
        sg[q] = 0.5 * (1.0 + np.tanh(0.5 * float(theta[q, 0])))
        s[q] = hi - (hi - lo) * sg[q]
    Us = np.empty((n, r), dtype=U.dtype)
    for i in range(n):
        for q in range(r):
            Us[i, q] = U[i, q] * s[q]
    return Us, s, sg


@njit(cache=True)
def svd_weight(U, V, theta, lo, hi, r):
    """Soft-SVD weight in one call: ``svd_scaled_factor`` and W = Us V[:r] (one BLAS product from the kernel, of
    C-contiguous factors).  Returns (W, s, sg)."""
    Us, s, sg = svd_scaled_factor(U, theta, lo, hi, r)
    return np.dot(Us, np.ascontiguousarray(V[:r, :])), s, sg


@njit(cache=True)
def svd_vjp_from_products(GVt, UtG, U, s, sg, lo, hi, r, ntheta):
    """The elementwise part of the soft-SVD VJP, from GVt = G V[:r]^T [in, r] and UtG = U[:, :r]^T G [r, out]:
    dU = [GVt diag(s), 0], dV = [diag(s) UtG; 0], g_q = sum_i U[i, q] GVt[i, q] (in order i = 0, 1, ...)
    = (U^T G V^T)_qq and dtheta[q, 0] = -(hi - lo) sg_q (1 - sg_q) g_q for q < r (zero below).  Returns
    (dU, dV, dtheta, g)."""
    nin = GVt.shape[0]
    nout = UtG.shape[1]
    dt = GVt.dtype
    dU = np.zeros((nin, nin), dtype=dt)
    dV = np.zeros((nout, nout), dtype=dt)
    dtheta = np.zeros((ntheta, 1), dtype=dt)
    g = np.zeros(r, dtype=dt)
    for i in range(nin):
        for q in range(r):
            dU[i, q] = GVt[i, q] * s[q]
            g[q] += U[i, q] * GVt[i, q]
    for q in range(r):
        for j in range(nout):
            dV[q, j] = s[q] * UtG[q, j]
        dtheta[q, 0] = -(hi - lo) * sg[q] * (1 - sg[q]) * g[q]
    return dU, dV, dtheta, g


@njit(cache=True)
def svd_weight_vjp(G, U, V, s, sg, lo, hi, r, ntheta):
    """VJP of ``svd_weight`` for a cotangent G [in, out] in one call: GVt = G V[:r]^T and UtG = U[:, :r]^T G (two
    BLAS products from the kernel), then ``svd_vjp_from_products``.  Returns (dU, dV, dtheta, g)."""
    GVt = np.dot(G, np.ascontiguousarray(V[:r, :]).T)
    UtG = np.dot(np.ascontiguousarray(U[:, :r]).T, G)
    return svd_vjp_from_products(GVt, UtG, U, s, sg, lo, hi, r, ntheta)


@njit(cache=True)
def add_bias(y, b):
    """In place: y[i, j] += b[j] (b of length y.shape[1]) or y[i, j] += b[0] (a scalar bias, length 1)."""
    step = 1 if b.shape[0] == y.shape[1] else 0
    for i in range(y.shape[0]):
        for j in range(y.shape[1]):
            y[i, j] += b[j * step]


@njit(cache=True)
def col_sums(g):
    """out[j] = sum_i g[i, j], summed in the order i = 0, 1, ... in g's dtype (as NumPy's g.sum(axis=0))."""
    out = np.zeros(g.shape[1], dtype=g.dtype)
    for i in range(g.shape[0]):
        for j in range(g.shape[1]):
            out[j] += g[i, j]
    return out



@njit(cache=True)
def add_bias_finite(y, b):
    """``add_bias(y, b)`` (the same additions), and in the same pass whether the result is finite.  The test is the
    sum of ``v * 0`` per column (0 exactly when every ``v`` is finite), accumulated along the rows so that it
    vectorises without reordering any sum.  The CPU path of ``forward`` only (the device's results stay there)."""
    step = 1 if b.shape[0] == y.shape[1] else 0
    acc = np.zeros(y.shape[1], dtype=y.dtype)
    for i in range(y.shape[0]):
        for j in range(y.shape[1]):
            v = y[i, j] + b[j * step]
            y[i, j] = v
            acc[j] += v * 0
    for j in range(y.shape[1]):
        if acc[j] != 0:
            return False
    return True


@njit(cache=True)
def col_sums_finite(g, gx, b):
    """``col_sums(g)`` (the same sums, in the same order), and whether ``gx`` is finite (the test of
    ``add_bias_finite``), in one call.  Returns (sums, finite), the sums in a new array of the bias ``b``'s shape
    ((n,) or (1, n), with ``b.size`` = the columns of ``g``; only its shape is read), so that ``backward`` needs no
    reshape.  The CPU path of ``backward`` only."""
    out = np.zeros_like(b)
    flat = out.reshape(out.size)  # a view (out is new and C-contiguous)
    for i in range(g.shape[0]):
        for j in range(g.shape[1]):
            flat[j] += g[i, j]
    acc = np.zeros(gx.shape[1], dtype=gx.dtype)
    for i in range(gx.shape[0]):
        for j in range(gx.shape[1]):
            acc[j] += gx[i, j] * 0
    for j in range(gx.shape[1]):
        if acc[j] != 0:
            return out, False
    return out, True
