"""HopfieldSynapse: the stateful shell mirroring ngclearn's component (refnsm.hopfield.synapse)."""

import numpy as np
import pytest
from scipy.special import softmax

import refnsm.hopfield as hp
from refnsm.gradcheck import gradcheck
from helpers import rel

D, H = 6, 9


@pytest.fixture
def W(rng):
    return rng.standard_normal((D, H))


@pytest.fixture
def X(rng):
    return rng.standard_normal((4, D))


def make(W, **kw):
    kw.setdefault("eta", 0.1)
    return hp.HopfieldSynapse("hop", (D, H), weight_init=W, **kw)


def test_default_init_and_reset_shapes():
    syn = hp.HopfieldSynapse("hop", (D, H), eta=0.1, batch_size=3, rng=0)
    assert syn.weights.shape == (D, H) and syn.weights.dtype == np.float64
    assert syn.weights.min() >= 0.025 and syn.weights.max() < 0.8
    assert syn.inputs.shape == (3, D) and syn.outputs.shape == (3, D)
    assert syn.similarities.shape == (3, H) and syn.memory_weights.shape == (3, H)
    assert syn.energy.shape == (1, 1) and syn.dWeights.shape == (D, H) and syn.i_tick[0, 0] == 0
    # same seed, same weights; different seed, different weights
    assert np.array_equal(syn.weights, hp.HopfieldSynapse("b", (D, H), eta=0.1, rng=0).weights)
    assert not np.array_equal(syn.weights, hp.HopfieldSynapse("b", (D, H), eta=0.1, rng=1).weights)


@pytest.mark.parametrize("compat", [None, "ngclearn"])
def test_advance_matches_functions(W, X, compat):
    syn = make(W, beta=3.0, compat=compat)
    out = syn.advance_state(X)
    S, A, Xh = hp.retrieve(X, W, 3.0)
    assert np.array_equal(out, Xh) and np.array_equal(syn.outputs, Xh)
    assert np.array_equal(syn.similarities, S) and np.array_equal(syn.memory_weights, A)
    assert rel(syn.energy[0, 0], np.mean(hp.energy(X, W, 3.0, compat=compat))) <= 1e-14
    assert syn.i_tick[0, 0] == 1
    syn.advance_state()
    assert syn.i_tick[0, 0] == 2  # i_tick counts advance_state calls


@pytest.mark.parametrize("rule", ["delta", "contrastive"])
@pytest.mark.parametrize("compat", [None, "ngclearn"])
def test_evolve_matches_functions(W, X, rule, compat):
    syn = make(W, beta=2.0, eta=0.3, reg_lambda=0.01, l1_lambda=0.001, update_rule=rule, compat=compat)
    Wc = W.copy()
    for _ in range(3):
        syn.reset()
        syn.inputs = X
        syn.advance_state()
        Wnew = syn.evolve(t=0.0, dt=1.0)
        _, A, Xh = hp.retrieve(X, Wc, 2.0)
        if rule == "delta":
            dW = hp.delta_update(X, Xh, A)
        else:
            dW = hp.contrastive_update(X, Xh, A, Wc, 2.0, compat=compat)
        Wc = hp.evolve_step(Wc, dW, 0.3, 0.01, 0.001)
        assert rel(syn.dWeights, dW) <= 1e-14 and rel(Wnew, Wc) <= 1e-14
    assert np.array_equal(syn.weights, Wnew)
    assert np.array_equal(W, make(W).weights)  # the caller's weight_init was not written to


def test_contrastive_negative_phase_beta(W, X):
    # default: the negative phase at beta; compat="ngclearn": at 1 (ngclearn's precedence quirk)
    for compat, nb in ((None, 4.0), ("ngclearn", 1.0)):
        syn = make(W, beta=4.0, update_rule="contrastive", compat=compat)
        syn.advance_state(X)
        syn.evolve()
        A = softmax(4.0 * X @ W, axis=1)
        Xh = A @ W.T
        Ah = softmax(nb * Xh @ W, axis=1)
        assert rel(syn.dWeights, (X.T @ A - Xh.T @ Ah) / 4) <= 1e-12


