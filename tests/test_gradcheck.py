"""refnsm.gradcheck accepts correct gradients and rejects subtly wrong ones, and says where."""

import numpy as np
import pytest

from refnsm.gradcheck import GradcheckError, gradcheck, numerical_vjp


def f_scalar(x, w):
    return np.sum(np.tanh(x @ w))


def vjp_scalar(g, x, w):
    d = g * (1 - np.tanh(x @ w) ** 2)
    return d @ w.T, x.T @ d


def test_accepts_a_correct_gradient(rng):
    x, w = rng.standard_normal((4, 3)), rng.standard_normal((3, 2))
    res = gradcheck(f_scalar, vjp_scalar, (x, w))
    assert res.ok and bool(res)
    assert res.max_rel_err < 1e-6
    assert "passed" in res.report()


def test_rejects_a_subtly_wrong_gradient_and_names_the_element(rng):
    x, w = rng.standard_normal((4, 3)), rng.standard_normal((3, 2))

    def wrong(g, x, w):
        gx, gw = vjp_scalar(g, x, w)
        gw = gw.copy()
        gw[1, 0] *= 1 + 1e-3  # one element off by 0.1 %
        return gx, gw

    res = gradcheck(f_scalar, wrong, (x, w))
    assert not res.ok
    assert res.worst_input == 1 and res.worst_index == (1, 0)
    assert res.analytic_value == pytest.approx(res.numeric_value * (1 + 1e-3), rel=1e-6)
    report = res.report()
    assert "FAILED" in report and "input 1 at index (1, 0)" in report
    with pytest.raises(GradcheckError, match=r"input 1 at index \(1, 0\)"):
        gradcheck(f_scalar, wrong, (x, w), raise_on_fail=True)


def test_rejects_a_transposed_gradient(rng):
    A = rng.standard_normal((3, 3))
    f = lambda x: A @ x  # noqa: E731
    res = gradcheck(f, lambda g, x: A @ g, (rng.standard_normal(3),))  # should be A.T @ g
    assert not res.ok
    assert gradcheck(f, lambda g, x: A.T @ g, (rng.standard_normal(3),)).ok


def test_vector_output_uses_a_random_projection_and_wrt_selects_inputs(rng):
    x, w = rng.standard_normal((2, 3)), rng.standard_normal((3, 4))
    f = lambda x, w, name: x @ w  # noqa: E731
    res = gradcheck(f, lambda g, x, w, name: g @ w.T, (x, w, "ignored"), wrt=[0])
    assert res.ok
    with pytest.raises(ValueError, match="vjp returned 1 gradients for 2"):
        gradcheck(f, lambda g, x, w, name: g @ w.T, (x, w, "ignored"))


def test_inputs_are_not_modified_and_float32_is_checked_in_float64(rng):
    x = rng.standard_normal(5).astype(np.float32)
    before = x.copy()
    res = gradcheck(lambda x: np.sum(x ** 3), lambda g, x: 3 * g * x ** 2, (x,))
    assert res.ok and np.array_equal(x, before)


def test_numerical_vjp_matches_known_derivative():
    x = np.linspace(-1, 1, 7)
    (g,) = numerical_vjp(lambda x: np.sum(np.sin(x)), [x], [0])
    assert np.allclose(g, np.cos(x), rtol=1e-9, atol=1e-10)


def test_nan_in_analytic_gradient_fails(rng):
    x = rng.standard_normal(3)
    assert not gradcheck(lambda x: np.sum(x ** 2), lambda g, x: np.full(3, np.nan), (x,)).ok


def test_argument_errors(rng):
    x = rng.standard_normal(3)
    with pytest.raises(ValueError, match="wrt: no floating-point array"):
        gradcheck(lambda s: 0.0, lambda g, s: 0.0, ("text",))
    with pytest.raises(ValueError, match="gradient for input 0 has shape"):
        gradcheck(lambda x: np.sum(x), lambda g, x: np.ones(4), (x,))
    with pytest.raises(ValueError, match=r"eps: expected a positive number \(> 0\), got 0.0"):
        gradcheck(lambda x: np.sum(x), lambda g, x: np.ones(3), (x,), eps=0)
