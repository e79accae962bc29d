"""neuromancer's slim.linear items added for issue 14: Butterfly, provide_weights, SpectralLinear.Sigma /
Umultiply / Vmultiply, L0Linear.cdf_qz / quantile_concrete / get_eps, orthogonal_error, PowerBoundLinear's
positional max_p and eig_v_estimate, SchurDecompositionLinear.build_T, eig_vjp, BoundedNormLinear's other orders."""

import math

import numpy as np
import pytest

import refnsm.linear as L
from refnsm.gradcheck import gradcheck


def _rng(seed=0):
    return np.random.default_rng(seed)


def _param_gradcheck(m, key, value_of, vjp_of):
    """Finite differences of a scalar <G, value_of(m)> in m.params[key] against vjp_of(G)[key]."""
    G = _rng(9).standard_normal(np.shape(value_of(m)))

    def f(p):
        return np.sum(G * value_of(m.with_params(**{key: p})))

    def vjp(g, p):
        return g * vjp_of(m.with_params(**{key: p}), G)[key]

    gradcheck(f, vjp, [m.params[key].copy()], raise_on_fail=True)


# ------------------------------------------------------------------------------------------------ Butterfly
def test_butterfly_is_butterfly_linear_with_the_module_names():
    b = L.Butterfly(5, 3, rng=0)
    assert b.use_bias and set(b.params) == {"twiddle", "bias"} and b.params["bias"].shape == (3,)
    assert (b.in_size, b.out_size) == (5, 3)
    ref = L.ButterflyLinear(5, 3, False, params={"linmap.twiddle": b.params["twiddle"]})
    x = _rng(1).standard_normal((4, 5))
    np.testing.assert_allclose(b.forward(x), x @ ref.effective_W() + b.params["bias"], rtol=1e-14)
    gy = _rng(2).standard_normal((4, 3))
    gx = b.backward(gy)
    np.testing.assert_allclose(gx, gy @ ref.effective_W().T, rtol=1e-14)
    np.testing.assert_allclose(b.grads["bias"], gy.sum(0), rtol=1e-14)
    x6 = _rng(4).standard_normal((3, 6))
    for tied in (True, False):
        m = L.Butterfly(6, 4, tied_weight=tied, increasing_stride=not tied, rng=3)

        def f(tw):
            return m.with_params(twiddle=tw).forward(x6)

        def vjp(g, tw):
            mm = m.with_params(twiddle=tw)
            mm.forward(x6)
            mm.backward(g)
            return mm.grads["twiddle"]
        gradcheck(f, vjp, [m.params["twiddle"].copy()], raise_on_fail=True)
    old = b.params["bias"].copy()
    b.reset_parameters(rng=5)
    assert not np.array_equal(old, b.params["bias"]) and np.all(np.abs(b.params["bias"]) <= 1 / math.sqrt(5))
    assert L.Butterfly(4, 4, bias=False).params.keys() == {"twiddle"}
    with pytest.raises(ValueError, match="complex"):
        L.Butterfly(4, 4, complex=True)
    with pytest.raises(TypeError, match="tied_weight"):
        L.Butterfly(4, 4, tied_weight=1)
    c = L.Butterfly(5, 3, compat="neuromancer", params={"twiddle": b.params["twiddle"], "bias": np.array([0.3])})
    # upstream's torch.Tensor((out,)): a scalar bias
    assert c.params["bias"].shape == (1,)
    np.testing.assert_allclose(c.forward(x), x @ ref.effective_W() + c.params["bias"][0], rtol=1e-14)
    c.backward(gy)
    np.testing.assert_allclose(c.grads["bias"], [gy.sum()], rtol=1e-14)


# ------------------------------------------------------------------------------------------ provide_weights
def test_provide_weights_gives_a_plain_trainable_weight():
    class Custom(L.LinearBase):
        pass

    m = Custom(3, 5, rng=0)
    assert m.provide_weights and m.params["weight"].shape == (3, 5)
    assert np.all(np.abs(m.params["weight"]) <= 1 / math.sqrt(5))
    x = _rng(1).standard_normal((2, 3))
    np.testing.assert_array_equal(m.forward(x), x @ m.params["weight"])
    _param_gradcheck(m, "weight", lambda mm: mm.effective_W(), lambda mm, G: mm.effective_W_vjp(G))
    with pytest.raises(NotImplementedError, match="provide_weights=False"):
        Custom(3, 5, provide_weights=False)
    with pytest.raises(TypeError, match="provide_weights"):
        Custom(3, 5, provide_weights="yes")
    assert "weight" not in L.SpectralLinear(3, 3, provide_weights=True).params   # maps define their own


