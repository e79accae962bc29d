"""Gradient checks of every VJP of every structured linear map (refnsm.linear), and float32/float64 behaviour.

For each map (``refnsm.linear._catalog.CATALOG``), shape, bias setting and compat mode, three VJPs are checked
against central finite differences: ``effective_W_vjp`` (all trainable parameters), ``forward``/``backward``
(x and all trainable parameters, bias included) and ``reg_error_vjp``.
"""

import numpy as np
import pytest

import refnsm.linear as L
from refnsm.gradcheck import gradcheck
from refnsm.linear._catalog import CATALOG

COMPAT_MODES = {"symplectic", "symmetric_svd", "spectral", "symmetric_spectral", "orthogonal", "butterfly", "l0",
                "gershgorin"}


def _cases():
    out = []
    for e in CATALOG:
        for shape in e.shapes:
            for bias in (False, True):
                if bias and e.cls is L.TrivialNullSpaceLinear:
                    continue
                for compat in (None, "neuromancer") if e.name in COMPAT_MODES else (None,):
                    out.append(pytest.param(e, shape, bias, compat, id=f"{e.name}-{shape[0]}x{shape[1]}-b{int(bias)}-{compat}"))
    return out


def _prepare(e, shape, bias, compat, seed=0):
    m = e.build(*shape, bias=bias, seed=seed, compat=compat)
    if isinstance(m, L.L0Linear):
        m.set_noise(np.random.default_rng(seed + 7).uniform(0.05, 0.95, size=shape))
    if isinstance(m, L.PowerBoundLinear):
        gen = np.random.default_rng(seed + 9)
        m.set_start(gen.standard_normal(shape[0]), gen.standard_normal(shape[0]))
    return m


def _fns(m):
    names = list(m.trainable)

    def rebuild(arrs):
        return m.with_params(**dict(zip(names, arrs)))

    return names, rebuild


@pytest.mark.parametrize("e,shape,bias,compat", _cases())
def test_gradcheck_all_vjps(e, shape, bias, compat):
    m = _prepare(e, shape, bias, compat)
    names, rebuild = _fns(m)
    params = [m.params[k] for k in names]
    # frozen parameters never get gradients
    for k in m.params:
        if k not in names:
            assert not np.any(m.effective_W_vjp(np.ones(shape))[k])

    if names:
        gradcheck(lambda *a: rebuild(a).effective_W(),
                  lambda G, *a: tuple(rebuild(a).effective_W_vjp(G)[k] for k in names),
                  params, raise_on_fail=True)
        gradcheck(lambda *a: rebuild(a).reg_error(),
                  lambda g, *a: tuple(rebuild(a).reg_error_vjp(g)[k] for k in names),
                  params, raise_on_fail=True)

    x = np.random.default_rng(3).standard_normal((3, shape[0]))

    def fwd(x, *a):
        return rebuild(a).forward(x)

    def bwd(g, x, *a):
        mm = rebuild(a)
        mm.forward(x)
        gx = mm.backward(g)
        return (gx, *(mm.grads[k] for k in names))

    gradcheck(fwd, bwd, [x, *params], raise_on_fail=True)


