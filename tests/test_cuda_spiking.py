"""CUDA twins of the spiking family against their CPU twins (float64 within 1e-12, float32 within 1e-5).

Where the kernels run: see the docstring of tests/cuda_support.py.  In short, on a GPU (or with
NUMBA_ENABLE_CUDASIM=1 set before Python starts) everything runs in this process; otherwise
``test_kernels_under_simulator`` re-runs this file in a subprocess under the simulator.  Sizes are tiny because the
simulator runs every CUDA thread as a Python thread.
"""

import re

import numpy as np
import pytest
from cuda_support import DTYPES, MODE, TOL, close as _close, dev as _dev, host as _host, needs_device, \
    run_file_under_simulator

from refnsm.spiking import _kernels as K
from refnsm import spiking as sp
from refnsm.spiking import losses as L
from cuda_support import is_dev as _isdev, on_cuda

spc = on_cuda(sp, "kernel_dot_product", "kernel_dot_product_vjp", "spike_similar_loss", "spike_similar_loss_vjp",
              "spike_similar_loss_value_and_grad", "temporal_efficient_training_cross_entropy",
              "temporal_efficient_training_cross_entropy_vjp", "spike_similarity_matrix",
              "spike_similarity_matrix_vjp", "label_similarity_matrix",
              "temporal_efficient_training_cross_entropy_value_and_grad")

pytestmark_device = needs_device
KINDS = [("linear", K.LINEAR, 0.0), ("polynomial", K.POLYNOMIAL, 2.0), ("sigmoid", K.SIGMOID, 0.7),
         ("gaussian", K.GAUSSIAN, 1.3)]


def _cs():
    from refnsm.spiking import _cuda_kernels as cs

    return cs


def _spikes(rng, dtype, shape=(4, 2, 2)):
    s = (rng.random(shape) > 0.5).astype(dtype)
    s[0] = 0.0  # a silent sample: the r = 0 branches
    return s


def _labels(rng, n=4, c=3):
    Lm = np.zeros((n, c))
    Lm[np.arange(n), rng.integers(0, c, n)] = 1.0
    Lm[1, 0] = 1.0  # one multi-label sample
    return Lm


@pytest.mark.skipif(MODE is not None, reason="the kernels run in this process")
def test_kernels_under_simulator():
    run_file_under_simulator(__file__)


def test_ptx_compiles_for_hardware():
    """Every spiking kernel is real nopython CUDA: NVVM compiles it to PTX for sm_75 (no GPU needed)."""
    if MODE == "simulator":
        pytest.skip("the simulator has no compiler")
    from numba import cuda, types

    cs = _cs()
    cc = (7, 5)
    i64, b1, f64 = types.int64, types.boolean, types.float64
    try:
        cuda.compile_ptx(cs._valid_flags.py_func, (types.Array(i64, 2, "C"), i64, types.Array(f64, 1, "C")), cc=cc)
    except Exception as exc:  # no libNVVM on this machine
        pytest.skip(f"NVVM unavailable: {type(exc).__name__}: {exc}")
    for dt in DTYPES:
        f = types.float64 if dt == np.float64 else types.float32
        a1, a2, a4 = types.Array(f, 1, "C"), types.Array(f, 2, "C"), types.Array(f, 4, "C")
        d1 = types.Array(f64, 1, "C")
        sigs = {
            "from_gram": (a2, a1, a1, a2, i64, f, f),
            "coupling": (a2, a2, a2, a2, i64, f, f, f, b1),
            "row_sums": (a2, a1), "col_sums": (a2, a1), "gauss_combine": (a2, a1, a2), "sqrt_vec": (a1,),
            "sim_post": (a2, a2, a1, i64, f, b1), "cosine_bc": (a2, a2, a1, f, a2, a2),
            "sim_rows": (a2, a2, a1, a1, a1, a2, a1, i64), "add_diag_scaled": (a2, a1, a2),
            "loss_terms": (a2, a2, i64, d1), "loss_grad": (a2, a2, i64, f, f, a2),
            "ce_steps": (a4, types.Array(i64, 2, "C"), i64, f64, b1, d1, a4), "repeat_cols": (a2, a2),
        }
        kernels = cs._kernels(dt)
        assert set(sigs) == set(kernels)
        for name, sig in sigs.items():
            cuda.compile_ptx(kernels[name].py_func, sig, cc=cc)
        cuda.compile_ptx(cs._label_kernel(dt).py_func, (a2, types.Array(types.float64, 2, "C")), cc=cc)


