"""Property tests: each map's guarantee, checked on random sizes and random parameters (hypothesis).

Parameters are drawn well away from the initialisation (scaled normal draws) so that the guarantee is tested
where it matters, not only at the benign initial point.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import refnsm.linear as L

sizes = st.integers(1, 7)
seeds = st.integers(0, 2**31 - 1)
FEW = settings(max_examples=25)


def _scramble(m, seed, scale=3.0):
    """Replace every trainable parameter by a wide random draw (keeping Householder upper triangles)."""
    gen = np.random.default_rng(seed)
    new = {}
    for k in m.trainable:
        v = m.params[k]
        new[k] = scale * gen.standard_normal(v.shape)
    return m.with_params(**new)


@FEW
@given(sizes, sizes, seeds)
def test_stochastic_rows_and_columns_sum_to_one(n, k, seed):
    W = _scramble(L.RightStochasticLinear(n, k, rng=seed), seed).effective_W()
    assert np.all(W > 0)
    np.testing.assert_allclose(W.sum(axis=1), 1.0, rtol=1e-14)
    W = _scramble(L.LeftStochasticLinear(n, k, rng=seed), seed).effective_W()
    assert np.all(W > 0)
    np.testing.assert_allclose(W.sum(axis=0), 1.0, rtol=1e-14)
    if n == k:
        assert np.max(np.abs(np.linalg.eigvals(W))) == pytest.approx(1.0, rel=1e-10)


@FEW
@given(sizes, sizes, seeds)
def test_perron_frobenius_row_sums_and_spectral_radius(n, k, seed):
    m = _scramble(L.PerronFrobeniusLinear(n, k, sigma_min=0.3, sigma_max=0.9, rng=seed), seed)
    W = m.effective_W()
    rows = W.sum(axis=1)
    assert np.all(W > 0)
    assert np.all(rows > 0.3 - 1e-12) and np.all(rows < 0.9 + 1e-12)
    if n == k:
        rho = np.max(np.abs(np.linalg.eigvals(W)))
        assert rows.min() - 1e-10 <= rho <= rows.max() + 1e-10
        assert rho < 0.9 + 1e-12


@FEW
@given(sizes, sizes, seeds)
def test_stable_split_row_sums(n, k, seed):
    W = _scramble(L.StableSplitLinear(n, k, sigma_min=0.2, sigma_max=0.8, rng=seed), seed).effective_W()
    rows = W.sum(axis=1)
    assert np.all(rows > 0.2 - 1e-12) and np.all(rows < 0.8 + 1e-12)


@FEW
@given(sizes, sizes, seeds)
def test_nonnegative_and_identity(n, k, seed):
    assert np.all(_scramble(L.NonNegativeLinear(n, k, rng=seed), seed).effective_W() >= 0)
    np.testing.assert_array_equal(L.IdentityLinear(n, k).effective_W(), np.eye(n, k))
    assert L.IdentityLinear(n, k).trainable == ()


@FEW
@given(sizes, seeds)
def test_symmetric_skew_damped_psd(n, seed):
    W = _scramble(L.SymmetricLinear(n, n, rng=seed), seed).effective_W()
    np.testing.assert_array_equal(W, W.T)
    W = _scramble(L.SkewSymmetricLinear(n, n, rng=seed), seed).effective_W()
    np.testing.assert_array_equal(W, -W.T)
    assert np.all(np.abs(np.linalg.eigvals(W).real) < 1e-10 * (1 + np.abs(W).max()))
    m = _scramble(L.DampedSkewSymmetricLinear(n, n, rng=seed), seed)
    ev = np.linalg.eigvals(m.effective_W())
    np.testing.assert_allclose(ev.real, m.params["gamma"][0, 0], atol=1e-9 * (1 + np.abs(m.effective_W()).max()))
    W = _scramble(L.PSDLinear(n, n, rng=seed), seed).effective_W()
    np.testing.assert_allclose(W, W.T, rtol=1e-14, atol=1e-14)
    assert np.linalg.eigvalsh(W).min() >= -1e-12 * np.abs(W).max()


@FEW
@given(st.integers(1, 4), seeds)
def test_symplectic_is_symplectic(h, seed):
    n = 2 * h
    m = _scramble(L.SymplecticLinear(n, n, rng=seed), seed, scale=1.0)
    W = m.effective_W()
    J = np.block([[np.zeros((h, h)), np.eye(h)], [-np.eye(h), np.zeros((h, h))]])
    np.testing.assert_allclose(W.T @ J @ W, J, atol=1e-10 * (1 + np.abs(W).max() ** 2))
    assert np.linalg.det(W) == pytest.approx(1.0, rel=1e-8, abs=1e-8)


def test_symplectic_neuromancer_compat_is_skew_but_not_symplectic():
    m = L.SymplecticLinear(4, 4, rng=0, compat="neuromancer")
    W = m.effective_W()
    np.testing.assert_array_equal(W, -W.T)
    J = np.block([[np.zeros((2, 2)), np.eye(2)], [-np.eye(2), np.zeros((2, 2))]])
    assert np.abs(W.T @ J @ W - J).max() > 0.1


@FEW
@given(st.integers(1, 7), seeds, st.booleans())
def test_gershgorin_discs(n, seed, real):
    m = _scramble(L.GershgorinLinear(n, n, sigma_min=-0.5, sigma_max=2.0, real=real, rng=seed), seed)
    W = m.effective_W()
    mu, rad = 0.75, 1.25
    off = np.abs(W).sum(axis=1) - np.abs(np.diag(W))
    assert np.all(np.abs(np.diag(W) - mu) + off < rad + 1e-12)  # every Gershgorin disc inside |z - mu| < rad
    ev = np.linalg.eigvals(W)
    assert np.all(np.abs(ev - mu) < rad + 1e-10)
    if real:
        np.testing.assert_allclose(W, W.T, rtol=1e-15, atol=1e-15)
        assert np.all(np.abs(ev.imag) < 1e-12)


@FEW
@given(sizes, seeds)
def test_orthogonal(n, seed):
    m = L.OrthogonalLinear(n, n, rng=seed)
    m = m.with_params(U=np.triu(3 * np.random.default_rng(seed).standard_normal((n, n))) + np.eye(n))
    W = m.effective_W()
    np.testing.assert_allclose(W.T @ W, np.eye(n), atol=1e-12)
    assert np.linalg.det(W) == pytest.approx((-1) ** n, abs=1e-10)


@FEW
@given(sizes, sizes, seeds)
def test_spectral_singular_values_exact(n, k, seed):
    m = L.SpectralLinear(n, k, sigma_min=0.2, sigma_max=1.5, rng=seed)
    gen = np.random.default_rng(seed)
    m = m.with_params(p=3 * gen.standard_normal(min(n, k)), U=np.triu(gen.standard_normal((n, n))) + np.eye(n),
                      V=np.triu(gen.standard_normal((k, k))) + np.eye(k))
    sv = np.linalg.svd(m.effective_W(), compute_uv=False)
    np.testing.assert_allclose(np.sort(sv), np.sort(m.singular_values()), rtol=1e-11, atol=1e-13)
    assert np.all((sv > 0.2 - 1e-12) & (sv < 1.5 + 1e-12))


@FEW
@given(sizes, seeds)
def test_symmetric_spectral_eigenvalues_exact(n, seed):
    gen = np.random.default_rng(seed)
    m = L.SymmetricSpectralLinear(n, n, sigma_min=-1.0, sigma_max=0.5, rng=seed)
    m = m.with_params(p=3 * gen.standard_normal(n), V=np.triu(gen.standard_normal((n, n))) + np.eye(n))
    W = m.effective_W()
    np.testing.assert_allclose(W, W.T, atol=1e-13)
    np.testing.assert_allclose(np.linalg.eigvalsh(W), np.sort(m.singular_values()), atol=1e-12)


@FEW
@given(sizes, sizes, seeds)
def test_svd_singular_values_while_orthogonal(n, k, seed):
    m = L.SVDLinear(n, k, sigma_min=0.1, sigma_max=1.0, rng=seed)
    m = m.with_params(sigma=3 * np.random.default_rng(seed).standard_normal((n, 1)))
    sv = np.linalg.svd(m.effective_W(), compute_uv=False)
    np.testing.assert_allclose(np.sort(sv), np.sort(m.singular_values()), rtol=1e-12)
    assert m.reg_error() < 1e-12  # orthogonal factors: the penalty vanishes


@FEW
@given(sizes, seeds)
def test_symmetric_svd_symmetric_by_default_not_in_compat(n, seed):
    m = L.SymmetricSVDLinear(n, n, rng=seed)
    W = _scramble(m, seed, scale=1.0).effective_W()
    np.testing.assert_allclose(W, W.T, rtol=1e-14, atol=1e-14)
    ev = np.linalg.eigvalsh(m.effective_W())
    np.testing.assert_allclose(ev, np.sort(m.singular_values()), rtol=1e-12)


def test_symmetric_svd_compat_is_not_symmetric():
    W = L.SymmetricSVDLinear(5, 5, rng=0, compat="neuromancer").effective_W()
    assert np.abs(W - W.T).max() > 0.1


@FEW
@given(st.integers(1, 4), seeds)
def test_schur_eigenvalues(h, seed):
    n = 2 * h
    m = _scramble(L.SchurDecompositionLinear(n, n, rng=seed), seed, scale=1.0)
    m = m.with_params(**{"P.U": np.triu(m.params["P.U"]) + np.eye(n)})
    ev = np.linalg.eigvals(m.effective_W())
    g, th = m.params["gamma"], m.params["theta"]
    want = np.concatenate([g * np.exp(1j * th), g * np.exp(-1j * th)])
    for z in want:
        assert np.min(np.abs(ev - z)) < 1e-8 * (1 + abs(z))


@FEW
@given(sizes, st.integers(0, 4), seeds)
def test_trivial_null_space_injective(n, extra, seed):
    m = _scramble(L.TrivialNullSpaceLinear(n, n + extra, epsilon=0.05, rng=seed), seed)
    W = m.effective_W()
    assert np.linalg.matrix_rank(W) == n
    assert np.linalg.svd(W, compute_uv=False).min() >= 0.05 * (1 - 1e-9)


def test_power_bound_estimates_rho_squared_for_symmetric_W():
    gen = np.random.default_rng(0)
    A = gen.standard_normal((6, 6))
    W = A + A.T
    m = L.PowerBoundLinear(6, 6, max_p=1.0, pwr_iters=500, rng=1, params={"W": W})
    rho = np.max(np.abs(np.linalg.eigvalsh(W)))
    assert m.rho_squared_estimate() == pytest.approx(rho**2, rel=1e-8)
    assert m.reg_error() == pytest.approx(rho**2 - 1.0, rel=1e-8)


def test_power_bound_gradient_descent_lowers_spectral_radius():
    """The soft constraint works: descending reg_error drives rho(W)^2 below max_p."""
    m = L.PowerBoundLinear(5, 5, max_p=0.5, pwr_iters=100, rng=0)
    for _ in range(300):
        m.reg_error()
        m.load_params({"W": m.params["W"] - 0.05 * m.reg_error_vjp()["W"]})
    rho = np.max(np.abs(np.linalg.eigvals(m.params["W"])))
    assert rho**2 <= 0.5 + 1e-3


def test_registries():
    assert len(L.upstream_maps) == 25 and "skew_symetric" in L.upstream_maps
    assert L.maps["skew_symmetric"] is L.SkewSymmetricLinear
    for key in ("lasso_relu", "identity_init", "symmetric_svd", "symmetric_spectral"):
        assert key in L.maps
    assert L.tall_maps == {L.TrivialNullSpaceLinear}
    for cls in L.square_maps:
        with pytest.raises(ValueError, match="outsize|insize"):
            cls(4, 6)


@FEW
@given(st.integers(2, 7), seeds)
def test_householder_gradient_orthogonal_to_its_vector(n, seed):
    """Each reflector is invariant to the scale of its vector, so v_t . dv_t = 0 for every row of dU."""
    m = L.OrthogonalLinear(n, n, rng=seed)
    G = np.random.default_rng(seed).standard_normal((n, n))
    dU = m.effective_W_vjp(G)["U"]
    U = m.params["U"]
    for t in range(n):
        assert abs(U[t, t:] @ dU[t, t:]) <= 1e-12 * (1 + np.abs(dU[t]).sum() * np.abs(U[t]).sum())
    assert not np.any(np.tril(dU, -1))  # the strict lower triangle is never read
    assert dU[n - 1, n - 1] == pytest.approx(0.0, abs=1e-12)  # H_{n-1} = diag(1, ..., 1, -1) whatever U[n-1, n-1]
