r"""Numba kernels of the Hopfield family: the math only (no validation, no Python objects).

Every kernel writes into output arrays allocated by the caller (the public layer), so the iteration loops
allocate nothing.  Large products go through ``np.dot(a, b, out)`` (BLAS); the loops are for the row-wise
softmax and for the asynchronous (one unit at a time) updates of the binary baselines, which BLAS cannot
express.  All kernels compile lazily on their first call (``cache=True`` stores the machine code on disk).

Notation: ``X`` is a batch of probes, one per row (B, D); ``W`` is the memory matrix (D, H) whose column
:math:`j` is memory :math:`w_j`; ``S`` holds the max-shifted scores :math:`XW - \max_j (XW)_{bj}` (B, H).
"""

import numpy as np
from numba import njit

from refnsm._bits32 import BITS_INF32, BITS_MIN_NORMAL32, abs_bits_value, max_abs_bits32, min_abs_bits32
from refnsm._specialise import float32_variant
from refnsm._vexp import exp as vexp


@njit(cache=True)
def copy_finite(src, dst):
    """Copy the 2-D array ``src`` (any layout) into ``dst``; True when every element is finite.

    One pass for the two things ``HopfieldSynapse.inputs`` needs (a private copy and the NaN/Inf check).
    """
    B, D = src.shape
    ok = True
    for b in range(B):
        for i in range(D):
            v = src[b, i]
            if not np.isfinite(v):
                ok = False
            dst[b, i] = v
    return ok


@njit(cache=True, inline="always")
def _sum4(v, n):
    """``sum(v[:n])`` with four interleaved partial sums ``((s0 + s1) + (s2 + s3))``: the additions pipeline (one
    running sum is latency-bound); the order is fixed, so the result is too."""
    n4 = n - n % 4
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    for j in range(0, n4, 4):
        s0 += v[j]
        s1 += v[j + 1]
        s2 += v[j + 2]
        s3 += v[j + 3]
    for j in range(n4, n):
        s0 += v[j]
    return (s0 + s1) + (s2 + s3)


@njit(cache=True)
def softmax_rows(S, beta, A, rowmax, lse):
    """In place: shift each row of ``S`` by its max, ``A = softmax(beta * S)``.

    On return ``S`` holds the shifted scores, ``rowmax[b]`` the max that was removed and
    ``lse[b] = log sum_j exp(beta * S[b, j])`` (the log-partition of the shifted row, >= 0 when beta > 0).
    The exponentials are float64 whatever the array dtype (``refnsm._vexp.exp``, within 1 ulp, in a loop that
    vectorises), kept in a float64 row so that the sum (four interleaved partial sums, float64) and the
    normalisation use them unrounded.
    """
    B, H = S.shape
    E = np.empty(H)
    for b in range(B):
        m = S[b, 0]
        for j in range(1, H):
            if S[b, j] > m:
                m = S[b, j]
        rowmax[b] = m
        for j in range(H):
            S[b, j] = S[b, j] - m
        for j in range(H):
            E[j] = vexp(beta * S[b, j])
        tot = _sum4(E, H)
        for j in range(H):
            A[b, j] = E[j] / tot
        lse[b] = np.log(tot)


# float32 products of subnormal memories.  Weight decay drives unused float32 weights below float32's smallest
# normal, 2**-126 (the benchmark's small memory gets there after ~10**5 updates), and this CPU takes a microcode
# assist for every vector operation with a subnormal *input*: X W with D = 64, H = 128 went from 0.6 us to 37 us
# (subnormal outputs of normal inputs, and conversions to float64, cost nothing extra; measured, issue 17).
# ``_lift_exponent`` finds such a W and returns k > 0; the products are then formed as 2**-k (X (2**k W)):
#   * 2**k W is exact: each weight is converted to float64 (exact), multiplied by 2**k (exact: a power of two, in
#     float64's range) and converted back, a float32 normal number (k lifts the smallest non-zero |w| to 2**-126
#     or above whenever that is safe), so the conversion is exact too;
#   * every rounding inside BLAS is then relative to a normal number: the scaled product is the same computation as
#     the product with an unbounded exponent range, 2**k times larger; k is capped so that no partial sum can
#     overflow (2**k max|w| max(n max|x|, 1) <= 2**120);
#   * the result is scaled back in float64 and rounded once to float32.
# When W holds no subnormal (the usual case) k = 0 and the BLAS calls are the ones they always were: the same
# bits.  With subnormal weights the lifted product is more accurate than the direct one, which rounds every
# subnormal term to a multiple of 2**-149: its error is the usual relative bound plus one rounding of the result
# (tests/test_hopfield_subnormal.py checks both against the exact product).  float64 is passed through.
# The integer scans of the bit patterns (min_abs_bits32, max_abs_bits32) are in refnsm._bits32, shared with the
# spiking losses' lifted product.
_BITS_SQUARE_NORMAL32 = 0x20000000  # 2**-63: a float32 at or above it has a normal square