# ------------------------------------------------------------------------------------------ kernel twins
@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k[0])
def test_kernel_forward_and_vjp_twins(dtype, kind):
    cs = _cs()
    _, code, p = kind
    rng = np.random.default_rng(10)
    x = rng.random((4, 3)).astype(dtype)
    y = rng.random((3 if code != K.GAUSSIAN else 4, 3)).astype(dtype)
    A = rng.standard_normal((4, y.shape[0])).astype(dtype)
    K0, G0 = K.kernel_forward(x, y, code, p)
    K1, G1 = cs.kernel_forward(_dev(x), _dev(y), code, p)
    assert _host(K1).dtype == dtype and _host(G1).dtype == dtype
    _close(_host(G1), G0, dtype)
    _close(_host(K1), K0, dtype)
    _close(_host(cs.kernel_from_gram(G1, _dev(x), _dev(y), code, p)), K0, dtype)
    gx0, gy0 = K.kernel_vjp(A, x, y, code, p)
    gx1, gy1 = cs.kernel_vjp(_dev(A), _dev(x), _dev(y), code, p)
    _close(_host(gx1), gx0, dtype)
    _close(_host(gy1), gy0, dtype)


@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k[0])
def test_similarity_twins(dtype, kind):
    cs = _cs()
    _, code, p = kind
    rng = np.random.default_rng(11)
    X = rng.random((4, 5)).astype(dtype)
    X[2] = 0.0  # a zero row
    A = rng.standard_normal((4, 4)).astype(dtype)
    G0 = X @ X.T
    Xd = _dev(X)
    Gd = _dev(G0)
    for exact in (True, False):
        S0, r0 = K.similarity_forward(X, G0, code, p, L.COSINE_EPS, exact)
        S1, r1 = cs.similarity_forward(Xd, Gd, code, p, L.COSINE_EPS, exact)
        _close(_host(S1), S0, dtype)
        _close(_host(r1), r0, dtype)
        if exact and code in (K.LINEAR, K.GAUSSIAN):  # closed-form diagonals are reproduced exactly
            np.testing.assert_array_equal(np.diag(_host(S1)), np.diag(S0))
        d0 = K.similarity_vjp(A, X, S0, G0, r0, code, p, L.COSINE_EPS)
        d1 = cs.similarity_vjp(_dev(A), Xd, S1, Gd, r1, code, p, L.COSINE_EPS)
        _close(_host(d1), d0, dtype)


@pytestmark_device
def test_label_matrix_twin():
    cs = _cs()
    rng = np.random.default_rng(12)
    soft = rng.standard_normal((4, 3))  # soft and negative labels pass the lower side through
    for Lm, like in ((soft, np.float64), (soft.astype(np.float32), np.float64), (soft.astype(np.float32), np.float32),
                     (_labels(rng, 4, 3), np.float32)):
        Y0 = K.label_matrix(Lm, np.empty(0, dtype=like))
        Y1 = _host(cs.label_matrix(_dev(Lm), np.empty(0, dtype=like)))
        assert Y1.dtype == like
        np.testing.assert_array_equal(Y1, Y0)  # the same sequential dot products: bitwise


