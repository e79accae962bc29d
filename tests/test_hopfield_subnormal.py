"""float32 Hopfield kernels without subnormal arithmetic give the same bits as before (issue 17).

``row_sq_norm_max`` (the energy's max squared memory norm) squared float32 weights in float32; weights that weight
decay drove to ~1e-26 have subnormal (or underflowing) squares, which cost a microcode assist each.  The kernel now
forms those squares by normal float64 arithmetic (``_kernels._sq32``).  The previous kernel is kept here, verbatim,
as the naive twin; every result must be bit for bit the same, in float32 and float64.
"""

import numpy as np
import pytest
from numba import njit

from refnsm.hopfield import _kernels as K


@njit(cache=True)
def _row_sq_norm_max_old(W, axis):
    """The kernel as it was before issue 17 (squares in the array dtype, float64 sums, same order)."""
    D, H = W.shape
    best = -1.0
    arg = 0
    if axis == 0:
        acc = np.zeros(H)
        for i in range(D):
            for j in range(H):
                acc[j] += W[i, j] * W[i, j]
        for j in range(H):
            if acc[j] > best:
                best = acc[j]
                arg = j
    else:
        J4 = H - H % 4
        for i in range(D):
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
def _sq32_all(w, out):
    for k in range(w.size):
        out[k] = K._sq32(w[k])


def _all_exponents(rng, per_exponent=2048):
    """float32 values with every exponent field (0 = zero/subnormal ... 255 = inf/NaN), both signs, random and
    extreme significands."""
    exps = np.repeat(np.arange(256, dtype=np.uint32), per_exponent + 4)
    mant = rng.integers(0, 1 << 23, size=exps.size, dtype=np.uint32)
    k = per_exponent + 4
    mant[0::k], mant[1::k], mant[2::k], mant[3::k] = 0, 1, (1 << 23) - 1, 1 << 22
    sign = rng.integers(0, 2, size=exps.size, dtype=np.uint32) << 31
    return (sign | (exps << 23) | mant).view(np.float32)


def _boundaries():
    """The edges of the three branches of _sq32 and of float32 overflow, with their neighbours."""
    f = np.float32
    pts = [f(2.0 ** -75), f(2.0 ** -63), f(np.sqrt(np.finfo(np.float32).max)), f(2.0 ** -149), f(2.0 ** -126),
           f(np.sqrt(2.0 ** -126)), f(np.sqrt(2.0 ** -149)), f(np.sqrt(1.5 * 2.0 ** -149)), f(1.0), f(0.0)]
    out = []
    for p in pts:
        q = p
        for _ in range(4):
            out.append(q)
            q = np.nextafter(q, f(np.inf))
        q = p
        for _ in range(4):
            q = np.nextafter(q, f(0.0))
            out.append(q)
    out += [f(np.inf), f(-np.inf), f(np.nan), f(-0.0)]
    a = np.array(out, dtype=np.float32)
    return np.concatenate([a, -a])


def test_sq32_is_the_float32_square_bit_for_bit(rng):
    w = np.concatenate([_all_exponents(rng), _boundaries()])
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        want = (w * w).astype(np.float64)  # NumPy's float32 product: IEEE, subnormals kept
    got = np.empty(w.size)
    _sq32_all(w, got)
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan)
    assert np.array_equal(got[~nan].view(np.uint64), want[~nan].view(np.uint64))
    # the test exercises every branch: exact zeros from nonzero w, subnormal squares, normal squares, overflow
    tiny = np.finfo(np.float32).tiny
    assert np.any((want == 0) & (w != 0)) and np.any((want > 0) & (want < tiny))
    assert np.any(want >= tiny) and np.any(np.isinf(want) & np.isfinite(w))