@njit(cache=True)
def _lift_exponent(W, lo, bound):
    """k >= 0 for the lifted products ``2**-k (X (2**k W))`` (see above); 0 when none is needed or possible.

    ``lo`` is ``min_abs_bits32(W)``; ``bound`` >= every |sum of terms| / max|w| (n max|x| for a product of length
    n).  Lifts as far as is safe (then products of the smallest weights with small |x| stay normal too).
    """
    if lo >= BITS_MIN_NORMAL32:
        return 0
    hi = max_abs_bits32(W)
    if hi >= BITS_INF32 or not bound < np.inf:
        return 0  # an inf or NaN weight: no scaling keeps it finite, the direct product says what it is
    room = int(np.floor(120.0 - np.log2(abs_bits_value(hi) * max(bound, 1.0))))
    return max(min(room, 250), 0)


@njit(cache=True)
def _lift(W, k):
    """``2**k W`` as a new float32 array of W's shape (exact, see above)."""
    up = 2.0 ** k
    out = np.empty(W.shape, W.dtype)
    D, H = W.shape
    for i in range(D):
        for j in range(H):
            out[i, j] = np.float64(W[i, j]) * up
    return out


@njit(cache=True)
def _scale_down(Y, k):
    """In place: ``Y *= 2**-k``, in float64, one rounding to float32 per entry."""
    down = 2.0 ** -k
    B, n = Y.shape
    for b in range(B):
        for i in range(n):
            Y[b, i] = np.float64(Y[b, i]) * down


@njit(cache=True)
def _absmax(X):
    m = 0.0
    B, n = X.shape
    for b in range(B):
        for i in range(n):
            m = max(m, abs(np.float64(X[b, i])))
    return m


@njit(cache=True)
def _retrieval_lift32(X, W, lo):
    """``retrieval_lift`` of a float32 ``W``."""
    if lo >= BITS_MIN_NORMAL32:
        return 0
    # X W sums D terms |x| |w|; A W^T sums H terms a |w| with sum(a) = 1
    return _lift_exponent(W, lo, max(W.shape[0] * _absmax(X), 1.0))


@float32_variant(_retrieval_lift32, arg=1)
@njit(cache=True)
def retrieval_lift(X, W, lo):
    """The lift exponent k of ``retrieve_k`` for probes ``X`` and memories ``W`` (``lo = min_abs_bits32(W)``):
    ``_retrieval_lift32`` for a float32 ``W``, 0 (no lift) for any other dtype, whose signatures then compile none
    of the lift (``refnsm._specialise``)."""
    return 0


@njit(cache=True, inline="always")
def _retrieve_plain(X, W, beta, S, A, Xhat, rowmax, lse):
    """The retrieval step's plain BLAS products and softmax."""
    np.dot(X, W, S)
    softmax_rows(S, beta, A, rowmax, lse)
    np.dot(A, W.T, Xhat)


@njit(cache=True)
def _retrieve_k32(X, W, k, beta, S, A, Xhat, rowmax, lse):
    """``retrieve_k`` of a float32 ``W``: the products lifted by ``2**k`` when k > 0."""
    if k <= 0:
        _retrieve_plain(X, W, beta, S, A, Xhat, rowmax, lse)
        return
    Wk = _lift(W, k)
    np.dot(X, Wk, S)
    _scale_down(S, k)
    softmax_rows(S, beta, A, rowmax, lse)
    np.dot(A, Wk.T, Xhat)
    _scale_down(Xhat, k)


@float32_variant(_retrieve_k32, arg=1)
@njit(cache=True)
def retrieve_k(X, W, k, beta, S, A, Xhat, rowmax, lse):
    """``retrieve_into`` with the products lifted by ``2**k`` (k = 0: the plain BLAS products).  A float32 ``W``
    runs ``_retrieve_k32``; any other dtype has k = 0 (``retrieval_lift``) and compiles the plain products only."""
    _retrieve_plain(X, W, beta, S, A, Xhat, rowmax, lse)


