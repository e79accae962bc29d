"""CUDA twins of the structured linear maps against their CPU twins (float64 within 1e-12, float32 within 1e-5).

Where the kernels run: see the docstring of tests/cuda_support.py.  In short, on a GPU (or with
NUMBA_ENABLE_CUDASIM=1 set before Python starts) everything runs in this process; otherwise
``test_kernels_under_simulator`` re-runs this file in a subprocess under the simulator.  Sizes are tiny because the
simulator runs every CUDA thread as a Python thread.
"""

import subprocess
import sys

import numpy as np
import pytest
from cuda_support import DTYPES, MODE, ROOT, close as _close, dev as _dev, host as _host, is_dev as _is_dev, \
    needs_device, run_file_under_simulator

import refnsm.linear as L
from refnsm.linear import _kernels as K

pytestmark_device = needs_device


def _cl():
    from refnsm.linear import _cuda_kernels as cl

    return cl


@pytest.mark.skipif(MODE is not None, reason="the kernels run in this process")
def test_kernels_under_simulator():
    run_file_under_simulator(__file__)


def test_ptx_compiles_for_hardware():
    """Every linear kernel is real nopython CUDA: NVVM compiles it to PTX for sm_75 (no GPU needed)."""
    if MODE == "simulator":
        pytest.skip("the simulator has no compiler")
    from numba import cuda, types

    cl = _cl()
    cc = (7, 5)
    i64, f64 = types.int64, types.float64
    o1, d1 = types.Array(i64, 1, "C"), types.Array(f64, 1, "C")
    try:
        cuda.compile_ptx(cl._hh_scales.py_func, (types.Array(f64, 2, "C"), o1, d1), cc=cc)
    except Exception as exc:  # no libNVVM on this machine
        pytest.skip(f"NVVM unavailable: {type(exc).__name__}: {exc}")
    for dt in DTYPES:
        f = types.float64 if dt == np.float64 else types.float32
        a1, a2 = types.Array(f, 1, "C"), types.Array(f, 2, "C")
        d2, d3, i64s = types.Array(f64, 2, "C"), types.Array(f64, 3, "C"), types.int64
        sigs = [(cl._hh_scales, (a2, o1, d1)), (cl._hh_apply_tile, (a2, a2, o1, d1)),
                (cl._hh_vjp_tile, (a2, a2, a2, o1, d1, i64s, i64s, d3, d2)),
                (cl._hh_vjp_reduce, (d3, d2, a2, o1, d1, i64s, i64s, a2)),
                (cl._pf_rows, (a2, a2, f64, f64, a2, a2, a2)), (cl._pf_vjp_rows, (a2, a2, a2, f64, f64, a2, a2)),
                (cl._add_bias, (a2, a1)), (cl._transpose, (a2, a2)), (cl._take_cols, (a2, a2))]
        typed = {"col_sums": (a2, a1), "fill_eye": (a2,), "fill_zero": (a1,), "spectral_s": (a1, f, f, a1, a1),
                 "scale_cols": (a2, a1, a2), "scale_rows": (a2, a1, a2), "spectral_dp": (a2, a2, a1, f, a1)}
        kernels = cl._typed(dt)
        assert set(typed) == set(kernels)
        for kern, sig in sigs + [(kernels[name], sig) for name, sig in typed.items()]:
            cuda.compile_ptx(kern.py_func, sig, cc=cc)


