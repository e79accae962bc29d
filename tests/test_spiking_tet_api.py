"""spikingjelly's ``TETLoss.base_criterion_loss`` and ``base_criterion`` (issue 14)."""

import numpy as np
import pytest

from refnsm import spiking as sp
from refnsm.gradcheck import gradcheck
from refnsm._checks import NonFiniteResultError


def _data(seed=0, T=4, N=5, C=3):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((T, N, C)), rng.integers(0, C, N)


def _naive_ce_per_step(x, y):
    # independent: mean over n of -log softmax(x_t[n])[y_n], averaged over t
    out = []
    for xt in x:
        z = xt - xt.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        out.append(-np.mean(logp[np.arange(len(y)), y]))
    return np.mean(out)


def _mse_onehot(xt, y):
    return np.mean((xt - np.eye(xt.shape[1])[y]) ** 2)


def _mse_onehot_vjp(g, xt, y):
    return g * 2 * (xt - np.eye(xt.shape[1])[y]) / xt.size


def test_base_criterion_loss_is_the_time_mean_cross_entropy():
    x, y = _data()
    loss = sp.TETLoss(mean=0.5, tet_lambda=0.2)
    np.testing.assert_allclose(loss.base_criterion_loss(x, y), _naive_ce_per_step(x, y), rtol=1e-13)
    gradcheck(lambda a: loss.base_criterion_loss(a, y), lambda g, a: loss.base_criterion_loss_vjp(g, a, y), [x], raise_on_fail=True)
    # forward = (1 - lambda) base + lambda mse
    np.testing.assert_allclose(loss(x, y), 0.8 * _naive_ce_per_step(x, y) + 0.2 * np.mean((x - 0.5) ** 2),
                               rtol=1e-13)


def test_callable_base_criterion_value_gradient_and_finite_differences():
    x, y = _data(1)
    for lam in (0.0, 0.3):
        loss = sp.TETLoss(mean=1.0, tet_lambda=lam, base_criterion=_mse_onehot, base_criterion_vjp=_mse_onehot_vjp)
        base = np.mean([_mse_onehot(xt, y) for xt in x])
        np.testing.assert_allclose(loss.base_criterion_loss(x, y), base, rtol=1e-14)
        np.testing.assert_allclose(loss(x, y), (1 - lam) * base + lam * np.mean((x - 1.0) ** 2), rtol=1e-14)

        def f(a):
            return loss.forward(a, y)

        def vjp(g, a):
            loss.forward(a, y)
            return loss.backward(g)
        gradcheck(f, vjp, [x], raise_on_fail=True)
        gradcheck(lambda a: loss.base_criterion_loss(a, y), lambda g, a: loss.base_criterion_loss_vjp(g, a, y), [x], raise_on_fail=True)
    x32 = x.astype(np.float32)
    loss = sp.TETLoss(base_criterion=_mse_onehot, base_criterion_vjp=_mse_onehot_vjp)
    assert loss(x32, y).dtype == np.float32 and loss.backward().dtype == np.float32


def test_base_criterion_bad_input():
    x, y = _data()
    with pytest.raises(ValueError, match="base_criterion: expected one of 'cross_entropy'"):
        sp.TETLoss(base_criterion="mse")
    with pytest.raises(ValueError, match="base_criterion_vjp: only used with a callable"):
        sp.TETLoss(base_criterion_vjp=_mse_onehot_vjp)
    with pytest.raises(TypeError, match="base_criterion_vjp: expected None or a callable"):
        sp.TETLoss(base_criterion=_mse_onehot, base_criterion_vjp=3)
    loss = sp.TETLoss(base_criterion=_mse_onehot)
    loss(x, y)
    with pytest.raises(ValueError, match="base_criterion_vjp: the gradient"):
        loss.backward()
    with pytest.raises(ValueError, match="base_criterion: expected a scalar"):
        sp.TETLoss(base_criterion=lambda a, b: a).base_criterion_loss(x, y)
    bad = x.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="y"):
        loss.base_criterion_loss(bad, y)
    with pytest.raises(ValueError, match="y: expected"):
        loss.base_criterion_loss(np.ones(3), y)
    with pytest.raises(ValueError, match="base_criterion_vjp: expected a gradient of shape"):
        sp.TETLoss(base_criterion=_mse_onehot, base_criterion_vjp=lambda g, a, b: np.ones(2)).base_criterion_loss_vjp(
            None, x, y)