@njit(cache=True)
def retrieve_into(X, W, beta, S, A, Xhat, rowmax, lse):
    """One retrieval step for a batch: ``S = XW - rowmax``, ``A = softmax(beta S)``, ``Xhat = A W^T``.

    A float32 ``W`` holding subnormal weights is multiplied in lifted form (``_lift_exponent``, above); the same
    bits otherwise.
    """
    k = retrieval_lift(X, W, min_abs_bits32(W))
    retrieve_k(X, W, k, beta, S, A, Xhat, rowmax, lse)


@njit(cache=True)
def iterate_into(X0, W, beta, tol, max_iter, X, S, A, Xhat, rowmax, lse):
    """Iterate ``x <- W softmax(beta W^T x)`` from ``X0`` until ``max |x_new - x| <= tol``.

    ``X`` receives the final state; ``S, A, Xhat, rowmax, lse`` are work buffers (allocated once by the caller;
    nothing is allocated inside the loop unless float32 memories hold subnormals, see ``retrieve_into``).  Returns ``(n_iter, last_change)``: the number of updates applied and
    the max-norm of the last update.
    """
    B, D = X0.shape
    for b in range(B):
        for i in range(D):
            X[b, i] = X0[b, i]
    change = np.inf
    it = 0
    lo = min_abs_bits32(W)
    while it < max_iter:
        # subnormal float32 memories: a lifted copy of W per iteration (the lift depends on max|x|)
        retrieve_k(X, W, retrieval_lift(X, W, lo), beta, S, A, Xhat, rowmax, lse)
        change = 0.0
        for b in range(B):
            for i in range(D):
                d = abs(Xhat[b, i] - X[b, i])
                if d > change:
                    change = d
                X[b, i] = Xhat[b, i]
        it += 1
        if change <= tol:
            break
    return it, change


# float32 squares without subnormal arithmetic.  A float32 weight that weight decay drove towards 1e-26 has a
# square below float32's smallest normal (2**-126): the float32 product then underflows to a subnormal or to 0,
# which CPUs handle slowly (and a scalar loop over them cannot vectorise around).  ``_sq32`` returns the same
# value, fl32(w * w) as a float64, from float64 arithmetic on normal numbers:
#   * p = float64(w)**2 is exact (24-bit significands: a 48-bit product) and normal in float64 (w >= 2**-149);
#   * p >= 2**-126: fl32(w*w) = float32(p), one correctly rounded conversion of a value in float32's normal range
#     (or its overflow to inf, as the float32 product overflows);
#   * p < 2**-126: fl32(w*w) is p rounded to the nearest multiple of 2**-149 (float32's subnormal spacing), ties
#     to even, computed as ((p 2**149 + 2**52) - 2**52) 2**-149: p 2**149 < 2**23, so adding 2**52 rounds it to
#     an integer, ties to even, and both scalings by powers of two are exact.  For |w| <= 2**-75 this gives 0,
#     as the float32 product does.
# Each branch's input is selected before its arithmetic (the other branch gets 0), so neither produces a float32
# subnormal; inf and NaN take the first branch unchanged.  tests/test_hopfield_subnormal.py checks the result
# bit for bit against the float32 product for every exponent.
_MIN_NORMAL32 = 2.0 ** -126
_SUB_SCALE32 = 2.0 ** 149
_SUB_QUANTUM32 = 2.0 ** -149
_RINT_SHIFT = 2.0 ** 52


@njit(cache=True, inline="always")
def _sq32(w):
    """fl32(w * w) as a float64, for a float32 ``w``, without float32 subnormal results (see above)."""
    x = np.float64(w)
    p = x * x
    small = p < _MIN_NORMAL32
    pn = 0.0 if small else p
    ps = p if small else 0.0
    return np.float64(np.float32(pn)) + ((ps * _SUB_SCALE32 + _RINT_SHIFT) - _RINT_SHIFT) * _SUB_QUANTUM32


@njit(cache=True)
def row_sq_norm_max(W, axis):
    """``max`` of the squared Euclidean norms of the rows (axis=1) or of the columns (axis=0) of ``W``.

    Returns ``(value, index)`` with the first index attaining the max.  Each square is rounded in the array dtype
    and accumulated in float64.
    """
    return row_sq_norm_max_lo(W, axis, min_abs_bits32(W))