@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", ["mse", "l1", "bce"])
def test_pairwise_loss_twins(dtype, loss):
    cs = _cs()
    code = L._LOSS_CODE[loss]
    rng = np.random.default_rng(13)
    S = rng.random((4, 4)).astype(dtype)
    S[0, 0], S[0, 1] = 0.0, 1.0  # the BCE clamps at log(0)
    Y = (rng.random((4, 4)) > 0.5).astype(dtype)
    S[1, 1] = Y[1, 1]  # a tie: sign(0) = 0 in L1
    v0 = K.pairwise_loss(S, Y, code, L.BCE_EPS)
    v1 = cs.pairwise_loss(_dev(S), _dev(Y), code, L.BCE_EPS)
    assert abs(v1 - v0) <= 1e-12 * abs(v0)  # both accumulate float64 terms
    A0 = K.pairwise_loss_grad(S, Y, code, 0.7, L.BCE_EPS)
    A1 = _host(cs.pairwise_loss_grad(_dev(S), _dev(Y), code, 0.7, L.BCE_EPS))
    assert A1.dtype == dtype
    _close(A1, A0, dtype)


@pytestmark_device
def test_in_unit_interval_twin():
    cs = _cs()
    for M in (np.array([[0.0, 1.0], [0.5, 0.2]]), np.array([[0.0, 1.0 + 1e-15]]), np.array([[-1e-300, 0.5]])):
        assert cs.in_unit_interval(_dev(M)) == K.in_unit_interval(M)


@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_loss_twin(dtype):
    cs = _cs()
    rng = np.random.default_rng(14)
    X = _spikes(rng, dtype, (4, 5))
    Lm = _labels(rng).astype(dtype)
    G = X @ X.T
    for code, p in ((K.LINEAR, 0.0), (K.GAUSSIAN, 1.3)):
        for loss in (K.MSE, K.BCE):
            st0, v0, g0 = K.spike_similar_loss_fused(X, G, Lm, code, p, L.COSINE_EPS, True, loss, 0.5, L.BCE_EPS, True)
            st1, v1, g1 = cs.spike_similar_loss_fused(_dev(X), _dev(G), _dev(Lm), code, p, L.COSINE_EPS, True, loss, 0.5,
                                                      L.BCE_EPS, True)
            assert st1 == st0 == 0
            assert abs(v1 - v0) <= TOL[np.dtype(dtype)] * abs(v0)
            _close(_host(g1), g0, dtype)
    # status codes: S outside [0, 1] (polynomial) and Y outside [0, 1] (negative labels)
    st, v, g = cs.spike_similar_loss_fused(_dev(X), _dev(G), _dev(Lm), K.POLYNOMIAL, 2.0, L.COSINE_EPS, True, K.BCE, 1.0,
                                           L.BCE_EPS, True)
    assert (st, np.isnan(v), g.shape) == (1, True, (0, 0))
    neg = Lm.copy()
    neg[0] = (-1.0, 0.0, 0.0)  # Y[0, 1] = -1 (sample 1 has label 0)
    st, v, g = cs.spike_similar_loss_fused(_dev(X), _dev(G), _dev(neg), K.LINEAR, 0.0, L.COSINE_EPS, True, K.BCE, 1.0,
                                           L.BCE_EPS, True)
    assert (st, np.isnan(v)) == (2, True)


@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_steps_twin(dtype):
    cs = _cs()
    rng = np.random.default_rng(15)
    x = (3.0 * rng.standard_normal((2, 3, 5, 2))).astype(dtype)
    t = rng.integers(0, 5, (3, 2))
    t[0, 1] = t[2, 0] = -100
    l0, g0, c0 = K.cross_entropy_steps(x, t, -100, 0.8, True)
    l1, g1, c1 = cs.cross_entropy_steps(_dev(x), _dev(t), -100, 0.8, True)
    assert c1 == c0 == 2 * 4
    assert abs(l1 - l0) <= 1e-12 * abs(l0)  # float64 on both sides
    assert _host(g1).dtype == dtype
    _close(_host(g1), g0, dtype)
    l2, g2, _ = cs.cross_entropy_steps(_dev(x), _dev(t), -100, 1.0, False)
    assert l2 == l1 and g2.shape == (0, 0, 0, 0)
    l3, g3, c3 = cs.cross_entropy_steps(_dev(x), _dev(np.full((3, 2), -100)), -100, 1.0, True)
    assert np.isnan(l3) and c3 == 0 and not _host(g3).any()


