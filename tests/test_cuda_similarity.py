"""CUDA twins of the similarity-matching family against their CPU twins (float64 within 1e-12, float32 within 1e-5).

Where the kernels run: see the docstring of tests/cuda_support.py.  In short, on a GPU (or with
NUMBA_ENABLE_CUDASIM=1 set before Python starts) everything runs in this process; otherwise
``test_kernels_under_simulator`` re-runs this file in a subprocess under the simulator.  Sizes are tiny because the
simulator runs every CUDA thread as a Python thread.

Under the simulator (no fused multiply-add, the CPU's order of operations) the fast loop, the gathers and the
ordered sums are checked bitwise as well; on hardware NVVM may contract ``a*b + c``, so only the tolerances apply.
A change ``max|y^{t+1} - y^t|`` and a fixed-point residual are differences of ``y``-sized numbers: their error is
measured against ``max|y|`` (an ulp of ``y`` is what they can honestly differ by), everything else against itself.
"""

import copy
import subprocess
import sys
import warnings

import numpy as np
import pytest
from cuda_support import DTYPES, MODE, ROOT, TOL, close as _close, dev as _dev, host as _host, \
    is_dev as _isdev, needs_device, run_file_under_simulator

from refnsm.similarity import (Conv2d, Identity, Linear, MultiSimilarityMatching, SimilarityMatching,
                               SupervisedSimilarityMatching)
from refnsm.similarity import _kernels as K

pytestmark_device = needs_device
SIM = MODE == "simulator"  # exact IEEE arithmetic in the CPU's order: bitwise checks


def _scalar_close(a, b, dtype, scale=None):
    """|a - b| <= tol * max(|b|, scale) (scale: the size of the terms a sum cancels, when that is the honest yardstick)."""
    s = max(abs(float(b)), scale or 0.0)
    assert abs(float(a) - float(b)) <= TOL[np.dtype(dtype)] * s, (a, b)


def _cs():
    from refnsm.similarity import _cuda_kernels as cs

    return cs


def _spd(rng, m, lo=0.5, hi=1.5):
    q, _ = np.linalg.qr(rng.standard_normal((m, m)))
    return (q * rng.uniform(lo, hi, m)) @ q.T


def _drive(rng, T, m, dtype):
    D = rng.standard_normal((T, m))
    D[0] = -np.abs(D[0])  # NSM: this row stays exactly 0 (an exact fixed point after one update)
    return D.astype(dtype)


def _cpu_changes(MT, D, eta, relu, n):
    """The CPU's per-update maximum change, update by update (fast_step on a copy)."""
    Y = np.zeros_like(D)
    return np.array([K.fast_step(MT, D, Y, eta, relu) for _ in range(n)])


@pytest.mark.skipif(MODE is not None, reason="the kernels run in this process")
def test_kernels_under_simulator():
    run_file_under_simulator(__file__)


def test_import_and_cpu_path_do_not_import_cuda():
    code = ("import sys, numpy as np, refnsm, refnsm.similarity as s;"
            "m = s.SimilarityMatching(s.Conv2d(1, 2, 2, rng=0), 2, iteration_projection='relu');"
            "x = np.ones((1, 1, 3, 3)); y = m(x); m.loss(x, y); m.backward(); m.train_step(x, lr=0.1);"
            "s.Linear(2, 2, rng=0)(np.ones((1, 2)));"
            "bad = [k for k in ('numba.cuda', 'refnsm.cuda') if k in sys.modules]; assert not bad, bad")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr


def test_ptx_compiles_for_hardware():
    """Every similarity kernel is real nopython CUDA: NVVM compiles it to PTX for sm_75 (no GPU needed)."""
    if MODE == "simulator":
        pytest.skip("the simulator has no compiler")
    from numba import cuda, types

    cs = _cs()
    cc = (7, 5)
    i64, b1, f64 = types.int64, types.boolean, types.float64
    d1, d2 = types.Array(f64, 1, "C"), types.Array(f64, 2, "C")
    try:
        cuda.compile_ptx(cs._scan_max.py_func, (d2, d1), cc=cc)
    except Exception as exc:  # no libNVVM on this machine
        pytest.skip(f"NVVM unavailable: {type(exc).__name__}: {exc}")
    cuda.compile_ptx(cs._segment_max.py_func, (d2, i64, d2), cc=cc)
    for dt in DTYPES:
        f = types.float64 if dt == np.float64 else types.float32
        a1, a2, a3, a4 = (types.Array(f, n, "C") for n in (1, 2, 3, 4))
        ints = (i64,) * 10
        sigs = {
            "transpose": (a2, a2), "fill": (a1, f),
            "loop_rows": (a2, a2, a2, a2, a2, i64, f64, b1, b1, d2),
            "matmul_rows": (a2, a2, a2), "gradient_step": (a2, a2, a2, f64, a2),
            "fp_terms": (a2, a2, a2, b1, d2, d1, d1),
            "im2col": (a4,) + ints + (a2,), "col2im": (a2,) + ints + (a4,),
            "linear_encode": (a2, a2, a1, b1, a2), "fused_g": (a1, a1, f64, f64, b1, a1),
            "decay_add": (a1, a1, f64), "grad_m": (a1, a1, f64, f64, a1), "axpy": (a1, a1, f64),
            "col_sums": (a2, a1), "add_into": (a1, a1, b1), "repeat_rows": (a2, i64, a2),
            "to_internal": (a3, a2), "from_internal": (a2, a3), "scale": (a1, f, a1),
            "add_scaled": (a1, a1, f, a1), "bias_add": (a2, a1), "sum_positions": (a2, i64, a2),
        }
        kernels = cs._kernels(dt)
        assert set(sigs) == set(kernels)
        for name, sig in sigs.items():
            cuda.compile_ptx(kernels[name].py_func, sig, cc=cc)
        cuda.compile_ptx(cs._products.py_func, (a1, a1, d1), cc=cc)