@njit(cache=True)
def row_sq_norm_max_lo(W, axis, lo):
    """``row_sq_norm_max`` with ``lo = min_abs_bits32(W)`` already known.

    Column norms are accumulated row by row (independent accumulators, so the loop vectorises); row norms use four
    partial sums per row.  A float32 ``W`` whose smallest non-zero ``|w|`` is below 2**-63 has subnormal (or
    underflowing) squares, or subnormal weights, both slow on this CPU; its squares then come from ``_sq32`` (the
    same values from normal float64 arithmetic).  The sums and their order are the same in every case.
    """
    D, H = W.shape
    slow = W.itemsize == 4 and lo < _BITS_SQUARE_NORMAL32
    best = -1.0
    arg = 0
    if axis == 0:
        acc = np.zeros(H)
        if slow:
            for i in range(D):
                for j in range(H):
                    acc[j] += _sq32(W[i, j])
        else:
            for i in range(D):
                for j in range(H):
                    acc[j] += W[i, j] * W[i, j]
        for j in range(H):
            if acc[j] > best:
                best = acc[j]
                arg = j
    else:
        J4 = H - H % 4
        c = np.empty(H if slow else 0)
        for i in range(D):
            if slow:
                for j in range(H):  # the squares first, in a loop that vectorises
                    c[j] = _sq32(W[i, j])
                s = _sum4(c, H)
            else:  # the same four interleaved partial sums as _sum4, of the squares as they are formed
                s0 = 0.0
                s1 = 0.0
                s2 = 0.0
                s3 = 0.0
                for j in range(0, J4, 4):
                    s0 += W[i, j] * W[i, j]
                    s1 += W[i, j + 1] * W[i, j + 1]
                    s2 += W[i, j + 2] * W[i, j + 2]
                    s3 += W[i, j + 3] * W[i, j + 3]
                for j in range(J4, H):
                    s0 += W[i, j] * W[i, j]
                s = (s0 + s1) + (s2 + s3)
            if s > best:
                best = s
                arg = i
    return best, arg


@njit(cache=True)
def energy_rows(X, Xhat, rowmax, lse, beta, H, half_m2, variant, out):
    """Per-row energy from the quantities of a retrieval step.

    variant 0 (Ramsauer): ``-rowmax - lse/beta + x.x/2 + log(H)/beta + half_m2``;
    variant 1 (ngclearn): ``-lse/beta + x.xhat/2 + log(H)/beta + half_m2``.
    """
    B, D = X.shape
    c = np.log(H) / beta + half_m2
    for b in range(B):
        q = 0.0
        if variant == 0:
            for i in range(D):
                q += X[b, i] * X[b, i]
            out[b] = -rowmax[b] - lse[b] / beta + 0.5 * q + c
        else:
            for i in range(D):
                q += X[b, i] * Xhat[b, i]
            out[b] = -lse[b] / beta + 0.5 * q + c


@njit(cache=True)
def delta_into(X, Xhat, A, E, dW):
    """Delta rule ``dW = (X - Xhat)^T A / B``; ``E`` (B, D) is a work buffer holding ``(X - Xhat) / B``.

    For B = 1 the product is an outer product, each entry a single multiplication, written here directly: the
    same values as the BLAS call, without its overhead (which dominates at ngclearn's usual one-probe size).
    """
    B, D = X.shape
    inv = 1.0 / B
    for b in range(B):
        for i in range(D):
            E[b, i] = (X[b, i] - Xhat[b, i]) * inv
    if B == 1:
        H = A.shape[1]
        for i in range(D):
            e = E[0, i]
            for j in range(H):
                dW[i, j] = e * A[0, j]
    else:
        np.dot(E.T, A, dW)


@njit(cache=True)
def contrastive_into(X, Xhat, A, W, neg_beta, Shat, Ahat, rowmax, lse, T, dW):
    """Contrastive rule ``dW = (X^T A - Xhat^T Ahat) / B`` with ``Ahat = softmax(neg_beta Xhat W)``.

    ``Shat, Ahat`` (B, H), ``rowmax, lse`` (B,) and ``T`` (D, H) are work buffers.  For B = 1 both products are
    outer products: each entry is formed as the two single products (rounded in the array dtype, as BLAS rounds
    them) and their difference, in one pass, without the BLAS calls and without touching ``T``.
    """
    B = X.shape[0]
    np.dot(Xhat, W, Shat)
    softmax_rows(Shat, neg_beta, Ahat, rowmax, lse)
    inv = 1.0 / B
    D, H = dW.shape
    if B == 1:  # (p - q) * inv with inv = 1 is p - q exactly: the multiplication is left out
        for i in range(D):
            x = X[0, i]
            xh = Xhat[0, i]
            for j in range(H):
                p = x * A[0, j]
                q = xh * Ahat[0, j]
                dW[i, j] = p - q
        return
    np.dot(X.T, A, dW)
    np.dot(Xhat.T, Ahat, T)
    for i in range(D):
        for j in range(H):
            dW[i, j] = (dW[i, j] - T[i, j]) * inv