# ------------------------------------------------------------------------------------ public entry points
@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k[0])
def test_spike_similar_loss_public(dtype, kind):
    """Every kernel x loss, NumPy in and out, against refnsm.spiking (errors: the same message)."""
    cs = _cs()
    name, _, p = kind
    args = () if name == "linear" else (p,)
    rng = np.random.default_rng(16)
    s = _spikes(rng, dtype)
    Lm = _labels(rng).astype(np.int64)
    for loss in ("mse", "l1", "bce"):
        try:
            v0, g0 = sp.spike_similar_loss_value_and_grad(s, Lm, name, loss, *args)
        except ValueError as e:
            with pytest.raises(ValueError) as info:
                spc.spike_similar_loss_value_and_grad(s, Lm, name, loss, *args)
            assert str(info.value) == str(e)
            continue
        v1, g1 = spc.spike_similar_loss_value_and_grad(s, Lm, name, loss, *args)
        assert isinstance(g1, np.ndarray) and g1.dtype == dtype and g1.shape == s.shape
        assert v1.dtype == dtype and v1.shape == ()
        _close(v1, v0, dtype)
        _close(g1, g0, dtype)
        if loss == "l1":
            _close(spc.spike_similar_loss(s, Lm, name, loss, *args), sp.spike_similar_loss(s, Lm, name, loss, *args), dtype)
            _close(spc.spike_similar_loss_vjp(2.0, s, Lm, name, loss, *args),
                   sp.spike_similar_loss_vjp(2.0, s, Lm, name, loss, *args), dtype)


@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
def test_kernel_dot_product_public(dtype):
    cs = _cs()
    rng = np.random.default_rng(17)
    x = rng.random((4, 3)).astype(dtype)
    y = rng.random((3, 3)).astype(dtype)
    for name, _, p in KINDS:
        args = () if name == "linear" else (p,)
        yy = x[::-1].copy() if name == "gaussian" else y
        K1 = spc.kernel_dot_product(x, yy, name, *args)
        assert isinstance(K1, np.ndarray) and K1.dtype == dtype
        _close(K1, sp.kernel_dot_product(x, yy, name, *args), dtype)
        A = rng.standard_normal(K1.shape)
        for a, b in zip(spc.kernel_dot_product_vjp(A, x, yy, name, *args), sp.kernel_dot_product_vjp(A, x, yy, name, *args)):
            assert a.dtype == dtype
            _close(a, b, dtype)
    # mixed dtypes promote as on the CPU
    assert spc.kernel_dot_product(x.astype(np.float32), y.astype(np.float64)).dtype == np.float64


@pytestmark_device
def test_compat_spikingjelly():
    cs = _cs()
    rng = np.random.default_rng(18)
    x = rng.random((4, 3))
    y1 = rng.random((1, 3))
    K0 = sp.kernel_dot_product(x, y1, "gaussian", 0.9, compat="spikingjelly")
    K1 = spc.kernel_dot_product(x, y1, "gaussian", 0.9, compat="spikingjelly")
    assert K1.shape == (4, 4)
    _close(K1, K0, np.float64)
    A = rng.standard_normal((4, 4))
    for a, b in zip(spc.kernel_dot_product_vjp(A, x, y1, "gaussian", 0.9, compat="spikingjelly"),
                    sp.kernel_dot_product_vjp(A, x, y1, "gaussian", 0.9, compat="spikingjelly")):
        _close(a, b, np.float64)
    for Kd in (spc.kernel_dot_product(_dev(x), _dev(y1), "gaussian", 0.9, compat="spikingjelly"),):
        _close(_host(Kd), K0, np.float64)
    # float32 cosine diagonal above 1 under compat: the CPU's BCE range error, word for word
    # (whether torch's order rounds a float32 diagonal above 1 depends on the summation order of ||x||^2 and x.x,
    # which differs between BLAS and the tiled product; for this input it does on both sides)
    s = np.random.default_rng(1).random((3, 7)).astype(np.float32)
    Lm = np.eye(3)
    with pytest.raises(ValueError) as cpu:
        sp.spike_similar_loss(s, Lm, "linear", "bce", compat="spikingjelly")
    with pytest.raises(ValueError) as gpu:
        spc.spike_similar_loss(s, Lm, "linear", "bce", compat="spikingjelly")
    # the same message; the offending value may differ in its last float32 bit (BLAS vs the tiled product's order)
    mask = lambda e: re.sub(r"\] = [-+.0-9e]+ \(", "] = <value> (", str(e.value))  # noqa: E731
    assert mask(gpu) == mask(cpu) and "rounds above 1 in float32" in mask(gpu)
    # the exact diagonal (default) makes the same call work, with the CPU's value
    _close(spc.spike_similar_loss(s, Lm, "linear", "bce"), sp.spike_similar_loss(s, Lm, "linear", "bce"), np.float32)
    # labels formed in float32 under compat
    v0, g0 = sp.spike_similar_loss_value_and_grad(s.astype(np.float64), Lm, "sigmoid", "mse", 0.5, compat="spikingjelly")
    v1, g1 = spc.spike_similar_loss_value_and_grad(s.astype(np.float64), _dev(Lm), "sigmoid", "mse", 0.5,
                                                  compat="spikingjelly")
    _close(v1, v0, np.float64)
    _close(_host(g1), g0, np.float64)


