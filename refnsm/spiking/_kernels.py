"""Numba kernels of the spiking family: the math only (no validation; callers pass C-contiguous float arrays).

Arithmetic stays in the input dtype (constants are cast with ``X.dtype.type``) so a float32 call follows
float32 rounding as torch does; scalar losses are accumulated in float64.  Matrix products use BLAS
through ``np.dot``.  The sigmoid kernel's exponentials are ``refnsm._vexp.exp`` (float64, within 1 ulp, then
rounded to the dtype) and its divisions ``refnsm._vexp.fdiv`` (``/`` without Numba's zero test; the divisor is
at least 1), so that their loops vectorise; the TET loss's logarithms are ``refnsm._vlog.log``.  See
``refnsm/spiking/losses.py`` for the math and the public API.
"""

import numpy as np
from numba import njit

from refnsm._bits32 import BITS_INF32, BITS_MIN_NORMAL32, abs_bits_value, max_abs_bits32, min_abs_bits32
from refnsm._fastchecks import all_finite
from refnsm._specialise import float32_variant
from refnsm._vexp import exp as vexp
from refnsm._vexp import fdiv
from refnsm._vlog import log as vlog

# kernel codes
LINEAR, POLYNOMIAL, SIGMOID, GAUSSIAN = 0, 1, 2, 3
# pairwise loss codes
MSE, L1, BCE = 0, 1, 2
#: a pair of rows is "near" when |x_i - x_j|^2 <= NEAR (|x_i|^2 + |x_j|^2); see ``gaussian_pairs``
NEAR = 0.25


@njit(cache=True)
def row_sqnorms(x):
    n, d = x.shape
    out = np.empty(n, dtype=x.dtype)
    for i in range(n):
        acc = x.dtype.type(0.0)
        for k in range(d):
            acc += x[i, k] * x[i, k]
        out[i] = acc
    return out


@njit(cache=True)
def _max_bits(u, mask):
    m = u.dtype.type(0)
    for k in range(u.size):
        m = max(m, u[k] & mask)
    return m


@njit(cache=True, inline="always")
def _max_abs_as(x, utype, mask):
    """``max_abs`` with the bit patterns read as the unsigned integer type ``utype`` of x's width."""
    f = x.ravel()
    out = np.empty(1, dtype=f.dtype)
    o = out.view(utype)
    o[0] = _max_bits(f.view(utype), mask)
    return float(out[0])


@njit(cache=True)
def _max_abs32(x):
    """``max_abs`` of a float32 array."""
    return _max_abs_as(x, np.uint32, np.uint32(0x7FFFFFFF))


@float32_variant(_max_abs32)
@njit(cache=True)
def max_abs(x):
    """max |x| of a C-contiguous float array (0.0 when empty) as a float, in one pass without a temporary.

    The sign bit is masked off and the bit patterns compared as unsigned integers, which orders non-negative
    floats (Inf included; a NaN's pattern exceeds Inf's, so a NaN makes the result NaN) exactly as their values;
    the integer maximum vectorises where the float one, NaN-aware, does not (5x faster).  float64 here, float32 by
    ``_max_abs32`` (``refnsm._specialise``: each signature compiles one width's code)."""
    return _max_abs_as(x, np.uint64, np.uint64(0x7FFFFFFFFFFFFFFF))


@njit(cache=True)
def symmetric_from_upper(U):
    """The full symmetric matrix (C order) from one whose upper triangle holds the values (BLAS syrk output)."""
    n = U.shape[0]
    G = np.empty((n, n), dtype=U.dtype)
    for i in range(n):
        for j in range(i, n):
            G[i, j] = U[i, j]
            G[j, i] = U[i, j]
    return G


@njit(cache=True, inline="always")
def _one_over_one_plus(e, dt):
    """``1 / (1 + e)`` in the dtype ``dt`` for a float64 ``e >= 0`` (rounded to ``dt`` first); ``fdiv``: the divisor
    is at least 1."""
    one = dt(1.0)
    return fdiv(one, one + dt(e))


@njit(cache=True, inline="always")
def _logistic(u, dt):
    """``1 / (1 + e^u)`` in the dtype ``dt``, the exponential by ``refnsm._vexp.exp`` in float64: the sigmoid kernel
    is ``_logistic(-p G)``, its complement ``1 - S`` is ``_logistic(p G)``.  Every sigmoid site uses it (or, where the
    exponentials are formed in a loop of their own, ``_one_over_one_plus``), so all paths agree bit for bit."""
    return _one_over_one_plus(vexp(float(u)), dt)


@njit(cache=True)
def kernel_from_gram(G, x, y, kind, p):
    """K[i, j] = kappa(x_i, y_j) from the Gram matrix G = x y^T (linear: a copy of G)."""
    if kind == LINEAR:
        return G.copy()
    nx, ny = G.shape
    K = np.empty_like(G)
    pp = G.dtype.type(p)
    if kind == POLYNOMIAL:
        for i in range(nx):
            for j in range(ny):
                K[i, j] = G[i, j] ** pp
    elif kind == SIGMOID:
        for i in range(nx):
            for j in range(ny):
                K[i, j] = _logistic(-(pp * G[i, j]), G.dtype.type)
    else:  # GAUSSIAN: exp(-((|x_i|^2 + |y_j|^2) - 2 G_ij) / (2 sigma^2)), in torch's order of operations
        x2 = row_sqnorms(x)
        y2 = row_sqnorms(y)
        two = G.dtype.type(2.0)
        c = G.dtype.type(2.0 * p * p)
        for i in range(nx):
            for j in range(ny):
                K[i, j] = np.exp(-((x2[i] + y2[j]) - two * G[i, j]) / c)
    return K


@njit(cache=True)
def kernel_forward(x, y, kind, p):
    """K[i, j] = kappa(x_i, y_j) and the Gram matrix G = x y^T."""
    G = np.dot(x, y.T)
    return kernel_from_gram(G, x, y, kind, p), G


