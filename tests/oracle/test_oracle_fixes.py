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


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reverse", [False, True])
def test_last_reflector_of_a_full_chain_gets_an_exact_zero_gradient(dtype, reverse):
    """H_{n-1} = I - 2 e e^T does not depend on U[n-1, n-1], so its gradient is exactly 0; the reflector VJP formed
    it as a cancelling sum (O(eps |dQ|), e.g. 1.0 for dQ ~ 1e15)."""
    from refnsm import linear as L

    rng = np.random.default_rng(5)
    n = 4
    U = np.triu(rng.standard_normal((n, n))).astype(dtype)
    Q = L.householder_matrix(U, reverse=reverse)
    dQ = (rng.standard_normal((n, n)) * 1e15).astype(dtype)
    dU = L.householder_matrix_vjp(dQ, Q, U, reverse=reverse)
    assert dU[n - 1, n - 1] == 0.0
    m = L.OrthogonalLinear(n, n, dtype=dtype, params={"U": U})
    m.forward(rng.standard_normal((3, n)).astype(dtype) * 1e15)
    m.backward(rng.standard_normal((3, n)).astype(dtype))
    assert m.grads["U"][n - 1, n - 1] == 0.0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_symmetric_spectral_reflector_gradient_with_clustered_spectrum(dtype):
    """W = Q S Q^T with s nearly equal (p ~ 1e-3 N(0, 1) at initialisation): W hardly depends on Q, and
    (G + G^T) Q S formed the small gradient from terms |G||S| that cancel (8e3 eps); Q c Q^T = c I for every V, so
    the shift S - cI gives the same exact gradient without the cancellation."""
    from oracle import linear as olin

    rng = np.random.default_rng(0)
    name, shape = "symmetric_spectral", (4, 4)
    m0 = olin._build(name, shape, np.float64)
    params = {k: np.array(v).astype(dtype) for k, v in m0.params.items()}
    x = rng.standard_normal((3, 4)).astype(dtype)
    gy = rng.standard_normal((3, 4)).astype(dtype)
    m = olin._build(name, shape, dtype, params=params)
    m.forward(x)
    m.backward(gy)
    ex = olin.map_exact(name, m, params, x, gy)
    err, _ = error_in_eps(m.grads["V"], *ex["grad_V"])
    assert err <= GOAL[np.dtype(dtype)], err


@pytest.mark.parametrize("seed", [5, 11, 25, 39, 0, 1])
def test_solve_nsm_is_as_accurate_as_a_solve_on_its_support(seed):
    """The NNLS form of the NSM problem (|L^T y - L^-1 b|, L the Cholesky factor) loses accuracy as cond(M) (up to
    82 eps of Skeel's estimate at cond 1e6); the solution is S_FF^-1 b_F on its support F, solved directly."""
    from refnsm import similarity as sim

    from oracle import similarity as osim

    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    M = (q * np.geomspace(1.0, 1e-6, 4)) @ q.T
    b = rng.standard_normal((5, 4))
    err, _ = error_in_eps(sim.solve_nsm(M, b), *osim.nsm_exact(M, b)["y"])
    assert err <= GOAL[np.dtype(np.float64)], err


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_hebbian_ties_leave_the_unit_unchanged(mode):
    """With Hebbian weights fl(k/N) from ±1 patterns a unit's field is often exactly 0 on the float inputs (a tie:
    the unit keeps its state), but the float sum rounded it to +-1e-16 and the unit flipped."""
    from refnsm import hopfield as hf

    from oracle import hopfield as ohf

    case = next(c for c in ohf.cases() if c.name.startswith("classical_energy"))
    checked = 0
    for seed in range(12):
        inp = case.regimes["Hebbian (3 patterns, N 9)"](np.random.default_rng(seed), np.float64)
        try:
            ex = ohf.classical_exact(inp["S"], inp["W"], None)
        except ValueError:
            continue
        key = "sync" if mode == "sync" else "async"
        kw = {"mode": "sync"} if mode == "sync" else {"mode": "async", "order": "sequential"}
        got = hf.classical_update(inp["S"], inp["W"], n_sweeps=1, **kw)
        np.testing.assert_array_equal(got, ex[key][0], err_msg=f"seed {seed}")
        checked += 1
    assert checked >= 6


@pytest.mark.parametrize("reverse", [False, True])
def test_cuda_twin_gives_the_last_reflector_an_exact_zero_gradient(reverse):
    from cuda_support import MODE

    from refnsm import linear as L

    if MODE is None:
        pytest.skip("no GPU here and the simulator is off in this process (make test turns it on)")
    rng = np.random.default_rng(5)
    n = 4
    U = np.triu(rng.standard_normal((n, n)))
    x = rng.standard_normal((3, n)) * 1e15
    m = L.OrthogonalLinear(n, n, params={"U": U}, device="cuda")
    m.forward(x)
    m.backward(rng.standard_normal((3, n)))
    assert m.grads["U"][n - 1, n - 1] == 0.0
    assert np.all(m.grads["U"][0] != 0.0)  # the other reflectors still get their gradient