@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
def test_tet_public(dtype):
    cs = _cs()
    rng = np.random.default_rng(19)
    x = rng.standard_normal((2, 3, 5, 2)).astype(dtype)
    t = rng.integers(0, 5, (3, 2))
    t[1, 1] = -100
    v0 = sp.temporal_efficient_training_cross_entropy(x, t)
    v1 = spc.temporal_efficient_training_cross_entropy(x, t)
    assert v1.dtype == dtype and v1.shape == ()
    _close(v1, v0, dtype)
    g0 = sp.temporal_efficient_training_cross_entropy_vjp(0.5, x, t)
    g1 = spc.temporal_efficient_training_cross_entropy_vjp(0.5, x, t)
    assert isinstance(g1, np.ndarray) and g1.dtype == dtype and g1.shape == x.shape
    _close(g1, g0, dtype)
    # no spatial dims, on the device (target on the device too): results stay there
    x3 = x[:, :, :, 0].copy()
    t1 = t[:, 0].copy()
    gd = spc.temporal_efficient_training_cross_entropy_vjp(None, _dev(x3), _dev(t1))
    from refnsm.cuda import is_device_array

    assert is_device_array(gd) and gd.shape == x3.shape
    _close(_host(gd), sp.temporal_efficient_training_cross_entropy_vjp(None, x3, t1), dtype)
    _close(spc.temporal_efficient_training_cross_entropy(_dev(x3), t1, ignore_index=-100),
           sp.temporal_efficient_training_cross_entropy(x3, t1), dtype)


@pytestmark_device
def test_device_arrays_stay_on_device_and_match_host_path():
    from refnsm.cuda import is_device_array

    cs = _cs()
    rng = np.random.default_rng(20)
    s = _spikes(rng, np.float32)
    Lm = _labels(rng)
    sd, Ld = _dev(s), _dev(Lm.astype(np.int64))
    v_h, g_h = spc.spike_similar_loss_value_and_grad(s, Lm, "gaussian", "bce", 2.0)
    v_d, g_d = spc.spike_similar_loss_value_and_grad(sd, Ld, "gaussian", "bce", 2.0)
    assert is_device_array(g_d) and g_d.shape == s.shape and g_d.dtype == np.float32
    assert v_d == v_h
    np.testing.assert_array_equal(_host(g_d), g_h)
    x = rng.random((3, 4))
    Kd = spc.kernel_dot_product(_dev(x), x, "sigmoid", 0.5)  # mixed: device result
    assert is_device_array(Kd)
    gx, gy = spc.kernel_dot_product_vjp(_dev(np.ones((3, 3))), x, x, "sigmoid", 0.5)
    assert is_device_array(gx) and is_device_array(gy)
    # inputs untouched on both sides
    np.testing.assert_array_equal(_host(sd), s)
    np.testing.assert_array_equal(_host(Ld), Lm.astype(np.int64))