@njit(cache=True)
def evolve_into(W, dW, eta, reg_lambda, l1_lambda, mask, use_mask, out):
    """``out = W + eta dW - reg_lambda W - l1_lambda sign(W)``, then ``out *= mask`` when ``use_mask``.

    The operations are applied in this order (ngclearn's), so results match it bit for bit; when ``l1_lambda`` is
    0 the sign term (exactly 0) is skipped, which leaves every result unchanged.
    """
    D, H = W.shape
    for i in range(D):
        if l1_lambda != 0.0:
            for j in range(H):
                w = W[i, j]
                sg = 0.0
                if w > 0:
                    sg = 1.0
                elif w < 0:
                    sg = -1.0
                out[i, j] = w + eta * dW[i, j] - reg_lambda * w - l1_lambda * sg
        else:
            for j in range(H):
                w = W[i, j]
                out[i, j] = w + eta * dW[i, j] - reg_lambda * w
        if use_mask:
            for j in range(H):
                out[i, j] = out[i, j] * mask[i, j]


# --------------------------------------------------------------------------------------------------------
# binary baselines
# --------------------------------------------------------------------------------------------------------


@njit(cache=True)
def _field_sign(W, out, b, i, th, partials):
    """The field ``W[i] . out[b] - th`` where its sign is certain, else its exact sign (+-1.0 or 0.0).

    The terms ``W[i, j] * (+-1)`` and ``-th`` are exact, so the recursive sum errs by at most ``N eps`` times the sum
    of their absolute values; within that bound of 0 (a tie such as Hebbian weights fl(k/N) summing to exactly 0,
    which the float sum rounds to +-1e-16) the terms are summed exactly into non-overlapping partials (Shewchuk's
    expansion, as ``math.fsum``), whose largest non-zero one has the sign of the exact sum."""
    N = W.shape[1]
    h = -th
    a = abs(th)
    for j in range(N):
        h += W[i, j] * out[b, j]
        a += abs(W[i, j])
    if abs(h) > 2.0 * (N + 1) * 2.220446049250313e-16 * a:
        return h
    k = 0
    for j in range(N + 1):
        x = -th if j == N else W[i, j] * out[b, j]
        m = 0
        for q in range(k):
            y = partials[q]
            if abs(x) < abs(y):
                x, y = y, x
            hi = x + y
            lo = y - (hi - x)
            if lo != 0.0:
                partials[m] = lo
                m += 1
            x = hi
        partials[m] = x
        k = m + 1
    for q in range(k - 1, -1, -1):
        if partials[q] != 0.0:
            return 1.0 if partials[q] > 0.0 else -1.0
    return 0.0


@njit(cache=True)
def classical_async(S, W, theta, orders, out, sweeps_done):
    """Asynchronous updates of the classical Hopfield net, one row of ``S`` at a time.

    For each sweep ``k`` the units are visited in the order ``orders[k]``; unit ``i`` becomes
    ``sign(W[i] . s - theta[i])`` (unchanged when the field is exactly 0, decided exactly: ``_field_sign``).  Stops
    after a sweep with no change.
    """
    B, N = S.shape
    n_sweeps = orders.shape[0]
    partials = np.empty(N + 1, dtype=np.float64)
    for b in range(B):
        for i in range(N):
            out[b, i] = S[b, i]
        done = 0
        for k in range(n_sweeps):
            changed = False
            for t in range(N):
                i = orders[k, t]
                h = _field_sign(W, out, b, i, theta[i], partials)
                if h > 0.0:
                    new = 1.0
                elif h < 0.0:
                    new = -1.0
                else:
                    new = out[b, i]
                if new != out[b, i]:
                    out[b, i] = new
                    changed = True
            done += 1
            if not changed:
                break
        sweeps_done[b] = done


