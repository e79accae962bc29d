"""Cross-check of the slim.linear items added for issue 14 against neuromancer 1.5.6 (torch, float64, 1e-10):
Butterfly, SpectralLinear.Sigma / Umultiply / Vmultiply, L0Linear.cdf_qz / quantile_concrete, orthogonal_error,
PowerBoundLinear.eig_v_estimate, the eigenvalue VJP against torch.linalg.eig's autograd, and BoundedNormLinear with
p = inf, -inf, 'fro', 'nuc'."""

import math

import numpy as np
import pytest

import refnsm.linear as L
from refnsm.crosscheck import rel_err

TOL = 1e-10


@pytest.fixture(scope="module")
def nm(upstream):
    import torch

    mod = upstream("neuromancer")
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield torch, mod
    torch.set_default_dtype(old)


def _grads(torch, scalar, tensors):
    for t in tensors.values():
        t.grad = None
    scalar.backward()
    return {k: (np.zeros(tuple(t.shape)) if t.grad is None else t.grad.numpy().copy()) for k, t in tensors.items()}


@pytest.mark.parametrize("shape, tied, bias", [((5, 3), True, True), ((8, 8), False, True), ((3, 9), True, False)])
def test_butterfly_module(nm, shape, tied, bias):
    """With a bias under compat='neuromancer' (upstream's scalar bias); without one in the default mode."""
    torch, _ = nm
    from neuromancer.slim.butterfly.butterfly import Butterfly

    torch.manual_seed(0)
    up = Butterfly(*shape, bias=bias, tied_weight=tied, increasing_stride=tied).double()
    sd = {k: v for k, v in up.named_parameters()}
    ref = L.Butterfly(*shape, bias, tied_weight=tied, increasing_stride=tied, compat="neuromancer" if bias else None,
                      params={k: v.detach().numpy() for k, v in sd.items()})
    rng = np.random.default_rng(1)
    x, gy = rng.standard_normal((4, shape[0])), rng.standard_normal((4, shape[1]))
    xt = torch.tensor(x, requires_grad=True)
    y = up(xt)
    g = _grads(torch, (y * torch.tensor(gy)).sum(), {**sd, "x": xt})
    assert rel_err(ref.forward(x), y.detach().numpy()) < TOL
    assert rel_err(ref.backward(gy), g["x"]) < TOL
    for k in sd:
        assert rel_err(ref.grads[k], g[k]) < TOL, k


@pytest.mark.parametrize("shape", [(5, 3), (3, 4), (4, 4)])
def test_spectral_factor_methods(nm, shape):
    torch, mod = nm
    torch.manual_seed(2)
    up = mod.SpectralLinear(*shape, bias=False).double()
    with torch.no_grad():
        up.p.copy_(torch.tensor(2.0 * np.random.default_rng(3).standard_normal(tuple(up.p.shape))))
    tens = {"p": up.p, "U": up.U, "V": up.V}
    ref = L.SpectralLinear(*shape, params={k: v.detach().numpy() for k, v in tens.items()})
    rng = np.random.default_rng(4)
    GS = rng.standard_normal(shape)
    S = up.Sigma()
    gS = _grads(torch, (S * torch.tensor(GS)).sum(), tens)
    assert rel_err(ref.Sigma(), S.detach().numpy()) < TOL
    assert rel_err(ref.Sigma_vjp(GS)["p"], gS["p"]) < TOL
    for name, width in (("Umultiply", shape[0]), ("Vmultiply", shape[1])):
        x, gy = rng.standard_normal((3, width)), rng.standard_normal((3, width))
        xt = torch.tensor(x, requires_grad=True)
        y = getattr(up, name)(xt)
        g = _grads(torch, (y * torch.tensor(gy)).sum(), {**tens, "x": xt})
        gx, grads = getattr(ref, name + "_vjp")(gy, x)
        assert rel_err(getattr(ref, name)(x), y.detach().numpy()) < TOL
        assert rel_err(gx, g["x"]) < TOL
        for k in ("U", "V"):
            assert rel_err(grads[k], g[k]) < TOL, (name, k)