# ------------------------------------------------------------------------------------------ kernel twins
@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
def test_householder_chain_twins(dtype):
    cl = _cl()
    rng = np.random.default_rng(0)
    U = np.triu(rng.standard_normal((5, 5))).astype(dtype)
    X = rng.standard_normal((3, 5)).astype(dtype)
    G = rng.standard_normal((3, 5)).astype(dtype)
    Ud = _dev(U)
    for order in (np.arange(5), np.arange(5)[::-1].copy(), np.array([1, 3])):
        X0 = X.copy()
        K.hh_chain_apply(X0, U, order)
        Xd = _dev(X)
        cl.hh_chain_apply(Xd, Ud, _dev(order))
        assert _host(Xd).dtype == dtype
        _close(_host(Xd), X0, dtype)
        Y0, G0, dU0 = X0.copy(), G.copy(), np.zeros_like(U)
        K.hh_chain_vjp(Y0, G0, U, order, dU0)
        Yd, Gd, dUd = _dev(X0), _dev(G), _dev(np.zeros_like(U))
        cl.hh_chain_vjp(Yd, Gd, Ud, _dev(order), dUd)
        _close(_host(Yd), Y0, dtype)  # the chain's input, recovered with H^-1 = H
        _close(_host(Gd), G0, dtype)
        _close(_host(dUd), dU0, dtype)
    # the NumPy-level helpers, with fewer reflectors than columns and both orders
    for k, reverse in ((3, False), (5, True)):
        Q0 = L.householder_matrix(U, k, reverse)
        Qd = cl.householder_matrix(Ud, k, reverse)
        _close(_host(Qd), Q0, dtype)
        dQ = rng.standard_normal((5, 5)).astype(dtype)
        dQd = _dev(dQ)
        _close(_host(cl.householder_matrix_vjp(dQd, Qd, Ud, k, reverse)), L.householder_matrix_vjp(dQ, Q0, U, k, reverse),
               dtype)
        np.testing.assert_array_equal(_host(dQd), dQ)  # inputs untouched
    np.testing.assert_array_equal(_host(cl.householder_matrix(Ud, 0)), np.eye(5))


@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
def test_householder_entry_points_take_device(dtype):
    """householder_matrix(_vjp) and Hprod(_vjp) with device="cuda": device results for device inputs, host results
    for host ones, equal to the CPU functions within the tolerance; the device argument is validated."""
    rng = np.random.default_rng(2)
    n, k = 6, 4
    U = np.triu(rng.standard_normal((n, n))).astype(dtype)
    dQ = rng.standard_normal((n, n)).astype(dtype)
    x = rng.standard_normal((5, n)).astype(dtype)
    g = rng.standard_normal((5, n)).astype(dtype)
    u = rng.standard_normal(n).astype(dtype)
    Q0 = L.householder_matrix(U, k, True)
    Qd = L.householder_matrix(_dev(U), k, True, device="cuda")
    assert _is_dev(Qd)
    _close(_host(Qd), Q0, dtype)
    _close(L.householder_matrix(U, k, True, device="cuda"), Q0, dtype)
    dU0 = L.householder_matrix_vjp(dQ, Q0, U, k, True)
    dUd = L.householder_matrix_vjp(_dev(dQ), Qd, _dev(U), k, True, device="cuda")
    assert _is_dev(dUd) and _host(dUd).dtype == dtype
    _close(_host(dUd), dU0, dtype)
    y0 = L.Hprod(x, u, k)
    yd = L.Hprod(_dev(x), _dev(u), k, device="cuda")
    assert _is_dev(yd)
    _close(_host(yd), y0, dtype)
    gx0, gu0 = L.Hprod_vjp(g, x, u, k)
    gxd, gud = L.Hprod_vjp(_dev(g), _dev(x), _dev(u), k, device="cuda")
    _close(_host(gxd), gx0, dtype)
    _close(_host(gud), gu0, dtype)
    gx_h, gu_h = L.Hprod_vjp(g, x, u, k, device="cuda")
    assert isinstance(gu_h, np.ndarray) and gu_h.shape == (n,)
    _close(gu_h, gu0, dtype)
    with pytest.raises(ValueError, match="device"):
        L.householder_matrix(U, device="gpu")


