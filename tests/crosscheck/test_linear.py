"""Cross-check of refnsm.linear against neuromancer 1.5.6 slim.linear (float64, values and all gradients)."""

import pytest

from refnsm.crosscheck import linear as adapter


@pytest.mark.parametrize("case", adapter.cases(), ids=lambda c: c.name)
def test_crosscheck(case, upstream):
    upstream(adapter.UPSTREAM)          # skips locally, FAILS under CI=true, when the library is missing
    row = case.run()
    assert row.passed, str(row)


# ------------------------------------------------------------------------------------------------------------------
# Evidence for docs/upstream_differences.md: neuromancer's bugs, observed on neuromancer itself, against refnsm's
# default (intended) math.  Each test shows what upstream does and that refnsm's default is the documented fix.
import numpy as np  # noqa: E402

import refnsm.linear as L  # noqa: E402


@pytest.fixture
def nm(upstream):
    mod = upstream(adapter.UPSTREAM)  # skips (fails under CI=true) before torch is needed
    import torch

    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    yield mod
    torch.set_default_dtype(old)


def test_upstream_orthogonal_without_bias_crashes_refnsm_runs(nm):
    import torch

    up = nm.OrthogonalLinear(4, 4)
    with pytest.raises(TypeError):
        up(torch.ones(2, 4))
    m = L.OrthogonalLinear(4, 4, params={"U": up.U.detach().numpy()})
    np.testing.assert_allclose(m.effective_W().T @ m.effective_W(), np.eye(4), atol=1e-14)


def test_upstream_bias_folded_into_effective_W(nm):
    import torch

    for up, ref_cls, b in ((nm.OrthogonalLinear(4, 4, bias=True), L.OrthogonalLinear, "bias"),
                           (nm.SpectralLinear(4, 4, bias=True), L.SpectralLinear, "bias"),
                           (nm.ButterflyLinear(4, 4, bias=True), L.ButterflyLinear, "linmap.bias")):
        with torch.no_grad():
            dict(up.named_parameters())[b].fill_(0.3)
        sd = {k: v.detach().numpy() for k, v in up.state_dict().items()}
        compat = ref_cls(4, 4, True, compat="neuromancer")
        compat.load_params({k: sd[k] for k in compat.params})
        default = ref_cls(4, 4, True)
        default.load_params({k: v for k, v in compat.params.items() if k in default.params})
        default.load_params({"bias": np.full((1, 4), 0.3)})  # Butterfly: the scalar bias as a per-output bias
        W_up = up.effective_W().detach().numpy()
        np.testing.assert_allclose(compat.effective_W(), W_up, rtol=1e-12, atol=1e-14)
        assert np.abs(default.effective_W() - W_up).max() > 0.29  # upstream adds the bias (0.3) to every row
        x = np.random.default_rng(0).standard_normal((3, 4))
        np.testing.assert_allclose(default.forward(x), up(torch.tensor(x)).detach().numpy(), rtol=1e-12, atol=1e-14)


def test_upstream_spectral_always_has_a_bias(nm):
    up = nm.SpectralLinear(3, 5, bias=False)
    assert "bias" in dict(up.named_parameters())
    assert "bias" not in L.SpectralLinear(3, 5, bias=False).params
    assert L.SpectralLinear(3, 5, bias=False, compat="neuromancer").params["bias"].shape == (5,)


def test_upstream_butterfly_bias_is_one_scalar(nm):
    up = nm.ButterflyLinear(4, 6, bias=True)
    assert tuple(up.linmap.bias.shape) == (1,)
    assert L.ButterflyLinear(4, 6, bias=True).params["bias"].shape == (1, 6)
    assert L.ButterflyLinear(4, 6, bias=True, compat="neuromancer").params["linmap.bias"].shape == (1,)


def test_upstream_symmetric_svd_is_not_symmetric(nm):
    up = nm.SymmetricSVDLinear(5, 5)
    W_up = up.effective_W().detach().numpy()
    assert np.abs(W_up - W_up.T).max() > 0.05
    params = {"V": up.V.detach().numpy(), "sigma": up.sigma.detach().numpy()}
    np.testing.assert_allclose(L.SymmetricSVDLinear(5, 5, compat="neuromancer", params=params).effective_W(), W_up, rtol=1e-12)
    W = L.SymmetricSVDLinear(5, 5, params=params).effective_W()
    np.testing.assert_allclose(W, W.T, atol=1e-15)