def test_l0_concrete_helpers(nm):
    torch, mod = nm
    torch.manual_seed(5)
    up = mod.L0Linear(3, 4).double()
    with torch.no_grad():  # neuromancer's float32 scalar buffers, reset to the exact constants (as the adapter)
        for name, val in (("limit_a", -0.1), ("limit_b", 1.1), ("epsilon", 1e-6), ("temperature", 2.0 / 3.0)):
            getattr(up, name).fill_(val)
    ref = L.L0Linear(3, 4, params={"weight": up.weight.detach().numpy(), "qz_loga": up.qz_loga.detach().numpy(),
                                   "bias": up.bias.detach().numpy().reshape(ref_bias_shape())})
    rng = np.random.default_rng(6)
    G = rng.standard_normal((3, 4))
    q = up.cdf_qz(0)
    g = _grads(torch, (q * torch.tensor(G)).sum(), {"qz_loga": up.qz_loga})
    assert rel_err(ref.cdf_qz(0.0), q.detach().numpy()) < TOL
    assert rel_err(ref.cdf_qz_vjp(G, 0.0)[1]["qz_loga"], g["qz_loga"]) < TOL
    u = rng.uniform(0.05, 0.95, (3, 4))
    ut = torch.tensor(u, requires_grad=True)
    z = up.quantile_concrete(ut)
    g = _grads(torch, (z * torch.tensor(G)).sum(), {"qz_loga": up.qz_loga, "u": ut})
    gu, grads = ref.quantile_concrete_vjp(G, u)
    assert rel_err(ref.quantile_concrete(u), z.detach().numpy()) < TOL
    assert rel_err(grads["qz_loga"], g["qz_loga"]) < TOL and rel_err(gu, g["u"]) < TOL


def ref_bias_shape():
    return L.L0Linear(3, 4).params["bias"].shape


@pytest.mark.parametrize("cls", ["SVDLinear", "SVDLinearLearnBounds", "SymmetricSVDLinear"])
def test_orthogonal_error_method(nm, cls):
    torch, mod = nm
    up = getattr(mod, cls)(4, 4)
    A = np.random.default_rng(7).standard_normal((4, 4))
    At = torch.tensor(A, requires_grad=True)
    e = up.orthogonal_error(At)
    e.backward()
    ref = getattr(L, cls)(4, 4)
    assert rel_err(ref.orthogonal_error(A), e.item()) < TOL
    assert rel_err(ref.orthogonal_error_vjp(None, A), At.grad.numpy()) < TOL


def test_power_bound_eig_v_estimate(nm):
    torch, mod = nm
    torch.manual_seed(8)
    up = mod.PowerBoundLinear(5, 5, 0.7, 40).double()
    ref = L.PowerBoundLinear(5, 5, 0.7, 40, params={"W": up.W.detach().numpy()})
    torch.manual_seed(9)
    a0, b0 = torch.normal(0, 1, (5, 1)), torch.normal(0, 1, (5, 1))
    ref.set_start(a0.numpy()[:, 0], b0.numpy()[:, 0])
    torch.manual_seed(9)  # upstream draws the same start vectors
    a, b = up.eig_v_estimate()
    ra, rb = ref.eig_v_estimate()
    assert rel_err(ra, a.numpy()[:, 0]) < TOL and rel_err(rb, b.numpy()[:, 0]) < TOL


@pytest.mark.parametrize("seed", [10, 11, 12])
def test_eigenvalue_vjp_matches_torch_autograd(nm, seed):
    """L = sum(a Re(lambda) + b Im(lambda)^2) through neuromancer's eig() and effective_W(), against eig_vjp and
    effective_W_vjp (a loss symmetric in the eigenvalues, so LAPACK's order does not matter)."""
    torch, mod = nm
    torch.manual_seed(seed)
    up = mod.Linear(5, 5, bias=False).double()
    ref = L.Linear(5, 5, params={"weight": up.linear.weight.detach().numpy()})
    lam, _ = up.eig()
    loss = (0.7 * lam.real + 1.3 * lam.imag ** 2).sum()
    g = _grads(torch, loss, {"weight": up.linear.weight})
    lam_r, _ = ref.eig()
    assert rel_err(np.sort(lam_r.real), np.sort(lam.real.detach().numpy())) < TOL
    grads = ref.eig_vjp(0.7 + 1j * 2 * 1.3 * lam_r.imag)
    assert rel_err(grads["weight"], g["weight"]) < TOL


@pytest.mark.parametrize("p", [math.inf, -math.inf, "fro", "nuc"])
@pytest.mark.parametrize("band", [(0.01, 0.05), (50.0, 60.0)])
def test_bounded_norm_orders(nm, p, band):
    torch, mod = nm
    torch.manual_seed(13)
    up = mod.BoundedNormLinear(4, 3, bias=False, sigma_min=band[0], sigma_max=band[1], p=p).double()
    ref = L.BoundedNormLinear(4, 3, sigma_min=band[0], sigma_max=band[1], p=p,
                              params={"weight": up.weight.detach().numpy()})
    r = up.reg_error()
    g = _grads(torch, r.sum(), {"weight": up.weight})
    assert rel_err(ref.reg_error(), float(r.sum().detach())) < TOL
    assert rel_err(ref.reg_error_vjp()["weight"], g["weight"]) < TOL