@njit(cache=True)
def _kernel_coupling(A, K, G, kind, p):
    """For linear/polynomial/sigmoid: B = dL/dG.  For gaussian: Q = dL/dDist."""
    nx, ny = A.shape
    B = np.empty_like(A)
    pp = A.dtype.type(p)
    if kind == LINEAR:
        B[:, :] = A
    elif kind == POLYNOMIAL:
        if p == 0.0:  # d/dG G^0 = 0 identically (torch masks it the same way)
            B[:, :] = 0.0
        else:
            pm1 = A.dtype.type(p - 1.0)
            for i in range(nx):
                for j in range(ny):
                    B[i, j] = A[i, j] * (pp * G[i, j] ** pm1)
    elif kind == SIGMOID:
        # 1 - K as sigma(-p G), not by subtraction: a saturated K rounds to 1 and 1 - K to 0, where the exact
        # derivative K (1 - K) is tiny but not 0
        for i in range(nx):
            for j in range(ny):
                B[i, j] = pp * (A[i, j] * (K[i, j] * _logistic(pp * G[i, j], A.dtype.type)))
    else:
        c = A.dtype.type(2.0 * p * p)
        for i in range(nx):
            for j in range(ny):
                B[i, j] = -((A[i, j] * K[i, j]) / c)
    return B


@njit(cache=True)
def kernel_vjp(A, x, y, kind, p):
    """(dL/dx, dL/dy) for K = kernel(x, y) and A = dL/dK (x and y distinct arguments)."""
    K, G = kernel_forward(x, y, kind, p)
    B = _kernel_coupling(A, K, G, kind, p)
    if kind != GAUSSIAN:
        return np.dot(B, y), np.dot(B.T, x)
    # Dist = x2_i + y2_j - 2 G_ij:  dx_i = 2 x_i sum_j Q_ij - 2 (Q y)_i,  dy_j = 2 y_j sum_i Q_ij - 2 (Q^T x)_j
    two = A.dtype.type(2.0)
    gx = np.dot(B, y)
    gy = np.dot(B.T, x)
    rs = B.sum(axis=1)
    cs = B.sum(axis=0)
    for i in range(x.shape[0]):
        for k in range(x.shape[1]):
            gx[i, k] = two * rs[i] * x[i, k] - two * gx[i, k]
    for j in range(y.shape[0]):
        for k in range(y.shape[1]):
            gy[j, k] = two * cs[j] * y[j, k] - two * gy[j, k]
    return gx, gy


@njit(cache=True)
def similarity_forward(X, G, kind, p, eps, exact_diagonal):
    """S = kappa(X, X) from the Gram matrix G = X X^T, cosine-normalised with eps for the linear kernel.

    Returns (S, r) with r the row norms.  G is formed by the caller with NumPy's ``X @ X.T`` (BLAS syrk: half the
    flops of a general product, and exactly symmetric).  With ``exact_diagonal`` the diagonal is formed from its
    closed form instead of by cancellation: the gaussian S_ii = exp(-0) = 1 (and for near rows S_ij from the
    differences x_i - x_j), and the cosine S_ii = r_i r_i / (r_i r_i + eps), which cannot round above 1.  torch's order of operations
    (``exact_diagonal=False``) can put both a few ulp above 1 (see the
    spikingjelly section of docs/upstream_differences.md).
    """
    K = kernel_from_gram(G, X, X, kind, p)
    n = X.shape[0]
    r = np.sqrt(row_sqnorms(X))
    if kind == LINEAR:
        e = X.dtype.type(eps)
        for i in range(n):
            for j in range(n):
                K[i, j] = G[i, j] / (r[i] * r[j] + e)
            if exact_diagonal:
                K[i, i] = (r[i] * r[i]) / (r[i] * r[i] + e)
    elif kind == GAUSSIAN and exact_diagonal:
        # near pairs (see gaussian_pairs): the squared distance from the differences, not by the cancellation in
        # |x_i|^2 + |x_j|^2 - 2 G_ij, which exp(-d / 2 sigma^2) would amplify by d's condition number
        two = X.dtype.type(2.0)
        lim = X.dtype.type(NEAR)
        c = X.dtype.type(2.0 * p * p)
        for i in range(n):
            K[i, i] = X.dtype.type(1.0)
            for j in range(n):
                sq = G[i, i] + G[j, j]
                if j != i and (sq - two * G[i, j]) <= lim * sq:
                    d = X.dtype.type(0.0)
                    for k in range(X.shape[1]):
                        t = X[i, k] - X[j, k]
                        d += t * t
                    K[i, j] = np.exp(-d / c)
    return K, r


@njit(cache=True)
def gaussian_pairs(Q, G, W, h):
    """Split the gaussian similarity's gradient dX_i = sum_{j != i} M_ij (x_i - x_j), M = 2 (Q + Q^T), in two.

    Formed as h_i x_i - sum_j M_ij x_j (BLAS), a pair's contribution carries a rounding error of order
    eps |M_ij| |x|, which is harmless next to the exact |M_ij| |x_i - x_j| when the rows are far apart, and not
    when they are near: two equal rows of different labels have S_ij = 1 and a BCE derivative of 1/eps_b ~ 1e12
    multiplying an exact 0.  So far pairs go to W = -M (off the diagonal), h = sum of their M_ij, and near pairs,
    |x_i - x_j|^2 <= NEAR (|x_i|^2 + |x_j|^2) judged from G, are returned as the matrix ``near`` (0 elsewhere) for
    ``gaussian_near_pairs``, which forms their differences exactly.  The diagonal (i = j) contributes exactly 0
    and is dropped.  Fills W and h (h starts at 0)."""
    n = Q.shape[0]
    two = Q.dtype.type(2.0)
    lim = Q.dtype.type(NEAR)
    near = np.zeros_like(Q)
    for i in range(n):
        acc = Q.dtype.type(0.0)
        for j in range(n):
            if j == i:
                W[i, j] = 0.0
                continue
            m = two * (Q[i, j] + Q[j, i])
            sq = G[i, i] + G[j, j]
            if (sq - two * G[i, j]) <= lim * sq:
                near[i, j] = m
                W[i, j] = 0.0
            else:
                W[i, j] = -m
                acc += m
        h[i] = acc
    return near