@pytestmark_device
def test_repeatable_bitwise():
    cs = _cs()
    rng = np.random.default_rng(21)
    s = _dev(rng.random((4, 5)))
    Lm = _dev(_labels(rng, 4, 3))
    runs = [spc.spike_similar_loss_value_and_grad(s, Lm, "linear", "mse") for _ in range(2)]
    assert runs[0][0].tobytes() == runs[1][0].tobytes()
    assert _host(runs[0][1]).tobytes() == _host(runs[1][1]).tobytes()
    x = _dev(rng.standard_normal((2, 3, 4)))
    t = np.array([0, 3, 1])
    a = [spc.temporal_efficient_training_cross_entropy(x, t) for _ in range(2)]
    assert a[0].tobytes() == a[1].tobytes()


# ------------------------------------------------------------------------------------------------ bad input
@pytestmark_device
def test_bad_input_device_arrays():
    cs = _cs()
    good = np.random.default_rng(22).random((3, 4))
    with pytest.raises(TypeError, match="x: expected a float32 or float64 device array"):
        spc.kernel_dot_product(_dev(np.ones((3, 4), dtype=np.int64)), good)
    with pytest.raises(ValueError, match="x: expected 2 dimensions"):
        spc.kernel_dot_product(_dev(np.ones(4)), good)
    with pytest.raises(ValueError, match="y: expected 4 columns"):
        spc.kernel_dot_product(_dev(good), _dev(np.ones((3, 5))))
    with pytest.raises(ValueError, match="y: the gaussian kernel needs as many rows"):
        spc.kernel_dot_product(_dev(good), _dev(np.ones((2, 4))), "gaussian", 1.0)
    with pytest.raises(ValueError, match="grad_out: expected shape"):
        spc.kernel_dot_product_vjp(_dev(np.ones((2, 2))), _dev(good), good)
    bad = good.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError) as cpu:
        sp.spike_similar_loss(bad, np.eye(3))
    with pytest.raises(ValueError) as gpu:
        spc.spike_similar_loss(_dev(bad), np.eye(3))
    assert str(gpu.value) == str(cpu.value) and str(gpu.value).startswith("spikes:")
    with pytest.raises(ValueError, match="spikes: expected at least 2 dimensions"):
        spc.spike_similar_loss(_dev(np.ones(3)), np.eye(3))
    with pytest.raises(ValueError, match="labels: expected 3 rows"):
        spc.spike_similar_loss(_dev(good), _dev(np.eye(2)))
    with pytest.raises(ValueError, match="labels: expected finite"):
        spc.spike_similar_loss(_dev(good), _dev(np.full((3, 2), np.inf)))
    from numba import cuda

    with pytest.raises(ValueError, match="spikes: expected a C-contiguous"):
        spc.spike_similar_loss(cuda.to_device(np.asfortranarray(np.ones((3, 4)))), np.eye(3))
    x = _dev(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="target: class indices"):
        spc.temporal_efficient_training_cross_entropy(x, _dev(np.array([0, 4, 1])))
    with pytest.raises(TypeError, match="target: expected integer"):
        spc.temporal_efficient_training_cross_entropy(x, np.array([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="target: no position"):
        spc.temporal_efficient_training_cross_entropy(x, np.array([-100, -100, -100]))
    with pytest.raises(ValueError, match="target: expected shape"):
        spc.temporal_efficient_training_cross_entropy(x, np.array([0, 1]))
    with pytest.raises(ValueError, match="x_seq: expected at least 3"):
        spc.temporal_efficient_training_cross_entropy(_dev(np.zeros((2, 3))), np.array([0, 1, 1]))


@pytestmark_device
def test_bad_input_host_arrays_same_messages_as_cpu():
    cs = _cs()
    x = np.ones((3, 4))
    calls = [
        lambda m: m.kernel_dot_product(x, x, "cubic"),
        lambda m: m.kernel_dot_product(x, x, "gaussian", -1.0),
        lambda m: m.kernel_dot_product(x, x, "linear", compat="torch"),
        lambda m: m.kernel_dot_product(x, x, "sigmoid"),
        lambda m: m.spike_similar_loss(x, np.eye(3), "linear", "hinge"),
        lambda m: m.spike_similar_loss(x, np.eye(2)),
        lambda m: m.spike_similar_loss_vjp(np.ones(2), x, np.eye(3)),
        lambda m: m.temporal_efficient_training_cross_entropy(np.zeros((2, 3, 4)), np.array([0, 9, 1])),
        lambda m: m.temporal_efficient_training_cross_entropy_vjp(None, np.zeros((2, 3, 4)), np.array([0, 1, 1]), 1.5),
    ]
    for call in calls:
        with pytest.raises((ValueError, TypeError)) as cpu:
            call(sp)
        with pytest.raises(type(cpu.value)) as gpu:
            call(spc)
        assert str(gpu.value) == str(cpu.value)


@pytest.mark.skipif(MODE is not None, reason="this process can launch kernels")
def test_entry_points_explain_missing_device():
    """Without a GPU and without the simulator, the entry points raise before any work, saying what to do."""
    cs = _cs()
    x = np.ones((2, 3))
    with pytest.raises(RuntimeError, match="no CUDA GPU .*NUMBA_ENABLE_CUDASIM=1"):
        spc.kernel_dot_product(x, x)
    with pytest.raises(RuntimeError, match="device='cpu'"):
        spc.spike_similar_loss(x, np.eye(2))
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        spc.temporal_efficient_training_cross_entropy(np.zeros((1, 2, 3)), np.array([0, 1]))


@pytestmark_device
def test_gradcheck_on_device():
    """GPU VJPs against central finite differences of the GPU forward itself (float64, tiny sizes; the other VJPs
    are held to the CPU VJPs above, which the spiking suite gradchecks)."""
    from refnsm.gradcheck import gradcheck

    cs = _cs()
    rng = np.random.default_rng(23)
    s = 0.2 + 0.6 * rng.random((2, 2))  # away from the zero-norm branch
    Lm = np.array([[1.0, 0.0], [1.0, 1.0]])
    gradcheck(lambda x: spc.spike_similar_loss(x, Lm, "linear", "bce"),
              lambda g, x: spc.spike_similar_loss_vjp(g, x, Lm, "linear", "bce"), [s], raise_on_fail=True)
    x = rng.standard_normal((1, 2, 2))
    t = np.array([1, 0])
    gradcheck(lambda z: spc.temporal_efficient_training_cross_entropy(z, t),
              lambda g, z: spc.temporal_efficient_training_cross_entropy_vjp(g, z, t), [x], raise_on_fail=True)


@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
def test_public_device_argument_dispatches_to_the_twin(dtype):
    """refnsm.spiking's public functions with device="cuda" give the CPU result (float64 1e-12, float32 1e-5)."""
    rng = np.random.default_rng(7)
    X = rng.random((5, 2, 3)).astype(dtype)
    lab = np.eye(3)[[0, 1, 2, 0, 1]]
    tol = TOL[np.dtype(dtype)]
    for kernel, args in [("linear", ()), ("gaussian", (1.3,))]:
        for fn in (sp.spike_similar_loss, lambda *a, **k: sp.spike_similar_loss_vjp(None, *a, **k)):
            cpu = fn(X, lab, kernel, "mse", *args)
            gpu = fn(X, lab, kernel, "mse", *args, device="cuda")
            assert np.max(np.abs(gpu - cpu)) <= tol * max(np.max(np.abs(cpu)), 1e-30)
    x = rng.standard_normal((3, 4, 5)).astype(dtype)
    t = rng.integers(0, 5, 4)
    for fn in (sp.temporal_efficient_training_cross_entropy,
               lambda *a, **k: sp.temporal_efficient_training_cross_entropy_vjp(None, *a, **k)):
        cpu, gpu = fn(x, t), fn(x, t, device="cuda")
        assert np.max(np.abs(gpu - cpu)) <= tol * np.max(np.abs(cpu))


def test_device_argument_is_validated():
    with pytest.raises(ValueError, match="device: expected one of 'cpu', 'cuda'; got 'gpu'"):
        sp.spike_similar_loss(np.eye(3), np.eye(3), device="gpu")


@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k[0])
def test_similarity_matrix_labels_and_tet_value_and_grad_take_device(dtype, kind):
    """The entry points that gained device= agree with the CPU, NumPy in and out, and stay on the device."""
    name, _, p = kind
    args = () if name == "linear" else (p,)
    rng = np.random.default_rng(31)
    s = _spikes(rng, dtype)
    A = rng.standard_normal((4, 4)).astype(dtype)
    S0, S1 = sp.spike_similarity_matrix(s, name, *args), spc.spike_similarity_matrix(s, name, *args)
    assert isinstance(S1, np.ndarray) and S1.dtype == dtype
    _close(S1, S0, dtype)
    g0 = sp.spike_similarity_matrix_vjp(A, s, name, *args)
    _close(spc.spike_similarity_matrix_vjp(A, s, name, *args), g0, dtype)
    gd = spc.spike_similarity_matrix_vjp(_dev(A), _dev(s), name, *args)
    assert _isdev(gd) and gd.shape == s.shape
    _close(_host(gd), g0, dtype)
    Lm = _labels(rng)
    for compat in (None, "spikingjelly"):
        Y0 = sp.label_similarity_matrix(Lm, dtype, compat=compat)
        Y1 = spc.label_similarity_matrix(_dev(Lm.astype(np.int64)), dtype, compat=compat)
        assert _isdev(Y1)
        np.testing.assert_array_equal(_host(Y1), Y0)
    x = rng.standard_normal((3, 4, 5, 2)).astype(dtype)
    t = rng.integers(0, 5, (4, 2))
    v0, gr0 = sp.temporal_efficient_training_cross_entropy_value_and_grad(x, t)
    v1, gr1 = spc.temporal_efficient_training_cross_entropy_value_and_grad(_dev(x), t)
    assert _isdev(gr1) and v1.dtype == dtype
    _close(v1, v0, dtype)
    _close(_host(gr1), gr0, dtype)


@pytestmark_device
@pytest.mark.parametrize("dtype", DTYPES)
def test_time_mean_tet_and_firing_rate_take_device(dtype):
    """time_mean_cross_entropy, tet_loss, TETLoss and firing_rate_mse (values and VJPs) with device="cuda"."""
    rng = np.random.default_rng(41)
    x = rng.standard_normal((3, 4, 5, 2)).astype(dtype)
    t = rng.integers(0, 5, (4, 2))
    for f, vjp, kw in ((sp.time_mean_cross_entropy, sp.time_mean_cross_entropy_vjp, {}),
                       (sp.tet_loss, sp.tet_loss_vjp, dict(mean=0.5, tet_lambda=0.3))):
        v0 = f(x, t, **kw)
        v1 = f(_dev(x), t, **kw, device="cuda")
        assert v1.dtype == dtype and v1.shape == ()
        _close(v1, v0, dtype)
        g0 = vjp(0.7, x, t, **kw)
        g1 = vjp(0.7, _dev(x), _dev(t), **kw, device="cuda")
        assert _isdev(g1) and g1.shape == x.shape
        _close(_host(g1), g0, dtype)
        assert isinstance(vjp(0.7, x, t, **kw, device="cuda"), np.ndarray)
    cpu, gpu = sp.TETLoss(0.5, 0.3), sp.TETLoss(0.5, 0.3, device="cuda")
    _close(gpu(_dev(x), t), cpu(x, t), dtype)
    _close(_host(gpu.backward()), cpu.backward(), dtype)
    assert "device='cuda'" in repr(gpu)
    s = (rng.random((3, 4, 5)) > 0.5).astype(dtype)
    lab = rng.integers(0, 5, 4)
    _close(sp.firing_rate_mse(_dev(s), lab, device="cuda"), sp.firing_rate_mse(s, lab), dtype)
    gr = sp.firing_rate_mse_vjp(2.0, _dev(s), _dev(lab), device="cuda")
    assert _isdev(gr)
    _close(_host(gr), sp.firing_rate_mse_vjp(2.0, s, lab), dtype)
    with pytest.raises(ValueError, match=r"labels: class indices must be in \[0, 5\)"):
        sp.firing_rate_mse(_dev(s), np.array([0, 1, 2, 7]), device="cuda")
