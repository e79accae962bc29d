"""Numba kernels of :mod:`refnsm.regularization`: the math only (no validation, no Python objects).

Every kernel is ``@njit(cache=True)``, nopython, ``fastmath=False``, except that the kernels whose loop is one long
sum (``sum_squares``, ``abs_row_sums``, ``absdiff_row_sums``, ``dale_l2``, ``softsign_mean``) let that sum be
reassociated (``fastmath={"reassoc"}``, see :func:`sum_squares`).  They compile lazily on first call and are
specialised per dtype (float32 inputs are computed in float32 storage, accumulated in float64).
Accumulations run in row-major order; a non-finite input propagates to the returned sums, which is how the
public layer detects NaN/Inf without a separate pass over large arrays.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, fastmath={"reassoc"})
def sum_squares(a):
    """sum_k a_k^2 of a 1-D array, squares and sum in float64, in one pass.

    The one fast-math flag, ``reassoc``, lets the sum be split over vector lanes (as BLAS ``ddot`` splits it), so
    the pass runs at memory speed; no flag lets the compiler assume finite values, so a NaN or Inf entry makes
    the result NaN or Inf (the caller's signal to look at the input).
    """
    s = 0.0
    for i in range(a.shape[0]):
        x = np.float64(a[i])
        s += x * x
    return s


@njit(cache=True)
def abs_col_sums(P, out):
    """out[j] = sum_i |P[i, j]|  (out is float64, length M)."""
    n, m = P.shape
    for j in range(m):
        out[j] = 0.0
    for i in range(n):
        for j in range(m):
            out[j] += abs(np.float64(P[i, j]))


@njit(cache=True, fastmath={"reassoc"})
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


@njit(cache=True, inline="always")
def _finite_extreme(sums, largest):
    """``(max or min of sums, True)``, or ``(0.0, False)`` at the first non-finite sum."""
    v = sums[0]
    for k in range(sums.shape[0]):
        x = sums[k]
        if not np.isfinite(x):
            return 0.0, False
        if (x > v) if largest else (x < v):
            v = x
    return v, True


@njit(cache=True)
def induced_norm_grad(P, by_cols, largest, want_grad, G, scale):
    """The induced 1-norm (``by_cols``: max absolute column sum) or inf-norm (max absolute row sum) of ``P``, or
    with ``largest`` False the min sum (p = -1, -inf), and, if ``want_grad``, its gradient times ``scale`` into
    ``G`` (:func:`sign_times_col_weights` / :func:`sign_times_row_weights` with :func:`tie_weights`; the scale
    rides on the tie weights, so the gradient is written once, already scaled).

    Returns ``(value, finite)``: ``finite`` is False when a sum is not finite (a NaN/Inf entry, or an overflow),
    and then neither the value nor ``G`` means anything (the caller takes the slow path).  One call for what took five at training-step sizes.
    """
    n, m = P.shape
    sums = np.empty(m if by_cols else n)
    if by_cols:
        abs_col_sums(P, sums)
    else:
        abs_row_sums(P, sums)
    v, finite = _finite_extreme(sums, largest)
    if not finite:
        return 0.0, False
    if want_grad:
        w = tie_weights(sums, v, scale)
        if by_cols:
            sign_times_col_weights(P, w, G)
        else:
            sign_times_row_weights(P, w, G)
    return v, True


@njit(cache=True, fastmath={"reassoc"})
def dale_l2(P, S, alpha, G, want_grad, scale):
    r"""Value :math:`\alpha\|P\|_F^2 - (1-\alpha)\langle P, S\rangle` and, if ``want_grad``,
    G = (2 alpha P - (1-alpha) S) * scale (the caller's Lambda * grad_out, applied in the same pass)."""
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
                G[i, j] = (2.0 * alpha * x - beta * s) * scale
    return alpha * sq - beta * cross


@njit(cache=True, fastmath={"reassoc"}, error_model="numpy")
def softsign_mean(X):
    """mean of x / (1 + |x|) over the flattened (contiguous) array.  The divisor is >= 1 (or NaN), so NumPy's
    error model (no division-by-zero branch, which keeps the loop from being vectorised) changes nothing."""
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
def scaled_copy(X, c, G):
    """G = X * c elementwise (flattened, contiguous; float64 product, stored in G's dtype): the Frobenius-norm
    gradient P / ||P|| times the caller's scale, written in one pass."""
    x = X.reshape(-1)
    g = G.reshape(-1)
    for k in range(x.shape[0]):
        g[k] = np.float64(x[k]) * c


@njit(cache=True, error_model="numpy")
def softsign_grad(X, coef, G):
    """G = coef / (1 + |x|)^2 elementwise (flattened, contiguous; the divisor is >= 1, see softsign_mean)."""
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


@njit(cache=True, fastmath={"reassoc"})
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


@njit(cache=True)
def distance_induced_grad(P, Q, by_cols, largest, want_grad, G, scale):
    """:func:`induced_norm_grad` of ``|P - Q|`` without forming it: the largest (``largest``) or smallest absolute
    column (``by_cols``) or row sum of ``P - Q`` and, if ``want_grad``, sign(P - Q) times ``scale`` over the
    number of tied sums into ``G`` (:func:`absdiff_col_sums` / :func:`absdiff_row_sums`, :func:`tie_weights`,
    :func:`signdiff_times_weights`).  Returns ``(value, finite)``; ``finite`` False (a NaN/Inf entry or an
    overflowing sum): neither the value nor ``G`` means anything and the caller takes the step-by-step path."""
    n, m = P.shape
    sums = np.empty(m if by_cols else n)
    if by_cols:
        absdiff_col_sums(P, Q, sums)
    else:
        absdiff_row_sums(P, Q, sums)
    v, finite = _finite_extreme(sums, largest)
    if not finite:
        return 0.0, False
    if want_grad:
        signdiff_times_weights(P, Q, tie_weights(sums, v, scale), by_cols, G)
    return v, True


# --------------------------------------------------------------------------------------------- top eigenpair
@njit(cache=True, error_model="numpy")
def _sturm_count(d, e2, x, pivmin):
    """Number of eigenvalues of the symmetric tridiagonal T(d, e) that are < x (Sturm sequence; e2 = e**2)."""
    n = d.shape[0]
    q = d[0] - x
    if abs(q) < pivmin:
        q = -pivmin
    c = 1 if q < 0.0 else 0
    for i in range(1, n):
        q = d[i] - x - e2[i - 1] / q
        if abs(q) < pivmin:
            q = -pivmin
        if q < 0.0:
            c += 1
    return c


@njit(cache=True, error_model="numpy")
def _bisect_from_top(d, e2, k, lo, hi, pivmin, rtol):
    """Bracket [lo, hi] of the k-th largest eigenvalue of T (k = 1: the largest), bisected until
    hi - lo <= rtol * max(|lo|, |hi|) or the midpoint rounds to an end.  Needs count(lo) <= n - k < count(hi)."""
    n = d.shape[0]
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi or hi - lo <= rtol * max(abs(lo), abs(hi)):
            break
        if _sturm_count(d, e2, mid, pivmin) <= n - k:
            lo = mid
        else:
            hi = mid
    return lo, hi


@njit(cache=True, error_model="numpy")
def tridiagonal_top_eigpair(d, e, tau, V, x, gap=-1.0):
    r"""Largest eigenvalue :math:`\lambda_1` of a symmetric matrix :math:`A = Q T Q^\top` given in LAPACK
    ``sytrd`` form, its unit eigenvector, and an upper bound of :math:`\lambda_2`: the rest of LAPACK's
    ``syevx`` for the top eigenpair, without its per-call overhead on small matrices.

    ``d`` (n,), ``e`` (n-1,): the diagonal and off-diagonal of :math:`T`.  ``tau`` (n-1,) and ``V`` (n x n, row
    ``k`` holds :math:`v_k[k+2:]`; :math:`v_k[:k+1] = 0`, :math:`v_k[k+1] = 1`): the reflectors of
    :math:`Q = H_0 H_1 \cdots H_{n-2}`, :math:`H_k = I - \tau_k v_k v_k^\top` (``sytrd`` with ``lower=1``, whose
    Fortran-ordered output read as a C array is exactly this ``V``).  ``x`` (n,) receives the eigenvector.
    Returns ``(lam1, lam2_hi, resid)`` with ``resid`` :math:`= \|T z - \lambda_1 z\|` for the unit ``z`` with
    :math:`x = Qz`; since :math:`Q` is orthogonal it is also :math:`\|Ax - \lambda_1 x\|` up to the rounding of
    the reduction, and with the gap it bounds the eigenvector's error,
    :math:`\sin\angle(x, x_1) \le \|r\| / (\lambda_1 - \lambda_2)` (Davis-Kahan).

    1. Sturm-sequence bisection on :math:`T` from the Gershgorin interval: :math:`\lambda_1` to :math:`10^{-8}`
       relative (each count that lands between :math:`\lambda_2` and :math:`\lambda_1`, or below both, also
       narrows :math:`\lambda_2`'s bracket), then :math:`\lambda_2` to :math:`10^{-8}` relative (it only feeds
       the caller's gap test).  With ``gap`` > 0, :math:`\lambda_2`'s bisection stops as soon as it is decided
       whether :math:`\lambda_1 - \lambda_2 > \text{gap}\,\lambda_1`: then ``lam2_hi`` is an upper bound below
       :math:`(1 - 1.01\,\text{gap})\lambda_1` (separated), or :math:`\lambda_1`'s upper bound (not separated).
    2. Inverse iteration with the shift :math:`\sigma =` the upper end of :math:`\lambda_1`'s bracket:
       :math:`\sigma I - T` is positive semidefinite, so its :math:`LDL^\top` factorisation needs no pivoting (a
       pivot below the safe minimum is replaced by it); four solves from a fixed start vector, each normalised
       (with :math:`\sigma - \lambda_1 \le 10^{-8}\lambda_1` each solve shrinks the other components by
       :math:`(\sigma-\lambda_1)/(\sigma-\lambda_2)`).  ``lam1`` is then the Rayleigh quotient :math:`z^\top T z`
       (accurate to rounding: its error is second order in the eigenvector's), and the residual is measured with it,
       so the returned certificate does not depend on how :math:`\lambda_1` was located.
    3. Back-transformation :math:`x = H_0 (H_1 (\cdots H_{n-2} z))`.
    """
    n = d.shape[0]
    e2 = np.empty(n)
    e2[n - 1] = 0.0
    lo = d[0]
    hi = d[0]
    anorm = 0.0
    for i in range(n):
        r = 0.0
        if i > 0:
            r += abs(e[i - 1])
        if i < n - 1:
            r += abs(e[i])
            e2[i] = e[i] * e[i]
        lo = min(lo, d[i] - r)
        hi = max(hi, d[i] + r)
        anorm = max(anorm, abs(d[i]) + r)
    eps = np.finfo(np.float64).eps
    tiny = np.finfo(np.float64).tiny
    pivmin = tiny * max(1.0, anorm * anorm)
    pad = 2.0 * max(hi - lo, anorm) * eps + pivmin
    lo -= pad
    hi += pad
    # lambda_1 to 1e-8, recording what each count says about lambda_2 (count(mid) = n - 1: lambda_2 < mid;
    # count(mid) <= n - 2: lambda_2 >= mid)
    lo1, hi1, lo2, hi2 = lo, hi, lo, hi
    for _ in range(200):
        mid = 0.5 * (lo1 + hi1)
        if mid <= lo1 or mid >= hi1 or hi1 - lo1 <= 1e-8 * max(abs(lo1), abs(hi1)):
            break
        c = _sturm_count(d, e2, mid, pivmin)
        if c <= n - 1:
            lo1 = mid
            if c <= n - 2:
                lo2 = max(lo2, mid)
            else:
                hi2 = min(hi2, mid)
        else:
            hi1 = mid
    hi2 = min(hi2, hi1)
    lo2 = min(lo2, hi2)
    if gap > 0.0:
        sep = (1.0 - 1.01 * gap) * lo1  # lambda_2 below it: lambda_1 - lambda_2 > gap lambda_1 for sure
        for _ in range(200):
            if hi2 < sep:
                break
            if lo2 >= (1.0 - gap) * hi1:  # lambda_1 - lambda_2 <= gap lambda_1: not separated
                hi2 = hi1
                break
            mid = 0.5 * (lo2 + hi2)
            if mid <= lo2 or mid >= hi2 or hi2 - lo2 <= 1e-8 * max(abs(lo2), abs(hi2)):
                break
            if _sturm_count(d, e2, mid, pivmin) <= n - 2:
                lo2 = mid
            else:
                hi2 = mid
    else:
        lo2, hi2 = _bisect_from_top(d, e2, 2, lo2, hi2, pivmin, 1e-8)
    # inverse iteration: (hi1 I - T) = L D L^T, L unit lower bidiagonal with subdiagonal Lsub
    piv = max(pivmin, 1e-3 * eps * anorm)
    D = np.empty(n)
    Lsub = np.empty(n)
    D[0] = hi1 - d[0]
    if abs(D[0]) < piv:
        D[0] = piv
    for i in range(1, n):
        Lsub[i - 1] = -e[i - 1] / D[i - 1]
        D[i] = (hi1 - d[i]) + Lsub[i - 1] * e[i - 1]
        if abs(D[i]) < piv:
            D[i] = piv
    z = np.empty(n)
    for i in range(n):
        z[i] = 1.0 + 0.5 * np.sin(1.0 + i)
    for _ in range(4):
        for i in range(1, n):
            z[i] -= Lsub[i - 1] * z[i - 1]
        for i in range(n):
            z[i] /= D[i]
        for i in range(n - 2, -1, -1):
            z[i] -= Lsub[i] * z[i + 1]
        zmax = 0.0
        for i in range(n):
            zmax = max(zmax, abs(z[i]))
        s = 0.0
        for i in range(n):
            z[i] /= zmax
            s += z[i] * z[i]
        s = np.sqrt(s)
        for i in range(n):
            z[i] /= s
    lam1 = 0.0
    for i in range(n):
        ti = d[i] * z[i]
        if i > 0:
            ti += e[i - 1] * z[i - 1]
        if i < n - 1:
            ti += e[i] * z[i + 1]
        lam1 += z[i] * ti
    r2 = 0.0
    for i in range(n):
        ri = (d[i] - lam1) * z[i]
        if i > 0:
            ri += e[i - 1] * z[i - 1]
        if i < n - 1:
            ri += e[i] * z[i + 1]
        r2 += ri * ri
    for i in range(n):
        x[i] = z[i]
    for k in range(n - 2, -1, -1):
        if tau[k] == 0.0:
            continue
        s = x[k + 1]
        for j in range(k + 2, n):
            s += V[k, j] * x[j]
        s *= tau[k]
        x[k + 1] -= s
        for j in range(k + 2, n):
            x[j] -= s * V[k, j]
    return lam1, hi2, np.sqrt(r2)
