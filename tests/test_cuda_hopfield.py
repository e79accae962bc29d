"""CUDA twins of the Hopfield family against their CPU twins (float64 within 1e-12, float32 within 1e-5).

Where the kernels run: see the docstring of tests/cuda_support.py.  In short, on a GPU (or with
NUMBA_ENABLE_CUDASIM=1 set before Python starts) everything runs in this process; otherwise
``test_kernels_under_simulator`` re-runs this file in a subprocess under the simulator.  Sizes are tiny (D=4, H=6,
B=3: H is not a multiple of 4, so the row-norm tail runs) because the simulator runs every CUDA thread as a Python
thread.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from cuda_support import DTYPES, MODE, ROOT, TOL, close as _close, dev as _dev, host as _host, \
    is_dev as _isdev, needs_device, run_file_under_simulator

import refnsm.hopfield as hp
from cuda_support import on_cuda
from naive.hopfield import naive_energy, naive_retrieve
from refnsm.hopfield import _kernels as K

pytestmark_device = needs_device
D, H, B = 4, 6, 3
hpc = on_cuda(hp, "retrieve", "iterate", "energy", "delta_update", "contrastive_update", "evolve_step",
              "retrieve_vjp", "energy_vjp")


def _ch():
    from refnsm.hopfield import _cuda_kernels as ch

    return ch


def _data(dtype, seed=0, b=B):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((b, D)).astype(dtype)
    W = (0.8 * rng.standard_normal((D, H))).astype(dtype)
    return X, W


def _buffers(dtype, b=B, d=D, h=H):
    return (np.empty((b, h), dtype), np.empty((b, h), dtype), np.empty((b, d), dtype), np.empty(b), np.empty(b))


def _dbuffers(dtype, b=B, d=D, h=H):
    from numba import cuda

    return (cuda.device_array((b, h), dtype), cuda.device_array((b, h), dtype), cuda.device_array((b, d), dtype),
            cuda.device_array(b, np.float64), cuda.device_array(b, np.float64))


@pytest.mark.skipif(MODE is not None, reason="the kernels run in this process")
def test_kernels_under_simulator():
    run_file_under_simulator(__file__)


def test_import_refnsm_hopfield_does_not_import_cuda():
    """The CPU path of the Hopfield family (functions and a CPU synapse) never imports numba.cuda or refnsm.cuda."""
    code = ("import sys, numpy as np, refnsm, refnsm.hopfield as hp;"
            "X, W = np.ones((2, 3)), np.eye(3);"
            "hp.retrieve(X, W, 1.0); hp.energy(X, W, 1.0, device='cpu');"
            "s = hp.HopfieldSynapse('h', (3, 3), 0.1, weight_init=W); s.advance_state(X); s.evolve();"
            "bad = [m for m in ('numba.cuda', 'refnsm.cuda') if m in sys.modules]; assert not bad, bad")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr


def test_ptx_compiles_for_hardware():
    """Every Hopfield kernel is real nopython CUDA: NVVM compiles it to PTX for sm_75 (no GPU needed)."""
    if MODE == "simulator":
        pytest.skip("the simulator has no compiler")
    from numba import cuda, types

    ch = _ch()
    cc = (7, 5)
    i64, b1, f64 = types.int64, types.boolean, types.float64
    d1 = types.Array(f64, 1, "C")
    try:
        cuda.compile_ptx(ch._max_reduce.py_func, (d1, d1), cc=cc)
    except Exception as exc:  # no libNVVM on this machine
        pytest.skip(f"NVVM unavailable: {type(exc).__name__}: {exc}")
    cuda.compile_ptx(ch._argmax_first.py_func, (d1, d1, types.Array(i64, 1, "C")), cc=cc)
    for dt in DTYPES:
        f = types.float64 if dt == np.float64 else types.float32
        a2 = types.Array(f, 2, "C")
        sigs = {
            "softmax_rows": (a2, f64, a2, d1, d1), "residual": (a2, a2, f64, a2), "scaled_difference": (a2, a2, f64),
            "evolve": (a2, a2, f64, f64, f64, a2, b1, a2), "energy_rows": (a2, a2, d1, d1, f64, f64, i64, d1),
            "sq_norms": (a2, i64, d1), "step_change": (a2, a2, d1),
        }
        kernels = ch._kernels(dt)
        assert set(sigs) == set(kernels)
        for name, sig in sigs.items():
            cuda.compile_ptx(kernels[name].py_func, sig, cc=cc)


# ------------------------------------------------------------------------------------------ kernel twins
@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_and_retrieve_twins(dtype):
    ch = _ch()
    X, W = _data(dtype, 1)
    W[:, 3] = W[:, 1]  # tied scores: equal softmax weights
    S0, A0, Xh0, rm0, ls0 = _buffers(dtype)
    K.retrieve_into(X, W, 1.7, S0, A0, Xh0, rm0, ls0)
    bufs = _dbuffers(dtype)
    ch.retrieve_into(_dev(X), _dev(W), 1.7, *bufs)
    for got, want in zip(bufs, (S0, A0, Xh0, rm0, ls0)):
        assert _host(got).dtype == want.dtype
        _close(_host(got), want, dtype)
    # softmax_rows alone, on scores with a large spread (exp underflows to 0 in some entries)
    Z = (300.0 * np.random.default_rng(2).standard_normal((B, H))).astype(dtype)
    S0, A0, _, rm0, ls0 = _buffers(dtype)
    S0[:] = Z
    K.softmax_rows(S0, 2.0, A0, rm0, ls0)
    Sd, Ad, _, rmd, lsd = _dbuffers(dtype)
    Sd.copy_to_device(Z)
    ch.softmax_rows(Sd, 2.0, Ad, rmd, lsd)
    for got, want in zip((Sd, Ad, rmd, lsd), (S0, A0, rm0, ls0)):
        _close(_host(got), want, dtype)
    assert (_host(Ad) == 0).any() and np.allclose(_host(Ad).sum(axis=1), 1.0)


@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
def test_iterate_twin(dtype):
    ch = _ch()
    X, W = _data(dtype, 3)
    tol = 1e-9 if dtype == np.float64 else 1e-5
    out0 = np.empty_like(X)
    n0, c0 = K.iterate_into(X, W, 8.0, tol, 60, out0, *_buffers(dtype))  # beta = 8: a few updates (the simulator)
    Xd = _dev(X)
    out1 = _dev(np.zeros_like(X))
    n1, c1 = ch.iterate_into(Xd, _dev(W), 8.0, tol, 60, out1, *_dbuffers(dtype))
    assert n1 == n0 and 1 < n0 < 60 and c1 <= tol and c0 <= tol
    _close(_host(out1), out0, dtype)
    np.testing.assert_array_equal(_host(Xd), X)  # X0 untouched
    # the cap: max_iter updates, not converged; the last change is the max-norm of the last update
    n0, c0 = K.iterate_into(X, W, 2.0, 0.0, 2, out0, *_buffers(dtype))
    n1, c1 = ch.iterate_into(Xd, _dev(W), 2.0, 0.0, 2, out1, *_dbuffers(dtype))
    assert n0 == n1 == 2 and c0 > 0
    assert abs(c1 - c0) <= TOL[np.dtype(dtype)] * max(float(np.abs(out0).max()), c0)
    _close(_host(out1), out0, dtype)


@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
def test_row_sq_norm_max_twin(dtype):
    ch = _ch()
    _, W = _data(dtype, 4)
    for axis in (0, 1):
        v0, i0 = K.row_sq_norm_max(W, axis)
        v1, i1 = ch.row_sq_norm_max(_dev(W), axis)
        assert i1 == i0
        assert abs(v1 - v0) <= 1e-12 * v0  # float64 sums on both sides, in the same order
    # ties: the first index attaining the max, as on the CPU
    Wt = W.copy()
    Wt[:, 2] = Wt[:, 5] = 3.0
    Wt[1, :] = Wt[3, :] = 3.0
    for axis, want in ((0, 2), (1, 1)):
        assert K.row_sq_norm_max(Wt, axis)[1] == want == ch.row_sq_norm_max(_dev(Wt), axis)[1]


@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
def test_energy_rows_twin(dtype):
    ch = _ch()
    X, W = _data(dtype, 5)
    S, A, Xh, rm, ls = _buffers(dtype)
    K.retrieve_into(X, W, 1.3, S, A, Xh, rm, ls)
    for variant in (0, 1):
        out0 = np.empty(B)
        K.energy_rows(X, Xh, rm, ls, 1.3, H, 0.7, variant, out0)
        out1 = _dev(np.zeros(B))
        ch.energy_rows(_dev(X), _dev(Xh), _dev(rm), _dev(ls), 1.3, H, 0.7, variant, out1)
        assert _host(out1).dtype == np.float64
        _close(_host(out1), out0, np.float64 if dtype == np.float64 else np.float32)


@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
def test_plasticity_rule_twins(dtype):
    from numba import cuda

    ch = _ch()
    for b in (1, B):
        X, W = _data(dtype, 6, b)
        S, A, Xh, rm, ls = _buffers(dtype, b)
        K.retrieve_into(X, W, 2.0, S, A, Xh, rm, ls)
        dW0 = np.empty((D, H), dtype)
        K.delta_into(X, Xh, A, np.empty_like(X), dW0)
        dW1 = cuda.device_array((D, H), dtype)
        E1 = cuda.device_array((b, D), dtype)
        ch.delta_into(_dev(X), _dev(Xh), _dev(A), E1, dW1)
        if b == 1:  # each entry is one product of the same two numbers on both sides
            np.testing.assert_array_equal(_host(dW1), dW0)
        _close(_host(dW1), dW0, dtype)
        _close(_host(E1), (X - Xh) / b, dtype)
        for nb in (1.0, 2.0):
            Sh, Ah, _, rm, ls = _buffers(dtype, b)
            c0 = np.empty((D, H), dtype)
            K.contrastive_into(X, Xh, A, W, nb, Sh, Ah, rm, ls, np.empty((D, H), dtype), c0)
            c1 = cuda.device_array((D, H), dtype)
            Shd, Ahd, _, rmd, lsd = _dbuffers(dtype, b)
            ch.contrastive_into(_dev(X), _dev(Xh), _dev(A), _dev(W), nb, Shd, Ahd, rmd, lsd,
                                cuda.device_array((D, H), dtype), c1)
            _close(_host(c1), c0, dtype)
            _close(_host(Ahd), Ah, dtype)


@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
def test_evolve_twin(dtype):
    from numba import cuda

    ch = _ch()
    rng = np.random.default_rng(7)
    W = rng.standard_normal((D, H)).astype(dtype)
    W[0, 0] = W[2, 3] = 0.0  # sign(0) = 0
    dW = rng.standard_normal((D, H)).astype(dtype)
    mask = (rng.random((D, H)) < 0.5).astype(dtype)
    for l1 in (0.0, 0.003):
        for use_mask in (False, True):
            out0 = np.empty_like(W)
            K.evolve_into(W, dW, 0.3, 0.01, l1, mask if use_mask else np.empty((0, 0), dtype), use_mask, out0)
            out1 = cuda.device_array((D, H), dtype)
            ch.evolve_into(_dev(W), _dev(dW), 0.3, 0.01, l1, _dev(mask), use_mask, out1)
            _close(_host(out1), out0, dtype)
            if use_mask:
                assert np.all(_host(out1)[mask == 0] == 0)


@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_synapse_kernel_twins(dtype):
    from numba import cuda

    ch = _ch()
    X, W = _data(dtype, 8)
    mask = (np.random.default_rng(8).random((D, H)) < 0.6).astype(dtype)
    for variant in (0, 1):
        S0, A0, Xh0 = np.empty((B, H), dtype), np.empty((B, H), dtype), np.empty((B, D), dtype)
        e0 = K.advance_into(X, W, 1.5, variant, S0, A0, Xh0)
        Sd, Ad = cuda.device_array((B, H), dtype), cuda.device_array((B, H), dtype)
        Xhd = cuda.device_array((B, D), dtype)
        e1 = ch.advance_into(_dev(X), _dev(W), 1.5, variant, Sd, Ad, Xhd)
        assert isinstance(e1, float) and abs(e1 - e0) <= TOL[np.dtype(dtype)] * abs(e0)
        for got, want in ((Sd, S0), (Ad, A0), (Xhd, Xh0)):
            _close(_host(got), want, dtype)
    for rule in (0, 1):
        for use_mask in (False, True):
            dW0, Wn0 = np.empty((D, H), dtype), np.empty((D, H), dtype)
            K.plasticity_into(rule, X, Xh0, A0, W, 1.0, 0.2, 0.01, 0.002, mask if use_mask else np.empty((0, 0), dtype),
                              use_mask, dW0, Wn0)
            dW1, Wn1 = cuda.device_array((D, H), dtype), cuda.device_array((D, H), dtype)
            ch.plasticity_into(rule, _dev(X), _dev(Xh0), _dev(A0), _dev(W), 1.0, 0.2, 0.01, 0.002, _dev(mask),
                               use_mask, dW1, Wn1)
            _close(_host(dW1), dW0, dtype)
            _close(_host(Wn1), Wn0, dtype)


@pytestmark_device
def test_finite_check_twins():
    from numba import cuda

    from refnsm._fastchecks import all_finite

    ch = _ch()
    X = np.arange(6.0).reshape(2, 3)
    dst = cuda.device_array((2, 3), np.float64)
    assert ch.all_finite(_dev(X)) == all_finite(X.reshape(-1)) is True
    assert ch.copy_finite(_dev(X), dst) is K.copy_finite(X, np.empty_like(X)) is True
    np.testing.assert_array_equal(_host(dst), X)
    X[1, 2] = -np.inf
    assert ch.all_finite(_dev(X)) == all_finite(X.reshape(-1)) is False
    assert ch.copy_finite(_dev(X), dst) is K.copy_finite(X, np.empty_like(X)) is False
    np.testing.assert_array_equal(_host(dst), X)  # copied all the same


# ------------------------------------------------------------------------------------ public entry points
@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
def test_public_retrieval_iterate_energy(dtype):
    """NumPy in, NumPy out, against refnsm.hopfield; a single 1-D probe too."""
    ch = _ch()
    X, W = _data(dtype, 9)
    for naive, device in zip(naive_retrieve(X, W, 2.0), hpc.retrieve(X, W, 2.0)):  # against the naive twin too
        _close(device, naive, dtype)
    _close(hpc.energy(X, W, 2.0), naive_energy(X.astype(np.float64), W.astype(np.float64), 2.0), dtype)
    for probe in (X, X[1]):
        r0, r1 = hp.retrieve(probe, W, 2.0), hpc.retrieve(probe, W, 2.0)
        assert isinstance(r1, hp.Retrieval)
        for a, b in zip(r1, r0):
            assert isinstance(a, np.ndarray) and a.dtype == dtype and a.shape == b.shape
            _close(a, b, dtype)
        for compat in (None, "ngclearn") if probe.ndim == 2 else ("ngclearn",):
            e0, e1 = hp.energy(probe, W, 2.0, compat=compat), hpc.energy(probe, W, 2.0, compat=compat)
            if probe.ndim == 1:
                assert isinstance(e1, float) and abs(e1 - e0) <= TOL[np.dtype(dtype)] * abs(e0)
            else:
                assert e1.dtype == dtype
                _close(e1, e0, dtype)
    tol = 1e-9 if dtype == np.float64 else 1e-5
    Xi, Wi = _data(dtype, 3)  # converges in a few updates at beta = 8 (see test_iterate_twin)
    i0, i1 = hp.iterate(Xi, Wi, 8.0, tol=tol), hpc.iterate(Xi, Wi, 8.0, tol=tol)
    assert (i1.n_iter, i1.converged) == (i0.n_iter, i0.converged) == (i0.n_iter, True)
    _close(i1.outputs, i0.outputs, dtype)
    i0, i1 = hp.iterate(X[0], W, 2.0, max_iter=1), hpc.iterate(X[0], W, 2.0, max_iter=1)
    assert i1.outputs.shape == (D,) and (i1.n_iter, i1.converged) == (1, False)
    _close(i1.outputs, i0.outputs, dtype)
    # mixed dtypes promote as on the CPU
    assert hpc.retrieve(X.astype(np.float32), W.astype(np.float64), 1.0).outputs.dtype == np.float64


@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
def test_public_plasticity(dtype):
    ch = _ch()
    X, W = _data(dtype, 10)
    _, A, Xh = hp.retrieve(X, W, 2.0)
    _close(hpc.delta_update(X, Xh, A), hp.delta_update(X, Xh, A), dtype)
    for kw in ({}, {"compat": "ngclearn"}, {"neg_beta": 0.5}):
        c1 = hpc.contrastive_update(X, Xh, A, W, 2.0, **kw)
        assert isinstance(c1, np.ndarray) and c1.dtype == dtype
        _close(c1, hp.contrastive_update(X, Xh, A, W, 2.0, **kw), dtype)
    dW = hp.delta_update(X, Xh, A)
    mask = (np.random.default_rng(10).random((D, H)) < 0.5).astype(dtype)
    for args in ((0.5,), (0.5, 0.01, 0.002), (0.5, 0.01, 0.0, mask)):
        _close(hpc.evolve_step(W, dW, *args), hp.evolve_step(W, dW, *args), dtype)


@pytestmark_device
def test_device_arrays_stay_on_device_and_match_host_path():
    ch = _ch()
    X, W = _data(np.float64, 11)
    Xd, Wd = _dev(X), _dev(W)
    rd = hpc.retrieve(Xd, Wd, 2.0)
    assert all(_isdev(a) for a in rd)
    rh = hpc.retrieve(X, W, 2.0)
    for a, b in zip(rd, rh):
        np.testing.assert_array_equal(_host(a), b)  # the same kernels on the same numbers
    r1 = hpc.retrieve(Xd[0], W, 2.0)  # a 1-D device probe (mixed with a host W): device results, 1-D
    assert _isdev(r1.outputs) and r1.outputs.shape == (D,)
    np.testing.assert_array_equal(_host(r1.outputs), rh.outputs[0])
    A, Xh = rd.memory_weights, rd.outputs
    dW = hpc.delta_update(Xd, Xh, A)
    assert _isdev(dW)
    cW = hpc.contrastive_update(Xd, Xh, A, Wd, 2.0)
    assert _isdev(cW) and _isdev(hpc.evolve_step(Wd, dW, 0.1)) and _isdev(hpc.energy(Xd, W, 2.0))
    assert _isdev(hpc.iterate(Xd, Wd, 2.0, max_iter=1).outputs)
    _close(_host(cW), hp.contrastive_update(X, rh.outputs, rh.memory_weights, W, 2.0), np.float64)
    # float32 device inputs with a float64 one: promoted on the device, as on the CPU
    e = hpc.energy(_dev(X.astype(np.float32)), Wd, 2.0)
    assert e.dtype == np.float64
    _close(_host(e), hp.energy(X.astype(np.float32), W, 2.0), np.float64)
    # inputs untouched
    np.testing.assert_array_equal(_host(Xd), X)
    np.testing.assert_array_equal(_host(Wd), W)


@pytestmark_device
def test_repeatable_bitwise():
    ch = _ch()
    X, W = _data(np.float64, 12)
    Xd, Wd = _dev(X), _dev(W)
    runs = [(hpc.energy(Xd, Wd, 2.0, compat="ngclearn"), hpc.iterate(Xd, Wd, 2.0, max_iter=2)) for _ in range(2)]
    assert _host(runs[0][0]).tobytes() == _host(runs[1][0]).tobytes()
    assert _host(runs[0][1].outputs).tobytes() == _host(runs[1][1].outputs).tobytes()
    assert runs[0][1].last_change == runs[1][1].last_change
    syns = []
    for _ in range(2):
        s = hp.HopfieldSynapse("h", (D, H), 0.2, 0.01, 2.0, weight_init=W, compat="ngclearn", device="cuda")
        s.advance_state(Xd)
        s.evolve()
        syns.append(s)
    assert syns[0].weights.tobytes() == syns[1].weights.tobytes()
    assert syns[0].energy.tobytes() == syns[1].energy.tobytes()


@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
def test_public_device_argument_dispatches_to_the_twin(dtype):
    """refnsm.hopfield's functions with device="cuda" give the CPU result (float64 1e-12, float32 1e-5)."""
    X, W = _data(dtype, 13)
    r0, r1 = hp.retrieve(X, W, 1.5), hp.retrieve(X, W, 1.5, device="cuda")
    for a, b in zip(r1, r0):
        _close(a, b, dtype)
    _close(hp.energy(X, W, 1.5, compat="ngclearn", device="cuda"), hp.energy(X, W, 1.5, compat="ngclearn"), dtype)
    _close(hp.iterate(X, W, 1.5, max_iter=2, device="cuda").outputs, hp.iterate(X, W, 1.5, max_iter=2).outputs, dtype)
    _, A, Xh = r0
    _close(hp.delta_update(X, Xh, A, device="cuda"), hp.delta_update(X, Xh, A), dtype)
    _close(hp.contrastive_update(X, Xh, A, W, 1.5, neg_beta=1.0, device="cuda"),
           hp.contrastive_update(X, Xh, A, W, 1.5, neg_beta=1.0), dtype)
    dW = hp.delta_update(X, Xh, A)
    _close(hp.evolve_step(W, dW, 0.1, 0.01, device="cuda"), hp.evolve_step(W, dW, 0.1, 0.01), dtype)


