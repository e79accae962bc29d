"""The public encoder protocol and the composite encoders (ReLU/Tanh/Sigmoid, Sequential, GroupedConv2d)."""

import numpy as np
import pytest

from refnsm import similarity as sim
from refnsm.gradcheck import gradcheck


def _check_encoder(enc, x):
    """Finite differences of <G, enc(x)> in x and in every parameter against enc.vjp."""
    G = np.random.default_rng(1).standard_normal(np.shape(enc(x)))
    gradcheck(lambda a: enc(a), lambda g, a: enc.vjp(g, a)[0], [x], grad_out=G, raise_on_fail=True)
    for k, p in enc.params.items():
        orig = p.copy()

        def f(v, k=k):
            enc.params[k][...] = v
            return enc(x)

        def vjp(g, v, k=k):
            enc.params[k][...] = v
            return enc.vjp(g, x)[1][k]
        gradcheck(f, vjp, [orig.copy()], grad_out=G, raise_on_fail=True)
        enc.params[k][...] = orig


@pytest.mark.parametrize("cls, f", [(sim.ReLU, lambda x: np.maximum(x, 0)), (sim.Tanh, np.tanh),
                                    (sim.Sigmoid, lambda x: 1 / (1 + np.exp(-x)))])
def test_elementwise(cls, f):
    x = np.random.default_rng(0).standard_normal((4, 3)) + 0.05   # away from relu's kink
    np.testing.assert_allclose(cls()(x), f(x), rtol=1e-14)
    _check_encoder(cls(), x)
    assert cls(dtype=np.float32)(x.astype(np.float32)).dtype == np.float32


def test_sequential_mlp():
    rng = np.random.default_rng(2)
    l1, l2 = sim.Linear(5, 7, rng=0), sim.Linear(7, 3, rng=1)
    seq = sim.Sequential(l1, sim.ReLU(), l2)
    assert set(seq.params) == {"0.weight", "0.bias", "2.weight", "2.bias"} and seq.out_channels == 3
    assert seq.params["0.weight"] is l1.params["weight"]
    x = rng.standard_normal((6, 5))
    W1, b1, W2, b2 = l1.params["weight"], l1.params["bias"], l2.params["weight"], l2.params["bias"]
    np.testing.assert_allclose(seq(x), np.maximum(x @ W1.T + b1, 0) @ W2.T + b2, rtol=1e-13)
    _check_encoder(seq, x)


def test_sequential_conv_stack_in_a_circuit_trains():
    rng = np.random.default_rng(3)
    seq = sim.Sequential(sim.Conv2d(2, 4, 3, rng=0), sim.Tanh(), sim.GroupedConv2d(4, 4, 2, groups=2, rng=1))
    x = rng.standard_normal((3, 2, 6, 6))
    _check_encoder(seq, x)
    m = sim.SimilarityMatching(seq, 4, iteration_lr=0.1)
    y = m(x)
    assert y.shape == (3, 4, 3, 3)
    m.loss(x, y)
    m.backward()
    assert set(m.grads) == {"encoders.0.0.weight", "encoders.0.0.bias", "encoders.0.2.weight",
                            "encoders.0.2.bias", "competitor.weight"}
    before = seq.params["0.weight"].copy()
    m.step(0.01)
    assert not np.array_equal(before, seq.params["0.weight"])     # the stage's own array is trained


@pytest.mark.parametrize("groups, stride, padding, dilation", [(1, 1, 0, 1), (2, 2, 1, 1), (3, 1, 1, 2)])
def test_grouped_conv(groups, stride, padding, dilation):
    rng = np.random.default_rng(4)
    C, O = 3 * groups, 2 * groups
    g = sim.GroupedConv2d(C, O, 3, stride, padding, dilation, groups, rng=5)
    x = rng.standard_normal((2, C, 7, 8))
    # independently: one Conv2d per group on the channel slice, outputs concatenated
    parts = []
    for k in range(groups):
        c = sim.Conv2d(3, 2, 3, stride, padding, dilation, weight=g.params["weight"][2 * k:2 * k + 2],
                       bias_value=g.params["bias"][2 * k:2 * k + 2])
        parts.append(c(x[:, 3 * k:3 * k + 3]))
    np.testing.assert_allclose(g(x), np.concatenate(parts, axis=1), rtol=1e-13)
    _check_encoder(g, x)


def test_composite_bad_input():
    with pytest.raises(ValueError, match="in_channels: expected a multiple of groups"):
        sim.GroupedConv2d(3, 4, 2, groups=2)
    with pytest.raises(ValueError, match="out_channels: expected a multiple of groups"):
        sim.GroupedConv2d(4, 3, 2, groups=2)
    with pytest.raises(ValueError, match="x: expected 4 channels"):
        sim.GroupedConv2d(4, 4, 2, groups=2)(np.ones((1, 3, 5, 5)))
    with pytest.raises(ValueError, match="stages"):
        sim.Sequential()
    with pytest.raises(TypeError, match=r"stages\[1\]"):
        sim.Sequential(sim.ReLU(), np.tanh)
    with pytest.raises(TypeError, match="one dtype"):
        sim.Sequential(sim.Linear(2, 2), sim.ReLU(dtype=np.float32))
    with pytest.raises(ValueError, match="grad_out"):
        sim.ReLU().vjp(np.ones(3), np.ones((2, 2)))
    with pytest.raises(NotImplementedError, match="device"):
        sim.ReLU()(np.ones((2, 2)), device="cuda")
    seq = sim.Sequential(sim.Linear(3, 2), sim.ReLU())
    with pytest.raises(ValueError, match="x"):
        seq(np.ones((2, 4)))
    bad = np.ones((2, 3))
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="x"):
        sim.SimilarityMatching(seq, 2)(bad)

    class NoEncode(sim.FunctionalEncoder):
        pass
    with pytest.raises(NotImplementedError, match="encode"):
        NoEncode()(np.ones((2, 2)))
