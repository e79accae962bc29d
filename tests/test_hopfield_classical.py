"""Classical binary Hopfield network and dense associative memory (refnsm.hopfield.classical)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import refnsm.hopfield as hp
from naive.hopfield_classical import naive_classical_async, F, naive_dense_async


def pm1(rng, *shape):
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0)


def orders_of(seed, n_sweeps, N):
    g = np.random.default_rng(seed)
    return [g.permutation(N) for _ in range(n_sweeps)]


# ------------------------------------------------------------------------------------------------ classical


def test_hebbian_weights(rng):
    P = pm1(rng, 20, 3)
    W = hp.hebbian_weights(P)
    ref = sum(np.outer(P[:, m], P[:, m]) for m in range(3)) / 20
    np.fill_diagonal(ref, 0)
    assert np.max(np.abs(W - ref)) <= 1e-15 and np.array_equal(W, W.T)


def test_classical_async_matches_naive(rng):
    N = 24
    P = pm1(rng, N, 4)
    W = hp.hebbian_weights(P)
    theta = 0.1 * rng.standard_normal(N)
    S = pm1(rng, 5, N)
    out = hp.classical_update(S, W, theta, mode="async", n_sweeps=6, rng=7)
    orders = orders_of(7, 6, N)
    for b in range(5):
        assert np.array_equal(out[b], naive_classical_async(S[b], W, theta, orders))


def test_classical_sync_and_fixed_points(rng):
    N = 100
    P = pm1(rng, N, 3)
    W = hp.hebbian_weights(P)
    # a few stored patterns at low load are fixed points of both updates
    assert np.array_equal(hp.classical_update(P.T, W, mode="sync"), P.T)
    assert np.array_equal(hp.classical_update(P.T, W, mode="async", n_sweeps=2, rng=0), P.T)
    s = P[:, 0].copy()
    s[:10] *= -1
    assert np.array_equal(hp.classical_update(s, W, mode="sync"), P[:, 0])
    # sync naive twin, ties keep the state
    Z = np.zeros((N, N))
    assert np.array_equal(hp.classical_update(s, Z, mode="sync"), s)


@settings(max_examples=30)
@given(seed=st.integers(0, 2**32 - 1), N=st.integers(2, 30), P=st.integers(1, 10))
def test_classical_async_energy_never_increases(seed, N, P):
    r = np.random.default_rng(seed)
    W = hp.hebbian_weights(pm1(r, N, P))
    s = pm1(r, N)
    order = r.permutation(N)
    e = hp.classical_energy(s, W)
    for i in order:  # one unit at a time, through the public API with a sequential single-unit "order"
        h = W[i] @ s
        s = s.copy()
        s[i] = 1.0 if h > 0 else (-1.0 if h < 0 else s[i])
        e_new = hp.classical_energy(s, W)
        assert e_new <= e + 1e-12
        e = e_new
    out = hp.classical_update(s, W, mode="async", n_sweeps=50, rng=seed % 1000)
    assert hp.classical_energy(out, W) <= e + 1e-12
    # the result of a converged async run is a fixed point
    if not np.array_equal(hp.classical_update(out, W, mode="async", n_sweeps=1, rng=1), out):
        pytest.fail("async run did not end at a fixed point")


def test_classical_energy(rng):
    N = 10
    W = hp.hebbian_weights(pm1(rng, N, 2))
    th = rng.standard_normal(N)
    S = pm1(rng, 3, N)
    e = hp.classical_energy(S, W, th)
    assert np.allclose(e, [-0.5 * s @ W @ s + th @ s for s in S], rtol=1e-14, atol=1e-14)
    assert isinstance(hp.classical_energy(S[0], W, th), float)


# ------------------------------------------------------------------------------------------------ dense


@pytest.mark.parametrize("kind,n", [("poly", 2), ("poly", 3), ("rectified", 3), ("exp", 1)])
def test_dense_async_matches_naive(rng, kind, n):
    N, K = 16, 12
    Xi = pm1(rng, N, K)
    S = pm1(rng, 4, N)
    out = hp.dense_update(S, Xi, interaction=kind, n=n, n_sweeps=4, rng=3)
    orders = orders_of(3, 4, N)
    for b in range(4):
        assert np.array_equal(out[b], naive_dense_async(S[b], Xi, kind, n, orders))


def test_dense_n2_equals_classical(rng):
    # F(x) = x^2: F(r + xi) - F(r - xi) = 4 xi r, i.e. the classical field without the diagonal
    N = 30
    Xi = pm1(rng, N, 5)
    S = pm1(rng, 6, N)
    a = hp.dense_update(S, Xi, interaction="poly", n=2, n_sweeps=5, rng=11)
    b = hp.classical_update(S, hp.hebbian_weights(Xi), mode="async", n_sweeps=5, rng=11)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("kind,n", [("poly", 3), ("rectified", 4), ("exp", 1)])
def test_dense_energy_never_increases(rng, kind, n):
    N, K = 20, 30
    Xi = pm1(rng, N, K)
    s = pm1(rng, N)
    e = hp.dense_energy(s, Xi, interaction=kind, n=n)
    for _ in range(3):
        s = hp.dense_update(s, Xi, interaction=kind, n=n, n_sweeps=1, rng=int(rng.integers(1000)))
        e_new = hp.dense_energy(s, Xi, interaction=kind, n=n)
        assert e_new <= e + 1e-9 * abs(e)
        e = e_new
    m = s @ Xi
    assert np.isclose(e, -np.sum(F(m, kind, n)), rtol=1e-14)


def test_dense_exp_large_n_no_overflow(rng):
    # N = 2000 overlaps would overflow exp without the shift; the shifted update is still exact in sign
    N, K = 2000, 5
    Xi = pm1(rng, N, K)
    s = Xi[:, 2].copy()
    s[:300] *= -1
    out = hp.dense_update(s, Xi, interaction="exp", n_sweeps=2, rng=0)
    assert np.array_equal(out, Xi[:, 2])


# ------------------------------------------------------------------------------------------------ bad input


def test_bad_inputs(rng):
    Xi = pm1(rng, 8, 3)
    W = hp.hebbian_weights(Xi)
    with pytest.raises(ValueError, match="S: expected entries in"):
        hp.classical_update(np.zeros(8), W)
    with pytest.raises(ValueError, match="S: expected state width N=8"):
        hp.classical_update(np.ones(7), W)
    with pytest.raises(ValueError, match="W: expected a square"):
        hp.classical_update(np.ones(8), W[:, :4])
    with pytest.raises(ValueError, match="mode"):
        hp.classical_update(np.ones(8), W, mode="parallel")
    with pytest.raises(ValueError, match="order"):
        hp.classical_update(np.ones(8), W, mode="async", order="backwards")
    with pytest.raises(ValueError, match="theta"):
        hp.classical_update(np.ones(8), W, theta=np.ones(3))
    with pytest.raises(ValueError, match="interaction"):
        hp.dense_update(np.ones(8), Xi, interaction="cubic")
    with pytest.raises(ValueError, match="n: expected an integer >= 1"):
        hp.dense_update(np.ones(8), Xi, n=0)
    with pytest.raises(ValueError, match="patterns"):
        hp.dense_energy(np.ones(8), np.ones(8))
    with pytest.raises(ValueError, match="S: expected finite"):
        hp.dense_energy(np.array([np.nan] + [1.0] * 7), Xi)
    with pytest.raises(ValueError, match="n_sweeps"):
        hp.classical_update(np.ones(8), W, n_sweeps=0)


def test_inputs_not_mutated(rng):
    Xi = pm1(rng, 12, 3)
    W = hp.hebbian_weights(Xi)
    S = pm1(rng, 4, 12)
    copies = [a.copy() for a in (Xi, W, S)]
    hp.classical_update(S, W, mode="sync")
    hp.classical_update(S, W, mode="async", n_sweeps=3, rng=0)
    hp.dense_update(S, Xi, interaction="exp", n_sweeps=3, rng=0)
    hp.dense_energy(S, Xi)
    hp.classical_energy(S, W)
    for a, c in zip((Xi, W, S), copies):
        assert np.array_equal(a, c)