def test_device_argument_is_validated():
    X, W = np.ones((2, 3)), np.ones((3, 4))
    for call in (lambda: hp.retrieve(X, W, 1.0, device="bogus"), lambda: hp.energy(X, W, 1.0, device="gpu"),
                 lambda: hp.delta_update(X, X, W[:2], device=None),
                 lambda: hp.HopfieldSynapse("h", (3, 4), 0.1, device="bogus")):
        with pytest.raises(ValueError, match="device: expected one of 'cpu', 'cuda'; got"):
            call()


# ------------------------------------------------------------------------------------------------ bad input
@pytestmark_device
def test_bad_input_device_arrays():
    """Device arrays are checked as the CPU checks NumPy arrays, with the CPU's messages."""
    from numba import cuda

    ch = _ch()
    X, W = _data(np.float64, 14)
    Xd, Wd = _dev(X), _dev(W)
    with pytest.raises(TypeError, match="W: expected a float32 or float64 device array"):
        hpc.retrieve(Xd, _dev(np.ones((D, H), dtype=np.int64)), 1.0)
    with pytest.raises(ValueError, match=r"W: expected 2 dimensions \[D, H\]"):
        hpc.retrieve(Xd, _dev(np.ones(D)), 1.0)
    with pytest.raises(ValueError, match="W: expected a non-empty array"):
        hpc.energy(Xd, cuda.device_array((D, 0)), 1.0)
    with pytest.raises(ValueError, match=f"X: expected probe width D={D}"):
        hpc.retrieve(_dev(np.ones((2, D + 1))), Wd, 1.0)
    with pytest.raises(ValueError, match="X: expected 1 or 2 dimensions"):
        hpc.iterate(_dev(np.ones((1, 2, D))), Wd, 1.0)
    with pytest.raises(ValueError, match="X: expected a C-contiguous device array"):
        hpc.retrieve(cuda.to_device(np.asfortranarray(np.ones((3, D)))), Wd, 1.0)
    bad = X.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError) as cpu:
        hp.retrieve(bad, W, 1.0)
    with pytest.raises(ValueError) as gpu:
        hpc.retrieve(_dev(bad), Wd, 1.0)
    assert str(gpu.value) == str(cpu.value) == "X: expected finite values, got nan at index (1, 2)"
    _, A, Xh = hpc.retrieve(Xd, Wd, 1.0)
    with pytest.raises(ValueError, match="X_hat: expected shape"):
        hpc.delta_update(Xd, Xh[:2], A)
    with pytest.raises(ValueError, match="A: expected batch size 3"):
        hpc.contrastive_update(Xd, Xh, A[:2], Wd, 1.0)
    with pytest.raises(ValueError, match=rf"W: expected shape \({D}, {H}\) \(\(D, H\) from X and A\)"):
        hpc.contrastive_update(Xd, Xh, A, _dev(np.ones((D, H + 1))), 1.0)
    with pytest.raises(ValueError, match="dW: expected shape"):
        hpc.evolve_step(Wd, _dev(np.ones((D, H + 1))), 0.1)
    with pytest.raises(ValueError, match="mask: expected finite"):
        hpc.evolve_step(Wd, Wd, 0.1, mask=_dev(np.full((D, H), np.inf)))
    with pytest.raises(ValueError, match="neg_beta: pass either"):
        hpc.contrastive_update(Xd, Xh, A, Wd, 1.0, neg_beta=1.0, compat="ngclearn")


