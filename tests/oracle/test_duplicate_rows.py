"""The gaussian-BCE spike similarity gradient on spike trains with duplicate rows of different labels (issue 12).

Two equal rows :math:`x_i = x_j` with :math:`Y_{ij} = 0` (two silent samples of different classes, or two
identical binary trains) have :math:`S_{ij} = 1` and a BCE derivative :math:`A_{ij} = 1/\\epsilon_b \\approx 10^{12}`;
their contribution :math:`A_{ij} S_{ij} (x_j - x_i)/\\sigma^2` is exactly 0.  Formed as
:math:`x_i \\sum_j B_{ij} - \\sum_j B_{ij} x_j` it cancels, leaving rounding errors of order
:math:`10^{12}\\,\\varepsilon` in a gradient of order 1.
"""

import numpy as np
import pytest

from refnsm import spiking as sp
from refnsm.crosscheck import _exact

from oracle.measure import error_in_eps

GOAL_EPS = 16  # float64: within a few eps of the term scale (the sums here have at most 2N = 16 terms)


def _duplicate_row_case(seed, dtype):
    rng = np.random.default_rng(seed)
    N, D = 8, 12
    X = (rng.random((N, D)) < 0.3).astype(dtype)
    X[1] = X[0]  # two equal trains
    X[3] = 0.0  # two silent samples
    X[4] = 0.0
    lab = np.eye(3)[rng.integers(0, 3, N)]
    lab[1] = np.roll(lab[0], 1)  # ... of different classes
    lab[4] = np.roll(lab[3], 1)
    return X, lab


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", range(6))
def test_gaussian_bce_gradient_exact_on_duplicate_rows(seed, dtype):
    X, lab = _duplicate_row_case(seed, dtype)
    sigma = 2.0
    g = sp.spike_similar_loss_vjp(None, X, lab, "gaussian", "bce", sigma)
    _, _, exact, scale = _exact.spike_similar_loss_terms(X, lab, "gaussian", "bce", (sigma,))
    err, where = error_in_eps(g, exact, scale)
    assert err <= GOAL_EPS, (err, np.unravel_index(where, X.shape))


def test_duplicate_rows_receive_the_same_gradient_as_without_their_twin_pair_term():
    """The pair of equal rows contributes exactly 0: the gradient equals the one with that pair's A zeroed."""
    X, lab = _duplicate_row_case(0, np.float64)
    g = sp.spike_similar_loss_vjp(None, X, lab, "gaussian", "bce", 2.0)
    _, _, exact, _ = _exact.spike_similar_loss_terms(X, lab, "gaussian", "bce", (2.0,))
    # the silent rows' gradients: every term has x_i = 0 and they sit near other rows only through S < 1
    np.testing.assert_allclose(g, exact, rtol=1e-13, atol=1e-13 * np.abs(exact).max())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cuda_twin_exact_on_duplicate_rows(dtype):
    from cuda_support import MODE

    if MODE is None:
        pytest.skip("no GPU here and the simulator is off in this process (make test turns it on)")
    X, lab = _duplicate_row_case(1, dtype)
    g = sp.spike_similar_loss_vjp(None, X, lab, "gaussian", "bce", 2.0, device="cuda")
    _, _, exact, scale = _exact.spike_similar_loss_terms(X, lab, "gaussian", "bce", (2.0,))
    err, where = error_in_eps(g, exact, scale)
    assert err <= GOAL_EPS, (err, np.unravel_index(where, X.shape))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cuda_twin_exact_on_near_rows(dtype):
    """The CUDA twin forms the near pairs' gaussian similarity from the differences too (sim_post)."""
    from cuda_support import MODE

    from oracle import spiking as osp

    if MODE is None:
        pytest.skip("no GPU here and the simulator is off in this process (make test turns it on)")
    X, lab = osp._near_rows(np.random.default_rng(3001), dtype)
    v, g = sp.spike_similar_loss_value_and_grad(X, lab, "gaussian", "mse", 0.3, device="cuda")
    ex = osp.ssl_exact(X, lab, "gaussian", "mse", (0.3,))
    assert error_in_eps(g, *ex["grad"])[0] <= GOAL_EPS
    assert error_in_eps(v, *ex["value"])[0] <= GOAL_EPS


@pytest.mark.parametrize("kernel, args, loss", [("sigmoid", (40.0,), "mse"), ("gaussian", (2.0,), "bce")])
def test_cuda_twin_uses_one_minus_s_from_the_kernel(kernel, args, loss):
    from cuda_support import MODE

    from oracle import spiking as osp

    if MODE is None:
        pytest.skip("no GPU here and the simulator is off in this process (make test turns it on)")
    X, lab = osp._near_rows(np.random.default_rng(22), np.float64)
    v, g = sp.spike_similar_loss_value_and_grad(X, lab, kernel, loss, *args, device="cuda")
    ex = osp.ssl_exact(X, lab, kernel, loss, args)
    assert error_in_eps(g, *ex["grad"])[0] <= GOAL_EPS
    assert error_in_eps(v, *ex["value"])[0] <= GOAL_EPS