def test_actual_batch_size_is_used(W, X):
    syn = make(W, batch_size=1)
    syn.advance_state(X)  # 4 rows on a batch_size=1 synapse
    syn.evolve()
    _, A, Xh = hp.retrieve(X, W, 8.0)
    assert rel(syn.dWeights, (X - Xh).T @ A / 4) <= 1e-12


def test_initial_patterns(rng):
    pats = rng.standard_normal((D, 4))
    perm = rng.permutation(H)
    W0 = rng.standard_normal((D, H))
    syn = hp.HopfieldSynapse("h", (D, H), 0.1, initial_patterns=pats, perm=perm, weight_init=W0)
    assert np.array_equal(syn.weights, hp.load_patterns(W0, pats, perm=perm))
    full = rng.standard_normal((D, H))
    assert np.array_equal(hp.HopfieldSynapse("h", (D, H), 0.1, initial_patterns=full, rng=0).weights, full)
    # with an rng and no perm: the patterns are all present, in some slots
    syn = hp.HopfieldSynapse("h", (D, H), 0.1, initial_patterns=pats, rng=5)
    for p in range(4):
        assert np.any(np.all(syn.weights == pats[:, [p]], axis=0))


def test_p_conn_mask(rng):
    pats = rng.standard_normal((D, 3)) + 5.0  # no zeros
    syn = hp.HopfieldSynapse("h", (D, H), 0.5, p_conn=0.4, initial_patterns=pats, rng=1, batch_size=2)
    M = syn.mask
    assert M is not None and set(np.unique(M)) <= {0.0, 1.0} and 0 < M.sum() < D * H
    # init-only mask (ngclearn 3.1.x): random slots are masked, pattern slots are not
    for p in range(3):
        assert np.any(np.all(syn.weights == pats[:, [p]], axis=0))
    syn.advance_state(rng.standard_normal((2, D)))
    W1 = syn.evolve()
    assert np.any(W1[M == 0] != 0)  # plasticity refills the masked entries
    # keep_mask: the mask holds at init and after every evolve
    syn = hp.HopfieldSynapse("h", (D, H), 0.5, p_conn=0.4, keep_mask=True, rng=1)
    assert np.all(syn.weights[syn.mask == 0] == 0)
    for _ in range(3):
        syn.advance_state(rng.standard_normal((2, D)))
        syn.evolve()
        assert np.all(syn.weights[syn.mask == 0] == 0)


def test_float32_synapse(W, X):
    syn = make(W, dtype=np.float32, update_rule="contrastive", reg_lambda=0.01)
    syn.advance_state(X)
    syn.evolve()
    for name in ("inputs", "outputs", "similarities", "memory_weights", "energy", "dWeights", "weights"):
        assert getattr(syn, name).dtype == np.float32, name
    ref = make(W, update_rule="contrastive", reg_lambda=0.01)
    ref.advance_state(X)
    ref.evolve()
    assert rel(syn.weights, ref.weights) <= 1e-5 and rel(syn.outputs, ref.outputs) <= 1e-5


def test_forward_backward_gradcheck(W, X):
    syn = make(W, beta=2.0)

    def f(Xv, Wv):
        s = make(Wv, beta=2.0)
        return s.forward(Xv)

    def vjp(g, Xv, Wv):
        s = make(Wv, beta=2.0)
        s.forward(Xv)
        gX = s.backward(g)
        return gX, s.grads["weights"]

    gradcheck(f, vjp, (X, W), raise_on_fail=True)
    syn.forward(X)
    gX = syn.backward(np.ones_like(X))
    assert gX.shape == X.shape and syn.grads["weights"].shape == (D, H)


@pytest.mark.parametrize("rule", ["delta", "contrastive"])
def test_learning_reduces_reconstruction_error(rule):
    # learning from scratch (ngclearn's example setting): 8 random +-1 patterns, D=32, H=16
    r = np.random.default_rng(0)
    pats = np.sign(r.standard_normal((8, 32)))
    syn = hp.HopfieldSynapse("h", (32, 16), 0.5, beta=8.0, update_rule=rule,
                             weight_init=0.1 * r.standard_normal((32, 16)), batch_size=8)
    mse = []
    for _ in range(100):
        syn.reset()
        syn.advance_state(pats)
        mse.append(np.mean((pats - syn.outputs) ** 2))
        syn.evolve()
    assert mse[-1] < 0.5 * mse[0]