# ---------------------------------------------------------------------------------- SpectralLinear factors
@pytest.mark.parametrize("cls, shape", [(L.SpectralLinear, (5, 3)), (L.SpectralLinear, (3, 4)),
                                        (L.SymmetricSpectralLinear, (4, 4))])
def test_spectral_factor_methods_and_vjps(cls, shape):
    m = cls(*shape, rng=1)
    m = m.with_params(p=2.0 * _rng(2).standard_normal(m.params["p"].shape))
    W = m.effective_W()
    I_in, I_out = np.eye(shape[0]), np.eye(shape[1])
    np.testing.assert_allclose(m.Vmultiply(m.Umultiply(I_in) @ m.Sigma()), W, rtol=1e-13, atol=1e-15)
    s = np.linalg.svd(m.Sigma(), compute_uv=False)
    np.testing.assert_allclose(np.sort(s), np.sort(m.singular_values()), rtol=1e-14)
    np.testing.assert_allclose(m.Umultiply(I_in) @ m.Umultiply(I_in).T, I_in, atol=1e-13)   # orthogonal
    np.testing.assert_allclose(m.Vmultiply(I_out) @ m.Vmultiply(I_out).T, I_out, atol=1e-13)
    _param_gradcheck(m, "p", lambda mm: mm.Sigma(), lambda mm, G: mm.Sigma_vjp(G))
    xu, xv = _rng(3).standard_normal((2, shape[0])), _rng(4).standard_normal((2, shape[1]))
    for key in [k for k in ("U", "V") if k in m.params]:
        _param_gradcheck(m, key, lambda mm: mm.Umultiply(xu), lambda mm, G: mm.Umultiply_vjp(G, xu)[1])
        _param_gradcheck(m, key, lambda mm: mm.Vmultiply(xv), lambda mm, G: mm.Vmultiply_vjp(G, xv)[1])
    gradcheck(m.Umultiply, lambda g, x: m.Umultiply_vjp(g, x)[0], [xu], raise_on_fail=True)
    gradcheck(m.Vmultiply, lambda g, x: m.Vmultiply_vjp(g, x)[0], [xv], raise_on_fail=True)
    with pytest.raises(ValueError, match=r"x: expected shape \[batch"):
        m.Umultiply(np.ones((2, shape[0] + 1)))
    with pytest.raises(ValueError, match="grad_out"):
        m.Vmultiply_vjp(np.ones((3, shape[1])), xv)
    with pytest.raises(ValueError, match="grad_out"):
        m.Sigma_vjp(np.ones((1, 1)))


# ----------------------------------------------------------------------------------------------- L0Linear
def test_l0_concrete_helpers():
    m = L.L0Linear(3, 4, rng=0)
    a, b, T = m.limit_a, m.limit_b, m.temperature
    alpha = m.params["qz_loga"]
    # independent formulas (Louizos et al., eq. 13 and the quantile of the stretched concrete)
    xn = (0.0 - a) / (b - a)
    np.testing.assert_allclose(m.cdf_qz(0.0), np.clip(1 / (1 + np.exp(-(T * np.log(xn / (1 - xn)) - alpha))),
                                                       1e-6, 1 - 1e-6), rtol=1e-14)
    u = _rng(1).uniform(0.05, 0.95, (3, 4))
    np.testing.assert_allclose(m.quantile_concrete(u),
                               (b - a) / (1 + np.exp(-(np.log(u / (1 - u)) + alpha) / T)) + a, rtol=1e-14)
    # consistency: the CDF of the quantile is the identity (away from the clamps)
    np.testing.assert_allclose(m.cdf_qz(m.quantile_concrete(u)[0, 0])[0, 0], u[0, 0], rtol=1e-12)
    _param_gradcheck(m, "qz_loga", lambda mm: mm.cdf_qz(0.3), lambda mm, G: mm.cdf_qz_vjp(G, 0.3)[1])
    _param_gradcheck(m, "qz_loga", lambda mm: mm.quantile_concrete(u), lambda mm, G: mm.quantile_concrete_vjp(G, u)[1])
    gradcheck(m.quantile_concrete, lambda g, x: m.quantile_concrete_vjp(g, x)[0], [u], raise_on_fail=True)
    gradcheck(m.cdf_qz, lambda g, x: m.cdf_qz_vjp(g, x)[0], [np.array(0.2)], grad_out=np.ones((3, 4)),
              raise_on_fail=True)
    e = m.get_eps((3, 4))
    assert e.shape == (3, 4) and e.min() >= m.epsilon and e.max() < 1 - m.epsilon
    assert L.L0Linear(3, 4, dtype=np.float32).get_eps([2, 2]).dtype == np.float32
    with pytest.raises(ValueError, match=r"x: expected every entry in the open interval \(0.0, 1.0\)"):
        m.quantile_concrete(1.0)
    with pytest.raises(ValueError, match=r"x: expected every entry in the open interval \(-0.1, 1.1\)"):
        m.cdf_qz(-0.2)
    with pytest.raises(TypeError, match="size"):
        m.get_eps(3)
    with pytest.raises(ValueError, match="grad_out"):
        m.cdf_qz_vjp(np.ones(3), 0.0)


