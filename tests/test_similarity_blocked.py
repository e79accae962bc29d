"""The blocked tol = 0 fast loop (many rows per instruction, issue 17) gives the per-row loop's bits.

``_fast_loop_rows_old`` is ``fast_loop``'s tol = 0 branch as it was before issue 17, kept verbatim (it calls the
unchanged ``_row_update``): every output and the returned max change must be bit for bit the same.
"""

import numpy as np
import pytest
from numba import njit

import refnsm.similarity as sim
from refnsm.similarity import _kernels as K


@njit(cache=True)
def _fast_loop_rows_old(MT, D, Y, eta, relu, max_iter):
    T, m = Y.shape
    my = np.empty(m, dtype=Y.dtype)
    change = 0.0
    for t in range(T):
        yt = Y[t]
        dt = D[t]
        c = 0.0
        for it in range(max_iter):
            c = K._row_update(MT, dt, yt, my, eta, relu)
            if c == 0.0:
                break
        if c > change or c != c:
            change = c
    return change


def _same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a.view(np.uint8), b.view(np.uint8))


def _problem(rng, T, m, dtype, kind):
    A = rng.standard_normal((m, m))
    M = A @ A.T / m + np.eye(m)  # symmetric positive definite, as the learned competitor
    if kind == "nonsym":
        M = M + 0.3 * rng.standard_normal((m, m))
    D = rng.standard_normal((T, m))
    if kind == "sparse":  # most drives negative: ReLU outputs mostly exact zeros, many rows at a fixed point
        D = D - 1.5
        D[rng.random(T) < 0.3] = -1.0
    return np.ascontiguousarray(M.T.astype(dtype)), np.ascontiguousarray(D.astype(dtype))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("kind", ["dense", "sparse", "nonsym"])
@pytest.mark.parametrize("T,m", [(1, 1), (5, 5), (1000, 5), (129, 3), (300, 16), (257, 7)])
@pytest.mark.parametrize("max_iter", [0, 1, 40])
def test_blocked_fast_loop_is_the_row_loop(rng, dtype, relu, kind, T, m, max_iter):
    MT, D = _problem(rng, T, m, dtype, kind)
    eta = 0.1
    Y_old = np.zeros((T, m), dtype)
    Y_new = np.zeros((T, m), dtype)
    c_old = _fast_loop_rows_old(MT, D, Y_old, eta, relu, max_iter)
    c_new = K.fast_loop_blocked(MT, D, Y_new, eta, relu, max_iter)
    assert _same(Y_new, Y_old)
    assert np.float64(c_new).view(np.uint64) == np.float64(c_old).view(np.uint64)
    # and through the public dispatcher (tol = 0 takes the blocked loop for m <= 16)
    Y_disp = np.zeros((T, m), dtype)
    out = K.fast_loop(MT, D, Y_disp, eta, relu, 0.0, max_iter)
    if max_iter > 0:
        assert out == (max_iter, c_old, False) or (np.isnan(c_old) and np.isnan(out[1]))
    assert _same(Y_disp, Y_old)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_blocked_fast_loop_nonfinite(rng, dtype):
    """NaN drives and divergent steps propagate exactly as in the row loop; an infinite M takes the row loop."""
    MT, D = _problem(rng, 300, 5, dtype, "dense")
    D[7, 2] = np.nan
    D[200, 0] = np.inf
    for eta, relu in ((0.1, True), (0.1, False), (3.0, False)):  # eta = 3: the iteration diverges to inf/NaN
        Y_old, Y_new = np.zeros_like(D), np.zeros_like(D)
        with np.errstate(all="ignore"):
            c_old = _fast_loop_rows_old(MT, D, Y_old, eta, relu, 40)
            c_new = K.fast_loop_blocked(MT, D, Y_new, eta, relu, 40)
        assert _same(Y_new, Y_old)
        assert c_new == c_old or (np.isnan(c_new) and np.isnan(c_old))
    MTi = MT.copy()
    MTi[1, 3] = np.inf  # 0 * inf would be NaN: fast_loop must not take the blocked loop
    Y_old, Y_disp = np.zeros_like(D), np.zeros_like(D)
    D2 = np.full_like(D, -1.0)  # every ReLU output 0 but row 0's: the row loop never multiplies by inf
    D2[0] = 1.0
    c_old = _fast_loop_rows_old(MTi, D2, Y_old, 0.1, True, 40)
    it, c_disp, _ = K.fast_loop(MTi, D2, Y_disp, 0.1, True, 0.0, 40)
    assert _same(Y_disp, Y_old) and (c_disp == c_old or (np.isnan(c_disp) and np.isnan(c_old)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_minibatch_train_step_unchanged(rng, dtype):
    """The benchmark's minibatch NSM step (B = 1000, n = 50, m = 5): same bits as with the row loop."""
    x = rng.standard_normal((1000, 50)).astype(dtype)
    W = rng.standard_normal((5, 50)) / np.sqrt(50)
    b = 0.1 * rng.standard_normal(5)

    def model():
        return sim.SimilarityMatching(sim.Linear(50, 5, weight=W, bias_value=b, dtype=dtype), 5,
                                      iteration_projection="relu")

    new = model()
    y_new, _ = new.train_step(x, lr=1e-3)
    old = model()  # the same step's fast dynamics with the old row loop
    M = old.M.copy()
    U = _encode(x, old.encoders[0].params["weight"], old.encoders[0].params["bias"])
    Y = np.zeros((1000, 5), dtype)
    _fast_loop_rows_old(np.ascontiguousarray(M.T), U, Y, old.iteration_lr, True, old.max_iterations)
    assert _same(y_new, Y)
    assert np.count_nonzero(Y) > 0 and np.count_nonzero(Y == 0) > 0  # both ReLU regimes are exercised


@njit(cache=True)
def _encode(x, W, b):
    # linear_train_step's encoding loop, verbatim
    B, n = x.shape
    m = W.shape[0]
    U = np.empty((B, m), dtype=W.dtype)
    for t in range(B):
        for i in range(m):
            s = 0.0
            for k in range(n):
                s += x[t, k] * W[i, k]
            U[t, i] = s + b[i]
    return U


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("B", [1, 7, 128, 1000])
def test_blocked_encoding_is_the_row_dot_product(rng, dtype, B):
    x = rng.standard_normal((B, 50)).astype(dtype)
    x[x < -1.0] = 0.0
    W = rng.standard_normal((5, 50)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)
    for has_bias in (True, False):
        U = np.empty((B, 5), dtype)
        K.encode_rows(x, W, b, has_bias, U)
        assert _same(U, _encode(x, W, b) if has_bias else _encode(x, W, np.zeros(5, dtype)))
