"""neurotorch's spellings accepted by refnsm.regularization (issue 14): the callback/optimizer arguments,
``DaleLawL2(seed=...)``, ``on_pbar_update(trainer, **kw)``, a callable ``sign_func`` and ``dale_(tensor=...)``."""

import numpy as np
import pytest

from refnsm import regularization as R
from refnsm.gradcheck import gradcheck


@pytest.fixture
def W():
    return np.random.default_rng(3).standard_normal((4, 5))


def test_callback_arguments_stored_with_upstream_defaults(W):
    reg = R.L2([W])
    assert (reg.priority, reg.name, reg.save_state, reg.load_state, reg.optimizer) == (10, "L2", True, True, None)
    reg = R.DaleLawL2([W], 0.5, [np.sign(W)], 2.0, None, priority=3, name="dale", save_state=False)
    assert (reg.priority, reg.name, reg.save_state, reg.load_state) == (3, "dale", False, False)
    lst = R.RegularizationList(None, priority=1, load_state=True)
    assert (len(lst), lst.priority, lst.load_state) == (0, 1, True)


def test_on_optimization_end_steps_the_optimizer_exactly_like_regularization_step(W):
    W1, W2 = W.copy(), W.copy()
    r1 = R.DaleLawL2({"W": W1}, 0.3, [np.ones_like(W)], 0.7, R.SGD({"W": W1}, lr=0.1))
    loss = r1.on_optimization_end(object(), epoch=3)           # upstream's (trainer, **kwargs)
    r2 = R.DaleLawL2({"W": W2}, 0.3, [np.ones_like(W)], 0.7)
    assert loss == R.regularization_step(r2, lr=0.1)
    np.testing.assert_array_equal(W1, W2)
    # the expected update, computed independently: W <- W - lr * Lambda * (2 alpha W - (1 - alpha) sign(R))
    np.testing.assert_allclose(W1, W - 0.1 * 0.7 * (2 * 0.3 * W - 0.7), rtol=1e-14)


def test_optimizer_keyword_on_every_regularizer(W):
    opt = R.SGD({"W": W}, lr=0.5)
    for reg in (R.L1([W], optimizer=opt), R.Lp([W], 1.0, 2, optimizer=opt), R.L2([W], optimizer=opt),
                R.DaleLaw([W], [W], optimizer=opt), R.WeightsDistance([W], [W + 1], optimizer=opt),
                R.ExcRatioTargetRegularization([W], optimizer=opt), R.InhRatioTargetRegularization([W], optimizer=opt),
                R.RegularizationList([R.L1([W])], optimizer=opt)):
        assert reg.optimizer is opt


def test_callback_bad_input(W):
    before = W.copy()
    with pytest.raises(ValueError, match="optimizer: does not hold"):
        R.L1([W], optimizer=R.SGD({"W": W.copy()}, lr=0.1))
    with pytest.raises(TypeError, match="optimizer: expected a refnsm SGD"):
        R.L1([W], optimizer="adam")
    with pytest.raises(TypeError, match="priority"):
        R.L1([W], priority=1.5)
    with pytest.raises(TypeError, match="name"):
        R.L1([W], name=3)
    with pytest.raises(TypeError, match="save_state"):
        R.L1([W], save_state=None)
    with pytest.raises(TypeError, match="load_state"):
        R.L1([W], load_state="yes")
    with pytest.raises(TypeError, match="unexpected keyword"):
        R.L1([W], optimiser=None)
    with pytest.raises(ValueError, match="optimizer: on_optimization_end needs"):
        R.L1([W]).on_optimization_end(None)
    np.testing.assert_array_equal(W, before)


def test_dale_law_seed_is_an_alias_of_rng(W):
    a = R.DaleLawL2([np.zeros((6, 6))], seed=5).reference_signs
    b = R.DaleLawL2([np.zeros((6, 6))], rng=5).reference_signs
    np.testing.assert_array_equal(a["params.0"], b["params.0"])
    c = R.DaleLawL2([np.zeros((6, 6))], seed=5, compat="neurotorch").reference_signs
    d = R.DaleLawL2([np.zeros((6, 6))], rng=5, compat="neurotorch").reference_signs
    np.testing.assert_array_equal(c["params.0"], d["params.0"])
    with pytest.raises(TypeError, match="rng, seed"):
        R.DaleLawL2([W], rng=1, seed=2)
    with pytest.raises(TypeError, match="rng, seed"):
        R.DaleLaw([W], rng=1, seed=2)