@pytestmark_device
def test_bad_input_host_arrays_same_messages_as_cpu():
    X, W = _data(np.float64, 15)
    _, A, Xh = hp.retrieve(X, W, 1.0)
    calls = [
        lambda m: m.retrieve(X, W, -1.0),
        lambda m: m.retrieve(X[:, :-1], W, 1.0),
        lambda m: m.retrieve(np.zeros((0, D)), W, 1.0),
        lambda m: m.retrieve(X, "W", 1.0),
        lambda m: m.iterate(X, W, 1.0, tol=-1.0),
        lambda m: m.iterate(X, W, 1.0, max_iter=0),
        lambda m: m.energy(X, W, 1.0, compat="jax"),
        lambda m: m.delta_update(X, Xh, A[:2]),
        lambda m: m.contrastive_update(X, Xh, A, W, 1.0, neg_beta=-2.0),
        lambda m: m.evolve_step(W, W, 0.1, reg_lambda=-1.0),
        lambda m: m.evolve_step(W, W, 0.1, mask=np.ones((2, 2))),
    ]
    for call in calls:
        with pytest.raises((ValueError, TypeError)) as cpu:
            call(hp)
        with pytest.raises(type(cpu.value)) as gpu:
            call(hpc)
        assert str(gpu.value) == str(cpu.value)