# ------------------------------------------------------------------------------------------ kernel twins
@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("relu", [False, True])
def test_fast_loop_twin(dtype, relu):
    """tol = 0 (all updates, per-row early exit at exact fixed points) and tol > 0 (the global stopping rule)."""
    cs = _cs()
    rng = np.random.default_rng(1)
    m = 3
    M = _spd(rng, m, 0.6, 1.2).astype(dtype)
    MT = np.ascontiguousarray(M.T)
    D = _drive(rng, 5, m, dtype)
    changes = _cpu_changes(MT, D, 0.9, relu, 30)
    tol_stop = float(np.sqrt(changes[8] * changes[9]))  # far from both neighbours: stops after update 9 everywhere
    for tol, max_iter in ((0.0, 30), (tol_stop, 30), (1e-30, 12)):
        Y0 = np.zeros_like(D)
        r0 = K.fast_loop(MT, D, Y0, 0.9, relu, tol, max_iter)
        Yd = _dev(np.zeros_like(D))
        r1 = cs.fast_loop(_dev(MT), _dev(D), Yd, 0.9, relu, tol, max_iter)
        Y1 = _host(Yd)
        assert Y1.dtype == dtype
        assert r1[0] == r0[0] and r1[2] == r0[2], (r0, r1)
        _scalar_close(r1[1], r0[1], dtype, scale=np.abs(Y0).max())
        _close(Y1, Y0, dtype)
        if SIM:
            np.testing.assert_array_equal(Y1, Y0)
            assert r1 == r0
    assert r0 == (12, r0[1], False)  # the last case ran to max_iter
    # max_iter = 0: nothing happens
    Yd = _dev(np.zeros_like(D))
    assert cs.fast_loop(_dev(MT), _dev(D), Yd, 0.9, relu, 1e-3, 0) == (0, 0.0, False)
    assert not _host(Yd).any()


@pytestmark_device
def test_fast_loop_stops_at_every_update_of_a_chunk():
    """The chunked tol > 0 loop stops exactly where the CPU does, wherever that falls in a chunk (including a chunk's
    last update and the re-run from a chunk's start), and leaves the state after the stopping update."""
    cs = _cs()
    rng = np.random.default_rng(2)
    m = 2
    M = _spd(rng, m, 0.3, 0.9)
    MT = np.ascontiguousarray(M.T)
    D = rng.standard_normal((3, m))
    n = 16  # chunks of 4, 8, 16 updates: stops in the first, second and third chunk
    changes = _cpu_changes(MT, D, 1.0, False, n)
    assert np.all(np.diff(changes) < 0)  # a contraction: the stopping point is set by tol
    MTd, Dd = _dev(MT), _dev(D)
    for stop in (2, 3, 4, 5, 11, 12, 13, 16):
        tol = float(np.sqrt(changes[stop - 1] * changes[stop - 2]))
        Y0 = np.zeros_like(D)
        r0 = K.fast_loop(MT, D, Y0, 1.0, False, tol, 40)
        assert r0[0] == stop and r0[2]
        Yd = _dev(np.zeros_like(D))
        r1 = cs.fast_loop(MTd, Dd, Yd, 1.0, False, tol, 40)
        assert r1[0] == stop and r1[2] and abs(r1[1] - r0[1]) <= 1e-12 * r0[1]
        _close(_host(Yd), Y0, np.float64)


