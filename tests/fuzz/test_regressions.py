"""Regression tests for the boundary-fuzz findings of issue 16, one block per finding.

Each test here failed before its fix: it states the contract (refuse with a clear error naming the argument, or
compute a defined value; never change state on a failed call) at the input the fuzzer found.
"""

import numpy as np
import pytest

from refnsm import regularization as R


# ------------------------------------------------------------------------------------------ NaN/Inf let through
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_exc_ratio_sign_rejects_nonfinite(bad):
    w = np.array([1.0, -2.0, bad, 0.5])
    for fn in (lambda: R.exc_ratio_loss(w, sign_func="sign"),
               lambda: R.exc_ratio_loss_vjp(None, w, sign_func="sign")):
        with pytest.raises(ValueError, match=r"w: expected finite"):
            fn()
    reg = R.ExcRatioTargetRegularization({"w": w.copy()}, sign_func="sign")
    with pytest.raises(ValueError, match=r"params\['w'\]: expected finite"):
        reg.forward()


def test_sgd_rejects_nonfinite_params_and_overflowing_steps():
    with pytest.raises(ValueError, match=r"params\['w'\]: expected finite"):
        R.SGD({"w": np.array([1.0, np.inf])}, lr=0.1)
    w = np.array([1.0, 2.0])
    v = np.array([3.0])
    opt = R.SGD({"w": w, "v": v}, lr=1e300)
    w0, v0 = w.copy(), v.copy()
    with pytest.raises(ValueError, match=r"grads\['v'\]: .*overflows"):
        opt.step({"w": np.array([1.0, 1.0]), "v": np.array([1e300])})
    assert np.array_equal(w, w0) and np.array_equal(v, v0)  # nothing updated on failure
    w[0] = np.nan  # changed behind the optimiser's back
    with pytest.raises(ValueError, match=r"params\['w'\]: expected finite"):
        opt.step({"w": np.zeros(2)})