@pytest.mark.skipif(MODE is not None, reason="this process can launch kernels")
def test_entry_points_explain_missing_device():
    """Without a GPU and without the simulator, the entry points raise before any work, saying what to do."""
    X, W = np.ones((2, 3)), np.ones((3, 4))
    with pytest.raises(RuntimeError, match="no CUDA GPU .*NUMBA_ENABLE_CUDASIM=1"):
        hpc.retrieve(X, W, 1.0)
    with pytest.raises(RuntimeError, match="device='cpu'"):
        hp.energy(X, W, 1.0, device="cuda")
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        hp.HopfieldSynapse("h", (3, 4), 0.1, device="cuda")


# ------------------------------------------------------------------------------- HopfieldSynapse(device="cuda")
@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rule", ["delta", "contrastive"])
def test_synapse_cuda_matches_cpu(dtype, rule):
    """Two learning steps on the device against the CPU synapse: every compartment; weights stay on the device."""
    rng = np.random.default_rng(16)
    W0 = (0.5 * rng.standard_normal((D, H))).astype(dtype)
    Xs = [rng.standard_normal((B, D)).astype(dtype) for _ in range(2)]
    # between them: both energy readings, L1 decay, both negative-phase betas, the kept p_conn mask
    configs = ([dict(compat="ngclearn", l1_lambda=0.002)] if rule == "delta" else
               [dict(l1_lambda=0.002, neg_beta=0.5), dict(compat="ngclearn", p_conn=0.5, keep_mask=True, rng=3)])
    for kw in configs:
        cpu = hp.HopfieldSynapse("h", (D, H), 0.2, 0.01, 2.0, update_rule=rule, weight_init=W0, dtype=dtype, **kw)
        gpu = hp.HopfieldSynapse("h", (D, H), 0.2, 0.01, 2.0, update_rule=rule, weight_init=W0, dtype=dtype,
                                 device="cuda", **kw)
        assert "device='cuda'" in repr(gpu) and gpu.device == "cuda"
        for k, X in enumerate(Xs):
            out = gpu.advance_state(_dev(X) if k == 1 else X)  # NumPy or device probes
            Wn = gpu.evolve()
            cpu.advance_state(X)
            cpu.evolve()
            assert _isdev(out) and _isdev(Wn) and _isdev(gpu.params["weights"])
            assert isinstance(gpu.weights, np.ndarray) and gpu.weights.dtype == dtype
            for name in ("outputs", "similarities", "memory_weights", "dWeights", "inputs"):
                got = getattr(gpu, name)
                assert _isdev(got), name
                _close(_host(got), getattr(cpu, name), dtype)
            _close(gpu.weights, cpu.weights, dtype)
            assert gpu.energy.dtype == dtype and gpu.energy.shape == (1, 1)
            _close(gpu.energy, cpu.energy, dtype)
            assert gpu.i_tick[0, 0] == k + 1
        if kw.get("keep_mask"):
            assert np.all(gpu.weights[gpu.mask == 0] == 0)


