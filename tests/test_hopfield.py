"""Modern Hopfield memory: retrieval, energy, gradients, plasticity rules (refnsm.hopfield.modern).

Naive NumPy twins of every kernel, finite-difference checks of every VJP, the descent inequality and the two
plasticity rules written as gradients, float32/float64, bad input.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp, softmax

import refnsm.hopfield as hp
from refnsm.gradcheck import gradcheck, numerical_vjp
from naive.hopfield import naive_retrieve, naive_energy, naive_energy_ngclearn
from helpers import rel


@pytest.fixture
def data(rng):
    D, H, B = 6, 9, 4
    return rng.standard_normal((B, D)), rng.standard_normal((D, H))


# ------------------------------------------------------------------------------------------------ retrieval


@pytest.mark.parametrize("beta", [0.3, 1.0, 8.0])
def test_retrieve_matches_naive(data, beta):
    X, W = data
    S, A, Xh = hp.retrieve(X, W, beta)
    S0, A0, Xh0 = naive_retrieve(X, W, beta)
    assert rel(S, S0) <= 1e-12 and rel(A, A0) <= 1e-12 and rel(Xh, Xh0) <= 1e-12
    assert np.allclose(S.max(axis=1), 0.0) and np.allclose(A.sum(axis=1), 1.0)


def test_retrieve_single_probe_and_rows_independent(data):
    X, W = data
    r = hp.retrieve(X[2], W, 2.0)
    full = hp.retrieve(X, W, 2.0)
    assert r.outputs.shape == (6,) and r.memory_weights.shape == (9,)
    assert rel(r.outputs, full.outputs[2]) <= 1e-14  # BLAS may order the sums differently per batch size


def test_retrieve_is_unit_gradient_step(data):
    # x_hat = x - grad_x E(x)  (the retrieval step is a gradient step on the energy)
    X, W = data
    gX, _, _ = hp.energy_vjp(None, X, W, 3.0)
    assert rel(X - gX, hp.retrieve(X, W, 3.0).outputs) <= 1e-12


def test_retrieve_float32_kept(data):
    X, W = data
    r32 = hp.retrieve(X.astype(np.float32), W.astype(np.float32), 2.0)
    r64 = hp.retrieve(X, W, 2.0)
    for a, b in zip(r32, r64):
        assert a.dtype == np.float32
        assert rel(a, b) <= 1e-5
    # mixed precision promotes to float64
    assert hp.retrieve(X.astype(np.float32), W, 2.0).outputs.dtype == np.float64


def test_inputs_not_mutated(data):
    X, W = data
    Xc, Wc = X.copy(), W.copy()
    hp.retrieve(X, W, 2.0)
    hp.energy(X, W, 2.0)
    hp.energy_vjp(None, X, W, 2.0)
    hp.iterate(X, W, 2.0)
    s, A, Xh = hp.retrieve(X, W, 2.0)
    Ac, Xhc = A.copy(), Xh.copy()
    hp.delta_update(X, Xh, A)
    hp.contrastive_update(X, Xh, A, W, 2.0)
    hp.evolve_step(W, np.ones_like(W), 0.1, 0.01, 0.01)
    assert np.array_equal(X, Xc) and np.array_equal(W, Wc) and np.array_equal(A, Ac) and np.array_equal(Xh, Xhc)


def test_iterate_reaches_fixed_point_and_matches_loop(data):
    X, W = data
    res = hp.iterate(X, W, 4.0, tol=1e-12, max_iter=500)
    assert res.converged and res.last_change <= 1e-12
    x = X.copy()
    for _ in range(res.n_iter):
        x = naive_retrieve(x, W, 4.0)[2]
    assert rel(res.outputs, x) <= 1e-12
    assert rel(hp.retrieve(res.outputs, W, 4.0).outputs, res.outputs) <= 1e-11
    # stopping after one update is one retrieval
    one = hp.iterate(X, W, 4.0, max_iter=1)
    assert one.n_iter == 1 and np.array_equal(one.outputs, hp.retrieve(X, W, 4.0).outputs)


def test_large_beta_retrieves_stored_pattern_exactly(rng):
    # Ramsauer et al. (2021), retrieval of well-separated patterns: an exact stored query with
    # beta * separation >> log N returns the pattern
    D, N = 32, 20
    Xi = np.sign(rng.standard_normal((D, N)))
    out = hp.retrieve(Xi.T, Xi, 8.0).outputs
    assert np.max(np.abs(out - Xi.T)) <= 1e-6


# ------------------------------------------------------------------------------------------------ energy


@pytest.mark.parametrize("beta", [0.5, 2.0, 8.0])
def test_energy_matches_naive(data, beta):
    X, W = data
    assert rel(hp.energy(X, W, beta), naive_energy(X, W, beta)) <= 1e-12
    assert rel(hp.energy(X, W, beta, compat="ngclearn"), naive_energy_ngclearn(X, W, beta)) <= 1e-12
    assert isinstance(hp.energy(X[0], W, beta), float)


def test_energy_float32(data):
    X, W = data
    e32 = hp.energy(X.astype(np.float32), W.astype(np.float32), 2.0)
    assert e32.dtype == np.float32 and rel(e32, naive_energy(X, W, 2.0)) <= 1e-5


def _energy_beta(X, W, b):
    return hp.energy(X, W, float(b))


def _energy_vjp_beta(g, X, W, b):
    return hp.energy_vjp(g, X, W, float(b))


@pytest.mark.parametrize("beta", [0.5, 2.0, 8.0])
def test_energy_gradcheck_x_w_beta(data, beta):
    X, W = data
    gradcheck(_energy_beta, _energy_vjp_beta, (X, W, np.array(beta)), wrt=[0, 1, 2], raise_on_fail=True)


def test_energy_gradcheck_single_probe_scalar_loss(data):
    X, W = data
    gradcheck(_energy_beta, _energy_vjp_beta, (X[0], W, np.array(1.5)), wrt=[0, 1, 2], raise_on_fail=True)


def test_energy_gradcheck_awkward_points(data):
    X, W = data
    # zero probe: p uniform, Ent(p) = log H so dE/dbeta = 0
    Z = np.zeros_like(X)
    r = gradcheck(_energy_beta, _energy_vjp_beta, (Z, W, np.array(2.0)), wrt=[0, 1, 2], raise_on_fail=True)
    assert abs(r.analytic[2]) <= 1e-12
    # nearly one-hot softmax (large scores)
    gradcheck(_energy_beta, _energy_vjp_beta, (3 * X, W, np.array(8.0)), wrt=[0, 1, 2], raise_on_fail=True)


def test_energy_grad_beta_nonpositive(data):
    X, W = data
    for beta in (0.2, 1.0, 5.0):
        assert hp.energy_vjp(None, X, W, beta)[2] <= 0.0


def _retrieve_out(X, W, b):
    return hp.retrieve(X, W, float(b)).outputs


def _retrieve_vjp(g, X, W, b):
    return hp.retrieve_vjp(g, X, W, float(b))


@pytest.mark.parametrize("beta", [0.5, 3.0])
def test_retrieve_gradcheck(data, beta):
    X, W = data
    gradcheck(_retrieve_out, _retrieve_vjp, (X, W, np.array(beta)), wrt=[0, 1, 2], raise_on_fail=True)
    gradcheck(_retrieve_out, _retrieve_vjp, (X[1], W, np.array(beta)), wrt=[0, 1, 2], raise_on_fail=True)


def test_energy_vjp_float32(data):
    X, W = data
    g32 = hp.energy_vjp(None, X.astype(np.float32), W.astype(np.float32), 2.0)
    g64 = hp.energy_vjp(None, X, W, 2.0)
    assert g32[0].dtype == np.float32 and g32[1].dtype == np.float32
    assert rel(g32[0], g64[0]) <= 1e-5 and rel(g32[1], g64[1]) <= 1e-5 and abs(g32[2] - g64[2]) <= 1e-5


@settings(max_examples=60)
@given(seed=st.integers(0, 2**32 - 1), beta=st.sampled_from([0.1, 0.5, 1.0, 2.0, 8.0, 30.0]),
       scale=st.floats(0.1, 3.0), D=st.integers(1, 7), H=st.integers(1, 9), B=st.integers(1, 4))
def test_descent_inequality(seed, beta, scale, D, H, B):
    # E(x+) <= E(x) - ||x+ - x||^2 / 2 for the retrieval step x+ = W p(x) (a CCCP step), plus E >= (|x|-M)^2/2
    r = np.random.default_rng(seed)
    W = scale * r.standard_normal((D, H))
    X = 2 * scale * r.standard_normal((B, D))
    E0 = hp.energy(X, W, beta)
    Xp = hp.retrieve(X, W, beta).outputs
    E1 = hp.energy(Xp, W, beta)
    slack = E0 - 0.5 * np.sum((Xp - X) ** 2, axis=1) - E1
    tol = 1e-12 * (1 + np.abs(E0) + np.sum(X * X, axis=1))
    assert np.all(slack >= -tol), slack
    M = np.sqrt(np.max(np.sum(W * W, axis=0)))
    assert np.all(E0 >= 0.5 * (np.linalg.norm(X, axis=1) - M) ** 2 - tol)
    assert np.all(E1 <= 2 * M**2 + tol)  # every retrieved state has norm <= M


def test_ngclearn_energy_reading_not_monotone():
    # the ngclearn energy reading (see the ngclearn section of docs/upstream_differences.md) can increase along
    # the retrieval iteration while E decreases
    found = False
    for seed in range(20):
        r = np.random.default_rng(seed)
        W = r.standard_normal((8, 12))
        x = 3 * r.standard_normal((1, 8))
        ram, ngc = [], []
        for _ in range(5):
            ram.append(hp.energy(x, W, 2.0)[0])
            ngc.append(hp.energy(x, W, 2.0, compat="ngclearn")[0])
            x = hp.retrieve(x, W, 2.0).outputs
        assert np.all(np.diff(ram) <= 1e-12)
        found |= bool(np.any(np.diff(ngc) > 1e-6))
    assert found


def test_one_step_error_bound(rng):
    # Ramsauer et al. (2021), the retrieval-error bound:
    # ||f(xi) - x_i|| <= 2 M (N-1) exp(-beta (Delta_i - 2 M ||xi - x_i||))
    for _ in range(50):
        D, N = rng.integers(2, 10), rng.integers(2, 12)
        Xm = rng.standard_normal((D, N))
        beta = rng.choice([0.5, 2.0, 8.0])
        i = rng.integers(N)
        xi = Xm[:, i] + 0.05 * rng.standard_normal(D)
        G = Xm.T @ Xm
        delta = G[i, i] - np.max(np.delete(G[i], i))
        M = np.max(np.linalg.norm(Xm, axis=0))
        bound = 2 * M * (N - 1) * np.exp(-beta * (delta - 2 * M * np.linalg.norm(xi - Xm[:, i])))
        err = np.linalg.norm(hp.retrieve(xi, Xm, beta).outputs - Xm[:, i])
        assert err <= bound * (1 + 1e-12) + 1e-15


# ------------------------------------------------------------------------------------------------ plasticity


def test_delta_matches_naive_and_is_stopgrad_gradient(data):
    X, W = data
    B = X.shape[0]
    _, A, Xh = naive_retrieve(X, W, 2.0)
    dW = hp.delta_update(X, Xh, A)
    assert rel(dW, (X - Xh).T @ A / B) <= 1e-12

    # L(W) = ||X - sg(A) W^T||^2 / (2B); the delta rule is -grad L with A held fixed
    def loss(Wv):
        return 0.5 * np.sum((X - A @ Wv.T) ** 2) / B

    gradcheck(loss, lambda g, Wv: -g * hp.delta_update(X, A @ Wv.T, A), (W,), raise_on_fail=True)

    # ... and NOT the full gradient: differentiating through the softmax gives something else
    def full_loss(Wv):
        return 0.5 * np.sum((X - naive_retrieve(X, Wv, 2.0)[2]) ** 2) / B

    full = numerical_vjp(full_loss, (W,), [0])[0]
    assert rel(-full, dW) > 1e-3


@pytest.mark.parametrize("beta", [0.5, 1.0, 4.0])
@pytest.mark.parametrize("compat", [None, "ngclearn"])
def test_contrastive_is_energy_difference_gradient(data, beta, compat):
    X, W = data
    _, A, Xh = naive_retrieve(X, W, beta)
    dW = hp.contrastive_update(X, Xh, A, W, beta, compat=compat)
    nb = 1.0 if compat else beta
    Ah = softmax(nb * (Xh @ W), axis=1)
    assert rel(dW, (X.T @ A - Xh.T @ Ah) / X.shape[0]) <= 1e-12

    # dW = -grad_W [mean E_beta(X; W) - mean E_nb(sg(X_hat); W)]   (contrastive: data minus reconstruction)
    def diff(Wv):
        return np.mean(naive_energy(X, Wv, beta)) - np.mean(naive_energy(Xh, Wv, nb))

    num = numerical_vjp(diff, (W,), [0])[0]
    assert np.max(np.abs(-num - dW)) <= 1e-7 * (1 + np.max(np.abs(dW)))


def test_contrastive_neg_beta_argument(data):
    X, W = data
    _, A, Xh = naive_retrieve(X, W, 3.0)
    assert np.array_equal(hp.contrastive_update(X, Xh, A, W, 3.0, neg_beta=1.0),
                          hp.contrastive_update(X, Xh, A, W, 3.0, compat="ngclearn"))
    with pytest.raises(ValueError, match="neg_beta"):
        hp.contrastive_update(X, Xh, A, W, 3.0, neg_beta=1.0, compat="ngclearn")


def test_plasticity_float32(data):
    X, W = data
    X32, W32 = X.astype(np.float32), W.astype(np.float32)
    _, A, Xh = hp.retrieve(X32, W32, 2.0)
    d32 = hp.delta_update(X32, Xh, A)
    c32 = hp.contrastive_update(X32, Xh, A, W32, 2.0)
    _, A6, Xh6 = hp.retrieve(X, W, 2.0)
    assert d32.dtype == np.float32 and c32.dtype == np.float32
    assert rel(d32, hp.delta_update(X, Xh6, A6)) <= 1e-5
    assert rel(c32, hp.contrastive_update(X, Xh6, A6, W, 2.0)) <= 1e-5
    assert hp.evolve_step(W32, d32, 0.1, 0.01).dtype == np.float32


def test_evolve_step_matches_naive(data, rng):
    _, W = data
    W = W.copy()
    W[0, 0] = 0.0  # sign(0) = 0
    dW = rng.standard_normal(W.shape)
    out = hp.evolve_step(W, dW, 0.3, 0.01, 0.002)
    assert rel(out, W + 0.3 * dW - 0.01 * W - 0.002 * np.sign(W)) <= 1e-12
    mask = (rng.random(W.shape) < 0.5).astype(float)
    outm = hp.evolve_step(W, dW, 0.3, 0.01, 0.0, mask=mask)
    assert rel(outm, (W + 0.3 * dW - 0.01 * W) * mask) <= 1e-12


def test_load_patterns(rng):
    D, H, P = 5, 7, 3
    W0 = rng.standard_normal((D, H))
    pats = rng.standard_normal((D, P))
    perm = rng.permutation(H)
    W = hp.load_patterns(W0, pats, perm=perm)
    cat = np.concatenate([pats, W0[:, : H - P]], axis=1)
    for j in range(H):
        assert np.array_equal(W[:, j], cat[:, perm[j]])
    # the pattern p sits in the slot j with perm[j] == p
    for p in range(P):
        assert np.array_equal(W[:, int(np.argmax(perm == p))], pats[:, p])
    assert np.array_equal(hp.load_patterns(W0, rng.standard_normal((D, H)) * 0 + 1, rng=0), np.ones((D, H)))
    a = hp.load_patterns(W0, pats, rng=3)
    b = hp.load_patterns(W0, pats, rng=3)
    assert np.array_equal(a, b)


# ------------------------------------------------------------------------------------------------ bad input


def test_bad_probe_width(data):
    X, W = data
    with pytest.raises(ValueError, match="X.*D=6"):
        hp.retrieve(X[:, :5], W, 2.0)
    with pytest.raises(ValueError, match="X"):
        hp.energy(np.ones((2, 3, 6)), W, 2.0)
    with pytest.raises(ValueError, match="X"):
        hp.iterate(np.ones((0, 6)), W, 2.0)


def test_bad_nan_probe(data):
    X, W = data
    Xn = X.copy()
    Xn[1, 2] = np.nan
    for f in (hp.retrieve, hp.energy, hp.iterate):
        with pytest.raises(ValueError, match="X: expected finite"):
            f(Xn, W, 2.0)
    with pytest.raises(ValueError, match="W: expected finite"):
        hp.retrieve(X, np.where(W > 1, np.inf, W), 2.0)


@pytest.mark.parametrize("beta", [0.0, -1.0, np.nan, np.inf])
def test_bad_beta(data, beta):
    X, W = data
    with pytest.raises(ValueError, match="beta"):
        hp.retrieve(X, W, beta)
    with pytest.raises(ValueError, match="beta"):
        hp.energy_vjp(None, X, W, beta)
    with pytest.raises(ValueError, match="beta"):
        hp.HopfieldSynapse("h", (6, 9), eta=0.1, beta=beta, rng=0)


def test_bad_types_and_options(data):
    X, W = data
    with pytest.raises(TypeError, match="beta"):
        hp.retrieve(X, W, "2")
    with pytest.raises(TypeError, match="X"):
        hp.retrieve(X.astype(complex), W, 2.0)
    with pytest.raises(ValueError, match="W"):
        hp.retrieve(X, W[0], 2.0)
    with pytest.raises(ValueError, match="compat"):
        hp.energy(X, W, 2.0, compat="torch")
    with pytest.raises(ValueError, match="tol"):
        hp.iterate(X, W, 2.0, tol=-1)
    with pytest.raises(ValueError, match="max_iter"):
        hp.iterate(X, W, 2.0, max_iter=0)
    with pytest.raises(ValueError, match="grad_out"):
        hp.energy_vjp(np.ones(3), X, W, 2.0)
    with pytest.raises(ValueError, match="grad_out"):
        hp.retrieve_vjp(np.ones((4, 5)), X, W, 2.0)


def test_bad_plasticity_inputs(data):
    X, W = data
    _, A, Xh = hp.retrieve(X, W, 2.0)
    with pytest.raises(ValueError, match="X_hat"):
        hp.delta_update(X, Xh[:, :5], A)
    with pytest.raises(ValueError, match="A"):
        hp.delta_update(X, Xh, A[:3])
    with pytest.raises(ValueError, match="W"):
        hp.contrastive_update(X, Xh, A, W.T, 2.0)
    with pytest.raises(ValueError, match="dW"):
        hp.evolve_step(W, W.T, 0.1)
    with pytest.raises(ValueError, match="reg_lambda"):
        hp.evolve_step(W, W, 0.1, reg_lambda=-0.1)
    with pytest.raises(ValueError, match="mask"):
        hp.evolve_step(W, W, 0.1, mask=np.ones((2, 2)))


def test_bad_patterns(rng):
    W0 = rng.standard_normal((5, 7))
    with pytest.raises(ValueError, match="^patterns: expected at most H=7"):  # the argument's own name
        hp.load_patterns(W0, rng.standard_normal((5, 8)))
    with pytest.raises(ValueError, match=r"^patterns.*one pattern per column.*transposed"):
        hp.load_patterns(W0, rng.standard_normal((3, 5)))
    with pytest.raises(ValueError, match="^patterns.*axis 0"):
        hp.load_patterns(W0, rng.standard_normal((4, 3)))
    with pytest.raises(ValueError, match="perm"):
        hp.load_patterns(W0, rng.standard_normal((5, 3)), perm=[0, 1, 2, 3, 4, 5, 5])
    with pytest.raises(ValueError, match="perm"):
        hp.load_patterns(W0, rng.standard_normal((5, 7)), perm=np.arange(7))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_single_probe_rules_are_the_rank_one_products(rng, dtype):
    # B = 1 (ngclearn's usual setting): the kernels write the outer products directly instead of calling BLAS;
    # every entry is one product (and, for the contrastive rule, one difference), so the values are exactly those of
    # the matrix expressions
    X = rng.standard_normal((1, 6)).astype(dtype)
    W = rng.standard_normal((6, 9)).astype(dtype)
    _, A, Xh = hp.retrieve(X, W, 2.0)
    np.testing.assert_array_equal(hp.delta_update(X, Xh, A), (X - Xh).T @ A)
    for nb in (1.0, 2.0, 0.3):
        Ah = hp.retrieve(Xh, W, nb).memory_weights
        dW = hp.contrastive_update(X, Xh, A, W, 2.0, neg_beta=nb)
        assert dW.dtype == dtype
        np.testing.assert_array_equal(dW, X.T @ A - Xh.T @ Ah)
