"""refnsm.hopfield's hand-derived VJPs against JAX autodiff of the same formulas (float64, jax_enable_x64).

JAX comes with ngclearn in the peers environment.  Each formula is written here in jax.numpy from its
definition (not from refnsm's code): retrieval softmax(beta X W) W^T, Ramsauer's energy, the delta rule as
minus the gradient of the reconstruction loss with the softmax held fixed, and the contrastive rule as minus the
gradient of the batch-mean energy difference with the negative probes held fixed.  Tolerance 1e-10 relative.
"""

import numpy as np
import pytest

import refnsm.hopfield as hp
from refnsm.crosscheck import rel_err

TOL = 1e-10


@pytest.fixture(scope="module")
def jax(upstream):
    upstream("ngclearn")  # imports jax with jax_enable_x64
    import jax as _jax

    return _jax


def _data(seed, B=4, D=6, H=9):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((B, D)), rng.standard_normal((D, H)), rng.standard_normal((B, D))


def _ramsauer(jnp, X, W, beta):
    # per probe: -lse_beta(W^T x) + x.x/2 + log(H)/beta + max_j |w_j|^2 / 2
    z = beta * X @ W
    lse = jnp.log(jnp.sum(jnp.exp(z - z.max(axis=1, keepdims=True)), axis=1)) + z.max(axis=1)
    return -lse / beta + 0.5 * jnp.sum(X * X, axis=1) + jnp.log(W.shape[1]) / beta + 0.5 * jnp.max(
        jnp.sum(W * W, axis=0))


@pytest.mark.parametrize("seed, beta", [(0, 0.5), (1, 2.0), (2, 8.0)])
def test_retrieve_vjp_matches_jax(jax, seed, beta):
    jnp = jax.numpy
    X, W, G = _data(seed)

    def f(X, W, beta):
        A = jax.nn.softmax(beta * X @ W, axis=1)
        return A @ W.T

    _, pull = jax.vjp(f, jnp.asarray(X), jnp.asarray(W), jnp.asarray(beta))
    jX, jW, jb = (np.asarray(a) for a in pull(jnp.asarray(G)))
    gX, gW, gb = hp.retrieve_vjp(G, X, W, beta)
    assert rel_err(gX, jX) < TOL and rel_err(gW, jW) < TOL and rel_err(gb, jb) < TOL


@pytest.mark.parametrize("seed, beta", [(3, 0.5), (4, 2.0), (5, 8.0)])
def test_energy_vjp_matches_jax(jax, seed, beta):
    jnp = jax.numpy
    X, W, _ = _data(seed)
    g = np.random.default_rng(seed + 10).standard_normal(X.shape[0])
    value, pull = jax.vjp(lambda X, W, b: _ramsauer(jnp, X, W, b), jnp.asarray(X), jnp.asarray(W), jnp.asarray(beta))
    assert rel_err(hp.energy(X, W, beta), np.asarray(value)) < TOL
    jX, jW, jb = (np.asarray(a) for a in pull(jnp.asarray(g)))
    gX, gW, gb = hp.energy_vjp(g, X, W, beta)
    assert rel_err(gX, jX) < TOL and rel_err(gW, jW) < TOL and rel_err(gb, jb) < TOL


@pytest.mark.parametrize("seed, beta", [(6, 1.0), (7, 4.0)])
def test_delta_rule_is_minus_the_reconstruction_gradient(jax, seed, beta):
    jnp = jax.numpy
    X, W, _ = _data(seed)
    _, A, Xh = hp.retrieve(X, W, beta)
    A_fixed = jnp.asarray(A)

    def recon(W):  # (1/2B) sum_b |x_b - W a_b|^2, a_b held fixed
        return 0.5 * jnp.sum((jnp.asarray(X) - A_fixed @ W.T) ** 2) / X.shape[0]

    assert rel_err(hp.delta_update(X, Xh, A), -np.asarray(jax.grad(recon)(jnp.asarray(W)))) < TOL


@pytest.mark.parametrize("seed, beta, neg_beta", [(8, 2.0, None), (9, 4.0, 1.0), (10, 0.7, 3.0)])
def test_contrastive_rule_is_minus_the_energy_difference_gradient(jax, seed, beta, neg_beta):
    jnp = jax.numpy
    X, W, _ = _data(seed)
    _, A, Xh = hp.retrieve(X, W, beta)
    nb = beta if neg_beta is None else neg_beta

    def diff(W):  # mean_b E_beta(x_b; W) - mean_b E_nb(sg x_hat_b; W)
        return jnp.mean(_ramsauer(jnp, jnp.asarray(X), W, beta)) - jnp.mean(_ramsauer(jnp, jnp.asarray(Xh), W, nb))

    # the max-norm terms of the two energies cancel, so the difference is smooth in W
    want = -np.asarray(jax.grad(diff)(jnp.asarray(W)))
    got = hp.contrastive_update(X, Xh, A, W, beta, neg_beta=neg_beta)
    assert rel_err(got, want) < TOL


def test_synapse_backward_matches_jax(jax):
    jnp = jax.numpy
    X, W, G = _data(11)
    syn = hp.HopfieldSynapse("h", W.shape, 0.1, beta=3.0, weight_init=W)
    syn.forward(X)
    gX = syn.backward(G)
    _, pull = jax.vjp(lambda X, W: jax.nn.softmax(3.0 * X @ W, axis=1) @ W.T, jnp.asarray(X), jnp.asarray(W))
    jX, jW = (np.asarray(a) for a in pull(jnp.asarray(G)))
    assert rel_err(gX, jX) < TOL and rel_err(syn.grads["weights"], jW) < TOL