@pytestmark_device
def test_synapse_cuda_state_and_validation():
    from numba import cuda

    X, W = _data(np.float64, 17)
    syn = hp.HopfieldSynapse("h", (D, H), 0.2, weight_init=W, batch_size=2, device="cuda")
    assert _isdev(syn.inputs) and syn.inputs.shape == (2, D) and not _host(syn.outputs).any()  # reset on the device
    # the weights property is a copy: writing to it changes nothing; assigning it does
    w = syn.weights
    w[0, 0] = 99.0
    assert syn.weights[0, 0] == W[0, 0]
    syn.weights = _dev(2 * W)
    np.testing.assert_array_equal(syn.weights, 2 * W)
    syn.weights = W.astype(np.float32)  # cast to the synapse's dtype
    assert syn.params["weights"].dtype == np.float64
    # inputs: 1-D and device probes are copied (never aliased), float32 device probes cast
    Xd = _dev(X)
    syn.inputs = Xd
    Xd.copy_to_device(np.zeros_like(X))
    np.testing.assert_array_equal(_host(syn.inputs), X)
    syn.inputs = X[0]
    assert syn.inputs.shape == (1, D)
    syn.inputs = _dev(X.astype(np.float32))
    assert syn.inputs.dtype == np.float64
    # bad inputs: the CPU synapse's messages
    cpu = hp.HopfieldSynapse("h", (D, H), 0.2, weight_init=W)
    bad = X.copy()
    bad[0, 1] = np.nan
    for value in (bad, X[:, :-1], np.ones((2, 2, D))):
        with pytest.raises(ValueError) as want:
            cpu.inputs = value
        with pytest.raises(ValueError) as got:
            syn.inputs = _dev(value)
        assert str(got.value) == str(want.value)
    with pytest.raises(TypeError, match="inputs: expected a float32 or float64 device array"):
        syn.inputs = _dev(np.ones((2, D), dtype=np.int64))
    with pytest.raises(ValueError, match=rf"weights: expected shape \({D}, {H}\)"):
        syn.weights = _dev(W.T.copy())
    syn.advance_state(X)
    syn.inputs = X[:2]
    with pytest.raises(ValueError, match="inputs: the batch changed"):
        syn.evolve()
    # backward runs on the CPU with host copies: the CPU synapse's gradients
    syn.weights = W
    syn.forward(X)
    cpu.forward(X)
    g = np.random.default_rng(17).standard_normal((B, D))
    _close(syn.backward(cuda.to_device(g)), cpu.backward(g), np.float64)
    _close(syn.grads["weights"], cpu.grads["weights"], np.float64)