# ---- the result guard's shortcut: the TET gradient is finite by construction (losses._ce_grad_is_finite) ----


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tet_gradient_is_bounded_by_the_cotangent(rng, dtype):
    """|grad| <= |g| for any finite logits, however extreme: the argument that lets the guard skip reading it."""
    big = float(np.finfo(dtype).max) / 4
    for trial in range(20):
        x = (rng.standard_normal((3, 5, 7)) * 10.0 ** rng.uniform(-3, 300 if dtype == np.float64 else 37)).astype(dtype)
        x = np.clip(x, -big, big)
        t = rng.integers(0, 7, 5)
        g = float(10.0 ** rng.uniform(-5, 30))
        grad = sp.temporal_efficient_training_cross_entropy_vjp(g, x, t)
        assert np.all(np.isfinite(grad))
        assert np.all(np.abs(grad.astype(np.float64)) <= g * (1 + 2.0 ** -23))


def test_tet_overflowing_loss_is_refused():
    """The loss is still tested: logits of +-1e308 make m + log(se) - x_y overflow."""
    x = np.array([[[1.5e308, -1.5e308]]])
    with pytest.raises(NonFiniteResultError, match="temporal_efficient_training_cross_entropy_value_and_grad"):
        sp.temporal_efficient_training_cross_entropy_value_and_grad(x, np.array([1]))


def test_tet_huge_cotangent_in_float32_takes_the_full_test():
    """|g| above half of float32's range: the shortcut does not apply, and the overflowing gradient is refused."""
    x = np.array([[[0.0, 1.0]]], dtype=np.float32)
    with pytest.raises(NonFiniteResultError):
        sp.temporal_efficient_training_cross_entropy_vjp(1e300, x, np.array([0]))
    g = sp.temporal_efficient_training_cross_entropy_vjp(1e38, x, np.array([0]))  # within range: fine
    assert np.all(np.isfinite(g))


# ------------------------------------------------------------------ the CPU fast path (cross_entropy_steps_checked)
_TET_FUNCS = [
    lambda x, t: sp.temporal_efficient_training_cross_entropy(x, t),
    lambda x, t: sp.temporal_efficient_training_cross_entropy_vjp(None, x, t),
    lambda x, t: sp.temporal_efficient_training_cross_entropy_value_and_grad(x, t),
    lambda x, t: sp.tet_loss(x, t),
    lambda x, t: sp.tet_loss_vjp(None, x, t),
]


def _bad_tet_inputs():
    x = np.random.default_rng(3).standard_normal((3, 4, 5))
    t = np.array([0, 4, -100, 2])
    for where, value in [((1, 2, 3), np.nan), ((0, 0, 0), np.inf), ((2, 3, 4), -np.inf)]:
        bad = x.copy()
        bad[where] = value
        yield "x", bad, t
    yield "class 5", x, np.array([0, 5, 1, 2])
    yield "class -1", x, np.array([0, -1, 1, 2])
    yield "all ignored", x, np.full(4, -100)
    yield "no time step", x[:0], t
    yield "no class", x[:, :, :0], np.full(4, -100)


class _Sub(np.ndarray):
    """An ndarray subclass: not an exact ndarray, so it takes the full validation path."""


@pytest.mark.parametrize("k", range(len(_TET_FUNCS)))
def test_tet_fast_path_raises_the_validation_error(k):
    """Exact float64/int64 inputs take the one-call path; a bad value there must raise the full validation's error
    (the same message as for an ndarray subclass, which always takes the full validation), and never read out of
    range."""
    f = _TET_FUNCS[k]
    for label, x, t in _bad_tet_inputs():
        with pytest.raises(ValueError) as fast:
            f(x, t)
        with pytest.raises(ValueError) as slow:
            f(x.view(_Sub), t.view(_Sub))
        assert str(fast.value) == str(slow.value), label


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(4, 6, 7), (3, 5, 4, 2, 3)])
def test_tet_fast_path_same_bits_as_the_validated_path(dtype, shape):
    """The one-call path and the full validation path give the same loss and gradient, bit for bit."""
    from refnsm.spiking import _kernels as K

    gen = np.random.default_rng(11)
    x = (3 * gen.standard_normal(shape)).astype(dtype)
    t = gen.integers(0, shape[2], (shape[1],) + shape[3:])
    t.flat[::3] = -100
    T, N, C = shape[:3]
    S = int(np.prod(shape[3:], dtype=np.int64))
    ref = K.cross_entropy_steps(x.reshape(T, N, C, S), t.reshape(N, S), -100, 0.7, True)
    got = K.cross_entropy_steps_checked(x.reshape(T, N, C, S), t.reshape(N, S), -100, 0.7, True)
    assert got[3] and got[0] == ref[0] and got[2] == ref[2]
    np.testing.assert_array_equal(got[1], ref[1])
    loss, grad = sp.temporal_efficient_training_cross_entropy_value_and_grad(x, t)
    loss_slow, grad_slow = sp.temporal_efficient_training_cross_entropy_value_and_grad(x.tolist(), t.tolist())
    if dtype == np.float64:  # a list is converted to float64
        assert loss == loss_slow
        np.testing.assert_array_equal(grad, grad_slow)
