"""Defects the oracle found in the spiking family, each pinned by a test that failed before its fix."""

import numpy as np
import pytest

from refnsm import spiking as sp

from oracle import spiking as osp
from oracle.measure import GOAL, error_in_eps


@pytest.mark.parametrize("dtype, scale", [(np.float64, 1e150), (np.float32, 1e18)])
def test_cosine_gradient_of_huge_spikes_does_not_overflow(dtype, scale):
    """C = -A G / P^2 overflowed P^2 (P = r_i r_j ~ scale^2): the normalisation's gradient vanished."""
    rng = np.random.default_rng(3)
    X = ((rng.random((6, 8)) < 0.4) * scale).astype(dtype)
    X[0, 0] = scale
    lab = np.eye(3)[rng.integers(0, 3, 6)]
    g = sp.spike_similar_loss_vjp(None, X, lab, "linear", "mse")
    ex, sc = osp.ssl_exact(X, lab, "linear", "mse", ())["grad"]
    err, _ = error_in_eps(g, ex, sc)
    assert err <= GOAL[np.dtype(dtype)], err


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_saturated_sigmoid_gradient_is_not_flushed_to_zero(dtype):
    """K (1 - K) with K rounded to 1 is 0; the exact derivative sigma(z) sigma(-z) is e^-z, tiny but not 0."""
    x = np.array([[1.0, 1.0, 0.5]], dtype=dtype)
    y = np.array([[1.0, 1.0, 1.0], [0.2, 0.1, 0.0]], dtype=dtype)
    A = np.ones((1, 2), dtype=dtype)
    gx, gy = sp.kernel_dot_product_vjp(A, x, y, "sigmoid", 30.0)
    ex = osp.kdp_exact(x, y, "sigmoid", 30.0, A)
    for got, key in ((gx, "dx"), (gy, "dy")):
        err, _ = error_in_eps(got, *ex[key])
        assert err <= GOAL[np.dtype(dtype)], (key, err)


@pytest.mark.parametrize("p", [-1, -2])
@pytest.mark.parametrize("dtype, scale", [(np.float64, 1e-160), (np.float64, 1e150), (np.float32, 1e-18),
                                          (np.float32, 1e18)])
def test_negative_p_norm_of_tiny_and_huge_vectors(p, dtype, scale):
    """sum(a^p)^(1/p) overflowed a^p (tiny entries) or v^(1-p) (huge ones); the norm itself is representable."""
    from refnsm import regularization as rg

    from oracle import regularization as org

    x = (np.random.default_rng(5).standard_normal(7) * scale).astype(dtype)
    ex = org.vector_norm_exact(x, p)
    got = {"value": rg.lp_norm(x, p), "grad": rg.lp_norm_vjp(None, x, p)}
    for key in ("value", "grad"):
        err, _ = error_in_eps(np.asarray(got[key]).astype(np.float64), *ex[key], dtype)
        assert err <= GOAL[np.dtype(dtype)], (key, err)


@pytest.mark.parametrize("scale", [1e-160, 1e-300, 1e160])
def test_two_norm_of_tiny_and_huge_vectors(scale):
    """sqrt(x.x) lost every digit to underflow of the squares (1e-160^2 is subnormal) or overflowed."""
    from refnsm import regularization as rg

    from oracle import regularization as org

    x = np.random.default_rng(6).standard_normal(7) * scale
    ex = org.vector_norm_exact(x, 2)
    got = {"value": rg.lp_norm(x, 2), "grad": rg.lp_norm_vjp(None, x, 2)}
    for key in ("value", "grad"):
        err, _ = error_in_eps(np.asarray(got[key]), *ex[key])
        assert err <= GOAL[np.dtype(np.float64)], (key, err)
    m = x.reshape(7, 1)
    fro = org.matrix_norm_exact(m, "fro")
    err, _ = error_in_eps(np.asarray(rg.lp_norm(m, "fro")), *fro["value"])
    assert err <= GOAL[np.dtype(np.float64)], err


@pytest.mark.parametrize("seed", range(4))
def test_similarity_matching_cost_at_the_optimum(seed):
    """The expansion ||X'X||^2 - 2||X'Y||^2 + ||Y'Y||^2 cancelled to ~eps ||X'X||^2 where the cost is ~0."""
    from refnsm import similarity as sim

    from oracle import similarity as osim

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((6, 4))
    q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    y = x @ q
    err, _ = error_in_eps(np.asarray(sim.similarity_matching_cost(x, y)), *osim.cost_exact(x, y)["value"])
    assert err <= GOAL[np.dtype(np.float64)], err


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gaussian_similarity_of_near_rows_from_their_differences(dtype):
    """exp(-(|x_i|^2 + |x_j|^2 - 2 x_i.x_j) / 2 sigma^2) for rows 1e-3 apart cancels in the distance, and a narrow
    kernel (sigma = 0.3) amplifies that by |x|^2 / sigma^2: the loss's gradient was off by hundreds of eps."""
    worst = 0.0
    for seed in range(4):
        rng = np.random.default_rng(3000 + seed)
        X, lab = osp._near_rows(rng, dtype)
        v, g = sp.spike_similar_loss_value_and_grad(X, lab, "gaussian", "mse", 0.3)
        ex = osp.ssl_exact(X, lab, "gaussian", "mse", (0.3,))
        worst = max(worst, error_in_eps(g, *ex["grad"])[0], error_in_eps(v, *ex["value"])[0])
    assert worst <= GOAL[np.dtype(dtype)], worst


@pytest.mark.parametrize("kernel, args, loss", [("sigmoid", (40.0,), "mse"), ("sigmoid", (40.0,), "l1"),
                                                ("gaussian", (2.0,), "bce"), ("gaussian", (0.3,), "bce")])
def test_losses_use_one_minus_s_from_the_kernel(kernel, args, loss):
    """S within an ulp of 1 (a saturated sigmoid, near rows under a gaussian) made S - 1, log(1 - S) and S (1 - S)
    pure rounding; the losses now take 1 - S from the kernel's own formula (sigma(-alpha G), -expm1(-d/2 sigma^2))."""
    worst = 0.0
    for seed in range(3):
        X, lab = osp._near_rows(np.random.default_rng(1000 * seed + 22), np.float64)
        v, g = sp.spike_similar_loss_value_and_grad(X, lab, kernel, loss, *args)
        ex = osp.ssl_exact(X, lab, kernel, loss, args)
        worst = max(worst, error_in_eps(g, *ex["grad"])[0], error_in_eps(v, *ex["value"])[0])
    assert worst <= GOAL[np.dtype(np.float64)], worst


@pytest.mark.parametrize("kernel, args, loss", [("sigmoid", (0.5,), "bce"), ("gaussian", (2.0,), "mse"),
                                                ("linear", (), "mse")])
def test_loss_value_summed_to_an_ulp_of_its_terms(kernel, args, loss):
    """The N^2 loss terms were summed left to right (error growing with N^2, up to ~3 eps here, where torch's
    pairwise sum stayed below 1); now a compensated sum."""
    worst = 0.0
    for seed in range(8):
        rng = np.random.default_rng(seed)
        X = (rng.random((12, 10)) < 0.4).astype(np.float64)
        lab = np.eye(3)[rng.integers(0, 3, 12)]
        v = sp.spike_similar_loss(X, lab, kernel, loss, *args)
        worst = max(worst, error_in_eps(v, *osp.ssl_exact(X, lab, kernel, loss, args)["value"])[0])
    assert worst <= 1.0, worst