def test_on_pbar_update_takes_the_trainer(W):
    exc = R.ExcRatioTargetRegularization([W], 0.7)
    assert exc.on_pbar_update(None) == exc.on_pbar_update(object(), batch=1) == exc.on_pbar_update()
    inh = R.InhRatioTargetRegularization([W], 0.3)
    assert set(inh.on_pbar_update("trainer")) == {"inh_ratio", "inh_ratio_loss"}


def _tanh_grad(x):
    return 1.0 - np.tanh(x) ** 2


def test_callable_sign_func_value_gradient_and_finite_differences(W):
    for t in (0.2, 0.8):
        # independent value: |mean(tanh W) + 1 - 2t|
        expect = abs(np.mean(np.tanh(W)) + 1 - 2 * t)
        np.testing.assert_allclose(R.exc_ratio_loss(W, t, sign_func=np.tanh), expect, rtol=1e-14)
        gradcheck(lambda w: R.exc_ratio_loss(w, t, sign_func=np.tanh),
                  lambda g, w: R.exc_ratio_loss_vjp(g, w, t, sign_func=np.tanh, sign_func_grad=_tanh_grad), [W], raise_on_fail=True)
    # the built-in softsign through the callable path gives the built-in numbers
    soft, dsoft = (lambda x: x / (1 + np.abs(x))), (lambda x: 1 / (1 + np.abs(x)) ** 2)
    for t in (0.3, 0.9):
        np.testing.assert_allclose(R.exc_ratio_loss(W, t, sign_func=soft), R.exc_ratio_loss(W, t), rtol=1e-14)
        np.testing.assert_allclose(R.exc_ratio_loss_vjp(2.0, W, t, sign_func=soft, sign_func_grad=dsoft),
                                   R.exc_ratio_loss_vjp(2.0, W, t), rtol=1e-14, atol=0)
    reg = R.InhRatioTargetRegularization({"W": W}, 0.4, 1.5, sign_func=np.tanh, sign_func_grad=_tanh_grad)
    v, g = reg.value_and_grad()
    np.testing.assert_allclose(v, 1.5 * abs(np.mean(np.tanh(W)) + 1 - 2 * 0.6), rtol=1e-14)
    np.testing.assert_allclose(g["W"], 1.5 * np.sign(np.mean(np.tanh(W)) - 0.2) * _tanh_grad(W) / W.size,
                               rtol=1e-14)
    np.testing.assert_allclose(reg.get_params_exc_ratio(), [(np.mean(np.tanh(W)) + 1) / 2], rtol=1e-14)
    w32 = W.astype(np.float32)
    assert R.exc_ratio_loss_vjp(None, w32, 0.5, sign_func=np.tanh, sign_func_grad=_tanh_grad).dtype == np.float32


def test_callable_sign_func_bad_input(W):
    before = W.copy()
    with pytest.raises(ValueError, match="sign_func_grad: the gradient of a callable"):
        R.ExcRatioTargetRegularization([W], sign_func=np.tanh).backward()
    R.ExcRatioTargetRegularization([W], sign_func=np.tanh)()             # the value alone needs no derivative
    with pytest.raises(ValueError, match="sign_func_grad: only used with a callable"):
        R.exc_ratio_loss(W, sign_func="sign", sign_func_grad=_tanh_grad)
    with pytest.raises(TypeError, match="sign_func_grad: expected None or a callable"):
        R.ExcRatioTargetRegularization([W], sign_func=np.tanh, sign_func_grad=1.0)
    with pytest.raises(ValueError, match="sign_func: expected an elementwise function"):
        R.exc_ratio_loss(W, sign_func=np.sum)
    with pytest.raises(ValueError, match="sign_func: returned a non-finite"):
        R.exc_ratio_loss(W, sign_func=lambda x: np.full_like(x, np.nan))
    with pytest.raises(TypeError, match="sign_func: expected a function returning an array"):
        R.exc_ratio_loss(W, sign_func=lambda x: "s")
    bad = W.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"w"):
        R.exc_ratio_loss(bad, sign_func=np.tanh)

    def mutating(x):
        x[...] = 0.0
        return np.tanh(x)
    R.exc_ratio_loss(W, sign_func=mutating)
    np.testing.assert_array_equal(W, before)


def test_dale_in_place_takes_the_upstream_argument_name():
    t = np.zeros((5, 5))
    out = R.dale_(tensor=t, seed=3)
    assert out is t and np.count_nonzero(t) > 0