# ----------------------------------------------------------------------------- orthogonal_error, power bound
def test_orthogonal_error_method():
    m = L.SVDLinear(4, 3, rng=0)
    A = _rng(1).standard_normal((4, 4))
    n = np.linalg.norm(np.eye(4) - A @ A.T) + np.linalg.norm(np.eye(4) - A.T @ A)
    assert m.orthogonal_error(A) == pytest.approx(n, rel=1e-14)
    gradcheck(lambda a: np.array(m.orthogonal_error(a)), m.orthogonal_error_vjp, [A], raise_on_fail=True)
    assert m.reg_error() == pytest.approx(m.orthogonal_error(m.params["U"]) + m.orthogonal_error(m.params["V"]),
                                          rel=1e-14)
    assert hasattr(L.SymmetricSVDLinear(3, 3), "orthogonal_error")
    with pytest.raises(ValueError, match="A: expected a square"):
        m.orthogonal_error(np.ones((2, 3)))


def test_power_bound_positional_max_p_and_eig_v_estimate():
    m = L.PowerBoundLinear(4, 4, 0.5, 30, True, rng=0)
    assert (m.max_p, m.pwr_iters, m.use_bias) == (0.5, 30, True)
    a0, b0 = _rng(1).standard_normal(4), _rng(2).standard_normal(4)
    m.set_start(a0, b0)
    a, b = m.eig_v_estimate()
    ea, eb = a0.copy(), b0.copy()   # independent power iteration
    W = m.params["W"]
    for _ in range(30):
        ea, eb = W @ ea, W @ eb
        nrm = np.sqrt(ea @ ea + eb @ eb)
        ea, eb = ea / nrm, eb / nrm
    np.testing.assert_allclose(a, ea, rtol=1e-13)
    np.testing.assert_allclose(b, eb, rtol=1e-13)
    with pytest.raises(TypeError, match="max_p: expected a real number, got the bool"):
        L.PowerBoundLinear(4, 4, True)


def test_schur_build_T():
    m = L.SchurDecompositionLinear(4, 4, rng=0)
    th, g = m.params["theta"], m.params["gamma"]
    T = m.build_T()
    for k in range(2):
        np.testing.assert_allclose(T[2 * k:2 * k + 2, 2 * k:2 * k + 2],
                                   g[k] * np.array([[np.cos(th[k]), -np.sin(th[k])], [np.sin(th[k]), np.cos(th[k])]]),
                                   rtol=1e-15)
    buf = np.full((4, 4), 7.0)
    out = m.build_T(buf)
    assert out is buf and buf[0, 2] == 7.0 and buf[0, 0] == T[0, 0]     # only the blocks are written, as upstream
    m = m.with_params(gamma=_rng(3).uniform(0.5, 1.5, 2))
    _param_gradcheck(m, "gamma", lambda mm: mm.build_T(), lambda mm, G: mm.build_T_vjp(G))
    _param_gradcheck(m, "theta", lambda mm: mm.build_T(), lambda mm, G: mm.build_T_vjp(G))
    with pytest.raises(ValueError, match="T: expected a writeable"):
        m.build_T(np.zeros((3, 3)))