@njit(cache=True)
def gaussian_near_pairs(near, X, out):
    """out_i += sum_j near_ij (x_i - x_j) over the entries of ``near`` that are not 0 (see ``gaussian_pairs``)."""
    n, d = X.shape
    for i in range(n):
        for j in range(n):
            m = near[i, j]
            if m != 0:
                for k in range(d):
                    out[i, k] += m * (X[i, k] - X[j, k])


@njit(cache=True)
def _dot_lifted32(W, X, xbound):
    """``dot_lifted`` of a float32 ``W``."""
    if W.size == 0:
        return np.dot(W, X)
    lo_bits = min_abs_bits32(W)  # integer scans of the bit patterns: they vectorise (refnsm._bits32)
    hi_bits = max_abs_bits32(W)
    if lo_bits >= BITS_MIN_NORMAL32 or hi_bits >= BITS_INF32:  # no subnormal entry, or an Inf/NaN: no lift
        return np.dot(W, X)
    lo = abs_bits_value(lo_bits)  # the smallest non-zero |W| and the largest, exactly
    hi = abs_bits_value(hi_bits)
    if not xbound > 0.0:
        return np.dot(W, X)
    k = min(int(np.ceil(-126.0 - np.log2(lo))), int(np.floor(120.0 - np.log2(hi * W.shape[1] * xbound))), 126)
    if k <= 0:
        return np.dot(W, X)
    up = np.float32(2.0 ** k)
    down = np.float32(2.0 ** -k)
    Wk = np.empty_like(W)
    wk, w = Wk.ravel(), W.ravel()
    for i in range(w.size):
        wk[i] = w[i] * up
    out = np.dot(Wk, X)
    o = out.ravel()
    for i in range(o.size):
        o[i] = o[i] * down
    return out


@float32_variant(_dot_lifted32)
@njit(cache=True)
def dot_lifted(W, X, xbound):
    r"""``W @ X`` (BLAS), with a float32 ``W`` that holds subnormal entries first multiplied by an exact power of two.

    The saturated sigmoid's derivative :math:`S(1-S)` is formed from :math:`\sigma(-pG)` (not flushed to 0, see
    ``_kernel_coupling``), so the pull-back matrix ``W`` of a saturated batch holds float32 subnormals, and SGEMM on
    subnormal operands takes a microcode assist per product: 78 ms instead of 7 ms at N = 512, D = 4096.  Scaling
    by :math:`2^k` is exact (a subnormal times :math:`2^k` is a normal number with the same digits) and rounding is
    invariant under it, so the product of the scaled matrix is the same computation without subnormal arithmetic;
    the result is scaled back by :math:`2^{-k}` (one multiplication, exact unless the entry is itself subnormal:
    then it is rounded a second time, within one unit of float32's smallest subnormal, 1.4e-45, of the exact
    product of the stored entries; the direct product rounds each subnormal term instead).  ``k`` lifts the
    smallest non-zero entry to the normal range, but never so far that :math:`2^k \max|W| \cdot n \cdot`
    ``xbound`` could leave it (``xbound`` >= max|X|, e.g. the largest row norm
    of ``X``).  A ``W`` holding Inf or NaN is passed through (its product is not finite either way, and the caller's
    result check refuses it), and so is float64 (subnormals below 1e-308): this function is the plain product, and a
    float32 ``W`` compiles ``_dot_lifted32`` in its place (``refnsm._specialise``).
    """
    return np.dot(W, X)


@njit(cache=True, inline="always")
def _largest_norm(r):
    """max of the row norms ``r`` (>= 0, never NaN; 0.0 when empty), as a float: a plain loop, where ``r.max()``
    would compile NumPy's NaN-aware maximum into every signature (0.2 s of a first call with an empty cache)."""
    m = 0.0
    for i in range(r.size):
        m = max(m, float(r[i]))
    return m


@njit(cache=True, inline="always")
def _pull_back(W, X, r, h, all_rows):
    """The last step of both similarity VJPs: ``dX = W X + diag(h) X`` (``dot_lifted``, ``r`` the row norms
    bounding ``|X|``), the ``h_i x_i`` term added to every row (``all_rows``, the gaussian's) or where
    ``h_i != 0``."""
    n = X.shape[0]
    out = dot_lifted(W, X, _largest_norm(r))
    for i in range(n):
        if all_rows or h[i] != 0:
            for k in range(X.shape[1]):
                out[i, k] += h[i] * X[i, k]
    return out