@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
def test_vjps_take_device(dtype):
    """retrieve_vjp and energy_vjp accept device="cuda" (NumPy or device arrays) and agree with the CPU."""
    X, W = _data(dtype, 21)
    G = np.random.default_rng(3).standard_normal(X.shape).astype(dtype)
    g = np.random.default_rng(4).standard_normal(X.shape[0])
    for f, go in ((hp.retrieve_vjp, G), (hp.energy_vjp, g)):
        want = f(go, X, W, 1.5)
        got = f(go, X, W, 1.5, device="cuda")
        assert all(isinstance(a, np.ndarray) for a in got[:2])
        for a, b in zip(got[:2], want[:2]):
            _close(a, b, dtype)
        assert abs(got[2] - want[2]) <= TOL[np.dtype(dtype)] * max(1.0, abs(want[2]))
        on_dev = f(_dev(go), _dev(X), W, 1.5, device="cuda")
        assert _isdev(on_dev[0]) and _isdev(on_dev[1])
        _close(_host(on_dev[1]), want[1], dtype)


@pytestmark_device
def test_binary_baselines_take_device():
    """The classical and dense baselines run on the host for either device: device inputs give device results equal
    bit for bit to the CPU call's, host inputs host results; the device argument is validated."""
    rng = np.random.default_rng(5)
    P = np.sign(rng.standard_normal((8, 3)))
    S = np.sign(rng.standard_normal((4, 8)))
    W = hp.hebbian_weights(P)
    th = rng.standard_normal(8)
    calls = [
        (hp.hebbian_weights, (P,), {}),
        (hp.classical_energy, (S, W, th), {}),
        (hp.classical_update, (S, W, th), {"mode": "sync", "n_sweeps": 2}),
        (hp.classical_update, (S, W), {"mode": "async", "n_sweeps": 3, "rng": 1}),
        (hp.dense_energy, (S, P), {"interaction": "rectified", "n": 3}),
        (hp.dense_update, (S, P), {"n": 3, "n_sweeps": 2, "rng": 2}),
    ]
    for fn, args, kw in calls:
        want = fn(*args, **kw)
        got = fn(*[_dev(a) for a in args], **kw, device="cuda")
        assert _isdev(got), fn.__name__
        np.testing.assert_array_equal(_host(got), want)
        got_host = fn(*args, **kw, device="cuda")
        assert isinstance(got_host, np.ndarray), fn.__name__
        np.testing.assert_array_equal(got_host, want)
    assert hp.classical_energy(_dev(S[0]), _dev(W), device="cuda") == hp.classical_energy(S[0], W)
    with pytest.raises(ValueError, match="device"):
        hp.hebbian_weights(P, device="gpu")