def _weights(rng, shape, dtype, kind):
    """Weights over many decades, as weight decay leaves them: normal, subnormal-square, zero-square, subnormal."""
    D, H = shape
    if kind == "decayed":  # a few live memories, the rest decayed to 1e-20 ... 1e-45
        W = rng.standard_normal(shape) * 10.0 ** rng.uniform(-45, -18, size=shape)
        live = rng.random(H) < 0.2
        W[:, live] = rng.standard_normal((D, int(live.sum())))
    elif kind == "all_tiny":  # every square subnormal or zero: the result is decided by subnormal sums
        W = rng.standard_normal(shape) * 10.0 ** rng.uniform(-24, -18, size=shape)
    elif kind == "decades":
        W = rng.standard_normal(shape) * 10.0 ** rng.uniform(-46, 3, size=shape)
        W[rng.random(shape) < 0.1] = 0.0
    else:  # "f64_subnormal": squares below float64's normal range too
        W = rng.standard_normal(shape) * 10.0 ** rng.uniform(-170, -150, size=shape)
    return np.ascontiguousarray(W.astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["decayed", "all_tiny", "decades", "f64_subnormal"])
@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (16, 128), (5, 3), (64, 130)])
def test_row_sq_norm_max_unchanged(rng, dtype, kind, shape):
    for trial in range(3):
        W = _weights(rng, shape, dtype, kind)
        for axis in (0, 1):
            v_old, i_old = _row_sq_norm_max_old(W, axis)
            v_new, i_new = K.row_sq_norm_max(W, axis)
            assert i_new == i_old
            assert np.float64(v_new).view(np.uint64) == np.float64(v_old).view(np.uint64), (kind, axis, v_new, v_old)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_sq_norm_max_inf_nan_unchanged(rng, dtype):
    W = _weights(rng, (6, 11), dtype, "decayed")
    for bad in (np.inf, -np.inf, np.nan, 1e30):
        Wb = W.copy()
        Wb[2, 3] = bad
        for axis in (0, 1):
            v_old, i_old = _row_sq_norm_max_old(Wb, axis)
            v_new, i_new = K.row_sq_norm_max(Wb, axis)
            assert i_new == i_old and (v_new == v_old or (np.isnan(v_new) and np.isnan(v_old)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("variant", [0, 1])
def test_advance_energy_unchanged_on_decayed_weights(rng, dtype, variant):
    """The synapse's energy (the only consumer of the squares) has the same bits as with the old kernel."""
    B, D, H, beta = 3, 64, 128, 2.0
    W = _weights(rng, (D, H), dtype, "decayed")
    X = rng.standard_normal((B, D)).astype(dtype)
    S, A, Xh = np.empty((B, H), dtype), np.empty((B, H), dtype), np.empty((B, D), dtype)
    e_new = K.advance_into(X, W, beta, variant, S, A, Xh)
    rowmax, lse, e = np.empty(B), np.empty(B), np.empty(B)
    S2, A2, Xh2 = np.empty_like(S), np.empty_like(A), np.empty_like(Xh)
    K.retrieve_into(X, W, beta, S2, A2, Xh2, rowmax, lse)
    m2, _ = _row_sq_norm_max_old(W, 1 if variant == 1 else 0)
    K.energy_rows(X, Xh2, rowmax, lse, beta, H, 0.5 * m2, variant, e)
    assert np.float64(e_new).view(np.uint64) == np.float64(e.mean()).view(np.uint64)
    assert np.array_equal(A, A2) and np.array_equal(Xh, Xh2)


# ---------------------------------------------------------------------------------------------------------------
# lifted products of subnormal float32 memories (retrieve_into, iterate_into, advance_into)
# ---------------------------------------------------------------------------------------------------------------


@njit(cache=False)  # not cached: a cached caller keeps the callee (softmax_rows) it was compiled with
def _retrieve_old(X, W, beta, S, A, Xhat, rowmax, lse):
    """retrieve_into as it was before issue 17: the two BLAS products on W as stored."""
    np.dot(X, W, S)
    K.softmax_rows(S, beta, A, rowmax, lse)
    np.dot(A, W.T, Xhat)


def _retrieve(fn, X, W, beta=2.0):
    B, D = X.shape
    H = W.shape[1]
    S, A, Xh = np.empty((B, H), W.dtype), np.empty((B, H), W.dtype), np.empty((B, D), W.dtype)
    rowmax, lse = np.empty(B), np.empty(B)
    fn(X, W, beta, S, A, Xh, rowmax, lse)
    return S, A, Xh, rowmax, lse


def _min_abs_bits_numpy(W):
    a = np.abs(W.astype(np.float32)).ravel()
    a = a[a != 0]
    return int(a.min().view(np.int32)) if a.size else 0x80000000


@pytest.mark.parametrize("kind", ["decayed", "all_tiny", "decades", "f64_subnormal"])
def test_min_abs_bits32(rng, kind):
    for shape in [(1, 1), (7, 13), (64, 130)]:
        W = _weights(rng, shape, np.float32, kind)
        assert K.min_abs_bits32(W) == _min_abs_bits_numpy(W)
        assert K.min_abs_bits32(np.asfortranarray(W)) == _min_abs_bits_numpy(W)
    Z = np.zeros((3, 4), np.float32)
    Z[1, 1] = -0.0
    assert K.min_abs_bits32(Z) == 0x80000000  # all zero (either sign): nothing to lift
    Z[2, 3] = -np.float32(2.0 ** -149)
    assert K.min_abs_bits32(Z) == 1
    assert K.min_abs_bits32(np.ones((2, 2))) == 0x80000000  # float64: passed through


def _exact_products(X, W, A):
    """XW and AW^T of the stored float32 values, exactly enough: float64 products of float32 values are exact and
    the float64 sums err by < 1e-13 relative to the sum of |terms|, far below float32's bounds."""
    X64, W64, A64 = X.astype(np.float64), W.astype(np.float64), A.astype(np.float64)
    return X64 @ W64, np.abs(X64) @ np.abs(W64), A64 @ W64.T, np.abs(A64) @ np.abs(W64).T


def _float32_bound(n, abs_sum, result):
    """Error bound of a float32 dot product of length n (gamma_n sum|terms|) plus the one rounding of the scaled
    back result (half an ulp of |result|, at least half of float32's smallest subnormal)."""
    u = 2.0 ** -24
    gamma = n * u / (1 - n * u)
    return gamma * abs_sum + np.maximum(u * np.abs(result), 2.0 ** -150) + 1e-300


@pytest.mark.parametrize("kind", ["all_subnormal", "decayed", "all_tiny", "decades"])
@pytest.mark.parametrize("shape", [(1, 64, 128), (5, 7, 13), (3, 130, 9)])
def test_lifted_retrieval_is_within_the_float32_bound(rng, kind, shape):
    """With subnormal memories the lifted products meet the normal-range error bound of a float32 dot product, which
    the direct products (subnormal terms rounded to multiples of 2**-149) do not in general."""
    B, D, H = shape
    direct_worse = 0
    for trial in range(4):
        if kind == "all_subnormal":  # weight decay's end point: every weight below 2**-126
            W = (rng.standard_normal((D, H)) * 10.0 ** rng.uniform(-44, -39, size=(D, H))).astype(np.float32)
        else:
            W = _weights(rng, (D, H), np.float32, kind)
        X = rng.standard_normal((B, D)).astype(np.float32)
        S, A, Xh, rowmax, lse = _retrieve(K.retrieve_into, X, W)
        XW, XWabs, AW, AWabs = _exact_products(X, W, A)
        scores = S.astype(np.float64) + rowmax[:, None]  # S holds XW - rowmax; rowmax is one of XW's entries
        # scores: S + rowmax recovers XW up to the rounding of the subtraction (half an ulp of |S| in float32)
        bound_s = _float32_bound(D, XWabs, XW) + 2.0 ** -24 * np.abs(S) + 2.0 ** -150
        assert np.all(np.abs(scores - XW) <= 2 * bound_s), kind
        assert np.all(np.abs(Xh.astype(np.float64) - AW) <= _float32_bound(H, AWabs, AW)), kind
        S0, A0, Xh0, _, _ = _retrieve(_retrieve_old, X, W)
        XW0, _, AW0, AWabs0 = _exact_products(X, W, A0)
        direct_worse += np.sum(np.abs(Xh0.astype(np.float64) - AW0) > _float32_bound(H, AWabs0, AW0))
        if K.min_abs_bits32(W) >= 0x00800000:  # no subnormal weight: the very same BLAS calls
            assert np.array_equal(S, S0) and np.array_equal(A, A0) and np.array_equal(Xh, Xh0)
    if kind == "all_subnormal":
        assert direct_worse > 0  # the test can tell: the direct products fail the bound the lifted ones meet


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_retrieval_unchanged_without_subnormal_weights(rng, dtype):
    """Normal float32 weights (and any float64 ones, subnormal included) take the BLAS products as before: same bits."""
    for kind in ("decayed", "decades", "f64_subnormal", "normal"):
        W = (rng.standard_normal((32, 48)) if kind == "normal" else _weights(rng, (32, 48), dtype, kind)).astype(dtype)
        if dtype == np.float32:
            W[np.abs(W) < np.finfo(np.float32).tiny] = 0.0  # zeros are not subnormal
        X = rng.standard_normal((4, 32)).astype(dtype)
        for a, b in zip(_retrieve(K.retrieve_into, X, W), _retrieve(_retrieve_old, X, W)):
            assert np.array_equal(a.view(np.uint8), b.view(np.uint8))


def test_lift_never_overflows(rng):
    """Subnormal weights next to huge ones or huge probes: the lift stays within float32's range (or is skipped)."""
    for big_w, big_x in [(3e38, 1.0), (1.0, 3e37), (1e30, 1e5), (1e-30, 3e38)]:
        W = (rng.standard_normal((16, 24)) * 1e-42).astype(np.float32)
        W[0, 0] = big_w
        X = rng.standard_normal((2, 16)).astype(np.float32)
        X[0, 0] = big_x
        with np.errstate(all="ignore"):
            got = _retrieve(K.retrieve_into, X, W)
            old = _retrieve(_retrieve_old, X, W)
        k = K.retrieval_lift(X, W, K.min_abs_bits32(W))
        assert 0 <= k <= 250
        if k > 0:
            assert np.all(np.isfinite(K._lift(W, k)))
        # wherever the direct product is finite, so is the lifted one, and the finite pattern is the same
        for a, b in zip(got, old):
            assert np.array_equal(np.isfinite(a), np.isfinite(b))
    for bad in (np.inf, np.nan):
        W = (rng.standard_normal((8, 8)) * 1e-42).astype(np.float32)
        W[3, 3] = bad
        X = rng.standard_normal((2, 8)).astype(np.float32)
        assert K.retrieval_lift(X, W, K.min_abs_bits32(W)) == 0  # a non-finite weight: the direct products


def test_iterate_with_subnormal_memories_follows_the_lifted_retrieval(rng):
    W = (rng.standard_normal((20, 30)) * 1e-41).astype(np.float32)
    X0 = rng.standard_normal((3, 20)).astype(np.float32)
    B, D, H = 3, 20, 30
    out = np.empty_like(X0)
    bufs = np.empty((B, H), np.float32), np.empty((B, H), np.float32), np.empty((B, D), np.float32)
    n, change = K.iterate_into(X0, W, 2.0, 0.0, 3, out, *bufs, np.empty(B), np.empty(B))
    X = X0.copy()
    for _ in range(n):
        X = _retrieve(K.retrieve_into, X, W)[2]
    assert 1 <= n <= 3 and np.array_equal(out, X)