@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
def test_householder_chain_tiles_and_chunks(dtype, monkeypatch):
    """More rows than one tile and a partial last tile, more columns than lanes, the VJP's reflectors split into
    chunks of every size: equal to the CPU kernel within the tolerance, and the chunking (a workspace bound) changes
    no bit; two runs are bitwise equal."""
    cl = _cl()
    rng = np.random.default_rng(1)
    n, B = 2 * cl.HH_LANES + 3, 2 * cl.HH_ROWS + 1
    U = np.triu(rng.standard_normal((n, n))).astype(dtype)
    X = rng.standard_normal((B, n)).astype(dtype)
    G = rng.standard_normal((B, n)).astype(dtype)
    order = np.arange(n)[::-1].copy()
    Ud, od = _dev(U), _dev(order)
    X0 = X.copy()
    K.hh_chain_apply(X0, U, order)
    runs = []
    for _ in range(2):
        Xd = _dev(X)
        cl.hh_chain_apply(Xd, Ud, od)
        runs.append(_host(Xd))
    np.testing.assert_array_equal(runs[0], runs[1])
    _close(runs[0], X0, dtype)
    Y0, G0, dU0 = X0.copy(), G.copy(), np.zeros_like(U)
    K.hh_chain_vjp(Y0, G0, U, order, dU0)
    blocks = (B + cl.HH_ROWS - 1) // cl.HH_ROWS
    outs = []
    for chunk in (n, 5, 1):
        monkeypatch.setattr(cl, "HH_WORKSPACE_BYTES", 8 * blocks * n * chunk)
        Yd, Gd, dUd = _dev(X0), _dev(G), _dev(np.zeros_like(U))
        cl.hh_chain_vjp(Yd, Gd, Ud, od, dUd)
        outs.append((_host(Yd), _host(Gd), _host(dUd)))
    for got in outs[1:]:
        for a, b in zip(got, outs[0]):
            np.testing.assert_array_equal(a, b)
    for got, want in zip(outs[0], (Y0, G0, dU0)):
        _close(got, want, dtype)


@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
def test_pf_weight_twins(dtype):
    cl = _cl()
    rng = np.random.default_rng(1)
    Pm = rng.standard_normal((4, 3)).astype(dtype)
    C = rng.standard_normal((4, 3)).astype(dtype)
    C[0, 0], C[1, 1] = -800.0, 800.0  # exp(-c) overflows (sigma = 0 exactly) and underflows (sigma = 1)
    lo, hi = 0.3, 0.9
    W0, M0, SC0 = K.pf_weight(Pm, C, lo, hi)
    W1, M1, SC1 = cl.pf_weight(_dev(Pm), _dev(C), lo, hi)
    for a, b in ((W1, W0), (M1, M0), (SC1, SC0)):
        assert _host(a).dtype == dtype
        _close(_host(a), b, dtype)
    assert _host(SC1)[0, 0] == 0.0 and _host(SC1)[1, 1] == 1.0
    G = rng.standard_normal((4, 3)).astype(dtype)
    dP0, dC0 = K.pf_weight_vjp(G, M0, SC0, lo, hi)
    dP1, dC1 = cl.pf_weight_vjp(_dev(G), M1, SC1, lo, hi)
    _close(_host(dP1), dP0, dtype)
    _close(_host(dC1), dC0, dtype)


@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
def test_affine_twins(dtype):
    from refnsm._fastchecks import all_finite

    cl = _cl()
    rng = np.random.default_rng(2)
    y = rng.standard_normal((3, 4)).astype(dtype)
    for b in (rng.standard_normal(4).astype(dtype), np.array([0.5], dtype=dtype)):  # per output, and scalar
        y0 = y.copy()
        K.add_bias(y0, b)
        yd = _dev(y)
        cl.add_bias(yd, _dev(b))
        np.testing.assert_array_equal(_host(yd), y0)  # one addition per element: bitwise
    cs = _host(cl.col_sums(_dev(y)))
    assert cs.dtype == dtype
    _close(cs, K.col_sums(y), dtype)
    np.testing.assert_array_equal(_host(cl.transpose(_dev(y))), y.T)
    for bad in (np.nan, np.inf, -np.inf, None):
        z = y.copy()
        if bad is not None:
            z[2, 1] = bad
        assert cl.all_finite(_dev(z)) == all_finite(z.reshape(-1)) == (bad is None)