@njit(cache=True)
def similarity_vjp(A, X, S, G, r, kind, p, eps):
    """dL/dX for S = similarity(X) and A = dL/dS (both kernel arguments are X, so the two paths add).

    G = X X^T and S, r from ``similarity_forward`` (passed in so the forward is not recomputed).

    Written as dX = W X + diag(h) X with
      linear:     W = B + B^T,  B = A / P,  h_i = ((C + C^T) r)_i / r_i  (0 where r_i = 0),  C = -A G / P^2
      poly/sigm.: W = B + B^T,  h = 0
      gaussian:   dX_i = sum_j M_ij (x_i - x_j),  M = 2 (Q + Q^T), in two parts (``gaussian_pairs``): the pairs of
                  near rows in that difference form, the others as W = -M, h = M 1 through BLAS
    """
    n = X.shape[0]
    W = np.empty_like(A)
    h = np.zeros(n, dtype=X.dtype)
    if kind == LINEAR:
        e = X.dtype.type(eps)
        B = np.empty_like(A)
        C = np.empty_like(A)
        for i in range(n):
            for j in range(n):
                P = r[i] * r[j] + e
                B[i, j] = A[i, j] / P
                C[i, j] = -(A[i, j] * (G[i, j] / P)) / P  # not / (P * P): P * P overflows for huge spikes
        for i in range(n):
            acc = X.dtype.type(0.0)
            for j in range(n):
                W[i, j] = B[i, j] + B[j, i]
                acc += (C[i, j] + C[j, i]) * r[j]
            h[i] = acc / r[i] if r[i] != 0 else X.dtype.type(0.0)
    else:
        B = _kernel_coupling(A, S, G, kind, p)
        if kind == GAUSSIAN:
            near = gaussian_pairs(B, G, W, h)
            out = _pull_back(W, X, r, h, True)
            gaussian_near_pairs(near, X, out)
            return out
        else:
            for i in range(n):
                for j in range(n):
                    W[i, j] = B[i, j] + B[j, i]
    return _pull_back(W, X, r, h, False)


@njit(cache=True)
def _add(acc, comp, x):
    """Neumaier's compensated sum: (acc, comp) after adding x; the total is acc + comp."""
    t = acc + x
    if abs(acc) >= abs(x):
        comp += (acc - t) + x
    else:
        comp += (x - t) + acc
    return t, comp


@njit(cache=True)
def pairwise_loss(S, Y, loss, bce_eps):
    """mean over all N^2 entries of the elementwise loss between S and the target Y (float64, compensated sum:
    within an ulp or so of the terms' scale whatever N)."""
    n, m = S.shape
    acc, comp = 0.0, 0.0
    one = S.dtype.type(1.0)
    floor = S.dtype.type(-100.0)
    for i in range(n):
        for j in range(m):
            s = S[i, j]
            t = Y[i, j]
            if loss == MSE:
                d = s - t
                term = float(d * d)
            elif loss == L1:
                term = float(abs(s - t))
            else:  # torch's BCE: -(t max(log s, -100) + (1 - t) max(log1p(-s), -100))
                # for a 0/1 target one term is multiplied by exactly 0 (and is finite, s being in [0, 1]): skip its log
                if t == 0:
                    term = -float(max(np.log1p(-s), floor))
                elif t == one:
                    term = -float(max(np.log(s), floor))
                else:
                    term = float((t - one) * max(np.log1p(-s), floor) - t * max(np.log(s), floor))
            acc, comp = _add(acc, comp, term)
    return (acc + comp) / (n * m)


@njit(cache=True)
def pairwise_loss_grad(S, Y, loss, g, bce_eps):
    """A = dL/dS = g * (elementwise derivative) / N^2, with torch's conventions (sign(0) = 0, BCE's epsilon)."""
    n, m = S.shape
    A = np.empty_like(S)
    scale = S.dtype.type(g / (n * m))
    two = S.dtype.type(2.0)
    one = S.dtype.type(1.0)
    e = S.dtype.type(bce_eps)
    for i in range(n):
        for j in range(m):
            d = S[i, j] - Y[i, j]
            if loss == MSE:
                A[i, j] = two * d * scale
            elif loss == L1:
                A[i, j] = (one if d > 0 else (-one if d < 0 else S.dtype.type(0.0))) * scale
            else:
                s = S[i, j]
                A[i, j] = d / max(s * (one - s), e) * scale
    return A


@njit(cache=True)
def similarity_complement(X, G, kind, p):
    """C = 1 - S without the cancellation of 1 - S, for the sigmoid (sigma(-p G)) and gaussian (-expm1(-d / 2 sigma^2),
    d formed as in ``similarity_forward``) kernels, whose S can lie within far less than an ulp of 1 (a saturated
    sigmoid rounds to exactly 1).  The losses use it for S - 1 (mse, l1 where Y = 1), log(1 - S) and S (1 - S)
    (bce); see ``pairwise_loss_exact``."""
    n = X.shape[0]
    C = np.empty((n, n), dtype=X.dtype)
    pp = X.dtype.type(p)
    if kind == SIGMOID:
        for i in range(n):
            for j in range(n):
                C[i, j] = _logistic(pp * G[i, j], X.dtype.type)
        return C
    x2 = row_sqnorms(X)
    two = X.dtype.type(2.0)
    lim = X.dtype.type(NEAR)
    c = X.dtype.type(2.0 * p * p)
    for i in range(n):
        for j in range(n):
            if j == i:
                C[i, j] = 0.0
                continue
            sq = G[i, i] + G[j, j]
            if (sq - two * G[i, j]) <= lim * sq:
                d = X.dtype.type(0.0)
                for k in range(X.shape[1]):
                    t = X[i, k] - X[j, k]
                    d += t * t
            else:
                d = (x2[i] + x2[j]) - two * G[i, j]
            C[i, j] = -np.expm1(-d / c)
    return C


@njit(cache=True)
def pairwise_loss_exact(S, C, Y, loss, bce_eps):
    """``pairwise_loss`` with C = 1 - S given (``similarity_complement``): S - Y is -C where Y = 1, log(1 - S) is
    log(C) and log(S) is log1p(-C), so an S that rounds to 1 keeps its distance to 1."""
    n, m = S.shape
    acc, comp = 0.0, 0.0
    one = S.dtype.type(1.0)
    floor = S.dtype.type(-100.0)
    for i in range(n):
        for j in range(m):
            s = S[i, j]
            t = Y[i, j]
            d = -C[i, j] if t == one else s - t
            if loss == MSE:
                term = float(d * d)
            elif loss == L1:
                term = float(abs(d))
            else:
                lc = max(np.log(C[i, j]), floor) if C[i, j] > 0 else floor
                if t == 0:
                    term = -float(lc)
                else:  # log S: from S itself where it is small, from C where S is near 1
                    ls = max(np.log(s) if s < 0.5 else np.log1p(-C[i, j]), floor)
                    term = -float(ls) if t == one else -float(t * ls - (t - one) * lc)
            acc, comp = _add(acc, comp, term)
    return (acc + comp) / (n * m)