def test_inputs_not_aliased(W, X):
    syn = make(W)
    syn.inputs = X
    X[0, 0] = 123.0
    assert syn.inputs[0, 0] != 123.0


# ------------------------------------------------------------------------------------------------ bad input


def test_bad_constructor_arguments(rng, W):
    with pytest.raises(ValueError, match="update_rule.*'delta', 'contrastive'"):
        hp.HopfieldSynapse("h", (D, H), 0.1, update_rule="contrastiv")
    with pytest.raises(ValueError, match="initial_patterns: expected at most H=9"):
        hp.HopfieldSynapse("h", (D, H), 0.1, initial_patterns=rng.standard_normal((D, 10)))
    with pytest.raises(ValueError, match="initial_patterns.*one pattern per column.*transposed"):
        hp.HopfieldSynapse("h", (D, H), 0.1, initial_patterns=rng.standard_normal((4, D)))
    with pytest.raises(ValueError, match="p_conn"):
        hp.HopfieldSynapse("h", (D, H), 0.1, p_conn=0.0)
    with pytest.raises(ValueError, match="weight_init"):
        hp.HopfieldSynapse("h", (D, H), 0.1, weight_init=W.T)
    with pytest.raises(ValueError, match="shape"):
        hp.HopfieldSynapse("h", (D, 0), 0.1)
    with pytest.raises(TypeError, match="dtype"):
        hp.HopfieldSynapse("h", (D, H), 0.1, dtype=np.int32)
    with pytest.raises(ValueError, match="compat"):
        hp.HopfieldSynapse("h", (D, H), 0.1, compat="jax")
    with pytest.raises(ValueError, match="perm"):
        hp.HopfieldSynapse("h", (D, H), 0.1, perm=np.arange(H))
    with pytest.raises(ValueError, match="reg_lambda"):
        hp.HopfieldSynapse("h", (D, H), 0.1, reg_lambda=-1.0)


def test_bad_inputs_to_synapse(W, X):
    syn = make(W)
    with pytest.raises(ValueError, match="inputs.*D=6"):
        syn.advance_state(X[:, :5])
    Xn = X.copy()
    Xn[0, 1] = np.nan
    with pytest.raises(ValueError, match="inputs: expected finite"):
        syn.advance_state(Xn)
    with pytest.raises(ValueError, match="weights"):
        syn.weights = W.T
    syn.advance_state(X)
    syn.inputs = X[:2]
    with pytest.raises(ValueError, match="inputs: the batch changed"):
        syn.evolve()


def test_inputs_any_layout(W, X):
    # the setter's fast path copies any strided float64 array into a private C-contiguous one, checking finiteness
    syn = make(W)
    wide = np.repeat(X, 2, axis=1)  # column 2k holds X[:, k]
    view = wide[:, ::2]
    assert not view.flags.c_contiguous
    syn.inputs = view
    assert syn.inputs.flags.c_contiguous and np.array_equal(syn.inputs, X)
    assert np.array_equal(syn.advance_state(view), make(W).advance_state(X))
    wide[2, 6] = np.inf  # X[2, 3] in the view
    with pytest.raises(ValueError, match=r"inputs: expected finite values, got inf at index \(2, 3\)"):
        syn.inputs = view


@pytest.mark.parametrize("rule", ["delta", "contrastive"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_single_probe_step_matches_functions_exactly(W, X, rule, dtype):
    # B = 1: the fused step (rule and weight update) gives exactly the functional API's numbers
    W, x = W.astype(dtype), X[:1].astype(dtype)
    syn = make(W, beta=2.0, eta=0.3, reg_lambda=0.01, l1_lambda=0.001, update_rule=rule, compat="ngclearn",
               dtype=dtype)
    syn.advance_state(x)
    Wn = syn.evolve()
    _, A, Xh = hp.retrieve(x, W, 2.0)
    dW = hp.delta_update(x, Xh, A) if rule == "delta" else hp.contrastive_update(x, Xh, A, W, 2.0, compat="ngclearn")
    assert np.array_equal(syn.dWeights, dW)
    assert np.array_equal(Wn, hp.evolve_step(W, dW, 0.3, 0.01, 0.001))