@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 3), (3, 5)])
def test_spectral_pieces_twins(dtype, shape):
    """spectral_factors / spectral_core_vjp against the NumPy code of SpectralLinear._weight / _core_vjp."""
    cl = _cl()
    m = L.SpectralLinear(*shape, rng=3, dtype=dtype, sigma_min=0.2, sigma_max=1.5)
    m.load_params({"p": np.random.default_rng(4).standard_normal(m.r)})
    W0, (QU, QV, s0, sp0) = m._weight()
    W1, s1, sp1 = cl.spectral_factors(_dev(QU), _dev(QV), _dev(m.params["p"]), m.sigma_min, m.sigma_max, m.r)
    for a, b in ((W1, W0), (s1, s0), (sp1, sp0)):
        assert _host(a).dtype == dtype
        _close(_host(a), b, dtype)
    G = np.random.default_rng(5).standard_normal(shape).astype(dtype)
    ref = m._core_vjp(G, (QU, QV, s0, sp0))
    got = cl.spectral_core_vjp(_dev(G), _dev(QU), _dev(QV), s1, sp1, m.sigma_min, m.sigma_max, m.r)
    for a, b in zip(got, ref):
        _close(_host(a), b, dtype)


# ------------------------------------------------------------------------------------ the maps, end to end
MAPS = [
    pytest.param(L.Linear, {}, (3, 5), True, id="linear-3x5-b1"),
    pytest.param(L.Linear, {}, (5, 3), False, id="linear-5x3-b0"),
    pytest.param(L.PerronFrobeniusLinear, {"sigma_min": 0.5, "sigma_max": 0.9}, (3, 5), True, id="pf-3x5-b1"),
    pytest.param(L.PerronFrobeniusLinear, {}, (4, 4), False, id="pf-4x4-b0"),
    pytest.param(L.OrthogonalLinear, {}, (4, 4), False, id="orthogonal-4x4-b0"),
    pytest.param(L.OrthogonalLinear, {"compat": "neuromancer"}, (4, 4), True, id="orthogonal-4x4-b1-neuromancer"),
    pytest.param(L.SpectralLinear, {}, (5, 3), True, id="spectral-5x3-b1"),
    pytest.param(L.SpectralLinear, {"n_U_reflectors": 1, "n_V_reflectors": 0}, (3, 5), False, id="spectral-3x5-k1-0"),
    pytest.param(L.SpectralLinear, {"compat": "neuromancer"}, (3, 5), False, id="spectral-3x5-neuromancer"),
]


def _pair(cls, kw, shape, bias, dtype, seed=0):
    """The same map twice (same parameters): on the CPU and with device="cuda"."""
    cpu = cls(*shape, bias, dtype=dtype, rng=seed, **kw)
    if isinstance(cpu, L.SpectralLinear):  # singular values away from the initial 0.55 +- 0.001
        cpu.load_params({"p": np.random.default_rng(seed + 1).standard_normal(cpu.r)})
    if cpu.use_bias or "bias" in cpu.params:
        cpu.load_params({"bias": np.random.default_rng(seed + 2).uniform(-1, 1, cpu.params["bias"].shape)})
    gpu = cls(*shape, bias, dtype=dtype, params=cpu.params, device="cuda", **kw)
    return cpu, gpu


@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cls,kw,shape,bias", MAPS)
def test_map_on_device_matches_cpu(cls, kw, shape, bias, dtype):
    """effective_W, effective_W_vjp, forward (leading batch dims) and backward of a device="cuda" map, NumPy in
    and out, against the same map on the CPU."""
    cpu, gpu = _pair(cls, kw, shape, bias, dtype)
    assert gpu.device == "cuda" and cpu.device == "cpu"
    rng = np.random.default_rng(6)
    W = gpu.effective_W()
    assert isinstance(W, np.ndarray) and W.dtype == dtype
    _close(W, cpu.effective_W(), dtype)
    GW = rng.standard_normal(shape).astype(dtype)
    ref = cpu.effective_W_vjp(GW)
    got = gpu.effective_W_vjp(GW)
    assert set(got) == set(ref)
    for k in ref:
        assert isinstance(got[k], np.ndarray) and got[k].dtype == dtype and got[k].shape == ref[k].shape
        _close(got[k], ref[k], dtype)
    x = rng.standard_normal((2, 2, shape[0])).astype(dtype)
    g = rng.standard_normal((2, 2, shape[1])).astype(dtype)
    y = gpu.forward(x)
    assert isinstance(y, np.ndarray) and y.dtype == dtype and y.shape == (2, 2, shape[1])
    _close(y, cpu.forward(x), dtype)
    gx = gpu.backward(g)
    assert isinstance(gx, np.ndarray) and gx.dtype == dtype and gx.shape == x.shape
    _close(gx, cpu.backward(g), dtype)
    assert set(gpu.grads) == set(cpu.grads)
    for k in cpu.grads:
        assert isinstance(gpu.grads[k], np.ndarray) and gpu.grads[k].dtype == dtype
        _close(gpu.grads[k], cpu.grads[k], dtype)