@njit(cache=True)
def pairwise_loss_grad_exact(S, C, Y, loss, g, bce_eps):
    """``pairwise_loss_grad`` with C = 1 - S given: S - Y is -C where Y = 1, S (1 - S) is S C."""
    n, m = S.shape
    A = np.empty_like(S)
    scale = S.dtype.type(g / (n * m))
    two = S.dtype.type(2.0)
    one = S.dtype.type(1.0)
    e = S.dtype.type(bce_eps)
    for i in range(n):
        for j in range(m):
            t = Y[i, j]
            d = -C[i, j] if t == one else S[i, j] - t
            if loss == MSE:
                A[i, j] = two * d * scale
            elif loss == L1:
                A[i, j] = (one if d > 0 else (-one if d < 0 else S.dtype.type(0.0))) * scale
            else:
                A[i, j] = d / max(S[i, j] * C[i, j], e) * scale
    return A


@njit(cache=True)
def label_matrix(L, dtype_like):
    """Y = min(L L^T, 1) formed in L's dtype, returned in dtype_like's dtype.

    Y_ij = sum_k L_ik L_jk in increasing k, row i at a time: for each k with L_ik != 0 the terms L_ik L_jk are
    added to the accumulators of every j >= i.  A zero L_ik contributes a signed zero, which leaves a sum that
    starts at +0 unchanged, so skipping it gives the same bits as the plain triple loop (L is finite: validated)
    while a one-hot row costs one pass over j instead of C."""
    n, c = L.shape
    Y = np.empty((n, n), dtype=dtype_like.dtype)
    one = L.dtype.type(1.0)
    acc = np.empty(n, dtype=L.dtype)
    for i in range(n):
        for j in range(i, n):
            acc[j] = 0.0
        for k in range(c):
            a = L[i, k]
            if a != 0:
                for j in range(i, n):
                    acc[j] += a * L[j, k]
        for j in range(i, n):
            v = acc[j] if acc[j] < one else one
            Y[i, j] = v
            Y[j, i] = v
    return Y


@njit(cache=True)
def in_unit_interval(M):
    for v in M.ravel():
        if not (v >= 0 and v <= 1):
            return False
    return True


@njit(cache=True)
def mirror_upper(M):
    """Copy the upper triangle of the square M onto its lower one, in place (M exactly symmetric afterwards)."""
    n = M.shape[0]
    for i in range(n):
        for j in range(i + 1, n):
            M[j, i] = M[i, j]


@njit(cache=True)
def symmetric_similarity(X, G, kind, p, eps, exact_diagonal, want_complement):
    """``similarity_forward`` and ``similarity_complement`` in one pass over the upper triangle, for an exactly
    symmetric G (the loss's path): (S, C, r), C = 1 - S from the kernel's formula (an empty matrix unless
    ``want_complement``, which only the sigmoid and gaussian kernels use).

    Every entry is the same expression as in those two functions (so S and C are bit for bit theirs on a
    symmetric G); the lower triangle is the mirror of the upper, which halves the exponentials.  The gaussian's
    squared distance is formed once and shared by S = exp(-d / 2 sigma^2) and C = -expm1(-d / 2 sigma^2)."""
    n, D = X.shape
    dt = X.dtype.type
    one = dt(1.0)
    two = dt(2.0)
    pp = dt(p)
    S = np.empty((n, n), dtype=X.dtype)
    C = np.empty((n, n) if want_complement else (0, 0), dtype=X.dtype)
    x2 = row_sqnorms(X)
    r = np.sqrt(x2)
    if kind == LINEAR:
        e = dt(eps)
        for i in range(n):
            for j in range(i, n):
                S[i, j] = fdiv(G[i, j], r[i] * r[j] + e)  # the divisor is at least e > 0
            if exact_diagonal:
                S[i, i] = (r[i] * r[i]) / (r[i] * r[i] + e)
    elif kind == POLYNOMIAL:
        for i in range(n):
            for j in range(i, n):
                S[i, j] = G[i, j] ** pp
    elif kind == SIGMOID:
        # the exponentials of the upper triangle's -pG (and pG for C) in one flat loop, which vectorises (rows of
        # the triangle are too short for it), then S = 1 / (1 + e^{-pG}) and C = 1 / (1 + e^{pG}) in the dtype
        m = n * (n + 1) // 2
        buf = np.empty(2 * m if want_complement else m)
        k = 0
        for i in range(n):
            for j in range(i, n):
                buf[k] = float(-(pp * G[i, j]))
                k += 1
        if want_complement:
            for q in range(m):
                buf[m + q] = -buf[q]  # float(pp G) exactly
        for q in range(buf.size):
            buf[q] = vexp(buf[q])
        k = 0
        for i in range(n):
            for j in range(i, n):
                S[i, j] = _one_over_one_plus(buf[k], dt)
                if want_complement:
                    C[i, j] = _one_over_one_plus(buf[m + k], dt)
                k += 1
    else:
        c = dt(2.0 * p * p)
        lim = dt(NEAR)
        for i in range(n):
            for j in range(i, n):
                far = (x2[i] + x2[j]) - two * G[i, j]
                if exact_diagonal and j == i:
                    S[i, j] = one
                    if want_complement:
                        C[i, j] = 0.0
                    continue
                d = far
                sq = G[i, i] + G[j, j]
                if exact_diagonal and (sq - two * G[i, j]) <= lim * sq:
                    d = dt(0.0)
                    for k in range(D):
                        t = X[i, k] - X[j, k]
                        d += t * t
                    S[i, j] = np.exp(-d / c)
                else:
                    S[i, j] = np.exp(-far / c)
                if want_complement:
                    C[i, j] = -np.expm1(-d / c)
    mirror_upper(S)
    if want_complement:
        mirror_upper(C)
    return S, C, r