@pytestmark_device
@pytest.mark.parametrize("tol", [0.0, 1e-6])
def test_fast_loop_divergence_propagates_nan(tol):
    """An unstable step (eta * lambda_max = 12 > 2) overflows to Inf and NaN: the change is NaN on both sides, the tol rule
    never fires, and the states agree (NaN where the CPU has NaN)."""
    cs = _cs()
    M = np.array([[1.0, 0.2], [0.2, 1.0]])
    MT = np.ascontiguousarray(M.T)
    D = np.array([[1.0, -0.5], [0.0, 0.0], [-1.0, -2.0]])  # the zero row stays at its fixed point 0
    Y0 = np.zeros_like(D)
    r0 = K.fast_loop(MT, D, Y0, 10.0, False, tol, 400)
    assert np.isnan(r0[1]) and np.isnan(Y0[[0, 2]]).all() and not Y0[1].any() and r0[0] == 400 and not r0[2]
    Yd = _dev(np.zeros_like(D))
    with warnings.catch_warnings():  # the simulator computes with NumPy scalars, which warn on overflow
        warnings.simplefilter("ignore", RuntimeWarning)
        r1 = cs.fast_loop(_dev(MT), _dev(D), Yd, 10.0, False, tol, 400)
    assert np.isnan(r1[1]) and r1[0] == 400 and not r1[2]
    np.testing.assert_array_equal(np.isnan(_host(Yd)), np.isnan(Y0))