# ------------------------------------------------------------------------------------------------- eig VJP
def _eig_loss(W, a, b, c):
    lam, V = np.linalg.eig(W)
    return np.sum(a * lam.real + b * lam.imag) + np.sum(c * np.abs(V) ** 2)


def test_eig_vjp_finite_differences_real_and_complex_eigenvalues():
    rng = _rng(5)
    for W in (rng.standard_normal((5, 5)), rng.standard_normal((4, 4)) + 3 * np.diag([1, 2, 3, 4.0])):
        n = W.shape[0]
        lam, V = np.linalg.eig(W)
        # a loss invariant to the eigenvectors' phases and to the order LAPACK returns them in: symmetric in the
        # eigenpairs through sorted-free sums
        a, b = rng.standard_normal(), rng.standard_normal()
        C = rng.standard_normal((n, 1))

        def f(W):
            lam, V = np.linalg.eig(W)
            return np.array(np.sum(a * lam.real + b * lam.imag ** 2) + np.sum(C * np.abs(V) ** 2))

        def vjp(g, W):
            lam, V = np.linalg.eig(W)
            gl = a + 1j * 2 * b * lam.imag
            gv = 2 * C * V
            return g * L.eig_vjp(gl, gv, W)

        gradcheck(f, vjp, [W], raise_on_fail=True)
    # eigenvalues only, through a map's parameters: L = Re sum(lambda^2) = tr(W^2), whose torch-convention
    # cotangent is dL/dRe + i dL/dIm = 2 conj(lambda)
    m = L.Linear(4, 4, rng=1)
    _param_gradcheck(m, "weight", lambda mm: np.array(np.real(np.sum(np.linalg.eigvals(mm.effective_W()) ** 2))),
                     lambda mm, G: {k: G * v for k, v in
                                    mm.eig_vjp(2 * np.conj(np.linalg.eigvals(mm.effective_W()))).items()})


def test_eig_vjp_degenerate_and_bad_input():
    with pytest.raises(ValueError, match="repeated eigenvalues"):
        L.eig_vjp(np.ones(3), np.ones((3, 3)), np.eye(3))
    L.eig_vjp(np.ones(3), None, np.eye(3))                    # eigenvalues only: defined for a diagonalisable W
    with pytest.raises(ValueError, match="defective"):
        L.eig_vjp(np.ones(2), None, np.array([[1.0, 1.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="grad_w: expected shape"):
        L.eig_vjp(np.ones(2), None, np.eye(3))
    with pytest.raises(ValueError, match="grad_v: expected shape"):
        L.eig_vjp(np.ones(3), np.ones((2, 2)), np.diag([1.0, 2, 3]))
    with pytest.raises(ValueError, match="W: expected a square"):
        L.eig_vjp(np.ones(3), None, np.ones((3, 2)))
    with pytest.raises(ValueError, match="eig: expected a square map"):
        L.Linear(3, 2).eig_vjp(np.ones(2))


# ------------------------------------------------------------------------------------ BoundedNorm orders
@pytest.mark.parametrize("p, norm", [(math.inf, lambda A: np.abs(A).max()), (-math.inf, lambda A: np.abs(A).min()),
                                     ("fro", np.linalg.norm), ("nuc", lambda A: np.linalg.norm(A, "nuc")),
                                     (3, lambda A: np.sum(np.abs(A) ** 3) ** (1 / 3))])
def test_bounded_norm_other_orders(p, norm):
    A = _rng(6).standard_normal((3, 4))
    for lo, hi in ((0.01, 0.05), (50.0, 60.0)):   # above and below the band
        m = L.BoundedNormLinear(4, 3, sigma_min=lo, sigma_max=hi, p=p, params={"weight": A})
        n = norm(A)
        assert m.reg_error() == pytest.approx(max(n - hi, 0) + max(lo - n, 0), rel=1e-13)
        _param_gradcheck(m, "weight", lambda mm: np.array(mm.reg_error()), lambda mm, G: mm.reg_error_vjp(G))
    with pytest.raises(ValueError, match="p: expected a real >= 1, inf, -inf, 'fro' or 'nuc'"):
        L.BoundedNormLinear(4, 3, p="spectral")
    with pytest.raises(ValueError, match="nan"):
        L.BoundedNormLinear(4, 3, p=float("nan"))
    with pytest.raises(TypeError, match="p: expected"):
        L.BoundedNormLinear(4, 3, p=True)