@njit(cache=True)
def symmetric_loss_and_grad(S, C, Y, loss, g, bce_eps, exact, want_grad):
    """(mean loss, A = dL/dS) for symmetric S, C, Y in one pass over the upper triangle: each entry's term and
    derivative are ``pairwise_loss(_exact)`` and ``pairwise_loss_grad(_exact)``'s expressions; an off-diagonal
    term enters the compensated sum once, doubled (exact), so the logarithms are taken half as often."""
    n = S.shape[0]
    dt = S.dtype.type
    one = dt(1.0)
    two = dt(2.0)
    floor = dt(-100.0)
    scale = dt(g / (n * n))
    e = dt(bce_eps)
    A = np.empty((n, n) if want_grad else (0, 0), dtype=S.dtype)
    acc, comp = 0.0, 0.0
    for i in range(n):
        for j in range(i, n):
            s = S[i, j]
            t = Y[i, j]
            if exact:
                cc = C[i, j]
                d = -cc if t == one else s - t
                if loss == MSE:
                    term = float(d * d)
                elif loss == L1:
                    term = float(abs(d))
                else:
                    lc = max(np.log(cc), floor) if cc > 0 else floor
                    if t == 0:
                        term = -float(lc)
                    else:
                        ls = max(np.log(s) if s < 0.5 else np.log1p(-cc), floor)
                        term = -float(ls) if t == one else -float(t * ls - (t - one) * lc)
            else:
                d = s - t
                if loss == MSE:
                    term = float(d * d)
                elif loss == L1:
                    term = float(abs(d))
                elif t == 0:
                    term = -float(max(np.log1p(-s), floor))
                elif t == one:
                    term = -float(max(np.log(s), floor))
                else:
                    term = float((t - one) * max(np.log1p(-s), floor) - t * max(np.log(s), floor))
            acc, comp = _add(acc, comp, term if j == i else 2.0 * term)
            if want_grad:
                if loss == MSE:
                    a = two * d * scale
                elif loss == L1:
                    a = (one if d > 0 else (-one if d < 0 else dt(0.0))) * scale
                elif exact:
                    a = d / max(s * C[i, j], e) * scale
                else:
                    a = d / max(s * (one - s), e) * scale
                A[i, j] = a
                A[j, i] = a
    return (acc + comp) / (n * n), A


@njit(cache=True)
def symmetric_similarity_vjp(A, X, S, C, G, r, kind, p, eps):
    """``similarity_vjp`` for a symmetric A, S, G (the loss's path), with C = 1 - S for the sigmoid when given
    (non-empty): the couplings are formed on the upper triangle and mirrored (the same expressions, so the same
    bits as ``similarity_vjp``), which halves the divisions (linear) and the exponentials (sigmoid)."""
    n = X.shape[0]
    dt = X.dtype.type
    pp = dt(p)
    W = np.empty_like(A)
    h = np.zeros(n, dtype=X.dtype)
    if kind == LINEAR:
        e = dt(eps)
        Cm = np.empty_like(A)
        for i in range(n):
            for j in range(i, n):
                P = r[i] * r[j] + e
                b = A[i, j] / P
                W[i, j] = b + b
                W[j, i] = b + b
                c = -(A[i, j] * (G[i, j] / P)) / P
                Cm[i, j] = c
                Cm[j, i] = c
        for i in range(n):
            acc = dt(0.0)
            for j in range(n):
                acc += (Cm[i, j] + Cm[i, j]) * r[j]
            h[i] = acc / r[i] if r[i] != 0 else dt(0.0)
    else:
        B = np.empty_like(A)
        for i in range(n):
            for j in range(i, n):
                if kind == POLYNOMIAL:
                    if p == 0.0:
                        b = dt(0.0)
                    else:
                        b = A[i, j] * (pp * G[i, j] ** dt(p - 1.0))
                elif kind == SIGMOID:
                    cc = C[i, j] if C.shape[0] == n else _logistic(pp * G[i, j], dt)
                    b = pp * (A[i, j] * (S[i, j] * cc))
                else:
                    b = -((A[i, j] * S[i, j]) / dt(2.0 * p * p))
                B[i, j] = b
                B[j, i] = b
        if kind == GAUSSIAN:
            near = gaussian_pairs(B, G, W, h)
            out = _pull_back(W, X, r, h, True)
            gaussian_near_pairs(near, X, out)
            return out
        for i in range(n):
            for j in range(n):
                W[i, j] = B[i, j] + B[i, j]
    return _pull_back(W, X, r, h, False)


@njit(cache=True, inline="always")
def spike_similar_loss_fused(X, G, L, kind, p, eps, exact_diagonal, loss, g, bce_eps, want_grad):
    """The whole spike similarity loss in one call: (status, value, dL/dX).

    status 0: computed; 1: bce with S outside [0, 1]; 2: bce with Y outside [0, 1] (the caller explains why).
    G = X X^T, or an empty array for small problems, where it is formed here (a BLAS call from inside the kernel
    costs less than one from Python) and made exactly symmetric from its upper triangle (the caller's syrk
    output already is).  S, Y and A = dL/dS are then symmetric, so each is formed on the upper triangle only
    (``symmetric_similarity``, ``symmetric_loss_and_grad``, ``symmetric_similarity_vjp``).

    On the CPU the public functions call it through ``spike_similar_loss_checked``, into which it is inlined (a
    compiled function that calls another compiled function links and emits the callee's machine code again: as a
    second compiled layer it added about 1 s to the first call with an empty cache).  The CUDA twin has this
    signature.
    """
    if G.shape[0] != X.shape[0]:
        G = np.dot(X, X.T)
        mirror_upper(G)
    exact = exact_diagonal and (kind == SIGMOID or kind == GAUSSIAN)
    S, C, r = symmetric_similarity(X, G, kind, p, eps, exact_diagonal, exact)
    Y = label_matrix(L, X)
    empty = np.zeros((0, 0), dtype=X.dtype)
    if loss == BCE:
        if not in_unit_interval(S):
            return 1, np.nan, empty
        if not in_unit_interval(Y):
            return 2, np.nan, empty
    value, A = symmetric_loss_and_grad(S, C, Y, loss, g, bce_eps, exact, want_grad)
    if not want_grad:
        return 0, value, empty
    return 0, value, symmetric_similarity_vjp(A, X, S, C, G, r, kind, p, eps)