def test_upstream_symplectic_is_not_symplectic(nm):
    up = nm.SymplecticLinear(4, 4)
    W_up = up.effective_W().detach().numpy()
    J = np.block([[np.zeros((2, 2)), np.eye(2)], [-np.eye(2), np.zeros((2, 2))]])
    assert np.abs(W_up.T @ J @ W_up - J).max() > 0.1
    W = L.SymplecticLinear(4, 4, params={"weight": up.weight.detach().numpy()}).effective_W()
    np.testing.assert_allclose(W.T @ J @ W, J, atol=1e-13)


def test_upstream_gershgorin_has_no_trainable_parameters(nm):
    up = nm.GershgorinLinear(4, 4)
    assert len(list(up.parameters())) == 0
    with pytest.raises(StopIteration):
        up.reg_error()
    params = {"w": up.w.detach().numpy(), "diag": up.diag.numpy()}
    m = L.GershgorinLinear(4, 4, params=params)
    np.testing.assert_allclose(m.effective_W(), up.effective_W().detach().numpy(), rtol=1e-6)  # upstream is float32
    assert set(m.trainable) == {"w", "diag"}
    assert L.GershgorinLinear(4, 4, params=params, compat="neuromancer").trainable == ()


def test_upstream_schur_is_broken(nm):
    import torch

    up = nm.SchurDecompositionLinear(4, 4)
    with pytest.raises(TypeError):
        up.effective_W()
    with pytest.raises(AttributeError):
        up.reg_error()
    # even with the crash patched (give the orthogonal factor a zero bias) the result is T: Q cancels, theta is dead
    up.P.bias = torch.nn.Parameter(torch.zeros(4))
    Wt = up.effective_W()
    np.testing.assert_allclose(Wt.detach().numpy(), up.T.detach().numpy(), atol=1e-12)
    Wt.sum().backward()
    assert up.theta.grad is None  # theta was detached by torch.tensor(...) when T was built at construction
    with torch.no_grad():  # and T is never rebuilt: changing theta or gamma does not change W
        up.theta.add_(1.0)
        up.gamma.mul_(0.5)
    np.testing.assert_allclose(up.effective_W().detach().numpy(), Wt.detach().numpy(), atol=0)
    # refnsm: W = Q T Q^T with eigenvalues gamma_k exp(+-i theta_k)
    m = L.SchurDecompositionLinear(4, 4, params={"P.U": up.P.U.detach().numpy(), "theta": up.theta.detach().numpy(),
                                                  "gamma": up.gamma.detach().numpy()})
    ev = np.sort_complex(np.linalg.eigvals(m.effective_W()))
    th, g = up.theta.detach().numpy(), up.gamma.detach().numpy()
    want = np.sort_complex(np.concatenate([g * np.exp(1j * th), g * np.exp(-1j * th)]))
    np.testing.assert_allclose(ev, want, atol=1e-12)


def test_upstream_l0_reg_is_a_log_prior(nm):
    up = nm.L0Linear(4, 3)
    r_up = float(up.reg_error())
    params = {k: v.detach().numpy() for k, v in up.state_dict().items() if k in ("weight", "qz_loga", "bias")}
    assert r_up < 0
    assert L.L0Linear(4, 3, params=params, compat="neuromancer").reg_error() == pytest.approx(r_up, rel=1e-5)
    assert L.L0Linear(4, 3, params=params).reg_error() == pytest.approx(-r_up, rel=1e-5)


def test_upstream_stable_split_does_not_bound_the_spectral_radius(nm):
    """Both libraries: rows sums in (sigma_min, sigma_max), yet rho(W) > sigma_max is reachable."""
    m = L.StableSplitLinear(4, 4, sigma_min=0.1, sigma_max=1.0, rng=0)
    gen = np.random.default_rng(3)
    best = 0.0
    for _ in range(200):
        mm = m.with_params(**{k: 4 * gen.standard_normal(v.shape) for k, v in m.params.items()})
        best = max(best, np.abs(np.linalg.eigvals(mm.effective_W())).max())
    assert best > 1.0