@pytestmark_device
def test_device_arrays_stay_on_device():
    cpu, gpu = _pair(L.PerronFrobeniusLinear, {}, (3, 4), True, np.float32)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3)).astype(np.float32)
    g = rng.standard_normal((2, 4)).astype(np.float32)
    y_host = gpu.forward(x)
    gx_host = gpu.backward(g)
    grads_host = dict(gpu.grads)
    xd, gd = _dev(x), _dev(g)
    yd = gpu.forward(xd)
    assert _is_dev(yd) and yd.shape == (2, 4) and yd.dtype == np.float32
    np.testing.assert_array_equal(_host(yd), y_host)  # the same kernels: bitwise
    gxd = gpu.backward(gd)
    assert _is_dev(gxd) and gxd.shape == (2, 3)
    np.testing.assert_array_equal(_host(gxd), gx_host)
    for k, v in gpu.grads.items():  # parameter gradients are NumPy, like the parameters
        assert isinstance(v, np.ndarray)
        np.testing.assert_array_equal(v, grads_host[k])
    # a host grad_y after a device forward, and a device grad_y after a host forward: device results
    gpu.forward(xd)
    assert _is_dev(gpu.backward(g))
    gpu.forward(x)
    assert _is_dev(gpu.backward(gd))
    # a float64 device x for a float32 map is cast on the device, as the CPU converts it; a 1-D x works
    y64 = gpu.forward(_dev(x.astype(np.float64)))
    assert y64.dtype == np.float32
    np.testing.assert_array_equal(_host(y64), y_host)
    y1 = gpu.forward(_dev(x[0].copy()))
    assert y1.shape == (4,)
    _close(_host(y1), cpu.forward(x[0]), np.float32)
    _close(_host(gpu.backward(_dev(g[0].copy()))), cpu.backward(g[0]), np.float32)
    # effective_W_vjp with a device cotangent
    GW = rng.standard_normal((3, 4)).astype(np.float32)
    got, ref = gpu.effective_W_vjp(_dev(GW)), cpu.effective_W_vjp(GW)
    for k in ref:
        _close(got[k], ref[k], np.float32)
    # inputs untouched
    np.testing.assert_array_equal(_host(xd), x)
    np.testing.assert_array_equal(_host(gd), g)
    # an empty batch
    y0 = gpu.forward(np.zeros((0, 3), dtype=np.float32))
    assert y0.shape == (0, 4)
    assert gpu.backward(np.zeros((0, 4), dtype=np.float32)).shape == (0, 3)
    np.testing.assert_array_equal(gpu.grads["weight"], 0.0)


@pytestmark_device
def test_repeatable_bitwise():
    for cls in (L.OrthogonalLinear, L.SpectralLinear, L.PerronFrobeniusLinear):
        _, gpu = _pair(cls, {}, (4, 4), True, np.float64, seed=8)
        x = _dev(np.random.default_rng(9).standard_normal((3, 4)))
        g = _dev(np.random.default_rng(10).standard_normal((3, 4)))
        runs = []
        for _ in range(2):
            y = _host(gpu.forward(x))
            gx = _host(gpu.backward(g))
            runs.append([y, gx] + [gpu.grads[k] for k in sorted(gpu.grads)])
        for a, b in zip(*runs):
            assert a.tobytes() == b.tobytes()


@pytestmark_device
def test_gradcheck_on_device():
    """The device VJPs against central finite differences of the device forward itself (float64, tiny sizes; the
    other VJPs are held to the CPU VJPs above, which tests/test_linear.py gradchecks)."""
    from refnsm.gradcheck import gradcheck

    base = L.OrthogonalLinear(2, 2, rng=11, device="cuda")
    gradcheck(lambda U: base.with_params(U=U).effective_W(),
              lambda G, U: base.with_params(U=U).effective_W_vjp(G)["U"],
              [base.params["U"]], raise_on_fail=True)