@njit(cache=True)
def _interaction(x, kind, n):
    if kind == 0:  # polynomial x**n
        return x ** n
    if kind == 1:  # rectified polynomial
        return x ** n if x > 0.0 else 0.0
    return np.exp(x)  # kind == 2, exponential (the caller shifts the argument)


@njit(cache=True)
def dense_async(S, Xi, kind, n, orders, m, out, sweeps_done):
    r"""Asynchronous updates of the dense associative memory (Krotov & Hopfield 2016).

    ``Xi`` is (N, K), column mu is pattern xi^mu.  Unit i becomes the sign of
    :math:`\sum_\mu F(\xi^\mu_i + r_\mu) - F(-\xi^\mu_i + r_\mu)`, with :math:`r_\mu = \sum_{j \ne i} \xi^\mu_j \sigma_j`
    (unchanged on a tie).  ``m`` (K,) is a work buffer holding the overlaps :math:`\xi^{\mu\top}\sigma`, updated
    incrementally after each flip.  For the exponential F every term is multiplied by the same
    :math:`e^{-c}` (c = max argument) so nothing overflows; the sign is unchanged.
    """
    B, N = S.shape
    K = Xi.shape[1]
    n_sweeps = orders.shape[0]
    for b in range(B):
        for i in range(N):
            out[b, i] = S[b, i]
        for mu in range(K):
            acc = 0.0
            for j in range(N):
                acc += Xi[j, mu] * out[b, j]
            m[mu] = acc
        done = 0
        for k in range(n_sweeps):
            changed = False
            for t in range(N):
                i = orders[k, t]
                s_i = out[b, i]
                c = 0.0
                if kind == 2:
                    c = -np.inf
                    for mu in range(K):
                        a = m[mu] - Xi[i, mu] * s_i + abs(Xi[i, mu])
                        if a > c:
                            c = a
                diff = 0.0
                for mu in range(K):
                    x = Xi[i, mu]
                    r = m[mu] - x * s_i
                    diff += _interaction(r + x - c, kind, n) - _interaction(r - x - c, kind, n)
                if diff > 0.0:
                    new = 1.0
                elif diff < 0.0:
                    new = -1.0
                else:
                    new = s_i
                if new != s_i:
                    for mu in range(K):
                        m[mu] += Xi[i, mu] * (new - s_i)
                    out[b, i] = new
                    changed = True
            done += 1
            if not changed:
                break
        sweeps_done[b] = done


# --------------------------------------------------------------------------------------------------------
# fused kernels of HopfieldSynapse (one dispatch per advance_state / evolve)
# --------------------------------------------------------------------------------------------------------


@njit(cache=True)
def advance_into(X, W, beta, variant, S, A, Xhat):
    """Retrieval plus the batch-mean energy (variant 0 Ramsauer, 1 ngclearn) in one call; returns the energy."""
    B = X.shape[0]
    H = W.shape[1]
    rowmax = np.empty(B)
    lse = np.empty(B)
    e = np.empty(B)
    lo = min_abs_bits32(W)  # one scan decides both the lifted products and the squares' path
    retrieve_k(X, W, retrieval_lift(X, W, lo), beta, S, A, Xhat, rowmax, lse)
    m2, _ = row_sq_norm_max_lo(W, 1 if variant == 1 else 0, lo)
    energy_rows(X, Xhat, rowmax, lse, beta, H, 0.5 * m2, variant, e)
    return e.mean()


@njit(cache=True)
def plasticity_into(rule, X, Xhat, A, W, neg_beta, eta, reg_lambda, l1_lambda, mask, use_mask, dW, Wn):
    """``dW`` by the delta (rule 0) or contrastive (rule 1) rule, then ``Wn`` = the evolved weights."""
    B, D = X.shape
    H = W.shape[1]
    if rule == 0:
        E = np.empty((B, D), X.dtype)
        delta_into(X, Xhat, A, E, dW)
    else:
        Shat = np.empty((B, H), X.dtype)
        Ahat = np.empty((B, H), X.dtype)
        T = np.empty((D, H) if B > 1 else (0, 0), X.dtype)  # B = 1 needs no T
        contrastive_into(X, Xhat, A, W, neg_beta, Shat, Ahat, np.empty(B), np.empty(B), T, dW)
    evolve_into(W, dW, eta, reg_lambda, l1_lambda, mask, use_mask, Wn)