@njit(cache=True)
def spike_similar_loss_checked(X, G, L, kind, p, eps, exact_diagonal, loss, g, bce_eps, want_grad, cosine_limit):
    """``spike_similar_loss_fused`` behind the checks of the inputs' values: the CPU entry point of the loss.
    Returns (status, value, dL/dX, verified).

    status -1, and nothing computed, when ``X`` or ``L`` holds NaN or Inf, or when the linear kernel's ``X`` has an
    entry above ``cosine_limit`` (its Gram matrix could overflow: the caller rescales first); the caller then runs
    the full validation, which raises the error that names the problem or rescales (and calls this again with
    ``cosine_limit = inf``).  Otherwise the fused kernel's status (0, or 1 / 2 for a bce input outside [0, 1]).
    ``verified``: status 0 and every gradient entry finite (when ``want_grad``), tested here so that the caller's
    result check only has the value left to test.  One compiled call instead of five (the finiteness passes of X
    and L, the cosine's max |X|, the loss, the result's finiteness) for what a training loop passes; the fused
    kernel is inlined here (``inline="always"``), so this entry point compiles once, not as a second layer over
    it."""
    if not all_finite(X.ravel()) or not all_finite(L.ravel()):
        return -1, np.nan, np.zeros((0, 0), dtype=X.dtype), False
    if kind == LINEAR and max_abs(X) > cosine_limit:
        return -1, np.nan, np.zeros((0, 0), dtype=X.dtype), False
    status, value, grad = spike_similar_loss_fused(X, G, L, kind, p, eps, exact_diagonal, loss, g, bce_eps, want_grad)
    verified = status == 0 and (not want_grad or all_finite(grad.ravel()))
    return status, value, grad, verified


@njit(cache=True)
def check_targets(target, n_classes, ignore_index):
    """(number of valid targets, flat index of the first target outside [0, C) and != ignore_index, or -1)."""
    flat = target.ravel()
    valid = 0
    for k in range(flat.size):
        t = flat[k]
        if t == ignore_index:
            continue
        if t < 0 or t >= n_classes:
            return valid, k
        valid += 1
    return valid, -1


@njit(cache=True)
def _ce_steps_flat(x, target, ignore_index, scale, want_grad, grad):
    """The sum over (t, n) of the cross-entropies of ``cross_entropy_steps`` when S = 1 ([T, N, C, 1], the usual
    layout), writing ``grad`` (when ``want_grad``): the same arithmetic as its general loop, in unit-stride loops.
    Per time step: every row's maximum (a select, not a branch: with random logits the branch mispredicts, 1 µs
    at 8 x 32 x 10), the shifted logits in one flat buffer and their exponentials in one loop that vectorises, every
    row's sum in class order with the rows side by side (independent chains instead of one long one), their
    logarithms in one loop (``refnsm._vlog.log``, within 1 ulp: it vectorises), then the gradient (the divisions
    vectorise) and the log-sum-exp."""
    T, N, C = x.shape[0], x.shape[1], x.shape[2]
    NC = N * C
    M = np.empty(N)
    SE = np.empty(N)
    LSE = np.empty(N)
    e = np.empty(NC)
    xf = np.ascontiguousarray(x).ravel()  # x is C-contiguous from the public layer: a view
    gf = grad.ravel()  # a view (grad is new and C-contiguous)
    total = 0.0
    for t in range(T):
        x0 = t * NC
        for n in range(N):
            m = -np.inf
            for c in range(C):
                v = float(xf[x0 + n * C + c])
                m = v if v > m else m
            M[n] = m
        for n in range(N):
            m = M[n]
            for c in range(C):
                e[n * C + c] = float(xf[x0 + n * C + c]) - m
        for i in range(NC):
            e[i] = vexp(e[i])
        for n in range(N):
            SE[n] = 0.0
        for c in range(C):
            for n in range(N):
                SE[n] += e[n * C + c]
        for n in range(N):
            LSE[n] = vlog(SE[n])  # a loop of its own: it vectorises
        for n in range(N):
            tg = target[n, 0]
            b = n * C
            if tg == ignore_index:
                if want_grad:
                    for c in range(C):
                        gf[x0 + b + c] = 0.0
                continue
            se = SE[n]
            if want_grad:
                for c in range(C):
                    # the exponential rounded to x's dtype, then normalised (float32 gradients as torch rounds them)
                    pc = float(x.dtype.type(e[b + c])) / se - (1.0 if c == tg else 0.0)
                    gf[x0 + b + c] = pc * scale
            total += (M[n] + LSE[n]) - float(xf[x0 + b + tg])
    return total