# ------------------------------------------------------------------------------------------------ bad input
@pytestmark_device
def test_bad_input_device_arrays():
    from numba import cuda

    cpu, gpu = _pair(L.Linear, {}, (3, 4), True, np.float64)
    with pytest.raises(TypeError, match="x: expected a float32 or float64 device array, got dtype int64"):
        gpu.forward(_dev(np.ones((2, 3), dtype=np.int64)))
    with pytest.raises(ValueError, match=r"x: expected last dimension insize = 3, got shape \(2, 4\)"):
        gpu.forward(_dev(np.ones((2, 4))))
    with pytest.raises(ValueError, match="x: expected a C-contiguous device array"):
        gpu.forward(cuda.to_device(np.asfortranarray(np.ones((2, 3)))))
    bad = np.ones((2, 3))
    bad[1, 2] = np.nan
    with pytest.raises(ValueError) as cpu_err:
        cpu.forward(bad)
    with pytest.raises(ValueError) as gpu_err:
        gpu.forward(_dev(bad))
    assert str(gpu_err.value) == str(cpu_err.value) and str(gpu_err.value).startswith("x: expected finite")
    with pytest.raises(RuntimeError, match="call forward"):
        L.Linear(3, 4, device="cuda").backward(_dev(np.ones((2, 4))))
    gpu.forward(_dev(np.ones((2, 3))))
    with pytest.raises(ValueError, match=r"grad_y: expected shape \(2, 4\)"):
        gpu.backward(_dev(np.ones((2, 3))))
    with pytest.raises(ValueError, match="grad_y: expected finite"):
        gpu.backward(_dev(np.full((2, 4), np.inf)))
    with pytest.raises(ValueError, match="grad_W: expected 2 dimensions"):
        gpu.effective_W_vjp(_dev(np.ones(12)))
    with pytest.raises(ValueError, match=r"grad_W: expected shape \(3, 4\)"):
        gpu.effective_W_vjp(_dev(np.ones((4, 3))))
    before = {k: v.copy() for k, v in gpu.params.items()}
    for k, v in gpu.params.items():  # nothing mutated by the failures
        np.testing.assert_array_equal(v, before[k])


@pytestmark_device
def test_bad_input_host_arrays_same_messages_as_cpu():
    cpu, gpu = _pair(L.OrthogonalLinear, {}, (3, 3), False, np.float64)
    bad = np.ones((2, 3))
    bad[0, 1] = np.inf
    calls = [
        lambda m: m.forward(np.ones((2, 4))),
        lambda m: m.forward(bad),
        lambda m: m.forward("abc"),
        lambda m: m.forward(np.ones((2, 3), dtype=complex)),
        lambda m: m.forward(np.float64(1.0)),
        lambda m: m.effective_W_vjp(np.ones((3, 4))),
        lambda m: m.effective_W_vjp(np.ones(3)),
        lambda m: (m.forward(np.ones((2, 3))), m.backward(np.ones((3, 3)))),
        lambda m: (m.forward(np.ones((2, 3))), m.backward(bad)),
    ]
    for call in calls:
        with pytest.raises((ValueError, TypeError)) as c:
            call(cpu)
        with pytest.raises(type(c.value)) as g:
            call(gpu)
        assert str(g.value) == str(c.value)


def test_device_option_is_validated():
    """No GPU needed: the option is checked when it is set, before anything imports numba.cuda."""
    with pytest.raises(ValueError, match="device: expected one of 'cpu', 'cuda'; got 'bogus'"):
        L.Linear(3, 3, device="bogus")
    m = L.PerronFrobeniusLinear(3, 3)
    with pytest.raises(ValueError, match="device: expected one of 'cpu', 'cuda'; got 'gpu'"):
        m.device = "gpu"
    assert m.device == "cpu"
    m = L.OrthogonalLinear(3, 3, bias=True, device="cuda")
    assert m.device == "cuda" and "device='cuda'" in repr(m) and m.with_params().device == "cuda"