@pytestmark_device
def test_divergence_is_reported_like_the_cpu():
    """A model whose fast loop overflows: diverged, NaN change and residual, NaN in the same places as on the CPU."""
    model = SimilarityMatching(Linear(2, 2, bias=False, rng=0), 2, iteration_lr=10.0, max_iterations=400)
    model.params["competitor.weight"][...] = [[1.0, 0.2], [0.2, 1.0]]
    cpu, gpu = _pair(model)
    x = np.array([[1.0, -0.5], [0.0, 0.0]])  # the zero sample stays at 0
    y0 = cpu(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        y1 = gpu(x)
    d0, d1 = cpu.diagnostics, gpu.diagnostics
    assert d0.diverged and d1.diverged and d1.iterations == d0.iterations == 400
    for a, b in ((d1.max_change, d0.max_change), (d1.residual, d0.residual), (d1.energy, d0.energy)):
        assert np.isnan(a) == np.isnan(b)
    assert np.isnan(d1.max_change) and np.isnan(d1.residual)
    np.testing.assert_array_equal(np.isnan(y1), np.isnan(y0))
    assert not y1[1].any()


@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
def test_single_update_kernels_twins(dtype):
    """fast_step, matmul_rows, gradient_step and fixed_point_stats on a state with exact zeros."""
    cs = _cs()
    rng = np.random.default_rng(3)
    m = 3
    MT = np.ascontiguousarray(_spd(rng, m).T).astype(dtype)
    D = _drive(rng, 4, m, dtype)
    Y = np.maximum(rng.standard_normal((4, m)), 0.0).astype(dtype)
    for relu in (False, True):
        Y0 = Y.copy()
        c0 = K.fast_step(MT, D, Y0, 0.7, relu)
        Yd = _dev(Y)
        c1 = cs.fast_step(_dev(MT), _dev(D), Yd, 0.7, relu)
        _close(_host(Yd), Y0, dtype)
        assert abs(c1 - c0) <= TOL[np.dtype(dtype)] * c0
        r0, e0 = K.fixed_point_stats(MT, D, Y, relu)
        r1, e1 = cs.fixed_point_stats(_dev(MT), _dev(D), _dev(Y), relu)
        assert abs(r1 - r0) <= TOL[np.dtype(dtype)] * r0
        assert abs(e1 - e0) <= 1e-12 * abs(e0)  # float64 sums of the same dtype terms on both sides
        if SIM:
            np.testing.assert_array_equal(_host(Yd), Y0)
            assert (c1, r1) == (c0, r0)
    out0 = np.empty_like(Y)
    K.matmul_rows(MT, Y, out0)
    out1 = _dev(np.empty_like(Y))
    cs.matmul_rows(_dev(MT), _dev(Y), out1)
    _close(_host(out1), out0, dtype)
    K.gradient_step(MT, D, Y, 0.7, out0)
    cs.gradient_step(_dev(MT), _dev(D), _dev(Y), 0.7, out1)
    _close(_host(out1), out0, dtype)
    if SIM:
        np.testing.assert_array_equal(_host(out1), out0)


@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("geom", [((2, 3), (1, 1), (0, 0), (1, 1)), ((3, 2), (2, 1), (1, 2), (2, 1))],
                         ids=["plain", "stride-pad-dilation"])
def test_im2col_col2im_twins(dtype, geom):
    """A gather and an adjoint summed in the CPU's order: bitwise equal on every device."""
    cs = _cs()
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = geom
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 2, 4, 5)).astype(dtype)
    Ho = (4 + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (5 + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    args = (kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)
    cols0 = np.empty((2 * Ho * Wo, 2 * kh * kw), dtype=dtype)
    K.im2col(x, *args, cols0)
    cols1 = _dev(np.empty_like(cols0))
    cs.im2col(_dev(x), *args, cols1)
    np.testing.assert_array_equal(_host(cols1), cols0)
    g = rng.standard_normal(cols0.shape).astype(dtype)
    dx0 = np.empty_like(x)
    K.col2im(g, *args, dx0)
    dx1 = _dev(np.full_like(x, np.nan))  # overwritten
    cs.col2im(_dev(g), *args, dx1)
    np.testing.assert_array_equal(_host(dx1), dx0)


@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
def test_sparse_matmul_twins(dtype):
    cs = _cs()
    rng = np.random.default_rng(5)
    A = (rng.standard_normal((5, 3)) * (rng.random((5, 3)) < 0.5)).astype(dtype)
    B = rng.standard_normal((3, 2)).astype(dtype)
    Z = rng.standard_normal((5, 2)).astype(dtype)
    for kern, twin, a, b, shape in ((K.matmul_skip, cs.matmul_skip, A, B, (5, 2)),
                                    (K.matmul_tn_skip, cs.matmul_tn_skip, A, Z, (3, 2))):
        out0 = np.empty(shape, dtype=dtype)
        kern(a, b, out0)
        out1 = _dev(np.empty(shape, dtype=dtype))
        twin(_dev(a), _dev(b), out1)
        _close(_host(out1), out0, dtype)
        if SIM:  # skipping exact zeros changes no sum: the dense product in the same order is bitwise the same
            np.testing.assert_array_equal(_host(out1), out0)


@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", [(True, 0, True, 0.0), (False, 1, False, 1e-7), (True, 2, True, 1e-4)],
                         ids=["nsm-weight-bias", "sm-whiten", "nsm-none-tol"])
def test_linear_train_step_twin(dtype, cfg):
    cs = _cs()
    relu, reg, bias, tol = cfg
    rng = np.random.default_rng(6)
    B, n, m = 4, 3, 3
    x = rng.standard_normal((B, n)).astype(dtype)
    W = (0.5 * rng.standard_normal((m, n))).astype(dtype)
    b = (0.1 * rng.standard_normal(m)).astype(dtype) if bias else np.zeros(0, dtype=dtype)
    M = _spd(rng, m, 0.8, 1.2).astype(dtype)
    W0, b0, M0, Y0 = W.copy(), b.copy(), M.copy(), np.zeros((B, m), dtype=dtype)
    out0 = K.linear_train_step(x, W0, b0, bias, M0, 0.8, relu, tol, 25, reg, 0.05, 0.5, Y0)
    Wd, bd, Md, Yd = _dev(W), _dev(b if bias else np.zeros(1, dtype=dtype)), _dev(M), _dev(np.zeros((B, m), dtype))
    out1 = cs.linear_train_step(_dev(x), Wd, bd, bias, Md, 0.8, relu, tol, 25, reg, 0.05, 0.5, Yd)
    L0, it0, ch0, cv0, res0, en0, gW0, gb0, gM0 = out0
    L1, it1, ch1, cv1, res1, en1, gW1, gb1, gM1 = out1
    assert (it1, cv1) == (it0, cv0)
    _scalar_close(L1, L0, dtype)
    _scalar_close(ch1, ch0, dtype, scale=np.abs(Y0).max())
    _scalar_close(res1, res0, dtype, scale=np.abs(Y0).max())
    _scalar_close(en1, en0, dtype)
    _close(_host(Yd), Y0, dtype)
    for g1, g0 in ((gW1, gW0), (gb1, gb0), (gM1, gM0), (Wd, W0), (Md, M0)):
        assert _host(g1).dtype == dtype
        _close(_host(g1), g0, dtype)
    if bias:
        _close(_host(bd), b0, dtype)
    if SIM and dtype == np.float64:  # the same sums in the same order: only the float64 reductions differ
        np.testing.assert_array_equal(_host(Yd), Y0)
        np.testing.assert_array_equal(_host(gW1), gW0)
        np.testing.assert_array_equal(_host(Wd), W0)


# ------------------------------------------------------------------------------------ encoder entry points
@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
def test_encoder_call_and_vjp_on_device(dtype):
    rng = np.random.default_rng(7)
    encs = [(Linear(3, 2, rng=1, dtype=dtype), (3, 3)),
            (Linear(3, 2, bias=False, rng=2, dtype=dtype), (2, 3)),
            (Conv2d(2, 2, (2, 3), stride=(2, 1), padding=(1, 0), dilation=(1, 2), rng=3, dtype=dtype), (1, 2, 4, 5)),
            (Identity(dtype=dtype), (2, 2, 3))]
    for enc, xshape in encs:
        x = rng.standard_normal(xshape)  # float64 input: cast to the encoder's dtype on both paths
        u0 = enc(x)
        u1 = enc(x, device="cuda")
        assert isinstance(u1, np.ndarray) and u1.dtype == u0.dtype == dtype and u1.shape == u0.shape
        _close(u1, u0, dtype)
        g = rng.standard_normal(u0.shape)
        gx0, gp0 = enc.vjp(g, x)
        gx1, gp1 = enc.vjp(g, x, device="cuda")
        assert isinstance(gx1, np.ndarray) and gx1.dtype == dtype
        _close(gx1, gx0, dtype)
        assert set(gp1) == set(gp0)
        for k in gp0:
            assert gp1[k].dtype == dtype and gp1[k].shape == gp0[k].shape
            _close(gp1[k], gp0[k], dtype)
        # device arrays in: device arrays out, same values
        xd = _dev(x.astype(dtype))
        ud = enc(xd, device="cuda")
        gxd, gpd = enc.vjp(_dev(g.astype(dtype)), xd, device="cuda")
        assert _isdev(ud) and _isdev(gxd) and all(_isdev(v) for v in gpd.values())
        np.testing.assert_array_equal(_host(ud), u1)
        np.testing.assert_array_equal(_host(gxd), gx1)


# ------------------------------------------------------------------------------------ model entry points
def _pair(model):
    """(cpu model, cuda model) with the same parameters."""
    gpu = copy.deepcopy(model)
    gpu.device = "cuda"
    return model, gpu


def _same_diag(d1, d0, dtype, y):
    """Diagnostics of the two paths (changes and residuals against max|y|, see the module docstring)."""
    assert (d1.iterations, d1.converged, d1.stopped_by_hook, d1.diverged) == \
        (d0.iterations, d0.converged, d0.stopped_by_hook, d0.diverged)
    ys = float(np.abs(y).max())
    _scalar_close(d1.max_change, d0.max_change, dtype, scale=ys)
    _scalar_close(d1.residual, d0.residual, dtype, scale=ys)
    _scalar_close(d1.energy, d0.energy, dtype)


def _compare_grads(gpu, cpu, dtype, term=0.0):
    for k in cpu.params:
        g1, g0 = gpu.grads[k], cpu.grads[k]
        assert isinstance(g1, np.ndarray) and g1.dtype == g0.dtype == dtype
        assert np.abs(g1 - g0).max() <= TOL[np.dtype(dtype)] * (np.abs(g0).max() + term), k


@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
def test_conv_nsm_forward_loss_backward_train_step(dtype):
    rng = np.random.default_rng(8)
    enc = Conv2d(1, 3, 2, stride=1, padding=0, rng=4, dtype=dtype)
    model = SimilarityMatching(enc, 3, iteration_projection="relu", tol=1e-5, max_iterations=30, iteration_lr=0.8,
                               regularization="whiten")
    model.params["competitor.weight"][...] = _spd(rng, 3, 0.7, 1.3)
    cpu, gpu = _pair(model)
    x = rng.standard_normal((2, 1, 3, 3)).astype(dtype)
    y0, y1 = cpu(x), gpu(x)
    assert isinstance(y1, np.ndarray) and y1.dtype == dtype and y1.shape == y0.shape == (2, 3, 2, 2)
    _close(y1, y0, dtype)
    _same_diag(gpu.diagnostics, cpu.diagnostics, dtype, y0)
    assert gpu.iteration_idx == cpu.iteration_idx and cpu.diagnostics.converged
    _close(gpu.y, cpu.y, dtype)
    L0, L1 = cpu.loss(x, y0), gpu.loss(x, y0)
    assert L1.dtype == L0.dtype == dtype
    _scalar_close(L1, L0, dtype)
    (gx0,), (gx1,) = cpu.backward(0.5), gpu.backward(0.5)
    assert isinstance(gx1, np.ndarray) and gx1.dtype == dtype
    _close(gx1, gx0, dtype)
    _compare_grads(gpu, cpu, dtype)
    for _ in range(2):
        (ya, La), (yb, Lb) = cpu.train_step(x, lr=0.05), gpu.train_step(x, lr=0.05)
        _close(yb, ya, dtype)
        _scalar_close(Lb, La, dtype)
        for k in cpu.params:
            _close(gpu.params[k], cpu.params[k], dtype)


@pytestmark_device
def test_supervised_conv_with_labels():
    """The label drive broadcast over positions, its gradient summed back over them, ("weight", "whiten")."""
    rng = np.random.default_rng(9)
    model = SupervisedSimilarityMatching(Conv2d(1, 2, 2, rng=5), 3, 2, label_bias=True, iteration_projection="relu",
                                         max_iterations=12, rng=6)
    model.params["competitor.weight"][...] = _spd(rng, 2, 0.7, 1.3)
    cpu, gpu = _pair(model)
    x = rng.standard_normal((2, 1, 3, 3))
    lab = np.eye(3)[[2, 0]]
    y0, y1 = cpu(x, lab), gpu(x, lab)
    _close(y1, y0, np.float64)
    _same_diag(gpu.diagnostics, cpu.diagnostics, np.float64, y0)
    _scalar_close(gpu.loss(x, lab, y0), cpu.loss(x, lab, y0), np.float64)
    g0, g1 = cpu.backward(), gpu.backward()
    for a, b in zip(g1, g0):
        _close(a, b, np.float64)
    _compare_grads(gpu, cpu, np.float64)
    _close(gpu(x), cpu(x), np.float64)  # inference without labels


@pytestmark_device
@pytest.mark.parametrize("compat", [None, "pynsm"])
def test_multi_input_skipped_inputs_and_compat(compat):
    rng = np.random.default_rng(10)
    e0, e1 = Linear(3, 2, rng=7), Linear(2, 2, bias=False, rng=8)
    model = MultiSimilarityMatching([e0, e1], 2, regularization=("whiten", "weight"), compat=compat, max_iterations=8)
    model.params["competitor.weight"][...] = _spd(rng, 2)
    cpu, gpu = _pair(model)
    x0, x1 = rng.standard_normal((3, 3)), rng.standard_normal((3, 2))
    for xs in ((x0, x1), (None, x1), (x0,)):
        y0, y1 = cpu(*xs), gpu(*xs)
        _close(y1, y0, np.float64)
        _scalar_close(gpu.loss(*xs, y0), cpu.loss(*xs, y0), np.float64)
        g0, g1 = cpu.backward(), gpu.backward()
        assert len(g1) == len(g0) == len(xs)
        for a, b in zip(g1, g0):
            assert (a is None) == (b is None)
            if b is not None:
                _close(a, b, np.float64)
        _compare_grads(gpu, cpu, np.float64)
        assert gpu.backward(inputs=False) == (None,) * len(xs)


@pytestmark_device
def test_hooks_and_callable_projection_on_device():
    """The Python-level path: hooks see model.y (a host copy), can stop the loop; callables get NumPy arrays."""
    rng = np.random.default_rng(11)
    model = SimilarityMatching(Linear(3, 2, rng=9), 2, iteration_projection="relu", max_iterations=6, tol=1e-9)
    model.params["competitor.weight"][...] = _spd(rng, 2)
    cpu, gpu = _pair(model)
    x = rng.standard_normal((3, 3))
    logs = {}
    for name, mdl in (("cpu", cpu), ("gpu", gpu)):
        log = logs[name] = []
        mdl.register_iteration_hook("pre", lambda md, log=log: log.append("pre"))
        mdl.register_iteration_hook("iteration", lambda md, log=log: log.append((md.iteration_idx, md.y.copy())))
        mdl.register_iteration_hook("post", lambda md, log=log: log.append("post"))
    y0, y1 = cpu(x), gpu(x)
    _close(y1, y0, np.float64)
    _same_diag(gpu.diagnostics, cpu.diagnostics, np.float64, y0)
    assert [e if isinstance(e, str) else e[0] for e in logs["gpu"]] == \
        [e if isinstance(e, str) else e[0] for e in logs["cpu"]] == ["pre"] + list(range(6)) + ["post"]
    for a, b in zip(logs["gpu"][1:-1], logs["cpu"][1:-1]):
        assert isinstance(a[1], np.ndarray)
        _close(a[1], b[1], np.float64)
    for mdl in (cpu, gpu):
        mdl.register_iteration_hook("iteration", lambda md: md.iteration_idx == 2)
    cpu(x), gpu(x)
    assert gpu.diagnostics.stopped_by_hook and gpu.diagnostics.iterations == cpu.diagnostics.iterations == 3
    # a callable projection (runs on NumPy copies) gives the ReLU's result
    proj = SimilarityMatching(Linear(3, 2, rng=9), 2, iteration_projection=lambda z: np.maximum(z, 0.0),
                              max_iterations=5, device="cuda")
    proj.params["competitor.weight"][...] = model.M
    relu = SimilarityMatching(Linear(3, 2, rng=9), 2, iteration_projection="relu", max_iterations=5)
    relu.params["competitor.weight"][...] = model.M
    yr = relu(x)
    _close(proj(x), yr, np.float64)
    _same_diag(proj.diagnostics, relu.diagnostics, np.float64, yr)
    with pytest.raises(ValueError, match="iteration_projection: expected it to return shape"):
        proj.iteration_projection = lambda z: z[:1]
        proj(x)


@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_linear_train_step_on_device(dtype):
    """A single Linear encoder without hooks takes the fused twin; it equals the CPU (fused) step."""
    rng = np.random.default_rng(12)
    model = SimilarityMatching(Linear(4, 3, rng=10, dtype=dtype), 3, iteration_projection="relu", tol=1e-6,
                               iteration_lr=0.6, max_iterations=30, tau=0.5)
    cpu, gpu = _pair(model)
    for B in (1, 3):
        x = rng.standard_normal((B, 4)).astype(dtype)
        (y0, L0), (y1, L1) = cpu.train_step(x, lr=0.1), gpu.train_step(x, lr=0.1)
        assert isinstance(y1, np.ndarray) and y1.dtype == dtype and L1.dtype == dtype
        _close(y1, y0, dtype)
        _scalar_close(L1, L0, dtype)
        _same_diag(gpu.diagnostics, cpu.diagnostics, dtype, y0)
        term = 4.0 * B * max(np.abs(y0).max(), 1.0) * max(np.abs(x).max(), 1.0) / y0.size
        _compare_grads(gpu, cpu, dtype, term)
        for k in cpu.params:
            _close(gpu.params[k], cpu.params[k], dtype)
    _close(gpu.y, cpu.y, dtype)


@pytestmark_device
def test_device_arrays_stay_on_device_and_inputs_untouched():
    rng = np.random.default_rng(13)
    model = SimilarityMatching(Conv2d(1, 2, 2, rng=11, dtype=np.float32), 2, iteration_projection="relu",
                               max_iterations=10, device="cuda")
    x = rng.standard_normal((2, 1, 3, 3))
    xd = _dev(x)  # float64 on the device: cast to the model's float32 on the device
    yh = model(x)
    yd = model(xd)
    assert _isdev(yd) and yd.dtype == np.float32 and yd.shape == (2, 2, 2, 2)
    np.testing.assert_array_equal(_host(yd), yh)
    assert isinstance(model.y, np.ndarray)
    L = model.loss(xd, yd)
    (gx,) = model.backward()
    assert _isdev(gx) and gx.shape == x.shape and gx.dtype == np.float32
    Lh = model.loss(x, yh)
    (gxh,) = model.backward()
    assert L == Lh
    np.testing.assert_array_equal(_host(gx), gxh)
    y2, L2 = model.train_step(xd, lr=0.1)
    assert _isdev(y2)
    np.testing.assert_array_equal(_host(xd), x)  # the caller's arrays are never written to
    np.testing.assert_array_equal(_host(yd), yh)
    # copies and pickles carry no device buffers
    twin = model.copy()
    assert isinstance(twin._Y, np.ndarray) and twin.device == "cuda"
    np.testing.assert_array_equal(twin.y, model.y)
    with pytest.raises(RuntimeError, match="backward: call loss"):
        twin.backward()
    fused = SimilarityMatching(Linear(3, 2, rng=12), 2, device="cuda")
    yf, _ = fused.train_step(_dev(rng.standard_normal((2, 3))), lr=0.1)
    assert _isdev(yf) and isinstance(fused.grads["encoders.0.weight"], np.ndarray)


@pytestmark_device
def test_repeatable_bitwise():
    rng = np.random.default_rng(14)
    model = SimilarityMatching(Conv2d(1, 2, 2, rng=13), 2, iteration_projection="relu", tol=1e-8, max_iterations=20,
                               regularization="whiten", device="cuda")
    x = _dev(rng.standard_normal((1, 1, 3, 4)))
    a, b = model.copy(), model.copy()
    runs = []
    for mdl in (a, b):
        y, L = mdl.train_step(x, lr=0.1)
        runs.append((_host(y).tobytes(), L.tobytes(), mdl.diagnostics.energy,
                     b"".join(g.tobytes() for g in mdl.grads.values())))
    assert runs[0] == runs[1]


@pytestmark_device
def test_gradcheck_on_device():
    """The device backward against central differences of the device loss (float64, tiny): inputs and weights."""
    from refnsm.gradcheck import gradcheck

    rng = np.random.default_rng(15)
    model = SimilarityMatching(Linear(2, 2, rng=14), 2, regularization="whiten", device="cuda")
    x = rng.standard_normal((2, 2))
    y = rng.standard_normal((2, 2))

    def f(x_, W):
        model.params["encoders.0.weight"][...] = W
        return model.loss(x_, y)

    def vjp(g, x_, W):
        model.params["encoders.0.weight"][...] = W
        model.loss(x_, y)
        (gx,) = model.backward(g)
        return gx, model.grads["encoders.0.weight"].copy()

    gradcheck(f, vjp, [x, model.params["encoders.0.weight"].copy()], raise_on_fail=True)


# ------------------------------------------------------------------------------------------------ bad input
@pytestmark_device
def test_bad_input_device_arrays():
    from numba import cuda

    lin = SimilarityMatching(Linear(4, 3, rng=0), 3, device="cuda")
    conv = SimilarityMatching(Conv2d(2, 3, 3, rng=0), 3, device="cuda")
    good = np.random.default_rng(16).standard_normal((5, 4))
    with pytest.raises(TypeError, match="x: expected a float32 or float64 device array"):
        lin(_dev(np.ones((5, 4), dtype=np.int64)))
    with pytest.raises(ValueError, match=r"x: expected 2 dimensions \[B, in_features\], got shape \(4,\)"):
        lin(_dev(np.ones(4)))
    with pytest.raises(ValueError, match=r"x: expected shape \(B, 4\) for Linear\(4, 3, bias=True\), got \(5, 5\)"):
        lin(_dev(np.ones((5, 5))))
    with pytest.raises(ValueError, match="x: expected a C-contiguous device array"):
        lin(cuda.to_device(np.asfortranarray(good)))
    with pytest.raises(ValueError, match=r"x: expected 2 channels in dimension 1"):
        conv(_dev(np.ones((1, 3, 4, 4))))
    with pytest.raises(ValueError, match="x: input of shape .* is smaller than the"):
        conv(_dev(np.ones((1, 2, 2, 4))))
    with pytest.raises(ValueError, match=r"x: expected 4 dimensions \[B, C, H, W\]"):
        conv(_dev(np.ones((2, 4, 4))))
    bad = good.copy()
    bad[1, 2] = np.nan
    for call in (lambda m, v: m(v), lambda m, v: m.train_step(v, lr=0.1), lambda m, v: m.loss(v, np.ones((5, 3)))):
        with pytest.raises(ValueError) as cpu:
            call(SimilarityMatching(Linear(4, 3, rng=0), 3), bad)
        with pytest.raises(ValueError) as gpu:
            call(lin, _dev(bad))
        assert str(gpu.value) == str(cpu.value) == "x: expected finite values, got nan at index (1, 2)"
    with pytest.raises(ValueError, match=r"y: expected shape \(5, 3\) \(the shape of the encodings\), got \(5, 2\)"):
        lin.loss(_dev(good), _dev(np.ones((5, 2))))
    with pytest.raises(ValueError, match="y: expected finite values"):
        lin.loss(good, _dev(np.full((5, 3), np.inf)))
    with pytest.raises(ValueError, match=r"grad_out: expected shape \(5, 3\) \(the encoder's output shape\)"):
        Linear(4, 3, rng=0).vjp(_dev(np.ones((5, 2))), _dev(good), device="cuda")
    sup = SupervisedSimilarityMatching(Linear(4, 3, rng=0), 2, 3, device="cuda")
    with pytest.raises(ValueError, match=r"label: expected shape \(B, 2\)"):
        sup(_dev(good), _dev(np.ones((5, 3))))
    with pytest.raises(ValueError, match="label: expected batch size 5 like x, got 4"):
        sup(_dev(good), _dev(np.ones((4, 2))))

    class Custom(Linear):
        pass

    with pytest.raises(TypeError, match="x: device='cuda' supports the Linear, Conv2d and Identity encoders"):
        SimilarityMatching(Custom(4, 3, rng=0), 3, device="cuda")(_dev(good))


@pytestmark_device
def test_bad_input_host_arrays_same_messages_as_cpu():
    rng = np.random.default_rng(17)
    x0, x1 = rng.standard_normal((5, 4)), rng.standard_normal((6, 2))
    calls = [
        lambda m: m(x0, x1),
        lambda m: m(None, None),
        lambda m: m(x0, None, x0),
        lambda m: m(rng.standard_normal((5, 5))),
        lambda m: m.loss(x0, np.ones((5, 2))),
        lambda m: m.loss(x0, None),
        lambda m: m.train_step(x0, lr=-1.0),
    ]
    for call in calls:
        with pytest.raises((ValueError, TypeError)) as cpu:
            call(MultiSimilarityMatching([Linear(4, 3, rng=0), Linear(2, 3, rng=0)], 3))
        with pytest.raises(type(cpu.value)) as gpu:
            call(MultiSimilarityMatching([Linear(4, 3, rng=0), Linear(2, 3, rng=0)], 3, device="cuda"))
        assert str(gpu.value) == str(cpu.value)
    with pytest.raises(RuntimeError, match="backward: call loss"):
        SimilarityMatching(Linear(4, 3), 3, device="cuda").backward()
    with pytest.raises(ValueError, match="out_channels: expected encoders"):
        SimilarityMatching(Identity(), 3, device="cuda")(rng.standard_normal((2, 4)))


def test_device_argument_is_validated():
    with pytest.raises(ValueError, match="device: expected one of 'cpu', 'cuda'; got 'bogus'"):
        SimilarityMatching(Linear(4, 3), 3, device="bogus")
    with pytest.raises(ValueError, match="device: expected one of 'cpu', 'cuda'; got 'gpu'"):
        SupervisedSimilarityMatching(Linear(4, 3), 2, 3, device="gpu")
    model = SimilarityMatching(Linear(4, 3), 3)
    with pytest.raises(ValueError, match="device: expected one of 'cpu', 'cuda'; got 'bogus'"):
        model.device = "bogus"
    assert model.device == "cpu"
    with pytest.raises(ValueError, match="device: expected one of 'cpu', 'cuda'; got 'bogus'"):
        Linear(4, 3)(np.ones((2, 4)), device="bogus")
    with pytest.raises(ValueError, match="device: expected one of 'cpu', 'cuda'; got None"):
        Conv2d(1, 2, 2).vjp(np.ones((1, 2, 1, 1)), np.ones((1, 1, 2, 2)), device=None)


@pytest.mark.skipif(MODE is not None, reason="this process can launch kernels")
def test_entry_points_explain_missing_device():
    """Without a GPU and without the simulator, the device path raises before any work, saying what to do."""
    model = SimilarityMatching(Linear(2, 2, rng=0), 2, device="cuda")
    before = model.state_dict()
    x = np.ones((2, 2))
    with pytest.raises(RuntimeError, match="no CUDA GPU .*NUMBA_ENABLE_CUDASIM=1"):
        model(x)
    with pytest.raises(RuntimeError, match="device='cpu'"):
        model.train_step(x, lr=0.1)
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        Linear(2, 2)(x, device="cuda")
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