@njit(cache=True)
def cross_entropy_steps(x, target, ignore_index, g, want_grad):
    """Mean cross-entropy over every (t, n, s) with target[n, s] != ignore_index, and its gradient.

    x is [T, N, C, S] (S = product of the spatial dims, 1 when there are none), target is [N, S] with valid entries
    (see ``check_targets``).  Returns (loss, grad, count) with grad = g * (softmax - onehot) / count at valid
    positions, 0 elsewhere.  Per time step: the max of every position, then every shifted logit of the step in one
    flat float64 buffer and its exponentials in one loop (``refnsm._vexp.exp``, within 1 ulp; a loop with no
    reduction, so it vectorises), then per position the sum in class order, the log-sum-exp (its logarithm by
    ``refnsm._vlog.log``, within 1 ulp) and the gradient.
    Each exponential is computed once.  Single-threaded: a ``parallel=True`` kernel would run on Numba's threading
    layer, and under its OpenMP layer (the default where libgomp is present) a process that forks afterwards
    (multiprocessing, data-loader workers) has its children terminated by the GNU OpenMP runtime.
    """
    T, N, C, S = x.shape
    valid = 0
    for n in range(N):
        for s in range(S):
            if target[n, s] != ignore_index:
                valid += 1
    count = valid * T
    # every entry of grad is written below (zeros at ignored positions): no zero fill first
    grad = np.empty_like(x) if want_grad else np.zeros((0, 0, 0, 0), dtype=x.dtype)
    if count == 0:
        grad[...] = 0
        return np.nan, grad, 0
    scale = g / count
    if S == 1:  # the usual layout
        return _ce_steps_flat(x, target, ignore_index, scale, want_grad, grad) / count, grad, count
    total = 0.0
    M = np.empty((N, S))
    E = np.empty((N, C, S))
    e = E.ravel()
    NCS = N * C * S
    for t in range(T):
        for n in range(N):
            for s in range(S):
                M[n, s] = -np.inf
            for c in range(C):
                for s in range(S):
                    v = float(x[t, n, c, s])
                    if v > M[n, s]:
                        M[n, s] = v
            for c in range(C):
                for s in range(S):
                    E[n, c, s] = float(x[t, n, c, s]) - M[n, s]
        for i in range(NCS):
            e[i] = vexp(e[i])
        for n in range(N):
            for s in range(S):
                tg = target[n, s]
                if tg == ignore_index:
                    if want_grad:
                        for c in range(C):
                            grad[t, n, c, s] = 0.0
                    continue
                se = 0.0
                for c in range(C):
                    se += E[n, c, s]
                if want_grad:
                    for c in range(C):
                        # the exponential rounded to x's dtype, then normalised (as before: float32 grads unchanged)
                        pc = float(x.dtype.type(E[n, c, s])) / se
                        if c == tg:
                            pc -= 1.0
                        grad[t, n, c, s] = pc * scale
                total += (M[n, s] + vlog(se)) - float(x[t, n, tg, s])
    return total / count, grad, count


@njit(cache=True)
def cross_entropy_steps_checked(x, target, ignore_index, g, want_grad):
    """``cross_entropy_steps`` behind the checks of the inputs' values, for the CPU path of the public functions.

    Returns (loss, grad, count, ok).  ``ok`` is False, and nothing is computed, when a target is neither a class in
    [0, C) nor ``ignore_index``, when no position counts (no class, no time step or every target ignored) or when
    ``x`` holds NaN or Inf; the caller then runs the full validation, which raises the error that names the
    problem.  One compiled call instead of three (``check_targets``, the finiteness pass, the loss): the targets are
    checked before any of them is used as an index.  ``x`` and ``target`` are C-contiguous."""
    T, N, C, S = x.shape
    valid, bad = check_targets(target, C, ignore_index)
    if bad >= 0 or valid == 0 or T == 0 or not all_finite(x.ravel()):
        return np.nan, np.zeros((0, 0, 0, 0), dtype=x.dtype), 0, False
    loss, grad, count = cross_entropy_steps(x, target, ignore_index, g, want_grad)
    return loss, grad, count, True


@njit(cache=True)
def time_mean(x):
    """mean over the leading (time) axis, accumulated in the input dtype as torch's mean(0) does."""
    T = x.shape[0]
    out = np.zeros(x.shape[1:], dtype=x.dtype)
    flat = out.reshape(-1)
    xs = x.reshape(T, -1)
    for t in range(T):
        for k in range(flat.size):
            flat[k] += xs[t, k]
    inv = x.dtype.type(T)
    for k in range(flat.size):
        flat[k] = flat[k] / inv
    return out


@njit(cache=True)
def broadcast_time(grad_mean, T):
    """d/dx of mean_t x: the gradient of the mean divided by T, repeated over the T steps."""
    out = np.empty((T,) + grad_mean.shape, dtype=grad_mean.dtype)
    flat = grad_mean.reshape(-1)
    o = out.reshape(T, -1)
    inv = grad_mean.dtype.type(T)
    for t in range(T):
        for k in range(flat.size):
            o[t, k] = flat[k] / inv
    return out


@njit(cache=True)
def mse_to_constant(y, phi, g, want_grad):
    """mean((y - phi)^2) over every element, and g * 2 (y - phi) / numel."""
    flat = y.reshape(-1)
    n = flat.size
    acc = 0.0
    grad = np.empty_like(flat) if want_grad else np.empty(0, dtype=y.dtype)
    ph = y.dtype.type(phi)
    for k in range(n):
        d = flat[k] - ph
        acc += d * d
        if want_grad:
            grad[k] = 2.0 * d * g / n
    return acc / n, grad


@njit(cache=True)
def firing_rate_mse(spikes, labels, g, want_grad):
    """mean over [N, C] of (mean_t spikes - onehot(labels))^2 and its gradient w.r.t. spikes [T, N, C]."""
    T, N, C = spikes.shape
    fr = time_mean(spikes)
    acc = 0.0
    d = np.empty((N, C), dtype=spikes.dtype)
    for n in range(N):
        for c in range(C):
            target = 1.0 if labels[n] == c else 0.0
            d[n, c] = fr[n, c] - spikes.dtype.type(target)
            acc += float(d[n, c]) * float(d[n, c])
    grad = np.empty((0, 0, 0), dtype=spikes.dtype)
    if want_grad:
        grad = np.empty_like(spikes)
        scale = 2.0 * g / (N * C * T)
        for t in range(T):
            for n in range(N):
                for c in range(C):
                    grad[t, n, c] = d[n, c] * scale
    return acc / (N * C), grad