@pytestmark_device
@pytest.mark.parametrize("entry", __import__("refnsm.linear._catalog", fromlist=["CATALOG"]).CATALOG,
                         ids=lambda e: e.name)
def test_every_map_runs_forward_and_backward_on_device(entry):
    """Every map of the catalog, device="cuda" against the CPU: effective_W, effective_W_vjp, forward, backward.

    The four maps with a device weight build W there; the others build it on the host and multiply on the device
    (subclasses such as IdentityInitLinear and SymmetricSpectralLinear take the host weight: their math may differ
    from the parent's device weight)."""
    insize, outsize = entry.shapes[-1]
    for bias in (False, True) if entry.cls is not L.TrivialNullSpaceLinear else (False,):  # it refuses a bias
        cpu = entry.build(insize, outsize, bias=bias, seed=3)
        gpu = entry.build(insize, outsize, bias=bias, seed=3, device="cuda")
        gpu.load_params(cpu.params)
        if isinstance(cpu, L.L0Linear):  # a fresh noise sample at every call in training mode: compare in eval mode
            cpu.eval(), gpu.eval()
        rng = np.random.default_rng(4)
        x = rng.standard_normal((3, insize))
        g = rng.standard_normal((3, outsize))
        GW = rng.standard_normal((insize, outsize))
        _close(gpu.effective_W(), cpu.effective_W(), np.float64)
        ref, got = cpu.effective_W_vjp(GW), gpu.effective_W_vjp(GW)
        for k in ref:
            _close(got[k], ref[k], np.float64)
        _close(gpu.forward(x), cpu.forward(x), np.float64)
        gxd = gpu.backward(_dev(g))  # a device cotangent: a device input gradient
        assert _is_dev(gxd)
        _close(_host(gxd), cpu.backward(g), np.float64)
        # the parameter gradients are the pull-back of G = x^T g: G (the device's tiled product) within tolerance of
        # the CPU's, then every gradient within tolerance of the CPU's pull-back of that same G (a VJP such as
        # SymmetricSpectralLinear's amplifies a 1-ulp change of G beyond 1e-12 of its own largest entry)
        from refnsm.cuda._arrays import DeviceArrays

        Gd = _host(DeviceArrays.matmul_at(_dev(x), _dev(g)))
        _close(Gd, x.T @ g, np.float64)
        want = cpu.effective_W_vjp(Gd) if not cpu.bias_in_effective_W else None
        for k in cpu.grads:
            assert isinstance(gpu.grads[k], np.ndarray)
            if want is None or k == gpu._bias_key:
                _close(gpu.grads[k], cpu.grads[k], np.float64)
            else:
                _close(gpu.grads[k], want[k], np.float64)


def test_import_and_construction_do_not_import_numba_cuda():
    code = ("import sys, numpy as np, refnsm.linear as L\n"
            "m = L.SpectralLinear(3, 4, True); m.forward(np.ones((2, 3))); m.backward(np.ones((2, 4)))\n"
            "L.Linear(3, 3, device='cuda')\n"
            "print('numba.cuda' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


@pytestmark_device
def test_setting_the_device_drops_the_forward_cache():
    m = L.Linear(3, 2, rng=0)
    x = np.ones((1, 3))
    m.forward(x)
    m.device = "cuda"
    with pytest.raises(RuntimeError, match="call forward"):
        m.backward(np.ones((1, 2)))
    m.forward(x)
    m.device = "cpu"
    with pytest.raises(RuntimeError, match="call forward"):
        m.backward(np.ones((1, 2)))


@pytest.mark.skipif(MODE is not None, reason="this process can launch kernels")
def test_entry_points_explain_missing_device():
    """Without a GPU and without the simulator, a device="cuda" map raises before any work, saying what to do."""
    m = L.Linear(3, 2, device="cuda")
    with pytest.raises(RuntimeError, match="no CUDA GPU .*NUMBA_ENABLE_CUDASIM=1"):
        m.forward(np.ones((2, 3)))
    with pytest.raises(RuntimeError, match="device='cpu'"):
        m.effective_W()
    with pytest.raises(RuntimeError, match="no CUDA GPU"):  # as in every family: the device is checked first
        m.forward(np.ones((2, 4)))