@pytest.mark.parametrize("e", [e for e in CATALOG if e.cls is not L.IdentityLinear], ids=lambda e: e.name)
def test_forward_matches_effective_W_and_leading_dims(e):
    shape = e.shapes[-1]
    m = _prepare(e, shape, bias=True if e.cls is not L.TrivialNullSpaceLinear else False, compat=None)
    x = np.random.default_rng(1).standard_normal((2, 3, shape[0]))
    y = m.forward(x)
    b = m.params.get(m._bias_key, np.zeros(shape[1])).reshape(-1)
    np.testing.assert_allclose(y, x @ m.effective_W() + b, rtol=1e-13, atol=1e-13)
    g = np.random.default_rng(2).standard_normal(y.shape)
    gx = m.backward(g)
    np.testing.assert_allclose(gx, g @ m.effective_W().T, rtol=1e-13, atol=1e-13)
    # parameter gradients of a batch with leading dims equal those of the flattened batch
    m2 = m.with_params()
    m2.forward(x.reshape(-1, shape[0]))
    m2.backward(g.reshape(-1, shape[1]))
    for k in m.params:
        np.testing.assert_allclose(m.grads[k], m2.grads[k], rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("e", CATALOG, ids=lambda e: e.name)
def test_float32_kept_and_close_to_float64(e):
    shape = e.shapes[-1]
    m64 = _prepare(e, shape, False, None)
    m32 = e.cls(*shape, bias=False, dtype=np.float32, params=m64.params, **e.kwargs)
    if isinstance(m64, L.L0Linear):
        m32.set_noise(m64._noise)
    if isinstance(m64, L.PowerBoundLinear):
        m32.set_start(*m64._start)
    x = np.random.default_rng(0).standard_normal((2, shape[0])).astype(np.float32)
    W32, W64 = m32.effective_W(), m64.effective_W()
    assert W32.dtype == np.float32
    np.testing.assert_allclose(W32, W64, rtol=1e-4, atol=1e-5)
    y = m32.forward(x)
    assert y.dtype == np.float32
    gx = m32.backward(np.ones_like(y))
    assert gx.dtype == np.float32
    m64.forward(x.astype(np.float64))
    m64.backward(np.ones(y.shape))
    for k, g in m32.grads.items():
        assert g.dtype == np.float32, k
        np.testing.assert_allclose(g, m64.grads[k], rtol=1e-3, atol=1e-4)


# ----------------------------------------------------------------------------------- kinks and subgradients
def test_relu_kink_uses_zero_subgradient():
    """relu'(0) = 0 (torch's convention): at P = 0 the VJP equals the left-sided difference quotient."""
    m = L.NonNegativeLinear(3, 2, rng=0)
    P = m.params["weight"].copy()
    P[0, 0] = 0.0
    P[1, 1] = 0.0
    m.load_params({"weight": P})
    G = np.random.default_rng(0).standard_normal((3, 2))
    g = m.effective_W_vjp(G)["weight"]
    assert g[0, 0] == 0.0 and g[1, 1] == 0.0
    eps = 1e-7
    for idx in [(0, 0), (1, 1)]:
        Pm = P.copy()
        Pm[idx] -= eps
        left = (np.sum(G * m.with_params(weight=P).effective_W()) - np.sum(G * m.with_params(weight=Pm).effective_W())) / eps
        assert left == 0.0
    # elsewhere, a central gradcheck restricted to the smooth entries
    mask = P != 0
    np.testing.assert_allclose(g[mask], G[mask], rtol=1e-15)


def test_bounded_norm_tie_splits_half():
    """At ||A||_F == sigma_max exactly, torch's binary max gives 1/2: the central difference agrees."""
    A = np.zeros((2, 3))
    A[0, 1] = 0.5
    m = L.BoundedNormLinear(3, 2, sigma_min=0.1, sigma_max=0.5, params={"weight": A})
    assert m.reg_error() == 0.0
    gradcheck(lambda a: m.with_params(weight=a).reg_error(), lambda g, a: m.with_params(weight=a).reg_error_vjp(g)["weight"],
              [A], raise_on_fail=True)
    assert m.reg_error_vjp()["weight"][0, 1] == 0.5


def test_lasso_sign_zero_at_W_zero():
    """|W|'(0) = 0: where u == v the penalty gradient is 0, which is also the central difference."""
    m = L.LassoLinear(3, 3, rng=0)
    u = m.params["u_param"].copy()
    v = m.params["v_param"].copy()
    v[0, :] = u[0, :]
    m.load_params({"v_param": v})
    gradcheck(lambda a, b: m.with_params(u_param=a, v_param=b).reg_error(),
              lambda g, a, b: tuple(m.with_params(u_param=a, v_param=b).reg_error_vjp(g)[k] for k in ("u_param", "v_param")),
              [u, v], raise_on_fail=True)
    assert not np.any(m.reg_error_vjp()["u_param"][0])


def test_l0_hardtanh_clamped_gates_get_no_gradient():
    """Gates with z outside (0, 1) are clamped (hardtanh' = 0 there): alpha gets no gradient from them."""
    m = L.L0Linear(3, 3, rng=0).eval()
    a = m.params["qz_loga"].copy()
    a[0, 0], a[1, 1] = 30.0, -30.0  # z > 1 and z < 0
    m.load_params({"qz_loga": a})
    W = m.effective_W()
    P = m.params["weight"]
    assert W[0, 0] == P[0, 0] and W[1, 1] == 0.0
    g = m.effective_W_vjp(np.ones((3, 3)))["qz_loga"]
    assert g[0, 0] == 0.0 and g[1, 1] == 0.0
    gradcheck(lambda q: m.with_params(qz_loga=q).effective_W(), lambda G, q: m.with_params(qz_loga=q).effective_W_vjp(G)["qz_loga"],
              [a], raise_on_fail=True)


def test_l0_training_noise_drawn_per_call_and_injectable():
    m = L.L0Linear(3, 4, rng=5)
    W1, W2 = m.effective_W(), m.effective_W()
    assert not np.array_equal(W1, W2)  # a fresh u at every call
    u = np.full((3, 4), 0.3)
    m.set_noise(u)
    np.testing.assert_array_equal(m.effective_W(), m.effective_W())
    # forward draws one sample for the whole batch, recorded in last_noise; backward reuses that sample
    m.set_noise(None)
    x = np.random.default_rng(0).standard_normal((2, 3))
    y = m.forward(x)
    pinned = m.with_params()
    pinned.set_noise(m.last_noise)
    np.testing.assert_allclose(y, x @ pinned.effective_W() + m.params["bias"], rtol=1e-13)
    m.backward(np.ones_like(y))
    np.testing.assert_allclose(m.grads["weight"], pinned.effective_W_vjp(x.T @ np.ones_like(y))["weight"], rtol=1e-13)


def test_l0_reg_sign():
    m = L.L0Linear(3, 4, rng=0)
    m_up = L.L0Linear(3, 4, rng=0, compat="neuromancer")
    assert m.reg_error() > 0 and m_up.reg_error() == -m.reg_error()


def test_power_bound_reg_uses_stop_gradient_vectors():
    """With pwr_iters > 0 the gradient treats the final power vectors as constants (upstream's no_grad)."""
    m = L.PowerBoundLinear(4, 4, pwr_iters=50, rng=0)
    gen = np.random.default_rng(1)
    a0, b0 = gen.standard_normal(4), gen.standard_normal(4)
    m.set_start(a0, b0)
    a, b = m.power_vectors(a0, b0)
    fixed = L.PowerBoundLinear(4, 4, pwr_iters=0, params=m.params)
    fixed.set_start(a, b)
    assert m.reg_error() == pytest.approx(fixed.reg_error(), rel=1e-14)
    np.testing.assert_allclose(m.reg_error_vjp()["W"], fixed.reg_error_vjp()["W"], rtol=1e-13)


def test_power_bound_unpinned_vjp_reuses_last_reg_vectors():
    m = L.PowerBoundLinear(4, 4, pwr_iters=3, rng=2)
    r = m.reg_error()
    a, b = m._last_start
    g = m.reg_error_vjp()["W"]
    m2 = L.PowerBoundLinear(4, 4, pwr_iters=3, params=m.params)
    m2.set_start(a, b)
    assert m2.reg_error() == r
    np.testing.assert_array_equal(m2.reg_error_vjp()["W"], g)


# ----------------------------------------------------------------------------------- helpers: Hprod, straight-through
def test_hprod_and_vjp():
    gen = np.random.default_rng(0)
    x = gen.standard_normal((3, 5))
    u = gen.standard_normal(5)
    for k in (1, 3, 5):
        y = L.Hprod(x, u, k)
        v = np.concatenate([np.zeros(5 - k), u[5 - k:]])
        H = np.eye(5) - 2 * np.outer(v, v) / (v @ v)
        np.testing.assert_allclose(y, x @ H, rtol=1e-13, atol=1e-14)
        gradcheck(lambda a, b: L.Hprod(a, b, k), lambda g, a, b: L.Hprod_vjp(g, a, b, k), [x, u], raise_on_fail=True)
        _, gu = L.Hprod_vjp(gen.standard_normal((3, 5)), x, u, k)
        assert abs(gu @ u) < 1e-12 * (1 + np.abs(gu).sum())  # scale invariance: v . dv = 0
    np.testing.assert_allclose(L.Hprod(L.Hprod(x, u, 3), u, 3), x, atol=1e-14)  # involution


def test_straight_through_relu():
    x = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(L.straight_through_relu(x), [0.0, 0.0, 2.0])
    np.testing.assert_array_equal(L.straight_through_relu_vjp(np.array([1.0, 2.0, 3.0]), x), [1.0, 2.0, 3.0])
    assert L.IdentityGradReLU is L.straight_through_relu


# ----------------------------------------------------------------------------------- naive twins of the kernels
def test_householder_kernel_matches_naive_product():
    gen = np.random.default_rng(0)
    for n, k, rev in [(5, 5, False), (5, 3, True), (6, 2, False), (2, 1, True)]:
        U = np.triu(gen.standard_normal((n, n)))
        Hs = []
        for t in range(k):
            v = np.concatenate([np.zeros(t), U[t, t:]])
            Hs.append(np.eye(n) - 2 * np.outer(v, v) / (v @ v))
        Q_naive = np.eye(n)
        for H in (Hs[::-1] if rev else Hs):
            Q_naive = Q_naive @ H
        Q = L.householder_matrix(U, k, reverse=rev)
        np.testing.assert_allclose(Q, Q_naive, rtol=1e-12, atol=1e-13)
        gradcheck(lambda u: L.householder_matrix(u, k, reverse=rev),
                  lambda G, u: L.householder_matrix_vjp(G, L.householder_matrix(u, k, reverse=rev), u, k, reverse=rev),
                  [U], raise_on_fail=True)


def test_butterfly_kernel_matches_naive_dense_factors():
    """Each butterfly factor as a dense n x n matrix, multiplied out in NumPy."""
    for tied, inc, (nin, nout) in [(True, True, (8, 8)), (False, False, (5, 3)), (True, False, (3, 9)), (False, True, (8, 2))]:
        m = L.ButterflyLinear(nin, nout, tied_weight=tied, increasing_stride=inc, rng=1)
        n, mm = m.n, m.m
        tw = m.params["linmap.twiddle"]
        blocks = []
        for k in range(m.nstack):
            M = np.eye(n)
            levels = range(mm) if inc else range(mm - 1, -1, -1)
            for lv in levels:
                st = 2 ** lv
                F = np.zeros((n, n))
                for g in range(n // (2 * st)):
                    for l in range(st):
                        t = g * 2 * st + l
                        T = tw[k, st - 1 + l] if tied else tw[k, lv, g * st + l]
                        # out_t = T00 x_t + T01 x_{t+st}: as a right factor, column t of F
                        F[t, t], F[t + st, t], F[t, t + st], F[t + st, t + st] = T[0, 0], T[0, 1], T[1, 0], T[1, 1]
                M = M @ F
            blocks.append(M[:nin])
        Y = np.concatenate(blocks, axis=1)
        o = 2 ** int(np.ceil(np.log2(nout))) if nout > 1 else 1
        if n // o >= 2:
            Y = Y.reshape(nin, n // o, o).mean(axis=1)
        np.testing.assert_allclose(m.effective_W(), Y[:, :nout], rtol=1e-12, atol=1e-13)


def test_butterfly_ortho_init_is_orthogonal():
    m = L.ButterflyLinear(8, 8, ortho_init=True, rng=3)
    W = m.effective_W()
    np.testing.assert_allclose(W.T @ W, np.eye(8), atol=1e-13)


def test_lasso_projection_only_explicit_or_in_compat():
    """neuromancer's LassoLinear.forward clamps u, v >= 0 in place; refnsm does so only under compat or project()."""
    m = L.LassoLinear(3, 2, rng=0)
    u = m.params["u_param"].copy()
    u[0, 0] = -0.5
    m.load_params({"u_param": u})
    x = np.ones((1, 3))
    m.forward(x)
    assert m.params["u_param"][0, 0] == -0.5  # default: forward never mutates parameters
    c = L.LassoLinear(3, 2, params=m.params, compat="neuromancer")
    y = c.forward(x)
    assert c.params["u_param"][0, 0] == 0.0
    np.testing.assert_allclose(y, x @ (np.maximum(u, 0) - np.maximum(m.params["v_param"], 0)))
    m.project()
    assert m.params["u_param"][0, 0] == 0.0


def test_l0_reg_clamp_of_gate_probability():
    """Q = clamp(sigmoid(beta ln(-a/b) - alpha), eps, 1 - eps): alpha gets no reg gradient where Q is clamped."""
    m = L.L0Linear(2, 3, rng=0)
    a = m.params["qz_loga"].copy()
    a[0, 0], a[1, 2] = -40.0, 40.0  # Q_raw = 1 - 4e-18 > 1 - eps, and Q_raw ~ 4e-19 < eps
    m.load_params({"qz_loga": a})
    g = m.reg_error_vjp()["qz_loga"]
    assert g[0, 0] == 0.0 and g[1, 2] == 0.0 and np.all(g[0, 1:] != 0)
    gradcheck(lambda q: m.with_params(qz_loga=q).reg_error(), lambda s, q: m.with_params(qz_loga=q).reg_error_vjp(s)["qz_loga"],
              [a], raise_on_fail=True)


def test_svd_reg_zero_subgradient_at_exact_orthogonality():
    """torch's norm has gradient 0 at exactly 0: the penalty and its gradient vanish for exactly orthogonal factors."""
    m = L.SVDLinear(3, 2, params={"U": np.eye(3), "V": np.eye(2)})
    assert m.reg_error() == 0.0
    assert all(not np.any(v) for v in m.reg_error_vjp().values())


def test_eig_matches_numpy():
    m = L.SchurDecompositionLinear(4, 4, rng=1)
    w, v = m.eig()
    W = m.effective_W()
    np.testing.assert_allclose(W @ v, v * w, atol=1e-12)


def test_perron_frobenius_kernel_matches_naive_numpy():
    gen = np.random.default_rng(0)
    P, C = 3 * gen.standard_normal((5, 7)), 3 * gen.standard_normal((5, 7))
    m = L.PerronFrobeniusLinear(5, 7, sigma_min=0.2, sigma_max=0.9, params={"weight": P, "scaling": C})
    E = np.exp(P - P.max(axis=1, keepdims=True))
    M = E / E.sum(axis=1, keepdims=True)
    S = 0.9 - 0.7 / (1 + np.exp(-C))
    np.testing.assert_allclose(m.effective_W(), S * M, rtol=1e-12, atol=1e-15)
    G = gen.standard_normal((5, 7))
    GS = G * S
    dP = M * (GS - np.sum(GS * M, axis=1, keepdims=True))
    dC = -0.7 * G * M * (S - 0.2) / 0.7 * (0.9 - S) / 0.7
    g = m.effective_W_vjp(G)
    np.testing.assert_allclose(g["weight"], dP, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(g["scaling"], dC, rtol=1e-10, atol=1e-15)


def test_perron_frobenius_sigmoid_saturates_without_warnings():
    """sigma(C) = 1/(1 + e^-C) in the fused kernel: e^-C overflows to inf for very negative C, giving sigma = 0
    exactly (the limit), with no floating-point warning and no NaN; very positive C gives sigma = 1."""
    import warnings

    P = np.random.default_rng(1).standard_normal((2, 3))
    C = np.array([[-1000.0, 1000.0, 0.0], [-50.0, 50.0, 3.0]])
    m = L.PerronFrobeniusLinear(2, 3, sigma_min=0.2, sigma_max=0.9, params={"weight": P, "scaling": C})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        W = m.effective_W()
        g = m.effective_W_vjp(np.ones((2, 3)))
    from refnsm.linear import _kernels as K

    _, M, SC = K.pf_weight(P, C, 0.2, 0.9)
    assert SC[0, 0] == 0.0 and SC[0, 1] == 1.0  # exactly the limits
    assert W[0, 0] == 0.9 * M[0, 0] and W[0, 1] == pytest.approx(0.2 * M[0, 1], rel=1e-15)  # (0.9 - 0.7 rounds)
    assert g["scaling"][0, 0] == 0.0 and g["scaling"][0, 1] == 0.0
    assert np.all(np.isfinite(W)) and all(np.all(np.isfinite(v)) for v in g.values())


@pytest.mark.parametrize("name, shape, kw", [("SVDLinear", (7, 5), {}), ("SVDLinear", (5, 7), {}),
                                             ("SVDLinearLearnBounds", (6, 6), {}), ("SymmetricSVDLinear", (6, 6), {}),
                                             ("SymmetricSVDLinear", (6, 6), {"compat": "neuromancer"})])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_svd_products_outside_the_kernels_match(monkeypatch, name, shape, kw, dtype):
    """From 64**3 multiply-adds per product the soft-SVD maps make their products with NumPy's BLAS instead of inside
    the kernels (``svd._PRODUCTS_IN_KERNEL_BELOW``).  Forcing that path at a small size gives the same W, output,
    input gradient and parameter gradients, to the error bound of the length-r products (the two BLAS builds may
    round differently); the symmetric map's U is an F-ordered view (V.T), which the split kernels read as it is."""
    from refnsm.linear import svd

    gen = np.random.default_rng(4)
    m = getattr(L, name)(*shape, True, rng=3, dtype=dtype, **kw)
    x = gen.standard_normal((9, shape[0])).astype(dtype)
    g = gen.standard_normal((9, shape[1])).astype(dtype)

    def run():
        W = m.effective_W()
        y = m.forward(x)
        return [W, y, m.backward(g)] + [m.grads[k] for k in sorted(m.grads)]

    assert m._products_in_kernel()
    in_kernel = run()
    monkeypatch.setattr(svd, "_PRODUCTS_IN_KERNEL_BELOW", 0)
    assert not m._products_in_kernel()
    outside = run()
    tol = 1e-13 if dtype == np.float64 else 2e-6
    for a, b in zip(in_kernel, outside):
        assert a.dtype == b.dtype == dtype and a.shape == b.shape
        np.testing.assert_allclose(b, a, rtol=tol, atol=tol * np.abs(a).max())


def test_svd_products_leave_the_kernels_at_64_cubed():
    assert L.SVDLinear(63, 63)._products_in_kernel()  # 63**3 multiply-adds per product
    assert not L.SVDLinear(64, 64)._products_in_kernel()
    assert L.SVDLinear(63, 66)._products_in_kernel()  # r * in * out = 63 * 63 * 66 = 261954 < 64**3
    assert not L.SVDLinear(67, 63)._products_in_kernel()  # 63 * 67 * 63 = 265923


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (4, 4)])
def test_svd_kernels_match_naive_numpy(shape):
    """The fused soft-SVD kernels (svd_weight, svd_weight_vjp) against the NumPy expressions of the docstring, and
    their products against NumPy's products of the same rounded factors, to the error bound of a length-r dot
    product (the kernels call the BLAS that Numba links, which need not be NumPy's build)."""
    from refnsm.linear import _kernels as K

    gen = np.random.default_rng(2)
    n, k = shape
    r = min(n, k)
    for dtype in (np.float64, np.float32):
        U, V, theta, G = (gen.standard_normal(sh).astype(dtype) for sh in ((n, n), (k, k), (n, 1), (n, k)))
        lo, hi = 0.1, 1.7
        sg = 1 / (1 + np.exp(-theta[:r, 0].astype(np.float64)))
        s = hi - (hi - lo) * sg
        rtol = 1e-13 if dtype == np.float64 else 1e-6
        W, s1, sg1 = K.svd_weight(U, V, theta, lo, hi, r)
        assert W.dtype == s1.dtype == sg1.dtype == dtype and W.shape == (n, k)
        np.testing.assert_allclose(sg1, sg, rtol=rtol)
        np.testing.assert_allclose(s1, s, rtol=rtol)
        Us = np.ascontiguousarray(U[:, :r] * s1)  # the product the kernel forms, rounded as it rounds it
        eps = np.finfo(dtype).eps

        def close(a, b, x, y):  # |a - b| within the bound of a length-r dot product of x and y's entries
            np.testing.assert_allclose(a, b, rtol=0, atol=2 * r * eps * np.abs(x).max() * np.abs(y).max())

        close(W, Us @ V[:r], Us, V)
        np.testing.assert_allclose(W, (U[:, :r] * s) @ V[:r], rtol=50 * rtol, atol=50 * rtol)
        dU, dV, dtheta, g = K.svd_weight_vjp(G, U, V, s1, sg1, lo, hi, r, n)
        GVt, UtG = G @ V[:r].T, U[:, :r].T @ G
        eU, eV, eth = np.zeros_like(U), np.zeros_like(V), np.zeros_like(theta)
        eU[:, :r] = GVt * s1
        eV[:r] = s1[:, None] * UtG
        close(dU, eU, G, V * s1.max())
        close(dV, eV, U * s1.max(), G)
        ge = np.diag(U[:, :r].T.astype(np.float64) @ G @ V[:r].T)
        eth[:r, 0] = -(hi - lo) * sg * (1 - sg) * ge
        tol = 1e-12 if dtype == np.float64 else 1e-4
        for a, b in ((dtheta, eth), (g, ge)):
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_affine_kernels_match_numpy():
    """add_bias / col_sums (the shared affine layer) and refnsm._fastchecks.all_finite against NumPy, bitwise."""
    from refnsm._fastchecks import all_finite
    from refnsm.linear import _kernels as K

    gen = np.random.default_rng(3)
    for dtype in (np.float64, np.float32):
        y = gen.standard_normal((4, 3)).astype(dtype)
        for b in (gen.standard_normal(3).astype(dtype), np.array([0.25], dtype=dtype)):
            z = y.copy()
            K.add_bias(z, b)
            np.testing.assert_array_equal(z, y + b)
        cs = K.col_sums(y)
        assert cs.dtype == dtype
        np.testing.assert_array_equal(cs, y.sum(axis=0))
        assert all_finite(y.reshape(-1))
        for bad in (np.nan, np.inf, -np.inf):
            z = y.copy()
            z[3, 2] = bad
            assert not all_finite(z.reshape(-1))


def test_fused_affine_checks_match_the_plain_kernels():
    """add_bias_finite / col_sums_finite (the CPU forward/backward passes that also test a result for NaN/Inf): the
    same numbers as add_bias / col_sums, bitwise, and the right verdict, in both dtypes, for NaN, +Inf, -Inf at the
    first and last element, an overflowing bias sum, a scalar bias, an empty batch and one row."""
    from refnsm.linear import _kernels as K

    gen = np.random.default_rng(5)
    for dtype in (np.float64, np.float32):
        for rows, cols, ncols_x in ((5, 3, 4), (1, 1, 1), (0, 3, 2)):
            y = gen.standard_normal((rows, cols)).astype(dtype)
            x = gen.standard_normal((rows, ncols_x)).astype(dtype)
            for b in (gen.standard_normal(cols).astype(dtype), np.array([0.25], dtype=dtype)):
                z, z0 = y.copy(), y.copy()
                assert K.add_bias_finite(z, b) is True
                K.add_bias(z0, b)
                np.testing.assert_array_equal(z, z0)
            cs, ok = K.col_sums_finite(y, x, np.empty((1, cols), dtype))
            assert ok is True and cs.dtype == dtype and cs.shape == (1, cols)
            np.testing.assert_array_equal(cs[0], K.col_sums(y))
            if rows == 0:
                continue
            for bad in (np.nan, np.inf, -np.inf):
                for idx in ((0, 0), (rows - 1, -1)):
                    yb = y.copy()
                    yb[idx] = bad
                    assert K.add_bias_finite(yb.copy(), b) is False
                    xb = x.copy()
                    xb[idx] = bad
                    cs, ok = K.col_sums_finite(y, xb, np.empty(cols, dtype))  # a (n,) bias: sums of its shape
                    assert ok is False and cs.shape == (cols,)
                    np.testing.assert_array_equal(cs, K.col_sums(y))
            big = np.full((rows, cols), np.finfo(dtype).max, dtype=dtype)  # finite, but the bias sum overflows
            assert K.add_bias_finite(big, np.full(cols, np.finfo(dtype).max, dtype=dtype)) is False


def test_host_fast_paths_raise_as_the_full_validation():
    """The CPU forward/backward take exact-dtype arrays without the conversion layer and test results inside their
    kernels: a NaN/Inf x / grad_y is still the ValueError naming the argument and the element (nothing cached, no
    gradients written), with and without a bias, in both dtypes; an overflowing result is a NonFiniteResultError."""
    import refnsm.linear as L
    from refnsm._checks import NonFiniteResultError

    gen = np.random.default_rng(6)
    for bias in (True, False):
        for dtype in (np.float64, np.float32):
            m = L.Linear(4, 3, bias, rng=0, dtype=dtype)
            x = gen.standard_normal((6, 4)).astype(dtype)
            for bad in (np.nan, np.inf):
                xb = x.copy()
                xb[5, 3] = bad
                with pytest.raises(ValueError, match=r"^x: expected finite values.*index \(5, 3\)"):
                    m.forward(xb)
                assert m._cache is None
            y = m.forward(x)
            g = gen.standard_normal(y.shape).astype(dtype)
            before = {k: v.copy() for k, v in m.grads.items()}
            for bad in (np.nan, np.inf, -np.inf):
                gb = g.copy()
                gb[0, 1] = bad
                with pytest.raises(ValueError, match=r"^grad_y: expected finite values.*index \(0, 1\)"):
                    m.backward(gb)
                for k in before:
                    np.testing.assert_array_equal(m.grads[k], before[k])
            # finite g whose bias sums overflow (the bias pass reports a non-finite sum): no error, the same result
            # as the plain NumPy expression
            big = np.full(y.shape, np.finfo(dtype).max / 2, dtype=dtype)
            m2 = L.Linear(4, 3, bias, rng=0, dtype=dtype, params={"weight": np.full((3, 4), 0.1)})
            m2.forward(x)
            with np.errstate(over="ignore"):
                np.testing.assert_array_equal(m2.backward(big), big @ m2.effective_W().T)
                if bias:
                    assert np.all(np.isinf(m2.grads["bias"]))
            gx = m.backward(g)
            np.testing.assert_allclose(gx, g @ m.effective_W().T, rtol=1e-6 if dtype == np.float32 else 1e-14)
            huge = np.full((2, 4), np.finfo(dtype).max / 2, dtype=dtype)
            with pytest.raises(NonFiniteResultError, match="forward"):
                L.Linear(4, 3, bias, rng=0, dtype=dtype, params={"weight": np.full((3, 4), 4.0)}).forward(huge)
            m4 = L.Linear(4, 3, bias, rng=0, dtype=dtype, params={"weight": np.full((3, 4), 4.0)})
            m4.forward(x[:2])
            with pytest.raises(NonFiniteResultError, match="backward"):  # gx = g W^T overflows
                m4.backward(np.full((2, 3), np.finfo(dtype).max / 2, dtype=dtype))


def test_bf_scatter_add_is_np_add_at():
    """bf_scatter_add against np.add.at, bitwise, both dtypes, with repeated indices (tied twiddles), the
    untied (distinct) layout and an empty chain."""
    from refnsm.linear import _kernels as K

    gen = np.random.default_rng(7)
    for dtype in (np.float64, np.float32):
        for m, idx in ((4, np.array([[0] * 8, [1, 2] * 4, [3, 4, 5, 6] * 2, list(range(7, 15))])),
                       (3, np.arange(12).reshape(3, 4)), (0, np.zeros((0, 1), dtype=np.int64))):
            p = int(idx.max()) + 1 if idx.size else 1
            dE = (gen.standard_normal((m, idx.shape[1], 2, 2)) * 10.0 ** gen.integers(-8, 8, (m, idx.shape[1], 1, 1))
                  ).astype(dtype)
            base = gen.standard_normal((p, 2, 2)).astype(dtype)
            want, got = base.copy(), base.copy()
            np.add.at(want, idx.astype(np.int64), dE)
            K.bf_scatter_add(got, idx.astype(np.int64), dE)
            np.testing.assert_array_equal(got, want)


def test_result_guard_replays_instead_of_rerunning():
    """A non-finite result is reported by the shared policy from the call that produced it: an L0Linear in training
    mode (fresh noise per call) draws its noise once per failing forward (here the overflow comes as NumPy's warning,
    an error under the test settings), and the message is the policy's."""
    import refnsm.linear as L
    from refnsm._checks import NonFiniteResultError

    m = L.L0Linear(3, 2, True, rng=0)
    m.params["weight"][...] = np.finfo(np.float64).max
    draws = []

    class Counting:  # the map's noise source, counting its draws
        def __init__(self, gen):
            self.gen = gen

        def uniform(self, *a, **k):
            draws.append(1)
            return self.gen.uniform(*a, **k)

    m.rng = Counting(m.rng)
    with pytest.raises(NonFiniteResultError, match=r"^LinearBase\.forward: "):
        m.forward(np.full((2, 3), 1e308))
    assert len(draws) == 1
