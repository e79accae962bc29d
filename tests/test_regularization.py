"""refnsm.regularization: values against naive NumPy twins, VJPs against finite differences, torch's
conventions at ties/zeros/kinks, properties, dtypes, bad input, and the training-loop glue."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import refnsm.regularization as R
from refnsm import _checks
from refnsm.gradcheck import gradcheck
from naive.regularization import naive_norm, naive_dale_l2, naive_exc

INF = math.inf
MATRIX_P = [1, -1, 2, -2, INF, -INF, "fro", "nuc"]
VECTOR_P = [1, -1, 2, -2, INF, -INF]
SHAPES_2D = [(5, 5), (4, 6), (6, 3)]


# ------------------------------------------------------------------------------------------------ Lp values
@pytest.mark.parametrize("p", MATRIX_P)
@pytest.mark.parametrize("shape", SHAPES_2D)
def test_lp_norm_matrix_matches_naive(rng, p, shape):
    W = rng.standard_normal(shape)
    assert R.lp_norm(W, p) == pytest.approx(naive_norm(W, p), rel=1e-12)


@pytest.mark.parametrize("p", VECTOR_P)
def test_lp_norm_vector_and_entrywise_match_naive(rng, p):
    x = rng.standard_normal(7)
    assert R.lp_norm(x, p) == pytest.approx(naive_norm(x, p), rel=1e-12)
    W = rng.standard_normal((3, 4, 2))
    assert R.lp_norm(W, p, mode="entrywise") == pytest.approx(naive_norm(W, p, "entrywise"), rel=1e-12)


def test_lp_matrix_norms_are_induced_not_entrywise():
    W = np.array([[1.0, -2.0], [2.0, 1.0]])  # spec worked example: L1 = 3 (max column sum), L2 = sigma_max
    assert R.lp_norm(W, 1) == 3.0
    assert R.lp_norm(W, 1, mode="entrywise") == 6.0
    assert R.lp_norm(W, 2) == pytest.approx(np.sqrt(5.0), rel=1e-15)  # W = sqrt(5) * rotation
    assert R.lp_norm(W, 2, mode="entrywise") == pytest.approx(np.sqrt(10.0), rel=1e-15)


# ------------------------------------------------------------------------------------------------ Lp gradients
@pytest.mark.parametrize("p", MATRIX_P)
@pytest.mark.parametrize("shape", SHAPES_2D)
def test_lp_norm_vjp_gradcheck_matrix(rng, p, shape):
    W = rng.standard_normal(shape)
    gradcheck(lambda w: R.lp_norm(w, p), lambda g, w: R.lp_norm_vjp(g, w, p), (W,), raise_on_fail=True)


@pytest.mark.parametrize("p", VECTOR_P)
def test_lp_norm_vjp_gradcheck_vector_and_entrywise(rng, p):
    x = rng.standard_normal(6)
    gradcheck(lambda v: R.lp_norm(v, p), lambda g, v: R.lp_norm_vjp(g, v, p), (x,), raise_on_fail=True)
    W = rng.standard_normal((3, 4))
    gradcheck(lambda w: R.lp_norm(w, p, mode="entrywise"), lambda g, w: R.lp_norm_vjp(g, w, p, mode="entrywise"),
              (W,), raise_on_fail=True)


def test_lp_norm_vjp_scales_with_grad_out(rng):
    W = rng.standard_normal((4, 4))
    np.testing.assert_allclose(R.lp_norm_vjp(-2.5, W, 2), -2.5 * R.lp_norm_vjp(None, W, 2), rtol=1e-15)


def test_lp_ties_follow_torch():
    # values below are the ones torch 2.13 autograd returns for the matrix norms, re-derived by hand:
    W = np.array([[1.0, -2.0], [2.0, 1.0]])  # both columns sum to 3 -> each gets half of sign(P[:, j])
    np.testing.assert_array_equal(R.lp_norm_vjp(None, W, 1), [[0.5, -0.5], [0.5, 0.5]])
    np.testing.assert_array_equal(R.lp_norm_vjp(None, W, INF), [[0.5, -0.5], [0.5, 0.5]])  # both rows sum to 3
    # min column sum tied between the two columns of [[0, 0], [1, 1]]
    np.testing.assert_array_equal(R.lp_norm_vjp(None, np.array([[0.0, 0.0], [1.0, 1.0]]), -1), [[0, 0], [0.5, 0.5]])
    # spectral norm with a tied top singular value: mean of u_k v_k^T over the tie
    D = np.diag([2.0, 2.0, 1.0])
    np.testing.assert_allclose(R.lp_norm_vjp(None, D, 2), np.diag([0.5, 0.5, 0.0]), atol=1e-15)
    np.testing.assert_allclose(R.lp_norm_vjp(None, np.eye(2), -2), 0.5 * np.eye(2), atol=1e-15)
    # vector max/min ties split equally
    np.testing.assert_array_equal(R.lp_norm_vjp(None, np.array([2.0, -2.0, 1.0]), INF), [0.5, -0.5, 0.0])
    np.testing.assert_array_equal(R.lp_norm_vjp(None, np.array([1.0, -1.0, 2.0]), -INF), [0.5, -0.5, 0.0])


def test_lp_zeros_follow_torch():
    z = np.zeros(3)
    for p in VECTOR_P:
        assert R.lp_norm(z, p) == 0.0
        np.testing.assert_array_equal(R.lp_norm_vjp(None, z, p), z)
    x = np.array([0.0, 1.0, 2.0])  # negative orders: a zero entry makes the norm 0 and torch's gradient 0
    for p in (-1, -2, -INF):
        assert R.lp_norm(x, p) == 0.0
        np.testing.assert_array_equal(R.lp_norm_vjp(None, x, p), np.zeros(3))
    Z = np.zeros((2, 3))
    for p in (1, -1, INF, -INF, "fro"):
        np.testing.assert_array_equal(R.lp_norm_vjp(None, Z, p), Z)


@settings(max_examples=40)
@given(
    arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 5)),
           elements=st.floats(-3, 3, allow_subnormal=False)),
    st.sampled_from(MATRIX_P),
    st.floats(0.1, 4.0),
)
def test_lp_euler_homogeneity_property(W, p, c):
    """Every norm here is positively homogeneous of degree 1, so <grad, W> = ||W|| (Euler), also for every
    torch tie/zero convention (a convex combination of valid pieces), and ||cW|| = c||W||."""
    if p in (2, -2, "nuc"):
        s = np.linalg.svd(W, compute_uv=False)
        if p != 2 and s[-1] == 0:  # undefined singular vectors: not golden (documented)
            return
        if s[0] == 0:
            return
    v = float(R.lp_norm(W, p))
    g = R.lp_norm_vjp(None, W, p)
    assert np.sum(g * W) == pytest.approx(v, rel=1e-9, abs=1e-12)
    assert float(R.lp_norm(c * W, p)) == pytest.approx(c * v, rel=1e-12, abs=1e-12)


# ------------------------------------------------------------------------------------------------ Dale L2


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.8, 1.0])
@pytest.mark.parametrize("shape", SHAPES_2D)
def test_dale_law_l2_value_and_gradcheck(rng, alpha, shape):
    W, Rf = rng.standard_normal(shape), rng.standard_normal(shape)
    assert R.dale_law_l2(W, Rf, alpha) == pytest.approx(naive_dale_l2(W, Rf, alpha), rel=1e-12, abs=1e-13)
    gradcheck(lambda w: R.dale_law_l2(w, Rf, alpha), lambda g, w: R.dale_law_l2_vjp(g, w, Rf, alpha), (W,),
              wrt=[0], raise_on_fail=True)
    np.testing.assert_allclose(R.dale_law_l2_vjp(None, W, Rf, alpha), 2 * alpha * W - (1 - alpha) * np.sign(Rf),
                               rtol=1e-15, atol=1e-15)


def test_dale_law_l2_uses_only_the_sign_of_the_reference(rng):
    W, Rf = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
    assert R.dale_law_l2(W, Rf, 0.3) == R.dale_law_l2(W, 7.5 * Rf, 0.3) == R.dale_law_l2(W, np.sign(Rf), 0.3)


# ------------------------------------------------------------------------------------------------ E/I ratio


@pytest.mark.parametrize("shape", [(), (7,), (4, 5), (2, 3, 2)])
@pytest.mark.parametrize("t", [0.2, 0.5, 0.8])
def test_exc_ratio_value_and_gradcheck(rng, shape, t):
    W = rng.standard_normal(shape)
    assert R.exc_ratio_loss(W, t) == pytest.approx(naive_exc(W, t), rel=1e-12)
    assert R.exc_ratio_loss(W, t, sign_func="sign") == pytest.approx(naive_exc(W, t, False), rel=1e-12)
    gradcheck(lambda w: R.exc_ratio_loss(w, t), lambda g, w: R.exc_ratio_loss_vjp(g, w, t), (W,),
              raise_on_fail=True)


def test_exc_ratio_kink_and_hard_sign_give_zero_gradient(rng):
    W = np.array([[0.7, -0.7], [2.0, -2.0]])  # mean softsign exactly 0 -> kink at t = 0.5
    assert R.exc_ratio_loss(W, 0.5) == 0.0
    np.testing.assert_array_equal(R.exc_ratio_loss_vjp(None, W, 0.5), np.zeros((2, 2)))
    X = rng.standard_normal((3, 4))
    np.testing.assert_array_equal(R.exc_ratio_loss_vjp(None, X, 0.8, sign_func="sign"), np.zeros((3, 4)))


def test_softsign_derivative_is_one_at_zero():
    g = R.exc_ratio_loss_vjp(None, np.zeros(4), 0.8)  # m = 0 < 2t - 1 -> sign -1; phi'(0) = 1; / n
    np.testing.assert_array_equal(g, -np.ones(4) / 4)


# ------------------------------------------------------------------------------------------------ distance
@pytest.mark.parametrize("p, shape", [(p, s) for s in [(6,), (4, 4), (3, 5)] for p in [1, -1, 2, INF, "fro", "nuc"]
                                      if len(s) == 2 or p not in ("fro", "nuc")])
def test_weights_distance_value_and_gradcheck(rng, p, shape):
    W, Rf = rng.standard_normal(shape), rng.standard_normal(shape)
    assert R.weights_distance(W, Rf, p) == pytest.approx(naive_norm(np.abs(W - Rf), p), rel=1e-12)
    gradcheck(lambda w, r: R.weights_distance(w, r, p), lambda g, w, r: R.weights_distance_vjp(g, w, r, p),
              (W, Rf), raise_on_fail=True)


def test_weights_distance_zero_gradient_where_equal(rng):
    W = rng.standard_normal((3, 3))
    Rf = W.copy()
    Rf[:, 0] += 1.0  # column 0 differs, the others are equal
    gw, gr = R.weights_distance_vjp(None, W, Rf, 1)
    np.testing.assert_array_equal(gw[:, 1:], 0.0)
    np.testing.assert_array_equal(gw[:, 0], -1.0)
    np.testing.assert_array_equal(gr, -gw)


# ------------------------------------------------------------------------------------------------ dtypes
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_kept(rng, dtype):
    W = rng.standard_normal((4, 5)).astype(dtype)
    Rf = rng.standard_normal((4, 5)).astype(dtype)
    for p in MATRIX_P:
        assert R.lp_norm(W, p).dtype == dtype and R.lp_norm_vjp(None, W, p).dtype == dtype
        tol = 1e-5 if dtype == np.float32 else 1e-12
        assert float(R.lp_norm(W, p)) == pytest.approx(naive_norm(W, p), rel=tol)
    assert R.dale_law_l2(W, Rf).dtype == dtype and R.dale_law_l2_vjp(None, W, Rf).dtype == dtype
    assert R.exc_ratio_loss(W).dtype == dtype and R.exc_ratio_loss_vjp(None, W).dtype == dtype
    assert R.weights_distance(W, Rf).dtype == dtype
    assert all(g.dtype == dtype for g in R.weights_distance_vjp(None, W, Rf))
    reg = R.RegularizationList([R.L2([W]), R.DaleLawL2([W], reference_weights=[Rf]), R.ExcRatioTargetRegularization([W])])
    v, grads = reg.value_and_grad()
    assert v.dtype == dtype and all(g.dtype == dtype for g in grads.values())


def test_integer_input_becomes_float64():
    assert R.lp_norm(np.array([[1, -2], [2, 1]]), 1).dtype == np.float64


# ------------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("p", [0, 3, 0.5, "abc", None, True, "inf"])
def test_unsupported_p(rng, p):
    W = rng.standard_normal((3, 3))
    with pytest.raises(ValueError, match="p: expected one of"):
        R.lp_norm(W, p)
    with pytest.raises(ValueError, match="p: expected one of"):
        R.Lp([W], p=p)
    with pytest.raises(ValueError, match="p: expected one of"):
        R.WeightsDistance([W], [W], p=p)


def test_matrix_norm_on_vector_and_nuc_entrywise():
    with pytest.raises(ValueError, match="p: 'fro' is a matrix norm"):
        R.lp_norm(np.ones(3), "fro")
    with pytest.raises(ValueError, match="p: 'nuc'"):
        R.Lp([np.ones(3)], p="nuc")
    with pytest.raises(ValueError, match="p: 'nuc'"):
        R.lp_norm(np.ones((2, 2)), "nuc", mode="entrywise")


def test_three_d_params_rejected(rng):
    W = rng.standard_normal((2, 3, 4))
    with pytest.raises(ValueError, match="x: expected a 1-D"):
        R.lp_norm(W, 1)
    with pytest.raises(ValueError, match=r"params\['params.0'\]: expected a 1-D"):
        R.L1([W])
    with pytest.raises(ValueError, match=r"params\['params.0'\]"):
        R.WeightsDistance([W], [W])
    with pytest.raises(ValueError, match=r"params\['params.0'\]: expected 2 dimensions"):
        R.DaleLawL2([W], reference_weights=[W])
    assert R.L1([W], mode="entrywise")() == pytest.approx(np.abs(W).sum(), rel=1e-12)


@pytest.mark.parametrize("bad", [-0.1, 1.5, math.nan])
def test_ratios_outside_unit_interval(rng, bad):
    W = rng.standard_normal((3, 3))
    with pytest.raises(ValueError, match="alpha"):
        R.DaleLawL2([W], alpha=bad, reference_weights=[W])
    with pytest.raises(ValueError, match="alpha"):
        R.dale_law_l2(W, W, bad)
    with pytest.raises(ValueError, match="exc_target_ratio"):
        R.ExcRatioTargetRegularization([W], bad)
    with pytest.raises(ValueError, match="inh_target_ratio"):
        R.InhRatioTargetRegularization([W], bad)
    with pytest.raises(ValueError, match="exc_target_ratio"):
        R.exc_ratio_loss(W, bad)
    with pytest.raises(ValueError, match="inh_ratio"):
        R.dale((3, 3), inh_ratio=bad)
    with pytest.raises(ValueError, match="rho"):
        R.dale((3, 3), rho=bad)


@pytest.mark.parametrize("t", [0.0, 1.0])
def test_exc_target_is_an_open_interval(t):
    with pytest.raises(ValueError, match="exc_target_ratio: expected a number in the open interval"):
        R.ExcRatioTargetRegularization([np.ones(2)], t)


def test_reference_shape_and_count_mismatch(rng):
    W = rng.standard_normal((3, 4))
    with pytest.raises(ValueError, match=r"reference_weights\[0\]: expected the parameter's shape \(3, 4\)"):
        R.DaleLawL2([W], reference_weights=[np.ones((4, 3))])
    with pytest.raises(ValueError, match=r"reference_weights\[0\]"):
        R.WeightsDistance([W], [np.ones(4)])
    with pytest.raises(ValueError, match="reference: expected the parameter's shape"):
        R.dale_law_l2(W, np.ones((3, 1)))
    with pytest.raises(ValueError, match="reference_weights: expected one reference per parameter"):
        R.DaleLawL2([W, W], reference_weights=[W])
    reg = R.DaleLawL2([W, W.copy()], reference_weights=[W], compat="neurotorch")  # upstream's zip truncation
    assert float(reg()) == pytest.approx(naive_dale_l2(W, W, 0.8), rel=1e-12)


def test_nan_rejected_with_name_and_index(rng):
    W = rng.standard_normal((3, 3))
    W[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"x: expected finite values, got nan at index \(1, 2\)"):
        R.lp_norm(W, 1)
    for fn in (lambda: R.lp_norm_vjp(None, W, 2), lambda: R.dale_law_l2(W, np.ones((3, 3))),
               lambda: R.exc_ratio_loss(W), lambda: R.weights_distance(W, np.ones((3, 3)))):
        with pytest.raises(ValueError, match="w|x: expected finite"):
            fn()
    with pytest.raises(ValueError, match="reference: expected finite"):
        R.dale_law_l2(np.ones((3, 3)), W)
    # a NaN that appears during training is reported at call time, with the parameter's key
    P = rng.standard_normal((3, 3))
    regs = [R.L1({"W": P}), R.Lp({"W": P}, p=-INF), R.L2({"W": P}), R.DaleLawL2({"W": P}, reference_weights=[P.copy()]),
            R.ExcRatioTargetRegularization({"W": P}), R.WeightsDistance({"W": P}, [P.copy() + 1])]
    P[0, 1] = np.inf
    for reg in regs:
        with pytest.raises(ValueError, match=r"params\['W'\]: expected finite values, got inf at index \(0, 1\)"):
            reg.value_and_grad()


def test_other_bad_input(rng):
    W = rng.standard_normal((3, 3))
    with pytest.raises(ValueError, match="mode: expected one of"):
        R.lp_norm(W, 1, mode="flat")
    with pytest.raises(TypeError, match="params"):
        R.L1(W)  # a bare array, not a list
    with pytest.raises(TypeError, match=r"params\['params.0'\]: expected a float32/float64 numpy array"):
        R.L1([[1.0, 2.0]])
    with pytest.raises(ValueError, match=r"params\['params.0'\]: expected a non-empty array"):
        R.L1([np.ones((0, 3))])
    with pytest.raises(ValueError, match="x: expected a non-empty"):
        R.lp_norm(np.ones(0), 1)
    with pytest.raises(ValueError, match="frozen"):
        R.L1({"W": W}, frozen=["V"])
    with pytest.raises(TypeError, match="Lambda"):
        R.L1([W], Lambda="big")
    with pytest.raises(ValueError, match="grad_out"):
        R.lp_norm_vjp(np.ones(3), W, 1)
    with pytest.raises(TypeError, match="regularizations"):
        R.RegularizationList([R.L1([W]), "L2"])
    with pytest.raises(ValueError, match="compat"):
        R.DaleLawL2([W], reference_weights=[W], compat="torch")
    with pytest.raises(ValueError, match="sign_func: expected one of 'softsign', 'sign'"):
        R.exc_ratio_loss(W, sign_func=3)  # callables are accepted (tests/test_regularization_api.py)
    with pytest.raises(ValueError, match="sign_func"):
        R.InhRatioTargetRegularization([W], sign_func="tanh")


def test_inputs_never_modified(rng):
    W, Rf = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
    W0, R0 = W.copy(), Rf.copy()
    for p in MATRIX_P:
        R.lp_norm_vjp(None, W, p)
        R.weights_distance_vjp(3.0, W, Rf, p)
    R.dale_law_l2_vjp(2.0, W, Rf)
    R.exc_ratio_loss_vjp(2.0, W)
    for reg in (R.L2([W], Lambda=3.0), R.DaleLawL2([W], reference_weights=[Rf]), R.WeightsDistance([W], [Rf])):
        reg.value_and_grad(2.0)
    np.testing.assert_array_equal(W, W0)
    np.testing.assert_array_equal(Rf, R0)


# ------------------------------------------------------------------------------------------------ spectral fast path
@pytest.mark.parametrize("shape", [(30, 30), (20, 45), (45, 20), (1, 6), (6, 1)])
def test_spectral_gradient_fast_path_matches_full_svd(rng, shape):
    """The gradient of sigma_max uses singular values + inverse iteration on the Gram matrix; it must agree
    with u1 v1^T from the full SVD (naive twin)."""
    W = rng.standard_normal(shape)
    U, s, Vt = np.linalg.svd(W, full_matrices=False)
    naive = np.outer(U[:, 0], Vt[0])
    g = R.lp_norm_vjp(None, W, 2)
    assert np.max(np.abs(g - naive)) <= 1e-12 * np.max(np.abs(naive))
    g32 = R.lp_norm_vjp(None, W.astype(np.float32), 2)
    assert g32.dtype == np.float32
    np.testing.assert_allclose(g32, naive, rtol=0, atol=1e-5 * np.max(np.abs(naive)))


def test_spectral_fast_path_is_taken_and_exact(rng, monkeypatch):
    """On matrices with a separated top singular value the value-and-gradient path never calls the SVD (the
    Gram/tridiagonal path answers), and the value and gradient still agree with the full SVD to 1e-12."""
    from refnsm.regularization import functional as F

    def no_svd(*a, **k):
        raise AssertionError("full SVD called on a matrix with a separated top singular value")

    for shape in [(2, 2), (3, 7), (7, 3), (64, 64), (40, 90), (90, 40)]:
        W = rng.standard_normal(shape)
        U, s, Vt = np.linalg.svd(W, full_matrices=False)
        assert (s[0] - s[1]) > 1e-3 * s[0]
        with monkeypatch.context() as m:
            m.setattr(F, "_svd", no_svd)
            v, g = F.norm_value_grad(W, 2, "neurotorch", True, "W")
            g2 = R.lp_norm_vjp(None, W, 2)
        np.testing.assert_array_equal(g, g2)
        assert abs(float(v) - s[0]) <= 1e-13 * s[0]
        naive = np.outer(U[:, 0], Vt[0])
        assert np.max(np.abs(g - naive)) <= 1e-12 * np.max(np.abs(naive))


def test_spectral_fast_path_falls_back_on_overflow(rng):
    """Entries near 1e200 overflow the Gram matrix: the SVD path answers instead, with the same gradient."""
    W = rng.standard_normal((5, 4))
    U, s, Vt = np.linalg.svd(W, full_matrices=False)
    g = R.lp_norm_vjp(None, W * 1e200, 2)
    assert np.isfinite(g).all()
    np.testing.assert_allclose(g, np.outer(U[:, 0], Vt[0]), rtol=0, atol=1e-12)
    assert abs(float(R.lp_norm(W * 1e200, 2)) / 1e200 - s[0]) <= 1e-13 * s[0]


@pytest.mark.parametrize("n", [2, 3, 10, 33])
def test_tridiagonal_top_eigpair_kernel(rng, n):
    """The kernel against LAPACK's full symmetric eigensolver: lambda_1 to rounding, an upper bracket of
    lambda_2 within 1e-8, the eigenvector (up to sign) and a rounding-level residual; also with a diagonal
    T (no reflectors) and with a zero off-diagonal splitting T into blocks."""
    from scipy.linalg import lapack

    from refnsm.regularization import _kernels as K

    A = rng.standard_normal((n + 2, n))
    G0 = A.T @ A
    Gs = [G0, np.diag(np.arange(1.0, n + 1.0))]
    if n >= 4:
        G1 = G0.copy()
        G1[: n // 2, n // 2:] = 0.0
        G1[n // 2:, : n // 2] = 0.0
        Gs.append(G1)
    for G in Gs:
        w, V = np.linalg.eigh(G)
        c, d, e, tau, info = lapack.dsytrd(np.asfortranarray(G), lower=1)
        assert info == 0
        x = np.empty(n)
        lam1, lam2_hi, resid = K.tridiagonal_top_eigpair(d, e, tau, c.T, x)
        assert abs(lam1 - w[-1]) <= 4 * n * np.finfo(float).eps * w[-1]
        assert w[-2] * (1 - 1e-14) <= lam2_hi <= w[-2] + 1e-8 * w[-1]
        assert resid <= 16 * n * np.finfo(float).eps * w[-1]
        assert abs(abs(x @ V[:, -1]) - 1.0) <= 1e-13
        np.testing.assert_allclose(G @ x, lam1 * x, rtol=0, atol=1e-12 * w[-1])


def test_spectral_gradient_near_tie_uses_full_svd(rng):
    Q1, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    Q2, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    W = Q1 @ np.diag([3.0, 3.0 * (1 - 1e-7), 2.0, 1.0, 0.5, 0.1]) @ Q2.T  # gap 1e-7 < 1e-4: full-SVD path
    U, s, Vt = np.linalg.svd(W)
    np.testing.assert_allclose(R.lp_norm_vjp(None, W, 2), np.outer(U[:, 0], Vt[0]), atol=1e-12)
    gradcheck(lambda w: R.lp_norm(w, 2), lambda g, w: R.lp_norm_vjp(g, w, 2), (W,), eps=1e-9, rtol=1e-3,
              atol=1e-6, raise_on_fail=True)


@pytest.mark.parametrize("p", [1, INF])
def test_weights_distance_ties_follow_torch(p):
    R0 = np.array([[0.5, 0.5], [-1.0, 2.0]])
    W = R0 + np.array([[1.0, -2.0], [2.0, 1.0]])  # |W - R| has tied column sums and tied row sums (3 and 3)
    gw, gr = R.weights_distance_vjp(None, W, R0, p)
    np.testing.assert_array_equal(gw, [[0.5, -0.5], [0.5, 0.5]])
    np.testing.assert_array_equal(gr, -gw)
    assert R.weights_distance(W, R0, p) == 3.0


def test_induced_norms_where_a_sum_overflows():
    """The fused one-call kernel hands a non-finite sum to the step-by-step path: the smallest column sum (p=-1)
    of a matrix with one overflowing column is still the finite one; the largest (p=1) is refused."""
    P = np.array([[1e308, 1.0], [1e308, -2.0]])
    assert float(R.lp_norm(P, -1)) == 3.0
    np.testing.assert_array_equal(R.lp_norm_vjp(None, P, -1), [[0.0, 1.0], [0.0, -1.0]])
    with pytest.raises(_checks.NonFiniteResultError):
        R.lp_norm(P, 1)
    with pytest.raises(ValueError, match=r"x: expected finite values, got inf at index \(0, 1\)"):
        R.lp_norm(np.array([[1.0, np.inf], [2.0, 3.0]]), -1)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("scale", [1.0, 1e-160, 1e160, 2.0 ** -140, 0.0])
def test_frobenius_norm_one_pass_and_scaled_paths(dtype, scale):
    """'fro' takes one pass when the sum of squares is in range and rescales otherwise; both agree with an exact
    sum (math.fsum of the exact float64 squares of the rescaled entries)."""
    import math

    base = np.array([[3.0, -4.0, 12.0], [0.5, 0.25, -84.0]])
    P = (base * scale).astype(dtype)
    if not np.all(np.isfinite(P)):
        pytest.skip("the scaled matrix is not representable in this dtype")
    a = np.abs(P.astype(np.float64)).ravel()
    amax = a.max()
    exact = 0.0 if amax == 0 else amax * math.sqrt(math.fsum((x / amax) ** 2 for x in a))
    got = float(R.lp_norm(P, "fro"))
    # within 4 eps, or 2 units in the last place of the dtype where the norm itself is subnormal
    assert abs(got - exact) <= max(4 * float(np.finfo(dtype).eps) * exact, 2 * float(np.spacing(dtype(exact))))


# ------------------------------------------------------------------- gradients written already times Lambda * grad_out
def _scaled_cases(rng, dtype):
    W = rng.standard_normal((5, 4)).astype(dtype)
    ref = rng.standard_normal((5, 4)).astype(dtype)
    tie = np.array([[1.0, -2.0], [2.0, 1.0], [0.0, 0.0]], dtype=dtype)  # tied column sums (3, 3) and row sums
    v = rng.standard_normal(6).astype(dtype)
    out = []
    for p in (1, -1, 2, -2, INF, -INF, "fro", "nuc"):
        params = {"W": W} if p in ("fro", "nuc") else {"W": W, "v": v}
        out.append((f"Lp({p})", lambda lam, p=p, params=params: R.Lp(params, lam, p=p)))
        if p in (1, INF, -1, "fro"):
            out.append((f"Lp({p}) tie", lambda lam, p=p: R.Lp({"T": tie}, lam, p=p)))
    out.append(("Lp(1) entrywise", lambda lam: R.Lp({"W": W}, lam, p=1, mode="entrywise")))
    out.append(("fro of zeros", lambda lam: R.Lp({"Z": np.zeros((3, 3), dtype)}, lam, p="fro")))
    out.append(("DaleLawL2", lambda lam: R.DaleLawL2({"W": W}, 0.3, [ref], lam)))
    out.append(("Exc", lambda lam: R.ExcRatioTargetRegularization({"W": W}, 0.8, lam)))
    out.append(("Exc callable", lambda lam: R.ExcRatioTargetRegularization(
        {"W": W}, 0.8, lam, sign_func=np.tanh, sign_func_grad=lambda x: 1 - np.tanh(x) ** 2)))
    for p in (1, INF, 2, "fro"):
        out.append((f"WD({p})", lambda lam, p=p: R.WeightsDistance({"W": W}, [ref], lam, p)))
    out.append(("WD(1) tie", lambda lam: R.WeightsDistance({"T": tie}, [np.zeros_like(tie)], lam, 1)))
    return out


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("lam, gbar", [(0.1, 1.0), (0.37, -2.5), (1.0, 3.0), (0.0, 1.0)])
def test_gradients_scaled_in_the_kernels_equal_scaling_afterwards(rng, dtype, lam, gbar):
    """The kernels write the gradient times Lambda * grad_out in the pass that computes it; that equals the
    unit-scale gradient (Lambda = 1, grad_out = 1: validated elsewhere against finite differences and torch's tie
    rules) times Lambda * grad_out, to rounding."""
    eps = float(np.finfo(dtype).eps)
    for name, make in _scaled_cases(rng, dtype):
        unit = make(1.0).value_and_grad()[1]
        reg = make(lam)
        value, grads = reg.value_and_grad(None if gbar == 1.0 else gbar)
        assert set(grads) == set(unit), name
        for k, g in grads.items():
            assert g.dtype == dtype, name
            expected = unit[k].astype(np.float64) * (lam * gbar)
            np.testing.assert_allclose(g, expected, rtol=8 * eps, atol=8 * eps * np.abs(expected).max(),
                                       err_msg=name)
        assert reg.grads is grads


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_vjps_scale_by_grad_out_in_the_kernels(rng, dtype):
    W = rng.standard_normal((4, 6)).astype(dtype)
    ref = rng.standard_normal((4, 6)).astype(dtype)
    eps = float(np.finfo(dtype).eps)
    pairs = [(lambda g: R.lp_norm_vjp(g, W, p), None) for p in (1, INF, 2, "fro", "nuc", -2)]
    pairs += [(lambda g: R.dale_law_l2_vjp(g, W, ref, 0.3), None), (lambda g: R.exc_ratio_loss_vjp(g, W, 0.8), None),
              (lambda g: R.weights_distance_vjp(g, W, ref, 1)[0], None),
              (lambda g: R.weights_distance_vjp(g, W, ref, 2)[0], None)]
    for f, _ in pairs:
        unit = f(None).astype(np.float64)
        np.testing.assert_allclose(f(-1.75), -1.75 * unit, rtol=8 * eps, atol=8 * eps * np.abs(unit).max())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_scaled_copy_kernel_matches_naive(rng, dtype):
    from refnsm.regularization import _kernels as K

    for shape in [(0, 3), (1, 1), (3, 5), (64, 64)]:
        X = rng.standard_normal(shape).astype(dtype)
        G = np.empty_like(X)
        K.scaled_copy(X, 0.3, G)
        np.testing.assert_array_equal(G, (X.astype(np.float64) * 0.3).astype(dtype))


def test_frobenius_gradient_tiny_norm_huge_scale():
    """scale / ||P|| overflows while every entry of scale * P / ||P|| is representable: the gradient divides first."""
    P = np.array([[3e-310, -4e-310]])
    reg = R.Lp({"W": P}, 1e300, p="fro")
    np.testing.assert_allclose(reg.value_and_grad()[1]["W"], [[0.6e300, -0.8e300]], rtol=1e-12)


def test_a_subclass_with_its_own_terms_is_scaled_and_its_arrays_untouched():
    kept = np.array([[1.0, -2.0]])

    class Mine(R.BaseRegularization):
        def _terms(self, want_grad):
            return 3.0, {"W": kept}

    reg = Mine({"W": np.zeros((1, 2))}, Lambda=0.5)
    value, grads = reg.value_and_grad(2.0)
    assert value == 1.5
    np.testing.assert_array_equal(grads["W"], [[1.0, -2.0]])
    np.testing.assert_array_equal(kept, [[1.0, -2.0]])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (67, 131)])
def test_reassociated_sum_kernels_match_exact_sums(rng, dtype, shape):
    """The kernels whose sums may be reassociated (split over vector lanes) agree with math.fsum of the float64
    terms to a few ulps, and a NaN or Inf entry still reaches their result."""
    from refnsm.regularization import _kernels as K

    P = rng.standard_normal(shape).astype(dtype)
    Q = rng.standard_normal(shape).astype(dtype)
    S = np.sign(Q)
    p64, q64, s64 = (a.astype(np.float64) for a in (P, Q, S))
    tol = 1e-14
    out = np.empty(shape[0])
    K.abs_row_sums(P, out)
    np.testing.assert_allclose(out, [math.fsum(np.abs(r)) for r in p64], rtol=tol)
    K.absdiff_row_sums(P, Q, out)
    np.testing.assert_allclose(out, [math.fsum(np.abs(a - b)) for a, b in zip(p64, q64)], rtol=tol)
    ss = math.fsum((p64 / (1 + np.abs(p64))).ravel()) / P.size
    assert K.softsign_mean(P) == pytest.approx(ss, rel=tol, abs=1e-15)
    G = np.empty_like(P)
    v = K.dale_l2(P, S, 0.3, G, True, 0.5)
    exact = 0.3 * math.fsum((p64 ** 2).ravel()) - 0.7 * math.fsum((p64 * s64).ravel())
    assert v == pytest.approx(exact, rel=tol, abs=1e-13 * math.fsum(np.abs(p64).ravel()))
    np.testing.assert_allclose(G, ((0.6 * p64 - 0.7 * s64) * 0.5).astype(dtype), rtol=float(np.finfo(dtype).eps))
    for bad in (np.nan, np.inf):
        B = P.copy()
        B.flat[B.size // 2] = bad
        K.abs_row_sums(B, out)
        assert not np.isfinite(out).all()
        K.absdiff_row_sums(B, Q, out)
        assert not np.isfinite(out).all()
        assert not math.isfinite(K.softsign_mean(B))  # inf / (1 + inf) is NaN
        assert not math.isfinite(K.dale_l2(B, S, 0.3, G, False, 1.0))


@pytest.mark.parametrize("n", [2, 5, 33, 64])
def test_tridiagonal_top_eigpair_gap_early_stop(rng, n):
    """With gap > 0, lambda_2's bisection stops once the gap test is decided: a separated top eigenvalue returns an
    upper bound of lambda_2 below (1 - 1.01 gap) lambda_1; a near tie returns a bound that fails the caller's test;
    lambda_1, the eigenvector and the residual are as accurate as without the early stop."""
    from scipy.linalg import lapack

    from refnsm.regularization import _kernels as K

    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    gap = 2e-4
    for top2 in (0.5, 1 - 1e-5, 1.0):  # lambda_2 / lambda_1: separated, near tie, exact tie
        w_true = np.concatenate([np.linspace(0.1, 0.4, n - 2), [top2, 1.0]]) if n > 2 else np.array([top2, 1.0])
        G = (Q * w_true) @ Q.T
        G = 0.5 * (G + G.T)
        w, V = np.linalg.eigh(G)
        c, d, e, tau, info = lapack.dsytrd(np.asfortranarray(G), lower=1)
        x = np.empty(n)
        lam1, lam2_hi, resid = K.tridiagonal_top_eigpair(d, e, tau, c.T, x, gap)
        assert abs(lam1 - w[-1]) <= 4 * n * np.finfo(float).eps * w[-1]
        assert lam2_hi >= w[-2] * (1 - 1e-14)
        separated = lam1 - lam2_hi > gap * lam1
        assert separated == (top2 == 0.5)
        if separated:
            assert lam2_hi < (1 - 1.01 * gap) * lam1
            assert resid <= 16 * n * np.finfo(float).eps * w[-1]
            assert abs(abs(x @ V[:, -1]) - 1.0) <= 1e-13


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("p", [1, -1, INF, -INF])
def test_distance_induced_grad_kernel_matches_naive(rng, dtype, p):
    """The one-call kernel for the induced distance norms against NumPy on |W - R| (ties included), and its
    non-finite signal (NaN entry, overflowing difference) that sends the caller to the step-by-step path."""
    from refnsm.regularization import _kernels as K

    by_cols, largest = p in (1, -1), p > 0
    W = rng.standard_normal((6, 4)).astype(dtype)
    Rf = rng.standard_normal((6, 4)).astype(dtype)
    T = np.array([[2.0, -1.0], [1.0, 2.0], [0.5, 0.5]], dtype=dtype)  # |T - 0.5|: tied column and row sums
    for P, Q in ((W, Rf), (T, np.full_like(T, 0.5)), (W[:1, :1], Rf[:1, :1])):
        D = np.abs(P.astype(np.float64) - Q.astype(np.float64))
        sums = D.sum(axis=0 if by_cols else 1)
        v = sums.max() if largest else sums.min()
        tied = sums == v
        wts = np.where(tied, 0.3 / tied.sum(), 0.0)
        expected = np.sign(P.astype(np.float64) - Q) * (wts[None, :] if by_cols else wts[:, None])
        G = np.empty_like(P)
        got, finite = K.distance_induced_grad(P, Q, by_cols, largest, True, G, 0.3)
        assert finite
        assert got == pytest.approx(v, rel=1e-13)
        np.testing.assert_allclose(G, expected.astype(dtype), rtol=float(np.finfo(dtype).eps))
    B = W.copy()
    B[2, 1] = np.nan
    assert not K.distance_induced_grad(B, Rf, by_cols, largest, False, np.empty((0, 0), dtype), 1.0)[1]
    if dtype == np.float64:
        big = np.array([[1e308, 1.0], [1e308, 2.0]])
        assert not K.distance_induced_grad(big, -big, by_cols, largest, False, np.empty((0, 0)), 1.0)[1]
    with pytest.raises(ValueError, match=r"w: expected finite values, got nan at index \(2, 1\)"):
        R.weights_distance(B, Rf, p)
