"""Numba kernels of :mod:`refnsm.regularization`: the math only (no validation, no Python objects).

Every kernel is ``@njit(cache=True)``, nopython, ``fastmath=False``.  They compile lazily on first call and are
specialised per dtype (float32 inputs are computed in float32 storage, accumulated in float64).
Accumulations run in row-major order; a non-finite input propagates to the returned sums, which is how the
public layer detects NaN/Inf without a separate pass over large arrays.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def abs_col_sums(P, out):
    """out[j] = sum_i |P[i, j]|  (out is float64, length M)."""
    n, m = P.shape
    for j in range(m):
        out[j] = 0.0
    for i in range(n):
        for j in range(m):
            out[j] += abs(np.float64(P[i, j]))


@njit(cache=True)
def abs_row_sums(P, out):
    """out[i] = sum_j |P[i, j]|  (out is float64, length N)."""
    n, m = P.shape
    for i in range(n):
        s = 0.0
        for j in range(m):
            s += abs(np.float64(P[i, j]))
        out[i] = s


@njit(cache=True)
def sign_times_col_weights(P, w, G):
    """G[i, j] = sign(P[i, j]) * w[j] (G fully written; sign(0) = 0)."""
    n, m = P.shape
    for i in range(n):
        for j in range(m):
            x = P[i, j]
            if w[j] == 0.0 or x == 0.0:
                G[i, j] = 0.0
            elif x > 0.0:
                G[i, j] = w[j]
            else:
                G[i, j] = -w[j]


@njit(cache=True)
def sign_times_row_weights(P, w, G):
    """G[i, j] = sign(P[i, j]) * w[i] (G fully written; sign(0) = 0)."""
    n, m = P.shape
    for i in range(n):
        wi = w[i]
        for j in range(m):
            x = P[i, j]
            if wi == 0.0 or x == 0.0:
                G[i, j] = 0.0
            elif x > 0.0:
                G[i, j] = wi
            else:
                G[i, j] = -wi


@njit(cache=True)
def tie_weights(s, target, scale):
    """w[k] = scale / (number of k with s[k] == target) where s[k] == target, else 0 (torch's amax/amin rule)."""
    k = 0
    for i in range(s.shape[0]):
        if s[i] == target:
            k += 1
    w = np.zeros(s.shape[0])
    if k == 0:
        return w
    c = scale / k
    for i in range(s.shape[0]):
        if s[i] == target:
            w[i] = c
    return w


@njit(cache=True)
def dale_l2(P, S, alpha, G, want_grad):
    r"""Value :math:`\alpha\|P\|_F^2 - (1-\alpha)\langle P, S\rangle` and, if ``want_grad``, G = 2 alpha P - (1-alpha) S."""
    n, m = P.shape
    beta = 1.0 - alpha
    sq = 0.0
    cross = 0.0
    for i in range(n):
        for j in range(m):
            x = np.float64(P[i, j])
            s = np.float64(S[i, j])
            sq += x * x
            cross += x * s
            if want_grad:
                G[i, j] = 2.0 * alpha * x - beta * s
    return alpha * sq - beta * cross


@njit(cache=True)
def softsign_mean(X):
    """mean of x / (1 + |x|) over the flattened (contiguous) array."""
    x = X.reshape(-1)
    s = 0.0
    for k in range(x.shape[0]):
        v = np.float64(x[k])
        s += v / (1.0 + abs(v))
    return s / x.shape[0]


@njit(cache=True)
def sign_mean(X):
    """mean of sign(x) over the flattened (contiguous) array (NaN propagates)."""
    x = X.reshape(-1)
    s = 0.0
    for k in range(x.shape[0]):
        v = np.float64(x[k])
        if v > 0.0:
            s += 1.0
        elif v < 0.0:
            s -= 1.0
        elif v != v:
            s += v
    return s / x.shape[0]


@njit(cache=True)
def softsign_grad(X, coef, G):
    """G = coef / (1 + |x|)^2 elementwise (flattened, contiguous)."""
    x = X.reshape(-1)
    g = G.reshape(-1)
    for k in range(x.shape[0]):
        d = 1.0 + abs(np.float64(x[k]))
        g[k] = coef / (d * d)


@njit(cache=True)
def absdiff_col_sums(P, Q, out):
    """out[j] = sum_i |P[i, j] - Q[i, j]|  (out is float64, length M)."""
    n, m = P.shape
    for j in range(m):
        out[j] = 0.0
    for i in range(n):
        for j in range(m):
            out[j] += abs(np.float64(P[i, j]) - np.float64(Q[i, j]))


@njit(cache=True)
def absdiff_row_sums(P, Q, out):
    """out[i] = sum_j |P[i, j] - Q[i, j]|  (out is float64, length N)."""
    n, m = P.shape
    for i in range(n):
        s = 0.0
        for j in range(m):
            s += abs(np.float64(P[i, j]) - np.float64(Q[i, j]))
        out[i] = s


@njit(cache=True)
def signdiff_times_weights(P, Q, w, by_cols, G):
    """G[i, j] = sign(P[i, j] - Q[i, j]) * (w[j] if by_cols else w[i]) (G fully written; sign(0) = 0)."""
    n, m = P.shape
    for i in range(n):
        for j in range(m):
            wk = w[j] if by_cols else w[i]
            d = np.float64(P[i, j]) - np.float64(Q[i, j])
            if wk == 0.0 or d == 0.0:
                G[i, j] = 0.0
            elif d > 0.0:
                G[i, j] = wk
            else:
                G[i, j] = -wk
